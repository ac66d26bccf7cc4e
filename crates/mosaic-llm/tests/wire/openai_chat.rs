//! OpenAI Chat Completions against a scripted server.

use std::time::Duration;

use futures_util::StreamExt;
use mosaic_llm::openai_chat::OpenAiChat;
use mosaic_llm::{
    collect, ChatRequest, LlmError, Message, Provider, StopReason, StreamEvent, ToolCall, ToolSpec,
    Usage,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{Answer, Scripted};

fn provider(server: &Scripted) -> OpenAiChat {
    OpenAiChat::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.base_url),
        Some("sk-test".into()),
    )
}

/// Everything a call to `server` streams.
async fn items(server: &Scripted) -> Vec<Result<StreamEvent, LlmError>> {
    provider(server)
        .stream(request())
        .await
        .unwrap()
        .collect()
        .await
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}
    ]})
    .to_string()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-test".into(),
        messages: vec![Message::system("be brief"), Message::user("hi")],
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn text_streams_as_deltas_with_usage_and_the_request_is_what_the_api_expects() {
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({}), Some("stop")),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 4}}})
        .to_string(),
        "[DONE]".to_string(),
    ])])
    .await;
    let events: Vec<_> = provider(&server)
        .stream(request())
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta { text: "Hel".into() },
            StreamEvent::TextDelta { text: "lo".into() },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 12,
                    output_tokens: 2,
                    cached_tokens: 4
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
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        sent[0].body,
        json!({
            "model": "gpt-test",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 64,
        })
    );
}

#[tokio::test]
async fn tool_calls_stream_their_arguments_and_tools_and_results_are_sent_back() {
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "get_time", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"tz\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"UTC\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
            "function": {"name": "get_time", "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        "[DONE]".to_string(),
    ])])
    .await;
    let mut req = request();
    req.tools = vec![ToolSpec {
        name: "get_time".into(),
        description: "the time".into(),
        parameters: json!({"type": "object", "properties": {"tz": {"type": "string"}}}),
    }];
    req.messages.push(Message {
        role: mosaic_llm::Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "get_time".into(),
            arguments: "{}".into(),
        }],
        tool_call_id: None,
        reasoning: Vec::new(),
    });
    req.messages.push(Message::tool_result("call_0", "12:00"));
    let done = collect(provider(&server).stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        done.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "get_time".into(),
                arguments: "{\"tz\":\"UTC\"}".into()
            },
            ToolCall {
                id: "call_b".into(),
                name: "get_time".into(),
                arguments: "{}".into()
            },
        ]
    );
    assert_eq!(done.stop_reason, Some(StopReason::ToolUse));
    let body = &server.received()[0].body;
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "get_time", "description": "the time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}])
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
            "function": {"name": "get_time", "arguments": "{}"}}]})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_0", "content": "12:00"})
    );
}

#[tokio::test]
async fn reasoning_content_becomes_thinking() {
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk(json!({"reasoning_content": "let me see"}), None),
        chunk(json!({"content": "42"}), Some("stop")),
        "[DONE]".to_string(),
    ])])
    .await;
    let done = collect(provider(&server).stream(request()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (done.thinking.as_str(), done.text.as_str()),
        ("let me see", "42")
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
async fn an_error_mid_stream_ends_the_stream_after_the_partial_text() {
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk(json!({"content": "partial"}), None),
        json!({"error": {"message": "overloaded"}}).to_string(),
        chunk(json!({"content": "never"}), None),
    ])])
    .await;
    let items = items(&server).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0],
        Ok(StreamEvent::TextDelta {
            text: "partial".into()
        })
    );
    assert_eq!(items[1], Err(LlmError::Provider("overloaded".into())));
}

#[tokio::test]
async fn malformed_output_is_a_clear_error_never_a_panic() {
    for (name, answer) in [
        ("not json", Answer::sse_data(&["{not json"])),
        (
            "choices not a list",
            Answer::sse_data(&[json!({"choices": 5}).to_string()]),
        ),
        (
            "nameless tool call",
            Answer::sse_data(&[chunk(json!({"tool_calls": [{"index": 0}]}), None)]),
        ),
        (
            "cut off",
            Answer::sse_data(&[chunk(json!({"content": "half"}), None)]),
        ),
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
        json!({"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b", "object": "model"}]}),
    )])
    .await;
    assert_eq!(
        provider(&server).list_models().await.unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(server.received()[0].path, "/v1/models");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_retryable_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = OpenAiChat::new(reqwest::Client::new(), &format!("http://{addr}/v1"), None);
    let err = p.stream(request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn bytes_that_are_not_utf8_cost_only_the_events_from_them_on() {
    let mut body = String::new();
    for text in ["Hel", "lo ", "there"] {
        body.push_str(&format!(
            "data: {}\n\n",
            chunk(json!({"content": text}), None)
        ));
    }
    // One piece: the tokens and the bad bytes arrive together.
    let server = Scripted::start(vec![Answer::sse_raw::<&str>(&[]).then_bytes(
        Duration::ZERO,
        &[body.as_bytes(), b"data: \xff\xfe\n\n"].concat(),
    )])
    .await;
    let items = items(&server).await;
    assert_eq!(
        items,
        vec![
            Ok(StreamEvent::TextDelta { text: "Hel".into() }),
            Ok(StreamEvent::TextDelta { text: "lo ".into() }),
            Ok(StreamEvent::TextDelta {
                text: "there".into()
            }),
            Err(LlmError::Protocol("the event stream is not UTF-8".into())),
        ]
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_says_so_after_what_came() {
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
    ])
    .then_cut_off()])
    .await;
    let items = items(&server).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[1], Ok(StreamEvent::TextDelta { text: "lo".into() }));
    match &items[2] {
        Err(e @ LlmError::BrokeOff { events: 2, .. }) => {
            let said = e.to_string();
            assert!(
                said.starts_with("the provider's stream broke off after 2 events: "),
                "{said}"
            );
        }
        other => panic!("expected a broken-off stream, got {other:?}"),
    }
}

#[tokio::test]
async fn a_200_that_is_no_event_stream_says_what_it_was() {
    let page = "<html><body>Bad gateway</body></html>";
    for (answer, said) in [
        (
            Answer::body(200, "text/html", page),
            "it answered 200 with text/html, not an event stream",
        ),
        (
            Answer::body(200, "text/event-stream", page),
            "the answer is not an event stream: <html><body>Bad gateway</body></html>",
        ),
        (
            Answer::json(200, json!({"error": {"message": "model is loading"}})),
            "it answered 200 with application/json, not an event stream: model is loading",
        ),
    ] {
        let server = Scripted::start(vec![answer]).await;
        assert_eq!(
            items(&server).await,
            vec![Err(LlmError::Protocol(said.into()))]
        );
    }
}
