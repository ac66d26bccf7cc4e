//! End-to-end tests of providers, models, routes, usage and `mosaic complete`: a real
//! gateway driven by the CLI, calling a scripted OpenAI Chat Completions server on
//! loopback that streams a fixed answer and records every request it gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binary; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{closed_address, mosaic, wait_with_deadline, Identity, World};

const MODEL: &str = "scripted-1";
const KEY: &str = "sk-scripted-secret-0123456789";
/// What the scripted model answers, in the pieces it streams.
const PIECES: [&str; 3] = ["Hello", " from the", " scripted model."];
const ANSWER: &str = "Hello from the scripted model.";
/// A prompt containing this makes the upstream hold the rest of its answer after the
/// first piece until the test opens the gate.
const HOLD: &str = "hold after the first piece";
/// A prompt containing this makes the upstream report an error after the first piece.
const FAIL: &str = "fail after the first piece";

/// A scripted OpenAI Chat Completions server: `GET /v1/models` lists [`MODEL`];
/// `POST /v1/chat/completions` streams [`PIECES`] then a usage chunk (12 in, 6 out,
/// 2 cached). Every request is recorded as `{method, path, authorization, body}`.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = Upstream {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            gate: Arc::default(),
        };
        let (requests, gate) = (upstream.requests.clone(), upstream.gate.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (requests, gate) = (requests.clone(), gate.clone());
                std::thread::spawn(move || serve(stream, &requests, &gate));
            }
        });
        upstream
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn chat_requests(&self) -> Vec<Value> {
        let all = self.requests.lock().unwrap();
        all.iter()
            .filter(|r| r["path"] == "/v1/chat/completions")
            .cloned()
            .collect()
    }

    fn open_gate(&self) {
        let (open, changed) = &*self.gate;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Value>>, gate: &(Mutex<bool>, Condvar)) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut length, mut authorization) = (0, Value::Null);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = json!(value.trim()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hold = body.to_string().contains(HOLD);
    let fail = body.to_string().contains(FAIL);
    requests.lock().unwrap().push(
        json!({"method": method, "path": path, "authorization": authorization, "body": body}),
    );

    let mut out = stream;
    match (method.as_str(), path.as_str()) {
        ("GET", "/v1/models") => {
            let list = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
            let list = list.to_string();
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{list}",
                list.len()
            );
        }
        ("POST", "/v1/chat/completions") => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                 connection: close\r\n\r\n"
            );
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            let mut events = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            events.extend(
                PIECES
                    .iter()
                    .map(|p| chunk(json!({"content": p}), Value::Null)),
            );
            events.push(chunk(json!({}), json!("stop")));
            events.push(
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "model": MODEL, "choices": [], "usage": {"prompt_tokens": 12,
                "completion_tokens": 6, "total_tokens": 18,
                "prompt_tokens_details": {"cached_tokens": 2}}}),
            );
            for (i, event) in events.iter().enumerate() {
                if write!(out, "data: {event}\n\n").is_err() {
                    return;
                }
                let _ = out.flush();
                if fail && i == 1 {
                    let error =
                        json!({"error": {"message": "scripted failure", "type": "server_error"}});
                    let _ = write!(out, "data: {error}\n\n");
                    return;
                }
                if hold && i == 1 {
                    let (open, changed) = gate;
                    let guard = open.lock().unwrap();
                    let _ = changed
                        .wait_timeout_while(guard, Duration::from_secs(30), |open| !*open)
                        .unwrap();
                }
            }
            let _ = write!(out, "data: [DONE]\n\n");
        }
        _ => {
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    }
    let _ = out.flush();
}

