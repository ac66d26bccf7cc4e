//! From a session's path to a model's context: entries become messages, the latest
//! compaction summary stands in for what it covers, and tool calls left without a result
//! (a run cut off mid-tool) get one, since every provider insists on it.

use std::collections::HashSet;

use mosaic_api::{Entry, EntryBody};
use mosaic_llm::{Message, Reasoning, Role, ToolCall, ToolSpec};

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

/// The messages of a context: the system prompt (with the summary of compacted history),
/// then the visible entries.
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
}
