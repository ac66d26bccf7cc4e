//! Anthropic Messages against a scripted server.

use std::time::Duration;

use futures_util::StreamExt;
use mosaic_llm::anthropic::AnthropicMessages;
use mosaic_llm::{
    collect, ChatRequest, LlmError, Message, Provider, Reasoning, Role, StopReason, StreamEvent,
    ToolCall, ToolSpec, Usage,
};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{Answer, Scripted};

fn provider(server: &Scripted) -> AnthropicMessages {
    AnthropicMessages::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.base_url),
        Some("sk-ant-test".into()),
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "claude-test".into(),
        messages: vec![Message::system("be brief"), Message::user("hi")],
        ..ChatRequest::default()
    }
}

fn message_start(usage: Value) -> (&'static str, Value) {
    (
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage,
        }}),
    )
}

fn block_start(index: usize, block: Value) -> (&'static str, Value) {
    (
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn delta(index: usize, delta: Value) -> (&'static str, Value) {
    (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn text(index: usize, text: &str) -> (&'static str, Value) {
    delta(index, json!({"type": "text_delta", "text": text}))
}

fn block_stop(index: usize) -> (&'static str, Value) {
    (
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

fn message_delta(stop_reason: &str, usage: Value) -> (&'static str, Value) {
    (
        "message_delta",
        json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": usage}),
    )
}

fn message_stop() -> (&'static str, Value) {
    ("message_stop", json!({"type": "message_stop"}))
}

fn ping() -> (&'static str, Value) {
    ("ping", json!({"type": "ping"}))
}

async fn events_of(server: &Scripted, req: ChatRequest) -> Vec<StreamEvent> {
    provider(server)
        .stream(req)
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await
}

#[tokio::test]
async fn text_streams_as_deltas_with_usage_and_the_request_is_what_the_api_expects() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        message_start(json!({"input_tokens": 10, "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 3, "output_tokens": 1})),
        block_start(0, json!({"type": "text", "text": ""})),
        ping(),
        text(0, "Hel"),
        text(0, "lo"),
        block_stop(0),
        message_delta("end_turn", json!({"output_tokens": 7})),
        message_stop(),
    ])])
    .await;
    let mut req = request();
    req.temperature = Some(0.5);
    assert_eq!(
        events_of(&server, req).await,
        vec![
            StreamEvent::TextDelta { text: "Hel".into() },
            StreamEvent::TextDelta { text: "lo".into() },
            // Cache reads and writes are input too; reads are also the cached part.
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 18,
                    output_tokens: 7,
                    cached_tokens: 5
                }
            },
            StreamEvent::Done {
                stop_reason: StopReason::Stop
            },
        ]
    );
    let sent = server.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(
        (
            sent[0].header("x-api-key"),
            sent[0].header("anthropic-version"),
            sent[0].header("content-type"),
            sent[0].header("authorization"),
        ),
        (
            Some("sk-ant-test"),
            Some("2023-06-01"),
            Some("application/json"),
            None
        )
    );
    assert_eq!(
        sent[0].body,
        json!({
            "model": "claude-test",
            "max_tokens": 4096,
            "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5,
            "stream": true,
        })
    );
}

#[tokio::test]
async fn tool_calls_stream_their_arguments_and_results_go_back_as_one_user_turn() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        message_start(json!({"input_tokens": 40, "output_tokens": 1})),
        block_start(0, json!({"type": "text", "text": ""})),
        text(0, "Checking."),
        block_stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "toolu_a", "name": "get_time", "input": {}}),
        ),
        delta(1, json!({"type": "input_json_delta", "partial_json": ""})),
        delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "{\"tz\":"}),
        ),
        delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "\"UTC\"}"}),
        ),
        block_stop(1),
        block_start(
            2,
            json!({"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        ),
        delta(2, json!({"type": "input_json_delta", "partial_json": "{}"})),
        block_stop(2),
        message_delta("tool_use", json!({"output_tokens": 30})),
        message_stop(),
    ])])
    .await;
    let mut req = request();
    req.messages.insert(1, Message::system("use tools"));
    req.max_tokens = Some(64);
    req.tools = vec![
        ToolSpec {
            name: "get_time".into(),
            description: "the time".into(),
            parameters: json!({"type": "object", "properties": {"tz": {"type": "string"}}}),
        },
        ToolSpec {
            name: "ping".into(),
            description: String::new(),
            parameters: Value::Null,
        },
    ];
    req.messages.push(Message {
        role: Role::Assistant,
        content: "Let me check.".into(),
        tool_calls: vec![
            ToolCall {
                id: "toolu_0".into(),
                name: "get_time".into(),
                arguments: "{\"tz\":\"CET\"}".into(),
            },
            ToolCall {
                id: "toolu_1".into(),
                name: "get_time".into(),
                arguments: "{not json".into(),
            },
        ],
        tool_call_id: None,
        reasoning: Vec::new(),
    });
    req.messages.push(Message::tool_result("toolu_0", "12:00"));
    req.messages.push(Message::tool_result("toolu_1", "13:00"));
    req.messages.push(Message::user("and in UTC?"));

    assert_eq!(
        events_of(&server, req).await,
        vec![
            StreamEvent::TextDelta {
                text: "Checking.".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "toolu_a".into(),
                name: "get_time".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"tz\":".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "\"UTC\"}".into()
            },
            StreamEvent::ToolCallEnd { index: 1 },
            StreamEvent::ToolCallStart {
                index: 2,
                id: "toolu_b".into(),
                name: "get_time".into()
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                arguments: "{}".into()
            },
            StreamEvent::ToolCallEnd { index: 2 },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 40,
                    output_tokens: 30,
                    cached_tokens: 0
                }
            },
            StreamEvent::Done {
                stop_reason: StopReason::ToolUse
            },
        ]
    );
    let sent = &server.received()[0];
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-test",
            "max_tokens": 64,
            "stream": true,
            "system": "be brief\n\nuse tools",
            "tools": [
                {"name": "get_time", "description": "the time",
                    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}},
                {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
            ],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_0", "name": "get_time", "input": {"tz": "CET"}},
                    // Arguments that are not JSON still make a call, with no input.
                    {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}},
                ]},
                // Both results and the next user text: one user turn, results first.
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_0", "content": "12:00"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "13:00"},
                    {"type": "text", "text": "and in UTC?"},
                ]},
            ],
        })
    );
}

