//! Smoke tests against a real model server: llama.cpp's `llama-server` with
//! SmolLM2-135M (started by `scripts/services.sh start-llama`), spoken to in each of the
//! three wire APIs it serves. The model is tiny, so only the shape of the answer is
//! asserted: text arrived, tokens were counted, the stream ended properly.

use mosaic_llm::anthropic::AnthropicMessages;
use mosaic_llm::openai_chat::OpenAiChat;
use mosaic_llm::openai_responses::OpenAiResponses;
use mosaic_llm::{collect, ChatRequest, Message, Provider, StopReason};

fn llama_url() -> String {
    let url = std::env::var("MOSAIC_TEST_LLAMA_URL").unwrap_or_default();
    assert!(
        !url.is_empty(),
        "MOSAIC_TEST_LLAMA_URL is not set: these smoke tests need a real llama-server. Start one \
         with `eval \"$(scripts/services.sh start-llama)\"` (or run scripts/test.sh)"
    );
    format!("{url}/v1")
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "smollm2".into(),
        messages: vec![
            Message::system("You are a helpful assistant."),
            Message::user("Say hello in one short sentence."),
        ],
        max_tokens: Some(24),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

async fn smoke(provider: &dyn Provider, wire: &str) {
    let done = collect(
        provider
            .stream(request())
            .await
            .unwrap_or_else(|e| panic!("{wire}: {e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{wire}: {e}"));
    assert!(!done.text.trim().is_empty(), "{wire}: no text in {done:?}");
    assert!(
        done.usage.output_tokens > 0,
        "{wire}: no output tokens counted: {done:?}"
    );
    assert!(
        matches!(
            done.stop_reason,
            Some(StopReason::Stop) | Some(StopReason::Length)
        ),
        "{wire}: {done:?}"
    );
}

#[tokio::test]
async fn chat_completions_streams_from_a_real_llama_server() {
    let p = OpenAiChat::new(reqwest::Client::new(), &llama_url(), None);
    smoke(&p, "chat completions").await;
    assert!(!p.list_models().await.unwrap().is_empty());
}

#[tokio::test]
async fn anthropic_messages_streams_from_a_real_llama_server() {
    let p = AnthropicMessages::new(reqwest::Client::new(), &llama_url(), None);
    smoke(&p, "anthropic messages").await;
}

#[tokio::test]
async fn responses_streams_from_a_real_llama_server() {
    let p = OpenAiResponses::new(reqwest::Client::new(), &llama_url(), None);
    smoke(&p, "responses").await;
}
