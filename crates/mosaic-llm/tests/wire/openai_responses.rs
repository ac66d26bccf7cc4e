//! OpenAI Responses against a scripted server.

use std::time::Duration;

use futures_util::StreamExt;
use mosaic_llm::openai_responses::OpenAiResponses;
use mosaic_llm::{
    collect, ChatRequest, LlmError, Message, Provider, Reasoning, Role, StopReason, StreamEvent,
    ToolCall, ToolSpec, Usage,
};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{Answer, Scripted};

fn provider(server: &Scripted) -> OpenAiResponses {
    OpenAiResponses::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.base_url),
        Some("sk-test".into()),
    )
}

/// One named event, its data carrying the same name as `type`, as the API sends them.
fn ev(kind: &'static str, mut data: Value) -> (&'static str, Value) {
    data["type"] = json!(kind);
    (kind, data)
}

fn created() -> (&'static str, Value) {
    ev(
        "response.created",
        json!({"response": {"id": "resp_1", "status": "in_progress", "output": []}}),
    )
}

fn text_delta(text: &str) -> (&'static str, Value) {
    ev(
        "response.output_text.delta",
        json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": text}),
    )
}

fn message_added(output_index: u64) -> (&'static str, Value) {
    ev(
        "response.output_item.added",
        json!({"output_index": output_index, "item": {"type": "message", "id": "msg_1",
            "role": "assistant", "status": "in_progress", "content": []}}),
    )
}

fn call_added(output_index: u64, item_id: &str, call_id: &str) -> (&'static str, Value) {
    ev(
        "response.output_item.added",
        json!({"output_index": output_index, "item": {"type": "function_call", "id": item_id,
            "call_id": call_id, "name": "get_time", "arguments": "", "status": "in_progress"}}),
    )
}

fn args_delta(output_index: u64, item_id: &str, delta: &str) -> (&'static str, Value) {
    ev(
        "response.function_call_arguments.delta",
        json!({"output_index": output_index, "item_id": item_id, "delta": delta}),
    )
}

fn call_done(output_index: u64, item_id: &str, call_id: &str, args: &str) -> (&'static str, Value) {
    ev(
        "response.output_item.done",
        json!({"output_index": output_index, "item": {"type": "function_call", "id": item_id,
            "call_id": call_id, "name": "get_time", "arguments": args, "status": "completed"}}),
    )
}

fn completed(usage: Value) -> (&'static str, Value) {
    ev(
        "response.completed",
        json!({"response": {"id": "resp_1", "status": "completed", "usage": usage}}),
    )
}

fn usage(input: u64, cached: u64, output: u64) -> Value {
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output})
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-test".into(),
        messages: vec![Message::system("be brief"), Message::user("hi")],
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

async fn events(server: &Scripted, req: ChatRequest) -> Vec<Result<StreamEvent, LlmError>> {
    provider(server).stream(req).await.unwrap().collect().await
}

#[tokio::test]
async fn text_streams_as_deltas_with_cached_usage_and_the_request_is_what_the_api_expects() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        ev("response.in_progress", json!({"response": {"id": "resp_1"}})),
        message_added(0),
        ev(
            "response.content_part.added",
            json!({"output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": ""}}),
        ),
        text_delta("Hel"),
        text_delta("lo"),
        ev(
            "response.output_text.done",
            json!({"output_index": 0, "content_index": 0, "text": "Hello"}),
        ),
        ev(
            "response.some_future_event",
            json!({"output_index": 0, "delta": "ignored"}),
        ),
        ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": {"type": "message", "id": "msg_1"}}),
        ),
        completed(usage(12, 4, 2)),
    ])])
    .await;
    assert_eq!(
        events(&server, request()).await,
        vec![
            Ok(StreamEvent::TextDelta { text: "Hel".into() }),
            Ok(StreamEvent::TextDelta { text: "lo".into() }),
            Ok(StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 12,
                    output_tokens: 2,
                    cached_tokens: 4
                }
            }),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::Stop
            }),
        ]
    );
    let sent = server.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.as_str()),
        ("POST", "/v1/responses")
    );
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        sent[0].body,
        json!({
            "model": "gpt-test",
            "instructions": "be brief",
            "input": [{"type": "message", "role": "user", "content": "hi"}],
            "stream": true,
            "store": false,
            "max_output_tokens": 64,
        })
    );
}

