//! Hybrid search over the tasks, notes and memories a principal can see.
//!
//! Two kinds of ranked lists are fused by reciprocal rank fusion (RRF): a lexical list
//! per kind (FTS5's bm25 on SQLite, `ts_rank` on PostgreSQL; title words weigh more
//! than body words) and, when the caller brings the query's embedding, one list of
//! nearest neighbours over every kind (cosine similarity). A hit scores
//! `Σ 1 / (60 + rank)` over the lists that found it, so engines' raw scores, which
//! are not comparable across indexes, never decide between kinds. The visibility
//! predicate is part of every query, so another tenant's rows are never fetched, let
//! alone ranked.

use std::collections::HashMap;

use mosaic_api::{BrainKind, ScoreParts, SearchHit};

use super::kinds::{
    bind_all, row_kind, table, text_columns, union_per_kind, visible_per_kind, ALL_KINDS,
};
use super::{text_query, QueryVector};
use crate::db::{Acting, Backend, Tx};
use crate::row::{Columns, FromRow};
use crate::visibility::Table;
use crate::{Principal, Result, Store};

/// Most hits a search returns.
pub const MAX_HITS: u32 = 100;

/// RRF's constant: damps the weight of the very top ranks (60 is the usual choice).
const RRF_K: f64 = 60.0;

/// Longest title of a memory hit (its text), in characters.
const MEMORY_TITLE_CHARS: usize = 80;

/// Words in the excerpt of a hit found by meaning only.
const EXCERPT_WORDS: usize = 24;

struct Lexical {
    id: String,
    title: String,
    snippet: String,
    score: f64,
}

/// Most matches of one kind a lexical search ranks: words found in more of the
/// caller's items are ranked among the newest this many of them. Ranking scores every
/// match, so without a bound a query of common words costs time in proportion to the
/// whole collection; the vector half of a hybrid search still sees every item. The
/// cap sets the worst case: on PostgreSQL, words in about 4,000 of 100,000 items cost
/// about 4 ms either way (walking the newest items until 300 match, or reading every
/// match through the GIN index); at 1,000 that was 10 ms.
const RANK_CAP: i64 = 300;

/// The best `depth` lexical hits of each kind; only the first `shown` of a kind get a
/// headline (PostgreSQL's `ts_headline` parses the whole text: the rest get an
/// excerpt if they make the final list).
async fn lexical(
    tx: &mut Tx<'_>,
    p: &Principal,
    kinds: &[BrainKind],
    query: &str,
    depth: u32,
    shown: u32,
) -> Result<Vec<(BrainKind, Vec<Lexical>)>> {
    let mut lists = Vec::new();
    if tx.backend() == Backend::Sqlite {
        for &kind in kinds {
            lists.push((kind, lexical_sqlite(tx, p, kind, query, depth).await?));
        }
        return Ok(lists);
    }
    let ranked = ranked_ids(tx, p, kinds, query, depth).await?;
    for (kind, ids) in kinds.iter().copied().zip(ranked) {
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            lexical_rows(tx, p, kind, query, &ids, shown).await?
        };
        lists.push((kind, found));
    }
    Ok(lists)
}

