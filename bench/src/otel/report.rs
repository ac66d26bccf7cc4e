//! The report: off and on pooled over their rounds at each phase and level, compared;
//! what was exported; the targets; then one JSON line with every figure.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::measure::{Sample, Summary};
use super::sink::Received;
use super::threads::ThreadStats;
use super::{Args, Export, Phase, Spans, MAX_THROUGHPUT_LOSS};

/// Other processes busy on more cores than this make a difference of 5% unmeasurable.
const NOISY_CORES: f64 = 0.2;

/// What a whole benchmark run produced.
pub struct Outcome<'a> {
    pub args: &'a Args,
    pub samples: &'a [Sample],
    /// The two gateways, as they ended.
    pub gateways: &'a [Summary],
    /// What the sink received in all (only the exporting gateway sends to it).
    pub received: Received,
    pub sink_cpu: Duration,
    /// Where the sink listened.
    pub sink: SocketAddr,
    /// The 1-minute load average before and after.
    pub load: [f64; 2],
    /// Cores other processes of the machine used meanwhile.
    pub others_cores: f64,
}

/// The figures of one side (off or on) at one phase and level, pooled over the rounds.
struct Pooled {
    rounds: usize,
    served: u64,
    errors: u64,
    first_error: Option<String>,
    /// Served requests over the summed measured time.
    rps: f64,
    /// p50 and p99 of the API call's latency or the chat's time to first token, in ms.
    first_ms: [f64; 2],
    /// p50 and p99 of the chat's time to `[DONE]` (the API call: its latency), in ms.
    end_ms: [f64; 2],
    /// CPU per request the gateway handled, in microseconds: all of it, its exporter
    /// thread's, and the sink's (in this process).
    gateway_us: f64,
    exporter_us: f64,
    sink_us: f64,
    /// Cores this process (clients, upstream, sink) used while measuring.
    bench_cores: f64,
    /// CPU per request of the gateway and this process together, in microseconds: what
    /// a request costs the machine.
    all_us: f64,
    received: Received,
    /// Spans exported, dropped and failed meanwhile (export on).
    spans: Option<Spans>,
    /// Requests the gateway handled between the readings.
    handled: u64,
    /// Times the exporter thread went to sleep (and was woken again).
    exporter_wakeups: u64,
    /// Context switches of all the gateway's threads, per request.
    switches_per_request: f64,
}

impl Pooled {
    /// Spans handed to the exporter per request (export on).
    fn spans_per_request(&self) -> Option<f64> {
        self.spans
            .map(|s| s.handed() as f64 / self.handled.max(1) as f64)
    }

    /// Exporter wake-ups per span handed to it (export on).
    fn wakeups_per_span(&self) -> Option<f64> {
        self.spans
            .filter(|s| s.handed() > 0)
            .map(|s| self.exporter_wakeups as f64 / s.handed() as f64)
    }
}

