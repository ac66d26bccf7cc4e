//! `mosaic chat`: a line-based conversation in the terminal. Standard input is read on
//! a thread of its own and the session's events are printed by a task of their own, so
//! typing never waits for the answer: a line typed while a run streams is a follow-up
//! (or, with `/steer`, joins the run). At the end of input it waits for the running
//! answer and the follow-ups, declining approvals nobody is left to give.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use mosaic_api::{
    ApprovalRequest, Delivery, PendingApproval, PostMessageRequest, PostMessageResponse,
    SessionEvent, SessionState,
};
use mosaic_client::{Client, LiveEvent};
use tokio::sync::{mpsc, watch};

use super::render::{clip, Render, Screen, View};
use super::SessionChoice;
use super::{answer, interrupts, open_session, pump};
use crate::commands::{usage, Ctx};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Type a message and press Enter: it is sent and the answer streams. A message typed while \
an answer streams is sent as a follow-up: it runs when that answer ends. Lines starting \
with / are commands:

  /steer TEXT      hand TEXT to the running answer (after its current tool call)
  /interrupt       stop the running answer (Ctrl-C does too; Ctrl-C when idle leaves)
  /approve [CALL]  run the tool call that waits for approval
  /deny [NOTE]     decline it, telling the model NOTE
  /branches        list the session's branches
  /help            list the commands
  /quit            leave (an answer still running goes on; Ctrl-D waits for it)

A line starting with // is sent with one slash. At the end of input (Ctrl-D, or the end \
of a pipe), chat waits for the running answer and the follow-ups, then exits; approval \
requests arriving then are declined.")]
pub struct ChatArgs {
    #[command(flatten)]
    pub session: SessionChoice,
}

