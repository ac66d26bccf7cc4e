//! A scripted model that speaks the OpenAI Chat Completions wire format, for tests that
//! drive a real gateway against it. Every `POST /v1/chat/completions` is answered by a
//! function of the request's last message (a user's message or a tool's result), so
//! concurrent runs cannot take each other's answers and a test scripts by content, not
//! by arrival order. A [`Reply`] streams text in pieces, with pauses wherever it says,
//! or calls a tool, or fails with an HTTP error. `GET /v1/models` lists [`MODEL`].
//!
//! The server runs on a thread and runtime of its own: it serves synchronous tests, keeps
//! serving while an async test blocks its workers, and outlives every gateway a test
//! kills and restarts. It notes when it handed each text piece to the connection, so a
//! test can know for certain which text a client could have had by some moment instead
//! of guessing at timings.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::{future, stream, StreamExt};
use serde_json::{json, Value};

/// The model the server streams as and lists.
pub const MODEL: &str = "test-model";
/// The token usage every streamed answer reports (prompt, completion).
pub const USAGE: (u64, u64) = (20, 10);

/// The message a reply is picked by: the request's last one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Turn {
    /// `user`, `tool`, `assistant` or `system` (empty when the request had no message).
    pub role: String,
    /// Its text; text parts are joined when the content is an array of them.
    pub text: String,
    /// For a tool's result, the id of the call it answers.
    pub tool_call_id: Option<String>,
}

impl Turn {
    /// The last message of a chat request body.
    pub fn last_of(request: &Value) -> Turn {
        let Some(last) = request["messages"].as_array().and_then(|m| m.last()) else {
            return Turn::default();
        };
        let text = match &last["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            _ => String::new(),
        };
        Turn {
            role: last["role"].as_str().unwrap_or_default().to_string(),
            text,
            tool_call_id: last["tool_call_id"].as_str().map(str::to_string),
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// A text piece: one `content` delta, its send time recorded.
    Text(String),
    /// Any other delta, sent as it is.
    Delta(Value),
    /// Silence.
    Pause(Duration),
}

/// How the model answers one request. A stream opens with an `assistant` role delta and
/// ends with the finish reason, a usage chunk ([`USAGE`]) and `[DONE]`.
#[derive(Clone, Debug)]
pub struct Reply {
    steps: Vec<Step>,
    finish: &'static str,
    /// Instead of a stream, this status with an OpenAI error body.
    error: Option<(u16, Value)>,
}

impl Reply {
    fn stream(steps: Vec<Step>, finish: &'static str) -> Reply {
        Reply {
            steps,
            finish,
            error: None,
        }
    }

    /// Stream `pieces` of text, one chunk each, back to back; finish with `stop`.
    pub fn text<S: AsRef<str>>(pieces: &[S]) -> Reply {
        Reply::stream(Vec::new(), "stop").then_text(pieces)
    }

    /// Call the tool `name` (call id `id`): a chunk with the name, then one with the
    /// `arguments` JSON; finish with `tool_calls`.
    pub fn tool_call(id: &str, name: &str, arguments: &str) -> Reply {
        let call = json!({"index": 0, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}});
        let args = json!({"index": 0, "function": {"arguments": arguments}});
        let steps = vec![
            Step::Delta(json!({"tool_calls": [call]})),
            Step::Delta(json!({"tool_calls": [args]})),
        ];
        Reply::stream(steps, "tool_calls")
    }

    /// Answer `status` with an OpenAI error body carrying `message`, streaming nothing.
    pub fn error(status: u16, message: &str) -> Reply {
        let body = json!({"error": {"message": message, "type": "server_error"}});
        let error = Some((status, body));
        Reply {
            error,
            ..Reply::stream(Vec::new(), "stop")
        }
    }

    /// Wait `every` before each text piece scripted so far.
    pub fn paced(mut self, every: Duration) -> Reply {
        self.steps = self
            .steps
            .into_iter()
            .flat_map(|step| match step {
                Step::Text(_) => vec![Step::Pause(every), step],
                Step::Delta(_) | Step::Pause(_) => vec![step],
            })
            .collect();
        self
    }

    /// Then fall silent for `pause` (the connection stays open).
    pub fn then_pause(mut self, pause: Duration) -> Reply {
        self.steps.push(Step::Pause(pause));
        self
    }

    /// Then stream `pieces` of text, one chunk each.
    pub fn then_text<S: AsRef<str>>(mut self, pieces: &[S]) -> Reply {
        let pieces = pieces.iter().map(|p| Step::Text(p.as_ref().to_string()));
        self.steps.extend(pieces);
        self
    }
}

/// One request and what became of its answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request body.
    pub request: Value,
    /// Its last message, which picked the reply.
    pub last: Turn,
    /// When each text piece of the answer was handed to the connection, in order. Noted
    /// just before the hand-over, so the client cannot have had a piece any earlier.
    pub sent: Vec<Instant>,
}

/// The running server, on `127.0.0.1` at a port the kernel picked; stops when dropped
/// (cutting off any answer still streaming).
pub struct ChatModel {
    /// `http://127.0.0.1:PORT/v1`, the base URL an OpenAI-compatible provider takes.
    pub base_url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

type Pick = Arc<dyn Fn(&Turn) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    pick: Pick,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl ChatModel {
    /// Listen (already when this returns) and answer each chat request with `pick` of
    /// its last message.
    pub fn start(pick: impl Fn(&Turn) -> Reply + Send + Sync + 'static) -> ChatModel {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("its address"));
        let log = Arc::default();
        let models = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(|| future::ready(Json(models))))
            .with_state(Shared {
                pick: Arc::new(pick),
                log: Arc::clone(&log),
            });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the model");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .expect("a tokio listener")
                    // Each piece leaves when written, not batched with the next.
                    .tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_background();
        });
        ChatModel {
            base_url,
            log,
            stop: Some(stop),
        }
    }

    /// Every chat request so far and its answer, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().expect("the model's log").clone()
    }

    /// Every chat request body so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.exchanges().into_iter().map(|e| e.request).collect()
    }
}

impl Drop for ChatModel {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One `data:` event of a Chat Completions stream.
fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

async fn chat(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let last = Turn::last_of(&request);
    let reply = (shared.pick)(&last);
    let index = {
        let mut log = shared.log.lock().expect("the model's log");
        log.push(Exchange {
            request,
            last,
            sent: Vec::new(),
        });
        log.len() - 1
    };
    if let Some((status, body)) = reply.error {
        let status = StatusCode::from_u16(status).expect("a valid status");
        return (status, Json(body)).into_response();
    }
    let log = shared.log;
    let steps = stream::iter(reply.steps).then(move |step| {
        let log = Arc::clone(&log);
        async move {
            match step {
                Step::Pause(pause) => {
                    tokio::time::sleep(pause).await;
                    None
                }
                Step::Text(text) => {
                    let mut log = log.lock().expect("the model's log");
                    log[index].sent.push(Instant::now());
                    Some(chunk(json!({"content": text}), None))
                }
                Step::Delta(delta) => Some(chunk(delta, None)),
            }
        }
    });
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
        "choices": [], "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1}});
    let tail = [
        chunk(json!({}), Some(reply.finish)),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_string(),
    ];
    let head = chunk(json!({"role": "assistant", "content": ""}), None);
    let body = stream::iter([head])
        .chain(steps.filter_map(future::ready))
        .chain(stream::iter(tail))
        .map(|piece| Ok::<_, Infallible>(Bytes::from(piece)));
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .expect("a streaming response")
}
