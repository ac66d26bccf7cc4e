//! The gateway's HTTP API as the benchmark uses it: an admin set up with a provider for
//! the scripted model, sessions, messages, and the session event stream, split into its
//! SSE frames.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use axum::http::header;
use mosaic_api::{AgentList, PostMessageResponse, SessionEvent};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::upstream::Upstream;

/// An admin's way into the gateway.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path} answered {text}"))
    }

    pub async fn new_session(&self) -> Result<String> {
        let session = self
            .send(reqwest::Method::POST, "/api/v1/sessions", Some(json!({})))
            .await?;
        session["id"]
            .as_str()
            .map(str::to_string)
            .context("the new session has no id")
    }

    pub async fn post_message(&self, session: &str, text: &str) -> Result<PostMessageResponse> {
        let path = format!("/api/v1/sessions/{session}/messages");
        let answer = self
            .send(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await?;
        serde_json::from_value(answer).context("the answer to a message")
    }

    /// Open the session's event stream (no time limit: it is read until stopped).
    pub async fn events(&self, session: &str) -> Result<reqwest::Response> {
        let response = self
            .http
            .get(format!("{}/api/v1/sessions/{session}/events", self.url))
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .context("opening the event stream")?;
        ensure!(
            response.status().is_success(),
            "the event stream answered {}",
            response.status()
        );
        Ok(response)
    }
}

/// Bootstrap the admin, add the scripted model as a gateway provider and route the
/// `default` agent to it.
pub async fn prepare(url: &str, bootstrap_token: &str, upstream: &Upstream) -> Result<Api> {
    let token =
        crate::server::first_admin_token(url, bootstrap_token, "mosaic-bench-agent").await?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let api = Api {
        http,
        url: url.to_string(),
        token,
    };
    api.send(
        reqwest::Method::POST,
        "/api/v1/providers",
        Some(json!({"name": super::PROVIDER, "kind": "openai-compatible",
            "base_url": upstream.base_url, "scope": "gateway"})),
    )
    .await?;
    let agents: AgentList = serde_json::from_value(
        api.send(reqwest::Method::GET, "/api/v1/agents", None)
            .await?,
    )?;
    let default = agents
        .items
        .iter()
        .find(|a| a.name == mosaic_api::DEFAULT_AGENT)
        .context("no default agent")?;
    api.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/agents/{}", default.id),
        Some(json!({ "route": super::ROUTE })),
    )
    .await?;
    Ok(api)
}

/// One SSE frame, stamped with the arrival of the bytes that completed it.
pub struct Event {
    pub at: Instant,
    pub id: Option<u64>,
    /// The `event:` field; `subscribed` for the gateway's `: subscribed` comment.
    pub kind: String,
    pub data: String,
}

/// Splits a byte stream into SSE frames.
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
    /// How far `buf` is known to hold no frame end.
    scanned: usize,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8], at: Instant, out: &mut Vec<Event>) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = self.scanned.max(1);
        while i < self.buf.len() {
            if self.buf[i] == b'\n' && self.buf[i - 1] == b'\n' {
                if let Some(event) = frame(&self.buf[start..i], at) {
                    out.push(event);
                }
                start = i + 1;
                i = start + 1;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
    }
}

fn frame(block: &[u8], at: Instant) -> Option<Event> {
    let text = std::str::from_utf8(block).ok()?;
    let mut event = Event {
        at,
        id: None,
        kind: String::new(),
        data: String::new(),
    };
    for line in text.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" if value == "subscribed" => event.kind = "subscribed".into(),
            "id" => event.id = value.parse().ok(),
            "event" => event.kind = value.to_string(),
            "data" => {
                if !event.data.is_empty() {
                    event.data.push('\n');
                }
                event.data.push_str(value);
            }
            _ => {}
        }
    }
    (!event.kind.is_empty()).then_some(event)
}

/// Read an event stream, handing each frame to `see` until it answers false, the
/// stream ends, or `stop` changes.
pub async fn read_events(
    mut response: reqwest::Response,
    mut stop: watch::Receiver<bool>,
    mut see: impl FnMut(Event) -> bool,
) -> Result<()> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.context("reading the event stream")?,
            _ = stop.changed() => return Ok(()),
        };
        let Some(bytes) = chunk else {
            bail!("the gateway ended the event stream");
        };
        parser.feed(&bytes, Instant::now(), &mut events);
        for event in events.drain(..) {
            if !see(event) {
                return Ok(());
            }
        }
    }
}

pub fn finished_run(data: &str) -> Result<mosaic_api::Run> {
    match serde_json::from_str(data).context("a run_finished event")? {
        SessionEvent::RunFinished { run } => Ok(run),
        other => bail!("expected run_finished, got {}", other.kind()),
    }
}
