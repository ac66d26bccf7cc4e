//! `mosaic-bench agent`: how fast an agent run's live events reach the people watching
//! the session, and how many events a second one session fans out to many of them.
//!
//! A scripted model runs inside this process and answers every call at once, in one
//! write, so what is measured is the gateway: storing the message, starting the run,
//! resolving the route, calling the model, numbering each event and writing it to every
//! subscriber. Two phases, each against one session of a real `mosaic serve` (SQLite):
//!
//! 1. latency: one subscriber follows the session; runs are posted one after the other
//!    and the time from sending each `POST .../messages` to the first `text_delta` at
//!    the subscriber is recorded, with the arrival of the run's other events (and of the
//!    call at the model) to show where the time goes;
//! 2. fan-out: many subscribers follow one session while runs stream long answers; every
//!    subscriber must get every event (consecutive numbers, no `resync`).
//!
//! The scripted model is in [`upstream`], the API calls and the SSE reader in [`api`],
//! the phases in [`latency`] and [`fanout`], the printed and JSON report in [`report`].

pub(crate) mod api;
mod fanout;
mod latency;
mod report;
pub(crate) mod upstream;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::server::Launcher;
use upstream::Upstream;

const FIRST_DELTA_TARGET_MS: f64 = 2.0;
/// The provider name the gateway knows the scripted model by, and the agent's route.
const PROVIDER: &str = "bench";
const ROUTE: &str = "bench/scripted";
/// Text chunks of each answer in the latency phase (only the first is timed).
const SHORT_ANSWER: usize = 5;
/// Longest one run may take, from its POST to the end at every subscriber.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Once one subscriber saw a run end, how long the others may take to see it too.
const STRAGGLER_GRACE: Duration = Duration::from_secs(10);
const USAGE: &str = "\
usage: mosaic-bench agent [MOSAIC_BINARY] [options]

  MOSAIC_BINARY        the mosaic binary to measure (default target/release/mosaic)
  --runs N             timed runs of the latency phase (default 300)
  --warmup N           runs before them, not timed (default 20)
  --subscribers N      subscribers of the fan-out phase (default 100)
  --chunks N           text chunks per answer in the fan-out phase (default 2000)
  --fanout-runs N      runs of the fan-out phase, after one not counted (default 5)";

struct Args {
    binary: std::path::PathBuf,
    runs: usize,
    warmup: usize,
    subscribers: usize,
    chunks: usize,
    fanout_runs: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: Default::default(),
        runs: 300,
        warmup: 20,
        subscribers: 100,
        chunks: 2000,
        fanout_runs: 5,
    };
    let mut binary = None;
    // Skip the program name and `agent`.
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize> {
            let text = it.next().with_context(|| format!("{name} needs a value"))?;
            text.parse().with_context(|| format!("{name} {text}"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--runs" => args.runs = number("--runs")?,
            "--warmup" => args.warmup = number("--warmup")?,
            "--subscribers" => args.subscribers = number("--subscribers")?,
            "--chunks" => args.chunks = number("--chunks")?,
            "--fanout-runs" => args.fanout_runs = number("--fanout-runs")?,
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if binary.is_none() => binary = Some(std::path::PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!((1..=10_000).contains(&args.runs), "--runs must be 1-10000");
    ensure!(args.warmup <= 1000, "--warmup must be at most 1000");
    ensure!(
        (1..=500).contains(&args.subscribers),
        "--subscribers must be 1-500 (each is a connection, and a file, on both ends)"
    );
    ensure!(
        (1..=100_000).contains(&args.chunks),
        "--chunks must be 1-100000"
    );
    ensure!(
        (1..=100).contains(&args.fanout_runs),
        "--fanout-runs must be 1-100"
    );
    args.binary = crate::mosaic_binary(binary)?;
    Ok(args)
}

/// A gateway on a scratch data directory with the scripted model as its default
/// agent's route, and the runtime that drives it (shared with `mosaic-bench soak`).
pub(crate) struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub upstream: Upstream,
    pub server: crate::server::Server,
    pub api: api::Api,
    /// The gateway's data directory and HOME: keep it until the gateway stopped.
    pub scratch: tempfile::TempDir,
}

impl Harness {
    pub fn start(binary: &std::path::Path) -> Result<Harness> {
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let home = scratch.path().join("home");
        std::fs::create_dir_all(&home)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let upstream = runtime.block_on(Upstream::start())?;
        let launcher = Launcher {
            binary: binary.to_path_buf(),
            home,
        };
        let server = launcher.start(&scratch.path().join("mosaic"))?;
        let bootstrap_token = server.bootstrap_token()?;
        let api = runtime
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(60),
                    api::prepare(&server.url(), &bootstrap_token, &upstream),
                )
                .await
            })
            .context("preparing the gateway took over 60 s")??;
        Ok(Harness {
            runtime,
            upstream,
            server,
            api,
            scratch,
        })
    }
}

pub fn run() -> Result<()> {
    let args = parse_args()?;
    let Harness {
        runtime,
        upstream,
        server,
        api,
        scratch: _scratch,
    } = Harness::start(&args.binary)?;
    let load_before = crate::llm::proc::load_average();

    eprintln!(
        "mosaic-bench agent: {} runs after {} warm-up, one subscriber…",
        args.runs, args.warmup
    );
    let lat = runtime
        .block_on(latency::run(&api, &upstream, &args))
        .with_context(|| format!("the latency phase; the gateway's log:\n{}", server.stderr()))?;
    eprintln!(
        "mosaic-bench agent: {} subscribers, {} runs of {} chunks…",
        args.subscribers,
        args.fanout_runs + 1,
        args.chunks
    );
    let fan = runtime
        .block_on(fanout::run(&api, &upstream, &server, &args))
        .with_context(|| format!("the fan-out phase; the gateway's log:\n{}", server.stderr()))?;
    let load_after = crate::llm::proc::load_average();
    server.stop()?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    report::print(&args, &lat, &fan, (load_before, load_after));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A percentile of sorted milliseconds (NaN when there are none).
fn pct(sorted: &[f64], q: f64) -> f64 {
    crate::percentile(sorted, q).unwrap_or(f64::NAN)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v
}
