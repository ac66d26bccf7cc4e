//! How a provider's failure reaches the caller. Its text was redacted of credentials
//! where it entered (`mosaic_llm::redact`, around every provider the hub builds); here
//! it gets the API code its kind implies, and its words are kept from callers who may
//! not see them: users of a provider an admin configured see what kind of failure it
//! was and its status, admins and a provider's owner see the (redacted) detail, and the
//! gateway log has it for admins.

use mosaic_api::{ConfigScope, ErrorCode};
use mosaic_llm::LlmError;
use mosaic_store::Principal;

use crate::error::ApiError;

/// Whether `p` may read what the upstream of a provider of this scope said: its owner
/// (a user-scope provider is only ever used by its owner) and admins may.
pub fn sees_detail(p: &Principal, scope: ConfigScope) -> bool {
    match scope {
        ConfigScope::User => true,
        ConfigScope::Gateway => p.is_admin(),
    }
}

/// The error as this caller may see it.
pub fn shown(e: &LlmError, detail: bool) -> LlmError {
    if detail {
        e.clone()
    } else {
        e.hidden()
    }
}

/// The API code of a provider's failure. Only what the caller's own request decides is
/// a 4xx: the upstream's answers about the request (an unknown model, too long a
/// context) are `bad_request`; its refusal of the gateway's key or account (401, 402,
/// 403) is `upstream_auth_failed` and its rate limit `rate_limited`, passed on as such;
/// everything else the provider got wrong (5xx, 408, an answer that is not its wire
/// format, a stream that stalled or broke off) is `upstream_error`, and not reaching it
/// at all `unavailable`.
pub fn code(e: &LlmError) -> ErrorCode {
    match e {
        LlmError::Http { status, .. } => match status {
            401..=403 => ErrorCode::UpstreamAuthFailed,
            429 => ErrorCode::RateLimited,
            408 => ErrorCode::UpstreamError,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::UpstreamError,
        },
        LlmError::Connect(_) | LlmError::Timeout(_) => ErrorCode::Unavailable,
        LlmError::Stalled(_)
        | LlmError::BrokeOff { .. }
        | LlmError::Protocol(_)
        | LlmError::Provider(_) => ErrorCode::UpstreamError,
        // The gateway's own refusal of what was asked (a provider that lists no models).
        LlmError::Invalid(_) => ErrorCode::BadRequest,
    }
}

/// The API error of a failed call to `label` (`provider` or `provider/model`); a rate
/// limit carries the upstream's `Retry-After`.
pub fn api_error(label: &str, e: &LlmError, detail: bool) -> ApiError {
    let error = ApiError::new(code(e), format!("{label}: {}", shown(e, detail)));
    match e.retry_after().filter(|_| e.is_rate_limit()) {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn only_what_the_request_decides_is_the_callers_fault() {
        let http = |status: u16| LlmError::Http {
            status,
            message: "m".into(),
            retry_after: None,
        };
        let d = std::time::Duration::from_secs(1);
        let codes: Vec<(String, ErrorCode)> = [
            http(400),
            http(404),
            http(413),
            http(401),
            http(402),
            http(403),
            http(408),
            http(429),
            http(500),
            http(503),
            LlmError::Connect("refused".into()),
            LlmError::Timeout(d),
            LlmError::Stalled(d),
            LlmError::BrokeOff {
                events: 3,
                detail: "reset".into(),
            },
            LlmError::Protocol("html".into()),
            LlmError::Provider("overloaded".into()),
            LlmError::Invalid("this provider does not list its models".into()),
        ]
        .iter()
        .map(|e| (e.to_string(), code(e)))
        .collect();
        let want = [
            ErrorCode::BadRequest,
            ErrorCode::BadRequest,
            ErrorCode::BadRequest,
            ErrorCode::UpstreamAuthFailed,
            ErrorCode::UpstreamAuthFailed,
            ErrorCode::UpstreamAuthFailed,
            ErrorCode::UpstreamError,
            ErrorCode::RateLimited,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamError,
            ErrorCode::Unavailable,
            ErrorCode::Unavailable,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamError,
            ErrorCode::BadRequest,
        ];
        let got: Vec<ErrorCode> = codes.iter().map(|(_, c)| *c).collect();
        assert_eq!(got, want, "{codes:#?}");
    }

    #[test]
    fn a_rate_limit_passes_on_how_long_to_wait() {
        let e = LlmError::Http {
            status: 429,
            message: "slow down".into(),
            retry_after: Some(std::time::Duration::from_millis(2500)),
        };
        let error = api_error("p/m", &e, false);
        assert_eq!(
            (error.code, error.retry_after_secs),
            (ErrorCode::RateLimited, Some(3))
        );
    }

    #[test]
    fn a_refused_key_is_an_upstream_failure_and_its_words_are_kept_from_users() {
        let e = LlmError::Http {
            status: 401,
            message: "Incorrect API key provided: [redacted]".into(),
            retry_after: None,
        };
        let user = Principal::user("u", false);
        let admin = Principal::user("a", true);
        assert!(!sees_detail(&user, ConfigScope::Gateway));
        assert!(sees_detail(&user, ConfigScope::User));
        assert!(sees_detail(&admin, ConfigScope::Gateway));
        let hidden = api_error("openai/gpt", &e, false);
        assert_eq!(
            (hidden.code, hidden.message.as_str()),
            (
                ErrorCode::UpstreamAuthFailed,
                "openai/gpt: the provider answered 401: details are shown to admins only"
            )
        );
        assert_eq!(
            api_error("openai/gpt", &e, true).message,
            "openai/gpt: the provider answered 401: Incorrect API key provided: [redacted]"
        );
        assert_eq!(ErrorCode::UpstreamAuthFailed.status(), 502);
    }
}
