//! Runs and live events. A run is one agent turn loop inside a session (model call, tool
//! calls, more model calls, until it stops); runs in one session take turns. What a run
//! does reaches every subscriber of the session as numbered events.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::sessions::Entry;

/// What to do with a message sent while a run is active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Queue it; it starts the next run once the active one ends.
    #[default]
    FollowUp,
    /// Hand it to the active run after its current tool call (or, if the model is
    /// answering without tools, as soon as the answer ends), so the run goes on with it.
    Steer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostMessageRequest {
    #[schema(pattern = r"\S")]
    pub text: String,
    /// Used only when a run is active.
    #[serde(default)]
    pub delivery: Delivery,
    /// Append under this entry instead of the active leaf: an edit or a retry, which
    /// starts a branch. Only when no run is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Start a new root (an edit of the first message). Only when no run is active.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_root: bool,
}

/// A message waiting for its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueuedMessage {
    pub id: String,
    pub text: String,
    pub delivery: Delivery,
    pub created_at: String,
}

/// What became of a posted message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PostMessageResponse {
    /// No run was active: the message was appended and a run started for it.
    Started { entry: Entry, run_id: String },
    /// A run is active: the message waits (see `delivery`).
    Queued { message: QueuedMessage },
    /// An outcome this build does not know (a newer gateway's). Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Start a run without a new message: a retry of the last turn, or a continuation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StartRunRequest {
    /// Continue from this entry (it becomes the active leaf); the active leaf when
    /// absent. Retrying an answer means starting from the user message before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_entry_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StartRunResponse {
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// The model finished its answer.
    Completed,
    /// Stopped by a client, or by the gateway going down mid-run.
    Interrupted,
    /// A run limit was reached (see `stop_reason`).
    Limited,
    /// The model or the gateway failed (see `error`).
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Limited => "limited",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "interrupted" => RunStatus::Interrupted,
            "limited" => RunStatus::Limited,
            "failed" => RunStatus::Failed,
            _ => return None,
        })
    }
}

/// Why a run, or one answer of the model, ended. On the wire a snake_case string; a
/// value this build does not know (a newer gateway's) is kept as [`StopReason::Other`],
/// so a client keeps going and shows it as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The model finished its answer.
    Stop,
    /// The output token limit cut the answer off.
    Length,
    /// The model called tools (an answer; a run goes on with their results).
    ToolUse,
    /// The model or the gateway failed (the run's `error` says why).
    Error,
    /// The call was stopped before it answered.
    Aborted,
    /// A client interrupted the run.
    Interrupted,
    /// The gateway went down mid-run.
    GatewayStopped,
    /// The run made as many model calls as its limit allows.
    MaxModelCalls,
    /// The run used its token budget.
    TokenBudget,
    /// A reason this build does not know, as it was written.
    Other(String),
}

impl StopReason {
    /// Every reason this build knows, as the document lists them.
    pub const KNOWN: [StopReason; 9] = [
        StopReason::Stop,
        StopReason::Length,
        StopReason::ToolUse,
        StopReason::Error,
        StopReason::Aborted,
        StopReason::Interrupted,
        StopReason::GatewayStopped,
        StopReason::MaxModelCalls,
        StopReason::TokenBudget,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            StopReason::Stop => "stop",
            StopReason::Length => "length",
            StopReason::ToolUse => "tool_use",
            StopReason::Error => "error",
            StopReason::Aborted => "aborted",
            StopReason::Interrupted => "interrupted",
            StopReason::GatewayStopped => "gateway_stopped",
            StopReason::MaxModelCalls => "max_model_calls",
            StopReason::TokenBudget => "token_budget",
            StopReason::Other(other) => other,
        }
    }

    /// The reason a string names; never fails (see [`StopReason::Other`]).
    pub fn parse(s: &str) -> StopReason {
        StopReason::KNOWN
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or_else(|| StopReason::Other(s.to_string()))
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for StopReason {
    fn from(s: &str) -> StopReason {
        StopReason::parse(s)
    }
}

impl Serialize for StopReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| StopReason::parse(&s))
    }
}

/// The document lists the known reasons; a client must still take others (see
/// [`StopReason::Other`]).
impl utoipa::PartialSchema for StopReason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Why a run or an answer ended. A client takes values not listed here too \
                 (a newer gateway's).",
            ))
            .enum_values(Some(
                StopReason::KNOWN.iter().map(|r| r.as_str().to_string()),
            ))
            .into()
    }
}

impl ToSchema for StopReason {}

/// Tokens used, summed over a run's model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

impl RunUsage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub session_id: String,
    pub status: RunStatus,
    /// Why it ended: `stop` (the model finished), `interrupted` (a client),
    /// `gateway_stopped` (the gateway went down mid-run), `max_model_calls`,
    /// `token_budget`, or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub model_calls: u32,
    pub usage: RunUsage,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// A tool call waiting for a person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingApproval {
    pub run_id: String,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    pub approve: bool,
    /// Passed to the model with a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InterruptResponse {
    /// The run that was stopped; absent when none was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Everything a client needs to catch up without events: what runs, what waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    pub queue: Vec<QueuedMessage>,
    pub approvals: Vec<PendingApproval>,
    /// The number of the session's latest event (resume after it with `Last-Event-ID`).
    pub last_event_id: u64,
}

