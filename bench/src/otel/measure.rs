//! The two gateways and their measurements: each is started on a data directory of its
//! own, set up and warmed up; then every phase and level is measured on one and the
//! other alternately, and finally each gateway's span counters are read and it is
//! stopped. Each measurement is framed by readings of the gateway's CPU, its exporter
//! thread's, the sink's, and `mosaic_trace_spans_total` from `/metrics`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mosaic_api::CreateWorkspaceRequest;

use super::sink::{Received, Sink};
use super::threads::{self, ThreadStats};
use super::{Args, Export, Phase, Spans};
use crate::llm::proc;
use crate::llm::streams::{self, Target};
use crate::llm::upstream::Upstream;
use crate::server::{Launcher, Server};

/// A little longer than the gateway's export interval (1 s): after it, the spans of a
/// measurement have reached the sink, and the next one starts with an empty queue.
const SETTLE: Duration = Duration::from_millis(1300);
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// The gateway's log line when it exports.
const EXPORTING_LOG: &str = "exporting traces over OTLP/HTTP";

/// A gateway under measurement, with what the clients need to reach it.
pub struct Gateway {
    export: Export,
    server: Server,
    url: String,
    token: String,
    chat: Target,
    /// The gateway logged that it exports.
    logged_export: bool,
}

/// CPU times and counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    gateway: Duration,
    /// The gateway's exporter thread.
    exporter: ThreadStats,
    /// All the gateway's threads.
    threads: ThreadStats,
    sink: Duration,
    /// This process: clients, upstream and sink.
    bench: Duration,
    received: Received,
    /// `None` when the gateway does not export.
    spans: Option<Spans>,
}

async fn read(gw: &Gateway, sink: &Sink) -> Result<Reading> {
    let spans = scrape_spans(&gw.url).await?;
    let pid = gw.server.child.id();
    Ok(Reading {
        gateway: gw.server.cpu_time()?,
        exporter: threads::named(pid, threads::GATEWAY_EXPORTER),
        threads: threads::named(pid, ""),
        sink: sink.cpu(),
        bench: proc::own_cpu(),
        received: sink.received(),
        spans,
    })
}

/// `GET /metrics` (the gateway serves it to loopback clients): the span counters, when
/// the gateway exports.
async fn scrape_spans(url: &str) -> Result<Option<Spans>> {
    let resp = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .context("GET /metrics")?;
    let status = resp.status();
    let text = resp.text().await.context("reading /metrics")?;
    ensure!(
        status.is_success(),
        "GET /metrics answered {status}: {text}"
    );
    parse_spans(&text)
}

/// `mosaic_trace_spans_total` from Prometheus text; `None` when it is not there.
fn parse_spans(text: &str) -> Result<Option<Spans>> {
    let mut spans = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("mosaic_trace_spans_total{result=\"") else {
            continue;
        };
        let Some((result, value)) = rest.split_once("\"}") else {
            continue;
        };
        let value: u64 = value
            .trim()
            .parse()
            .with_context(|| format!("/metrics: {line}"))?;
        let s = spans.get_or_insert_with(Spans::default);
        match result {
            "exported" => s.exported = value,
            "dropped" => s.dropped = value,
            "failed" => s.failed = value,
            _ => {}
        }
    }
    Ok(spans)
}

/// What the clients of one measurement saw.
pub struct Timed {
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// API call: latency; chat: time to first token. Microseconds, sorted.
    pub first_us: Vec<u64>,
    /// API call: latency; chat: request to `[DONE]`. Microseconds, sorted.
    pub end_us: Vec<u64>,
    /// Requests the gateway served that were not timed (the chat's opening streams).
    pub untimed: u64,
}

/// Measure one phase at one level, then wait until its spans have been exported.
async fn measure(
    gw: &Gateway,
    sink: &Sink,
    phase: Phase,
    level: usize,
    duration: Duration,
) -> Result<Measurement> {
    let limit = duration + 2 * STREAM_TIMEOUT + Duration::from_secs(30);
    let before = read(gw, sink).await?;
    let timed = match phase {
        Phase::Api => {
            let target = format!("{}{}", gw.url, crate::LIST_PATH);
            let load =
                tokio::time::timeout(limit, crate::load::run(&target, &gw.token, level, duration))
                    .await
                    .context("the API phase overran its time")??;
            Timed {
                errors: load.errors,
                first_error: (load.errors > 0)
                    .then(|| "non-200 answers, transport errors or timeouts".to_string()),
                elapsed: load.elapsed,
                first_us: load.latencies_us.clone(),
                end_us: load.latencies_us,
                untimed: 0,
            }
        }
        Phase::Chat => {
            let stats = tokio::time::timeout(
                limit,
                streams::run(&gw.chat, level, duration, STREAM_TIMEOUT, || {}),
            )
            .await
            .context("the chat phase overran its time")??;
            Timed {
                errors: stats.errors,
                first_error: stats.first_error,
                elapsed: stats.elapsed,
                first_us: stats.ttft_us,
                end_us: stats.total_us,
                untimed: level as u64,
            }
        }
    };
    tokio::time::sleep(SETTLE).await;
    let after = read(gw, sink).await?;
    Ok(Measurement {
        handled: timed.first_us.len() as u64 + timed.errors + timed.untimed,
        timed,
        gateway_cpu: after.gateway.saturating_sub(before.gateway),
        exporter: after.exporter.since(before.exporter),
        threads: after.threads.since(before.threads),
        sink_cpu: after.sink.saturating_sub(before.sink),
        bench_cpu: after.bench.saturating_sub(before.bench),
        received: after.received.since(before.received),
        spans: after.spans.zip(before.spans).map(|(a, b)| a.since(b)),
    })
}