#[tokio::test]
async fn an_assistant_turn_with_only_tool_calls_has_no_empty_text_block() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        message_start(json!({"input_tokens": 1, "output_tokens": 1})),
        message_delta("end_turn", json!({"output_tokens": 1})),
        message_stop(),
    ])])
    .await;
    let mut req = request();
    req.messages.push(Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "toolu_0".into(),
            name: "ping".into(),
            arguments: String::new(),
        }],
        tool_call_id: None,
        reasoning: Vec::new(),
    });
    req.messages.push(Message::tool_result("toolu_0", "pong"));
    let done = collect(provider(&server).stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(done.stop_reason, Some(StopReason::Stop));
    assert_eq!(
        server.received()[0].body["messages"],
        json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_0", "name": "ping", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": "pong"},
            ]},
        ])
    );
}

#[tokio::test]
async fn thinking_blocks_become_thinking_and_the_budget_is_requested() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        message_start(json!({"input_tokens": 5, "output_tokens": 1})),
        block_start(0, json!({"type": "thinking", "thinking": ""})),
        delta(0, json!({"type": "thinking_delta", "thinking": "let me "})),
        delta(0, json!({"type": "thinking_delta", "thinking": "see"})),
        delta(
            0,
            json!({"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
        ),
        block_stop(0),
        block_start(
            1,
            json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy"}),
        ),
        block_stop(1),
        block_start(2, json!({"type": "text", "text": ""})),
        text(2, "42"),
        block_stop(2),
        message_delta("max_tokens", json!({"output_tokens": 90})),
        message_stop(),
    ])])
    .await;
    let req = ChatRequest {
        model: "claude-test".into(),
        messages: vec![Message::user("6 * 7?")],
        thinking_budget: Some(2048),
        temperature: Some(0.3),
        ..ChatRequest::default()
    };
    assert_eq!(
        events_of(&server, req).await,
        vec![
            StreamEvent::ThinkingDelta {
                text: "let me ".into()
            },
            StreamEvent::ThinkingDelta { text: "see".into() },
            // Both kept as they came, to be sent back.
            StreamEvent::Reasoning {
                reasoning: Reasoning::AnthropicThinking {
                    thinking: "let me see".into(),
                    signature: "EqQBCgIYAhIM".into(),
                }
            },
            StreamEvent::Reasoning {
                reasoning: Reasoning::AnthropicRedactedThinking {
                    data: "EmwKAhgBEgy".into(),
                }
            },
            StreamEvent::TextDelta { text: "42".into() },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 5,
                    output_tokens: 90,
                    cached_tokens: 0
                }
            },
            StreamEvent::Done {
                stop_reason: StopReason::Length
            },
        ]
    );
    // No system prompt: no `system`. Thinking: the budget on top of the default
    // `max_tokens`, and no temperature (the API refuses one while thinking).
    assert_eq!(
        server.received()[0].body,
        json!({
            "model": "claude-test",
            "max_tokens": 4096 + 2048,
            "messages": [{"role": "user", "content": "6 * 7?"}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "stream": true,
        })
    );
}

