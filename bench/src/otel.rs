//! `mosaic-bench otel`: what exporting traces over OTLP costs the gateway, in throughput
//! and in latency, on an authenticated API call and on a streamed chat.
//!
//! Two gateways run side by side, each on a SQLite data directory of its own and set up
//! alike (an admin, an API token, 10 workspaces, a gateway provider pointing at the
//! scripted upstream of the `llm` benchmark, here answering at once): one exports its
//! spans over OTLP/HTTP to a sink inside this process (see [`sink`]), the other does not
//! export. Every phase and level is measured on one and then the other, in rounds that
//! alternate the order (OFF ON, ON OFF, …), so that a drift of the machine weighs the
//! same on both; the two are compared on their figures pooled over the rounds. The sink
//! counts what it receives, and the exporting gateway's `/metrics` counts what it
//! exported, dropped or failed: the report proves that export happened, and how much.

mod measure;
mod report;
mod sink;
mod threads;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::llm::proc;
use crate::llm::upstream::Upstream;
use crate::server::Launcher;
use sink::Sink;

/// Export may cost at most this share of throughput.
const MAX_THROUGHPUT_LOSS: f64 = 0.05;

const USAGE: &str = "\
usage: mosaic-bench otel [MOSAIC_BINARY] [options]

  MOSAIC_BINARY     the mosaic binary to measure (default target/release/mosaic)
  --rounds N        measurements of each phase and level on each gateway, the order
                    alternating (default 2: OFF ON, then ON OFF)
  --duration S      length of each measurement (default 5s)
  --clients N,N..   concurrent clients of the API call (default 1,50)
  --streams N,N..   concurrent streamed chats (default 1,50)
  --tokens N        tokens per scripted answer, all sent at once (default 20)";

struct Args {
    binary: PathBuf,
    rounds: usize,
    duration: Duration,
    clients: Vec<usize>,
    streams: Vec<usize>,
    tokens: usize,
}

fn parse_levels(name: &str, text: &str) -> Result<Vec<usize>> {
    let levels = text
        .split(',')
        .map(|n| n.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{name}: expected e.g. 1,50"))?;
    ensure!(
        !levels.is_empty() && levels.iter().all(|n| (1..=1000).contains(n)),
        "{name}: each must be 1-1000"
    );
    Ok(levels)
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: PathBuf::new(),
        rounds: 2,
        duration: Duration::from_secs(5),
        clients: vec![1, 50],
        streams: vec![1, 50],
        tokens: 20,
    };
    let mut binary = None;
    // Skip the program name and `otel`.
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--rounds" => args.rounds = value("--rounds")?.parse().context("--rounds")?,
            "--duration" => args.duration = crate::parse_duration(&value("--duration")?)?,
            "--clients" => args.clients = parse_levels("--clients", &value("--clients")?)?,
            "--streams" => args.streams = parse_levels("--streams", &value("--streams")?)?,
            "--tokens" => args.tokens = value("--tokens")?.parse().context("--tokens")?,
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if binary.is_none() => binary = Some(PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!((1..=20).contains(&args.rounds), "--rounds must be 1-20");
    ensure!(
        (1..=10_000).contains(&args.tokens),
        "--tokens must be 1-10000"
    );
    args.binary = crate::mosaic_binary(binary)?;
    Ok(args)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Off,
    On,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Off => "off",
            Export::On => "on",
        }
    }
}

/// The two measured requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Authenticated `GET /api/v1/workspaces?limit=20`.
    Api,
    /// Streamed `POST /v1/chat/completions`.
    Chat,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Api => "api",
            Phase::Chat => "chat",
        }
    }
}

/// `mosaic_trace_spans_total` from the gateway's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spans {
    exported: u64,
    dropped: u64,
    failed: u64,
}

impl Spans {
    fn since(self, before: Spans) -> Spans {
        Spans {
            exported: self.exported.saturating_sub(before.exported),
            dropped: self.dropped.saturating_sub(before.dropped),
            failed: self.failed.saturating_sub(before.failed),
        }
    }

    /// Spans the exporter was handed.
    fn handed(self) -> u64 {
        self.exported + self.dropped + self.failed
    }

    fn json(self) -> Value {
        json!({"exported": self.exported, "dropped": self.dropped, "failed": self.failed})
    }
}

pub fn run() -> Result<()> {
    let args = parse_args()?;
    // The gateways inherit this environment: an OTEL_ variable would reach the gateway
    // meant not to export, or change how the other does.
    let otel_vars: Vec<String> = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter(|key| key.starts_with("OTEL_"))
        .collect();
    ensure!(
        otel_vars.is_empty(),
        "unset {} first: every gateway inherits it",
        otel_vars.join(", ")
    );
    proc::raise_fd_limit();
    let load_before = proc::load_average();
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let sink = Sink::start()?;
    let upstream = runtime.block_on(Upstream::start(args.tokens, Duration::ZERO))?;
    eprintln!(
        "mosaic-bench otel: OTLP sink on {}, scripted upstream on {} ({} tokens at once)",
        sink.addr, upstream.addr, args.tokens
    );
    // A home and a data directory each; the exporting gateway's config file names the
    // sink.
    let launcher = |name: &str, config: Option<String>| -> Result<Launcher> {
        let home = scratch.path().join(name);
        let dir = home.join("config").join("mosaic");
        std::fs::create_dir_all(&dir)?;
        if let Some(config) = config {
            std::fs::write(dir.join("gateway.toml"), config)?;
        }
        Ok(Launcher {
            binary: args.binary.clone(),
            home,
        })
    };
    eprintln!("mosaic-bench otel: starting and setting up the two gateways…");
    let off = measure::start(
        &runtime,
        &launcher("home-off", None)?,
        &scratch.path().join("data-off"),
        Export::Off,
        &upstream,
    )?;
    let on = measure::start(
        &runtime,
        &launcher(
            "home-on",
            Some(format!("otlp_endpoint = \"{}\"\n", sink.endpoint())),
        )?,
        &scratch.path().join("data-on"),
        Export::On,
        &upstream,
    )?;

    let (busy_before, own_before, started) =
        (proc::machine_busy(), proc::own_cpu(), Instant::now());
    let cpu = |gw: &measure::Gateway| gw.cpu_time().unwrap_or_default();
    let gateways_before = cpu(&off) + cpu(&on);
    let samples = measure::measure_all(&runtime, &off, &on, &sink, &args)?;
    let wall_s = started.elapsed().as_secs_f64();
    let machine_s = proc::machine_busy()
        .saturating_sub(busy_before)
        .as_secs_f64();
    let ours_s = (proc::own_cpu().saturating_sub(own_before)
        + (cpu(&off) + cpu(&on)).saturating_sub(gateways_before))
    .as_secs_f64();
    let others_cores = (machine_s - ours_s).max(0.0) / wall_s;
    let load_after = proc::load_average();

    let gateways = [measure::stop(&runtime, off)?, measure::stop(&runtime, on)?];
    // Only the exporting gateway sends to the sink; it sent what was queued as it stopped.
    let received = sink.received();
    ensure!(
        received.requests > 0,
        "export was meant to be on, yet the sink received nothing"
    );
    report::print(&report::Outcome {
        args: &args,
        samples: &samples,
        gateways: &gateways,
        received,
        sink_cpu: sink.cpu(),
        sink: sink.addr,
        load: [load_before, load_after],
        others_cores,
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