/// The data of one event of `GET /api/v1/sessions/{id}/events`. The SSE `id:` field
/// carries the event's number and the `event:` field its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    RunStarted {
        run_id: String,
        /// The route or `provider/model` the run calls.
        route: String,
    },
    /// A model call began answering.
    ModelCall {
        run_id: String,
        provider: String,
        model: String,
        /// Models tried first that failed (`provider/model: why`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fallbacks: Vec<String>,
    },
    TextDelta {
        run_id: String,
        text: String,
    },
    ThinkingDelta {
        run_id: String,
        text: String,
    },
    /// An entry was committed: a user message, an assistant message, a tool call, a tool
    /// result, a compaction summary.
    Entry {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        entry: Entry,
    },
    ApprovalNeeded {
        approval: PendingApproval,
    },
    ApprovalResolved {
        run_id: String,
        call_id: String,
        approved: bool,
    },
    /// A message waits for the run (follow-up or steer).
    Queued {
        message: QueuedMessage,
    },
    /// The active leaf moved (a branch switch).
    LeafChanged {
        leaf_id: String,
    },
    RunFinished {
        run: Run,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        message: String,
    },
    /// Events were missed (the subscriber fell behind, or resumed from a number no
    /// longer held): read the session and its state again, then go on from here.
    Resync {
        reason: String,
        /// What runs and waits now, so the client can go on without another request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<SessionState>,
    },
    /// The last frame of a stream the gateway ends: the credential that opened it was
    /// revoked, or the gateway is stopping (reconnect later, with `Last-Event-ID`).
    StreamClosed {
        reason: StreamCloseReason,
        message: String,
    },
    /// An event of a kind this build does not know (a newer gateway's): a client skips
    /// it and goes on. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Why the gateway ended an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamCloseReason {
    /// The credential was revoked (token deleted, logged out, user disabled or deleted).
    Revoked,
    /// The gateway is shutting down.
    ShuttingDown,
}

impl SessionEvent {
    /// The `type` tag, also sent as the SSE `event:` field.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionEvent::RunStarted { .. } => "run_started",
            SessionEvent::ModelCall { .. } => "model_call",
            SessionEvent::TextDelta { .. } => "text_delta",
            SessionEvent::ThinkingDelta { .. } => "thinking_delta",
            SessionEvent::Entry { .. } => "entry",
            SessionEvent::ApprovalNeeded { .. } => "approval_needed",
            SessionEvent::ApprovalResolved { .. } => "approval_resolved",
            SessionEvent::Queued { .. } => "queued",
            SessionEvent::LeafChanged { .. } => "leaf_changed",
            SessionEvent::RunFinished { .. } => "run_finished",
            SessionEvent::Error { .. } => "error",
            SessionEvent::Resync { .. } => "resync",
            SessionEvent::StreamClosed { .. } => "stream_closed",
            SessionEvent::Unknown => "unknown",
        }
    }
}

/// An event number as a client sends it back (`Last-Event-ID`, `?after=`): an int64 that
/// is not negative, as the document says.
pub fn parse_event_number(text: &str) -> Option<u64> {
    text.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok())
}

/// For `?after=`: `#[serde(default, deserialize_with = "mosaic_api::runs::event_number")]`.
pub fn event_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    match Option::<String>::deserialize(d)? {
        Some(text) => parse_event_number(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("'{text}' is not an event number"))),
        None => Ok(None),
    }
}

/// An event with its number, as the CLI prints it with `--json`. A `resync` has no
/// number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NumberedEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub event: SessionEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::EntryBody;
    use serde_json::json;

    #[test]
    fn stop_reasons_are_the_snake_case_strings_stored_before() {
        let written = [
            "stop",
            "length",
            "tool_use",
            "error",
            "aborted",
            "interrupted",
            "gateway_stopped",
            "max_model_calls",
            "token_budget",
        ];
        for (reason, text) in StopReason::KNOWN.iter().zip(written) {
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(text));
            assert_eq!(
                serde_json::from_value::<StopReason>(json!(text)).unwrap(),
                *reason
            );
        }
    }

    #[test]
    fn an_unknown_stop_reason_is_kept_as_it_came() {
        let reason: StopReason = serde_json::from_value(json!("pause_turn")).unwrap();
        assert_eq!(reason, StopReason::Other("pause_turn".into()));
        assert_eq!(serde_json::to_value(&reason).unwrap(), json!("pause_turn"));
    }

    #[test]
    fn events_entries_and_outcomes_of_unknown_kinds_decode_as_unknown() {
        let event: SessionEvent =
            serde_json::from_value(json!({"type": "tool_progress", "run_id": "r1", "pct": 40}))
                .unwrap();
        assert_eq!(event, SessionEvent::Unknown);
        let body: EntryBody =
            serde_json::from_value(json!({"type": "image", "url": "https://x/y.png"})).unwrap();
        assert_eq!(body, EntryBody::Unknown);
        // An owner of a new kind (a peer's, say) does not sink the item it owns.
        let owner: crate::Owner =
            serde_json::from_value(json!({"type": "peer", "peer": "work", "id": "u9"})).unwrap();
        assert_eq!(owner, crate::Owner::Unknown);
        assert_eq!(owner.describe(), "unknown");
        // Inside a known event too: a new kind of entry does not sink the event.
        let event: SessionEvent = serde_json::from_value(json!({
            "type": "entry",
            "entry": {"id": "e1", "parent_id": null, "created_at": "2026-12-04T18:30:00Z",
                      "body": {"type": "image", "url": "https://x/y.png"}},
        }))
        .unwrap();
        assert!(matches!(
            event,
            SessionEvent::Entry {
                entry: Entry {
                    body: EntryBody::Unknown,
                    ..
                },
                ..
            }
        ));
        let outcome: PostMessageResponse =
            serde_json::from_value(json!({"status": "scheduled", "at": "later"})).unwrap();
        assert_eq!(outcome, PostMessageResponse::Unknown);
        // A known kind with a broken body is still an error, not unknown.
        assert!(serde_json::from_value::<SessionEvent>(json!({"type": "text_delta"})).is_err());
    }
}
