//! `mosaic run` (one headless run), and what `mosaic chat` (`run/chat.rs`) and the run
//! commands of `mosaic sessions` (`run/sessions.rs`) share with it. All of them render a
//! session's live events for people (`run/render.rs`: the answer's text on stdout as it
//! streams, everything else summarised on stderr) or, with `--json`, pass them through
//! one per line. Each subscribes to the events before it starts anything, so nothing a
//! run does is missed, however fast it is.

mod chat;
mod render;
mod sessions;

pub use chat::{chat, ChatArgs};
pub use sessions::{sessions, SessionRunsCommand};

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use mosaic_api::{
    ApprovalRequest, Delivery, EntryBody, PostMessageRequest, PostMessageResponse, Run, RunStatus,
    Session, SessionEvent, StartRunRequest, StopReason,
};
use mosaic_client::{Client, ClientError, LiveEvent};
use tokio::sync::mpsc;

use crate::commands::agents::resolve;
use crate::commands::{usage, Ctx};
use render::{print_json_line, run_of, Render, Screen, View};

/// What `run` and `chat` talk to: a new session (with --agent, --title) or --session.
#[derive(Debug, Args)]
pub struct SessionChoice {
    /// The agent of the new session (id or name; default: `default`).
    #[arg(long, conflicts_with = "session")]
    pub agent: Option<String>,
    /// The title of the new session.
    #[arg(long, conflicts_with = "session")]
    pub title: Option<String>,
    /// Continue this session instead of starting one.
    #[arg(long, short, value_name = "ID")]
    pub session: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Output: the answer's text goes to standard output as it streams (thinking is not shown); \
tool calls and their results are summarised on standard error (`→ current_time {}`, \
`← ok`). With --json, standard output carries every event of the session, one JSON \
object a line ({\"id\": N, \"event\": {...}}; a `resync`, which says events were missed, \
has no id), ending with the run's `run_finished`.

Tool calls that need approval are declined (the model is told so) unless --approve is \
given. Ctrl-C interrupts the run; a second Ctrl-C leaves without waiting for it.

Exit codes: 0 the run completed, 11 it failed (the model or the gateway), 12 it stopped \
at a limit (model calls, token budget), 13 it was interrupted; the others as in \
`mosaic --help`.

Examples:
  mosaic run \"What is the time in Tokyo?\"
  mosaic run --agent researcher --title Notes - < question.txt
  mosaic run --session SESSION_ID \"And in Lima?\"
  mosaic run --trace \"Why so slow?\"")]
pub struct RunArgs {
    /// The message; `-` reads it from standard input.
    pub prompt: String,
    #[command(flatten)]
    pub session: SessionChoice,
    /// Approve every tool call of this run that asks for approval.
    #[arg(long)]
    pub approve: bool,
    /// Say on standard error which model answered, what it fell back from, the session
    /// and the tokens used.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the trace id of this run on standard error (`trace: ID`, before the answer),
    /// to find its trace in your tracing backend: all the command's requests, and what
    /// the gateway does for them, are that one trace.
    #[arg(long)]
    pub trace: bool,
}

/// How long an interrupted run may take to report its end before we leave anyway.
const INTERRUPT_WAIT: Duration = Duration::from_secs(5);
/// What a headless run tells the model when it declines a tool call.
const HEADLESS_REFUSAL: &str =
    "declined: this run is headless (`mosaic run`), so tool calls needing approval are not run";

/// A run that ended other than completed: the process exits with its code.
#[derive(Debug)]
pub struct RunEnded {
    status: RunStatus,
    detail: String,
}

impl RunEnded {
    fn of(run: &Run) -> RunEnded {
        let detail = match run.status {
            RunStatus::Failed => format!(
                "the run failed: {}",
                run.error.as_deref().unwrap_or("no reason given")
            ),
            RunStatus::Limited => format!(
                "the run stopped at a limit ({})",
                run.stop_reason
                    .as_ref()
                    .map(StopReason::as_str)
                    .unwrap_or("unknown")
            ),
            RunStatus::Interrupted if run.stop_reason == Some(StopReason::GatewayStopped) => {
                "the run was interrupted: the gateway stopped".into()
            }
            RunStatus::Interrupted => "the run was interrupted".into(),
            RunStatus::Completed | RunStatus::Running => {
                format!("the run ended {}", run.status.as_str())
            }
        };
        RunEnded {
            status: run.status,
            detail,
        }
    }

    fn interrupted(detail: impl Into<String>) -> RunEnded {
        RunEnded {
            status: RunStatus::Interrupted,
            detail: detail.into(),
        }
    }

    /// 11 failed, 12 limited, 13 interrupted (see `mosaic run --help`).
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Failed => 11,
            RunStatus::Limited => 12,
            RunStatus::Interrupted => 13,
            RunStatus::Completed | RunStatus::Running => 1,
        }
    }
}

