//! Cursor pagination: a request names where to start (`cursor`) and how many (`limit`);
//! a page says what comes next (`next_cursor`, absent on the last page).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default and maximum page sizes.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Query parameters of every list operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// For the `limit` of every list: `#[serde(default, deserialize_with = "crate::page::limit")]`
/// with `#[param(minimum = 1, maximum = 500)]`. A size outside 1 to [`MAX_LIMIT`] is refused,
/// not quietly clamped, so that the document's bounds are the server's.
pub fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    bounded::<D, 1, MAX_LIMIT>(d)
}

/// An optional count within `MIN..=MAX`, refused outside it.
pub fn bounded<'de, D: Deserializer<'de>, const MIN: u32, const MAX: u32>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(d)? {
        Some(n) if !(MIN..=MAX).contains(&n) => {
            Err(D::Error::custom(format!("must be {MIN} to {MAX}, not {n}")))
        }
        other => Ok(other),
    }
}

impl PageQuery {
    /// The effective page size, clamped to the allowed range.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
