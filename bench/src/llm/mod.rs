//! `mosaic-bench llm`: what Mosaic's OpenAI-compatible endpoint adds to a streamed
//! model call, next to the upstream alone and to LiteLLM's proxy in front of the same
//! upstream.
//!
//! One run starts a scripted upstream inside this process (see [`upstream`]), a real
//! `mosaic serve` with an admin and a gateway provider pointing at the upstream, and
//! LiteLLM's proxy configured for the same upstream. At each concurrency level the three
//! are measured one after the other for the same duration; then 1,000 streams are held
//! open through Mosaic (and through LiteLLM) with a slow upstream while their memory is
//! sampled. All traffic stays on 127.0.0.1 and every phase has a time limit.

mod litellm;
pub(crate) mod proc;
pub(crate) mod streams;
pub(crate) mod upstream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::server::{Launcher, Server};
use litellm::LiteLlm;
use streams::{StreamStats, Target};
use upstream::Upstream;

const ADDED_TTFT_TARGET_MS: f64 = 1.0;
/// The same bound on the added TTFT's 99th percentile.
const ADDED_TTFT_P99_TARGET_MS: f64 = 1.0;
/// The gateway's CPU time per streamed answer at the highest level.
const CPU_PER_ANSWER_TARGET_US: f64 = 500.0;
const THROUGHPUT_RATIO_TARGET: f64 = 10.0;
/// Longest the held streams may take to all get their first token.
const HOLD_RAMP_LIMIT: Duration = Duration::from_secs(60);
/// The provider name Mosaic knows the upstream by.
pub(crate) const PROVIDER: &str = "bench";

const USAGE: &str = "\
usage: mosaic-bench llm [MOSAIC_BINARY] [options]

  MOSAIC_BINARY          the mosaic binary to measure (default target/release/mosaic)
  --duration S           length of each measurement (default 10s)
  --levels N,N,..        concurrent streams per measurement (default 1,50,500)
  --tokens N             tokens per scripted answer (default 20)
  --pace S               time between tokens (default 5ms)
  --hold N               streams held open for the memory figure (default 1000)
  --hold-pace S          time between tokens while holding (default 5s: the streams
                         outlast the ramp, and are cut off once sampled)
  --litellm PATH         the litellm CLI (default /var/tmp/mosaic-bench/litellm/bin/litellm,
                         else one on PATH)
  --litellm-workers N    LiteLLM worker processes (default: the number of cores)
  --no-litellm           measure the upstream and Mosaic only";

struct Args {
    binary: PathBuf,
    duration: Duration,
    levels: Vec<usize>,
    tokens: usize,
    pace: Duration,
    hold: usize,
    hold_pace: Duration,
    litellm: Option<PathBuf>,
    litellm_workers: usize,
    no_litellm: bool,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: PathBuf::new(),
        duration: Duration::from_secs(10),
        levels: vec![1, 50, 500],
        tokens: 20,
        pace: Duration::from_millis(5),
        hold: 1000,
        hold_pace: Duration::from_secs(5),
        litellm: None,
        litellm_workers: cores(),
        no_litellm: false,
    };
    let mut binary = None;
    // Skip the program name and `llm`.
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--duration" => args.duration = crate::parse_duration(&value("--duration")?)?,
            "--levels" => {
                args.levels = value("--levels")?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--levels: expected e.g. 1,50,500")?;
            }
            "--tokens" => args.tokens = value("--tokens")?.parse().context("--tokens")?,
            "--pace" => args.pace = parse_pace(&value("--pace")?)?,
            "--hold" => args.hold = value("--hold")?.parse().context("--hold")?,
            "--hold-pace" => args.hold_pace = parse_pace(&value("--hold-pace")?)?,
            "--litellm" => args.litellm = Some(PathBuf::from(value("--litellm")?)),
            "--litellm-workers" => {
                args.litellm_workers = value("--litellm-workers")?
                    .parse()
                    .context("--litellm-workers")?;
            }
            "--no-litellm" => args.no_litellm = true,
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if binary.is_none() => binary = Some(PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!(
        !args.levels.is_empty() && args.levels.iter().all(|n| (1..=5000).contains(n)),
        "--levels must be between 1 and 5000 each"
    );
    ensure!(
        (1..=10_000).contains(&args.tokens),
        "--tokens must be 1-10000"
    );
    ensure!((0..=10_000).contains(&args.hold), "--hold must be 0-10000");
    ensure!(
        (1..=64).contains(&args.litellm_workers),
        "--litellm-workers must be 1-64"
    );
    args.binary = crate::mosaic_binary(binary)?;
    Ok(args)
}

