//! `http_fetch` against real servers on loopback addresses: what it refuses (and that the
//! refused server never sees a connection), what it fetches, and how it follows redirects.
//!
//! The "public" server listens on 127.0.0.2 and is made reachable through the tool's
//! `allow` list, so redirects from a permitted server to internal addresses can be tested
//! without leaving the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosaic_agent::tools::{
    Decision, FetchConfig, HttpFetch, Registry, Tool, ToolContext, ToolOutput,
};
use mosaic_api::{AgentTool, ToolPolicy};
use mosaic_store::Principal;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a test server answers to one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send nothing and keep the connection open.
    stall: bool,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
            stall: false,
        }
    }

    fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
            stall: false,
        }
    }

    fn stall() -> Reply {
        Reply {
            stall: true,
            ..Reply::new(200, "text/plain", "")
        }
    }
}

/// A hand-written HTTP/1.1 server that records every connection and request head.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(
        ip: &str,
        answer: impl Fn(&str, SocketAddr) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let task = tokio::spawn({
            let connections = connections.clone();
            let requests = requests.clone();
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let requests = requests.clone();
                    let answer = answer.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                        requests.lock().unwrap().push(head);
                        let reply = answer(&path, addr);
                        if reply.stall {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        let mut out = format!(
                            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                            reply.status,
                            reply.body.len()
                        );
                        for (k, v) in &reply.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        let mut bytes = out.into_bytes();
                        bytes.extend_from_slice(&reply.body);
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Server {
            addr,
            connections,
            requests,
            task,
        }
    }

    /// A server that must never be reached.
    async fn untouchable(ip: &str) -> Server {
        Server::start(ip, |_, _| Reply::new(200, "text/plain", "the secret")).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|head| head.split(' ').nth(1).unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The default configuration, plus 127.0.0.2 counted as permitted.
fn permitting_127_0_0_2() -> FetchConfig {
    FetchConfig {
        allow: vec!["127.0.0.2/32".parse().unwrap()],
        ..FetchConfig::default()
    }
}

fn context() -> ToolContext {
    ToolContext {
        principal: Principal::user("u1", false),
        session_id: "s1".into(),
        agent_id: None,
        cancel: CancellationToken::new(),
    }
}

async fn fetch(config: FetchConfig, args: Value) -> ToolOutput {
    HttpFetch::new(config).call(&context(), args).await
}

fn refused(output: &ToolOutput) -> &str {
    assert!(output.is_error, "expected a refusal, got {output:?}");
    &output.output
}

fn fetched(output: &ToolOutput) -> Value {
    assert!(!output.is_error, "expected a page, got {output:?}");
    serde_json::from_str(&output.output).unwrap()
}

#[tokio::test]
async fn refuses_a_loopback_ip_literal_without_connecting() {
    let secret = Server::untouchable("127.0.0.1").await;
    let out = fetch(FetchConfig::default(), json!({ "url": secret.url("/") })).await;
    assert_eq!(
        refused(&out),
        "refused: 127.0.0.1 is a loopback address; http_fetch only reaches public addresses"
    );
    assert_eq!(secret.connections(), 0);
}

#[tokio::test]
async fn refuses_the_cloud_metadata_address() {
    let out = fetch(
        FetchConfig::default(),
        json!({ "url": "http://169.254.169.254/latest/meta-data/" }),
    )
    .await;
    assert_eq!(
        refused(&out),
        "refused: 169.254.169.254 is a link-local address; http_fetch only reaches public addresses"
    );
}

#[tokio::test]
async fn refuses_an_ipv4_mapped_ipv6_literal_of_loopback() {
    let secret = Server::untouchable("127.0.0.1").await;
    let url = format!("http://[::ffff:127.0.0.1]:{}/", secret.port());
    let out = fetch(FetchConfig::default(), json!({ "url": url })).await;
    assert_eq!(
        refused(&out),
        "refused: ::ffff:127.0.0.1 (that is 127.0.0.1) is a loopback address; \
         http_fetch only reaches public addresses"
    );
    assert_eq!(secret.connections(), 0);
}

#[tokio::test]
async fn refuses_localhost_after_resolving_it() {
    let secret = Server::untouchable("127.0.0.1").await;
    let url = format!("http://localhost:{}/", secret.port());
    let out = fetch(FetchConfig::default(), json!({ "url": url })).await;
    let message = refused(&out);
    assert!(
        message.starts_with("refused: localhost resolves only to internal addresses (")
            && message.ends_with("; http_fetch only reaches public addresses"),
        "{message}"
    );
    assert_eq!(secret.connections(), 0);
}

#[tokio::test]
async fn refuses_a_redirect_from_a_permitted_server_to_a_loopback_address() {
    let secret = Server::untouchable("127.0.0.1").await;
    let target = secret.url("/secret");
    let redirector = Server::start("127.0.0.2", move |_, _| Reply::redirect(&target)).await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": redirector.url("/") }),
    )
    .await;
    assert_eq!(
        refused(&out),
        format!(
            "refused: {} redirected to {}, and 127.0.0.1 is a loopback address; \
             http_fetch only reaches public addresses",
            redirector.url("/"),
            secret.url("/secret")
        )
    );
    assert_eq!(redirector.paths(), vec!["/"]);
    assert_eq!(secret.connections(), 0);
}

#[tokio::test]
async fn refuses_302_and_307_redirects_to_loopback_in_every_literal_spelling() {
    let v4 = Server::untouchable("127.0.0.1").await;
    let v6 = Server::untouchable("::1").await;
    for status in [302, 307] {
        for target in [
            format!("http://127.0.0.1:{}/secret", v4.port()),
            format!("http://2130706433:{}/secret", v4.port()),
            format!("http://0x7f.1:{}/secret", v4.port()),
            format!("http://[::1]:{}/secret", v6.port()),
            format!("http://[::ffff:7f00:1]:{}/secret", v4.port()),
        ] {
            let location = target.clone();
            let redirector = Server::start("127.0.0.2", move |_, _| Reply {
                status,
                ..Reply::redirect(&location)
            })
            .await;
            let out = fetch(
                permitting_127_0_0_2(),
                json!({ "url": redirector.url("/") }),
            )
            .await;
            let why = refused(&out);
            assert!(
                why.contains("is a loopback address"),
                "{status} to {target}: {why}"
            );
        }
    }
    assert_eq!((v4.connections(), v6.connections()), (0, 0));
}

#[tokio::test]
async fn refuses_a_redirect_to_the_cloud_metadata_address() {
    let redirector = Server::start("127.0.0.2", |_, _| {
        Reply::redirect("http://169.254.169.254/latest/meta-data/")
    })
    .await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": redirector.url("/") }),
    )
    .await;
    assert_eq!(
        refused(&out),
        format!(
            "refused: {} redirected to http://169.254.169.254/latest/meta-data/, and \
             169.254.169.254 is a link-local address; http_fetch only reaches public addresses",
            redirector.url("/")
        )
    );
}

#[tokio::test]
async fn refuses_a_redirect_to_a_name_that_resolves_to_loopback() {
    let secret = Server::untouchable("127.0.0.1").await;
    let target = format!("http://localhost:{}/secret", secret.port());
    let redirector = Server::start("127.0.0.2", move |_, _| Reply::redirect(&target)).await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": redirector.url("/") }),
    )
    .await;
    let message = refused(&out);
    assert!(
        message.contains("redirected to http://localhost:")
            && message.contains("localhost resolves only to internal addresses"),
        "{message}"
    );
    assert_eq!(secret.connections(), 0);
}

