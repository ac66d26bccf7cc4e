//! Lexical search over the tasks and notes a principal can see, ranked by the engine:
//! FTS5's bm25 on SQLite, `ts_rank` on PostgreSQL, with title words weighing more than
//! body words on both. The visibility predicate is part of each query, so another
//! tenant's rows are never fetched, let alone ranked.

use mosaic_api::{BrainKind, SearchHit};
use sqlx::Row;

use super::{text_query, VISIBLE};
use crate::db::{Acting, Backend, Tx};
use crate::{Principal, Result, Store};

/// Most hits a search returns.
pub const MAX_HITS: u32 = 100;

fn table(kind: BrainKind) -> &'static str {
    match kind {
        BrainKind::Task => "tasks",
        BrainKind::Note => "notes",
    }
}

/// The best `limit` hits of one table.
async fn search_table(
    tx: &mut Tx<'_>,
    backend: Backend,
    p: &Principal,
    kind: BrainKind,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    let t = table(kind);
    let sql = match backend {
        // bm25 is lower for better matches; the title column weighs 10, the body 1.
        Backend::Sqlite => format!(
            "SELECT x.id, x.title, snippet({t}_fts, -1, '«', '»', '…', 16) AS snippet, \
             -bm25({t}_fts, 10.0, 1.0) AS score \
             FROM {t}_fts JOIN {t} x ON x.seq = {t}_fts.rowid \
             WHERE {t}_fts MATCH $2 AND {VISIBLE} \
             ORDER BY bm25({t}_fts, 10.0, 1.0), x.id DESC LIMIT $3"
        ),
        // Titles are weight A (1.0), bodies B (0.4), in ts_rank's default weights.
        Backend::Postgres => format!(
            "SELECT id, title, ts_headline('simple', title || ' ' || body, q, \
             'StartSel=«, StopSel=», MaxWords=24, MinWords=8') AS snippet, \
             ts_rank(search, q)::float8 AS score \
             FROM {t}, plainto_tsquery('simple', $2) AS q \
             WHERE search @@ q AND {VISIBLE} ORDER BY score DESC, id DESC LIMIT $3"
        ),
    };
    let sql = tx.sql(&sql).into_owned();
    let rows = tx
        .fetch_all(
            sqlx::query(&sql)
                .bind(p.user_id())
                .bind(query)
                .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(SearchHit {
                kind,
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                snippet: row.try_get("snippet")?,
                score: row.try_get("score")?,
            })
        })
        .collect()
}

impl Store {
    /// Tasks and notes (or only the given kinds) visible to the caller that contain
    /// every word of `q`, best first. A `q` without words finds nothing.
    #[tracing::instrument(name = "store.search_brain", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn search_brain(
        &self,
        p: &Principal,
        q: &str,
        kinds: &[BrainKind],
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        let limit = limit.clamp(1, MAX_HITS);
        let Some(query) = text_query(self.backend(), q) else {
            return Ok(Vec::new());
        };
        let mut tx = self.begin(Acting::As(p), false).await?;
        let mut hits = Vec::new();
        for kind in [BrainKind::Task, BrainKind::Note] {
            if kinds.is_empty() || kinds.contains(&kind) {
                hits.extend(search_table(&mut tx, self.backend(), p, kind, &query, limit).await?);
            }
        }
        tx.commit().await?;
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.id.cmp(&a.id)));
        hits.truncate(limit as usize);
        Ok(hits)
    }
}
