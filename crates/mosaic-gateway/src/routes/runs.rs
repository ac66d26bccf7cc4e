//! Runs and live events: post a message (it starts a run or waits for the active one),
//! retry from an entry, interrupt, answer approvals, read the session's state, and
//! follow its numbered events over SSE.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, StreamExt};
use mosaic_agent::bus::{Events, Numbered, Received};
use mosaic_api::{
    ApprovalRequest, ErrorBody, InterruptResponse, Page, PageQuery, PostMessageRequest,
    PostMessageResponse, Run, SessionEvent, SessionState, StartRunRequest, StartRunResponse,
    StreamCloseReason,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::revocation::Watch;
use crate::routes::no_content;
use crate::AppState;

/// The routes of runs: messages, interrupts, approvals, session state and live events.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(post_message))
        .routes(routes!(start_run, list_runs))
        .routes(routes!(interrupt_run))
        .routes(routes!(answer_approval))
        .routes(routes!(get_session_state))
        .routes(routes!(session_events))
}

/// A comment line sent when nothing else was, so proxies keep the stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Send a message. With no run active it is appended and a run starts for it (202,
/// `started`); otherwise it waits (202, `queued`): a `follow_up` starts the next run, a
/// `steer` joins the active run after its current tool call. `parent_id` / `new_root`
/// edit an earlier message (a new branch) and need an idle session.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/messages", tag = "runs", operation_id = "post_message",
    params(("id" = String, Path, description = "Session id")), request_body = PostMessageRequest,
    responses((status = 202, body = PostMessageResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn post_message(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<PostMessageRequest>,
) -> ApiResult<Response> {
    let answer = state
        .runtime
        .post_message(&auth.principal, &id, req)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// Start a run without a new message: retry from an earlier entry (it becomes the
/// active leaf, so the new answer is a branch), or continue the active leaf.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/runs", tag = "runs", operation_id = "start_run",
    params(("id" = String, Path, description = "Session id")), request_body = StartRunRequest,
    responses((status = 202, body = StartRunResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn start_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<StartRunRequest>,
) -> ApiResult<Response> {
    let run_id = state
        .runtime
        .start_run(&auth.principal, &id, req.from_entry_id.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(StartRunResponse { run_id })).into_response())
}

/// The session's runs, newest first.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/runs", tag = "runs", operation_id = "list_runs",
    params(("id" = String, Path, description = "Session id"), PageQuery),
    responses((status = 200, body = Page<Run>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Run>>> {
    Ok(Json(
        state.store.list_runs(&auth.principal, &id, &page).await?,
    ))
}

/// Stop the active run. What streamed so far is kept as the answer (marked
/// `interrupted`); waiting messages then start the next run.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/interrupt", tag = "runs", operation_id = "interrupt_run",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = InterruptResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn interrupt_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<InterruptResponse>> {
    let run_id = state.runtime.interrupt(&auth.principal, &id).await?;
    Ok(Json(InterruptResponse { run_id }))
}

/// Approve or decline a tool call that waits for approval (see `approval_needed`
/// events). Any client of the session may answer; the first answer counts.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/approvals/{call_id}", tag = "runs", operation_id = "answer_approval",
    params(("id" = String, Path, description = "Session id"), ("call_id" = String, Path, description = "Tool call id")),
    request_body = ApprovalRequest,
    responses((status = 204, description = "Answered"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn answer_approval(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, call_id)): Path<(String, String)>,
    Json(req): Json<ApprovalRequest>,
) -> ApiResult<Response> {
    state
        .runtime
        .approve(&auth.principal, &id, &call_id, req.approve, req.note)
        .await?;
    Ok(no_content())
}

/// What runs and waits in the session: the active run, queued messages, pending
/// approvals, and the latest event number (to follow events from).
#[utoipa::path(get, path = "/api/v1/sessions/{id}/state", tag = "runs", operation_id = "get_session_state",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionState), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session_state(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionState>> {
    Ok(Json(state.runtime.state(&auth.principal, &id).await?))
}

/// Where to resume the event stream.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event number (as the `Last-Event-ID` header does; the header
    /// wins when both are given).
    #[serde(default, deserialize_with = "mosaic_api::runs::event_number")]
    #[param(value_type = Option<u64>)]
    pub after: Option<u64>,
}

/// The session's live events as Server-Sent Events. Each event's `id:` is its number,
/// `event:` its type and `data:` a `SessionEvent`. Reconnect with `Last-Event-ID` (or
/// `?after=`) to get exactly the events missed; a `resync` event (without an id) says
/// some were lost (the client fell behind, or they are no longer held): read the session
/// and its state again. A comment line is sent every 15 s when nothing else is.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/events", tag = "runs", operation_id = "session_events",
    params(("id" = String, Path, description = "Session id"), EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "The number of the last event received")),
    responses((status = 200, description = "An SSE stream of `SessionEvent`s", body = SessionEvent,
            content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_events(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after =
        match headers.get("last-event-id") {
            Some(v) => {
                let text = v.to_str().unwrap_or_default().trim();
                Some(mosaic_api::runs::parse_event_number(text).ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be an event number")
                })?)
            }
            None => q.after,
        };
    // Taken before subscribing: a revocation from here on ends the stream.
    let watch = state.revocations.watch(&auth);
    let sub = state.runtime.subscribe(&auth.principal, &id, after).await?;
    let follow = Follow {
        // The first chunk tells the client it is subscribed.
        pending: VecDeque::from([Frame::Hello]),
        events: sub.events,
        stopping: state.runtime.stopping(),
        watch,
        runtime: state.runtime.clone(),
        principal: auth.principal.clone(),
        session_id: id,
        ended: false,
        keepalive: Box::pin(tokio::time::sleep(KEEPALIVE)),
    };
    let body = futures_util::stream::unfold(follow, |mut f| async move {
        let frame = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(frame.encode()), f))
    });
    let mut out = Body::from_stream(body).into_response();
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(out)
}

