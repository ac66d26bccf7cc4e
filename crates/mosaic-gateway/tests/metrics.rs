//! `GET /metrics` end to end: the body parses as Prometheus text (version 0.0.4, read by
//! a small parser written here), the series move as requests, model calls, runs and
//! subscribers come and go, and a configured token guards the scrape.
//!
//! Without a token `/metrics` answers loopback clients only; that refusal of other
//! addresses cannot be produced from a test that connects over loopback, so only the
//! token path's refusals are tested here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mosaic_test_support::gateway::{chunk, gateway_provider, scripted_model, Events, TestGateway};
use mosaic_test_support::scripted::{Answer, Scripted};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
#[derive(Debug, Default)]
struct Exposition {
    /// Family name → its `# TYPE`.
    types: BTreeMap<String, String>,
    /// Family name → its `# HELP` text.
    helps: BTreeMap<String, String>,
    /// In the order they came.
    samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the sample with exactly these labels (0 when absent: counters
    /// appear at their first increment).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map_or(0.0, |s| s.value)
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN` (not Rust's other spellings).
fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            s.parse().map_err(|e| format!("value {s:?}: {e}"))
        }
        _ => Err(format!("value {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` at the start of `rest`: the labels, and what follows the `}`.
fn parse_labels(rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("a label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("label name {name:?}"));
        }
        let mut chars = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("an unquoted label value")?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("escape \\{other}")),
                },
                (_, '\n') => return Err("a raw line feed in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        // Past the name, `="`, the value and its closing quote.
        rest = &rest[eq + 2 + end + 1..];
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.starts_with('}') => {}
            None => return Err("expected , or } after a label".into()),
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected a space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| format!("timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The family a sample belongs to (`x_bucket` of histogram `x` is `x`).
fn family_of(name: &str, types: &BTreeMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_string());
    }
    for (suffix, kinds) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| kinds.contains(&t.as_str())) {
                return Some(base.to_string());
            }
        }
    }
    None
}

/// Parse a scrape, failing the test (naming the line) on anything the Prometheus text
/// format does not allow; then check that every sample's family is typed, families are
/// not interleaved, series are not repeated and histograms are consistent.
fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    let mut families_done: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    assert!(text.ends_with('\n'), "the body ends with a line feed");
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) => {
                    assert!(is_metric_name(name), "line {n}: {line}");
                    let help = help.unwrap_or_default().to_string();
                    assert!(
                        out.helps.insert(name.to_string(), help).is_none(),
                        "line {n}: a second HELP for {name}"
                    );
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_metric_name(name), "line {n}: {line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "line {n}: type {kind}"
                    );
                    assert!(
                        out.types
                            .insert(name.to_string(), kind.to_string())
                            .is_none(),
                        "line {n}: a second TYPE for {name}"
                    );
                    assert!(
                        !families_done.contains(name) && current.as_deref() != Some(name),
                        "line {n}: TYPE of {name} after its samples"
                    );
                }
                (Some("TYPE"), _, _) => panic!("line {n}: {line}"),
                _ => {} // Other comments are allowed.
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|e| panic!("line {n}: {e}: {line}"));
        let family = family_of(&sample.name, &out.types)
            .unwrap_or_else(|| panic!("line {n}: {} has no TYPE", sample.name));
        if current.as_deref() != Some(family.as_str()) {
            assert!(
                !families_done.contains(&family),
                "line {n}: the samples of {family} are split up"
            );
            if let Some(done) = current.replace(family.clone()) {
                families_done.insert(done);
            }
        }
        if out.types[&family] == "counter" {
            assert!(
                sample.value >= 0.0 && sample.value.is_finite(),
                "line {n}: {line}"
            );
        }
        let key = format!("{}{:?}", sample.name, sample.labels);
        assert!(series.insert(key), "line {n}: a repeated series: {line}");
        out.samples.push(sample);
    }
    check_histograms(&out);
    out
}

/// Per histogram series: buckets in rising `le` order with non-decreasing counts, the
/// last at `+Inf` equal to `_count`, and a `_sum`.
fn check_histograms(expo: &Exposition) {
    for (family, _) in expo.types.iter().filter(|(_, t)| *t == "histogram") {
        let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in expo
            .samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let mut labels = s.labels.clone();
            let le = labels
                .remove("le")
                .unwrap_or_else(|| panic!("{family}_bucket without le"));
            let le = parse_value(&le).unwrap();
            buckets.entry(labels).or_default().push((le, s.value));
        }
        for (labels, series) in &buckets {
            let les: Vec<f64> = series.iter().map(|b| b.0).collect();
            assert!(
                les.windows(2).all(|w| w[0] < w[1]),
                "{family}{labels:?}: le in rising order: {les:?}"
            );
            assert!(
                series.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{labels:?}: buckets are cumulative: {series:?}"
            );
            let last = series.last().unwrap();
            assert_eq!(last.0, f64::INFINITY, "{family}{labels:?} ends at +Inf");
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert!(
                expo.samples
                    .iter()
                    .any(|s| s.name == format!("{family}_count") && &s.labels == labels),
                "{family}{labels:?} has a _count"
            );
            assert_eq!(
                last.1,
                expo.get(&format!("{family}_count"), &pairs),
                "{family}{labels:?}: +Inf == _count"
            );
            assert!(
                expo.samples
                    .iter()
                    .any(|s| s.name == format!("{family}_sum") && &s.labels == labels),
                "{family}{labels:?} has a _sum"
            );
        }
    }
}

#[test]
fn the_parser_reads_escapes_and_refuses_what_the_format_does_not_allow() {
    let ok = parse(concat!(
        "# HELP a_total A counter.\n",
        "# TYPE a_total counter\n",
        "a_total{path=\"C:\\\\x\",q=\"say \\\"hi\\\"\",nl=\"1\\n2\",} 3 1700000000000\n",
        "# some other comment\n",
        "\n",
        "# TYPE h histogram\n",
        "h_bucket{le=\"0.5\"} 1\n",
        "h_bucket{le=\"+Inf\"} 2\n",
        "h_sum 0.7\n",
        "h_count 2\n",
    ));
    assert_eq!(
        ok.samples[0].labels,
        BTreeMap::from([
            ("path".to_string(), "C:\\x".to_string()),
            ("q".to_string(), "say \"hi\"".to_string()),
            ("nl".to_string(), "1\n2".to_string()),
        ])
    );
    for bad in [
        "x{a=\"1\"} 1\n",                     // no TYPE
        "# TYPE x gauge\nx{a=1} 1\n",         // unquoted
        "# TYPE x gauge\nx{a=\"\\t\"} 1\n",   // unknown escape
        "# TYPE x gauge\nx{a=\"1\"}1\n",      // no space
        "# TYPE x gauge\nx 1.0.0\n",          // not a number
        "# TYPE x gauge\nx inf\n",            // spelled the Rust way
        "# TYPE x gauge\nx 1\nx 2\n",         // repeated
        "# TYPE x gauge\n# TYPE x counter\n", // typed twice
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse(bad)).is_err(),
            "accepted: {bad}"
        );
    }
}

/// A streamed Chat Completions answer with the given usage.
fn text_answer(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Answer {
    Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": text}), None),
        chunk(json!({}), Some("stop")),
        json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}})
            .to_string(),
        "[DONE]".to_string(),
    ])
}

/// Scrape `/metrics` (with a bearer token when given): status and body.
async fn scrape_as(gw: &TestGateway, bearer: Option<&str>) -> (StatusCode, String) {
    let mut req = gw.http.get(format!("{}/metrics", gw.url));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status == StatusCode::OK {
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
    (status, resp.text().await.unwrap())
}

/// A successful scrape, parsed and checked.
async fn scrape(gw: &TestGateway) -> Exposition {
    let (status, body) = scrape_as(gw, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    parse(&body)
}

/// Scrape until `ready` accepts (fails after 10 s).
async fn scrape_until(
    gw: &TestGateway,
    what: &str,
    ready: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let expo = scrape(gw).await;
        if ready(&expo) {
            return expo;
        }
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const REQUESTS: &str = "mosaic_http_requests_total";

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_requests_and_model_calls() {
    let upstream = Scripted::start(vec![text_answer("Hello!", 11, 3)]).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    gateway_provider(&gw, &root, "local", &format!("{}/v1", upstream.base_url)).await;
    let (status, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(&root),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let session = session["id"].as_str().unwrap().to_string();

    let before = scrape(&gw).await;
    for family in [
        "mosaic_http_requests_total",
        "mosaic_http_request_duration_seconds",
        "mosaic_model_calls_total",
        "mosaic_model_tokens_total",
        "mosaic_model_fallbacks_total",
        "mosaic_active_runs",
        "mosaic_sse_subscribers",
        "mosaic_db_pool_connections",
        "mosaic_db_pool_idle_connections",
        "mosaic_db_pool_max_connections",
    ] {
        assert!(before.types.contains_key(family), "{family} is typed");
        assert!(before.helps.contains_key(family), "{family} is explained");
    }
    assert!(before.get("mosaic_db_pool_max_connections", &[]) >= 1.0);

    for _ in 0..3 {
        let (status, _) = gw
            .call(Method::GET, "/api/v1/agents", Some(&root), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = gw.call(Method::GET, "/api/v1/agents", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{session}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(&root),
            Some(json!({"model": "local/tiny", "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let calls = [("provider", "local"), ("model", "tiny"), ("outcome", "ok")];
    let after = scrape_until(&gw, "the model call counted", |e| {
        e.get("mosaic_model_calls_total", &calls) >= 1.0
    })
    .await;
    let rose =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let agents = |status| {
        [
            ("method", "GET"),
            ("route", "/api/v1/agents"),
            ("status", status),
        ]
    };
    assert_eq!(
        (
            rose(REQUESTS, &agents("200")),
            rose(REQUESTS, &agents("401")),
            rose(
                "mosaic_http_request_duration_seconds_count",
                &[("method", "GET"), ("route", "/api/v1/agents")]
            ),
        ),
        (3.0, 1.0, 4.0)
    );
    // Routes are counted by template, never by a path with an id in it.
    let session_route = [
        ("method", "GET"),
        ("route", "/api/v1/sessions/{id}"),
        ("status", "200"),
    ];
    assert_eq!(rose(REQUESTS, &session_route), 1.0);
    assert!(
        !after
            .samples
            .iter()
            .any(|s| s.labels.values().any(|v| v.contains(&session))),
        "no label names the session id"
    );
    let chat = [
        ("method", "POST"),
        ("route", "/v1/chat/completions"),
        ("status", "200"),
    ];
    assert_eq!(rose(REQUESTS, &chat), 1.0);
    // The first scrape is counted once it has been answered.
    let scrapes = [("method", "GET"), ("route", "/metrics"), ("status", "200")];
    assert!(rose(REQUESTS, &scrapes) >= 1.0);

    let tokens = |kind| [("provider", "local"), ("model", "tiny"), ("kind", kind)];
    assert_eq!(
        (
            rose("mosaic_model_calls_total", &calls),
            rose("mosaic_model_tokens_total", &tokens("input")),
            rose("mosaic_model_tokens_total", &tokens("output")),
        ),
        (1.0, 11.0, 3.0)
    );
}

#[tokio::test]
async fn gauges_follow_open_subscribers_and_running_runs() {
    // The model answers after a pause, so the run is seen running.
    let upstream = Scripted::start(vec![
        text_answer("Hello.", 5, 2).with_delay(Duration::from_millis(1500))
    ])
    .await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    scripted_model(&gw, &root, &format!("{}/v1", upstream.base_url), json!({})).await;
    let (status, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(&root),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let session = session["id"].as_str().unwrap().to_string();

    let gauges = |e: &Exposition| {
        (
            e.get("mosaic_active_runs", &[]),
            e.get("mosaic_sse_subscribers", &[]),
        )
    };
    assert_eq!(gauges(&scrape(&gw).await), (0.0, 0.0));

    let mut events = Events::open(&gw, &root, &session, None).await;
    assert_eq!(gauges(&scrape(&gw).await), (0.0, 1.0));

    let (status, posted) = gw
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{session}/messages"),
            Some(&root),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{posted}");
    let running = scrape_until(&gw, "the run counted as active", |e| {
        e.get("mosaic_active_runs", &[]) == 1.0
    })
    .await;
    assert_eq!(gauges(&running), (1.0, 1.0));

    let finished = events.until_finished().await;
    assert_eq!(
        finished.last().unwrap().data["run"]["status"],
        json!("completed")
    );
    let idle = scrape_until(&gw, "the run no longer active", |e| {
        e.get("mosaic_active_runs", &[]) == 0.0
    })
    .await;
    assert_eq!(gauges(&idle), (0.0, 1.0));
    let calls = [
        ("provider", "mock"),
        ("model", "test-model"),
        ("outcome", "ok"),
    ];
    assert_eq!(idle.get("mosaic_model_calls_total", &calls), 1.0);

    // The gateway notices the subscriber leave.
    drop(events);
    scrape_until(&gw, "the subscriber gone", |e| {
        e.get("mosaic_sse_subscribers", &[]) == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_configured_metrics_token_is_required_even_from_loopback() {
    let secret = "scrape-secret-0123456789";
    let gw = TestGateway::start_with(|c| c.metrics_token = Some(secret.to_string())).await;
    let admin = gw.admin("root").await;
    for (why, bearer) in [
        ("no token", None),
        ("a wrong token", Some("wrong")),
        ("the token with more after it", Some(&*format!("{secret}x"))),
        ("a prefix of the token", Some(&secret[..10])),
        ("an API token", Some(admin.as_str())),
    ] {
        let (status, body) = scrape_as(&gw, bearer).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        assert!(!body.contains("mosaic_"), "{why}: {body}");
    }
    let resp = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .header("authorization", format!("Basic {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "not a bearer token");

    let (status, body) = scrape_as(&gw, Some(secret)).await;
    assert_eq!(status, StatusCode::OK);
    let expo = parse(&body);
    // The refusals were counted too.
    let refused = [("method", "GET"), ("route", "/metrics"), ("status", "403")];
    assert_eq!(expo.get(REQUESTS, &refused), 6.0);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_traced_and_counted_too() {
    let gw = TestGateway::start().await;
    for (method, path, status) in [
        (reqwest::Method::GET, "/no/such/route", 404),
        (reqwest::Method::DELETE, "/v1/chat/completions", 405),
    ] {
        let resp = gw
            .http
            .request(method, format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let trace = resp.headers()["x-trace-id"].to_str().unwrap().to_string();
        assert_eq!(trace.len(), 32, "{trace}");
    }
    let expo = scrape(&gw).await;
    let requests = "mosaic_http_requests_total";
    assert_eq!(
        expo.get(
            requests,
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        expo.get(
            requests,
            &[
                ("method", "DELETE"),
                ("route", "/v1/chat/completions"),
                ("status", "405")
            ]
        ),
        1.0
    );
}
