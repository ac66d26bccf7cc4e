use super::*;
use pretty_assertions::assert_eq;

const KEY: &str = "sk-proj-Zx81kQ2vLm0pRt5sWn7yBc4dFg9hJ3kA";

#[test]
fn the_callers_key_goes_in_full_and_in_parts() {
    let cases = [
        (
            format!("401 Incorrect API key provided: Bearer {KEY}"),
            "401 Incorrect API key provided: Bearer [redacted]",
        ),
        (format!("key {KEY}."), "key [redacted]."),
        // Cut or masked by the upstream: any 8 characters of it in a row.
        (
            "Incorrect API key provided: sk-proj-****************hJ3kA".into(),
            "Incorrect API key provided: [redacted]",
        ),
        (
            "the key ending in Fg9hJ3kA is revoked".into(),
            "the key ending in [redacted] is revoked",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(redact(&text, &[KEY]), want, "{text}");
    }
}

#[test]
fn a_word_inside_the_key_is_not_taken_for_a_piece_of_it() {
    let key = "sk-scripted-secret-0123456789";
    assert_eq!(
        redact("the provider reported an error: scripted failure", &[key]),
        "the provider reported an error: scripted failure"
    );
    assert_eq!(
        redact("key ending secret-0123 refused", &[key]),
        "key ending [redacted] refused"
    );
}

#[test]
fn a_short_secret_goes_only_as_a_whole_word() {
    assert_eq!(
        redact("bad key k1; try again (k10 is fine)", &["k1"]),
        "bad key [redacted]; try again (k10 is fine)"
    );
    assert_eq!(redact("maintenance", &["k"]), "maintenance");
}

#[test]
fn anything_shaped_like_a_credential_goes_even_when_unknown() {
    let cases = [
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "Authorization: Bearer [redacted]",
        ),
        ("got Basic dXNlcjpodW50ZXIy", "got Basic [redacted]"),
        (
            "invalid x-api-key sk-ant-api03-AbCdEf012345_-xyz",
            "invalid x-api-key [redacted]",
        ),
        (
            "token ghp_0123456789abcdefABCDEF0123 expired",
            "token [redacted] expired",
        ),
        (
            "GET /v1/models?key=AIzaSyA-1234567890abcdefghijklmnopqrstu&alt=json",
            "GET /v1/models?key=[redacted]&alt=json",
        ),
        ("api_key=hunter2hunter2, retry", "api_key=[redacted], retry"),
        (
            r#"{"password": "correct-horse"}"#,
            r#"{"password": "[redacted]"}"#,
        ),
        (
            "cannot reach https://bob:s3cret@proxy.local/v1",
            "cannot reach https://[redacted]@proxy.local/v1",
        ),
        (
            "signature 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 bad",
            "signature [redacted] bad",
        ),
        (
            "session Zm9vYmFyYmF6cXV4UVVVWDEyMzQ1Njc4OTAxMjM0NTY3 unknown",
            "session [redacted] unknown",
        ),
        (
            "AWS key AKIAIOSFODNN7EXAMPLE refused",
            "AWS key [redacted] refused",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(redact(text, &[]), want, "{text}");
    }
}

#[test]
fn ordinary_error_text_is_left_alone() {
    for text in [
        "model 'meta-llama/Llama-3.1-70B-Instruct-Turbo' not found",
        "This model's maximum context length is 128000 tokens; max_tokens: 4096",
        "Invalid token provided",
        "request 0195f3a2-7c1e-7d2b-9a4f-3b2c1d0e9f8a failed: rate limited",
        "POST /v1/chat/completions/organizations/default answered 503",
        "the provider answered 429: Too Many Requests",
        "risk-based task-force",
    ] {
        assert_eq!(redact(text, &[KEY]), text);
    }
}

#[test]
fn every_text_of_an_error_is_redacted() {
    let e = LlmError::Http {
        status: 401,
        message: format!("bad key {KEY}"),
        retry_after: None,
    };
    assert_eq!(
        e.redacted(&[KEY]).to_string(),
        "the provider answered 401: bad key [redacted]"
    );
    let e = LlmError::Provider(format!("stream failed for {KEY}"));
    assert_eq!(
        e.redacted(&[KEY]).to_string(),
        "the provider reported an error: stream failed for [redacted]"
    );
}

/// Starts, sends one event, then fails quoting the key; lists nothing, quoting it too.
struct Leaky;

impl Provider for Leaky {
    fn stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async {
            let events = vec![
                Ok(crate::StreamEvent::TextDelta { text: "Hel".into() }),
                Err(LlmError::Provider(format!("quota of {KEY} exhausted"))),
            ];
            Ok(Box::pin(futures_util::stream::iter(events)) as EventStream)
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async {
            Err(LlmError::Http {
                status: 401,
                message: format!("Incorrect API key provided: {KEY}"),
                retry_after: None,
            })
        })
    }
}

#[tokio::test]
async fn a_redacting_provider_cleans_errors_before_and_during_the_stream() {
    let p = Redacting::new(Arc::new(Leaky), vec![KEY.to_string()]);
    let listed = p.list_models().await.unwrap_err();
    assert_eq!(
        listed.to_string(),
        "the provider answered 401: Incorrect API key provided: [redacted]"
    );
    let items: Vec<_> = p
        .stream(ChatRequest::default())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        items,
        vec![
            Ok(crate::StreamEvent::TextDelta { text: "Hel".into() }),
            Err(LlmError::Provider("quota of [redacted] exhausted".into())),
        ]
    );
}
