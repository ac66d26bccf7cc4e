//! A real export: `mosaic serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an
//! OTLP/HTTP receiver written here (it decodes the protobuf with the
//! `opentelemetry-proto` types) sends the spans of a request, in the caller's trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use support::{mosaic, Sandbox};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// The spans received: (trace id hex, span name, service.name, content type).
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// An OTLP/HTTP receiver on loopback: decodes every POST /v1/traces and answers 200.
fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let sink = sink.clone();
            std::thread::spawn(move || serve(stream, &sink));
        }
    });
    (format!("http://{addr}"), received)
}

fn serve(stream: TcpStream, sink: &Received) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap(),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(
            request_line.starts_with("POST /v1/traces "),
            "{request_line}"
        );
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    sink.lock().unwrap().push((
                        trace,
                        span.name,
                        service.clone(),
                        content_type.clone(),
                    ));
                }
            }
        }
        let mut out = stream.try_clone().unwrap();
        out.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap();
    }
}

#[test]
fn the_spans_of_a_request_reach_an_otlp_receiver_in_the_callers_trace() {
    let (endpoint, received) = receiver();
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let mut child = mosaic(
        sandbox.dir.path(),
        &sandbox.path("serve.toml"),
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
    )
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
    .env("OTEL_SERVICE_NAME", "mosaic-under-test")
    .env("OTEL_BSP_SCHEDULE_DELAY", "100")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Some(a) = support::listening_address(&log.lock().unwrap()) {
            break a;
        }
        assert!(Instant::now() < deadline, "never listened");
        std::thread::sleep(Duration::from_millis(10));
    };
    // A request in a trace of ours.
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /api/v1/auth/bootstrap HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         traceparent: 00-{TRACE}-b7ad6b7169203331-01\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let span = loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .find(|(trace, name, ..)| trace == TRACE && name == "GET /api/v1/auth/bootstrap")
            .cloned();
        if let Some(span) = found {
            break span;
        }
        assert!(
            Instant::now() < deadline,
            "the request's span never arrived; got {:?}",
            received.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(span.2.contains("mosaic-under-test"), "{span:?}");
    assert_eq!(span.3, "application/x-protobuf");
    // The store operation of the request is a span of the same trace.
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .any(|(trace, name, ..)| trace == TRACE && name.starts_with("store.")));
    let _ = child.kill();
    let _ = child.wait();
}
