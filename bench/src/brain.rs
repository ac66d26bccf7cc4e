//! `mosaic-bench brain`: top-10 hybrid search over 100,000 memories with 384-dimension
//! embeddings, on SQLite and on PostgreSQL with pgvector, against the targets
//! (p50 and p99 under 20 ms on SQLite, under 10 ms on PostgreSQL).
//!
//! The store is driven in-process through `mosaic-store`'s own operations (no HTTP,
//! so the figures are the store's): a measured user owns the memories, a second user
//! owns 5% as many more, which every search must leave out. The data is generated
//! from fixed seeds (see [`data`]), so runs and engines are comparable. Per engine the
//! report gives load rates, the first search (on SQLite it loads the in-process vector
//! index), and timed series of hybrid, lexical-only and vector-only searches, the last
//! with its recall@10 against exact brute-force neighbours computed here.

mod data;
mod measure;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mosaic_store::{Backend, Principal, Store, StoreOptions};
use mosaic_test_support::{ScratchPostgres, POSTGRES_URL_VAR};
use serde_json::{json, Value};

use data::Corpus;
use measure::{bounded, Latency, Mode};

const USAGE: &str = "\
usage: mosaic-bench brain [options]

  --memories N      memories of the measured user (default 100000); a second user
                    gets 5% as many, which no search of the first may return
  --dims N          embedding dimensions (default 384)
  --queries N       timed searches per series, after 50 warm-up ones (default 1000)
  --engines LIST    sqlite, postgres or both (default sqlite,postgres); postgres needs
                    MOSAIC_TEST_POSTGRES_URL, a superuser URL:
                        eval \"$(scripts/services.sh start-postgres)\"
  --concurrency N   concurrent writers while loading (default 8)

environment:
  MOSAIC_BENCH_KEEP_POSTGRES=1      keep the loaded PostgreSQL database, print its URL
  MOSAIC_BENCH_REUSE_POSTGRES=URL   search that database again, without loading";

/// Hybrid p50 and p99 targets, in milliseconds.
const SQLITE_TARGET_MS: f64 = 20.0;
const POSTGRES_TARGET_MS: f64 = 10.0;
const WARMUP: usize = 50;
const DATA_SEED: u64 = 0x6d6f_7361_6963;
const QUERY_SEED: u64 = 0x71_7565_7279;

/// The URL of a database an earlier run loaded and kept (`MOSAIC_BENCH_KEEP_POSTGRES`):
/// the PostgreSQL searches run on it, without loading.
const REUSE_VAR: &str = "MOSAIC_BENCH_REUSE_POSTGRES";

const SETUP_LIMIT: Duration = Duration::from_secs(120);
const LOAD_LIMIT: Duration = Duration::from_secs(3600);
const SEARCH_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    fn target_ms(self) -> f64 {
        match self {
            Engine::Sqlite => SQLITE_TARGET_MS,
            Engine::Postgres => POSTGRES_TARGET_MS,
        }
    }
}

struct Args {
    memories: usize,
    dims: usize,
    queries: usize,
    engines: Vec<Engine>,
    concurrency: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        memories: 100_000,
        dims: 384,
        queries: 1_000,
        engines: vec![Engine::Sqlite, Engine::Postgres],
        concurrency: 8,
    };
    // Skip the program name and `brain`.
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--memories" => args.memories = value("--memories")?.parse().context("--memories")?,
            "--dims" => args.dims = value("--dims")?.parse().context("--dims")?,
            "--queries" => args.queries = value("--queries")?.parse().context("--queries")?,
            "--concurrency" => {
                args.concurrency = value("--concurrency")?.parse().context("--concurrency")?
            }
            "--engines" => {
                args.engines = value("--engines")?
                    .split(',')
                    .map(|e| match e.trim() {
                        "sqlite" => Ok(Engine::Sqlite),
                        "postgres" => Ok(Engine::Postgres),
                        other => bail!("--engines: unknown engine {other} (sqlite, postgres)"),
                    })
                    .collect::<Result<_>>()?
            }
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!(
        (20..=10_000_000).contains(&args.memories),
        "--memories must be 20-10000000"
    );
    ensure!((2..=2000).contains(&args.dims), "--dims must be 2-2000");
    ensure!(
        (1..=1_000_000).contains(&args.queries),
        "--queries must be 1-1000000"
    );
    ensure!(
        (1..=256).contains(&args.concurrency),
        "--concurrency must be 1-256"
    );
    ensure!(!args.engines.is_empty(), "--engines names no engine");
    args.engines.dedup();
    Ok(args)
}

