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
    /// The answer had begun, then nothing came for this long (the route step's idle
    /// timeout): the call is given up, what streamed before stays with the caller.
    #[error("the model sent nothing for {0:?} mid-answer")]
    Stalled(Duration),
    /// The connection failed while the answer's body was streaming, after this many of
    /// its events (a provider that crashed, a proxy or network that cut it).
    #[error("the provider's stream broke off after {events} events: {detail}")]
    BrokeOff { events: usize, detail: String },
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
            // Only ever mid-answer (the first event has its own timeout), but were either
            // before it, another model could well do better.
            LlmError::Stalled(_) | LlmError::BrokeOff { .. } => true,
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
            LlmError::Stalled(d) => LlmError::Stalled(*d),
            LlmError::BrokeOff { events, .. } => LlmError::BrokeOff {
                events: *events,
                detail: hidden(),
            },
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

    /// Whether the upstream refused for its rate limit (429).
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, LlmError::Http { status: 429, .. })
    }

    /// How long the upstream asked to be left alone (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> LlmError {
        let message = chain(&e);
        if e.is_timeout() {
            LlmError::Connect(format!("timed out: {message}"))
        } else {
            LlmError::Connect(message)
        }
    }
}

/// An error with its causes: reqwest's own message hides them ("connection refused",
/// the DNS error, "connection reset").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
