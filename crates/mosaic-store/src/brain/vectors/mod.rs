//! Embeddings of tasks, notes and memories, and the nearest-neighbour half of hybrid
//! search.
//!
//! The store never computes an embedding: the gateway's embedder asks for the items
//! whose embedding is missing ([`Store::pending_embeddings`]), embeds their text and
//! hands the vectors back ([`Store::save_embedding`]), which only lands if the text is
//! still the one embedded. Every text change clears the embedding and signals
//! [`Store::text_changes`].
//!
//! Nearest neighbours: on PostgreSQL, pgvector with an HNSW index per dimension in use
//! (cosine distance), the visibility predicate in the query. On SQLite, an in-process
//! index ([`VectorIndex`]): every embedding quantised to one byte per dimension
//! (a quarter of the memory of `f32`), scanned in full for the rows of owners the
//! principal can see, the best candidates then re-scored exactly from the stored
//! `f32` vectors in a query that checks visibility again.
//!
//! This module holds what both engines share (the embedder's side and the dispatch);
//! `sqlite.rs` the in-process index, `pgvector.rs` the PostgreSQL queries.

mod pgvector;
mod sqlite;

pub(crate) use sqlite::VectorIndex;

use mosaic_api::BrainKind;

use super::kinds::{same_text, table, text_columns, ALL_KINDS};
use crate::db::{Acting, Backend, Tx};
use crate::row::Columns;
use crate::{Principal, Result, Store};

/// Longest text handed to the embedding model, in characters (models truncate to their
/// own context anyway; this bounds the request).
pub const MAX_EMBED_CHARS: usize = 8_000;

/// A search query's embedding, by the model the items were embedded with.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVector {
    pub model: String,
    pub values: Vec<f32>,
}

/// An item whose embedding is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingText {
    pub kind: BrainKind,
    pub id: String,
    title: String,
    body: String,
}

impl PendingText {
    /// What the model embeds: title and body (a memory's text), at most
    /// [`MAX_EMBED_CHARS`].
    pub fn input(&self) -> String {
        let text = if self.body.is_empty() {
            self.title.clone()
        } else {
            format!("{}\n\n{}", self.title, self.body)
        };
        match text.char_indices().nth(MAX_EMBED_CHARS) {
            Some((cut, _)) => text[..cut].to_string(),
            None => text,
        }
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (na, nb) = (norm(a), norm(b));
    if a.len() != b.len() || na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    f64::from(dot / (na * nb))
}

/// One nearest neighbour: its kind, id and exact cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Neighbour {
    pub kind: BrainKind,
    pub id: String,
    pub similarity: f64,
}