/// What one engine measured.
struct Figures {
    engine: Engine,
    /// None when the searches ran on a database loaded by an earlier run.
    load: Option<Load>,
    first_search: Duration,
    hybrid: Latency,
    lexical: Latency,
    vector: Latency,
    /// Vector-only hits among the exact 10 nearest.
    recall: f64,
    /// Hybrid searches whose answer holds the memory the query was made from.
    source_found: f64,
    /// Mean number of lexical-only hits (at most 10).
    lexical_hits: f64,
    /// Size of the SQLite database files.
    db_bytes: Option<u64>,
}

impl Figures {
    fn met(&self) -> (bool, bool) {
        let t = self.engine.target_ms();
        (self.hybrid.p50 < t, self.hybrid.p99 < t)
    }
}

/// How long loading took.
#[derive(Clone, Copy)]
struct Load {
    create: Duration,
    embed: Duration,
    /// PostgreSQL: the `VACUUM ANALYZE` after loading.
    settle: Option<Duration>,
}

/// The scratch database of a store, removed when dropped (after the store).
struct Scratch {
    /// SQLite's file lives here.
    dir: Option<tempfile::TempDir>,
    _postgres: Option<ScratchPostgres>,
}

async fn open(engine: Engine, concurrency: usize) -> Result<(Store, Scratch)> {
    let max_connections = concurrency.max(2) as u32;
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().context("creating a scratch directory")?;
            let mut options = StoreOptions::sqlite_file(&dir.path().join("mosaic.db"));
            options.max_connections = max_connections;
            let store = Store::open(&options).await?;
            Ok((
                store,
                Scratch {
                    dir: Some(dir),
                    _postgres: None,
                },
            ))
        }
        Engine::Postgres => {
            let scratch = ScratchPostgres::create().await;
            let mut options = StoreOptions::new(&scratch.url);
            options.max_connections = max_connections;
            let store = Store::open(&options).await?;
            ensure!(
                store.backend() == Backend::Postgres,
                "not a PostgreSQL store"
            );
            Ok((
                store,
                Scratch {
                    dir: None,
                    _postgres: Some(scratch),
                },
            ))
        }
    }
}

/// Vacuum and analyse the scratch database, as its owner.
async fn vacuum(url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to vacuum")?;
    sqlx::raw_sql("VACUUM (ANALYZE)")
        .execute(&mut conn)
        .await
        .context("VACUUM (ANALYZE)")?;
    conn.close().await.context("closing")?;
    Ok(())
}

