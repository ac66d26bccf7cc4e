//! The run commands of `mosaic sessions`: list runs, show the state, follow the events,
//! interrupt, retry (streamed as `mosaic run` streams), approve or decline a tool call.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{ApprovalRequest, Delivery, Run, SessionState};
use mosaic_client::{Client, ClientError};

use super::render::{clip, print_json_line, Render, Screen, View};
use super::{headless, interrupts, Start};
use crate::commands::{paged, print_page, Ctx, PageArgs};
use crate::output::{fields, json};

/// What runs in a session (`mosaic sessions ...`, beside the session commands).
#[derive(Debug, Subcommand)]
pub enum SessionRunsCommand {
    /// List a session's runs, newest first.
    Runs {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show what runs and waits in a session: the active run, queued messages, tool
    /// calls waiting for approval, the latest event number.
    State { id: String },
    /// Print a session's events as they happen, until Ctrl-C (`--json`: one JSON
    /// object a line, as `mosaic run --json`).
    Follow {
        id: String,
        /// Replay the events after this number first (those the gateway still holds).
        #[arg(long, value_name = "N")]
        after: Option<u64>,
    },
    /// Stop a session's active run; what it streamed so far is kept.
    Interrupt { id: String },
    /// Run the agent again and print the answer as `mosaic run` does: from ENTRY (a
    /// retry: pass the user message before the answer to replace; the new answer is a
    /// branch), or from the active leaf.
    Retry {
        id: String,
        /// The entry to continue from.
        #[arg(long, value_name = "ENTRY")]
        from: Option<String>,
        /// Approve every tool call of this run that asks for approval.
        #[arg(long)]
        approve: bool,
        /// Say on standard error which model answered and the tokens used.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Approve a tool call waiting for approval (see `sessions state`), or decline it.
    Approve {
        id: String,
        /// The tool call's id.
        call: String,
        /// Decline instead.
        #[arg(long)]
        deny: bool,
        /// Why, passed to the model with a refusal.
        #[arg(long, requires = "deny")]
        note: Option<String>,
    },
}

async fn follow(ctx: &Ctx, client: &Client, session_id: &str, after: Option<u64>) -> Result<()> {
    let mut events = client.session_events(session_id, after).await?;
    let mut screen = Screen::default();
    let render = Render {
        view: View::Follow,
        verbose: true,
        session_id: session_id.to_string(),
    };
    let mut ctrl_c = interrupts();
    loop {
        tokio::select! {
            next = events.next() => {
                let live = match next {
                    Some(live) => live?,
                    None => {
                        screen.end_line();
                        return Err(ClientError::Stream(
                            "the gateway closed the session's event stream".into(),
                        )
                        .into());
                    }
                };
                if ctx.json {
                    print_json_line(&live)?;
                } else {
                    render.show(&mut screen, &live.event);
                }
            }
            Some(()) = ctrl_c.recv() => {
                screen.end_line();
                return Ok(());
            }
        }
    }
}

fn show_state(ctx: &Ctx, state: &SessionState) -> Result<()> {
    if ctx.json {
        return json(state);
    }
    let run = match &state.run {
        Some(r) => format!(
            "{} ({}, {} model call(s), {} tokens, since {})",
            r.id,
            r.status.as_str(),
            r.model_calls,
            r.usage.total(),
            r.started_at
        ),
        None => "-".into(),
    };
    fields(&[
        ("run", run),
        ("queued", state.queue.len().to_string()),
        ("approvals", state.approvals.len().to_string()),
        ("last event", state.last_event_id.to_string()),
    ]);
    for m in &state.queue {
        let delivery = match m.delivery {
            Delivery::FollowUp => "follow-up",
            Delivery::Steer => "steer",
        };
        println!("queued {} ({delivery}): {}", m.id, clip(&m.text, 60));
    }
    for a in &state.approvals {
        println!(
            "approval {} {} {}",
            a.call_id,
            a.name,
            clip(&a.arguments, 60)
        );
    }
    Ok(())
}

pub async fn sessions(ctx: &Ctx, cmd: SessionRunsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        SessionRunsCommand::Runs { id, page } => {
            let list = paged(&page, |p| {
                let client = client.clone();
                let id = id.clone();
                async move { client.list_runs(&id, &p).await }
            })
            .await?;
            print_page(
                ctx,
                &list,
                &[
                    "ID", "STATUS", "REASON", "CALLS", "TOKENS", "STARTED", "FINISHED",
                ],
                |r: &Run| {
                    vec![
                        r.id.clone(),
                        r.status.as_str().into(),
                        r.stop_reason
                            .as_ref()
                            .map_or_else(|| "-".into(), ToString::to_string),
                        r.model_calls.to_string(),
                        r.usage.total().to_string(),
                        r.started_at.clone(),
                        r.finished_at.clone().unwrap_or_else(|| "-".into()),
                    ]
                },
            )
        }
        SessionRunsCommand::State { id } => show_state(ctx, &client.get_session_state(&id).await?),
        SessionRunsCommand::Follow { id, after } => follow(ctx, &client, &id, after).await,
        SessionRunsCommand::Interrupt { id } => {
            let stopped = client.interrupt_run(&id).await?;
            if ctx.json {
                return json(&stopped);
            }
            match stopped.run_id {
                Some(run) => eprintln!("interrupted run {run}"),
                None => eprintln!("no run was active"),
            }
            Ok(())
        }
        SessionRunsCommand::Retry {
            id,
            from,
            approve,
            verbose,
        } => headless(ctx, &client, &id, Start::From(from), approve, verbose).await,
        SessionRunsCommand::Approve {
            id,
            call,
            deny,
            note,
        } => {
            let req = ApprovalRequest {
                approve: !deny,
                note,
            };
            client.answer_approval(&id, &call, &req).await?;
            eprintln!("{} call {call}", if deny { "declined" } else { "approved" });
            Ok(())
        }
    }
}
