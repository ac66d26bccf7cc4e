//! The scripted upstream: a tiny OpenAI Chat Completions server on 127.0.0.1, inside the
//! benchmark process. Every streamed answer is the same: a role chunk and the first
//! token at once, then the remaining tokens `pace` apart, then the finish chunk, the
//! usage chunk when `stream_options.include_usage` asks for it, and `[DONE]`. The pace
//! can be changed between phases; the token count is fixed for the run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::{json, Value};

/// The prompt size the usage chunk reports.
const PROMPT_TOKENS: usize = 12;

struct Shared {
    tokens: usize,
    pace_us: AtomicU64,
    /// Streams started since the start.
    started: AtomicU64,
    /// Streams whose body is still being sent.
    open: AtomicUsize,
    created: u64,
}

/// The running upstream (stops with the runtime it was started on).
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Bind a free loopback port and serve `tokens` tokens per answer, `pace` apart.
    pub async fn start(tokens: usize, pace: Duration) -> Result<Upstream> {
        // A deep accept queue: a thousand connects at once must not wait for SYN
        // retransmits here (tokio's `bind` listens with a backlog of 128).
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("binding the scripted upstream")?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            tokens,
            pace_us: AtomicU64::new(pace.as_micros() as u64),
            started: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .with_state(Arc::clone(&shared));
        // Small SSE writes must leave at once, not wait for Nagle.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mosaic-bench: the scripted upstream stopped: {e}");
            }
        });
        Ok(Upstream { addr, shared })
    }

    /// The base URL clients put before `/chat/completions`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_pace(&self, pace: Duration) {
        self.shared
            .pace_us
            .store(pace.as_micros() as u64, Ordering::Relaxed);
    }

    /// The text of one whole answer.
    pub fn expected_text(&self) -> String {
        (0..self.shared.tokens).map(token).collect()
    }

    /// Streams whose body is still being sent right now.
    pub fn open_streams(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    pub fn streams_started(&self) -> u64 {
        self.shared.started.load(Ordering::Relaxed)
    }
}

fn token(i: usize) -> String {
    format!("t{i} ")
}

async fn models() -> axum::Json<Value> {
    axum::Json(json!({"object": "list", "data": [
        {"id": "scripted", "object": "model", "created": 0, "owned_by": "mosaic-bench"}
    ]}))
}

/// Decrements the open-stream count when the body is dropped (finished or cut off).
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})),
        )
            .into_response();
    };
    let model = request["model"].as_str().unwrap_or("scripted").to_string();
    let tokens = shared.tokens;
    if !request["stream"].as_bool().unwrap_or(false) {
        let text: String = (0..tokens).map(token).collect();
        return axum::Json(json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": shared.created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"}],
            "usage": usage(tokens),
        }))
        .into_response();
    }
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let pace = Duration::from_micros(shared.pace_us.load(Ordering::Relaxed));
    shared.started.fetch_add(1, Ordering::Relaxed);
    shared.open.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(Arc::clone(&shared));
    // Everything but the delta is the same in every chunk of this answer.
    let head = format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":",
        shared.created,
        Value::String(model),
    );
    // After the finish chunk: the usage chunk (the same envelope, no choices, as OpenAI
    // sends it) when asked for, and the end.
    let mut tail = String::new();
    if include_usage {
        tail.push_str(&format!("{head}[],\"usage\":{}}}\n\n", usage(tokens)));
    }
    tail.push_str("data: [DONE]\n\n");
    let chunk = move |delta: &str, finish: &str| -> String {
        format!("{head}[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
    };
    // Step 0: the role chunk and the first token; steps 1..tokens: one token after
    // `pace` each; step `tokens`: the end.
    let frames = futures_util::stream::unfold(0usize, move |step| {
        let (chunk, tail) = (chunk.clone(), tail.clone());
        let _alive = &guard;
        async move {
            if step > tokens {
                return None;
            }
            if step > 0 && step < tokens && !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
            let frame = if step == 0 {
                let mut f = chunk(r#"{"role":"assistant","content":""}"#, "null");
                if tokens > 0 {
                    f.push_str(&chunk(&content(0), "null"));
                }
                f
            } else if step < tokens {
                chunk(&content(step), "null")
            } else {
                let mut f = chunk("{}", "\"stop\"");
                f.push_str(&tail);
                f
            };
            Some((Ok::<_, Infallible>(Bytes::from(frame)), step + 1))
        }
    });
    let mut response = Body::from_stream(frames).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn content(i: usize) -> String {
    format!("{{\"content\":\"{}\"}}", token(i))
}

fn usage(tokens: usize) -> Value {
    json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": tokens,
        "total_tokens": PROMPT_TOKENS + tokens})
}
