//! Thinking combined with tool calls, on the two APIs that want their reasoning back:
//! what a thinking answer leaves for the next call, and that the next call carries it
//! as the real APIs require (the scripted servers refuse it otherwise, as they do).

use mosaic_llm::anthropic::AnthropicMessages;
use mosaic_llm::openai_responses::OpenAiResponses;
use mosaic_llm::{collect, ChatRequest, LlmError, Message, Provider, Reasoning, StreamEvent};
use mosaic_test_support::reasoning::{
    anthropic_requires_thinking, anthropic_text, anthropic_thinking_tool_call,
    responses_reasoning_tool_call, responses_requires_reasoning, responses_text, ENCRYPTED,
    SIGNATURE,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{Answer, Scripted};

fn base(server: &Scripted) -> String {
    format!("{}/v1", server.base_url)
}

/// The question, with thinking asked for.
fn asked() -> ChatRequest {
    ChatRequest {
        model: "thinker".into(),
        messages: vec![Message::user("What time is it?")],
        thinking_budget: Some(2048),
        ..ChatRequest::default()
    }
}

/// `asked`, continued after the answer's tool call, carrying `reasoning` with it.
fn continued(answer: &mosaic_llm::Completion, reasoning: Vec<Reasoning>) -> ChatRequest {
    let mut request = asked();
    let mut turn = Message::assistant(answer.text.clone());
    turn.tool_calls = answer.tool_calls.clone();
    turn.reasoning = reasoning;
    request.messages.push(turn);
    request
        .messages
        .push(Message::tool_result(&answer.tool_calls[0].id, "12:00"));
    request
}

fn refused_with(result: Result<mosaic_llm::Completion, LlmError>, status: u16, words: &str) {
    match result {
        Err(LlmError::Http {
            status: s, message, ..
        }) => {
            assert_eq!(s, status, "{message}");
            assert!(message.contains(words), "{message}");
        }
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

async fn call(p: &dyn Provider, request: ChatRequest) -> Result<mosaic_llm::Completion, LlmError> {
    collect(p.stream(request).await?).await
}

#[tokio::test]
async fn anthropic_thinking_goes_back_signed_before_the_tool_call_it_led_to() {
    let server = Scripted::start_checked(
        vec![
            anthropic_thinking_tool_call("The clock tool.", SIGNATURE, "toolu_1", "now", "{}"),
            anthropic_text("It is noon."),
        ],
        anthropic_requires_thinking(&[SIGNATURE]),
    )
    .await;
    let p = AnthropicMessages::new(reqwest::Client::new(), &base(&server), None);
    let first = call(&p, asked()).await.unwrap();
    assert_eq!(first.thinking, "The clock tool.");
    assert_eq!(
        first.reasoning,
        vec![Reasoning::AnthropicThinking {
            thinking: "The clock tool.".into(),
            signature: SIGNATURE.into(),
        }]
    );

    // Without it, or with it altered, the API refuses the continuation.
    refused_with(
        call(&p, continued(&first, Vec::new())).await,
        400,
        "Expected `thinking` or `redacted_thinking`, but found `tool_use`",
    );
    let forged = vec![Reasoning::AnthropicThinking {
        thinking: "The clock tool.".into(),
        signature: "forged".into(),
    }];
    refused_with(
        call(&p, continued(&first, forged)).await,
        400,
        "Invalid `signature` in `thinking` block",
    );

    let second = call(&p, continued(&first, first.reasoning.clone()))
        .await
        .unwrap();
    assert_eq!(second.text, "It is noon.");
    let sent = server.received().pop().unwrap().body;
    assert_eq!(
        sent["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "The clock tool.", "signature": SIGNATURE},
            {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}},
        ])
    );
}

#[tokio::test]
async fn anthropic_redacted_thinking_is_kept_and_sent_back_as_it_came() {
    let server = Scripted::start(vec![Answer::sse_events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])])
    .await;
    let p = AnthropicMessages::new(reqwest::Client::new(), &base(&server), None);
    let mut events = Vec::new();
    let mut stream = p.stream(asked()).await.unwrap();
    while let Some(event) = futures_util::StreamExt::next(&mut stream).await {
        events.push(event.unwrap());
    }
    let redacted = Reasoning::AnthropicRedactedThinking {
        data: "EmwKAhgBEgy3va".into(),
    };
    assert_eq!(
        events[0],
        StreamEvent::Reasoning {
            reasoning: redacted.clone()
        }
    );
    let mut turn = Message::assistant("Done.");
    turn.reasoning = vec![redacted];
    let mut request = asked();
    request.messages.push(turn);
    let body = mosaic_llm::anthropic::request_body(&request);
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
            {"type": "text", "text": "Done."},
        ])
    );
}