#[tokio::test]
async fn refuses_schemes_other_than_http_and_https() {
    let out = fetch(
        FetchConfig::default(),
        json!({ "url": "file:///etc/passwd" }),
    )
    .await;
    assert_eq!(
        refused(&out),
        "refused: file:///etc/passwd is not an http or https URL; http_fetch only fetches those"
    );
    let redirector = Server::start("127.0.0.2", |_, _| Reply::redirect("file:///etc/passwd")).await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": redirector.url("/") }),
    )
    .await;
    assert_eq!(
        refused(&out),
        format!(
            "refused: {} redirected to file:///etc/passwd, and that is not an http or https \
             URL; http_fetch only fetches those",
            redirector.url("/")
        )
    );
}

#[tokio::test]
async fn fetches_a_permitted_server_and_turns_its_html_into_text() {
    let page = "<!doctype html><html><head><title>Mosaic</title>\
        <script>var secret = 1;</script><style>body { margin: 0 }</style></head>\
        <body><h1>Hello &amp; welcome</h1><p>A   self-hosted\n gateway.</p></body></html>";
    let server = Server::start("127.0.0.2", move |_, _| {
        Reply::new(200, "text/html; charset=utf-8", page)
    })
    .await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": server.url("/page") }),
    )
    .await;
    assert_eq!(
        fetched(&out),
        json!({
            "url": server.url("/page"),
            "status": 200,
            "content_type": "text/html; charset=utf-8",
            "truncated": false,
            "body": "Mosaic\n\nHello & welcome\n\nA self-hosted gateway."
        })
    );
    let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /page http/1.1\r\n") && head.contains("\r\nuser-agent: mosaic/"),
        "{head}"
    );
}

