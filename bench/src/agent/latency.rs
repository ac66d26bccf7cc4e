//! The latency phase: one subscriber follows a session while messages are posted one
//! after the other; each run's events are timed from sending its POST, on one clock
//! with the scripted model's arrival of the call.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mosaic_api::{PostMessageResponse, RunStatus, SessionEvent};
use tokio::sync::{mpsc, watch};

use super::api::{finished_run, read_events, Api, Event};
use super::upstream::Upstream;
use super::{ms, Args, RUN_TIMEOUT, SHORT_ANSWER};

/// What happens after a POST, in the order the gateway does it; each the time from
/// sending the POST, in ms, one value per timed run.
pub const MILESTONES: [&str; 7] = [
    "entry (the user message)",
    "202 Accepted at the poster",
    "run_started",
    "the model got the call",
    "model_call",
    "first text_delta",
    "run_finished",
];
pub const FIRST_DELTA: usize = 5;

pub struct Latency {
    pub runs: usize,
    /// Per milestone, per timed run, in ms (in run order).
    pub milestones: Vec<Vec<f64>>,
    /// Posts answered `queued` (the previous run had not freed the session yet).
    pub queued: usize,
    pub resyncs: usize,
    /// The size of the model call's request at the first and the last timed run.
    pub request_bytes: (Option<usize>, usize),
    /// For scale: authenticated `GET`s of the session (HTTP, auth and one read), in ms.
    pub plain_gets: Vec<f64>,
}

/// How many `GET`s of the session are timed for scale.
const PLAIN_GETS: usize = 100;

pub async fn run(api: &Api, upstream: &Upstream, args: &Args) -> Result<Latency> {
    upstream.set_chunks(SHORT_ANSWER);
    let session = api.new_session().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let response = api.events(&session).await?;
    let reader = tokio::spawn(read_events(response, stop, move |e| tx.send(e).is_ok()));
    let hello = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    ensure!(
        matches!(hello, Ok(Some(Event { ref kind, .. })) if kind == "subscribed"),
        "the event stream did not start with `: subscribed`"
    );
    let mut out = Latency {
        runs: 0,
        milestones: vec![Vec::new(); MILESTONES.len()],
        queued: 0,
        resyncs: 0,
        request_bytes: (None, 0),
        plain_gets: Vec::with_capacity(PLAIN_GETS),
    };
    for n in 0..args.warmup + args.runs {
        if n == args.warmup {
            let path = format!("/api/v1/sessions/{session}");
            for _ in 0..PLAIN_GETS {
                let sent = Instant::now();
                api.send(reqwest::Method::GET, &path, None).await?;
                out.plain_gets.push(ms(sent.elapsed()));
            }
        }
        upstream.take_last_call();
        let posted = Instant::now();
        let answer = api.post_message(&session, &format!("message {n}")).await?;
        let accepted = posted.elapsed();
        let run_id = match answer {
            PostMessageResponse::Started { run_id, .. } => Some(run_id),
            PostMessageResponse::Queued { .. } | PostMessageResponse::Unknown => None,
        };
        let mut seen: [Option<Duration>; 7] = [None; 7];
        seen[1] = Some(accepted);
        loop {
            let event = tokio::time::timeout_at((posted + RUN_TIMEOUT).into(), rx.recv())
                .await
                .with_context(|| format!("run {n} did not finish within {RUN_TIMEOUT:?}"))?
                .context("the event stream ended")?;
            let since = event.at.saturating_duration_since(posted);
            let slot = match event.kind.as_str() {
                "entry" => 0,
                "run_started" => 2,
                "model_call" => 4,
                "text_delta" => {
                    if seen[FIRST_DELTA].is_none() {
                        if let Ok(SessionEvent::TextDelta { run_id: of, .. }) =
                            serde_json::from_str(&event.data)
                        {
                            ensure!(
                                run_id.is_none() || run_id.as_deref() == Some(of.as_str()),
                                "run {n}: a text_delta of another run ({of})"
                            );
                        }
                    }
                    FIRST_DELTA
                }
                "resync" => {
                    out.resyncs += 1;
                    continue;
                }
                "run_finished" => {
                    let run = finished_run(&event.data)?;
                    ensure!(
                        run.status == RunStatus::Completed,
                        "run {n} ended {:?}: {}",
                        run.status,
                        run.error.unwrap_or_default()
                    );
                    seen[6] = Some(since);
                    break;
                }
                _ => continue,
            };
            seen[slot].get_or_insert(since);
        }
        let call = upstream.take_last_call();
        seen[3] = call.map(|(t, _)| t.saturating_duration_since(posted));
        if n < args.warmup {
            continue;
        }
        if run_id.is_none() {
            out.queued += 1;
            continue;
        }
        if seen.iter().all(Option::is_some) {
            out.runs += 1;
            let bytes = call.map_or(0, |(_, b)| b);
            out.request_bytes.0.get_or_insert(bytes);
            out.request_bytes.1 = bytes;
            for (values, d) in out.milestones.iter_mut().zip(seen.iter().flatten()) {
                values.push(ms(*d));
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = reader.await;
    Ok(out)
}