fn files_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn measure_engine(
    engine: Engine,
    args: &Args,
    corpus: &Corpus,
    queries: &[data::Query],
    exact: &[Vec<usize>],
) -> Result<Figures> {
    let name = engine.name();
    let model = format!("bench-embedding-{}", corpus.dims);
    let (timed, warmup) = queries.split_at(args.queries);
    let reuse_url = match engine {
        Engine::Postgres => std::env::var(REUSE_VAR).ok().filter(|u| !u.is_empty()),
        Engine::Sqlite => None,
    };
    if let Some(url) = reuse_url {
        eprintln!("mosaic-bench: {name}: searching the database loaded earlier at {url}…");
        let (store, alice, index_of) = bounded(
            "opening the loaded database",
            SETUP_LIMIT,
            reuse(&url, corpus),
        )
        .await?;
        let figures = searches(
            engine, &store, &alice, &model, &index_of, corpus, warmup, timed, exact,
        )
        .await?;
        return Ok(Figures {
            load: None,
            ..figures
        });
    }
    eprintln!("mosaic-bench: {name}: opening a scratch store…");
    let (store, scratch) = bounded(
        "opening the store",
        SETUP_LIMIT,
        open(engine, args.concurrency),
    )
    .await?;
    let (alice, bob) = bounded("creating users", SETUP_LIMIT, measure::users(&store)).await?;

    eprintln!(
        "mosaic-bench: {name}: creating {} memories…",
        corpus.texts.len()
    );
    let start = Instant::now();
    let ids = bounded(
        "creating memories",
        LOAD_LIMIT,
        measure::create(&store, corpus, &alice, &bob, args.concurrency),
    )
    .await?;
    let create = start.elapsed();
    let index_of: HashMap<String, usize> =
        ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();

    eprintln!("mosaic-bench: {name}: saving embeddings…");
    let start = Instant::now();
    let landed = bounded(
        "saving embeddings",
        LOAD_LIMIT,
        measure::embed(&store, corpus, &index_of, &model, args.concurrency),
    )
    .await?;
    let embed = start.elapsed();
    ensure!(
        landed == corpus.texts.len(),
        "{landed} of {} embeddings landed",
        corpus.texts.len()
    );

    // A gateway that has taken 100,000 writes is vacuumed and analysed by autovacuum
    // soon after; doing it now keeps that work (a core of this machine for a minute,
    // the HNSW index included) out of the timed series, and gives the planner the
    // statistics of the data it searches.
    let settle = match &scratch._postgres {
        Some(pg) => {
            eprintln!("mosaic-bench: {name}: VACUUM ANALYZE…");
            let start = Instant::now();
            bounded("VACUUM ANALYZE", LOAD_LIMIT, vacuum(&pg.url)).await?;
            Some(start.elapsed())
        }
        None => None,
    };

    let figures = searches(
        engine, &store, &alice, &model, &index_of, corpus, warmup, timed, exact,
    )
    .await?;
    let figures = Figures {
        load: Some(Load {
            create,
            embed,
            settle,
        }),
        db_bytes: scratch.dir.as_ref().map(|dir| files_size(dir.path())),
        ..figures
    };
    // The store's connections go before its database does.
    drop(store);
    // MOSAIC_BENCH_KEEP_POSTGRES=1 keeps the loaded database for a look with psql, or
    // for more searches with MOSAIC_BENCH_REUSE_POSTGRES.
    if std::env::var_os("MOSAIC_BENCH_KEEP_POSTGRES").is_some() {
        if let Some(pg) = &scratch._postgres {
            eprintln!("mosaic-bench: keeping the PostgreSQL database: {}", pg.url);
        }
        std::mem::forget(scratch);
    } else {
        drop(scratch);
    }
    Ok(figures)
}

/// The store of a database an earlier run loaded and kept, its measured user, and
/// memory ids by corpus index (found by text).
async fn reuse(url: &str, corpus: &Corpus) -> Result<(Store, Principal, HashMap<String, usize>)> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {REUSE_VAR}"))?;
    // The gateway's own role may read every tenant's rows.
    sqlx::query("SELECT set_config('mosaic.role', 'system', false)")
        .execute(&mut conn)
        .await?;
    let alice: String = sqlx::query("SELECT id FROM users WHERE username = 'alice'")
        .fetch_optional(&mut conn)
        .await?
        .context("no user alice: was this database loaded by mosaic-bench brain?")?
        .try_get("id")?;
    let by_text: HashMap<&str, usize> = corpus
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut index_of = HashMap::new();
    for row in sqlx::query("SELECT id, text FROM memories")
        .fetch_all(&mut conn)
        .await?
    {
        let text: String = row.try_get("text")?;
        let i = *by_text
            .get(text.as_str())
            .context("a memory not in this corpus: load with the same --memories and --dims")?;
        index_of.insert(row.try_get("id")?, i);
    }
    ensure!(
        index_of.len() == corpus.texts.len(),
        "{} memories in the database, {} in the corpus: load with the same --memories",
        index_of.len(),
        corpus.texts.len()
    );
    conn.close().await?;
    let store = Store::open(&StoreOptions::new(url)).await?;
    Ok((store, Principal::user(&alice, false), index_of))
}

