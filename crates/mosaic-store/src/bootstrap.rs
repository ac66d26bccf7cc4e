//! The first admin. While no active admin exists, the gateway holds a bootstrap token
//! (its hash) from each source: the one it printed at its latest start, and the one
//! `mosaic admin bootstrap` printed last. Redeeming either creates the admin and
//! consumes it in the same transaction, so it works exactly once even under concurrent
//! redemption; once an admin exists, no token is accepted or issued.

use mosaic_api::User;

use crate::db::Acting;
use crate::users::{count_active_admins, insert_user, NewUser, ADMINS_LOCK};
use crate::{new_id, now_ms, Result, Store, StoreError};

/// Who made a bootstrap token. A new token replaces only the earlier one of its source,
/// so restarting the gateway does not invalidate a token made offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapSource {
    /// Printed by the gateway as it starts.
    Startup,
    /// Printed by `mosaic admin bootstrap`.
    Offline,
}

impl BootstrapSource {
    fn as_str(self) -> &'static str {
        match self {
            BootstrapSource::Startup => "startup",
            BootstrapSource::Offline => "offline",
        }
    }
}

impl Store {
    /// Replace the earlier bootstrap token of `source` with this one. Refused once an
    /// admin exists.
    #[tracing::instrument(name = "store.issue_bootstrap_token", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn issue_bootstrap_token(
        &self,
        source: BootstrapSource,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin(Acting::System, true).await?;
        tx.lock(ADMINS_LOCK).await?;
        if count_active_admins(&mut tx).await? > 0 {
            return Err(StoreError::Conflict(
                "the gateway already has an admin; bootstrap is closed".into(),
            ));
        }
        let sql = tx
            .sql("DELETE FROM bootstrap_tokens WHERE source = $1")
            .into_owned();
        tx.execute(sqlx::query(&sql).bind(source.as_str())).await?;
        let sql = tx
            .sql(
                "INSERT INTO bootstrap_tokens (id, source, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(new_id())
                .bind(source.as_str())
                .bind(token_hash)
                .bind(now_ms())
                .bind(expires_at),
        )
        .await?;
        tx.commit().await
    }

    /// Consume the bootstrap token and create the first admin. `NotFound` when the
    /// token is wrong, expired or already used; `Conflict` when an admin exists.
    #[tracing::instrument(name = "store.redeem_bootstrap", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn redeem_bootstrap(&self, token_hash: &str, admin: NewUser) -> Result<User> {
        let mut tx = self.begin(Acting::System, true).await?;
        tx.lock(ADMINS_LOCK).await?;
        // The DELETE comes first: it takes the row lock (PostgreSQL) or the writer turn
        // (SQLite), so of two concurrent redemptions exactly one sees a row to delete.
        let sql = tx
            .sql("DELETE FROM bootstrap_tokens WHERE token_hash = $1 AND expires_at > $2")
            .into_owned();
        let consumed = tx
            .execute(sqlx::query(&sql).bind(token_hash).bind(now_ms()))
            .await?;
        if consumed == 0 {
            return Err(StoreError::NotFound);
        }
        if count_active_admins(&mut tx).await? > 0 {
            return Err(StoreError::Conflict(
                "the gateway already has an admin; bootstrap is closed".into(),
            ));
        }
        let user = insert_user(
            &mut tx,
            NewUser {
                is_admin: true,
                ..admin
            },
        )
        .await?;
        // Bootstrap is closed now: forget the token of the other source too.
        tx.execute(sqlx::query("DELETE FROM bootstrap_tokens"))
            .await?;
        tx.commit().await?;
        Ok(user)
    }
}
