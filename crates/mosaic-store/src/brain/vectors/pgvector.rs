//! PostgreSQL's nearest neighbours: pgvector, with an HNSW index per dimension in use
//! (cosine distance) and the visibility predicate in the query.

use mosaic_api::BrainKind;

use super::super::kinds::{bind_all, row_kind, table, union_per_kind, visible_per_kind, ALL_KINDS};
use super::{Neighbour, QueryVector};
use crate::db::{Acting, Tx};
use crate::row::Columns;
use crate::{Principal, Result, Store};

/// pgvector's HNSW indexes hold vectors of at most this many dimensions.
const HNSW_MAX_DIMS: usize = 2_000;

/// pgvector's text form: `[1,2.5,-3]`.
pub(super) fn to_pg(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

impl Store {
    /// Make the HNSW index of `dims`-dimensional vectors, once per table and dimension.
    pub(super) async fn ensure_hnsw(&self, dims: usize) -> Result<()> {
        if dims > HNSW_MAX_DIMS || self.hnsw_ready().lock().is_ok_and(|r| r.contains(&dims)) {
            return Ok(());
        }
        let mut tx = self.begin(Acting::System, true).await?;
        tx.lock("mosaic.hnsw").await?;
        for kind in ALL_KINDS {
            let t = table(kind);
            // `dims` is a number, so formatting it in is safe.
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS {t}_hnsw_{dims} ON {t} USING hnsw \
                 ((embedding::vector({dims})) vector_cosine_ops) WHERE embedding_dims = {dims}"
            );
            tx.execute(sqlx::query(&sql)).await?;
        }
        tx.commit().await?;
        if let Ok(mut ready) = self.hnsw_ready().lock() {
            ready.push(dims);
        }
        Ok(())
    }
}

/// The `n` items of `kinds` visible to `p` nearest to `q`, per kind.
pub(super) async fn nearest(
    tx: &mut Tx<'_>,
    p: &Principal,
    kinds: &[BrainKind],
    q: &QueryVector,
    n: u32,
) -> Result<Vec<Neighbour>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let dims = q.values.len();
    // Filters (visibility, model) apply after the index scan: let it go on until it
    // has `n` rows that pass them, in roughly nearest-first order (sorted afterwards).
    // A wider search than pgvector's default 40 candidates: recall@10 0.95 -> ~0.99 on
    // the 100k benchmark, for a little time. The statement below has nothing a plan
    // for particular values could do better with (the query vector is read once, by a
    // sub-select), so it is planned once per connection rather than at every search.
    tx.execute(sqlx::query(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), \
         set_config('hnsw.ef_search', '100', true), \
         set_config('plan_cache_mode', 'force_generic_plan', true)",
    ))
    .await?;
    // One statement for every kind; `dims` and `n` are numbers, so formatting them in
    // is safe.
    let visible = visible_per_kind(kinds, 3, |table, first| tx.visible(p, table, first));
    let sql = union_per_kind(kinds, |i, kind| {
        let visible = &visible[i];
        format!(
            "(SELECT {i} AS k, id, (1 - (embedding::vector({dims}) <=> \
               (SELECT $1::vector({dims}))))::float8 AS similarity \
             FROM {} WHERE embedding_dims = {dims} AND embedding_model = $2 AND {visible} \
             ORDER BY embedding::vector({dims}) <=> (SELECT $1::vector({dims})) LIMIT {n})",
            table(kind)
        )
    });
    let query = sqlx::query(&sql).bind(to_pg(&q.values)).bind(&q.model);
    let rows = tx.fetch_all(bind_all(visible, query)).await?;
    let mut out = Vec::new();
    for row in rows {
        if let Some(k) = row_kind(&row, kinds)? {
            out.push(Neighbour {
                kind: kinds[k],
                id: row.col("id")?,
                similarity: row.col("similarity")?,
            });
        }
    }
    Ok(out)
}
