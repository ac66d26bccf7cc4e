//! Metrics in the Prometheus text format (version 0.0.4): counters and latency
//! histograms kept in memory, with labels of bounded cardinality only (route templates,
//! never paths with ids; provider and model names an admin or user configured).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Inner {
    requests: BTreeMap<Labels, u64>,
    latency: BTreeMap<Labels, Histogram>,
    model_calls: BTreeMap<Labels, u64>,
    tokens: BTreeMap<Labels, u64>,
    fallbacks: BTreeMap<Labels, u64>,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Values read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub active_runs: usize,
    pub sse_subscribers: usize,
    pub db_pool_size: u32,
    pub db_pool_idle: usize,
    pub db_pool_max: u32,
    /// Spans exported, dropped (queue full) and failed, when exporting.
    pub export: Option<(u64, u64, u64)>,
    /// Brain items embedded, refused by the model, and failed embedding requests,
    /// when an embedding model is configured.
    pub embeddings: Option<(u64, u64, u64)>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Metrics {
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut m = lock(&self.inner);
        let base: Labels = vec![("method", method.to_string()), ("route", route.to_string())];
        let mut with_status = base.clone();
        with_status.push(("status", status.to_string()));
        *m.requests.entry(with_status).or_default() += 1;
        m.latency
            .entry(base)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// A model call that ended (`outcome`: `ok`, `error` or `aborted`), with its tokens.
    pub fn model_call(&self, provider: &str, model: &str, outcome: &str, input: u64, output: u64) {
        let mut m = lock(&self.inner);
        let who = || -> Labels {
            vec![
                ("provider", provider.to_string()),
                ("model", model.to_string()),
            ]
        };
        let mut calls = who();
        calls.push(("outcome", outcome.to_string()));
        *m.model_calls.entry(calls).or_default() += 1;
        for (kind, n) in [("input", input), ("output", output)] {
            let mut labels = who();
            labels.push(("kind", kind.to_string()));
            *m.tokens.entry(labels).or_default() += n;
        }
    }

    /// A model of a route failed before its first token and the next was tried.
    pub fn fallback(&self, provider: &str, model: &str) {
        let labels = vec![
            ("provider", provider.to_string()),
            ("model", model.to_string()),
        ];
        *lock(&self.inner).fallbacks.entry(labels).or_default() += 1;
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self, now: &Snapshot) -> String {
        let m = lock(&self.inner);
        let mut out = String::with_capacity(4096);
        counter(
            &mut out,
            "mosaic_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            &m.requests,
        );
        let _ = writeln!(
            out,
            "# HELP mosaic_http_request_duration_seconds Time to answer a request (to the response head; streams continue after it)."
        );
        let _ = writeln!(out, "# TYPE mosaic_http_request_duration_seconds histogram");
        for (labels, h) in &m.latency {
            for (i, le) in BUCKETS.iter().enumerate() {
                let mut l = labels.clone();
                l.push(("le", format!("{le}")));
                let _ = writeln!(
                    out,
                    "mosaic_http_request_duration_seconds_bucket{} {}",
                    render_labels(&l),
                    h.counts[i]
                );
            }
            let mut l = labels.clone();
            l.push(("le", "+Inf".into()));
            let _ = writeln!(
                out,
                "mosaic_http_request_duration_seconds_bucket{} {}",
                render_labels(&l),
                h.count
            );
            let _ = writeln!(
                out,
                "mosaic_http_request_duration_seconds_sum{} {}",
                render_labels(labels),
                h.sum
            );
            let _ = writeln!(
                out,
                "mosaic_http_request_duration_seconds_count{} {}",
                render_labels(labels),
                h.count
            );
        }
        counter(
            &mut out,
            "mosaic_model_calls_total",
            "Model calls that ended, by provider, model and outcome.",
            &m.model_calls,
        );
        counter(
            &mut out,
            "mosaic_model_tokens_total",
            "Tokens used by model calls, by provider, model and kind (input, output).",
            &m.tokens,
        );
        counter(
            &mut out,
            "mosaic_model_fallbacks_total",
            "Models of a route that failed before their first token, so the next was tried.",
            &m.fallbacks,
        );
        drop(m);
        gauge(
            &mut out,
            "mosaic_active_runs",
            "Agent runs running now.",
            now.active_runs as f64,
        );
        gauge(
            &mut out,
            "mosaic_sse_subscribers",
            "Clients following session events now.",
            now.sse_subscribers as f64,
        );
        gauge(
            &mut out,
            "mosaic_db_pool_connections",
            "Open database connections.",
            f64::from(now.db_pool_size),
        );
        gauge(
            &mut out,
            "mosaic_db_pool_idle_connections",
            "Open database connections not in use.",
            now.db_pool_idle as f64,
        );
        gauge(
            &mut out,
            "mosaic_db_pool_max_connections",
            "The most database connections the pool opens.",
            f64::from(now.db_pool_max),
        );
        if let Some((exported, dropped, failed)) = now.export {
            let mut spans = BTreeMap::new();
            spans.insert(vec![("result", "exported".to_string())], exported);
            spans.insert(vec![("result", "dropped".to_string())], dropped);
            spans.insert(vec![("result", "failed".to_string())], failed);
            counter(
                &mut out,
                "mosaic_trace_spans_total",
                "Spans handed to the OTLP exporter: exported, dropped (queue full, or ended while stopping) or failed (the collector refused or could not be reached).",
                &spans,
            );
        }
        if let Some((embedded, refused, failed)) = now.embeddings {
            let mut items = BTreeMap::new();
            items.insert(vec![("result", "embedded".to_string())], embedded);
            items.insert(vec![("result", "refused".to_string())], refused);
            counter(
                &mut out,
                "mosaic_embeddings_total",
                "Brain items (tasks, notes, memories) the embedder handled: embedded, or refused by the model (not retried until the text changes).",
                &items,
            );
            let mut requests = BTreeMap::new();
            requests.insert(Vec::new(), failed);
            counter(
                &mut out,
                "mosaic_embedding_failures_total",
                "Embedding batches that failed (the model unreachable or erroring); the items stay pending and are retried with back-off.",
                &requests,
            );
        }
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, series: &BTreeMap<Labels, u64>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, v) in series {
        let _ = writeln!(out, "{name}{} {v}", render_labels(labels));
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn render_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Label values escape backslash, double quote and line feed.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_with_escaped_labels_and_cumulative_buckets() {
        let m = Metrics::default();
        m.http_request(
            "GET",
            "/api/v1/sessions/{id}",
            200,
            Duration::from_millis(3),
        );
        m.http_request(
            "GET",
            "/api/v1/sessions/{id}",
            200,
            Duration::from_millis(30),
        );
        m.model_call("lo\"cal", "m\\1", "ok", 10, 5);
        let text = m.render(&Snapshot::default());
        assert!(text.contains(
            "mosaic_http_requests_total{method=\"GET\",route=\"/api/v1/sessions/{id}\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "mosaic_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/sessions/{id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "mosaic_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/sessions/{id}\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains(
            "mosaic_model_tokens_total{provider=\"lo\\\"cal\",model=\"m\\\\1\",kind=\"input\"} 10"
        ));
        assert!(text.contains("mosaic_active_runs 0"));
    }
}