/// At the end of input: how long the last events may take to arrive.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// What the input side and the event side of a chat share.
struct Shared {
    screen: Screen,
    /// The run under way, as far as the events told.
    active: Option<String>,
    /// Tool calls waiting for an answer, oldest first.
    approvals: Vec<PendingApproval>,
    /// Input ended: approval requests are declined as they come.
    input_closed: bool,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Lines of standard input, read on a thread of their own (it blocks); the channel
/// closes at the end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\r', '\n']).to_string();
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Counters the input side waits on: the last event number shown, and runs finished.
struct Progress {
    seen: watch::Sender<u64>,
    finished: watch::Sender<u64>,
}

/// The event side of a chat: print every event, keep the shared state current, and
/// decline approvals once input has ended.
async fn chat_events(
    mut events: mpsc::UnboundedReceiver<Result<LiveEvent>>,
    client: Client,
    session_id: String,
    shared: SharedRef,
    progress: Progress,
) -> Result<()> {
    let render = Render {
        view: View::Chat,
        verbose: false,
        session_id: session_id.clone(),
    };
    while let Some(received) = events.recv().await {
        let live = received?;
        let decline = {
            let mut s = lock(&shared);
            render.show(&mut s.screen, &live.event);
            let mut decline = None;
            if let SessionEvent::RunStarted { run_id, .. } = &live.event {
                s.active = Some(run_id.clone());
            }
            if let SessionEvent::RunFinished { run } = &live.event {
                if s.active.as_deref() == Some(run.id.as_str()) {
                    s.active = None;
                }
                s.approvals.retain(|a| a.run_id != run.id);
            }
            if let SessionEvent::ApprovalNeeded { approval } = &live.event {
                if s.input_closed {
                    decline = Some(approval.call_id.clone());
                    s.screen.note("(declined: the input has ended)");
                } else {
                    s.approvals.push(approval.clone());
                }
            }
            if let SessionEvent::ApprovalResolved { call_id, .. } = &live.event {
                s.approvals.retain(|a| a.call_id != *call_id);
            }
            decline
        };
        if let Some(call_id) = decline {
            let req = ApprovalRequest {
                approve: false,
                note: Some("declined: nobody is there to approve it".into()),
            };
            answer(&client, &session_id, &call_id, req).await?;
        }
        if let SessionEvent::RunFinished { .. } = &live.event {
            progress.finished.send_modify(|n| *n += 1);
        }
        if let Some(id) = live.id {
            progress.seen.send_modify(|s| *s = (*s).max(id));
        }
    }
    Ok(())
}

const CHAT_HELP: &str = "\
/steer TEXT      hand TEXT to the running answer
/interrupt       stop the running answer (or Ctrl-C)
/approve [CALL]  run the tool call waiting for approval
/deny [NOTE]     decline it, telling the model NOTE
/branches        list the session's branches
/quit            leave (Ctrl-D waits for the running answer first)
A line starting with // is sent with one slash.";

enum Flow {
    Continue,
    Quit,
}

/// Post a message (a follow-up or a steer when a run is active).
async fn send(
    client: &Client,
    session_id: &str,
    shared: &SharedRef,
    text: String,
    delivery: Delivery,
) -> Result<()> {
    let req = PostMessageRequest {
        text,
        delivery,
        ..PostMessageRequest::default()
    };
    if let PostMessageResponse::Started { run_id, .. } =
        client.post_message(session_id, &req).await?
    {
        lock(shared).active = Some(run_id);
    }
    Ok(())
}

/// One line typed in the chat.
async fn chat_line(
    client: &Client,
    session_id: &str,
    shared: &SharedRef,
    line: &str,
) -> Result<Flow> {
    if line.trim().is_empty() {
        return Ok(Flow::Continue);
    }
    if let Some(text) = line.strip_prefix("//") {
        send(
            client,
            session_id,
            shared,
            format!("/{text}"),
            Delivery::FollowUp,
        )
        .await?;
        return Ok(Flow::Continue);
    }
    let Some(command) = line.strip_prefix('/') else {
        send(
            client,
            session_id,
            shared,
            line.to_string(),
            Delivery::FollowUp,
        )
        .await?;
        return Ok(Flow::Continue);
    };
    let (name, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let rest = rest.trim();
    let note = |text: String| lock(shared).screen.note(text);
    match name {
        "quit" | "exit" => {
            if lock(shared).active.is_some() {
                note(format!(
                    "(the answer goes on in the gateway: `mosaic sessions follow {session_id}`)"
                ));
            }
            return Ok(Flow::Quit);
        }
        "help" => note(CHAT_HELP.into()),
        "steer" if rest.is_empty() => note("usage: /steer TEXT".into()),
        "steer" => {
            send(
                client,
                session_id,
                shared,
                rest.to_string(),
                Delivery::Steer,
            )
            .await?
        }
        "interrupt" => match client.interrupt_run(session_id).await?.run_id {
            Some(run) => note(format!("(interrupting run {run})")),
            None => note("(no run is active)".into()),
        },
        "approve" | "deny" => {
            let approve = name == "approve";
            let pending = {
                let s = lock(shared);
                match (approve && !rest.is_empty(), s.approvals.first()) {
                    (true, _) => s.approvals.iter().find(|a| a.call_id == rest).cloned(),
                    (false, first) => first.cloned(),
                }
            };
            let Some(pending) = pending else {
                note("(no tool call waits for approval)".into());
                return Ok(Flow::Continue);
            };
            let note_text = (!approve && !rest.is_empty()).then(|| rest.to_string());
            let req = ApprovalRequest {
                approve,
                note: note_text,
            };
            answer(client, session_id, &pending.call_id, req).await?;
            lock(shared)
                .approvals
                .retain(|a| a.call_id != pending.call_id);
        }
        "branches" => {
            let list = client.list_session_branches(session_id).await?;
            let lines: Vec<String> = list
                .items
                .iter()
                .map(|b| {
                    let body = b.leaf.body.searchable_text();
                    format!(
                        "{} {}  {} entries  {}  {}",
                        if b.active { "*" } else { " " },
                        b.leaf.id,
                        b.length,
                        b.leaf.body.kind(),
                        clip(&body, 60)
                    )
                })
                .collect();
            note(if lines.is_empty() {
                "(no entries yet)".into()
            } else {
                lines.join("\n")
            });
        }
        other => note(format!("unknown command /{other} (/help lists them)")),
    }
    Ok(Flow::Continue)
}

pub async fn chat(ctx: &Ctx, args: ChatArgs) -> Result<()> {
    if ctx.json {
        return Err(usage(
            "chat has no --json: use `mosaic run --json` or `mosaic sessions follow ID --json`",
        ));
    }
    let client = ctx.client()?;
    let session = open_session(&client, &args.session).await?;
    let events = pump(client.session_events(&session.id, None).await?);
    let state: SessionState = client.get_session_state(&session.id).await?;
    let title = if session.title.is_empty() {
        String::new()
    } else {
        format!(" ({})", session.title)
    };
    eprintln!(
        "session {}{title}: type a message, /help for commands, Ctrl-D to leave",
        session.id
    );
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        screen: Screen::default(),
        active: state.run.as_ref().map(|r| r.id.clone()),
        approvals: state.approvals.clone(),
        input_closed: false,
    }));
    if let Some(run) = &state.run {
        eprintln!("(run {} is under way; its answer follows)", run.id);
    }
    for a in &state.approvals {
        eprintln!(
            "? {} {} waits for your approval: /approve {}",
            a.name,
            clip(&a.arguments, 160),
            a.call_id
        );
    }
    let (seen, seen_rx) = watch::channel(state.last_event_id);
    let (finished, mut finished_rx) = watch::channel(0u64);
    let progress = Progress { seen, finished };
    let mut printer = tokio::spawn(chat_events(
        events,
        client.clone(),
        session.id.clone(),
        shared.clone(),
        progress,
    ));
    let mut lines = stdin_lines();
    let mut ctrl_c = interrupts();

    // Input, until it ends.
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                match chat_line(&client, &session.id, &shared, &line).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => return Ok(()),
                    Err(e) => lock(&shared).screen.note(format!("error: {e:#}")),
                }
            }
            Some(()) = ctrl_c.recv() => {
                if lock(&shared).active.is_none() {
                    lock(&shared).screen.end_line();
                    return Ok(());
                }
                if let Err(e) = client.interrupt_run(&session.id).await {
                    lock(&shared).screen.note(format!("error: {e}"));
                }
            }
            ended = &mut printer => return ended?,
        }
    }

    // The end of input: decline what waits, then let the answer and follow-ups finish.
    let waiting = {
        let mut s = lock(&shared);
        s.input_closed = true;
        std::mem::take(&mut s.approvals)
    };
    for a in waiting {
        let req = ApprovalRequest {
            approve: false,
            note: Some("declined: nobody is there to approve it".into()),
        };
        answer(&client, &session.id, &a.call_id, req).await?;
    }
    let mut interrupted = false;
    loop {
        let state = client.get_session_state(&session.id).await?;
        if state.run.is_none() && state.queue.is_empty() {
            let mut seen = seen_rx.clone();
            let target = state.last_event_id;
            let _ = tokio::time::timeout(DRAIN_WAIT, seen.wait_for(|s| *s >= target)).await;
            lock(&shared).screen.end_line();
            return Ok(());
        }
        tokio::select! {
            _ = finished_rx.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            Some(()) = ctrl_c.recv() => {
                if interrupted {
                    lock(&shared).screen.end_line();
                    return Ok(());
                }
                interrupted = true;
                client.interrupt_run(&session.id).await?;
            }
            ended = &mut printer => return ended?,
        }
    }
}