/// PostgreSQL: the ids and scores of the best `depth` matches of each kind, best
/// first, from the word tables (see migration 0009), filtered by the caller's owners
/// (the user and their teams).
/// Per kind the newest [`RANK_CAP`] matches are picked by id alone (a narrow sort)
/// and then scored by `ts_rank` (titles weigh 1.0, bodies 0.4). One statement for
/// every kind, planned for its own words: it is never kept prepared, so PostgreSQL
/// plans it with the words in hand (a walk of the newest items for common words,
/// the GIN index for rarer ones), where a cached generic plan could not tell them
/// apart.
async fn ranked_ids(
    tx: &mut Tx<'_>,
    p: &Principal,
    kinds: &[BrainKind],
    query: &str,
    depth: u32,
) -> Result<Vec<Vec<(String, f64)>>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    // The caller's teams as the transaction read them (planning a sub-select of
    // team_members costs as much as the rest).
    let visible = visible_per_kind(kinds, 3, |table, first| {
        tx.visible_teams_known(p, table, "c", first)
    });
    let sql = union_per_kind(kinds, |i, kind| {
        let t = table(kind);
        let visible = &visible[i];
        format!(
            "(SELECT {i} AS k, w.id, ts_rank(w.search, plainto_tsquery('simple', $1))::float8 \
               AS score FROM {t}_words w \
             WHERE w.ctid = ANY(ARRAY(SELECT c.ctid FROM {t}_words c \
               WHERE c.search @@ plainto_tsquery('simple', $1) AND {visible} \
               ORDER BY c.id DESC LIMIT {RANK_CAP})) \
             ORDER BY score DESC, w.id DESC LIMIT $2)"
        )
    });
    // The word tables are small (about 30 MB for 100,000 memories) and read from
    // memory, where a page costs about what checking a row does. At the default page
    // costs (1 and 4) the planner prefers walking the newest items up to about three
    // times as far as pays, well past the point where reading every match through the
    // GIN index is faster.
    tx.execute(sqlx::query(
        "SELECT set_config('seq_page_cost', '0.1', true), \
         set_config('random_page_cost', '0.1', true)",
    ))
    .await?;
    let rows = tx
        .fetch_all(
            bind_all(
                visible,
                sqlx::query(&sql).bind(query).bind(i64::from(depth)),
            )
            .persistent(false),
        )
        .await?;
    let mut ranked = vec![Vec::new(); kinds.len()];
    for row in rows {
        if let Some(k) = row_kind(&row, kinds)? {
            ranked[k].push((row.col("id")?, row.col("score")?));
        }
    }
    // UNION ALL keeps each part's rows together but not their order across parts.
    for list in &mut ranked {
        list.sort_by(|a: &(String, f64), b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    }
    Ok(ranked)
}

/// PostgreSQL: titles and headlines of ranked ids, read from the item's table under
/// row-level security (an id the caller may no longer see is dropped), in rank order.
async fn lexical_rows(
    tx: &mut Tx<'_>,
    p: &Principal,
    kind: BrainKind,
    query: &str,
    ranked: &[(String, f64)],
    shown: u32,
) -> Result<Vec<Lexical>> {
    let t = table(kind);
    let (title, text) = match kind {
        BrainKind::Memory => ("x.text AS title", "x.text"),
        _ => ("x.title", "x.title || ' ' || x.body"),
    };
    let visible = tx.visible_as(p, Table::brain(kind), "x", 4);
    let sql = format!(
        "SELECT x.id, {title}, CASE WHEN {} THEN ts_headline('simple', {text}, \
           plainto_tsquery('simple', $2), 'StartSel=«, StopSel=», MaxWords=24, MinWords=8') \
           ELSE '' END AS snippet \
         FROM {t} x WHERE {visible} AND {}",
        in_ids(Backend::Postgres, "x.id", 3),
        in_ids(Backend::Postgres, "x.id", 1),
    );
    let all: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
    let top = &all[..all.len().min(shown as usize)];
    let rows = tx
        .fetch_all(
            visible.bind(
                sqlx::query(&sql)
                    .bind(ids_param(Backend::Postgres, &all))
                    .bind(query)
                    .bind(ids_param(Backend::Postgres, top)),
            ),
        )
        .await?;
    let mut found: HashMap<String, (String, String)> = HashMap::new();
    for row in rows {
        found.insert(row.col("id")?, (row.col("title")?, row.col("snippet")?));
    }
    Ok(ranked
        .iter()
        .filter_map(|(id, score)| {
            let (title, snippet) = found.remove(id)?;
            Some(Lexical {
                id: id.clone(),
                title,
                snippet,
                score: *score,
            })
        })
        .collect())
}

/// The condition "`column` is one of the ids bound as `$n`" (see [`ids_param`]): one
/// statement text for any number of ids, so it is prepared once.
fn in_ids(backend: Backend, column: &str, n: u32) -> String {
    match backend {
        Backend::Postgres => format!("{column} = ANY(string_to_array(${n}, ','))"),
        Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each(${n}))"),
    }
}

