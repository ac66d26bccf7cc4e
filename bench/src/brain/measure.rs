//! Loading a store with the corpus through its public operations, and timing searches.
//!
//! Loading goes the way the gateway fills a store: `create_memory` per memory (each its
//! own transaction, with its text index), then the embedder's loop of
//! `pending_embeddings` and `save_embedding`, by `concurrency` workers at a time.
//! Searches run one at a time, as a single user's would, each timed from the call to
//! its answer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::future::try_join_all;
use mosaic_api::{BrainKind, CreateMemoryRequest};
use mosaic_store::{BootstrapSource, NewUser, Principal, QueryVector, Store};

use super::data::{Corpus, Query};

/// Every kind: the search the issue's target is about.
pub const ALL_KINDS: [BrainKind; 3] = [BrainKind::Task, BrainKind::Note, BrainKind::Memory];

/// A word no memory contains, so that only the vector list contributes hits.
pub const ABSENT_WORD: &str = "zzzqqq";

/// Hits per search: the issue's top 10.
pub const TOP: u32 = 10;

/// Pending items fetched per round of the embedder loop.
const EMBED_BATCH: u32 = 2_000;

/// Run `phase` for at most `limit`.
pub async fn bounded<T>(
    phase: &str,
    limit: Duration,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .with_context(|| format!("{phase} took over {} s", limit.as_secs()))?
        .with_context(|| format!("{phase} failed"))
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: String::new(),
        password_hash: format!("not-a-hash-of-{username}"),
        is_admin: false,
    }
}

/// The measured user and the other tenant, made by a first admin (bootstrapped as a
/// gateway does it).
pub async fn users(store: &Store) -> Result<(Principal, Principal)> {
    store
        .issue_bootstrap_token(
            BootstrapSource::Startup,
            "bench-bootstrap",
            mosaic_store::now_ms() + 3_600_000,
        )
        .await?;
    let root = store
        .redeem_bootstrap("bench-bootstrap", new_user("root"))
        .await?;
    let admin = Principal::user(&root.id, root.is_admin);
    let alice = store.create_user(&admin, new_user("alice")).await?;
    let bob = store.create_user(&admin, new_user("bob")).await?;
    Ok((
        Principal::user(&alice.id, alice.is_admin),
        Principal::user(&bob.id, bob.is_admin),
    ))
}

/// Prints `what: done/total` to stderr at every tenth.
struct Progress<'a> {
    what: &'a str,
    total: usize,
    done: AtomicUsize,
}

impl Progress<'_> {
    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let step = (self.total / 10).max(1);
        if done.is_multiple_of(step) || done == self.total {
            eprintln!("mosaic-bench:   {} {done}/{}", self.what, self.total);
        }
    }
}

/// Create every memory of the corpus (the first `corpus.main` as `main`, the rest as
/// `other`); returns their ids by corpus index.
pub async fn create(
    store: &Store,
    corpus: &Corpus,
    main: &Principal,
    other: &Principal,
    concurrency: usize,
) -> Result<Vec<String>> {
    let total = corpus.texts.len();
    let next = AtomicUsize::new(0);
    let progress = Progress {
        what: "created",
        total,
        done: AtomicUsize::new(0),
    };
    let worker = || async {
        let mut made = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                return Ok::<_, anyhow::Error>(made);
            }
            let p = if i < corpus.main { main } else { other };
            let request = CreateMemoryRequest {
                text: corpus.texts[i].clone(),
                ..CreateMemoryRequest::default()
            };
            let memory = store.create_memory(p, &request).await?;
            made.push((i, memory.id));
            progress.tick();
        }
    };
    let parts = try_join_all((0..concurrency).map(|_| worker())).await?;
    let mut ids = vec![String::new(); total];
    for (i, id) in parts.into_iter().flatten() {
        ids[i] = id;
    }
    ensure!(
        ids.iter().all(|id| !id.is_empty()),
        "some memories were not created"
    );
    Ok(ids)
}

