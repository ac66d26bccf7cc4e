//! The OTLP sink: a stand-in collector on 127.0.0.1 that accepts `POST /v1/traces`,
//! reads the body to its end, counts requests and bytes, and answers 200 with an empty
//! `ExportTraceServiceResponse` (zero bytes of protobuf: full success). Nothing is
//! decoded: the benchmark needs proof that export happened and its volume, not the spans.
//!
//! It runs on a thread of its own with a single-threaded runtime, so the CPU it takes
//! can be read from `/proc` and told apart from the clients' and the upstream's: on this
//! machine it shares the cores with the gateway, where a real collector would not.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;

/// The sink's thread name, as `/proc/self/task/*/comm` shows it (at most 15 bytes).
const THREAD: &str = "bench-otlp-sink";
const PROTOBUF: &str = "application/x-protobuf";

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
    /// Requests whose content type was not `application/x-protobuf`.
    not_protobuf: AtomicU64,
}

/// What the sink had received at some moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    pub requests: u64,
    pub bytes: u64,
    pub not_protobuf: u64,
}

impl Received {
    pub fn since(self, before: Received) -> Received {
        Received {
            requests: self.requests.saturating_sub(before.requests),
            bytes: self.bytes.saturating_sub(before.bytes),
            not_protobuf: self.not_protobuf.saturating_sub(before.not_protobuf),
        }
    }
}

/// The running sink; it lives as long as the process.
pub struct Sink {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
}

impl Sink {
    /// Bind a free loopback port and serve on a thread of its own.
    pub fn start() -> Result<Sink> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the sink")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let app = axum::Router::new()
            .route("/v1/traces", post(traces))
            .with_state(Arc::clone(&counts));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the sink's runtime")?;
        std::thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || {
                let served = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, app).await
                });
                if let Err(e) = served {
                    eprintln!("mosaic-bench otel: the OTLP sink stopped: {e}");
                }
            })
            .context("starting the sink's thread")?;
        Ok(Sink { addr, counts })
    }

    /// The base URL a gateway is given (`OTEL_EXPORTER_OTLP_ENDPOINT` style: the
    /// exporter appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Received {
        Received {
            requests: self.counts.requests.load(Ordering::Relaxed),
            bytes: self.counts.bytes.load(Ordering::Relaxed),
            not_protobuf: self.counts.not_protobuf.load(Ordering::Relaxed),
        }
    }

    /// CPU time the sink's thread has used so far.
    pub fn cpu(&self) -> Duration {
        super::threads::named(std::process::id(), THREAD).cpu
    }
}

async fn traces(State(counts): State<Arc<Counts>>, headers: HeaderMap, body: Body) -> Response {
    let mut bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => bytes += chunk.len() as u64,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.bytes.fetch_add(bytes, Ordering::Relaxed);
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROTOBUF.as_bytes());
    if !protobuf {
        counts.not_protobuf.fetch_add(1, Ordering::Relaxed);
    }
    ([(header::CONTENT_TYPE, PROTOBUF)], Bytes::new()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sink_counts_what_it_is_sent_and_answers_200() {
        let sink = Sink::start().unwrap();
        let http = reqwest::Client::new();
        for body in [vec![1u8; 10], vec![2u8; 3_000_000]] {
            let resp = http
                .post(format!("{}/v1/traces", sink.endpoint()))
                .header(header::CONTENT_TYPE, PROTOBUF)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert!(resp.bytes().await.unwrap().is_empty());
        }
        let resp = http
            .post(format!("{}/v1/traces", sink.endpoint()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            sink.received(),
            Received {
                requests: 3,
                bytes: 3_000_012,
                not_protobuf: 1
            }
        );
        let other = http
            .get(format!("{}/v1/traces", sink.endpoint()))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 405);
    }
}
