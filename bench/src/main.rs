//! `mosaic-bench`: how fast the `mosaic` binary gets ready, how little memory it idles
//! in, and how many small authenticated reads it serves per second.
//!
//! Everything runs against real `mosaic serve` processes on loopback with scratch data
//! directories, through the public HTTP API only, and every phase is bounded in time.
//! The report is printed for people, followed by one JSON line for scripts.
//!
//! `mosaic-bench llm` is the second mode: streamed model calls through Mosaic's
//! OpenAI-compatible endpoint against a scripted upstream, next to the upstream alone
//! and LiteLLM's proxy (see the `llm` module). `mosaic-bench agent` is the third: how
//! fast an agent run's live events reach a session's subscribers (see the `agent` module).
//! `mosaic-bench brain` drives the store in-process: hybrid search over 100,000
//! memories with embeddings, on SQLite and PostgreSQL (see the `brain` module).
//! `mosaic-bench soak` runs a mixed load for an hour and checks that the resident
//! memory stays flat (see the `soak` module).

mod agent;
mod brain;
mod llm;
mod load;
mod otel;
mod server;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mosaic_api::{CreateWorkspaceRequest, PageQuery};
use serde_json::json;

use crate::server::Launcher;

const READY_TARGET_MS: f64 = 150.0;
const IDLE_RSS_TARGET_MIB: f64 = 20.0;
const WORKSPACES: usize = 10;
const LIST_PATH: &str = "/api/v1/workspaces?limit=20";
const USAGE: &str = "\
usage: mosaic-bench [MOSAIC_BINARY] [--runs N] [--clients N] [--duration SECS]
       mosaic-bench llm [MOSAIC_BINARY] [options]   (streamed model calls; llm --help)
       mosaic-bench agent [MOSAIC_BINARY] [options] (agent run events; agent --help)
       mosaic-bench otel [MOSAIC_BINARY] [options]  (trace export off vs on; otel --help)
       mosaic-bench brain [options]                 (hybrid search, 100k memories; brain --help)
       mosaic-bench soak [MOSAIC_BINARY] [options]  (resident memory over a long mixed load; soak --help)

  MOSAIC_BINARY   the mosaic binary to measure (default target/release/mosaic)
  --runs N        starts per start-up series (default 20)
  --clients N     concurrent clients in the throughput phase (default 50)
  --duration S    length of the throughput phase, e.g. 10, 10s, 500ms (default 10s)";

struct Args {
    binary: PathBuf,
    runs: usize,
    clients: usize,
    duration: Duration,
}

fn parse_duration(text: &str) -> Result<Duration> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1.0)
    };
    let secs: f64 = number
        .parse()
        .with_context(|| format!("--duration {text}: expected e.g. 10, 10s or 500ms"))?;
    ensure!(
        secs > 0.0 && secs * scale <= 3600.0,
        "--duration must be between 0 and 1 hour"
    );
    Ok(Duration::from_secs_f64(secs * scale))
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: PathBuf::new(),
        runs: 20,
        clients: 50,
        duration: Duration::from_secs(10),
    };
    let mut binary = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--runs" => args.runs = value("--runs")?.parse().context("--runs")?,
            "--clients" => args.clients = value("--clients")?.parse().context("--clients")?,
            "--duration" => args.duration = parse_duration(&value("--duration")?)?,
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if binary.is_none() => binary = Some(PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(
        (1..=1000).contains(&args.clients),
        "--clients must be 1-1000"
    );
    args.binary = mosaic_binary(binary)?;
    Ok(args)
}

/// The binary given, else `target/release/mosaic`, else the `mosaic` next to this
/// program (when run from elsewhere than the workspace root).
fn mosaic_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    let binary = match given {
        Some(b) => b,
        None => {
            let default = PathBuf::from("target/release/mosaic");
            match std::env::current_exe()?.parent() {
                Some(dir) if !default.exists() => dir.join("mosaic"),
                _ => default,
            }
        }
    };
    if !binary.is_file() {
        bail!(
            "no mosaic binary at {}; build it with `cargo build --release -p mosaic-cli`",
            binary.display()
        );
    }
    Ok(binary)
}

