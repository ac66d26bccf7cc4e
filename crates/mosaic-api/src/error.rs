//! The one error shape of the API. Every non-2xx response carries an [`ErrorBody`];
//! the `code` is stable and meant for programs, the `message` for people.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Machine-readable error codes. Each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// The request (its body) did not arrive in time.
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    Internal,
    Unavailable,
    /// An upstream provider refused the gateway's credentials (its 401, 402 or 403): the
    /// provider's key or account needs fixing, not the request.
    UpstreamAuthFailed,
    /// An upstream provider failed: a redirect, a server error, an answer that is not
    /// its wire format, an error it reported, a stream that stalled or broke off.
    UpstreamError,
}

impl ErrorCode {
    /// The HTTP status this code is always sent with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::UpstreamAuthFailed | ErrorCode::UpstreamError => 502,
        }
    }

    /// The code for a status, for clients that get a non-JSON error from a proxy.
    pub fn from_status(status: u16) -> ErrorCode {
        match status {
            400 | 415 | 422 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            502 => ErrorCode::UpstreamError,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}
