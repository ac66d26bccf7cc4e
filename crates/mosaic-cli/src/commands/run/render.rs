//! How a session's events look for people: the answer's text on stdout as it streams;
//! tool calls, approvals, queued messages and how runs ended as short notes on stderr.

use std::io::Write;

use anyhow::Result;
use mosaic_api::{Delivery, EntryBody, Run, RunStatus, SessionEvent};
use mosaic_client::LiveEvent;

use super::RunEnded;

/// The terminal: answer text on stdout; notes on stderr, held back while stdout is
/// mid-line so a note never splits the answer.
#[derive(Default)]
pub(super) struct Screen {
    mid_line: bool,
    held: Vec<String>,
}

impl Screen {
    pub(super) fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.mid_line = !text.ends_with('\n');
        if !self.mid_line {
            self.release();
        }
    }

    /// End the answer's line, if it is open.
    pub(super) fn end_line(&mut self) {
        if std::mem::take(&mut self.mid_line) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        self.release();
    }

    pub(super) fn note(&mut self, line: impl Into<String>) {
        self.held.push(line.into());
        if !self.mid_line {
            self.release();
        }
    }

    fn release(&mut self) {
        for line in self.held.drain(..) {
            eprintln!("{line}");
        }
    }
}

/// One line, at most `max` characters.
pub(super) fn clip(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut out: String = line.chars().take(max).collect();
    out.push('…');
    out
}

pub(super) fn usage_line(run: &Run) -> String {
    format!(
        "tokens: {} in ({} cached), {} out, {} model call(s)",
        run.usage.input_tokens, run.usage.cached_tokens, run.usage.output_tokens, run.model_calls
    )
}

/// The run an event belongs to, when it belongs to one.
pub(super) fn run_of(event: &SessionEvent) -> Option<&str> {
    match event {
        SessionEvent::RunStarted { run_id, .. }
        | SessionEvent::ModelCall { run_id, .. }
        | SessionEvent::TextDelta { run_id, .. }
        | SessionEvent::ThinkingDelta { run_id, .. }
        | SessionEvent::ApprovalResolved { run_id, .. } => Some(run_id),
        SessionEvent::Entry { run_id, .. } | SessionEvent::Error { run_id, .. } => {
            run_id.as_deref()
        }
        SessionEvent::ApprovalNeeded { approval } => Some(&approval.run_id),
        SessionEvent::RunFinished { run } => Some(&run.id),
        SessionEvent::Queued { .. }
        | SessionEvent::LeafChanged { .. }
        | SessionEvent::Resync { .. }
        | SessionEvent::StreamClosed { .. }
        | SessionEvent::Unknown => None,
    }
}

/// Who watches: one headless run, a chat, or a bystander (`sessions follow`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    Run,
    Chat,
    Follow,
}

/// How events look for people.
pub(super) struct Render {
    pub view: View,
    pub verbose: bool,
    pub session_id: String,
}

impl Render {
    pub(super) fn show(&self, screen: &mut Screen, event: &SessionEvent) {
        let (view, verbose) = (self.view, self.verbose || self.view == View::Follow);
        match event {
            SessionEvent::RunStarted { run_id, route } => {
                screen.end_line();
                if view == View::Follow {
                    screen.note(format!("── run {run_id} ({route})"));
                }
            }
            SessionEvent::ModelCall {
                provider,
                model,
                fallbacks,
                ..
            } => {
                if verbose || view == View::Chat {
                    for f in fallbacks {
                        screen.note(format!("fell back from {f}"));
                    }
                }
                if verbose {
                    screen.note(format!("answered by {provider}/{model}"));
                }
            }
            SessionEvent::TextDelta { text, .. } => screen.text(text),
            SessionEvent::ThinkingDelta { .. } => {}
            SessionEvent::Entry { entry, .. } => match &entry.body {
                EntryBody::User { text } => {
                    if view == View::Follow {
                        screen.end_line();
                        screen.text(&format!("› {}\n", text.trim_end()));
                    }
                }
                EntryBody::Assistant { .. } => screen.end_line(),
                EntryBody::ToolCall {
                    name, arguments, ..
                } => screen.note(format!("→ {name} {}", clip(arguments, 160))),
                EntryBody::ToolResult {
                    output, is_error, ..
                } => screen.note(match (is_error, verbose) {
                    (true, _) => format!("← error: {}", clip(output, 200)),
                    (false, true) => format!("← ok: {}", clip(output, 160)),
                    (false, false) => "← ok".into(),
                }),
                EntryBody::ModelChange { route } => screen.note(format!("(route now {route})")),
                EntryBody::Compaction { .. } => screen
                    .note("(the conversation so far was summarised to fit the model's context)"),
                EntryBody::Unknown => {
                    screen.note("(an entry of a kind this mosaic does not know: upgrade to see it)")
                }
            },
            SessionEvent::ApprovalNeeded { approval } => {
                let what = format!("{} {}", approval.name, clip(&approval.arguments, 160));
                match view {
                    // `mosaic run` answers it itself and says so.
                    View::Run => {}
                    View::Chat => screen.note(format!(
                        "? {what} waits for your approval: /approve or /deny [note]"
                    )),
                    View::Follow => screen.note(format!(
                        "? {what} waits for approval: mosaic sessions approve {} {} [--deny]",
                        self.session_id, approval.call_id
                    )),
                }
            }
            SessionEvent::ApprovalResolved {
                call_id, approved, ..
            } => {
                if view != View::Run {
                    let verdict = if *approved { "approved" } else { "declined" };
                    screen.note(format!("({verdict} call {call_id})"));
                }
            }
            SessionEvent::Queued { message } => {
                if view != View::Run {
                    let when = match message.delivery {
                        Delivery::FollowUp => "runs when this answer ends",
                        Delivery::Steer => "joins the answer after its current step",
                    };
                    screen.note(format!("(queued, {when}: {})", clip(&message.text, 60)));
                }
            }
            SessionEvent::LeafChanged { leaf_id } => {
                if view != View::Run {
                    screen.note(format!("(the active branch now ends at {leaf_id})"));
                }
            }
            SessionEvent::RunFinished { run } => {
                screen.end_line();
                if view != View::Run && run.status != RunStatus::Completed {
                    screen.note(format!("({})", RunEnded::of(run)));
                }
                if verbose {
                    screen.note(usage_line(run));
                }
            }
            SessionEvent::Error { run_id, message } => {
                // A headless run reports its own failure when it exits.
                if view != View::Run || run_id.is_none() {
                    screen.note(format!("error: {message}"));
                }
            }
            SessionEvent::Resync { reason, .. } => screen.note(format!(
                "(some events were missed: {reason}; `mosaic sessions show {}` has the whole \
                 conversation)",
                self.session_id
            )),
            SessionEvent::StreamClosed { message, .. } => {
                screen.end_line();
                screen.note(format!("(the gateway ended the stream: {message})"));
            }
            // The client leaves these out; a newer gateway's kind of event.
            SessionEvent::Unknown => {}
        }
    }
}

pub(super) fn print_json_line(event: &LiveEvent) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(event)?)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn notes_are_one_clipped_line() {
        assert_eq!(clip("{\n  \"a\": 1\n}", 20), "{ \"a\": 1 }");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