fn ms(sorted: &[u64], q: f64) -> f64 {
    crate::percentile(sorted, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
}

fn pool(samples: &[&Sample]) -> Pooled {
    let (mut first, mut end) = (Vec::new(), Vec::new());
    let (mut errors, mut handled) = (0, 0);
    let mut elapsed = Duration::ZERO;
    let (mut gateway, mut sink, mut bench) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut exporter = ThreadStats::default();
    let mut switches = 0;
    let mut received = Received::default();
    let mut spans: Option<Spans> = None;
    let mut first_error = None;
    for s in samples {
        let m = &s.m;
        first.extend_from_slice(&m.timed.first_us);
        end.extend_from_slice(&m.timed.end_us);
        errors += m.timed.errors;
        handled += m.handled;
        elapsed += m.timed.elapsed;
        gateway += m.gateway_cpu;
        exporter.cpu += m.exporter.cpu;
        exporter.sleeps += m.exporter.sleeps;
        switches += m.threads.sleeps + m.threads.preempted;
        sink += m.sink_cpu;
        bench += m.bench_cpu;
        received.requests += m.received.requests;
        received.bytes += m.received.bytes;
        received.not_protobuf += m.received.not_protobuf;
        if let Some(add) = m.spans {
            let total = spans.get_or_insert_with(Spans::default);
            total.exported += add.exported;
            total.dropped += add.dropped;
            total.failed += add.failed;
        }
        if first_error.is_none() {
            first_error.clone_from(&m.timed.first_error);
        }
    }
    first.sort_unstable();
    end.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / handled.max(1) as f64;
    Pooled {
        rounds: samples.len(),
        served: first.len() as u64,
        errors,
        first_error,
        rps: first.len() as f64 / secs,
        first_ms: [ms(&first, 0.5), ms(&first, 0.99)],
        end_ms: [ms(&end, 0.5), ms(&end, 0.99)],
        gateway_us: per_request(gateway),
        exporter_us: per_request(exporter.cpu),
        sink_us: per_request(sink),
        bench_cores: bench.as_secs_f64() / secs,
        all_us: per_request(gateway + bench),
        received,
        spans,
        handled,
        exporter_wakeups: exporter.sleeps,
        switches_per_request: switches as f64 / handled.max(1) as f64,
    }
}

/// Off and on at one phase and level.
struct Compared {
    phase: Phase,
    level: usize,
    off: Pooled,
    on: Pooled,
    /// Throughput on over off, pooled.
    ratio: f64,
    /// The same, round by round.
    round_ratios: Vec<f64>,
    /// The exporter thread's CPU over all the CPU a request costs the machine (export
    /// on): what export costs in throughput at least, once the cores are saturated,
    /// before its cost on the request path (handing spans over, waking the exporter).
    exporter_share: f64,
}

impl Compared {
    fn median_round_ratio(&self) -> f64 {
        let mut sorted = self.round_ratios.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}

fn compare(samples: &[Sample], phase: Phase, level: usize, rounds: usize) -> Compared {
    let side = |export: Export| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.phase == phase && s.level == level && s.export == export)
            .collect()
    };
    let off = pool(&side(Export::Off));
    let on = pool(&side(Export::On));
    let rps = |round: usize, export: Export| {
        samples
            .iter()
            .find(|s| {
                s.round == round && s.phase == phase && s.level == level && s.export == export
            })
            .map(|s| s.m.timed.first_us.len() as f64 / s.m.timed.elapsed.as_secs_f64())
    };
    let round_ratios = (0..rounds)
        .filter_map(|r| Some(rps(r, Export::On)? / rps(r, Export::Off)?))
        .collect();
    Compared {
        phase,
        level,
        ratio: on.rps / off.rps,
        exporter_share: on.exporter_us / on.all_us,
        off,
        on,
        round_ratios,
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_phase(phase: Phase, rows: &[&Compared]) {
    let chat = phase == Phase::Chat;
    let ends_head = if chat {
        format!(" {:>8} {:>8}", "end p50", "end p99")
    } else {
        String::new()
    };
    let (what, first) = match phase {
        Phase::Api => (
            format!(
                "API call: GET {} ({} workspaces), authenticated",
                crate::LIST_PATH,
                crate::WORKSPACES
            ),
            ["clients", "p50 ms", "p99 ms"],
        ),
        Phase::Chat => (
            "streamed chat: POST /v1/chat/completions, stream=true, through a gateway provider \
             to the scripted upstream (every token at once)"
                .to_string(),
            ["streams", "TTFT p50", "TTFT p99"],
        ),
    };
    println!("{what}");
    println!(
        "  {:>7} {:<7} {:>8} {:>8} {:>8}{ends_head} {:>6} {:>8} {:>6} {:>9} {:>9} {:>10}",
        first[0],
        "export",
        "req/s",
        first[1],
        first[2],
        "errors",
        "gw CPU",
        "cs/req",
        "exporter",
        "spans/req",
        "wakes/span"
    );
    for c in rows {
        for (export, p) in [(Export::Off, &c.off), (Export::On, &c.on)] {
            let ends = if chat {
                format!(" {:>8.2} {:>8.2}", p.end_ms[0], p.end_ms[1])
            } else {
                String::new()
            };
            let exporter = match export {
                Export::Off => "-".to_string(),
                Export::On => format!("{:.1} µs", p.exporter_us),
            };
            println!(
                "  {:>7} {:<7} {:>8.1} {:>8.2} {:>8.2}{ends} {:>6} {:>5.0} µs {:>6.1} {:>9} {:>9} {:>10}",
                c.level,
                export.name(),
                p.rps,
                p.first_ms[0],
                p.first_ms[1],
                p.errors,
                p.gateway_us,
                p.switches_per_request,
                exporter,
                fmt_opt(p.spans_per_request(), 2),
                fmt_opt(p.wakeups_per_span(), 2),
            );
            if let Some(e) = &p.first_error {
                println!("  {:>15} first error: {}", "", crate::llm::tail(e, 3));
            }
        }
        let added = |on: f64, off: f64| format!("{:+.2}", on - off);
        let ends = if chat {
            format!(
                " {:>8} {:>8}",
                added(c.on.end_ms[0], c.off.end_ms[0]),
                added(c.on.end_ms[1], c.off.end_ms[1])
            )
        } else {
            String::new()
        };
        let by_round = c
            .round_ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "  {:>7} {:<7} {:>7.3}x {:>8} {:>8}{ends} {:>6} {:>+5.0} µs {:>+6.1}   the exporter \
             alone: {:.1}% of the CPU a request costs",
            "",
            "on/off",
            c.ratio,
            added(c.on.first_ms[0], c.off.first_ms[0]),
            added(c.on.first_ms[1], c.off.first_ms[1]),
            "",
            c.on.gateway_us - c.off.gateway_us,
            c.on.switches_per_request - c.off.switches_per_request,
            100.0 * c.exporter_share,
        );
        println!(
            "  {:>15} req/s on/off by round: {by_round} (median {:.3})",
            "",
            c.median_round_ratio()
        );
    }
}

fn pooled_json(p: &Pooled) -> Value {
    let mut v = json!({
        "rounds": p.rounds,
        "requests_per_s": p.rps,
        "served": p.served,
        "errors": p.errors,
        "first_ms": {"p50": p.first_ms[0], "p99": p.first_ms[1]},
        "end_ms": {"p50": p.end_ms[0], "p99": p.end_ms[1]},
        "gateway_cpu_us_per_request": p.gateway_us,
        "exporter_cpu_us_per_request": p.exporter_us,
        "exporter_wakeups": p.exporter_wakeups,
        "gateway_context_switches_per_request": p.switches_per_request,
        "sink_cpu_us_per_request": p.sink_us,
        "bench_cpu_cores": p.bench_cores,
        "all_cpu_us_per_request": p.all_us,
        "otlp_requests": p.received.requests,
        "otlp_bytes": p.received.bytes,
    });
    if let Some(s) = p.spans {
        v["spans"] = s.json();
        v["spans_per_request"] = json!(p.spans_per_request());
        v["exporter_wakeups_per_span"] = json!(p.wakeups_per_span());
    }
    if let Some(e) = &p.first_error {
        v["first_error"] = json!(e);
    }
    v
}

fn compared_json(c: &Compared) -> Value {
    json!({
        "phase": c.phase.name(),
        "level": c.level,
        "off": pooled_json(&c.off),
        "on": pooled_json(&c.on),
        "throughput_ratio": c.ratio,
        "round_ratios": c.round_ratios,
        "median_round_ratio": c.median_round_ratio(),
        "exporter_share_of_request_cpu": c.exporter_share,
        "added_ms": {
            "first_p50": c.on.first_ms[0] - c.off.first_ms[0],
            "first_p99": c.on.first_ms[1] - c.off.first_ms[1],
            "end_p50": c.on.end_ms[0] - c.off.end_ms[0],
            "end_p99": c.on.end_ms[1] - c.off.end_ms[1],
        },
        "added_gateway_cpu_us_per_request": c.on.gateway_us - c.off.gateway_us,
    })
}

fn print_export(o: &Outcome<'_>) {
    let on = o.gateways.iter().find(|g| g.export == Export::On);
    let off = o.gateways.iter().find(|g| g.export == Export::Off);
    let spans = on.and_then(|g| g.spans).unwrap_or_default();
    println!("export");
    println!(
        "  the sink received {} OTLP requests, {:.2} MiB ({:.1} KiB a request, {:.0} B a span); \
         {} not application/x-protobuf",
        o.received.requests,
        o.received.bytes as f64 / 1048576.0,
        o.received.bytes as f64 / 1024.0 / o.received.requests.max(1) as f64,
        o.received.bytes as f64 / spans.exported.max(1) as f64,
        o.received.not_protobuf,
    );
    if let Some(g) = on {
        let handed = spans.handed().max(1) as f64;
        println!(
            "  the ON gateway, at its end: mosaic_trace_spans_total exported {} / dropped {} / \
             failed {}; its exporter thread used {:.2} s CPU of the gateway's {:.2} s ({:.1}%), \
             {:.1} µs and {:.2} wake-ups a span",
            spans.exported,
            spans.dropped,
            spans.failed,
            g.exporter.cpu.as_secs_f64(),
            g.gateway_cpu.as_secs_f64(),
            100.0 * g.exporter.cpu.as_secs_f64()
                / g.gateway_cpu.as_secs_f64().max(f64::MIN_POSITIVE),
            g.exporter.cpu.as_secs_f64() * 1e6 / handed,
            g.exporter.sleeps as f64 / handed,
        );
    }
    if let Some(g) = off {
        println!(
            "  the OFF gateway: no export log line ({}), no span counters in /metrics ({}), no \
             exporter thread",
            !g.logged_export,
            g.spans.is_none()
        );
    }
    println!(
        "  the sink used {:.2} s of this process's CPU",
        o.sink_cpu.as_secs_f64()
    );
}

/// Print the report for people, then the JSON line.
pub fn print(o: &Outcome<'_>) {
    let args = o.args;
    let compared: Vec<Compared> = [(Phase::Api, &args.clients), (Phase::Chat, &args.streams)]
        .into_iter()
        .flat_map(|(phase, levels)| {
            levels
                .iter()
                .map(move |&level| compare(o.samples, phase, level, args.rounds))
        })
        .collect();
    let sequence: Vec<&str> = (0..args.rounds)
        .flat_map(super::measure::pair)
        .map(|e| match e {
            Export::Off => "OFF",
            Export::On => "ON",
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let [load_before, load_after] = o.load;
    println!("mosaic-bench otel: {}", args.binary.display());
    println!(
        "two gateways, export off and on, each on a SQLite data directory of its own; every \
         measurement {:?}, taken {} ({} rounds)",
        args.duration,
        sequence.join(" "),
        args.rounds,
    );
    println!(
        "export on: OTLP/HTTP protobuf to the sink on {} (otlp_endpoint in the gateway's config \
         file; the exporter's defaults: a queue of 2048 spans, batches of 512, sent at least \
         every second)",
        o.sink
    );
    println!(
        "machine: {cores} cores shared by the gateways, the clients, the upstream and the sink; \
         load average {load_before:.2} before, {load_after:.2} after; other processes ~{:.2} \
         cores meanwhile",
        o.others_cores
    );
    if o.others_cores > NOISY_CORES {
        println!(
            "warning: other processes kept ~{:.2} cores busy; req/s and latency swing by more \
             than 5% from one measurement to the next on a machine that busy: compare the \
             rounds, and measure again on a quiet machine",
            o.others_cores
        );
    }
    for phase in [Phase::Api, Phase::Chat] {
        println!();
        let rows: Vec<&Compared> = compared.iter().filter(|c| c.phase == phase).collect();
        print_phase(phase, &rows);
    }
    println!(
        "  (gw CPU: the gateway's CPU a request; cs/req: its threads' context switches a \
         request; exporter: the part of gw CPU its OTLP exporter thread used; spans/req: spans handed to the exporter; wakes/span: how often the exporter \
         thread was woken, per span)"
    );
    println!();
    print_export(o);

    // Judged where the clients keep the gateway busiest.
    let judged: Vec<&Compared> = [(Phase::Api, &args.clients), (Phase::Chat, &args.streams)]
        .iter()
        .filter_map(|(phase, levels)| {
            let top = levels.iter().copied().max()?;
            compared
                .iter()
                .find(|c| c.phase == *phase && c.level == top)
        })
        .collect();
    let floor = 1.0 - MAX_THROUGHPUT_LOSS;
    let throughput_met = judged.iter().all(|c| c.ratio >= floor);
    let spans = o.gateways.iter().find_map(|g| g.spans).unwrap_or_default();
    let lost = spans.dropped + spans.failed;
    println!();
    println!("targets");
    println!(
        "  export costs under 5% throughput (on/off >= {floor:.2} at the most clients): {} \
         ........ {}",
        judged
            .iter()
            .map(|c| format!(
                "{} at {}: {:.3}x (median of the rounds {:.3})",
                c.phase.name(),
                c.level,
                c.ratio,
                c.median_round_ratio()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        crate::verdict(throughput_met)
    );
    println!(
        "  every span exported (none dropped or failed): {lost} lost ........ {}",
        crate::verdict(lost == 0)
    );

    let gateways: Vec<Value> = o
        .gateways
        .iter()
        .map(|g| {
            json!({
                "export": g.export.name(),
                "ready_ms": g.ready_ms,
                "logged_export": g.logged_export,
                "spans": g.spans.map(Spans::json),
                "gateway_cpu_s": g.gateway_cpu.as_secs_f64(),
                "exporter_cpu_s": g.exporter.cpu.as_secs_f64(),
                "exporter_wakeups": g.exporter.sleeps,
                "shutdown_ms": g.shutdown_ms,
            })
        })
        .collect();
    let judged_json: Vec<Value> = judged
        .iter()
        .map(|c| json!({"phase": c.phase.name(), "level": c.level, "ratio": c.ratio}))
        .collect();
    let figures = json!({
        "bench": "otel",
        "binary": args.binary.display().to_string(),
        "cores": cores,
        "load_average": {"before": load_before, "after": load_after},
        "other_processes_cpu_cores": o.others_cores,
        "rounds": args.rounds,
        "sequence": sequence,
        "duration_s": args.duration.as_secs_f64(),
        "tokens": args.tokens,
        "measurements": compared.iter().map(compared_json).collect::<Vec<_>>(),
        "gateways": gateways,
        "sink": {
            "otlp_requests": o.received.requests,
            "otlp_bytes": o.received.bytes,
            "not_protobuf": o.received.not_protobuf,
            "cpu_s": o.sink_cpu.as_secs_f64(),
        },
        "targets": {
            "max_throughput_loss": MAX_THROUGHPUT_LOSS,
            "judged": judged_json,
            "throughput_met": throughput_met,
            "spans_lost": lost,
        },
    });
    println!();
    println!("{figures}");
}