/// Ids as one parameter for [`in_ids`]: comma-separated on PostgreSQL (ids are UUIDs,
/// never holding a comma), a JSON array on SQLite.
fn ids_param(backend: Backend, ids: &[&str]) -> String {
    match backend {
        Backend::Postgres => ids.join(","),
        Backend::Sqlite => serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()),
    }
}

impl FromRow for Lexical {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Lexical> {
        Ok(Lexical {
            id: row.col("id")?,
            title: row.col("title")?,
            snippet: row.col("snippet")?,
            score: row.col("score")?,
        })
    }
}

/// SQLite: FTS5's bm25 (lower is better; a title word weighs 10, a body word 1), over
/// at most [`RANK_CAP`] of the caller's newest matches.
async fn lexical_sqlite(
    tx: &mut Tx<'_>,
    p: &Principal,
    kind: BrainKind,
    query: &str,
    limit: u32,
) -> Result<Vec<Lexical>> {
    let t = table(kind);
    // The oldest match still ranked: the RANK_CAP-th newest visible one, if there are
    // that many (FTS5 walks its matches newest first and stops there).
    let visible = tx.visible_as(p, Table::brain(kind), "x", 3);
    let floor_sql = tx
        .sql(&format!(
            "SELECT x.seq FROM {t}_fts JOIN {t} x ON x.seq = {t}_fts.rowid \
             WHERE {t}_fts MATCH $1 AND {visible} ORDER BY {t}_fts.rowid DESC LIMIT 1 OFFSET $2"
        ))
        .into_owned();
    let floor: i64 = match tx
        .fetch_optional(visible.bind(sqlx::query(&floor_sql).bind(query).bind(RANK_CAP - 1)))
        .await?
    {
        Some(row) => row.col("seq")?,
        None => 0,
    };
    let (title, snippet, bm25) = match kind {
        BrainKind::Memory => (
            "x.text AS title",
            format!("snippet({t}_fts, 0, '«', '»', '…', 24)"),
            format!("bm25({t}_fts)"),
        ),
        _ => (
            "x.title",
            format!("snippet({t}_fts, -1, '«', '»', '…', 16)"),
            format!("bm25({t}_fts, 10.0, 1.0)"),
        ),
    };
    let visible = tx.visible_as(p, Table::brain(kind), "x", 4);
    let sql = tx
        .sql(&format!(
            "SELECT x.id, {title}, {snippet} AS snippet, -{bm25} AS score \
             FROM {t}_fts JOIN {t} x ON x.seq = {t}_fts.rowid \
             WHERE {t}_fts MATCH $1 AND {t}_fts.rowid >= $3 AND {visible} \
             ORDER BY {bm25}, x.id DESC LIMIT $2"
        ))
        .into_owned();
    let rows = tx
        .fetch_all(
            visible.bind(
                sqlx::query(&sql)
                    .bind(query)
                    .bind(i64::from(limit))
                    .bind(floor),
            ),
        )
        .await?;
    rows.iter().map(Lexical::from_row).collect()
}

