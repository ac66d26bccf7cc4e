//! From a session's path to a model's context: entries become messages, the latest
//! compaction summary stands in for what it covers, and tool calls left without a result
//! (a run cut off mid-tool) get one, since every provider insists on it.
//!
//! A run builds its context through [`build`] alone. It asks an [`EntrySource`] for the
//! content of each entry: an entry stored in full is its own content, but an entry may
//! also be a reference whose content lives elsewhere (a peer gateway's message, which is
//! fetched for each model call and never stored). A reference that cannot be fetched
//! becomes a placeholder that tells the model so; the run goes on.

use std::collections::HashSet;

use mosaic_api::{Entry, EntryBody};
use mosaic_llm::{BoxFuture, Message, Reasoning, Role, ToolCall, ToolSpec};
use mosaic_store::Principal;

/// Where the content of entries comes from when a context is built.
pub trait EntrySource: Send + Sync {
    /// `None` for an entry stored in full (used as it is, nothing awaited); for a
    /// reference, the fetch of its content for `p`, or why it cannot be had.
    fn resolve<'a>(
        &'a self,
        p: &'a Principal,
        entry: &'a Entry,
    ) -> Option<BoxFuture<'a, Result<EntryBody, String>>>;
}

/// Every entry is stored in full: the source of a gateway without references.
pub struct Stored;

impl EntrySource for Stored {
    fn resolve<'a>(
        &'a self,
        _p: &'a Principal,
        _entry: &'a Entry,
    ) -> Option<BoxFuture<'a, Result<EntryBody, String>>> {
        None
    }
}

/// What a reference that could not be fetched shows the model: the entry's own shape
/// (so a tool call keeps its result), its text replaced by why it is missing.
pub fn placeholder(stored: &EntryBody, why: &str) -> EntryBody {
    let text = format!("[this message is not available now: {why}]");
    match stored {
        EntryBody::User { .. } => EntryBody::User { text },
        EntryBody::Assistant {
            model, stop_reason, ..
        } => EntryBody::Assistant {
            text,
            thinking: String::new(),
            model: model.clone(),
            stop_reason: stop_reason.clone(),
            reasoning: Vec::new(),
        },
        EntryBody::ToolCall { call_id, name, .. } => EntryBody::ToolCall {
            call_id: call_id.clone(),
            name: name.clone(),
            arguments: "{}".into(),
        },
        EntryBody::ToolResult { call_id, .. } => EntryBody::ToolResult {
            call_id: call_id.clone(),
            output: text,
            is_error: true,
        },
        EntryBody::ModelChange { route } => EntryBody::ModelChange {
            route: route.clone(),
        },
        EntryBody::Compaction {
            through_entry_id, ..
        } => EntryBody::Compaction {
            summary: text,
            through_entry_id: through_entry_id.clone(),
        },
        EntryBody::Unknown => EntryBody::Unknown,
    }
}

/// The messages of a run's next model call: the system prompt, then the path's entries
/// with every reference resolved through `source` (or replaced by a [`placeholder`]).
/// The path is copied only when it holds a reference.
pub async fn build(
    system_prompt: &str,
    path: &[Entry],
    p: &Principal,
    source: &dyn EntrySource,
) -> Vec<Message> {
    let mut resolved: Option<Vec<Entry>> = None;
    for (i, entry) in path.iter().enumerate() {
        let Some(fetch) = source.resolve(p, entry) else {
            continue;
        };
        let body = match fetch.await {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(entry = %entry.id, "a referenced entry is not available: {why}");
                placeholder(&entry.body, &why)
            }
        };
        resolved.get_or_insert_with(|| path.to_vec())[i].body = body;
    }
    messages(system_prompt, resolved.as_deref().unwrap_or(path))
}

/// What a cut-off tool call is answered with.
pub const NO_RESULT: &str = "no result: the run stopped before the tool answered";

/// A rough token count: about four bytes a token, plus a little per message. Providers
/// differ; compaction keeps a reserve for the difference.
pub fn estimate_tokens(messages: &[Message], tools: &[ToolSpec]) -> u64 {
    let text: usize = messages
        .iter()
        .map(|m| {
            m.content.len()
                + m.tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.len() + 8)
                    .sum::<usize>()
                + 16
        })
        .sum();
    let schemas: usize = tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
        .sum();
    ((text + schemas) / 4) as u64
}