/// The embedder's loop: fetch pending items, hand each its corpus vector, until none
/// is pending. Returns how many embeddings landed.
pub async fn embed(
    store: &Store,
    corpus: &Corpus,
    index_of: &HashMap<String, usize>,
    model: &str,
    concurrency: usize,
) -> Result<usize> {
    let progress = Progress {
        what: "embedded",
        total: corpus.texts.len(),
        done: AtomicUsize::new(0),
    };
    let mut landed = 0;
    loop {
        let batch = store.pending_embeddings(EMBED_BATCH).await?;
        if batch.is_empty() {
            return Ok(landed);
        }
        let next = AtomicUsize::new(0);
        let worker = || async {
            let mut saved = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = batch.get(i) else {
                    return Ok::<_, anyhow::Error>(saved);
                };
                let Some(&at) = index_of.get(&item.id) else {
                    bail!("pending item {} is not one of the benchmark's", item.id);
                };
                ensure!(item.input() == corpus.texts[at], "pending text differs");
                if store
                    .save_embedding(item, model, Some(corpus.vector(at)))
                    .await?
                {
                    saved += 1;
                    progress.tick();
                }
            }
        };
        let saved: usize = try_join_all((0..concurrency).map(|_| worker()))
            .await?
            .into_iter()
            .sum();
        // Nothing landing would loop for ever: the store refused every vector.
        ensure!(
            saved > 0,
            "no embedding of a batch of {} landed",
            batch.len()
        );
        landed += saved;
    }
}

/// Which half of hybrid search a series exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Two words and the vector: the issue's measurement.
    Hybrid,
    /// The two words only (`search_brain`).
    Lexical,
    /// The vector with a word found nowhere: only the nearest-neighbour list ranks.
    Vector,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Lexical => "lexical",
            Mode::Vector => "vector",
        }
    }
}

/// One search of a series; returns the hits' ids, best first.
pub async fn search(
    store: &Store,
    p: &Principal,
    model: &str,
    mode: Mode,
    q: &Query,
) -> Result<Vec<String>> {
    let vector = QueryVector {
        model: model.into(),
        values: q.vector.clone(),
    };
    let hits = match mode {
        Mode::Hybrid => {
            store
                .search_hybrid(p, &q.text, &ALL_KINDS, TOP, Some(&vector))
                .await?
        }
        Mode::Lexical => store.search_brain(p, &q.text, &ALL_KINDS, TOP).await?,
        Mode::Vector => {
            store
                .search_hybrid(p, ABSENT_WORD, &ALL_KINDS, TOP, Some(&vector))
                .await?
        }
    };
    Ok(hits.into_iter().map(|h| h.id).collect())
}

/// The timed searches of one mode: each query's time and hits.
pub struct Series {
    pub times: Vec<Duration>,
    pub hits: Vec<Vec<String>>,
}

/// `warmup` untimed searches, then one timed search per query, one at a time.
pub async fn series(
    store: &Store,
    p: &Principal,
    model: &str,
    mode: Mode,
    warmup: &[Query],
    timed: &[Query],
) -> Result<Series> {
    for q in warmup {
        search(store, p, model, mode, q).await?;
    }
    let mut out = Series {
        times: Vec::with_capacity(timed.len()),
        hits: Vec::with_capacity(timed.len()),
    };
    for q in timed {
        let start = Instant::now();
        let hits = search(store, p, model, mode, q).await?;
        out.times.push(start.elapsed());
        out.hits.push(hits);
    }
    Ok(out)
}

/// Latency figures of a series, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(times: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| match ms.len().checked_sub(1) {
            // Nearest rank.
            Some(last) => ms[((last as f64) * q).round() as usize],
            None => f64::NAN,
        };
        Latency {
            mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "mean": self.mean, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max,
        })
    }
}

/// The corpus indexes of a series' hits; fails on a hit of the other tenant (or one
/// the benchmark never made).
pub fn hit_indexes(
    series: &Series,
    index_of: &HashMap<String, usize>,
    main: usize,
    mode: Mode,
) -> Result<Vec<Vec<usize>>> {
    series
        .hits
        .iter()
        .map(|hits| {
            hits.iter()
                .map(|id| {
                    let Some(&at) = index_of.get(id) else {
                        bail!(
                            "{} search returned {id}, not a benchmark memory",
                            mode.name()
                        );
                    };
                    ensure!(
                        at < main,
                        "TENANCY: a {} search returned the other user's memory {id}",
                        mode.name()
                    );
                    Ok(at)
                })
                .collect()
        })
        .collect()
}

/// Mean share of the exact top `k` found in each answer's first `k`.
pub fn recall(found: &[Vec<usize>], exact: &[Vec<usize>], k: usize) -> f64 {
    let total: usize = found
        .iter()
        .zip(exact)
        .map(|(f, e)| {
            let e = &e[..k.min(e.len())];
            f.iter().take(k).filter(|i| e.contains(i)).count()
        })
        .sum();
    total as f64 / (found.len() * k).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&times);
        assert_eq!((l.p50, l.p99, l.max), (51.0, 99.0, 100.0));
        assert!((l.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn recall_counts_the_exact_neighbours_found() {
        let exact = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        let found = vec![vec![1, 2, 9, 4], vec![8, 7, 6, 5]];
        assert!((recall(&found, &exact, 4) - 7.0 / 8.0).abs() < 1e-9);
    }
}