impl std::fmt::Display for RunEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for RunEnded {}

// --- shared plumbing ------------------------------------------------------------------------

/// Ctrl-C presses, as messages (so a press is handled, not fatal).
pub(super) fn interrupts() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    rx
}

/// A session's events read by their own task (into a channel), so they keep flowing
/// while the caller waits for other answers; the task ends with the channel's receiver.
pub(super) fn pump(
    mut events: mosaic_client::EventStream,
) -> mpsc::UnboundedReceiver<Result<LiveEvent>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = tx.closed() => break,
            };
            let item = match next {
                Some(Ok(event)) => Ok(event),
                Some(Err(e)) => Err(e.into()),
                None => Err(ClientError::Stream(
                    "the gateway closed the session's event stream".into(),
                )
                .into()),
            };
            let last = item.is_err();
            if tx.send(item).is_err() || last {
                break;
            }
        }
    });
    rx
}

/// The session `run` and `chat` talk to: the one named, or a new one.
pub(super) async fn open_session(client: &Client, choice: &SessionChoice) -> Result<Session> {
    if let Some(id) = &choice.session {
        return Ok(client.get_session(id).await?);
    }
    let agent_id = match &choice.agent {
        Some(a) => Some(resolve(client, a).await?),
        None => None,
    };
    let req = mosaic_api::CreateSessionRequest {
        agent_id,
        title: choice.title.clone(),
    };
    Ok(client.create_session(&req).await?)
}