enum Frame {
    Hello,
    Keepalive,
    Event(Arc<Numbered>),
    Resync(String, Option<Box<SessionState>>),
    Closed(StreamCloseReason),
}

impl Frame {
    fn encode(&self) -> bytes::Bytes {
        let unnumbered = |event: SessionEvent| {
            let data = serde_json::to_string(&event).unwrap_or_default();
            bytes::Bytes::from(format!("event: {}\ndata: {data}\n\n", event.kind()))
        };
        match self {
            Frame::Hello => bytes::Bytes::from_static(b"retry: 1000\n: subscribed\n\n"),
            Frame::Keepalive => bytes::Bytes::from_static(b": keepalive\n\n"),
            Frame::Event(e) => bytes::Bytes::from(format!(
                "id: {}\nevent: {}\ndata: {}\n\n",
                e.id,
                e.event.kind(),
                e.data
            )),
            Frame::Resync(reason, state) => unnumbered(SessionEvent::Resync {
                reason: reason.clone(),
                state: state.as_deref().cloned(),
            }),
            Frame::Closed(reason) => unnumbered(SessionEvent::StreamClosed {
                reason: *reason,
                message: match reason {
                    StreamCloseReason::Revoked => {
                        "the credential of this stream was revoked; log in again".into()
                    }
                    StreamCloseReason::ShuttingDown => {
                        "the gateway is stopping; reconnect with Last-Event-ID".into()
                    }
                },
            }),
        }
    }
}

/// One subscriber's stream.
struct Follow {
    pending: VecDeque<Frame>,
    /// The session's events, in order, each once (resyncs included).
    events: Events,
    stopping: CancellationToken,
    /// Ends the stream when its credential is revoked.
    watch: Watch,
    runtime: mosaic_agent::Runtime,
    principal: mosaic_store::Principal,
    session_id: String,
    /// The closing frame is queued: send what is pending, then end.
    ended: bool,
    /// Due when nothing was sent for [`KEEPALIVE`]: one timer for the stream, pushed
    /// back at each frame (a later deadline does not touch the timer wheel), rather than
    /// one per event.
    keepalive: std::pin::Pin<Box<tokio::time::Sleep>>,
}

fn frame(received: Received) -> Frame {
    match received {
        Received::Event(e) => Frame::Event(e),
        Received::Resync { reason, .. } => Frame::Resync(reason, None),
    }
}

impl Follow {
    /// End the stream: what the bus already has ready (the run's last events when the
    /// gateway stops), then the closing frame.
    fn close(&mut self, reason: StreamCloseReason) {
        self.ended = true;
        if reason == StreamCloseReason::Revoked {
            // Nothing more for a revoked credential, not even what was queued.
            self.pending.clear();
        } else {
            while let Some(Some(received)) = self.events.next().now_or_never() {
                self.pending.push_back(frame(received));
            }
        }
        self.pending.push_back(Frame::Closed(reason));
    }

    async fn next(&mut self) -> Option<Frame> {
        let frame = self.next_frame().await;
        self.keepalive
            .as_mut()
            .reset(tokio::time::Instant::now() + KEEPALIVE);
        frame
    }

    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.watch.is_revoked() && !self.ended {
                self.close(StreamCloseReason::Revoked);
            }
            if let Some(frame) = self.pending.pop_front() {
                return Some(match frame {
                    // The state as it is when the notice goes out, so the client can
                    // go on from it without asking.
                    Frame::Resync(reason, None) => {
                        let state = self
                            .runtime
                            .state(&self.principal, &self.session_id)
                            .await
                            .ok()
                            .map(Box::new);
                        Frame::Resync(reason, state)
                    }
                    frame => frame,
                });
            }
            if self.ended {
                return None;
            }
            tokio::select! {
                biased;
                _ = self.watch.revoked() => self.close(StreamCloseReason::Revoked),
                received = self.events.next() => match received {
                    // Through the queue, where a resync gets the state.
                    Some(received) => self.pending.push_back(frame(received)),
                    None => return None,
                },
                _ = self.stopping.cancelled() => self.close(StreamCloseReason::ShuttingDown),
                _ = self.keepalive.as_mut() => return Some(Frame::Keepalive),
            }
        }
    }
}
