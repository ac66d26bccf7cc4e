//! End-to-end tests of the CLI's W3C Trace Context: every request of one command is one
//! trace (a `traceparent` with the command's trace id and a span id of its own), and
//! `mosaic run --trace` prints that id. Header checks run against a fake gateway that
//! records what it is sent; the trace's continuation runs through a real gateway into a
//! scripted provider that records the `traceparent` it received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binaries; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use mosaic_test_support::scripted::{Answer, Scripted};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{Sandbox, World};

/// A request the fake gateway received: its path and headers (names lowercased).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A gateway that records each request and answers from `answer(path)` (a status and
/// a JSON body), one request a connection; it lives as long as the test process.
fn fake_gateway(answer: fn(&str) -> (u16, Value)) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve_one(stream, answer, &log));
        }
    });
    (url, seen)
}

fn serve_one(stream: TcpStream, answer: fn(&str) -> (u16, Value), log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let seen = Seen { path, headers };
    let length: usize = seen
        .header("content-length")
        .map_or(0, |l| l.parse().unwrap());
    reader.read_exact(&mut vec![0; length]).unwrap();
    let (status, body) = answer(&seen.path);
    log.lock().unwrap().push(seen);
    let body = body.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
}

/// Session `s1` exists; everything else is not found.
fn session_s1_only(path: &str) -> (u16, Value) {
    if path == "/api/v1/sessions/s1" {
        let session = json!({"id": "s1", "agent_id": null, "title": "t", "active_leaf_id": null,
            "archived": false, "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z"});
        (200, session)
    } else {
        (
            404,
            json!({"error": {"code": "not_found", "message": "no such thing"}}),
        )
    }
}

/// The (trace id, span id) of a well-formed `traceparent`: version 00, lowercase hex
/// ids that are not all zeros, sampled.
fn parse_traceparent(header: &str) -> (String, String) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!((parts[0], parts[3]), ("00", "01"), "{header}");
    for (id, len) in [(parts[1], 32), (parts[2], 16)] {
        assert!(is_hex_id(id, len), "{header}");
    }
    (parts[1].to_string(), parts[2].to_string())
}

fn is_hex_id(id: &str, len: usize) -> bool {
    id.len() == len
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0')
}

/// The id of the `trace: ID` line a `--trace` run printed on stderr.
fn printed_trace(stderr: &str) -> String {
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("trace: "))
        .unwrap_or_else(|| panic!("no trace line in:\n{stderr}"));
    assert!(is_hex_id(id, 32), "{id}");
    id.to_string()
}

#[test]
fn every_request_of_one_command_is_one_trace_with_a_span_each() {
    let (url, seen) = fake_gateway(session_s1_only);
    let sandbox = Sandbox::new();
    let who = sandbox.identity("someone");

    // The session is read, then its events are asked for (not found: the command stops).
    let args = [
        "--url", &url, "--token", "x", "run", "--trace", "-s", "s1", "hi",
    ];
    let out = who.run(&args).expect_code(5);
    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/api/v1/sessions/s1", "/api/v1/sessions/s1/events"]
    );
    let ids: Vec<(String, String)> = seen
        .iter()
        .map(|s| parse_traceparent(s.header("traceparent").expect("a traceparent")))
        .collect();
    assert_eq!(ids[0].0, ids[1].0, "one trace: {ids:?}");
    assert_ne!(ids[0].1, ids[1].1, "a span each: {ids:?}");
    // The id printed is the one sent, and printed before anything else.
    assert_eq!(printed_trace(&out.stderr), ids[0].0);
    assert!(out.stderr.starts_with("trace: "), "{out}");
    // Nothing but the traceparent leaves the client.
    for s in &seen {
        assert_eq!((s.header("tracestate"), s.header("baggage")), (None, None));
    }
}

#[test]
fn each_command_is_a_trace_of_its_own() {
    let (url, seen) = fake_gateway(session_s1_only);
    let sandbox = Sandbox::new();
    let who = sandbox.identity("someone");

    for _ in 0..2 {
        who.run(&["--url", &url, "--token", "x", "whoami"])
            .expect_code(5);
    }
    let seen = seen.lock().unwrap().clone();
    let traces: Vec<String> = seen
        .iter()
        .map(|s| {
            assert_eq!(s.path, "/api/v1/auth/me");
            parse_traceparent(s.header("traceparent").expect("a traceparent")).0
        })
        .collect();
    assert_eq!(traces.len(), 2);
    assert_ne!(traces[0], traces[1]);
}

#[test]
fn without_trace_run_prints_no_trace_and_its_help_tells_of_it() {
    let (url, _seen) = fake_gateway(session_s1_only);
    let sandbox = Sandbox::new();
    let who = sandbox.identity("someone");

    let out = who
        .run(&["--url", &url, "--token", "x", "run", "-s", "s1", "hi"])
        .expect_code(5);
    assert!(!out.stderr.contains("trace:"), "{out}");
    let help = who.run(&["run", "--help"]).ok();
    assert!(help.stdout.contains("--trace"), "{help}");
    assert!(help.stdout.contains("trace: ID"), "{help}");
}

/// One streamed Chat Completions answer saying "Hello.".
fn hello() -> Answer {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
        "model": "test-model", "choices": [],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10}});
    Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Hello."}), Value::Null),
        chunk(json!({}), json!("stop")),
        usage.to_string(),
        "[DONE]".to_string(),
    ])
}

#[test]
fn run_trace_prints_the_trace_the_gateway_continues_into_the_provider() {
    // The scripted provider serves on this runtime's workers while the test waits for
    // the CLI; every request it gets is answered with `hello`.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let model = rt.block_on(Scripted::start(vec![hello()]));
    let world = World::new().with_scripted_model(&format!("{}/v1", model.base_url));

    let out = world.admin.run(&["run", "--trace", "hi"]).ok();
    assert_eq!(out.stdout, "Hello.\n");
    let trace = printed_trace(&out.stderr);
    assert_eq!(out.stderr, format!("trace: {trace}\n"));
    let calls: Vec<_> = model
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let sent = calls[0]
        .header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent reached the provider: {calls:?}"));
    // The gateway's own span is the parent there, sampled or not as it decides: only
    // the trace id must be the CLI's.
    assert_eq!(sent.split('-').nth(1), Some(trace.as_str()), "{sent}");
}