/// Call ids of the memory flush before a compaction: its calls and results stay in the
/// session's history (the user sees what was saved) but not in the model's context,
/// where they would read as the answer to the latest message.
pub const FLUSH_CALL_PREFIX: &str = "memory-flush:";

fn is_flush(entry: &Entry) -> bool {
    match &entry.body {
        EntryBody::ToolCall { call_id, .. } | EntryBody::ToolResult { call_id, .. } => {
            call_id.starts_with(FLUSH_CALL_PREFIX)
        }
        _ => false,
    }
}

/// The entries a model still sees in full: after the latest compaction on the path (the
/// compaction entries and memory flushes excluded), with that compaction's summary.
pub fn visible(path: &[Entry]) -> (Option<&str>, Vec<&Entry>) {
    let latest = path
        .iter()
        .rposition(|e| matches!(e.body, EntryBody::Compaction { .. }));
    let Some(at) = latest else {
        return (None, path.iter().filter(|e| !is_flush(e)).collect());
    };
    let EntryBody::Compaction {
        summary,
        through_entry_id,
    } = &path[at].body
    else {
        return (None, path.iter().filter(|e| !is_flush(e)).collect());
    };
    let start = path
        .iter()
        .position(|e| &e.id == through_entry_id)
        .map(|i| i + 1)
        .unwrap_or(at + 1);
    let rest = path[start..]
        .iter()
        .filter(|e| !matches!(e.body, EntryBody::Compaction { .. }) && !is_flush(e))
        .collect();
    (Some(summary.as_str()), rest)
}