#[tokio::test]
async fn unknown_events_and_block_kinds_are_skipped_and_late_usage_is_kept() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        // Some compatible gateways report input only at the end.
        message_start(json!({"input_tokens": 0, "output_tokens": 0})),
        ("future_event", json!({"type": "future_event", "x": 1})),
        block_start(
            0,
            json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        ),
        delta(0, json!({"type": "input_json_delta", "partial_json": "{\"q\":1}"})),
        block_stop(0),
        block_start(1, json!({"type": "text", "text": "Found"})),
        delta(1, json!({"type": "citations_delta", "citation": {"url": "x"}})),
        delta(1, json!({"type": "future_delta", "stuff": true})),
        text(1, " it."),
        block_stop(1),
        message_delta(
            "pause_turn",
            json!({"input_tokens": 25, "cache_read_input_tokens": 4, "output_tokens": 9}),
        ),
        message_stop(),
        // Nothing after `message_stop` counts.
        text(1, "never"),
    ])])
    .await;
    assert_eq!(
        events_of(&server, request()).await,
        vec![
            StreamEvent::TextDelta {
                text: "Found".into()
            },
            StreamEvent::TextDelta {
                text: " it.".into()
            },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 29,
                    output_tokens: 9,
                    cached_tokens: 4
                }
            },
            StreamEvent::Done {
                stop_reason: StopReason::Stop
            },
        ]
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream_after_the_partial_text() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        message_start(json!({"input_tokens": 3, "output_tokens": 1})),
        block_start(0, json!({"type": "text", "text": ""})),
        text(0, "partial"),
        (
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
        text(0, "never"),
        message_stop(),
    ])])
    .await;
    let items: Vec<_> = provider(&server)
        .stream(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        items,
        vec![
            Ok(StreamEvent::TextDelta {
                text: "partial".into()
            }),
            Err(LlmError::Provider("Overloaded".into())),
        ]
    );
}

#[tokio::test]
async fn http_errors_carry_status_message_and_retry_after_and_say_if_retrying_helps() {
    for (status, kind, message, retry_after, retryable) in [
        (429, "rate_limit_error", "slow down", Some(7), true),
        (529, "overloaded_error", "Overloaded", None, true),
        (
            400,
            "invalid_request_error",
            "max_tokens: too big",
            None,
            false,
        ),
    ] {
        let mut answer = Answer::json(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        );
        if let Some(secs) = retry_after {
            answer = answer.with_header("retry-after", &secs.to_string());
        }
        let server = Scripted::start(vec![answer]).await;
        let err = provider(&server).stream(request()).await.err().unwrap();
        assert_eq!(
            err,
            LlmError::Http {
                status,
                message: message.into(),
                retry_after: retry_after.map(Duration::from_secs),
            }
        );
        assert_eq!(err.is_retryable(), retryable, "{status}");
    }
}

