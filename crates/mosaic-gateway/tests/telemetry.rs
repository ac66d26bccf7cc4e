//! Traces end to end, read back from an in-memory span exporter: a client's
//! `traceparent` continues through the gateway into the provider request, malformed
//! trace headers start a new trace, and an agent run's model and tool calls hang under
//! the request that started it.
//!
//! The subscriber is process-wide, so it is installed once for this test binary and the
//! tests, which run in parallel, each pick their spans out by trace id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mosaic_gateway::LogFormat;
use mosaic_test_support::gateway::{chunk, scripted_model, Events, TestGateway};
use mosaic_test_support::scripted::{Answer, Scripted};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

/// The exporter every span of this process ends up in (installed on first use).
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    &EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            mosaic_gateway::telemetry::install(
                LogFormat::Human,
                EnvFilter::new("info"),
                provider.clone(),
            );
            (exporter, provider)
        })
        .0
}

/// The finished spans of one trace, once `done` accepts them (fails after 10 s: spans
/// end when their streams are dropped, which may be after the response arrived).
async fn trace_spans(trace: TraceId, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<SpanData> = exporter()
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .collect();
        if done(&spans) {
            return spans;
        }
        if Instant::now() > deadline {
            let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
            panic!("trace {trace} did not complete within 10 s; it has {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An attribute's value as text.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The spans whose `gen_ai.operation.name` is `op`, oldest first.
fn operation<'a>(spans: &'a [SpanData], op: &str) -> Vec<&'a SpanData> {
    let mut found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| attr(s, "gen_ai.operation.name").as_deref() == Some(op))
        .collect();
    found.sort_by_key(|s| s.start_time);
    found
}

/// The gateway's server span for a route template.
fn server_span<'a>(spans: &'a [SpanData], route: &str) -> Option<&'a SpanData> {
    spans.iter().find(|s| {
        s.span_kind == SpanKind::Server && attr(s, "http.route").as_deref() == Some(route)
    })
}

/// The `gen_ai.*` attributes of a span, as text.
fn gen_ai(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str().starts_with("gen_ai."))
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A `traceparent` as (trace id, parent id), checking that it is well formed.
fn parse_traceparent(value: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    assert_eq!((parts[1].len(), parts[2].len()), (32, 16), "{value}");
    assert_eq!(parts[3], "01", "sampled: {value}");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
    )
}