/// One measurement with its CPU readings and what was exported meanwhile.
pub struct Measurement {
    pub timed: Timed,
    /// Requests the gateway handled between the readings.
    pub handled: u64,
    pub gateway_cpu: Duration,
    /// The gateway's exporter thread.
    pub exporter: ThreadStats,
    /// All the gateway's threads (their context switches).
    pub threads: ThreadStats,
    pub sink_cpu: Duration,
    pub bench_cpu: Duration,
    pub received: Received,
    pub spans: Option<Spans>,
}

/// A measurement and where it was taken.
pub struct Sample {
    pub round: usize,
    pub export: Export,
    pub phase: Phase,
    pub level: usize,
    pub m: Measurement,
}

impl Gateway {
    /// CPU time the gateway has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        self.server.cpu_time()
    }
}

/// A gateway at its end.
pub struct Summary {
    pub export: Export,
    pub ready_ms: f64,
    /// The gateway logged that it exports.
    pub logged_export: bool,
    /// `mosaic_trace_spans_total` after the last measurement (export on).
    pub spans: Option<Spans>,
    pub gateway_cpu: Duration,
    /// The gateway's exporter thread, over its whole life.
    pub exporter: ThreadStats,
    pub shutdown_ms: f64,
}

/// Whether the gateway's log has `needle`, waiting up to `wait` for it.
fn log_has(server: &Server, needle: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if server.stderr().contains(needle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A few seconds of light traffic on both requests: connections open, caches warm, and
/// proof that both are served before anything is measured.
async fn warm_up(gw: &Gateway) -> Result<()> {
    let target = format!("{}{}", gw.url, crate::LIST_PATH);
    let load = crate::load::run(&target, &gw.token, 4, Duration::from_secs(1)).await?;
    ensure!(
        load.errors == 0 && !load.latencies_us.is_empty(),
        "{} of {} warm-up API calls failed",
        load.errors,
        load.errors + load.latencies_us.len() as u64
    );
    crate::llm::warm_up(&gw.chat).await
}

/// Bootstrap the admin, add the upstream as a gateway provider, create the workspaces
/// the API call lists; answers the API token.
async fn set_up(url: &str, bootstrap: &str, upstream: &Upstream) -> Result<String> {
    let token = crate::llm::prepare_mosaic(url, bootstrap, &upstream.base_url()).await?;
    let client = mosaic_client::Client::new(url, Some(token.clone()))?;
    for i in 1..=crate::WORKSPACES {
        client
            .create_workspace(&CreateWorkspaceRequest {
                name: format!("workspace {i}"),
                description: Some(format!("benchmark workspace number {i}")),
                team_id: None,
            })
            .await
            .context("creating workspaces")?;
    }
    Ok(token)
}

/// Start a gateway on a fresh data directory, set it up and warm it up.
pub fn start(
    runtime: &tokio::runtime::Runtime,
    launcher: &Launcher,
    data: &Path,
    export: Export,
    upstream: &Upstream,
) -> Result<Gateway> {
    let server = launcher.start(data)?;
    let bootstrap = server.bootstrap_token()?;
    let url = server.url();
    let token = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), set_up(&url, &bootstrap, upstream)).await
        })
        .context("setting up the gateway took over 60 s")??;
    // The line comes at start-up, long before the set-up is done.
    let wait = match export {
        Export::On => Duration::from_secs(2),
        Export::Off => Duration::ZERO,
    };
    let logged_export = log_has(&server, EXPORTING_LOG, wait);
    let expected: Arc<str> = upstream.expected_text().into();
    let gw = Gateway {
        export,
        chat: Target {
            url: format!("{url}/v1/chat/completions"),
            bearer: Some(token.clone()),
            model: format!("{}/scripted", crate::llm::PROVIDER),
            expected,
        },
        server,
        url,
        token,
        logged_export,
    };
    runtime.block_on(warm_up(&gw)).with_context(|| {
        format!(
            "the gateway (export {}) failed its warm-up; its log:\n{}",
            export.name(),
            crate::llm::tail(&gw.server.stderr(), 30)
        )
    })?;
    Ok(gw)
}

