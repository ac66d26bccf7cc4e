//! The gateway's JSON log: every line written while serving a request carries the
//! request's trace id (the caller's, when it sent a `traceparent`), and secrets stay out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Gateway, Sandbox};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// POST a JSON body with a `traceparent`; returns the status and the `x-trace-id` header.
fn post(gw: &Gateway, path: &str, body: &str) -> (u16, Option<String>) {
    let mut stream = TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\
         traceparent: 00-{TRACE}-00f067aa0ba902b7-01\r\n\r\n{body}",
        gw.addr,
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut trace = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("x-trace-id") {
                trace = Some(v.trim().to_string());
            }
        }
    }
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    (
        status.split_whitespace().nth(1).unwrap().parse().unwrap(),
        trace,
    )
}

#[test]
fn log_lines_of_a_request_carry_its_trace_id_and_no_secrets() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let gw = Gateway::start(&sandbox, &data);
    let token = gw.bootstrap_token().expect("a bootstrap token at start");
    let password = "a secret password 12345";
    let body = format!(r#"{{"token":"{token}","username":"root","password":"{password}"}}"#);
    let (status, trace) = post(&gw, "/api/v1/auth/bootstrap", &body);
    assert_eq!(status, 201);
    assert_eq!(
        trace.as_deref(),
        Some(TRACE),
        "the caller's trace continues"
    );

    // The bootstrap is logged inside the request: that JSON line names the trace.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = gw.log();
        if let Some(line) = log.lines().find(|l| l.contains("first admin created")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no bootstrap line in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["level"], "INFO");
    assert!(
        line.contains(&format!(r#""trace_id":"{TRACE}""#)),
        "the line carries the trace id: {line}"
    );
    // The password never reaches the log (the bootstrap token is shown once at start,
    // on purpose, in the announcement that tells the operator how to claim the gateway).
    let log = gw.log();
    assert!(!log.contains(password));
    let after_start = &log[log.find("first admin created").unwrap()..];
    assert!(!after_start.contains(&token));
}
