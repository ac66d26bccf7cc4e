//! `mosaic-bench soak`: whether the gateway's resident memory stays flat under a long
//! mixed load, or grows with what it has served.
//!
//! A real `mosaic serve` (SQLite) and the scripted model of `mosaic-bench agent` run
//! for `--minutes`. Every second a client opens a new session, follows its events,
//! sends a message and reads the answer to its end; every tenth second it also lists
//! sessions and reads an older session again (so old sessions are touched too). Idle
//! sessions pile up: what each keeps (its event ring) must be bounded, not grow with
//! their number. The resident size is sampled every `--sample` seconds; the report
//! compares the end with the first sample after warm-up (a sixth of the run, at most
//! ten minutes), and fails the run when the difference passes `--tolerance` MiB.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;

use crate::agent::api::{self, Api};
use crate::agent::Harness;

const USAGE: &str = "\
usage: mosaic-bench soak [MOSAIC_BINARY] [options]

  MOSAIC_BINARY      the mosaic binary to measure (default target/release/mosaic)
  --minutes N        length of the soak (default 60)
  --sample S         seconds between resident-size samples (default 30)
  --chunks N         text chunks per answer (default 200)
  --tolerance MIB    largest growth after warm-up that passes (default 5)";

struct Args {
    binary: std::path::PathBuf,
    minutes: u64,
    sample: u64,
    chunks: usize,
    tolerance_mib: f64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: Default::default(),
        minutes: 60,
        sample: 30,
        chunks: 200,
        tolerance_mib: 5.0,
    };
    let mut binary = None;
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--minutes" => args.minutes = value("--minutes")?.parse().context("--minutes")?,
            "--sample" => args.sample = value("--sample")?.parse().context("--sample")?,
            "--chunks" => args.chunks = value("--chunks")?.parse().context("--chunks")?,
            "--tolerance" => {
                args.tolerance_mib = value("--tolerance")?.parse().context("--tolerance")?
            }
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if binary.is_none() => binary = Some(std::path::PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    ensure!(
        (1..=24 * 60).contains(&args.minutes),
        "--minutes must be 1-1440"
    );
    ensure!(
        (1..=600).contains(&args.sample),
        "--sample must be 1-600 seconds"
    );
    ensure!(
        (1..=10_000).contains(&args.chunks),
        "--chunks must be 1-10000"
    );
    args.binary = crate::mosaic_binary(binary)?;
    Ok(args)
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
    upstream.set_chunks(args.chunks);
    let total = Duration::from_secs(args.minutes * 60);
    let warmup = (total / 6).min(Duration::from_secs(600));
    eprintln!(
        "mosaic-bench soak: {} min, a session a second, answers of {} chunks; \
         resident size every {} s…",
        args.minutes, args.chunks, args.sample
    );
    let started = Instant::now();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut sessions: Vec<String> = Vec::new();
    let mut cycles = 0u64;
    while started.elapsed() < total {
        let tick = Instant::now();
        runtime
            .block_on(cycle(&api, &mut sessions, cycles))
            .with_context(|| format!("cycle {cycles}; the gateway's log:\n{}", server.stderr()))?;
        cycles += 1;
        if started.elapsed() >= next_sample {
            let rss = server.memory_kib()?.rss_kib;
            samples.push((started.elapsed(), rss));
            eprintln!(
                "  {:>6.1} min  {:>7.1} MiB  ({cycles} sessions)",
                started.elapsed().as_secs_f64() / 60.0,
                mib(rss)
            );
            next_sample += Duration::from_secs(args.sample);
        }
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let end = server.memory_kib()?;
    server.stop()?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    report(&args, &samples, end.rss_kib, end.peak_kib, warmup, cycles)
}

/// One second's work: a new session followed to the end of its answer, and now and
/// then a list and a read of an older session.
async fn cycle(api: &Api, sessions: &mut Vec<String>, n: u64) -> Result<()> {
    let session = api.new_session().await?;
    let events = api.events(&session).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(api::read_events(events, stop_rx, |e| {
        e.kind != "run_finished"
    }));
    api.post_message(&session, &format!("message {n}")).await?;
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .context("the answer did not end within 60 s")???;
    drop(stop_tx);
    if n.is_multiple_of(10) {
        api.send(reqwest::Method::GET, "/api/v1/sessions?limit=50", None)
            .await?;
        if let Some(old) = sessions.get(n as usize / 2) {
            api.send(
                reqwest::Method::GET,
                &format!("/api/v1/sessions/{old}/entries"),
                None,
            )
            .await?;
        }
    }
    sessions.push(session);
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(
    args: &Args,
    samples: &[(Duration, u64)],
    end_kib: u64,
    peak_kib: u64,
    warmup: Duration,
    cycles: u64,
) -> Result<()> {
    let after_warmup = samples
        .iter()
        .find(|(at, _)| *at >= warmup)
        .map(|(_, kib)| *kib)
        .unwrap_or(end_kib);
    let growth = mib(end_kib) - mib(after_warmup);
    let verdict = if growth <= args.tolerance_mib {
        "flat"
    } else {
        "GROWS"
    };
    println!();
    println!(
        "soak: {cycles} sessions in {} min; resident {:.1} MiB after {:.0} s of warm-up, \
         {:.1} MiB at the end ({growth:+.1} MiB: {verdict}, tolerance {} MiB), peak {:.1} MiB",
        args.minutes,
        mib(after_warmup),
        warmup.as_secs_f64(),
        mib(end_kib),
        args.tolerance_mib,
        mib(peak_kib)
    );
    let figures = json!({
        "bench": "soak",
        "minutes": args.minutes,
        "sessions": cycles,
        "rss_after_warmup_mib": mib(after_warmup),
        "rss_end_mib": mib(end_kib),
        "rss_peak_mib": mib(peak_kib),
        "growth_mib": growth,
        "samples": samples.iter().map(|(at, kib)| json!([at.as_secs(), mib(*kib)])).collect::<Vec<_>>(),
    });
    println!("{figures}");
    ensure!(
        growth <= args.tolerance_mib,
        "resident memory grew {growth:.1} MiB after warm-up (more than {} MiB)",
        args.tolerance_mib
    );
    Ok(())
}