impl Store {
    /// Up to `limit` items without an embedding (every tenant's: the embedder acts for
    /// the gateway), oldest first within each kind.
    #[tracing::instrument(name = "store.pending_embeddings", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn pending_embeddings(&self, limit: u32) -> Result<Vec<PendingText>> {
        let mut tx = self.begin(Acting::System, false).await?;
        let mut out = Vec::new();
        for kind in ALL_KINDS {
            let left = i64::from(limit) - out.len() as i64;
            if left <= 0 {
                break;
            }
            let sql = tx
                .sql(&format!(
                    "SELECT id, {} FROM {} WHERE embedding_model IS NULL ORDER BY id LIMIT $1",
                    text_columns(kind),
                    table(kind)
                ))
                .into_owned();
            for row in tx.fetch_all(sqlx::query(&sql).bind(left)).await? {
                out.push(PendingText {
                    kind,
                    id: row.col("id")?,
                    title: row.col("title")?,
                    body: row.col("body")?,
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Drop the embeddings of every model but `model`, so they are computed again
    /// with it (vectors of different models cannot be compared). Returns how many.
    #[tracing::instrument(name = "store.retire_embeddings", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn retire_embeddings(&self, model: &str) -> Result<u64> {
        let mut tx = self.begin(Acting::System, true).await?;
        let mut n = 0;
        for kind in ALL_KINDS {
            let sql = tx
                .sql(&format!(
                    "UPDATE {} SET embedding = NULL, embedding_model = NULL, \
                     embedding_dims = NULL WHERE embedding_model <> $1",
                    table(kind)
                ))
                .into_owned();
            n += tx.execute(sqlx::query(&sql).bind(model)).await?;
        }
        tx.commit().await?;
        if n > 0 {
            *self.inner_vectors().write().await = None;
            self.text_changed();
        }
        Ok(n)
    }

    /// Store the embedding of `item` by `model` (`None`: the model refused this text;
    /// it is not tried again until the text changes). Lands only if the text is still
    /// the one embedded and nobody stored an embedding meanwhile; returns whether it did.
    #[tracing::instrument(name = "store.save_embedding", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn save_embedding(
        &self,
        item: &PendingText,
        model: &str,
        vector: Option<&[f32]>,
    ) -> Result<bool> {
        let dims = vector.map(|v| v.len() as i64);
        if self.backend() == Backend::Postgres {
            if let Some(d) = dims {
                self.ensure_hnsw(d as usize).await?;
            }
        }
        let value = match self.backend() {
            Backend::Sqlite => "$2",
            Backend::Postgres => "$2::vector",
        };
        let mut tx = self.begin(Acting::System, true).await?;
        let sql = tx
            .sql(&format!(
                "UPDATE {} SET embedding = {value}, embedding_model = $3, embedding_dims = $4 \
                 WHERE id = $1 AND embedding_model IS NULL AND {}",
                table(item.kind),
                same_text(item.kind, 5)
            ))
            .into_owned();
        let query = sqlx::query(&sql).bind(&item.id);
        let query = match self.backend() {
            Backend::Sqlite => query.bind(vector.map(sqlite::to_blob)),
            Backend::Postgres => query.bind(vector.map(pgvector::to_pg)),
        };
        let mut query = query.bind(model).bind(dims).bind(&item.title);
        if item.kind != BrainKind::Memory {
            query = query.bind(&item.body);
        }
        let landed = tx.execute(query).await? == 1;
        let owner = if landed && self.backend() == Backend::Sqlite {
            let sql = format!(
                "SELECT owner_user_id, owner_team_id FROM {} WHERE id = ?1",
                table(item.kind)
            );
            tx.fetch_optional(sqlx::query(&sql).bind(&item.id))
                .await?
                .map(|row| -> Result<String> {
                    Ok(sqlite::owner_key(
                        row.col("owner_user_id")?,
                        row.col("owner_team_id")?,
                    ))
                })
                .transpose()?
        } else {
            None
        };
        tx.commit().await?;
        if let (Some(owner), Some(v)) = (owner, vector) {
            if let Some(index) = self.inner_vectors().write().await.as_mut() {
                if index.model == model {
                    index.insert(item.kind, &item.id, owner, v);
                }
            }
        }
        Ok(landed)
    }

    /// Take a deleted item out of SQLite's in-process index.
    pub(crate) async fn forget_vector(&self, kind: BrainKind, id: &str) {
        if let Some(index) = self.inner_vectors().write().await.as_mut() {
            index.remove(kind, id);
        }
    }

    /// The `n` items of `kinds` visible to `p` nearest to `q`, with their exact cosine
    /// similarity, best first.
    pub(crate) async fn nearest(
        &self,
        tx: &mut Tx<'_>,
        p: &Principal,
        kinds: &[BrainKind],
        q: &QueryVector,
        n: u32,
    ) -> Result<Vec<Neighbour>> {
        let mut out = match self.backend() {
            Backend::Postgres => pgvector::nearest(tx, p, kinds, q, n).await?,
            Backend::Sqlite => self.nearest_sqlite(tx, p, kinds, q, n).await?,
        };
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        out.truncate(n as usize);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_for_the_model() {
        let item = PendingText {
            kind: BrainKind::Note,
            id: "n".into(),
            title: "T".into(),
            body: "é".repeat(MAX_EMBED_CHARS),
        };
        assert_eq!(item.input().chars().count(), MAX_EMBED_CHARS);
        assert!(item.input().starts_with("T\n\n"));
    }
}