/// A memory's text as a hit title: its first line, shortened.
fn memory_title(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(MEMORY_TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// The first words of a body (a memory's text), for hits found by meaning only.
fn excerpt(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(EXCERPT_WORDS + 1).collect();
    if words.len() > EXCERPT_WORDS {
        format!("{}…", words[..EXCERPT_WORDS].join(" "))
    } else {
        words.join(" ")
    }
}

/// Title and excerpt of hits that only the vector list found.
async fn describe(
    tx: &mut Tx<'_>,
    p: &Principal,
    kind: BrainKind,
    ids: &[&str],
) -> Result<HashMap<String, (String, String)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let visible = tx.visible(p, Table::brain(kind), 2);
    let sql = tx
        .sql(&format!(
            "SELECT id, {} FROM {} WHERE {visible} AND {}",
            text_columns(kind),
            table(kind),
            in_ids(tx.backend(), "id", 1),
        ))
        .into_owned();
    let query = visible.bind(sqlx::query(&sql).bind(ids_param(tx.backend(), ids)));
    let mut out = HashMap::new();
    for row in tx.fetch_all(query).await? {
        let title: String = row.col("title")?;
        let body: String = row.col("body")?;
        let (title, snippet) = match kind {
            BrainKind::Memory => (memory_title(&title), excerpt(&title)),
            // A task without a body is its title.
            _ if body.trim().is_empty() => (title.clone(), title),
            _ => (title, excerpt(&body)),
        };
        out.insert(row.col("id")?, (title, snippet));
    }
    Ok(out)
}

/// Best first: the fused score; between equals (say, the first task and the first
/// note by words) the stronger lexical match, then the nearer embedding.
fn better(a: &SearchHit, b: &SearchHit) -> std::cmp::Ordering {
    let lexical = |h: &SearchHit| h.scores.lexical_score.unwrap_or(f64::NEG_INFINITY);
    let similarity = |h: &SearchHit| h.scores.similarity.unwrap_or(f64::NEG_INFINITY);
    b.score
        .total_cmp(&a.score)
        .then_with(|| lexical(b).total_cmp(&lexical(a)))
        .then_with(|| similarity(b).total_cmp(&similarity(a)))
        .then_with(|| b.id.cmp(&a.id))
}

/// Give a hit the title and excerpt it lacks.
fn fill(hit: &mut SearchHit, (title, excerpt): (String, String)) {
    if hit.title.is_empty() {
        hit.title = title;
    }
    if hit.snippet.is_empty() {
        hit.snippet = excerpt;
    }
}

fn rrf(rank: u32) -> f64 {
    1.0 / (RRF_K + f64::from(rank))
}

impl Store {
    /// [`Store::search_hybrid`] by words only.
    pub async fn search_brain(
        &self,
        p: &Principal,
        q: &str,
        kinds: &[BrainKind],
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        self.search_hybrid(p, q, kinds, limit, None).await
    }

    /// Tasks, notes and memories (or only the given kinds) visible to the caller that
    /// match `q`, best first: by words (every word must occur) and, with `vector` (the
    /// embedding of `q`), by meaning, fused by reciprocal rank. A `q` without words
    /// finds nothing.
    #[tracing::instrument(name = "store.search_brain", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn search_hybrid(
        &self,
        p: &Principal,
        q: &str,
        kinds: &[BrainKind],
        limit: u32,
        vector: Option<&QueryVector>,
    ) -> Result<Vec<SearchHit>> {
        let limit = limit.clamp(1, MAX_HITS);
        let Some(query) = text_query(self.backend(), q) else {
            return Ok(Vec::new());
        };
        let kinds: Vec<BrainKind> = ALL_KINDS
            .into_iter()
            .filter(|k| kinds.is_empty() || kinds.contains(k))
            .collect();
        // How deep each list is read: deeper than `limit`, so that an item ranked
        // modestly in both lists can still make the cut.
        let depth = (limit * 3).clamp(30, 2 * MAX_HITS);
        // Words and meaning are read side by side, each in a transaction of its own:
        // on SQLite the scan of the vector index runs on a thread of its own while
        // FTS5 ranks, on PostgreSQL the two queries run on two connections.
        let words = async {
            let mut tx = self.begin(Acting::As(p), false).await?;
            let lists = lexical(&mut tx, p, &kinds, &query, depth, limit).await?;
            tx.commit().await?;
            Ok::<_, crate::StoreError>(lists)
        };
        let meaning = async {
            let Some(vector) = vector else {
                return Ok((Vec::new(), HashMap::new()));
            };
            let mut tx = self.begin(Acting::As(p), false).await?;
            let near = self.nearest(&mut tx, p, &kinds, vector, depth).await?;
            // Their titles and excerpts too, while the transaction is open: most hybrid
            // answers hold hits that only meaning found.
            let mut described = HashMap::new();
            for kind in kinds.iter().copied() {
                let ids: Vec<&str> = near
                    .iter()
                    .filter(|n| n.kind == kind)
                    .map(|n| n.id.as_str())
                    .collect();
                for (id, text) in describe(&mut tx, p, kind, &ids).await? {
                    described.insert((kind, id), text);
                }
            }
            tx.commit().await?;
            Ok::<_, crate::StoreError>((near, described))
        };
        // A search holds two connections at once. Were every connection of the pool
        // held by a search waiting for its second, none would ever get it (a freeze
        // until the pool's timeout): at most half the pool searches at a time.
        let _pair = self.paired_reads().acquire().await;
        let (lists, (near, mut described)) = tokio::try_join!(words, meaning)?;

        let mut hits: Vec<SearchHit> = Vec::new();
        let mut at: HashMap<(BrainKind, String), usize> = HashMap::new();
        for (kind, found) in lists {
            for (rank, l) in (1u32..).zip(found) {
                let title = match kind {
                    BrainKind::Memory => memory_title(&l.title),
                    _ => l.title,
                };
                at.insert((kind, l.id.clone()), hits.len());
                hits.push(SearchHit {
                    kind,
                    id: l.id,
                    title,
                    snippet: l.snippet,
                    score: rrf(rank),
                    scores: ScoreParts {
                        lexical_rank: Some(rank),
                        lexical_score: Some(l.score),
                        ..ScoreParts::default()
                    },
                });
            }
        }
        for (rank, n) in (1u32..).zip(near) {
            let key = (n.kind, n.id.clone());
            let i = match at.get(&key) {
                Some(&i) => i,
                None => {
                    at.insert(key, hits.len());
                    hits.push(SearchHit {
                        kind: n.kind,
                        id: n.id,
                        title: String::new(),
                        snippet: String::new(),
                        score: 0.0,
                        scores: ScoreParts::default(),
                    });
                    hits.len() - 1
                }
            };
            let hit = &mut hits[i];
            hit.score += rrf(rank);
            hit.scores.vector_rank = Some(rank);
            hit.scores.similarity = Some(n.similarity);
        }
        hits.sort_by(better);
        hits.truncate(limit as usize);
        // Titles and excerpts of hits that have none yet: found by meaning only (read
        // above), or by words too far down their list for a headline.
        for hit in hits.iter_mut() {
            if let Some(text) = described.remove(&(hit.kind, hit.id.clone())) {
                fill(hit, text);
            }
        }
        if hits
            .iter()
            .any(|h| h.title.is_empty() || h.snippet.is_empty())
        {
            let mut tx = self.begin(Acting::As(p), false).await?;
            for kind in kinds.iter().copied() {
                let ids: Vec<&str> = hits
                    .iter()
                    .filter(|h| h.kind == kind && (h.title.is_empty() || h.snippet.is_empty()))
                    .map(|h| h.id.as_str())
                    .collect();
                let described = describe(&mut tx, p, kind, &ids).await?;
                for hit in hits.iter_mut().filter(|h| h.kind == kind) {
                    if let Some(text) = described.get(&hit.id) {
                        fill(hit, text.clone());
                    }
                }
            }
            tx.commit().await?;
        }
        // A neighbour that vanished between the reads has no title: drop it.
        hits.retain(|h| !h.title.is_empty());
        hits.sort_by(better);
        hits.truncate(limit as usize);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_titles_and_excerpts_are_short() {
        assert_eq!(memory_title("first line\nsecond"), "first line");
        let long = "x".repeat(200);
        assert_eq!(memory_title(&long).chars().count(), MEMORY_TITLE_CHARS + 1);
        let text = (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
        assert!(excerpt(&text).ends_with('…'));
        assert_eq!(excerpt("a  b\nc"), "a b c");
    }

    #[test]
    fn fused_scores_prefer_agreement() {
        // First in one list only vs. third in both: agreement wins.
        assert!(rrf(3) + rrf(3) > rrf(1));
    }
}
