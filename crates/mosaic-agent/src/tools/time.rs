//! `current_time`: the gateway's clock, in UTC.

use mosaic_llm::{BoxFuture, ToolSpec};
use serde_json::json;

use super::{Tool, ToolContext, ToolOutput};

pub struct CurrentTime;

impl Tool for CurrentTime {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "current_time".into(),
            description: "The current date and time (UTC, RFC 3339) and the Unix time in seconds."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {},
                "additionalProperties": false
            }),
        }
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a ToolContext,
        _args: serde_json::Value,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let now = std::time::SystemTime::now();
            let unix = now
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let text = humantime::format_rfc3339_seconds(now).to_string();
            ToolOutput::ok(json!({ "utc": text, "unix": unix }).to_string())
        })
    }
}
