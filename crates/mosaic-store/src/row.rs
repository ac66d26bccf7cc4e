//! Reading rows. Each row type is read by one [`FromRow`] impl, next to the list of
//! columns its statements select; values come out through [`Columns::col`]. Whatever a
//! stored row holds that cannot be read back (a missing or mistyped column, an unknown
//! enum text, JSON that does not parse, an item without a single owner) is
//! [`StoreError::Corrupt`]: the database's fault, never the caller's.

use mosaic_api::Owner;
use sqlx::any::AnyRow;
use sqlx::{Decode, Row, Type};

use crate::{Result, StoreError};

/// A value read from one row.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &AnyRow) -> Result<Self>;
}

/// Typed column access whose failures are [`StoreError::Corrupt`].
pub(crate) trait Columns {
    /// The value of column `name`.
    fn col<'r, T>(&'r self, name: &str) -> Result<T>
    where
        T: Decode<'r, sqlx::Any> + Type<sqlx::Any>;
}

impl Columns for AnyRow {
    fn col<'r, T>(&'r self, name: &str) -> Result<T>
    where
        T: Decode<'r, sqlx::Any> + Type<sqlx::Any>,
    {
        self.try_get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

/// A stored text that names one of our enum's values, parsed by `parse`.
pub(crate) fn parsed<T>(what: &str, text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} '{text}'")))
}

/// A stored JSON text, decoded.
pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("stored {what} is not valid: {e}")))
}

/// The owner of a brain item or workspace: exactly one of `owner_user_id` and
/// `owner_team_id`.
impl FromRow for Owner {
    fn from_row(row: &AnyRow) -> Result<Owner> {
        let user: Option<String> = row.col("owner_user_id")?;
        let team: Option<String> = row.col("owner_team_id")?;
        match (user, team) {
            (Some(id), None) => Ok(Owner::User { id }),
            (None, Some(id)) => Ok(Owner::Team { id }),
            _ => Err(StoreError::Corrupt("an item without a single owner".into())),
        }
    }
}