#[tokio::test]
async fn function_calls_stream_their_arguments_and_tools_and_history_are_sent_back() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        ),
        ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        ),
        call_added(1, "fc_a", "call_a"),
        args_delta(1, "fc_a", "{\"tz\":"),
        args_delta(1, "fc_a", "\"UTC\"}"),
        ev(
            "response.function_call_arguments.done",
            json!({"output_index": 1, "item_id": "fc_a", "arguments": "{\"tz\":\"UTC\"}"}),
        ),
        call_done(1, "fc_a", "call_a", "{\"tz\":\"UTC\"}"),
        // A server that does not stream arguments: they come whole with the item.
        call_added(2, "fc_b", "call_b"),
        call_done(2, "fc_b", "call_b", "{}"),
        completed(usage(30, 0, 9)),
    ])])
    .await;
    let mut req = request();
    req.tools = vec![ToolSpec {
        name: "get_time".into(),
        description: "the time".into(),
        parameters: json!({"type": "object", "properties": {"tz": {"type": "string"}}}),
    }];
    req.messages.push(Message {
        role: Role::Assistant,
        content: "Let me check.".into(),
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "get_time".into(),
            arguments: "{}".into(),
        }],
        tool_call_id: None,
        reasoning: Vec::new(),
    });
    req.messages.push(Message::tool_result("call_0", "12:00"));
    req.messages.push(Message::system("answer in French"));
    assert_eq!(
        events(&server, req).await,
        vec![
            // Kept to be sent back, though without encrypted content it cannot be.
            Ok(StreamEvent::Reasoning {
                reasoning: Reasoning::ResponsesReasoning {
                    id: "rs_1".into(),
                    summary: Vec::new(),
                    encrypted_content: None,
                }
            }),
            Ok(StreamEvent::ToolCallStart {
                index: 1,
                id: "call_a".into(),
                name: "get_time".into()
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"tz\":".into()
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "\"UTC\"}".into()
            }),
            Ok(StreamEvent::ToolCallEnd { index: 1 }),
            Ok(StreamEvent::ToolCallStart {
                index: 2,
                id: "call_b".into(),
                name: "get_time".into()
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 2,
                arguments: "{}".into()
            }),
            Ok(StreamEvent::ToolCallEnd { index: 2 }),
            Ok(StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 30,
                    output_tokens: 9,
                    cached_tokens: 0
                }
            }),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::ToolUse
            }),
        ]
    );
    assert_eq!(
        server.received()[0].body,
        json!({
            "model": "gpt-test",
            "instructions": "be brief",
            "input": [
                {"type": "message", "role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "content": "Let me check."},
                {"type": "function_call", "call_id": "call_0", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_0", "output": "12:00"},
                {"type": "message", "role": "system", "content": "answer in French"},
            ],
            "tools": [{"type": "function", "name": "get_time", "description": "the time",
                "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}],
            "stream": true,
            "store": false,
            "max_output_tokens": 64,
        })
    );
}

#[tokio::test]
async fn an_assistant_turn_of_only_tool_calls_sends_no_empty_message() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        completed(usage(1, 0, 1)),
    ])])
    .await;
    let req = ChatRequest {
        model: "gpt-test".into(),
        messages: vec![
            Message::user("hi"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "get_time".into(),
                    arguments: "{}".into(),
                }],
                tool_call_id: None,
                reasoning: Vec::new(),
            },
            Message::tool_result("call_0", "12:00"),
        ],
        ..ChatRequest::default()
    };
    let done = collect(provider(&server).stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(done.stop_reason, Some(StopReason::Stop));
    assert_eq!(
        server.received()[0].body,
        json!({
            "model": "gpt-test",
            "input": [
                {"type": "message", "role": "user", "content": "hi"},
                {"type": "function_call", "call_id": "call_0", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_0", "output": "12:00"},
            ],
            "stream": true,
            "store": false,
        })
    );
}

#[tokio::test]
async fn reasoning_summaries_become_thinking_and_a_thinking_budget_asks_for_them() {
    let summary_part = |i: u64| {
        ev(
            "response.reasoning_summary_part.added",
            json!({"output_index": 0, "item_id": "rs_1", "summary_index": i,
                "part": {"type": "summary_text", "text": ""}}),
        )
    };
    let summary_delta = |i: u64, text: &str| {
        ev(
            "response.reasoning_summary_text.delta",
            json!({"output_index": 0, "item_id": "rs_1", "summary_index": i, "delta": text}),
        )
    };
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        ),
        summary_part(0),
        summary_delta(0, "**Sums**"),
        summary_delta(0, " adding up"),
        summary_part(1),
        summary_delta(1, "checking"),
        ev(
            "response.reasoning_text.delta",
            json!({"output_index": 0, "item_id": "rs_1", "content_index": 0, "delta": " twice"}),
        ),
        message_added(1),
        text_delta("42"),
        completed(usage(5, 0, 20)),
    ])])
    .await;
    let mut req = request();
    req.thinking_budget = Some(8000);
    let done = collect(provider(&server).stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (done.thinking.as_str(), done.text.as_str()),
        ("**Sums** adding up\n\nchecking twice", "42")
    );
    assert_eq!(
        server.received()[0].body["reasoning"],
        json!({"effort": "medium", "summary": "auto"})
    );
}