/// The messages of a context of stored entries: the system prompt (with the summary of
/// compacted history), then the visible entries. Runs go through [`build`].
pub fn messages(system_prompt: &str, path: &[Entry]) -> Vec<Message> {
    let (summary, entries) = visible(path);
    let mut out = Vec::new();
    let mut system = system_prompt.trim().to_string();
    if let Some(summary) = summary {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str("Summary of the earlier conversation (older messages were compacted):\n");
        system.push_str(summary);
    }
    if !system.is_empty() {
        out.push(Message::system(system));
    }
    let mut pending: Vec<String> = Vec::new();
    let answered: HashSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolResult { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let flush = |out: &mut Vec<Message>, pending: &mut Vec<String>| {
        for id in pending.drain(..) {
            out.push(Message::tool_result(id, NO_RESULT));
        }
    };
    for entry in entries {
        match &entry.body {
            EntryBody::User { text } => {
                flush(&mut out, &mut pending);
                out.push(Message::user(text.clone()));
            }
            EntryBody::Assistant {
                text, reasoning, ..
            } => {
                flush(&mut out, &mut pending);
                let reasoning = sent_reasoning(reasoning);
                if !text.is_empty() || !reasoning.is_empty() {
                    let mut m = Message::assistant(text.clone());
                    m.reasoning = reasoning;
                    out.push(m);
                }
            }
            EntryBody::ToolCall {
                call_id,
                name,
                arguments,
            } => {
                let call = ToolCall {
                    id: call_id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                };
                // Calls of one answer belong to its assistant message, before any result.
                match out.last_mut() {
                    Some(m) if m.role == Role::Assistant => m.tool_calls.push(call),
                    _ => {
                        flush(&mut out, &mut pending);
                        let mut m = Message::assistant("");
                        m.tool_calls.push(call);
                        out.push(m);
                    }
                }
                if !answered.contains(call_id.as_str()) {
                    pending.push(call_id.clone());
                }
            }
            EntryBody::ToolResult {
                call_id,
                output,
                is_error,
            } => {
                let text = if *is_error {
                    format!("error: {output}")
                } else {
                    output.clone()
                };
                out.push(Message::tool_result(call_id.clone(), text));
            }
            // An entry of a kind this build does not know cannot be put to the model.
            EntryBody::ModelChange { .. } | EntryBody::Compaction { .. } | EntryBody::Unknown => {}
        }
    }
    flush(&mut out, &mut pending);
    // Reasoning that led to neither text nor a tool call has nothing to continue.
    out.retain(|m| m.role != Role::Assistant || !m.content.is_empty() || !m.tool_calls.is_empty());
    out
}

/// An answer's reasoning records as the assistant entry stores them.
pub fn stored_reasoning(reasoning: &[Reasoning]) -> Vec<serde_json::Value> {
    reasoning
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect()
}

/// The stored records this build can send back (one of a kind it does not know is left
/// out: its provider would get it in a shape it may not take).
fn sent_reasoning(stored: &[serde_json::Value]) -> Vec<Reasoning> {
    stored
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

/// Where to cut for a compaction: the index into `visible` of the first entry kept (a
/// user message, so no tool call is parted from its result), keeping at most
/// `keep_tokens` of recent entries. `None` when there is nothing older to summarise.
pub fn compaction_cut(visible: &[&Entry], keep_tokens: u64) -> Option<usize> {
    let mut kept: u64 = 0;
    let mut cut = None;
    for (i, e) in visible.iter().enumerate().rev() {
        kept += (e.body.searchable_text().len() / 4 + 4) as u64;
        if matches!(e.body, EntryBody::User { .. }) && i > 0 {
            cut = Some(i);
        }
        if kept > keep_tokens && cut.is_some() {
            break;
        }
    }
    cut
}

/// The entries to summarise, as a transcript.
pub fn transcript(entries: &[&Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let line = match &e.body {
            EntryBody::User { text } => format!("User: {text}"),
            EntryBody::Assistant { text, .. } if !text.is_empty() => format!("Assistant: {text}"),
            EntryBody::ToolCall {
                name, arguments, ..
            } => format!("Assistant called {name}({arguments})"),
            EntryBody::ToolResult { output, .. } => {
                let mut s: String = output.chars().take(2000).collect();
                if s.len() < output.len() {
                    s.push_str(" …");
                }
                format!("Tool result: {s}")
            }
            _ => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, parent: Option<&str>, body: EntryBody) -> Entry {
        Entry {
            id: id.into(),
            parent_id: parent.map(str::to_string),
            created_at: "2026-01-01T00:00:00Z".into(),
            body,
        }
    }

    fn user(id: &str, text: &str) -> Entry {
        entry(id, None, EntryBody::User { text: text.into() })
    }

    #[test]
    fn tool_calls_join_their_answer_and_cut_off_calls_get_a_result() {
        let path = vec![
            user("1", "what time is it"),
            entry(
                "2",
                None,
                EntryBody::Assistant {
                    text: "Let me look.".into(),
                    thinking: String::new(),
                    model: None,
                    stop_reason: Some("tool_use".into()),
                    reasoning: Vec::new(),
                },
            ),
            entry(
                "3",
                None,
                EntryBody::ToolCall {
                    call_id: "c1".into(),
                    name: "current_time".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "4",
                None,
                EntryBody::ToolCall {
                    call_id: "c2".into(),
                    name: "current_time".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "5",
                None,
                EntryBody::ToolResult {
                    call_id: "c1".into(),
                    output: "noon".into(),
                    is_error: false,
                },
            ),
            user("6", "and now?"),
        ];
        let m = messages("be brief", &path);
        let roles: Vec<Role> = m.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::Tool,
                Role::User
            ]
        );
        assert_eq!(m[2].tool_calls.len(), 2);
        assert_eq!(m[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(m[4].tool_call_id.as_deref(), Some("c2"));
        assert_eq!(m[4].content, NO_RESULT);
    }

    #[test]
    fn a_compaction_stands_in_for_what_it_covers() {
        let path = vec![
            user("1", "old question"),
            user("2", "recent question"),
            entry(
                "3",
                None,
                EntryBody::Compaction {
                    summary: "they asked an old question".into(),
                    through_entry_id: "1".into(),
                },
            ),
            user("4", "newest"),
        ];
        let m = messages("sys", &path);
        assert_eq!(m.len(), 3);
        assert!(m[0].content.contains("they asked an old question"));
        assert_eq!(m[1].content, "recent question");
        assert_eq!(m[2].content, "newest");
    }

    #[test]
    fn the_cut_falls_on_a_user_message_and_keeps_recent_turns() {
        let path: Vec<Entry> = (0..10)
            .map(|i| user(&i.to_string(), &"x".repeat(400)))
            .collect();
        let visible: Vec<&Entry> = path.iter().collect();
        let cut = compaction_cut(&visible, 250).unwrap();
        assert!(cut > 0 && cut < 10);
        assert!(compaction_cut(&visible[..1], 10).is_none());
    }

    #[test]
    fn memory_flush_entries_stay_out_of_the_model_context() {
        let flush_id = format!("{FLUSH_CALL_PREFIX}c9");
        let path = vec![
            user("1", "my dog is called Rex"),
            entry(
                "2",
                None,
                EntryBody::ToolCall {
                    call_id: flush_id.clone(),
                    name: "remember".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "3",
                None,
                EntryBody::ToolResult {
                    call_id: flush_id,
                    output: "saved".into(),
                    is_error: false,
                },
            ),
        ];
        let messages = messages("", &path);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].role, Role::User);
        assert_eq!(visible(&path).1.len(), 1);
    }

    /// A stand-in for entries whose content lives at a peer: ids starting `peer:`.
    /// It knows one of them; the others cannot be fetched.
    struct Peer;

    impl EntrySource for Peer {
        fn resolve<'a>(
            &'a self,
            _p: &'a Principal,
            entry: &'a Entry,
        ) -> Option<BoxFuture<'a, Result<EntryBody, String>>> {
            let id = entry.id.strip_prefix("peer:")?;
            Some(Box::pin(async move {
                match id {
                    "known" => Ok(EntryBody::User {
                        text: "the peer's question".into(),
                    }),
                    _ => Err("the peer does not answer".into()),
                }
            }))
        }
    }

    #[tokio::test]
    async fn references_are_fetched_for_the_context_and_a_missing_one_is_a_placeholder() {
        let p = Principal::user("u", false);
        let path = vec![
            user("peer:known", ""),
            entry(
                "2",
                None,
                EntryBody::ToolCall {
                    call_id: "c1".into(),
                    name: "lookup".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "peer:gone",
                None,
                EntryBody::ToolResult {
                    call_id: "c1".into(),
                    output: String::new(),
                    is_error: false,
                },
            ),
            user("4", "and then?"),
        ];
        let m = build("sys", &path, &p, &Peer).await;
        let shown: Vec<(Role, &str)> = m.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            shown,
            vec![
                (Role::System, "sys"),
                (Role::User, "the peer's question"),
                (Role::Assistant, ""),
                (
                    Role::Tool,
                    "error: [this message is not available now: the peer does not answer]"
                ),
                (Role::User, "and then?"),
            ]
        );
        // The placeholder keeps the tool call answered.
        assert_eq!(m[3].tool_call_id.as_deref(), Some("c1"));
        // Nothing fetched lands in the path (which is what gets stored).
        assert_eq!(
            path[0].body,
            EntryBody::User {
                text: String::new()
            }
        );
        // Without references, the context is the stored entries'.
        assert_eq!(
            build("sys", &path, &p, &Stored).await,
            messages("sys", &path)
        );
    }

    fn assistant(id: &str, text: &str, reasoning: Vec<serde_json::Value>) -> Entry {
        entry(
            id,
            None,
            EntryBody::Assistant {
                text: text.into(),
                thinking: String::new(),
                model: None,
                stop_reason: None,
                reasoning,
            },
        )
    }

    #[test]
    fn an_answers_reasoning_goes_back_with_it_and_with_its_tool_calls() {
        let signed = Reasoning::AnthropicThinking {
            thinking: "the clock".into(),
            signature: "sig".into(),
        };
        let stored = stored_reasoning(std::slice::from_ref(&signed));
        let path = vec![
            user("1", "what time is it"),
            // Reasoning, then only a call: the message carries both.
            assistant("2", "", stored.clone()),
            entry(
                "3",
                None,
                EntryBody::ToolCall {
                    call_id: "c1".into(),
                    name: "current_time".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "4",
                None,
                EntryBody::ToolResult {
                    call_id: "c1".into(),
                    output: "noon".into(),
                    is_error: false,
                },
            ),
            // A record of a kind this build does not know is left out.
            assistant(
                "5",
                "It is noon.",
                vec![serde_json::json!({"type": "gemini_thought"})],
            ),
            user("6", "thanks"),
            // Reasoning that led to nothing shown has nothing to continue.
            assistant("7", "", stored),
        ];
        let out = messages("", &path);
        let mut call = Message::assistant("");
        call.reasoning = vec![signed];
        call.tool_calls = vec![ToolCall {
            id: "c1".into(),
            name: "current_time".into(),
            arguments: "{}".into(),
        }];
        pretty_assertions::assert_eq!(
            out,
            vec![
                Message::user("what time is it"),
                call,
                Message::tool_result("c1", "noon"),
                Message::assistant("It is noon."),
                Message::user("thanks"),
            ]
        );
    }
}
