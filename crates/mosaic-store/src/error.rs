//! Store errors, shaped after what the API must answer rather than what the engine said.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or the principal may not see it (deliberately the same).
    #[error("not found")]
    NotFound,
    /// The principal may see the row but not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// A uniqueness rule would be broken (a taken username, say).
    #[error("{0}")]
    Conflict(String),
    /// The request makes no sense for the data as it is.
    #[error("{0}")]
    Invalid(String),
    /// A stored row cannot be read back (unknown enum text, bad JSON, an item without
    /// a single owner…): the data is damaged, not the request.
    #[error("a stored row cannot be read: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// A migration failed; the store is not usable.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".into())
            }
            // A row referred to vanished under a concurrent delete.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::Db(e),
        }
    }
}
