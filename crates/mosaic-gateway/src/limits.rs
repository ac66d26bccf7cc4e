//! Request limits that must hold before a handler runs: a `Content-Length` over the
//! body limit is answered 413 without reading a byte of the body, and a body that does
//! not arrive in full within the body timeout is answered 408. Both close the
//! connection, whose unread rest would otherwise have to be drained.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mosaic_api::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

/// The middleware: refuse an announced oversized body, put a deadline on the rest.
pub async fn request_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.body_limit_bytes;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return closing(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the gateway accepts ({limit} bytes)"),
        ));
    }
    if announced == Some(0) {
        return next.run(req).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Duration::from_secs(state.config.body_timeout_secs);
    let req = req.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            sleep: Box::pin(tokio::time::sleep(deadline)),
            timed_out: timed_out.clone(),
            done: false,
        })
    });
    let response = next.run(req).await;
    if timed_out.load(Ordering::SeqCst) {
        return closing(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                deadline.as_secs()
            ),
        ));
    }
    response
}

fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline passes before its end.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
    done: bool,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if !self.done && self.sleep.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::SeqCst);
            self.done = true;
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body timed out",
            )))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