/// An answer to an approval; one that was answered meanwhile (404) is no error.
pub(super) async fn answer(
    client: &Client,
    session_id: &str,
    call_id: &str,
    req: ApprovalRequest,
) -> Result<()> {
    match client.answer_approval(session_id, call_id, &req).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(mosaic_api::ErrorCode::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// --- one headless run ----------------------------------------------------------------------

/// How the run is started.
pub(super) enum Start {
    Message(String),
    From(Option<String>),
}

/// Which run is ours: known, or (our message waits behind another run) the one that
/// will deliver our queued message.
enum Mine {
    Run(String),
    Waiting {
        message_id: String,
        text: String,
        queued: bool,
    },
}

impl Mine {
    fn learn(&mut self, event: &SessionEvent) {
        let Mine::Waiting {
            message_id,
            text,
            queued,
        } = self
        else {
            return;
        };
        if let SessionEvent::Queued { message } = event {
            *queued |= message.id == *message_id;
        }
        if let SessionEvent::Entry {
            run_id: Some(run_id),
            entry,
        } = event
        {
            if let EntryBody::User { text: delivered } = &entry.body {
                if *queued && delivered == text {
                    *self = Mine::Run(run_id.clone());
                }
            }
        }
    }
}

/// Start a run in `session_id` and stream it to its end; `Err(RunEnded)` unless it
/// completed.
pub(super) async fn headless(
    ctx: &Ctx,
    client: &Client,
    session_id: &str,
    start: Start,
    approve: bool,
    verbose: bool,
) -> Result<()> {
    let mut screen = Screen::default();
    let render = Render {
        view: View::Run,
        verbose,
        session_id: session_id.to_string(),
    };
    // Subscribed first: events of the run may arrive before the answer that names it,
    // and wait in the channel until then.
    let mut events = pump(client.session_events(session_id, None).await?);
    let mut mine = match start {
        Start::Message(text) => {
            let req = PostMessageRequest {
                text: text.clone(),
                delivery: Delivery::FollowUp,
                ..PostMessageRequest::default()
            };
            match client.post_message(session_id, &req).await? {
                PostMessageResponse::Started { run_id, .. } => Mine::Run(run_id),
                PostMessageResponse::Queued { message } => {
                    screen.note("(a run is active in this session: your message waits for it)");
                    Mine::Waiting {
                        message_id: message.id,
                        text,
                        queued: false,
                    }
                }
                PostMessageResponse::Unknown => anyhow::bail!(
                    "the gateway took the message, but answered in a way this mosaic does not \
                     know: upgrade it, then follow the session with `mosaic sessions follow`"
                ),
            }
        }
        Start::From(from_entry_id) => {
            let req = StartRunRequest { from_entry_id };
            Mine::Run(client.start_run(session_id, &req).await?.run_id)
        }
    };
    let mut ctrl_c = interrupts();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let received = tokio::select! {
            received = events.recv() => received,
            Some(()) = ctrl_c.recv() => {
                screen.end_line();
                let Mine::Run(_) = &mine else {
                    return Err(RunEnded::interrupted(
                        "interrupted before the run started: your message still waits in the \
                         session's queue",
                    )
                    .into());
                };
                if deadline.is_some() {
                    let left = RunEnded::interrupted("left without waiting for the run to stop");
                    return Err(left.into());
                }
                client.interrupt_run(session_id).await?;
                screen.note("(interrupting: Ctrl-C again leaves at once)");
                deadline = Some(tokio::time::Instant::now() + INTERRUPT_WAIT);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() =>
            {
                let unconfirmed =
                    RunEnded::interrupted("the run was interrupted (its end was not confirmed)");
                return Err(unconfirmed.into());
            }
        };
        let Some(received) = received else {
            return Err(ClientError::Stream("the event stream ended".into()).into());
        };
        let live = received?;
        mine.learn(&live.event);
        if ctx.json {
            print_json_line(&live)?;
        }
        if let SessionEvent::StreamClosed { message, .. } = &live.event {
            return Err(
                ClientError::Stream(format!("the gateway ended the stream: {message}")).into(),
            );
        }
        let Mine::Run(run_id) = &mine else { continue };
        let ours = run_of(&live.event) == Some(run_id.as_str());
        if !ours && !matches!(live.event, SessionEvent::Resync { .. }) {
            continue;
        }
        if !ctx.json {
            render.show(&mut screen, &live.event);
        }
        if let SessionEvent::ApprovalNeeded { approval } = &live.event {
            let note = (!approve).then(|| HEADLESS_REFUSAL.to_string());
            let req = ApprovalRequest { approve, note };
            answer(client, session_id, &approval.call_id, req).await?;
            screen.note(if approve {
                format!("✓ approved {} (--approve)", approval.name)
            } else {
                format!(
                    "✗ declined {}: it needs approval, which a headless run cannot ask for; \
                     pass --approve to allow this run's tool calls",
                    approval.name
                )
            });
        }
        if let SessionEvent::RunFinished { run } = &live.event {
            screen.end_line();
            return match run.status {
                RunStatus::Completed => Ok(()),
                RunStatus::Running
                | RunStatus::Failed
                | RunStatus::Limited
                | RunStatus::Interrupted => Err(RunEnded::of(run).into()),
            };
        }
    }
}

fn read_prompt(prompt: String) -> Result<String> {
    let text = if prompt == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        text
    } else {
        prompt
    };
    if text.trim().is_empty() {
        return Err(usage("the message is empty"));
    }
    Ok(text)
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let text = read_prompt(args.prompt)?;
    let client = ctx.client()?;
    if args.trace {
        // First, so the id is there to look up even when the run fails.
        eprintln!("trace: {}", client.trace_id());
    }
    let session = open_session(&client, &args.session).await?;
    if args.verbose {
        eprintln!("session {}", session.id);
    }
    let start = Start::Message(text);
    headless(ctx, &client, &session.id, start, args.approve, args.verbose).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_api::{Entry, QueuedMessage};
    use pretty_assertions::assert_eq;

    fn user_entry(run: &str, text: &str) -> SessionEvent {
        SessionEvent::Entry {
            run_id: Some(run.into()),
            entry: Entry {
                id: "e1".into(),
                parent_id: None,
                created_at: "2025-01-01T00:00:00Z".into(),
                body: EntryBody::User { text: text.into() },
            },
        }
    }

    #[test]
    fn a_queued_message_is_ours_once_a_run_delivers_it() {
        let mut mine = Mine::Waiting {
            message_id: "q1".into(),
            text: "hi".into(),
            queued: false,
        };
        // The same text from someone else's run before ours was queued is not ours.
        mine.learn(&user_entry("r0", "hi"));
        assert!(matches!(mine, Mine::Waiting { .. }));
        mine.learn(&SessionEvent::Queued {
            message: QueuedMessage {
                id: "q1".into(),
                text: "hi".into(),
                delivery: Delivery::FollowUp,
                created_at: "2025-01-01T00:00:00Z".into(),
            },
        });
        mine.learn(&user_entry("r1", "something else"));
        assert!(matches!(mine, Mine::Waiting { .. }));
        mine.learn(&user_entry("r2", "hi"));
        assert!(matches!(&mine, Mine::Run(id) if id == "r2"));
    }

    #[test]
    fn each_way_a_run_ends_has_its_exit_code() {
        let run = |status, stop: &str, error: Option<&str>| Run {
            id: "r1".into(),
            session_id: "s1".into(),
            status,
            stop_reason: Some(stop.into()),
            error: error.map(str::to_string),
            model_calls: 1,
            usage: Default::default(),
            started_at: "2025-01-01T00:00:00Z".into(),
            finished_at: None,
        };
        let ended = |r: Run| {
            let e = RunEnded::of(&r);
            (e.exit_code(), e.to_string())
        };
        assert_eq!(
            ended(run(RunStatus::Failed, "error", Some("mock/m: 500"))),
            (11, "the run failed: mock/m: 500".to_string())
        );
        assert_eq!(
            ended(run(RunStatus::Limited, "max_model_calls", None)),
            (
                12,
                "the run stopped at a limit (max_model_calls)".to_string()
            )
        );
        assert_eq!(
            ended(run(RunStatus::Interrupted, "interrupted", None)),
            (13, "the run was interrupted".to_string())
        );
    }
}