/// A pace may be zero, unlike a duration.
fn parse_pace(text: &str) -> Result<Duration> {
    if text.trim_end_matches("ms").trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    let pace = crate::parse_duration(text)?;
    ensure!(pace <= Duration::from_secs(5), "a pace must be at most 5 s");
    Ok(pace)
}

/// Which of the three a measurement went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    Mosaic,
    LiteLlm,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Mosaic => "mosaic",
            Via::LiteLlm => "litellm",
        }
    }
}

/// One measurement: a target at a concurrency level.
struct Row {
    level: usize,
    via: Via,
    stats: StreamStats,
    /// CPU cores the gateway used during it (none for the upstream alone).
    gateway_cores: Option<f64>,
    /// CPU cores this process (clients and upstream) used during it.
    bench_cores: f64,
    /// Connects dropped by a full listen queue during it, warm-up included.
    listen_overflows: u64,
}

/// Memory while `count` streams were held open through a gateway.
struct Hold {
    count: usize,
    /// The most streams seen open at once (first token in, end not yet).
    max_open: usize,
    /// From sending them all to the last one's first token, when all got open.
    ramp: Option<Duration>,
    /// Streams the upstream was sending at the sample.
    upstream_open: usize,
    rss_before_kib: u64,
    /// Largest VmRSS sampled while they were open.
    rss_kib: u64,
    /// VmRSS a second after they were cut off.
    rss_after_kib: u64,
    /// Connects dropped by a full listen queue while opening them.
    listen_overflows: u64,
    stats: streams::HeldStats,
}

/// The gateways of the run, for CPU and memory readings.
struct Gateways<'a> {
    mosaic: &'a Server,
    litellm: Option<&'a LiteLlm>,
}

impl Gateways<'_> {
    fn cpu(&self, via: Via) -> Option<Duration> {
        match via {
            Via::Direct => None,
            Via::Mosaic => self.mosaic.cpu_time().ok(),
            Via::LiteLlm => self.litellm.map(|l| l.usage().cpu),
        }
    }

    fn rss_kib(&self, via: Via) -> u64 {
        match via {
            Via::Direct => 0,
            Via::Mosaic => self.mosaic.memory_kib().map_or(0, |m| m.rss_kib),
            Via::LiteLlm => self.litellm.map_or(0, |l| l.usage().rss_kib),
        }
    }
}

/// Bootstrap the admin, log in for an API token, add the upstream as a gateway provider.
pub(crate) async fn prepare_mosaic(
    url: &str,
    bootstrap_token: &str,
    upstream_base: &str,
) -> Result<String> {
    let token = crate::server::first_admin_token(url, bootstrap_token, "mosaic-bench-llm").await?;
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/providers"))
        .bearer_auth(&token)
        .json(&json!({
            "name": PROVIDER,
            "kind": "openai-compatible",
            "base_url": upstream_base,
            "scope": "gateway",
        }))
        .send()
        .await
        .context("adding the provider")?;
    let status = resp.status();
    if !status.is_success() {
        bail!(
            "adding the provider answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(token)
}

/// A few seconds of light traffic: connections made, caches warm, and proof that the
/// target serves whole, correct streams before anything is measured.
pub(crate) async fn warm_up(target: &Target) -> Result<()> {
    let stats = tokio::time::timeout(
        Duration::from_secs(60),
        streams::run(
            target,
            4,
            Duration::from_secs(2),
            Duration::from_secs(30),
            || {},
        ),
    )
    .await
    .context("warm-up took over 60 s")??;
    if stats.served() == 0 || stats.errors > 0 {
        bail!(
            "{} of {} warm-up streams failed; the first error: {}",
            stats.errors,
            stats.errors + stats.served(),
            stats
                .first_error
                .as_deref()
                .unwrap_or("none (no stream completed)")
        );
    }
    Ok(())
}

async fn measure(
    target: &Target,
    via: Via,
    level: usize,
    args: &Args,
    gateways: &Gateways<'_>,
) -> Result<Row> {
    let stream_timeout = Duration::from_secs(30);
    let overflows_before = proc::listen_overflows();
    // CPU readings as the measured part starts, after the connections are open.
    let before = std::cell::Cell::new((None, Duration::ZERO));
    let stats = tokio::time::timeout(
        args.duration + 2 * stream_timeout + Duration::from_secs(30),
        streams::run(target, level, args.duration, stream_timeout, || {
            before.set((gateways.cpu(via), proc::own_cpu()))
        }),
    )
    .await
    .with_context(|| format!("{} at {level} streams overran its time", via.name()))??;
    let (cpu_before, own_before) = before.get();
    let secs = stats.elapsed.as_secs_f64();
    let gateway_cores = match (cpu_before, gateways.cpu(via)) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before).as_secs_f64() / secs),
        _ => None,
    };
    let bench_cores = proc::own_cpu().saturating_sub(own_before).as_secs_f64() / secs;
    Ok(Row {
        level,
        via,
        stats,
        gateway_cores,
        bench_cores,
        listen_overflows: proc::listen_overflows().saturating_sub(overflows_before),
    })
}

