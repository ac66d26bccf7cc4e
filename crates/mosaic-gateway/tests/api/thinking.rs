//! Thinking combined with tool calls, end to end: an agent with a thinking budget on a
//! reasoning model of each API that wants its reasoning back. The scripted servers
//! refuse, as the real APIs do, a continuation after the tool call that lacks it; the
//! run completes because the assistant entry kept it and the next call carried it.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::reasoning::{
    anthropic_requires_thinking, anthropic_text, anthropic_thinking_tool_call,
    responses_reasoning_tool_call, responses_requires_reasoning, responses_text, ENCRYPTED,
    SIGNATURE,
};
use mosaic_test_support::scripted::{Answer, Check, Scripted};

use crate::support::{new_session, route_default_agent, say, TestGateway};

/// A gateway whose admin's default agent thinks on `mock/thinker`, a provider of `wire`
/// on a server answering `answers` under `check`.
async fn thinking_agent(
    wire: &str,
    answers: Vec<Answer>,
    check: Check,
) -> (TestGateway, String, Scripted) {
    let upstream = Scripted::start_checked(answers, check).await;
    let gw = TestGateway::start().await;
    let token = gw.admin("root").await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(&token),
            Some(
                json!({"name": "mock", "kind": "openai-compatible", "wire": wire,
                "base_url": format!("{}/v1", upstream.base_url), "scope": "gateway"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    route_default_agent(
        &gw,
        &token,
        "mock/thinker",
        json!({"limits": {"thinking_budget": 2048}}),
    )
    .await;
    (gw, token, upstream)
}

/// The entries as (type, text or tool name, whether reasoning is kept with it).
fn shape(entries: &[Value]) -> Vec<(String, String, bool)> {
    entries
        .iter()
        .map(|e| {
            let b = &e["body"];
            let text = b["text"]
                .as_str()
                .or(b["name"].as_str())
                .unwrap_or_default();
            let kept = b["reasoning"].as_array().is_some_and(|r| !r.is_empty());
            (
                b["type"].as_str().unwrap().to_string(),
                text.to_string(),
                kept,
            )
        })
        .collect()
}

fn e(kind: &str, text: &str, kept: bool) -> (String, String, bool) {
    (kind.to_string(), text.to_string(), kept)
}

/// The turn both models take: a thought kept with an empty answer, the call, the answer.
fn thought_then_called_the_clock() -> Vec<(String, String, bool)> {
    vec![
        e("user", "What time is it?", false),
        e("assistant", "", true),
        e("tool_call", "current_time", false),
        e("tool_result", "", false),
        e("assistant", "It is noon.", false),
    ]
}

#[tokio::test]
async fn a_thinking_anthropic_model_calls_a_tool_and_the_run_completes() {
    let (gw, token, upstream) = thinking_agent(
        "anthropic_messages",
        vec![
            anthropic_thinking_tool_call(
                "The clock tool.",
                SIGNATURE,
                "toolu_1",
                "current_time",
                "{}",
            ),
            anthropic_text("It is noon."),
        ],
        anthropic_requires_thinking(&[SIGNATURE]),
    )
    .await;
    let session = new_session(&gw, &token).await;
    let entries = say(&gw, &token, &session, "What time is it?").await;
    assert_eq!(shape(&entries), thought_then_called_the_clock());
    assert_eq!(entries[1]["body"]["thinking"], "The clock tool.");
    let sent = upstream.received();
    assert_eq!(sent.len(), 2, "no call was refused");
    assert_eq!(sent[0].body["thinking"]["budget_tokens"], 2048);
    assert_eq!(
        sent[1].body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "The clock tool.", "signature": SIGNATURE})
    );
}

#[tokio::test]
async fn a_reasoning_responses_model_calls_a_tool_and_the_run_completes() {
    let (gw, token, upstream) = thinking_agent(
        "responses",
        vec![
            responses_reasoning_tool_call(
                "Use the clock.",
                ENCRYPTED,
                "call_1",
                "current_time",
                "{}",
            ),
            responses_text("It is noon."),
        ],
        responses_requires_reasoning(&[ENCRYPTED]),
    )
    .await;
    let session = new_session(&gw, &token).await;
    let entries = say(&gw, &token, &session, "What time is it?").await;
    assert_eq!(shape(&entries), thought_then_called_the_clock());
    let sent = upstream.received();
    assert_eq!(sent.len(), 2, "no call was refused");
    assert_eq!(
        sent[0].body["include"],
        json!(["reasoning.encrypted_content"])
    );
    let input = sent[1].body["input"].as_array().unwrap();
    let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "message",
            "reasoning",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(input[1]["encrypted_content"], ENCRYPTED);
}
