//! The scripted model: an OpenAI Chat Completions server on 127.0.0.1, inside the
//! benchmark process, that answers every call at once (no pacing), in one write, so the
//! time a run takes is the gateway's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use serde_json::json;

/// An OpenAI Chat Completions server on 127.0.0.1 whose every streamed answer is a role
/// chunk, `chunks` text chunks, the finish chunk, a usage chunk and `[DONE]`, all in
/// one write. It notes when each call arrived.
#[derive(Clone)]
pub struct Upstream {
    pub base_url: String,
    chunks: Arc<AtomicUsize>,
    /// When the latest call arrived, and its request's size in bytes.
    last_call: Arc<Mutex<Option<(Instant, usize)>>>,
}

impl Upstream {
    pub async fn start() -> Result<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the scripted model")?;
        let addr = listener.local_addr()?;
        let upstream = Upstream {
            base_url: format!("http://{addr}/v1"),
            chunks: Arc::new(AtomicUsize::new(super::SHORT_ANSWER)),
            last_call: Arc::new(Mutex::new(None)),
        };
        let state = upstream.clone();
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(move |body: Bytes| answer(state.clone(), body.len())),
            )
            .route(
                "/v1/models",
                axum::routing::get(|| async {
                    axum::Json(json!({"object": "list", "data": [{"id": "scripted",
                        "object": "model", "created": 0, "owned_by": "mosaic-bench"}]}))
                }),
            );
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mosaic-bench agent: the scripted model stopped: {e}");
            }
        });
        Ok(upstream)
    }

    pub fn set_chunks(&self, chunks: usize) {
        self.chunks.store(chunks, Ordering::Relaxed);
    }

    /// When the latest call arrived and its size, forgetting it.
    pub fn take_last_call(&self) -> Option<(Instant, usize)> {
        self.last_call.lock().ok().and_then(|mut t| t.take())
    }
}

async fn answer(upstream: Upstream, request_bytes: usize) -> Response {
    if let Ok(mut t) = upstream.last_call.lock() {
        *t = Some((Instant::now(), request_bytes));
    }
    let chunks = upstream.chunks.load(Ordering::Relaxed);
    let head = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"scripted","choices":"#;
    let chunk = |delta: &str, finish: &str| {
        format!("{head}[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
    };
    let mut body = String::with_capacity(130 * (chunks + 4));
    body.push_str(&chunk(r#"{"role":"assistant","content":""}"#, "null"));
    for i in 0..chunks {
        body.push_str(&chunk(&format!(r#"{{"content":"t{i} "}}"#), "null"));
    }
    body.push_str(&chunk("{}", "\"stop\""));
    body.push_str(&format!(
        "{head}[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{chunks},\"total_tokens\":{}}}}}\n\n",
        chunks + 12
    ));
    body.push_str("data: [DONE]\n\n");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}
