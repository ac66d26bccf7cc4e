//! The report: a summary for people, then one JSON line with every figure for scripts.

use std::time::Duration;

use serde_json::{json, Value};

use super::fanout::{loss, Fanout};
use super::latency::{Latency, FIRST_DELTA, MILESTONES};
use super::{ms, pct, sorted, Args, FIRST_DELTA_TARGET_MS, SHORT_ANSWER};

/// p50, p90, p99 and max of sorted milliseconds.
fn stat(v: &[f64]) -> Value {
    json!({"p50": pct(v, 0.5), "p90": pct(v, 0.9), "p99": pct(v, 0.99),
        "max": v.last().copied().unwrap_or(f64::NAN)})
}

pub fn print(args: &Args, lat: &Latency, fan: &Fanout, load: (f64, f64)) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("mosaic-bench agent: {} (SQLite)", args.binary.display());
    println!(
        "machine: {cores} cores shared by the gateway, the subscribers and the scripted model; \
         load average {:.2} before, {:.2} after",
        load.0, load.1
    );
    println!();
    let latency = latency(args, lat);
    println!();
    let fanout = fanout(args, fan);
    let figures = json!({
        "bench": "agent",
        "binary": args.binary.display().to_string(),
        "cores": cores,
        "load_average": {"before": load.0, "after": load.1},
        "latency": latency,
        "fanout": fanout,
    });
    println!();
    println!("{figures}");
}

fn latency(args: &Args, lat: &Latency) -> Value {
    let first = sorted(lat.milestones[FIRST_DELTA].clone());
    let p50 = pct(&first, 0.5);
    let max = first.last().copied().unwrap_or(f64::NAN);
    // The session grows by two entries a run: compare its start with its end.
    let tenth = (lat.runs / 10).max(1);
    let early = |v: &[f64]| pct(&sorted(v.iter().take(tenth).copied().collect()), 0.5);
    let late = |v: &[f64]| pct(&sorted(v.iter().rev().take(tenth).copied().collect()), 0.5);
    println!(
        "POST message → first text_delta at a subscriber ({} runs after {} warm-up, one after \
         another, in one session; {SHORT_ANSWER}-chunk answers)",
        lat.runs, args.warmup
    );
    println!(
        "  p50 / p90 / p99 / max        {p50:.2} / {:.2} / {:.2} / {max:.2} ms",
        pct(&first, 0.9),
        pct(&first, 0.99)
    );
    println!(
        "  target: p50 < {FIRST_DELTA_TARGET_MS} ms ........ {}",
        crate::verdict(p50 < FIRST_DELTA_TARGET_MS)
    );
    println!(
        "  from sending the POST to:          p50       p99   p50 first {tenth}   p50 last {tenth}"
    );
    let mut milestones = serde_json::Map::new();
    for (name, values) in MILESTONES.iter().zip(&lat.milestones) {
        let v = sorted(values.clone());
        println!(
            "    {name:<28} {:>7.2} ms {:>7.2} ms {:>10.2} ms {:>10.2} ms",
            pct(&v, 0.5),
            pct(&v, 0.99),
            early(values),
            late(values)
        );
        let mut s = stat(&v);
        s["p50_first_tenth"] = json!(early(values));
        s["p50_last_tenth"] = json!(late(values));
        milestones.insert(name.to_string(), s);
    }
    let gets = sorted(lat.plain_gets.clone());
    println!(
        "  for scale, an authenticated GET of the session (HTTP, auth, one read): p50 {:.2} ms, p99 {:.2} ms",
        pct(&gets, 0.5),
        pct(&gets, 0.99)
    );
    let (bytes_first, bytes_last) = (lat.request_bytes.0.unwrap_or(0), lat.request_bytes.1);
    println!(
        "  the model's request: {:.1} KiB at the first timed run, {:.1} KiB at the last",
        bytes_first as f64 / 1024.0,
        bytes_last as f64 / 1024.0
    );
    println!(
        "  posts answered `queued` (not timed): {}; resync events: {}",
        lat.queued, lat.resyncs
    );
    json!({
        "runs": lat.runs,
        "warmup": args.warmup,
        "answer_chunks": SHORT_ANSWER,
        "first_delta_ms": stat(&first),
        "milestones_ms": milestones,
        "request_bytes": {"first": bytes_first, "last": bytes_last},
        "plain_get_ms": stat(&gets),
        "queued": lat.queued,
        "resyncs": lat.resyncs,
        "target_p50_ms": FIRST_DELTA_TARGET_MS,
        "target_met": p50 < FIRST_DELTA_TARGET_MS,
    })
}