#[tokio::test]
async fn responses_reasoning_goes_back_whole_without_its_id_before_the_call() {
    let server = Scripted::start_checked(
        vec![
            responses_reasoning_tool_call("Use the clock.", ENCRYPTED, "call_1", "now", "{}"),
            responses_text("It is noon."),
        ],
        responses_requires_reasoning(&[ENCRYPTED]),
    )
    .await;
    let p = OpenAiResponses::new(reqwest::Client::new(), &base(&server), None);
    let first = call(&p, asked()).await.unwrap();
    // Asked for, since nothing is stored to be found by id.
    assert_eq!(
        server.received()[0].body["include"],
        json!(["reasoning.encrypted_content"])
    );
    assert_eq!(first.thinking, "Use the clock.");
    assert_eq!(
        first.reasoning,
        vec![Reasoning::ResponsesReasoning {
            id: "rs_1".into(),
            summary: vec!["Use the clock.".into()],
            encrypted_content: Some(ENCRYPTED.into()),
        }]
    );

    refused_with(
        call(&p, continued(&first, Vec::new())).await,
        400,
        "without the 'reasoning' item that preceded it",
    );
    let tampered = vec![Reasoning::ResponsesReasoning {
        id: "rs_1".into(),
        summary: Vec::new(),
        encrypted_content: Some("tampered".into()),
    }];
    refused_with(
        call(&p, continued(&first, tampered)).await,
        400,
        "could not be verified",
    );
    // Without its encrypted content, an item is not sent (it could only be found by id,
    // and nothing is stored): the continuation then lacks it.
    let bare = vec![Reasoning::ResponsesReasoning {
        id: "rs_1".into(),
        summary: Vec::new(),
        encrypted_content: None,
    }];
    refused_with(
        call(&p, continued(&first, bare)).await,
        400,
        "without the 'reasoning' item",
    );

    let second = call(&p, continued(&first, first.reasoning.clone()))
        .await
        .unwrap();
    assert_eq!(second.text, "It is noon.");
    let sent = server.received().pop().unwrap().body;
    assert_eq!(
        sent["input"][1],
        json!({"type": "reasoning", "encrypted_content": ENCRYPTED,
            "summary": [{"type": "summary_text", "text": "Use the clock."}]})
    );
    assert_eq!(sent["input"][2]["type"], "function_call");
    assert_eq!(sent["include"], json!(["reasoning.encrypted_content"]));
}

#[test]
fn a_reasoning_item_sent_back_by_id_alone_is_not_found_without_a_store() {
    // What a client that refers to items by id sends (Mosaic never does: see above).
    let body = json!({"model": "thinker", "store": false, "reasoning": {"effort": "low"},
        "input": [{"type": "reasoning", "id": "rs_1", "summary": []}]});
    let refusal = responses_requires_reasoning(&[ENCRYPTED])(&body).expect("refused");
    assert_eq!(refusal.status, 404);
    let said = String::from_utf8(refusal.chunks[0].1.clone()).unwrap();
    assert!(
        said.contains("Items are not persisted when `store` is set to false"),
        "{said}"
    );
}