#[tokio::test]
async fn malformed_streams_are_protocol_errors_never_panics() {
    let start = || message_start(json!({"input_tokens": 1, "output_tokens": 1}));
    let text_block = || block_start(0, json!({"type": "text", "text": ""}));
    let cases: Vec<(&str, Answer)> = vec![
        (
            "not json",
            Answer::sse_raw(&["event: message_start\ndata: {not json\n\n"]),
        ),
        (
            "delta for a block never started",
            Answer::sse_events(&[start(), text(3, "orphan"), message_stop()]),
        ),
        (
            "stop for a block never started",
            Answer::sse_events(&[start(), block_stop(0), message_stop()]),
        ),
        (
            "block started twice",
            Answer::sse_events(&[start(), text_block(), text_block(), message_stop()]),
        ),
        (
            "block without an index",
            Answer::sse_events(&[
                start(),
                (
                    "content_block_start",
                    json!({"type": "content_block_start", "content_block": {"type": "text"}}),
                ),
                message_stop(),
            ]),
        ),
        (
            "nameless tool call",
            Answer::sse_events(&[
                start(),
                block_start(0, json!({"type": "tool_use", "id": "toolu_1", "input": {}})),
                message_stop(),
            ]),
        ),
        (
            "arguments for a text block",
            Answer::sse_events(&[
                start(),
                text_block(),
                delta(0, json!({"type": "input_json_delta", "partial_json": "{}"})),
                message_stop(),
            ]),
        ),
        (
            "text delta without text",
            Answer::sse_events(&[
                start(),
                text_block(),
                delta(0, json!({"type": "text_delta"})),
                message_stop(),
            ]),
        ),
        (
            "content before message_start",
            Answer::sse_events(&[text_block(), text(0, "x"), message_stop()]),
        ),
        (
            "cut off before message_stop",
            Answer::sse_events(&[
                start(),
                text_block(),
                text(0, "half"),
                block_stop(0),
                message_delta("end_turn", json!({"output_tokens": 2})),
            ]),
        ),
        (
            "openai chunks",
            Answer::sse_data(&[
                json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]}).to_string(),
                "[DONE]".to_string(),
            ]),
        ),
        (
            "binary",
            Answer::sse_raw(&["data: \u{0}\u{1}\n\n", "\u{fffd}"]),
        ),
        ("empty body", Answer::sse_raw::<&str>(&[])),
    ];
    for (name, answer) in cases {
        let server = Scripted::start(vec![answer]).await;
        let result = collect(provider(&server).stream(request()).await.unwrap()).await;
        match result {
            Err(LlmError::Protocol(_)) => {}
            other => panic!("{name}: expected a protocol error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn models_are_listed_across_pages() {
    let server = Scripted::start(vec![
        Answer::json(
            200,
            json!({"data": [{"type": "model", "id": "claude-a"}, {"type": "model", "id": "claude-b"}],
                "has_more": true, "first_id": "claude-a", "last_id": "claude-b"}),
        ),
        Answer::json(
            200,
            json!({"data": [{"type": "model", "id": "claude-c"}],
                "has_more": false, "first_id": "claude-c", "last_id": "claude-c"}),
        ),
    ])
    .await;
    assert_eq!(
        provider(&server).list_models().await.unwrap(),
        vec![
            "claude-a".to_string(),
            "claude-b".to_string(),
            "claude-c".to_string()
        ]
    );
    let sent = server.received();
    assert_eq!(
        sent.iter()
            .map(|r| (
                r.method.as_str(),
                r.path.as_str(),
                r.header("x-api-key"),
                r.header("anthropic-version")
            ))
            .collect::<Vec<_>>(),
        vec![
            ("GET", "/v1/models", Some("sk-ant-test"), Some("2023-06-01")),
            ("GET", "/v1/models", Some("sk-ant-test"), Some("2023-06-01")),
        ]
    );
}