fn fanout(args: &Args, fan: &Fanout) -> Value {
    let measured = &fan.runs[1..];
    let l = loss(fan);
    // Every run is the same answer, so the same number of events.
    let per_run = l.published / fan.runs.len() as u64;
    let text_deltas =
        fan.seen.iter().map(|s| s.text_deltas).max().unwrap_or(0) / fan.runs.len() as u64;
    let delivered: u64 = fan
        .seen
        .iter()
        .map(|s| s.per_run.iter().skip(1).sum::<u64>())
        .sum();
    let wall: Duration = measured
        .iter()
        .map(|r| r.each.last().copied().unwrap_or_default())
        .sum();
    let secs = wall.as_secs_f64();
    let rate = delivered as f64 / secs;
    let each = sorted(
        measured
            .iter()
            .flat_map(|r| r.each.iter().map(|d| ms(*d)))
            .collect(),
    );
    // Events one subscriber got in a run, over its typical POST → run_finished.
    let got = delivered as f64 / (fan.seen.len() * measured.len()) as f64;
    let per_subscriber = got / (pct(&each, 0.5) / 1000.0);
    let run_ms = sorted(measured.iter().map(|r| ms(r.run)).collect());
    let delivered_ms = sorted(
        measured
            .iter()
            .map(|r| r.delivered.map_or(f64::NAN, ms))
            .collect(),
    );
    let cores = |cpu: Duration| cpu.as_secs_f64() / secs;
    let gateway_cores = cores(measured.iter().map(|r| r.gateway_cpu).sum());
    let bench_cores = cores(measured.iter().map(|r| r.bench_cpu).sum());
    let no_loss = l.missing == 0 && l.resyncs == 0 && l.short == 0 && l.disorder == 0;

    println!(
        "fan-out: {} subscribers of one session, {}-chunk answers ({} runs after 1 warm-up)",
        args.subscribers, args.chunks, args.fanout_runs
    );
    println!("  events per run                {per_run} ({text_deltas} text_delta)");
    println!(
        "  POST → first subscriber's run_finished (the run)   p50 {:>6.0} ms, max {:.0} ms",
        pct(&run_ms, 0.5),
        run_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  POST → last subscriber's run_finished              p50 {:>6.0} ms, max {:.0} ms",
        pct(&delivered_ms, 0.5),
        delivered_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!("  delivered, all subscribers    {rate:.0} events/s");
    println!("  per subscriber (p50)          {per_subscriber:.0} events/s");
    println!(
        "  CPU meanwhile                 gateway {gateway_cores:.2} cores, this benchmark {bench_cores:.2}"
    );
    println!(
        "  gateway RSS after             {:.1} MiB",
        crate::mib(fan.rss_kib)
    );
    println!(
        "  every event to every subscriber ({} events each) ........ {}",
        l.published,
        if no_loss { "ok" } else { "LOST" }
    );
    if !no_loss {
        println!(
            "    {} events missing over {} subscribers; {} resync events, {} out of order",
            l.missing, l.short, l.resyncs, l.disorder
        );
    }
    if let Some(e) = &l.first_error {
        println!("    a subscriber failed: {e}");
    }
    json!({
        "subscribers": args.subscribers,
        "chunks": args.chunks,
        "runs": args.fanout_runs,
        "events_per_run": per_run,
        "text_deltas_per_run": text_deltas,
        "events_delivered": delivered,
        "events_per_s": rate,
        "events_per_s_per_subscriber": per_subscriber,
        "run_ms": stat(&run_ms),
        "delivered_ms": stat(&delivered_ms),
        "gateway_cpu_cores": gateway_cores,
        "bench_cpu_cores": bench_cores,
        "gateway_rss_kib": fan.rss_kib,
        "events_published": l.published,
        "events_missing": l.missing,
        "resyncs": l.resyncs,
        "out_of_order": l.disorder,
        "subscribers_incomplete": l.short,
        "no_event_lost": no_loss,
    })
}