/// `providers add local` (for the whole gateway, key from stdin) and a `default`
/// route over it, as the admin.
fn add_local_provider_and_route(world: &World, upstream: &Upstream) -> Value {
    let added = world
        .admin
        .run_with_stdin(
            &[
                "providers",
                "add",
                "local",
                "--kind",
                "openai-compatible",
                "--base-url",
                &upstream.base_url(),
                "--gateway",
                "--api-key-stdin",
                "--json",
            ],
            &format!("{KEY}\n"),
        )
        .ok();
    assert!(!added.stdout.contains(KEY), "{added}");
    world
        .admin
        .run(&[
            "routes",
            "set",
            "default",
            &format!("local/{MODEL}@5s"),
            "--gateway",
        ])
        .ok();
    added.json()
}

/// The usage report, once the gateway has metered `requests` calls (it records them
/// just after each answer ends).
fn usage_after(who: &Identity, requests: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = who.run(&["usage", "--json"]).ok().json();
        let counted: u64 = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["requests"].as_u64().unwrap())
            .sum();
        if counted >= requests || Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_admin_adds_a_loopback_provider_routes_to_it_and_completes_through_it() {
    let upstream = Upstream::start();
    let world = World::new();
    let admin = &world.admin;

    let added = add_local_provider_and_route(&world, &upstream);
    assert_eq!(added["name"], "local");
    assert_eq!(added["scope"], "gateway");
    assert_eq!(added["wire"], "chat_completions");
    assert_eq!(added["has_api_key"], true);

    let listed = admin.run(&["providers", "list", "--json"]).ok();
    assert!(
        !listed.stdout.contains(KEY),
        "the key never comes back: {listed}"
    );
    let listed = listed.json();
    assert_eq!(listed["items"][0]["id"], added["id"]);
    assert_eq!(listed["items"][0]["has_api_key"], true);
    let shown = admin.run(&["providers", "show", "local"]).ok();
    assert!(shown.stdout.contains("set"), "{shown}");
    assert!(!shown.stdout.contains(KEY), "{shown}");

    let models = admin.run(&["models", "list"]).ok();
    assert!(models.stdout.starts_with("ID"), "{models}");
    assert!(
        models.stdout.contains(&format!("local/{MODEL}")),
        "{models}"
    );
    let openai = admin
        .run(&["models", "list", "--openai", "--json"])
        .ok()
        .json();
    let ids: Vec<&str> = openai["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["default".to_string(), format!("local/{MODEL}")]);

    let tested = admin.run(&["providers", "test", "local"]).ok();
    assert!(
        tested
            .stdout
            .starts_with(&format!("ok: {MODEL} answered in "))
            && tested.stdout.contains(" ms"),
        "{tested}"
    );

    let routes = admin.run(&["routes", "list"]).ok();
    assert!(
        routes.stdout.contains(&format!("local/{MODEL}@5s")),
        "{routes}"
    );
    let route = admin
        .run(&["routes", "show", "default", "--json"])
        .ok()
        .json();
    assert_eq!(
        route["steps"],
        json!([{"provider": "local", "model": MODEL, "timeout_ms": 5000}])
    );

    // Streamed by default, and quiet about routing unless asked.
    let answer = admin.run(&["complete", "--model", "default", "hi"]).ok();
    assert_eq!(answer.stdout, format!("{ANSWER}\n"));
    assert!(!answer.stderr.contains("answered by"), "{answer}");

    let verbose = admin
        .run(&[
            "complete",
            "--model",
            "default",
            "--system",
            "Be brief.",
            "--verbose",
            "hi",
        ])
        .ok();
    assert_eq!(verbose.stdout, format!("{ANSWER}\n"));
    assert!(
        verbose
            .stderr
            .contains(&format!("answered by local/{MODEL}")),
        "{verbose}"
    );
    assert!(
        verbose.stderr.contains("tokens: 12 in (2 cached), 6 out"),
        "{verbose}"
    );
    let sent = upstream.chat_requests().pop().unwrap();
    assert_eq!(
        sent["authorization"],
        format!("Bearer {KEY}"),
        "the stored key is used"
    );
    assert_eq!(sent["body"]["model"], MODEL);
    assert_eq!(
        sent["body"]["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );

    let whole = admin
        .run(&[
            "complete",
            "--model",
            &format!("local/{MODEL}"),
            "--no-stream",
            "--json",
            "hi",
        ])
        .ok()
        .json();
    assert_eq!(whole["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(whole["mosaic"]["provider"], "local");

    let chunks = admin
        .run(&["complete", "--model", "default", "--json", "hi"])
        .ok();
    let text: String = chunks
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, ANSWER);

    // Four completions, each 12 tokens in (2 cached) and 6 out; the test is not metered.
    let report = usage_after(admin, 4);
    let rows = report["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["provider"], "local");
    assert_eq!(rows[0]["model"], MODEL);
    assert_eq!(
        [
            &rows[0]["requests"],
            &rows[0]["input_tokens"],
            &rows[0]["output_tokens"],
            &rows[0]["cached_tokens"]
        ],
        [&json!(4), &json!(48), &json!(24), &json!(8)]
    );
    let table = admin.run(&["usage"]).ok();
    assert!(table.stdout.contains(&format!("local/{MODEL}")), "{table}");

    let health = admin.run(&["routes", "health", "--json"]).ok().json();
    let local = health["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["provider"] == "local")
        .unwrap_or_else(|| panic!("{health}"));
    assert_eq!(local["model"], MODEL);
    assert_eq!(local["healthy"], true);
    let table = admin.run(&["routes", "health"]).ok();
    assert!(table.stdout.starts_with("MODEL"), "{table}");
}

#[test]
fn a_dead_provider_fails_its_test_and_a_route_falls_back_past_it() {
    let upstream = Upstream::start();
    let world = World::new();
    let admin = &world.admin;
    add_local_provider_and_route(&world, &upstream);
    let dead = format!("http://{}/v1", closed_address());
    let args = [
        "providers",
        "add",
        "dead",
        "--kind",
        "openai-compatible",
        "--base-url",
        &dead,
        "--api-key-env",
        "DEAD_KEY",
        "--json",
    ];
    let mut cmd = mosaic(&admin.root, &admin.creds, &args);
    cmd.env("DEAD_KEY", "sk-dead");
    let added = support::run(cmd, &args, None).ok();
    assert_eq!(added.json()["has_api_key"], true, "{added}");
    let updated = admin
        .run(&["providers", "update", "dead", "--remove-key", "--json"])
        .ok();
    assert_eq!(updated.json()["has_api_key"], false, "{updated}");

    let failed = admin
        .run(&["providers", "test", "dead", "--model", "m"])
        .expect_code(1);
    assert!(
        failed.stderr.contains("error: provider dead, model m: "),
        "{failed}"
    );

    admin
        .run(&[
            "routes",
            "set",
            "careful",
            "dead/m@2s",
            &format!("local/{MODEL}"),
        ])
        .ok();
    let answer = admin.run(&["complete", "-m", "careful", "-v", "hi"]).ok();
    assert_eq!(answer.stdout, format!("{ANSWER}\n"));
    assert!(
        answer.stderr.contains("fell back from dead/m: "),
        "{answer}"
    );
    assert!(
        answer
            .stderr
            .contains(&format!("answered by local/{MODEL}")),
        "{answer}"
    );
    let health = admin.run(&["routes", "health", "--json"]).ok().json();
    let dead = health["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["provider"] == "dead")
        .unwrap_or_else(|| panic!("{health}"));
    assert_eq!(dead["healthy"], false);
    assert!(dead["last_error"].is_string(), "{health}");

    // A model that fails mid-answer: what came so far, then its error.
    let broken = admin
        .run(&["complete", "--model", "default", FAIL])
        .expect_code(1);
    assert_eq!(broken.stdout, format!("{}\n", PIECES[0]));
    assert!(broken.stderr.contains("scripted failure"), "{broken}");

    // What went wrong, in exit codes: unknown model 5, unknown provider 7, bad step 2.
    admin
        .run(&["complete", "--model", "nothing", "hi"])
        .expect_code(5);
    admin
        .run(&["routes", "set", "r", "nobody/m"])
        .expect_code(6);
    admin.run(&["routes", "set", "r", "gpt-4o"]).expect_code(2);
    admin.run(&["usage", "--from", "last week"]).expect_code(2);

    admin.run(&["routes", "remove", "careful"]).ok();
    admin.run(&["providers", "remove", "dead"]).ok();
    admin.run(&["providers", "show", "dead"]).expect_code(5);
    let names: Vec<String> = admin.run(&["routes", "list", "--json"]).ok().json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["default"]);
}

#[test]
fn a_user_uses_the_gateways_provider_but_may_not_add_one_on_loopback() {
    let upstream = Upstream::start();
    let world = World::new();
    add_local_provider_and_route(&world, &upstream);
    let bob = world.user("bob");

    let refused = bob
        .run_with_stdin(
            &[
                "providers",
                "add",
                "mine",
                "--kind",
                "openai-compatible",
                "--base-url",
                &upstream.base_url(),
                "--api-key-stdin",
            ],
            "sk-bob\n",
        )
        .expect_code(4);
    assert!(refused.stderr.contains("loopback"), "{refused}");
    bob.run(&[
        "providers",
        "add",
        "everyone",
        "--kind",
        "openai",
        "--gateway",
    ])
    .expect_code(4);
    bob.run(&["providers", "remove", "local"]).expect_code(4);

    let listed = bob.run(&["providers", "list", "--json"]).ok();
    assert!(!listed.stdout.contains(KEY), "{listed}");
    assert_eq!(listed.json()["items"][0]["name"], "local");
    let answer = bob.run(&["complete", "--model", "default", "hi"]).ok();
    assert_eq!(answer.stdout, format!("{ANSWER}\n"));
    let piped = bob
        .run_with_stdin(&["complete", "--model", "default", "-"], "from a pipe\n")
        .ok();
    assert_eq!(piped.stdout, format!("{ANSWER}\n"));
    let sent = upstream.chat_requests().pop().unwrap();
    assert_eq!(sent["body"]["messages"][0]["content"], "from a pipe\n");

    // Usage is per user: bob's two calls, none of the admin's.
    let report = usage_after(&bob, 2);
    assert_eq!(report["items"][0]["requests"], 2, "{report}");
    assert_eq!(
        world.admin.run(&["usage", "--json"]).ok().json()["items"],
        json!([])
    );
}

#[test]
fn complete_prints_each_piece_as_it_arrives() {
    let upstream = Upstream::start();
    let world = World::new();
    add_local_provider_and_route(&world, &upstream);

    let mut child = mosaic(
        &world.admin.root,
        &world.admin.creds,
        &["complete", "--model", "default", HOLD],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (bytes_tx, bytes_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || bytes_tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let stderr = support::drain(child.stderr.take().unwrap());

    // The upstream holds the rest of its answer until the first piece is on screen.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(PIECES[0]) {
        let left = deadline.saturating_duration_since(Instant::now());
        match bytes_rx.recv_timeout(left) {
            Ok(bytes) => seen.extend(bytes),
            Err(e) => panic!(
                "no first piece ({e}); so far {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    assert_eq!(String::from_utf8_lossy(&seen), PIECES[0]);
    upstream.open_gate();

    let status = wait_with_deadline(&mut child, Duration::from_secs(30)).expect("complete ends");
    while let Ok(bytes) = bytes_rx.recv_timeout(Duration::from_secs(5)) {
        seen.extend(bytes);
    }
    assert!(status.success(), "{status}: {}", stderr.join().unwrap());
    assert_eq!(String::from_utf8_lossy(&seen), format!("{ANSWER}\n"));
}