/// min, median and max, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    min: f64,
    p50: f64,
    max: f64,
}

fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last as f64 * q).round() as usize).copied()
}

fn spread(mut times: Vec<Duration>) -> Spread {
    times.sort_unstable();
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    Spread {
        min: ms(times.first().copied()),
        p50: ms(percentile(&times, 0.5)),
        max: ms(times.last().copied()),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met {
        "ok"
    } else {
        "MISSED"
    }
}

/// Create the first admin with the printed token, log in for a bearer token, and create
/// the workspaces the throughput phase lists.
async fn prepare(url: &str, bootstrap_token: &str) -> Result<String> {
    let token = crate::server::first_admin_token(url, bootstrap_token, "mosaic-bench").await?;
    let client = mosaic_client::Client::new(url, Some(token.clone()))?;
    for i in 1..=WORKSPACES {
        client
            .create_workspace(&CreateWorkspaceRequest {
                name: format!("workspace {i}"),
                description: Some(format!("benchmark workspace number {i}")),
                team_id: None,
            })
            .await
            .context("creating workspaces")?;
    }
    let page = client
        .list_workspaces(&PageQuery {
            cursor: None,
            limit: Some(20),
        })
        .await?;
    ensure!(
        page.items.len() == WORKSPACES,
        "expected {WORKSPACES} workspaces, the list has {}",
        page.items.len()
    );
    Ok(token)
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home)?;
    let launcher = Launcher {
        binary: args.binary.clone(),
        home,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    eprintln!(
        "mosaic-bench: {} starts on fresh data directories…",
        args.runs
    );
    let mut fresh = Vec::with_capacity(args.runs);
    let mut killed = 0;
    for _ in 0..args.runs {
        let dir = tempfile::tempdir_in(scratch.path())?;
        let server = launcher.start(dir.path())?;
        fresh.push(server.ready_after);
        killed += usize::from(!server.stop()?.graceful);
    }

    eprintln!(
        "mosaic-bench: idle memory, then {:?} of load…",
        args.duration
    );
    let data = scratch.path().join("main");
    let server = launcher.start(&data)?;
    std::thread::sleep(Duration::from_secs(1));
    let idle = server.memory_kib()?;
    let bootstrap_token = server.bootstrap_token()?;
    let url = server.url();
    let token = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), prepare(&url, &bootstrap_token)).await
        })
        .context("preparing the gateway took over 60 s")??;
    // Logging in hashes passwords with argon2id, which takes memory of its own.
    let prepared = server.memory_kib()?;
    let cpu_before = server.cpu_time()?;
    let target = format!("{url}{LIST_PATH}");
    let load = runtime
        .block_on(async {
            let limit = args.duration + Duration::from_secs(30);
            tokio::time::timeout(
                limit,
                load::run(&target, &token, args.clients, args.duration),
            )
            .await
        })
        .context("the load phase overran its time")??;
    let server_cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let loaded = server.memory_kib()?;
    let shutdown = server.stop()?;

    eprintln!(
        "mosaic-bench: {} starts on the existing data directory…",
        args.runs
    );
    let mut existing = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let server = launcher.start(&data)?;
        existing.push(server.ready_after);
        killed += usize::from(!server.stop()?.graceful);
    }

    let fresh = spread(fresh);
    let existing = spread(existing);
    let ok = load.latencies_us.len() as u64;
    let rps = ok as f64 / load.elapsed.as_secs_f64();
    let latency_ms =
        |q| percentile(&load.latencies_us, q).map_or(f64::NAN, |us| us as f64 / 1000.0);
    let (p50, p99) = (latency_ms(0.5), latency_ms(0.99));
    let server_cores = server_cpu.as_secs_f64() / load.elapsed.as_secs_f64();
    let ready_met = fresh.p50 < READY_TARGET_MS && existing.p50 < READY_TARGET_MS;
    let rss_met = mib(idle.rss_kib) < IDLE_RSS_TARGET_MIB;

    println!("mosaic-bench: {}", args.binary.display());
    println!();
    println!("start-up, spawn to /readyz 200 ({} runs each)", args.runs);
    println!("  {:<18} {:>7}    {:>7}    {:>7}", "", "min", "p50", "max");
    for (name, s) in [("fresh data dir", fresh), ("existing data dir", existing)] {
        println!(
            "  {name:<18} {:>7.1} ms {:>7.1} ms {:>7.1} ms",
            s.min, s.p50, s.max
        );
    }
    println!(
        "  target: p50 < {READY_TARGET_MS} ms ........ {}",
        verdict(ready_met)
    );
    println!();
    println!("memory (VmRSS)");
    println!(
        "  idle, 1 s after ready  {:>7.1} MiB  (own {:.1} MiB, binary and libraries {:.1} MiB)",
        mib(idle.rss_kib),
        mib(idle.anon_kib),
        mib(idle.file_kib)
    );
    println!(
        "  after admin setup      {:>7.1} MiB  (bootstrap, login: argon2id)",
        mib(prepared.rss_kib)
    );
    println!(
        "  after the load phase   {:>7.1} MiB  (peak {:.1} MiB)",
        mib(loaded.rss_kib),
        mib(loaded.peak_kib)
    );
    println!(
        "  target: idle < {IDLE_RSS_TARGET_MIB} MiB ........ {}",
        verdict(rss_met)
    );
    println!();
    println!(
        "throughput: GET {LIST_PATH} ({WORKSPACES} workspaces), {} clients, {:.1} s",
        args.clients,
        load.elapsed.as_secs_f64()
    );
    println!("  requests/s             {rps:>9.0}");
    println!("  latency p50 / p99      {p50:>7.2} ms / {p99:.2} ms");
    println!("  ok / errors            {ok} / {}", load.errors);
    println!(
        "  gateway CPU            {server_cores:>7.2} cores of {} (the clients use the rest)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "shutdown, SIGTERM to exit after the load: {:.1} ms ({})",
        shutdown.took.as_secs_f64() * 1000.0,
        if shutdown.graceful {
            "exit 0"
        } else {
            "killed by the signal"
        }
    );
    println!(
        "  SIGTERM right after ready killed {killed} of {} gateways outright (0 expected)",
        2 * args.runs
    );

    let spread_json = |s: Spread| json!({ "min": s.min, "p50": s.p50, "max": s.max });
    let figures = json!({
        "binary": args.binary.display().to_string(),
        "runs": args.runs,
        "ready_fresh_ms": spread_json(fresh),
        "ready_existing_ms": spread_json(existing),
        "idle_rss_kib": idle.rss_kib,
        "idle_anon_kib": idle.anon_kib,
        "idle_file_kib": idle.file_kib,
        "setup_rss_kib": prepared.rss_kib,
        "loaded_rss_kib": loaded.rss_kib,
        "peak_rss_kib": loaded.peak_kib,
        "clients": args.clients,
        "duration_s": load.elapsed.as_secs_f64(),
        "requests_ok": ok,
        "errors": load.errors,
        "requests_per_s": rps,
        "latency_ms": { "p50": p50, "p99": p99 },
        "gateway_cpu_cores": server_cores,
        "shutdown_ms": shutdown.took.as_secs_f64() * 1000.0,
        "shutdown_graceful": shutdown.graceful,
        "killed_by_early_sigterm": killed,
        "targets": {
            "ready_p50_ms": READY_TARGET_MS,
            "idle_rss_mib": IDLE_RSS_TARGET_MIB,
            "ready_met": ready_met,
            "idle_rss_met": rss_met,
        },
    });
    println!();
    println!("{figures}");
    Ok(())
}

fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        Some("llm") => llm::run(),
        Some("agent") => agent::run(),
        Some("otel") => otel::run(),
        Some("brain") => brain::run(),
        Some("soak") => soak::run(),
        _ => run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mosaic-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
