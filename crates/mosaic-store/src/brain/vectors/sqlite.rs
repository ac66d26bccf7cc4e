//! SQLite's nearest neighbours: an in-process index of every embedding of one model,
//! quantised to one byte per dimension (a quarter of the memory of `f32`), scanned in
//! full for the rows of owners the principal can see; the best candidates are then
//! re-scored exactly from the stored `f32` vectors in a query that checks visibility
//! again.

use std::collections::HashMap;

use mosaic_api::BrainKind;

use super::super::kinds::{table, ALL_KINDS};
use super::{cosine, norm, Neighbour, QueryVector};
use crate::db::Tx;
use crate::row::Columns;
use crate::visibility::Table;
use crate::{Principal, Result, Store, StoreError};

pub(super) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A vector in one byte per dimension: `x ≈ code × scale`, with `max |x| ↦ 127`.
fn quantise(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// The dot product of two code vectors. Sixteen independent lanes let the compiler
/// use SIMD multiply-adds: twice as fast as a plain zip-sum on x86-64 (3.4 against
/// 7.3 ms for 100,000 × 384 on this project's machine).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 = a16
        .remainder()
        .iter()
        .zip(b16.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (x, y) in a16.zip(b16) {
        for i in 0..16 {
            lanes[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    lanes.iter().sum::<i32>() + tail
}

struct Item {
    kind: BrainKind,
    id: String,
    owner: u32,
}

/// SQLite's nearest-neighbour index: the quantised embeddings of one model.
pub struct VectorIndex {
    pub(super) model: String,
    pub(super) dims: usize,
    codes: Vec<i8>,
    /// Per item: `scale / norm`, so `cosine ≈ factor × factor_q × dot(codes)`.
    factors: Vec<f32>,
    items: Vec<Item>,
    positions: HashMap<(BrainKind, String), usize>,
    /// Owners as small numbers: `u:<user id>` / `t:<team id>`.
    owners: HashMap<String, u32>,
}

pub(super) fn owner_key(user: Option<String>, team: Option<String>) -> String {
    match (user, team) {
        (Some(u), _) => format!("u:{u}"),
        (None, Some(t)) => format!("t:{t}"),
        (None, None) => String::new(),
    }
}
impl VectorIndex {
    fn new(model: &str, dims: usize) -> Self {
        VectorIndex {
            model: model.to_string(),
            dims,
            codes: Vec::new(),
            factors: Vec::new(),
            items: Vec::new(),
            positions: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    fn owner_number(&mut self, key: String) -> u32 {
        let next = self.owners.len() as u32;
        *self.owners.entry(key).or_insert(next)
    }

    pub(super) fn insert(&mut self, kind: BrainKind, id: &str, owner: String, v: &[f32]) {
        if v.len() != self.dims {
            return;
        }
        let (codes, scale) = quantise(v);
        let n = norm(v);
        let factor = if n > 0.0 { scale / n } else { 0.0 };
        let owner = self.owner_number(owner);
        match self.positions.get(&(kind, id.to_string())) {
            Some(&at) => {
                self.codes[at * self.dims..(at + 1) * self.dims].copy_from_slice(&codes);
                self.factors[at] = factor;
                self.items[at].owner = owner;
            }
            None => {
                self.positions
                    .insert((kind, id.to_string()), self.items.len());
                self.codes.extend_from_slice(&codes);
                self.factors.push(factor);
                self.items.push(Item {
                    kind,
                    id: id.to_string(),
                    owner,
                });
            }
        }
    }

    pub(super) fn remove(&mut self, kind: BrainKind, id: &str) {
        let Some(at) = self.positions.remove(&(kind, id.to_string())) else {
            return;
        };
        let last = self.items.len() - 1;
        if at != last {
            let (d, moved) = (self.dims, &self.items[last]);
            self.positions.insert((moved.kind, moved.id.clone()), at);
            self.codes.copy_within(last * d..(last + 1) * d, at * d);
        }
        self.items.swap_remove(at);
        self.factors.swap_remove(at);
        self.codes.truncate(last * self.dims);
    }

    /// The `n` items of the given owners and kinds nearest to `q` (approximate cosine,
    /// best first).
    fn nearest(&self, q: &[f32], owners: &[u32], kinds: &[BrainKind], n: usize) -> Vec<usize> {
        let (qc, qscale) = quantise(q);
        let qn = norm(q);
        if qn == 0.0 || q.len() != self.dims {
            return Vec::new();
        }
        let qfactor = qscale / qn;
        let mut scored: Vec<(f32, usize)> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| owners.contains(&item.owner) && kinds.contains(&item.kind))
            .map(|(i, _)| {
                let codes = &self.codes[i * self.dims..(i + 1) * self.dims];
                let approx = dot_i8(codes, &qc) as f32 * self.factors[i] * qfactor;
                (approx, i)
            })
            .collect();
        if scored.len() > n {
            scored.select_nth_unstable_by(n, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(n);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

impl Store {
    pub(super) async fn nearest_sqlite(
        &self,
        tx: &mut Tx<'_>,
        p: &Principal,
        kinds: &[BrainKind],
        q: &QueryVector,
        n: u32,
    ) -> Result<Vec<Neighbour>> {
        let fresh = matches!(&*self.inner_vectors().read().await,
            Some(index) if index.model == q.model && index.dims == q.values.len());
        if !fresh {
            let mut slot = self.inner_vectors().write().await;
            if !matches!(&*slot, Some(index) if index.model == q.model && index.dims == q.values.len())
            {
                *slot = Some(load_index(tx, &q.model, q.values.len()).await?);
            }
        }
        // The owners whose items the scan considers: the user and their teams. (A
        // principal that is not a local user owns nothing: its candidates would
        // come from a scan of what it was granted.)
        let mut keys = Vec::new();
        if let Some(me) = p.local_user() {
            let rows = tx
                .fetch_all(
                    sqlx::query("SELECT team_id FROM team_members WHERE user_id = ?1").bind(me),
                )
                .await?;
            keys.push(format!("u:{me}"));
            for row in rows {
                keys.push(format!("t:{}", row.col::<String>("team_id")?));
            }
        }
        // Four times as many candidates as asked for, re-scored exactly below: the
        // quantised order is close to the exact one, not always equal. The scan is
        // plain computation over tens of megabytes: it runs on a blocking thread, so
        // the word half of a search proceeds meanwhile and no async worker stalls.
        let store = self.clone();
        let (values, wanted) = (q.values.clone(), kinds.to_vec());
        let want = (n as usize * 4).max(40);
        let candidates: Vec<(BrainKind, String)> = tokio::task::spawn_blocking(move || {
            let guard = store.inner_vectors().blocking_read();
            let Some(index) = guard.as_ref() else {
                return Vec::new();
            };
            let owners: Vec<u32> = keys
                .iter()
                .filter_map(|k| index.owners.get(k).copied())
                .collect();
            index
                .nearest(&values, &owners, &wanted, want)
                .into_iter()
                .map(|i| (index.items[i].kind, index.items[i].id.clone()))
                .collect()
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the vector scan failed: {e}")))?;
        let mut out = Vec::new();
        for kind in kinds {
            let ids: Vec<&String> = candidates
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, id)| id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
            let visible = tx.visible(p, Table::brain(*kind), ids.len() as u32 + 3);
            let sql = tx
                .sql(&format!(
                    "SELECT id, embedding FROM {} WHERE {visible} AND embedding_model = $1 \
                     AND embedding_dims = $2 AND id IN ({})",
                    table(*kind),
                    marks.join(", ")
                ))
                .into_owned();
            let mut query = sqlx::query(&sql).bind(&q.model).bind(q.values.len() as i64);
            for id in ids {
                query = query.bind(id);
            }
            for row in tx.fetch_all(visible.bind(query)).await? {
                let blob: Vec<u8> = row.col("embedding")?;
                out.push(Neighbour {
                    kind: *kind,
                    id: row.col("id")?,
                    similarity: cosine(&from_blob(&blob), &q.values),
                });
            }
        }
        Ok(out)
    }
}

/// Read every embedding of `model` with `dims` dimensions into a new index.
async fn load_index(tx: &mut Tx<'_>, model: &str, dims: usize) -> Result<VectorIndex> {
    let mut index = VectorIndex::new(model, dims);
    for kind in ALL_KINDS {
        let sql = format!(
            "SELECT id, owner_user_id, owner_team_id, embedding FROM {} \
             WHERE embedding IS NOT NULL AND embedding_model = ?1 AND embedding_dims = ?2",
            table(kind)
        );
        let rows = tx
            .fetch_all(sqlx::query(&sql).bind(model).bind(dims as i64))
            .await?;
        for row in rows {
            let blob: Vec<u8> = row.col("embedding")?;
            let id: String = row.col("id")?;
            let owner = owner_key(row.col("owner_user_id")?, row.col("owner_team_id")?);
            index.insert(kind, &id, owner, &from_blob(&blob));
        }
    }
    tracing::info!(
        model,
        dims,
        items = index.items.len(),
        "loaded the vector index"
    );
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u32, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        let n = norm(&v);
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn quantised_scan_finds_the_exact_nearest_and_respects_owners() {
        let dims = 64;
        let mut index = VectorIndex::new("m", dims);
        for i in 0..500u32 {
            let owner = if i % 2 == 0 { "u:a" } else { "u:b" };
            index.insert(
                BrainKind::Memory,
                &format!("m{i}"),
                owner.into(),
                &unit(i, dims),
            );
        }
        let q = unit(42, dims);
        let a = index.owners["u:a"];
        let found = index.nearest(&q, &[a], &[BrainKind::Memory], 5);
        assert_eq!(index.items[found[0]].id, "m42");
        assert!(found.iter().all(|&i| index.items[i].owner == a));
        // The quantised ranking agrees with the exact one at the top.
        let mut exact: Vec<(f64, u32)> = (0..500u32)
            .filter(|i| i % 2 == 0)
            .map(|i| (cosine(&unit(i, dims), &q), i))
            .collect();
        exact.sort_by(|x, y| y.0.total_cmp(&x.0));
        let top: Vec<String> = exact[..3].iter().map(|(_, i)| format!("m{i}")).collect();
        let approx: Vec<String> = found[..3]
            .iter()
            .map(|&i| index.items[i].id.clone())
            .collect();
        assert_eq!(approx, top);
        assert!(index.nearest(&q, &[a], &[BrainKind::Task], 5).is_empty());
    }

    #[test]
    fn the_lane_dot_product_is_the_plain_one() {
        for len in [0, 5, 16, 17, 384, 390] {
            let a: Vec<i8> = (0..len).map(|i| (i * 37 % 255) as u8 as i8).collect();
            let b: Vec<i8> = (0..len).map(|i| (i * 91 % 251) as u8 as i8).collect();
            let plain: i32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
            assert_eq!(dot_i8(&a, &b), plain, "{len}");
        }
    }

    #[test]
    fn removal_keeps_positions_consistent() {
        let dims = 8;
        let mut index = VectorIndex::new("m", dims);
        for i in 0..10u32 {
            index.insert(
                BrainKind::Note,
                &format!("n{i}"),
                "u:a".into(),
                &unit(i, dims),
            );
        }
        index.remove(BrainKind::Note, "n3");
        index.remove(BrainKind::Note, "n9");
        index.remove(BrainKind::Note, "missing");
        assert_eq!(index.items.len(), 8);
        assert_eq!(index.codes.len(), 8 * dims);
        let a = index.owners["u:a"];
        let q = unit(7, dims);
        let found = index.nearest(&q, &[a], &[BrainKind::Note], 1);
        assert_eq!(index.items[found[0]].id, "n7");
        for (key, &at) in &index.positions {
            assert_eq!(index.items[at].id, key.1);
        }
        // Re-inserting an id replaces its vector instead of adding a row.
        index.insert(BrainKind::Note, "n7", "u:a".into(), &unit(1, dims));
        assert_eq!(index.items.len(), 8);
    }
}
