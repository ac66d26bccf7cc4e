//! Runs and live events: post a message (it starts a run or waits for the active one),
//! start a run again from an entry, interrupt, answer approvals, read a session's
//! state, and follow its numbered events over server-sent events.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use mosaic_api::{
    ApprovalRequest, InterruptResponse, NumberedEvent, Page, PageQuery, PostMessageRequest,
    PostMessageResponse, Run, SessionEvent, SessionState, StartRunRequest, StartRunResponse,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;

use crate::sse::{SseDecoder, SseEvent};
use crate::{page_query, path_segment, Client, ClientError, Result};

fn session_path(id: &str) -> String {
    format!("/api/v1/sessions/{}", path_segment(id))
}

/// One event of a session as it arrived: its number (none for a `resync`), and what
/// happened.
pub type LiveEvent = NumberedEvent;

/// A session's live events, in order. It ends (`None`) when the gateway closes the
/// stream, which it does only when it stops; resume then with [`Client::session_events`]
/// after [`EventStream::last_event_id`].
pub struct EventStream {
    url: String,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    last_id: Option<u64>,
    done: bool,
}

impl EventStream {
    fn new(url: String, after: Option<u64>, resp: reqwest::Response) -> EventStream {
        EventStream {
            url,
            body: resp.bytes_stream().boxed(),
            decoder: SseDecoder::default(),
            pending: VecDeque::new(),
            last_id: after,
            done: false,
        }
    }

    /// The number of the last numbered event received (or the one resumed after).
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The next event. Events of a type this client does not know (from a newer
    /// gateway) are skipped; a broken stream is an error, after which it ends.
    pub async fn next(&mut self) -> Option<Result<LiveEvent>> {
        loop {
            while let Some(raw) = self.pending.pop_front() {
                match decode(&raw) {
                    Ok(Some(event)) => {
                        if event.id.is_some() {
                            self.last_id = event.id;
                        }
                        return Some(Ok(event));
                    }
                    Ok(None) => {}
                    Err(e) => return self.fail(e),
                }
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    if let Err(e) = self.decoder.push(&bytes, &mut self.pending) {
                        return self.fail(e);
                    }
                }
                Some(Err(source)) => {
                    let url = self.url.clone();
                    return self.fail(ClientError::Transport { url, source });
                }
                None => self.done = true,
            }
        }
    }

    fn fail(&mut self, error: ClientError) -> Option<Result<LiveEvent>> {
        self.done = true;
        self.pending.clear();
        Some(Err(error))
    }
}

/// One SSE event as a session event; `None` for a type this client does not know.
fn decode(raw: &SseEvent) -> Result<Option<LiveEvent>> {
    let id = match raw.id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ClientError::Decode(format!("event id '{text}' is not an event number"))
        })?),
    };
    match serde_json::from_str::<SessionEvent>(&raw.data) {
        Ok(SessionEvent::Unknown) => Ok(None),
        Ok(event) => Ok(Some(LiveEvent { id, event })),
        Err(e) => Err(ClientError::Decode(format!("session event: {e}"))),
    }
}

impl Client {
    /// Send a message: it starts a run when none is active, else it waits (a follow-up
    /// for the next run, or a steer for the active one).
    pub async fn post_message(
        &self,
        session_id: &str,
        req: &PostMessageRequest,
    ) -> Result<PostMessageResponse> {
        let path = format!("{}/messages", session_path(session_id));
        self.json(Method::POST, &path, &[], Some(req)).await
    }

    /// Start a run without a new message: from `from_entry_id` (a retry, which branches)
    /// or from the active leaf.
    pub async fn start_run(
        &self,
        session_id: &str,
        req: &StartRunRequest,
    ) -> Result<StartRunResponse> {
        let path = format!("{}/runs", session_path(session_id));
        self.json(Method::POST, &path, &[], Some(req)).await
    }

    /// The session's runs, newest first.
    pub async fn list_runs(&self, session_id: &str, page: &PageQuery) -> Result<Page<Run>> {
        let path = format!("{}/runs", session_path(session_id));
        self.get(&path, &page_query(page)).await
    }

    /// Stop the session's active run; which one, or `None` when none was active.
    pub async fn interrupt_run(&self, session_id: &str) -> Result<InterruptResponse> {
        let path = format!("{}/interrupt", session_path(session_id));
        self.json::<_, ()>(Method::POST, &path, &[], None).await
    }

    /// Approve or decline a tool call waiting for a person.
    pub async fn answer_approval(
        &self,
        session_id: &str,
        call_id: &str,
        req: &ApprovalRequest,
    ) -> Result<()> {
        let path = format!(
            "{}/approvals/{}",
            session_path(session_id),
            path_segment(call_id)
        );
        self.empty(Method::POST, &path, Some(req)).await
    }

    /// What runs and waits in the session, and its latest event number.
    pub async fn get_session_state(&self, session_id: &str) -> Result<SessionState> {
        self.get(&format!("{}/state", session_path(session_id)), &[])
            .await
    }

    /// Follow the session's events: those after event `after`, or from now. Once this
    /// returns, the subscription is live: nothing published later is missed.
    pub async fn session_events(
        &self,
        session_id: &str,
        after: Option<u64>,
    ) -> Result<EventStream> {
        let path = format!("{}/events", session_path(session_id));
        let mut req = self
            .request(Method::GET, &path, &[])
            .header(ACCEPT, "text/event-stream");
        if let Some(after) = after {
            req = req.header("last-event-id", after.to_string());
        }
        let resp = self.execute(req).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            return Err(ClientError::Decode(format!(
                "expected an event stream, got '{content_type}'"
            )));
        }
        Ok(EventStream::new(self.base.clone(), after, resp))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn raw(id: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_string),
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn a_numbered_event_keeps_its_number_and_a_resync_has_none() {
        let delta = decode(&raw(
            Some("12"),
            r#"{"type":"text_delta","run_id":"r1","text":"Hi"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            delta,
            LiveEvent {
                id: Some(12),
                event: SessionEvent::TextDelta {
                    run_id: "r1".into(),
                    text: "Hi".into()
                }
            }
        );
        let resync = decode(&raw(None, r#"{"type":"resync","reason":"behind"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(resync.id, None);
        assert_eq!(
            serde_json::to_string(&resync).unwrap(),
            r#"{"event":{"type":"resync","reason":"behind"}}"#
        );
    }

    #[test]
    fn unknown_event_types_are_skipped_and_garbage_is_an_error() {
        assert_eq!(
            decode(&raw(Some("3"), r#"{"type":"from_the_future","x":1}"#)).unwrap(),
            None
        );
        assert!(decode(&raw(Some("3"), "not json")).is_err());
        assert!(decode(&raw(Some("3"), r#"{"type":"text_delta"}"#)).is_err());
        assert!(decode(&raw(Some("x"), r#"{"type":"resync","reason":""}"#)).is_err());
    }
}