/// Open `count` streams at once through a gateway with a slow upstream, sample its
/// memory while all of them are open, then cut them off.
async fn hold(
    target: &Target,
    via: Via,
    count: usize,
    args: &Args,
    upstream: &Upstream,
    gateways: &Gateways<'_>,
) -> Result<Hold> {
    upstream.set_pace(args.hold_pace);
    let answer_time = args.hold_pace * args.tokens as u32;
    let rss_before_kib = gateways.rss_kib(via);
    let overflows_before = proc::listen_overflows();
    let sent = Instant::now();
    let held = streams::hold(target, count, answer_time + Duration::from_secs(60))?;
    // Wait for all of them to be open (or for the ramp to give up), then sample.
    let ramp_deadline = sent + HOLD_RAMP_LIMIT;
    let mut max_open = 0;
    while Instant::now() < ramp_deadline && held.live.open() < count && !held.finished() {
        max_open = max_open.max(held.live.open());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ramp = (held.live.open() >= count).then(|| sent.elapsed());
    let listen_overflows = proc::listen_overflows().saturating_sub(overflows_before);
    let mut rss_kib = 0;
    let mut upstream_open = 0;
    for _ in 0..5 {
        max_open = max_open.max(held.live.open());
        upstream_open = upstream_open.max(upstream.open_streams());
        rss_kib = rss_kib.max(gateways.rss_kib(via));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = tokio::time::timeout(Duration::from_secs(30), held.stop())
        .await
        .with_context(|| format!("cutting off the streams through {} overran", via.name()))?;
    upstream.set_pace(args.pace);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Hold {
        count,
        max_open,
        ramp,
        upstream_open,
        rss_before_kib,
        rss_kib,
        rss_after_kib: gateways.rss_kib(via),
        listen_overflows,
        stats,
    })
}

fn row_json(row: &Row, direct: Option<&Row>) -> Value {
    let s = &row.stats;
    let mut v = json!({
        "requests_per_s": s.per_second(),
        "served": s.served(),
        "errors": s.errors,
        "ttft_ms": {"p50": s.ttft_ms(0.5), "p99": s.ttft_ms(0.99)},
        "duration_s": s.elapsed.as_secs_f64(),
        "bench_cpu_cores": row.bench_cores,
        "listen_overflows": row.listen_overflows,
    });
    if let Some(e) = &s.first_error {
        v["first_error"] = json!(e);
    }
    if let Some(cores) = row.gateway_cores {
        v["gateway_cpu_cores"] = json!(cores);
        if s.served() > 0 {
            v["gateway_cpu_us_per_stream"] =
                json!(cores * s.elapsed.as_secs_f64() * 1e6 / s.served() as f64);
        }
    }
    if let Some(d) = direct {
        v["added_ttft_ms"] = json!({
            "p50": s.ttft_ms(0.5) - d.stats.ttft_ms(0.5),
            "p99": s.ttft_ms(0.99) - d.stats.ttft_ms(0.99),
        });
    }
    v
}

fn hold_json(h: &Hold) -> Value {
    json!({
        "streams": h.count,
        "max_open": h.max_open,
        "all_open": h.max_open >= h.count,
        "ramp_s": h.ramp.map(|d| d.as_secs_f64()),
        "upstream_open": h.upstream_open,
        "rss_before_kib": h.rss_before_kib,
        "rss_kib": h.rss_kib,
        "rss_after_kib": h.rss_after_kib,
        "listen_overflows": h.listen_overflows,
        "first_tokens": h.stats.ttft_us.len(),
        "errors": h.stats.errors,
        "first_error": h.stats.first_error,
        "ttft_ms": {"p50": h.stats.ttft_ms(0.5), "p99": h.stats.ttft_ms(0.99)},
    })
}

fn fmt_ms(ms: f64) -> String {
    if ms.is_nan() {
        "-".into()
    } else {
        format!("{ms:.2}")
    }
}

fn fmt_added(ms: f64) -> String {
    if ms.is_nan() {
        "-".into()
    } else {
        format!("{ms:+.2}")
    }
}

pub fn run() -> Result<()> {
    let args = parse_args()?;
    let fd_limit = proc::raise_fd_limit();
    let needed = 3 * args
        .hold
        .max(args.levels.iter().copied().max().unwrap_or(0)) as u64
        + 256;
    if fd_limit < needed {
        eprintln!(
            "mosaic-bench llm: warning: the open-file limit is {fd_limit}; {needed} may be \
             needed (run `ulimit -n {needed}` first)"
        );
    }
    let load_before = proc::load_average();
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let upstream = runtime.block_on(Upstream::start(args.tokens, args.pace))?;
    let expected: std::sync::Arc<str> = upstream.expected_text().into();
    let direct = Target {
        url: format!("{}/chat/completions", upstream.base_url()),
        bearer: None,
        model: "scripted".into(),
        expected: expected.clone(),
    };
    eprintln!(
        "mosaic-bench llm: scripted upstream on {} ({} tokens, {:?} apart)",
        upstream.addr, args.tokens, args.pace
    );

    let launcher = Launcher {
        binary: args.binary.clone(),
        home: home.clone(),
    };
    let mosaic = launcher.start(&scratch.path().join("mosaic"))?;
    let bootstrap_token = mosaic.bootstrap_token()?;
    let token = runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                prepare_mosaic(&mosaic.url(), &bootstrap_token, &upstream.base_url()),
            )
            .await
        })
        .context("preparing the gateway took over 60 s")??;
    let via_mosaic = Target {
        url: format!("{}/v1/chat/completions", mosaic.url()),
        bearer: Some(token),
        model: format!("{PROVIDER}/scripted"),
        expected: expected.clone(),
    };
    let mosaic_setup_rss = mosaic.memory_kib()?.rss_kib;

    // LiteLLM: any failure to find, start or use it is reported, and the run goes on.
    let mut litellm_error = None;
    let mut litellm_version = None;
    let mut litellm_ready_s = None;
    let litellm = if args.no_litellm {
        litellm_error = Some("skipped (--no-litellm)".to_string());
        None
    } else {
        let dir = scratch.path().join("litellm");
        std::fs::create_dir_all(&dir)?;
        let started = litellm::find_cli(args.litellm.as_deref()).and_then(|cli| {
            eprintln!(
                "mosaic-bench llm: starting LiteLLM ({}, {} workers)…",
                cli.display(),
                args.litellm_workers
            );
            runtime.block_on(LiteLlm::start(
                &cli,
                &dir,
                &upstream.base_url(),
                args.litellm_workers,
                args.hold.max(1000),
            ))
        });
        match started {
            Ok(proxy) => {
                litellm_version = Some(proxy.version.clone());
                litellm_ready_s = Some(proxy.ready_after.as_secs_f64());
                Some(proxy)
            }
            Err(e) => {
                litellm_error = Some(format!("{e:#}"));
                None
            }
        }
    };
    let via_litellm = litellm.as_ref().map(|proxy| Target {
        url: format!("{}/v1/chat/completions", proxy.url),
        bearer: Some(litellm::MASTER_KEY.into()),
        model: litellm::MODEL.into(),
        expected: expected.clone(),
    });

    eprintln!("mosaic-bench llm: warming up…");
    runtime
        .block_on(warm_up(&direct))
        .context("the scripted upstream failed its warm-up")?;
    runtime.block_on(warm_up(&via_mosaic)).with_context(|| {
        format!(
            "Mosaic failed its warm-up; its log:\n{}",
            tail(&mosaic.stderr(), 30)
        )
    })?;
    let mut litellm = litellm;
    let mut via_litellm = via_litellm;
    if let (Some(proxy), Some(target)) = (&litellm, &via_litellm) {
        if let Err(e) = runtime.block_on(warm_up(target)) {
            litellm_error = Some(format!(
                "LiteLLM failed its warm-up: {e:#}\n{}",
                proxy.log_tail()
            ));
            via_litellm = None;
            if let Some(proxy) = litellm.take() {
                proxy.stop();
            }
        }
    }

    let gateways = Gateways {
        mosaic: &mosaic,
        litellm: litellm.as_ref(),
    };
    let mut targets = vec![(Via::Direct, &direct), (Via::Mosaic, &via_mosaic)];
    if let Some(t) = &via_litellm {
        targets.push((Via::LiteLlm, t));
    }
    // Everything measured from here on: how much CPU did other processes of the machine
    // take meanwhile?
    let ours = || {
        proc::own_cpu()
            + gateways.cpu(Via::Mosaic).unwrap_or_default()
            + gateways.cpu(Via::LiteLlm).unwrap_or_default()
    };
    let (busy_before, ours_before, measuring) = (proc::machine_busy(), ours(), Instant::now());
    let mut rows: Vec<Row> = Vec::new();
    for &level in &args.levels {
        for &(via, target) in &targets {
            eprintln!(
                "mosaic-bench llm: {level} concurrent streams through {} for {:?}…",
                via.name(),
                args.duration
            );
            let row = runtime.block_on(measure(target, via, level, &args, &gateways))?;
            rows.push(row);
            // Let closed connections settle before the next measurement.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let mosaic_loaded_rss = mosaic.memory_kib()?.rss_kib;

    let mut holds: Vec<(Via, Result<Hold>)> = Vec::new();
    if args.hold > 0 {
        for &(via, target) in &targets[1..] {
            eprintln!(
                "mosaic-bench llm: holding {} streams open through {} ({:?} between tokens)…",
                args.hold,
                via.name(),
                args.hold_pace
            );
            let held = runtime.block_on(hold(target, via, args.hold, &args, &upstream, &gateways));
            upstream.set_pace(args.pace);
            if let (Ok(h), Via::LiteLlm, Some(proxy)) = (&held, via, &litellm) {
                if h.max_open < h.count {
                    let problems = proxy.log_problems();
                    eprintln!(
                        "mosaic-bench llm: only {} of {} streams got open through LiteLLM; {}",
                        h.max_open,
                        h.count,
                        if problems.is_empty() {
                            "its log reports no problem".to_string()
                        } else {
                            format!("its log reports:\n{problems}")
                        }
                    );
                }
            }
            holds.push((via, held));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let machine_s = proc::machine_busy()
        .saturating_sub(busy_before)
        .as_secs_f64();
    let ours_s = ours().saturating_sub(ours_before).as_secs_f64();
    let measured_s = measuring.elapsed().as_secs_f64();
    let others_cores = (machine_s - ours_s).max(0.0) / measured_s;
    let mosaic_peak = mosaic.memory_kib()?.peak_kib;
    let load_after = proc::load_average();

    // The report.
    let find = |level: usize, via: Via| rows.iter().find(|r| r.level == level && r.via == via);
    println!("mosaic-bench llm: {}", args.binary.display());
    println!(
        "upstream: {} tokens per answer, first at once, then {:?} apart; usage chunk asked for and sent",
        args.tokens, args.pace
    );
    match (&litellm_version, &litellm_error) {
        (Some(v), None) => println!(
            "litellm: {v}, {} worker process(es), ready {:.1} s after spawn",
            args.litellm_workers,
            litellm_ready_s.unwrap_or(f64::NAN)
        ),
        (_, Some(e)) => println!("litellm: NOT MEASURED: {}", tail(e, 12)),
        (None, None) => {}
    }
    println!(
        "machine: {} cores shared by clients, upstream and gateways; load average {load_before:.2} before, {load_after:.2} after;",
        cores()
    );
    println!(
        "  while measuring: {:.2} cores busy in all, {:.2} of them this benchmark and its gateways \
         (other processes ~{others_cores:.2}; /proc/stat and per-process times differ by a few %)",
        machine_s / measured_s,
        ours_s / measured_s
    );
    println!();
    println!(
        "{:>7}  {:<8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>7} {:>6} {:>8} {:>8} {:>6}",
        "streams",
        "via",
        "req/s",
        "TTFT p50",
        "TTFT p99",
        "added p50",
        "added p99",
        "served",
        "errors",
        "gw CPU",
        "bench",
        "drops"
    );
    for row in &rows {
        let s = &row.stats;
        let direct_row = find(row.level, Via::Direct).filter(|_| row.via != Via::Direct);
        let added = |q: f64| direct_row.map_or(f64::NAN, |d| s.ttft_ms(q) - d.stats.ttft_ms(q));
        println!(
            "{:>7}  {:<8} {:>8.1} {:>7} ms {:>7} ms {:>7} ms {:>7} ms {:>7} {:>6} {:>8} {:>8.2} {:>6}",
            row.level,
            row.via.name(),
            s.per_second(),
            fmt_ms(s.ttft_ms(0.5)),
            fmt_ms(s.ttft_ms(0.99)),
            fmt_added(added(0.5)),
            fmt_added(added(0.99)),
            s.served(),
            s.errors,
            row.gateway_cores.map_or("-".into(), |c| format!("{c:.2}")),
            row.bench_cores,
            row.listen_overflows,
        );
        if let Some(e) = &s.first_error {
            println!("{:>18} first error: {}", "", tail(e, 3));
        }
    }
    println!(
        "  (gw CPU and bench: cores used by the gateway and by this process, clients and \
         upstream; drops: connects dropped by a full listen queue, warm-up included)"
    );
    println!();
    println!("memory (VmRSS)");
    println!(
        "  mosaic after setup        {:>8.1} MiB",
        crate::mib(mosaic_setup_rss)
    );
    println!(
        "  mosaic after the levels   {:>8.1} MiB",
        crate::mib(mosaic_loaded_rss)
    );
    if !holds.is_empty() {
        println!(
            "  holding {} streams at once ({:?} between tokens; cut off once sampled):",
            args.hold, args.hold_pace
        );
        println!(
            "    {:<8} {:>5} {:>7} {:>12} {:>12} {:>12} {:>10} {:>10} {:>6} {:>6}",
            "via",
            "open",
            "ramp",
            "RSS held",
            "before",
            "1 s after",
            "TTFT p50",
            "TTFT p99",
            "errors",
            "drops"
        );
    }
    for (via, held) in &holds {
        match held {
            Ok(h) => {
                println!(
                    "    {:<8} {:>5} {:>7} {:>8.1} MiB {:>8.1} MiB {:>8.1} MiB {:>7} ms {:>7} ms {:>6} {:>6}",
                    via.name(),
                    h.max_open,
                    h.ramp
                        .map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64())),
                    crate::mib(h.rss_kib),
                    crate::mib(h.rss_before_kib),
                    crate::mib(h.rss_after_kib),
                    fmt_ms(h.stats.ttft_ms(0.5)),
                    fmt_ms(h.stats.ttft_ms(0.99)),
                    h.stats.errors,
                    h.listen_overflows,
                );
                if h.max_open < h.count {
                    println!(
                        "    {:<8} only {} of {} got their first token within {:?}; the upstream was sending {}",
                        "",
                        h.max_open,
                        h.count,
                        HOLD_RAMP_LIMIT,
                        h.upstream_open
                    );
                }
                if let Some(e) = &h.stats.first_error {
                    println!("    {:<8} first error: {}", "", tail(e, 3));
                }
            }
            Err(e) => println!("    {:<8} holding failed: {e:#}", via.name()),
        }
    }
    println!(
        "  mosaic peak (VmHWM)       {:>8.1} MiB",
        crate::mib(mosaic_peak)
    );

    // Targets: added TTFT at the lowest level (no queueing), throughput at the highest
    // (where the gateway, not the upstream's pace, is the limit).
    let low = args.levels.iter().copied().min().unwrap_or(1);
    let high = args.levels.iter().copied().max().unwrap_or(1);
    let added_p50 = match (find(low, Via::Mosaic), find(low, Via::Direct)) {
        (Some(m), Some(d)) => m.stats.ttft_ms(0.5) - d.stats.ttft_ms(0.5),
        _ => f64::NAN,
    };
    let added_met = added_p50 < ADDED_TTFT_TARGET_MS;
    let added_p99 = match (find(low, Via::Mosaic), find(low, Via::Direct)) {
        (Some(m), Some(d)) => m.stats.ttft_ms(0.99) - d.stats.ttft_ms(0.99),
        _ => f64::NAN,
    };
    let added_p99_met = added_p99 < ADDED_TTFT_P99_TARGET_MS;
    let cpu_per_answer_us = find(high, Via::Mosaic)
        .and_then(|m| {
            let served = m.stats.served();
            m.gateway_cores
                .filter(|_| served > 0)
                .map(|cores| cores * m.stats.elapsed.as_secs_f64() * 1e6 / served as f64)
        })
        .unwrap_or(f64::NAN);
    let cpu_met = cpu_per_answer_us < CPU_PER_ANSWER_TARGET_US;
    let ratio = match (find(high, Via::Mosaic), find(high, Via::LiteLlm)) {
        (Some(m), Some(l)) if l.stats.per_second() > 0.0 => {
            Some(m.stats.per_second() / l.stats.per_second())
        }
        _ => None,
    };
    println!();
    println!("targets");
    println!(
        "  added TTFT p50 < {ADDED_TTFT_TARGET_MS} ms at {low} stream(s): {} ms ........ {}",
        fmt_added(added_p50),
        crate::verdict(added_met)
    );
    println!(
        "  added TTFT p99 < {ADDED_TTFT_P99_TARGET_MS} ms at {low} stream(s): {} ms ........ {}",
        fmt_added(added_p99),
        crate::verdict(added_p99_met)
    );
    println!(
        "  gateway CPU per answer < {CPU_PER_ANSWER_TARGET_US} µs at {high} streams: {cpu_per_answer_us:.0} µs ........ {}",
        crate::verdict(cpu_met)
    );
    match ratio {
        Some(r) => println!(
            "  throughput >= {THROUGHPUT_RATIO_TARGET}x LiteLLM at {high} streams: {r:.1}x ........ {}",
            crate::verdict(r >= THROUGHPUT_RATIO_TARGET)
        ),
        None => println!(
            "  throughput >= {THROUGHPUT_RATIO_TARGET}x LiteLLM at {high} streams: not measured"
        ),
    }

    let levels: Vec<Value> = args
        .levels
        .iter()
        .map(|&level| {
            let direct_row = find(level, Via::Direct);
            let mut v = json!({"streams": level});
            for via in [Via::Direct, Via::Mosaic, Via::LiteLlm] {
                if let Some(row) = find(level, via) {
                    let d = direct_row.filter(|_| via != Via::Direct);
                    v[via.name()] = row_json(row, d);
                }
            }
            v
        })
        .collect();
    let mut hold_figures =
        json!({"streams": args.hold, "pace_ms": args.hold_pace.as_secs_f64() * 1000.0});
    for (via, held) in &holds {
        hold_figures[via.name()] = match held {
            Ok(h) => hold_json(h),
            Err(e) => json!({"error": format!("{e:#}")}),
        };
    }
    let figures = json!({
        "bench": "llm",
        "binary": args.binary.display().to_string(),
        "cores": cores(),
        "load_average": {"before": load_before, "after": load_after},
        "other_processes_cpu_cores": others_cores,
        "cpu_while_measuring_s": {"wall": measured_s, "machine": machine_s, "benchmark_and_gateways": ours_s},
        "fd_limit": fd_limit,
        "upstream": {
            "tokens": args.tokens,
            "pace_ms": args.pace.as_secs_f64() * 1000.0,
            "include_usage": true,
            "streams_served": upstream.streams_started(),
        },
        "duration_s": args.duration.as_secs_f64(),
        "litellm": {
            "version": litellm_version,
            "workers": args.litellm_workers,
            "ready_s": litellm_ready_s,
            "error": litellm_error,
        },
        "levels": levels,
        "hold": hold_figures,
        "mosaic_rss_kib": {"setup": mosaic_setup_rss, "after_levels": mosaic_loaded_rss, "peak": mosaic_peak},
        "targets": {
            "added_ttft_p50_ms": ADDED_TTFT_TARGET_MS,
            "added_ttft_p50_measured_ms": added_p50,
            "added_ttft_met": added_met,
            "added_ttft_p99_ms": ADDED_TTFT_P99_TARGET_MS,
            "added_ttft_p99_measured_ms": added_p99,
            "added_ttft_p99_met": added_p99_met,
            "cpu_per_answer_us": CPU_PER_ANSWER_TARGET_US,
            "cpu_per_answer_measured_us": cpu_per_answer_us,
            "cpu_per_answer_met": cpu_met,
            "throughput_ratio_min": THROUGHPUT_RATIO_TARGET,
            "throughput_ratio": ratio,
            "throughput_met": ratio.map(|r| r >= THROUGHPUT_RATIO_TARGET),
        },
    });
    println!();
    println!("{figures}");

    if let Some(proxy) = litellm {
        proxy.stop();
    }
    mosaic.stop()?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// The last `n` lines of a text.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