/// The trace a response names in `x-trace-id`.
fn trace_of(resp: &reqwest::Response) -> TraceId {
    let value = resp
        .headers()
        .get("x-trace-id")
        .expect("the response names its trace")
        .to_str()
        .unwrap();
    assert_eq!(value.len(), 32, "{value}");
    TraceId::from_hex(value).unwrap()
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

/// A Chat Completions answer calling one tool.
fn tool_call(id: &str, name: &str) -> Answer {
    Answer::sse_data(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                "function": {"name": name, "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        json!({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 10}}).to_string(),
        "[DONE]".to_string(),
    ])
}

/// A gateway with an admin and a gateway-wide provider `local` on `upstream`.
async fn gateway_with_provider(upstream: &Scripted) -> (TestGateway, String) {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(&root),
            Some(json!({"name": "local", "kind": "openai-compatible",
                "base_url": format!("{}/v1", upstream.base_url), "api_key": "k", "scope": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (gw, root)
}

fn chat_request(gw: &TestGateway, token: &str) -> reqwest::RequestBuilder {
    gw.http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(token)
        .json(&json!({"model": "local/tiny", "messages": [{"role": "user", "content": "hi"}]}))
}

#[tokio::test]
async fn a_client_trace_continues_through_the_gateway_into_the_provider() {
    exporter();
    let upstream = Scripted::start(vec![text_answer("Hello!", 11, 3)]).await;
    let (gw, root) = gateway_with_provider(&upstream).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";

    let resp = chat_request(&gw, &root)
        .header("traceparent", format!("00-{trace}-{client_span}-01"))
        .header("tracestate", "client=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let trace = TraceId::from_hex(trace).unwrap();
    assert_eq!(trace_of(&resp), trace);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], json!("Hello!"));

    // The provider request continues the client's trace (tracestate goes along, as
    // W3C Trace Context asks).
    let sent = upstream.received();
    assert_eq!(sent.len(), 1);
    let (sent_trace, sent_parent) = parse_traceparent(sent[0].header("traceparent").unwrap());
    assert_eq!(sent_trace, trace);
    assert_eq!(sent[0].header("tracestate"), Some("client=1"));

    let spans = trace_spans(trace, |spans| {
        server_span(spans, "/v1/chat/completions").is_some() && operation(spans, "chat").len() == 1
    })
    .await;
    let http = server_span(&spans, "/v1/chat/completions").unwrap();
    assert_eq!(http.name, "POST /v1/chat/completions");
    assert_eq!(http.parent_span_id, SpanId::from_hex(client_span).unwrap());
    assert!(http.parent_span_is_remote);
    assert_eq!(attr(http, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        attr(http, "http.response.status_code").as_deref(),
        Some("200")
    );

    let chat = operation(&spans, "chat")[0];
    assert_eq!(chat.span_kind, SpanKind::Client);
    assert_eq!(chat.parent_span_id, http.span_context.span_id());
    assert!(!chat.parent_span_is_remote);
    // The provider's parent is the model call's span.
    assert_eq!(sent_parent, chat.span_context.span_id());
    assert_eq!(
        gen_ai(chat),
        map(&[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.system", "openai-compatible"),
            ("gen_ai.request.model", "tiny"),
            ("gen_ai.response.model", "tiny"),
            ("gen_ai.usage.input_tokens", "11"),
            ("gen_ai.usage.output_tokens", "3"),
            ("gen_ai.response.finish_reasons", r#"["stop"]"#),
        ])
    );
    assert_eq!(attr(chat, "mosaic.provider").as_deref(), Some("local"));
}

#[tokio::test]
async fn malformed_trace_headers_start_a_new_trace_and_baggage_stays_inside() {
    exporter();
    let upstream = Scripted::start(vec![text_answer("ok", 1, 1)]).await;
    let (gw, root) = gateway_with_provider(&upstream).await;
    let t = "0af7651916cd43dd8448eb211c80319c";
    let s = "b7ad6b7169203331";
    let valid = format!("00-{t}-{s}-01");
    let many_members: Vec<String> = (0..40).map(|i| format!("vendor{i}=value{i}")).collect();
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "one-digit version",
            vec![("traceparent", format!("0-{t}-{s}-01"))],
        ),
        (
            "three-digit version",
            vec![("traceparent", format!("000-{t}-{s}-01"))],
        ),
        (
            "version ff",
            vec![("traceparent", format!("ff-{t}-{s}-01"))],
        ),
        (
            "all-zero trace id",
            vec![("traceparent", format!("00-{}-{s}-01", "0".repeat(32)))],
        ),
        (
            "all-zero parent id",
            vec![("traceparent", format!("00-{t}-{}-01", "0".repeat(16)))],
        ),
        (
            "bad hex in the trace id",
            vec![("traceparent", format!("00-{}zz-{s}-01", &t[..30]))],
        ),
        (
            "short trace id",
            vec![("traceparent", format!("00-{}-{s}-01", &t[..30]))],
        ),
        (
            "signed trace id",
            vec![("traceparent", format!("00-+{}-{s}-01", &t[1..]))],
        ),
        (
            "upper-case hex",
            vec![("traceparent", format!("00-{}-{s}-01", t.to_uppercase()))],
        ),
        (
            "missing flags",
            vec![("traceparent", format!("00-{t}-{s}"))],
        ),
        (
            // A later version may add fields, but not 4 KB of them.
            "4 KB long",
            vec![("traceparent", format!("01-{t}-{s}-01-{}", "a".repeat(4096)))],
        ),
        (
            "two traceparent headers",
            vec![
                ("traceparent", valid.clone()),
                ("traceparent", format!("00-{}-{s}-01", "1".repeat(32))),
            ],
        ),
        (
            "oversized tracestate",
            vec![
                ("traceparent", valid.clone()),
                ("tracestate", many_members.join(",")),
            ],
        ),
    ];
    let given = TraceId::from_hex(t).unwrap();
    let mut seen = Vec::new();
    for (why, headers) in cases {
        let mut req = chat_request(&gw, &root).header("baggage", "user.id=alice,secret=hunter2");
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{why}");
        let trace = trace_of(&resp);
        let _ = resp.bytes().await.unwrap();
        assert_ne!(trace, given, "{why}: a new trace starts");
        assert_ne!(trace, TraceId::INVALID, "{why}");
        assert!(!seen.contains(&trace), "{why}: a trace of its own");
        seen.push(trace);

        let sent = upstream.received().pop().unwrap();
        let (sent_trace, _) = parse_traceparent(sent.header("traceparent").unwrap());
        assert_eq!(sent_trace, trace, "{why}: the provider gets the new trace");
        assert_eq!(
            sent.header("baggage"),
            None,
            "{why}: baggage is not forwarded"
        );

        let spans = trace_spans(trace, |spans| {
            server_span(spans, "/v1/chat/completions").is_some()
        })
        .await;
        let http = server_span(&spans, "/v1/chat/completions").unwrap();
        assert_eq!(http.parent_span_id, SpanId::INVALID, "{why}: a root span");
    }

    // A valid traceparent with baggage: the trace continues, the baggage does not.
    let resp = chat_request(&gw, &root)
        .header("traceparent", &valid)
        .header("baggage", "user.id=alice,secret=hunter2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(trace_of(&resp), given);
    let _ = resp.bytes().await.unwrap();
    let sent = upstream.received().pop().unwrap();
    assert_eq!(
        parse_traceparent(sent.header("traceparent").unwrap()).0,
        given
    );
    assert_eq!(sent.header("baggage"), None);
    assert!(
        !sent
            .headers
            .iter()
            .any(|(_, v)| v.contains("hunter2") || v.contains("alice")),
        "{:?}",
        sent.headers
    );
}

#[tokio::test]
async fn an_agent_run_traces_its_model_and_tool_calls_under_the_request() {
    exporter();
    let upstream = Scripted::start(vec![
        tool_call("call_1", "current_time"),
        text_answer("It is noon.", 60, 5),
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
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let session = session["id"].as_str().unwrap().to_string();
    let mut events = Events::open(&gw, &root, &session, None).await;

    let resp = gw
        .http
        .post(format!("{}/api/v1/sessions/{session}/messages", gw.url))
        .bearer_auth(&root)
        .json(&json!({"text": "What time is it?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let trace = trace_of(&resp);
    let _ = resp.bytes().await.unwrap();
    let finished = events.until_finished().await;
    assert_eq!(
        finished.last().unwrap().data["run"]["status"],
        json!("completed")
    );

    let spans = trace_spans(trace, |spans| {
        server_span(spans, "/api/v1/sessions/{id}/messages").is_some()
            && operation(spans, "invoke_agent").len() == 1
            && operation(spans, "chat").len() == 2
            && operation(spans, "execute_tool").len() == 1
    })
    .await;
    let http = server_span(&spans, "/api/v1/sessions/{id}/messages").unwrap();
    assert_eq!(http.parent_span_id, SpanId::INVALID);
    let run = operation(&spans, "invoke_agent")[0];
    assert_eq!(run.parent_span_id, http.span_context.span_id());
    assert_eq!(attr(run, "mosaic.session_id"), Some(session.clone()));
    assert_eq!(attr(run, "mosaic.run.status").as_deref(), Some("completed"));

    let chats = operation(&spans, "chat");
    let tool = operation(&spans, "execute_tool")[0];
    for span in chats.iter().chain([&tool]) {
        assert_eq!(
            span.parent_span_id,
            run.span_context.span_id(),
            "{}",
            span.name
        );
    }
    assert_eq!(
        attr(tool, "gen_ai.tool.name").as_deref(),
        Some("current_time")
    );
    assert_eq!(attr(tool, "gen_ai.tool.call.id").as_deref(), Some("call_1"));
    // Model call, then the tool it asked for, then the model again.
    assert!(chats[0].start_time <= tool.start_time && tool.start_time <= chats[1].start_time);
    let usage: Vec<_> = chats
        .iter()
        .map(|c| {
            (
                attr(c, "gen_ai.usage.input_tokens").unwrap(),
                attr(c, "gen_ai.usage.output_tokens").unwrap(),
                attr(c, "gen_ai.response.finish_reasons").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        usage,
        vec![
            ("40".into(), "10".into(), r#"["tool_use"]"#.into()),
            ("60".into(), "5".into(), r#"["stop"]"#.into()),
        ]
    );

    // Each provider request names its own model call as parent.
    let parents: Vec<(TraceId, SpanId)> = upstream
        .received()
        .iter()
        .map(|r| parse_traceparent(r.header("traceparent").unwrap()))
        .collect();
    let chat_ids: Vec<(TraceId, SpanId)> = chats
        .iter()
        .map(|c| (trace, c.span_context.span_id()))
        .collect();
    assert_eq!(parents, chat_ids);
}