#[tokio::test]
async fn a_failure_mid_stream_ends_the_stream_after_the_partial_text() {
    for (name, failure, message) in [
        (
            "response.failed",
            ev(
                "response.failed",
                json!({"response": {"id": "resp_1", "status": "failed",
                    "error": {"code": "server_error", "message": "overloaded"}}}),
            ),
            "overloaded",
        ),
        (
            "error",
            ev(
                "error",
                json!({"code": "rate_limit_exceeded", "message": "slow down", "param": null,
                    "sequence_number": 4}),
            ),
            "slow down",
        ),
    ] {
        let server = Scripted::start(vec![Answer::sse_events(&[
            created(),
            message_added(0),
            text_delta("partial"),
            failure,
            text_delta("never"),
            completed(usage(1, 0, 1)),
        ])])
        .await;
        assert_eq!(
            events(&server, request()).await,
            vec![
                Ok(StreamEvent::TextDelta {
                    text: "partial".into()
                }),
                Err(LlmError::Provider(message.into())),
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_incomplete_response_stops_for_length_with_its_usage() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        message_added(0),
        text_delta("a long ans"),
        ev(
            "response.incomplete",
            json!({"response": {"id": "resp_1", "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"}, "usage": usage(7, 0, 64)}}),
        ),
    ])])
    .await;
    assert_eq!(
        events(&server, request()).await,
        vec![
            Ok(StreamEvent::TextDelta {
                text: "a long ans".into()
            }),
            Ok(StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 7,
                    output_tokens: 64,
                    cached_tokens: 0
                }
            }),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::Length
            }),
        ]
    );
}

#[tokio::test]
async fn a_filtered_response_stops_as_an_error_and_closes_its_open_call() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        created(),
        call_added(0, "fc_a", "call_a"),
        args_delta(0, "fc_a", "{\"tz"),
        ev(
            "response.incomplete",
            json!({"response": {"status": "incomplete",
                "incomplete_details": {"reason": "content_filter"}}}),
        ),
    ])])
    .await;
    assert_eq!(
        events(&server, request()).await,
        vec![
            Ok(StreamEvent::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "get_time".into()
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"tz".into()
            }),
            Ok(StreamEvent::ToolCallEnd { index: 0 }),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::Error
            }),
        ]
    );
}

#[tokio::test]
async fn an_http_error_carries_status_message_and_retry_after() {
    let server = Scripted::start(vec![Answer::json(
        429,
        json!({"error": {"message": "slow down", "type": "rate_limit"}}),
    )
    .with_header("retry-after", "7")])
    .await;
    let err = provider(&server).stream(request()).await.err().unwrap();
    assert_eq!(
        err,
        LlmError::Http {
            status: 429,
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_streams_are_clear_protocol_errors_never_panics() {
    for (name, answer) in [
        (
            "not json",
            Answer::sse_raw(&["event: x\ndata: {not json\n\n"]),
        ),
        ("not an object", Answer::sse_data(&["[1, 2]"])),
        ("no type", Answer::sse_data(&[r#"{"delta": "x"}"#])),
        (
            "text delta without delta",
            Answer::sse_events(&[ev("response.output_text.delta", json!({"output_index": 0}))]),
        ),
        (
            "arguments for a call never added",
            Answer::sse_events(&[created(), args_delta(3, "fc_x", "{}")]),
        ),
        (
            "arguments done for a call never added",
            Answer::sse_events(&[ev(
                "response.function_call_arguments.done",
                json!({"output_index": 3, "arguments": "{}"}),
            )]),
        ),
        (
            "a call ended that never began",
            Answer::sse_events(&[call_done(0, "fc_x", "call_x", "{}")]),
        ),
        (
            "arguments after the call ended",
            Answer::sse_events(&[
                call_added(0, "fc_a", "call_a"),
                call_done(0, "fc_a", "call_a", "{}"),
                args_delta(0, "fc_a", "more"),
            ]),
        ),
        (
            "nameless call",
            Answer::sse_events(&[ev(
                "response.output_item.added",
                json!({"output_index": 0, "item": {"type": "function_call", "call_id": "c"}}),
            )]),
        ),
        (
            "call without an index",
            Answer::sse_events(&[ev(
                "response.output_item.added",
                json!({"item": {"type": "function_call", "call_id": "c", "name": "n"}}),
            )]),
        ),
        (
            "the same item twice",
            Answer::sse_events(&[
                call_added(0, "fc_a", "call_a"),
                call_added(0, "fc_a", "call_a"),
            ]),
        ),
        (
            "cut off",
            Answer::sse_events(&[created(), message_added(0), text_delta("half")]),
        ),
        ("chat-style end", Answer::sse_data(&["[DONE]"])),
        (
            "binary",
            Answer::sse_raw(&["data: \u{0}\u{1}\n\n", "\u{fffd}"]),
        ),
        ("empty body", Answer::sse_raw::<&str>(&[])),
    ] {
        let server = Scripted::start(vec![answer]).await;
        let result = collect(provider(&server).stream(request()).await.unwrap()).await;
        match result {
            Err(LlmError::Protocol(_)) => {}
            other => panic!("{name}: expected a protocol error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn models_are_listed_from_the_provider() {
    let server = Scripted::start(vec![Answer::json(
        200,
        json!({"object": "list", "data": [{"id": "gpt-5-codex", "object": "model"}, {"id": "o4-mini", "object": "model"}]}),
    )])
    .await;
    assert_eq!(
        provider(&server).list_models().await.unwrap(),
        vec!["gpt-5-codex".to_string(), "o4-mini".to_string()]
    );
    let sent = server.received();
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-test"));
}