/// The first search and the timed series, on a loaded store.
#[allow(clippy::too_many_arguments)]
async fn searches(
    engine: Engine,
    store: &Store,
    alice: &Principal,
    model: &str,
    index_of: &HashMap<String, usize>,
    corpus: &Corpus,
    warmup: &[data::Query],
    timed: &[data::Query],
    exact: &[Vec<usize>],
) -> Result<Figures> {
    eprintln!(
        "mosaic-bench: {}: first search, then timed series…",
        engine.name()
    );
    let start = Instant::now();
    bounded(
        "the first search",
        SEARCH_LIMIT,
        measure::search(store, alice, model, Mode::Vector, &warmup[0]),
    )
    .await?;
    let first_search = start.elapsed();

    let mut series = HashMap::new();
    for mode in [Mode::Hybrid, Mode::Lexical, Mode::Vector] {
        let s = bounded(
            &format!("the {} series", mode.name()),
            SEARCH_LIMIT,
            measure::series(store, alice, model, mode, warmup, timed),
        )
        .await?;
        // Fails on any hit of the other tenant.
        let found = measure::hit_indexes(&s, index_of, corpus.main, mode)?;
        series.insert(mode, (Latency::of(&s.times), found));
    }
    let (hybrid, hybrid_found) = &series[&Mode::Hybrid];
    let (lexical, lexical_found) = &series[&Mode::Lexical];
    let (vector, vector_found) = &series[&Mode::Vector];
    let source_found = hybrid_found
        .iter()
        .zip(timed)
        .filter(|(hits, q)| hits.contains(&q.source))
        .count() as f64
        / timed.len() as f64;
    let lexical_hits =
        lexical_found.iter().map(Vec::len).sum::<usize>() as f64 / timed.len() as f64;
    Ok(Figures {
        engine,
        load: None,
        first_search,
        hybrid: *hybrid,
        lexical: *lexical,
        vector: *vector,
        recall: measure::recall(vector_found, exact, measure::TOP as usize),
        source_found,
        lexical_hits,
        db_bytes: None,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met {
        "ok"
    } else {
        "MISSED"
    }
}

fn report(args: &Args, corpus: &Corpus, figures: &[Figures]) {
    let n = corpus.texts.len();
    println!(
        "mosaic-bench brain: {} + {} memories (second user), {} dims, top-{} searches, \
         {} timed after {WARMUP} warm-up, one at a time",
        corpus.main,
        n - corpus.main,
        corpus.dims,
        measure::TOP,
        args.queries
    );
    for f in figures {
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!();
        println!("{}", f.engine.name());
        match f.load {
            Some(load) => println!(
                "  load: create {:.1} s ({:.0}/s), embed {:.1} s ({:.0}/s), {} writers",
                load.create.as_secs_f64(),
                rate(load.create),
                load.embed.as_secs_f64(),
                rate(load.embed),
                args.concurrency
            ),
            None => println!("  load: none, searched a database loaded earlier ({REUSE_VAR})"),
        }
        if let Some(bytes) = f.db_bytes {
            println!("  database files {:.1} MiB", bytes as f64 / 1_048_576.0);
        }
        if let Some(settle) = f.load.and_then(|l| l.settle) {
            println!(
                "  VACUUM ANALYZE after loading: {:.1} s",
                settle.as_secs_f64()
            );
        }
        let first = match f.engine {
            Engine::Sqlite => "loads the in-process vector index",
            Engine::Postgres => "cold",
        };
        println!(
            "  first vector search ({first}): {:.1} ms",
            ms(f.first_search)
        );
        println!(
            "  {:<26} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "latency, ms", "mean", "p50", "p95", "p99", "max"
        );
        for (label, l) in [
            ("hybrid (2 words + vector)", f.hybrid),
            ("lexical only (2 words)", f.lexical),
            ("vector only", f.vector),
        ] {
            println!(
                "  {label:<26} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.mean, l.p50, l.p95, l.p99, l.max
            );
        }
        println!(
            "  vector-only recall@10 vs exact cosine: {:.3}; hybrid answers holding the \
             query's source memory: {:.1}%; lexical hits per query: {:.1}",
            f.recall,
            f.source_found * 100.0,
            f.lexical_hits
        );
        let (p50, p99) = f.met();
        println!(
            "  target: hybrid p50 < {t} ms ........ {}; p99 < {t} ms ........ {}",
            verdict(p50),
            verdict(p99),
            t = f.engine.target_ms()
        );
        println!("  tenancy: no search returned the second user's memories ........ ok");
    }
}

fn figures_json(args: &Args, corpus: &Corpus, figures: &[Figures]) -> Value {
    let n = corpus.texts.len();
    let engines: serde_json::Map<String, Value> = figures
        .iter()
        .map(|f| {
            let (p50, p99) = f.met();
            let value = json!({
                "create_s": f.load.map(|l| l.create.as_secs_f64()),
                "create_per_s": f.load.map(|l| n as f64 / l.create.as_secs_f64()),
                "embed_s": f.load.map(|l| l.embed.as_secs_f64()),
                "embed_per_s": f.load.map(|l| n as f64 / l.embed.as_secs_f64()),
                "db_bytes": f.db_bytes,
                "vacuum_s": f.load.and_then(|l| l.settle).map(|d| d.as_secs_f64()),
                "first_search_ms": ms(f.first_search),
                "hybrid_ms": f.hybrid.json(),
                "lexical_ms": f.lexical.json(),
                "vector_ms": f.vector.json(),
                "vector_recall_at_10": f.recall,
                "hybrid_source_found": f.source_found,
                "lexical_hits_per_query": f.lexical_hits,
                "target_ms": f.engine.target_ms(),
                "target_p50_met": p50,
                "target_p99_met": p99,
                "tenancy_ok": true,
            });
            (f.engine.name().to_string(), value)
        })
        .collect();
    json!({
        "memories": corpus.main,
        "other_user_memories": n - corpus.main,
        "dims": corpus.dims,
        "queries": args.queries,
        "warmup": WARMUP,
        "top": measure::TOP,
        "concurrency": args.concurrency,
        "engines": engines,
    })
}

pub fn run() -> Result<()> {
    let args = parse_args()?;
    if args.engines.contains(&Engine::Postgres)
        && std::env::var(POSTGRES_URL_VAR).map_or(true, |v| v.is_empty())
    {
        bail!(
            "--engines includes postgres, but {POSTGRES_URL_VAR} is not set. Start a \
             throwaway PostgreSQL with pgvector and export its superuser URL with\n\n    \
             eval \"$(scripts/services.sh start-postgres)\"\n\n(stop it afterwards with \
             scripts/services.sh stop-postgres), or pass --engines sqlite."
        );
    }
    let other = (args.memories / 20).max(1);
    eprintln!(
        "mosaic-bench: generating {} + {other} memories of {} dims…",
        args.memories, args.dims
    );
    let corpus = Corpus::generate(DATA_SEED, args.memories, other, args.dims);
    let queries = corpus.queries(QUERY_SEED, args.queries + WARMUP);
    eprintln!("mosaic-bench: exact nearest neighbours of the timed queries…");
    let exact = corpus.exact_nearest(&queries[..args.queries], measure::TOP as usize);
    ensure!(
        exact.len() == args.queries,
        "exact neighbours of {} of {} queries",
        exact.len(),
        args.queries
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut figures = Vec::new();
    for &engine in &args.engines {
        let f = runtime.block_on(measure_engine(engine, &args, &corpus, &queries, &exact))?;
        figures.push(f);
    }
    report(&args, &corpus, &figures);
    println!();
    println!("{}", figures_json(&args, &corpus, &figures));
    Ok(())
}
