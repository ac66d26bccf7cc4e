//! Why a model call failed, shaped for the routing matrix: it must tell a failure
//! worth retrying elsewhere (before the first token) from one that is final.

use std::time::Duration;

/// What stands for an upstream's words that the caller may not see.
pub const HIDDEN: &str = "details are shown to admins only";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The provider could not be reached (DNS, refused, TLS, reset before an answer).
    #[error("cannot connect to the provider: {0}")]
    Connect(String),
    /// No answer (or no first event) within the time allowed.
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider answered with an HTTP error.
    #[error("the provider answered {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The provider's answer does not follow its wire format.
    #[error("malformed answer from the provider: {0}")]
    Protocol(String),
    /// The provider reported an error inside the stream.
    #[error("the provider reported an error: {0}")]
    Provider(String),
    /// The request cannot be sent as given (unknown model, bad configuration).
    #[error("{0}")]
    Invalid(String),
}

impl LlmError {
    /// Whether another model may succeed where this one failed: connection failures,
    /// timeouts, rate limits and server errors. Meaningful before the first token only.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect(_) | LlmError::Timeout(_) => true,
            LlmError::Http { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            LlmError::Protocol(_) | LlmError::Provider(_) | LlmError::Invalid(_) => false,
        }
    }

    /// The same failure (kind, status, retry advice) without the upstream's own words,
    /// for a caller who may not see them: a user of a provider an admin configured.
    pub fn hidden(&self) -> LlmError {
        let hidden = || HIDDEN.to_string();
        match self {
            LlmError::Connect(_) => LlmError::Connect(hidden()),
            LlmError::Timeout(d) => LlmError::Timeout(*d),
            LlmError::Http {
                status,
                retry_after,
                ..
            } => LlmError::Http {
                status: *status,
                message: hidden(),
                retry_after: *retry_after,
            },
            LlmError::Protocol(_) => LlmError::Protocol(hidden()),
            LlmError::Provider(_) => LlmError::Provider(hidden()),
            // The gateway's own words, not the upstream's.
            LlmError::Invalid(m) => LlmError::Invalid(m.clone()),
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> LlmError {
        // reqwest's own message hides the cause ("connection refused", the DNS error):
        // walk the chain so the user sees it.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        if e.is_timeout() {
            LlmError::Connect(format!("timed out: {message}"))
        } else {
            LlmError::Connect(message)
        }
    }
}