/// The order of the two gateways in a round: OFF ON, then ON OFF, and so on, so that a
/// drift that grows steadily weighs the same on both.
pub fn pair(round: usize) -> [Export; 2] {
    if round.is_multiple_of(2) {
        [Export::Off, Export::On]
    } else {
        [Export::On, Export::Off]
    }
}

/// Every phase at every level, `args.rounds` times on each gateway, alternately.
pub fn measure_all(
    runtime: &tokio::runtime::Runtime,
    off: &Gateway,
    on: &Gateway,
    sink: &Sink,
    args: &Args,
) -> Result<Vec<Sample>> {
    // The warm-up's spans are out of the way before the first reading.
    std::thread::sleep(SETTLE);
    let mut samples = Vec::new();
    for (phase, levels) in [(Phase::Api, &args.clients), (Phase::Chat, &args.streams)] {
        for &level in levels {
            for round in 0..args.rounds {
                for export in pair(round) {
                    let gw = match export {
                        Export::Off => off,
                        Export::On => on,
                    };
                    eprintln!(
                        "mosaic-bench otel: {} at {level}, round {}, export {}, {:?}…",
                        phase.name(),
                        round + 1,
                        export.name(),
                        args.duration
                    );
                    let m = runtime
                        .block_on(measure(gw, sink, phase, level, args.duration))
                        .with_context(|| {
                            format!(
                                "measuring {} at {level} (export {}); the gateway's log:\n{}",
                                phase.name(),
                                export.name(),
                                crate::llm::tail(&gw.server.stderr(), 20)
                            )
                        })?;
                    samples.push(Sample {
                        round,
                        export,
                        phase,
                        level,
                        m,
                    });
                }
            }
        }
    }
    Ok(samples)
}

/// Read the gateway's span counters and CPU, stop it (an exporting gateway sends what
/// is queued first), and check it did or did not export as it was meant to.
pub fn stop(runtime: &tokio::runtime::Runtime, gw: Gateway) -> Result<Summary> {
    let spans = runtime.block_on(scrape_spans(&gw.url))?;
    let gateway_cpu = gw.server.cpu_time()?;
    let exporter = threads::named(gw.server.child.id(), threads::GATEWAY_EXPORTER);
    let ready_ms = gw.server.ready_after.as_secs_f64() * 1000.0;
    let stop = gw.server.stop()?;
    match gw.export {
        Export::Off => ensure!(
            !gw.logged_export && spans.is_none() && exporter.sleeps == 0,
            "export was meant to be off, yet the gateway logged that it exports, counts \
             spans in /metrics or has an exporter thread"
        ),
        Export::On => ensure!(
            gw.logged_export && spans.is_some(),
            "export was meant to be on, yet the gateway did not log that it exports \
             ({}) or has no span counters in /metrics ({})",
            gw.logged_export,
            spans.is_some()
        ),
    }
    Ok(Summary {
        export: gw.export,
        ready_ms,
        logged_export: gw.logged_export,
        spans,
        gateway_cpu,
        exporter,
        shutdown_ms: stop.took.as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_counters_are_read_from_prometheus_text() {
        let text = "# HELP mosaic_trace_spans_total Spans handed to the OTLP exporter.\n\
                    # TYPE mosaic_trace_spans_total counter\n\
                    mosaic_trace_spans_total{result=\"dropped\"} 2\n\
                    mosaic_trace_spans_total{result=\"exported\"} 1234\n\
                    mosaic_trace_spans_total{result=\"failed\"} 0\n\
                    mosaic_db_pool_connections 3\n";
        assert_eq!(
            parse_spans(text).unwrap(),
            Some(Spans {
                exported: 1234,
                dropped: 2,
                failed: 0
            })
        );
        assert_eq!(parse_spans("mosaic_db_pool_connections 3\n").unwrap(), None);
        assert!(parse_spans("mosaic_trace_spans_total{result=\"exported\"} x\n").is_err());
    }

    #[test]
    fn rounds_alternate_which_gateway_goes_first() {
        let order: Vec<Export> = (0..3).flat_map(pair).collect();
        assert_eq!(
            order,
            [
                Export::Off,
                Export::On,
                Export::On,
                Export::Off,
                Export::Off,
                Export::On
            ]
        );
    }
}