#[tokio::test]
async fn follows_a_permitted_redirect_chain() {
    let server = Server::start("127.0.0.2", |path, addr| match path {
        "/start" => Reply::redirect("/middle"),
        "/middle" => Reply::redirect(&format!("http://{addr}/end?x=1")),
        _ => Reply::new(200, "application/json", r#"{"done":true}"#),
    })
    .await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": server.url("/start") }),
    )
    .await;
    assert_eq!(
        fetched(&out),
        json!({
            "url": server.url("/end?x=1"),
            "status": 200,
            "content_type": "application/json",
            "truncated": false,
            "body": r#"{"done":true}"#
        })
    );
    assert_eq!(server.paths(), vec!["/start", "/middle", "/end?x=1"]);
}

#[tokio::test]
async fn gives_up_after_too_many_redirects() {
    let server = Server::start("127.0.0.2", |path, _| {
        let n: u32 = path.trim_start_matches('/').parse().unwrap_or(0);
        Reply::redirect(&format!("/{}", n + 1))
    })
    .await;
    let config = FetchConfig {
        max_redirects: 2,
        ..permitting_127_0_0_2()
    };
    let out = fetch(config, json!({ "url": server.url("/0") })).await;
    assert_eq!(
        refused(&out),
        format!(
            "too many redirects: gave up after 2 (the next one pointed to {})",
            server.url("/3")
        )
    );
    assert_eq!(server.paths(), vec!["/0", "/1", "/2"]);
}

#[tokio::test]
async fn cuts_the_body_at_max_bytes_and_says_so() {
    let server = Server::start("127.0.0.2", |_, _| {
        Reply::new(200, "text/plain", &"0123456789".repeat(100))
    })
    .await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": server.url("/"), "max_bytes": 25 }),
    )
    .await;
    let page = fetched(&out);
    assert_eq!(page["truncated"], json!(true));
    assert_eq!(page["body"], json!("0123456789012345678901234"));

    let config = FetchConfig {
        max_bytes: 10,
        ..permitting_127_0_0_2()
    };
    let out = fetch(config, json!({ "url": server.url("/") })).await;
    assert_eq!(fetched(&out)["body"], json!("0123456789"));
}

#[tokio::test]
async fn allow_private_reaches_loopback() {
    let server = Server::untouchable("127.0.0.1").await;
    let config = FetchConfig {
        allow_private: true,
        ..FetchConfig::default()
    };
    let out = fetch(config, json!({ "url": server.url("/") })).await;
    assert_eq!(fetched(&out)["body"], json!("the secret"));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn refuses_content_that_is_not_text() {
    let server = Server::start("127.0.0.2", |_, _| {
        Reply::new(200, "image/png", "\u{89}PNG")
    })
    .await;
    let out = fetch(
        permitting_127_0_0_2(),
        json!({ "url": server.url("/logo.png") }),
    )
    .await;
    assert_eq!(
        refused(&out),
        format!(
            "{} is image/png, which is not text; http_fetch only returns text \
             (HTML, plain text, JSON, XML and the like)",
            server.url("/logo.png")
        )
    );
}

#[tokio::test]
async fn stops_promptly_when_the_run_is_cancelled() {
    let server = Server::start("127.0.0.2", |_, _| Reply::stall()).await;
    let tool = HttpFetch::new(permitting_127_0_0_2());
    let ctx = context();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let out = tool.call(&ctx, json!({ "url": server.url("/") })).await;
    assert_eq!(refused(&out), "http_fetch stopped: the run was interrupted");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn gives_up_at_the_timeout() {
    let server = Server::start("127.0.0.2", |_, _| Reply::stall()).await;
    let config = FetchConfig {
        timeout: Duration::from_millis(300),
        ..permitting_127_0_0_2()
    };
    let out = fetch(config, json!({ "url": server.url("/slow") })).await;
    assert_eq!(
        refused(&out),
        format!(
            "http_fetch gave up on {}: no complete answer within 300ms",
            server.url("/slow")
        )
    );
}

#[tokio::test]
async fn the_schema_rejects_calls_without_a_url_or_with_too_large_a_cap() {
    let registry = Registry::builtin(FetchConfig::default());
    let policy = [AgentTool {
        name: "http_fetch".into(),
        policy: ToolPolicy::Allowed,
    }];
    let refusal = |arguments: &str| match registry.decide(&policy, "http_fetch", arguments) {
        Decision::Refuse(message) => message,
        Decision::Run(..) | Decision::Ask(..) => panic!("{arguments} was accepted"),
    };
    let missing = refusal("{}");
    assert!(
        missing.contains("\"url\" is a required property"),
        "{missing}"
    );
    let too_large = refusal(r#"{"url": "https://example.com", "max_bytes": 10000000}"#);
    assert!(too_large.contains("/max_bytes"), "{too_large}");
    let extra = refusal(r#"{"url": "https://example.com", "method": "POST"}"#);
    assert!(extra.contains("method"), "{extra}");
    assert!(matches!(
        registry.decide(
            &policy,
            "http_fetch",
            r#"{"url": "https://example.com", "max_bytes": 100}"#
        ),
        Decision::Run(..)
    ));
}
