//! Credentials: API tokens and web sessions, both stored only as hashes. Creating,
//! listing and revoking are the owner's operations; resolving a presented credential
//! to its user is the gateway's (no one is authenticated yet when it happens).

use mosaic_api::{ApiToken, Page, PageQuery, Scope, User};
use sqlx::any::AnyRow;

use crate::db::Acting;
use crate::page::ListQuery;
use crate::principal::local_user;
use crate::revocation::Revoked;
use crate::row::{Columns, FromRow};
use crate::users::USER_COLUMNS;
use crate::visibility::{visible, Table};
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

/// A token to store; the caller made the secret and keeps only its hash here.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<i64>,
}

/// A presented bearer token that resolved to a live user.
#[derive(Debug, Clone)]
pub struct AuthenticatedToken {
    pub token_id: String,
    pub user: User,
    pub scopes: Vec<Scope>,
}

/// A web session to store.
#[derive(Debug, Clone)]
pub struct NewWebSession {
    pub token_hash: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A presented session cookie that resolved to a live user.
#[derive(Debug, Clone)]
pub struct WebSessionAuth {
    pub session_id: String,
    pub user: User,
    pub csrf_token: String,
}

const TOKEN_COLUMNS: &str = "id, name, prefix, scopes, created_at, expires_at, last_used_at";

/// `last_used_at` is refreshed at most this often, so that reads stay reads.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

impl FromRow for ApiToken {
    fn from_row(row: &AnyRow) -> Result<ApiToken> {
        Ok(ApiToken {
            id: row.col("id")?,
            name: row.col("name")?,
            prefix: row.col("prefix")?,
            scopes: scopes_from_text(&row.col::<String>("scopes")?),
            created_at: format_time(row.col("created_at")?),
            expires_at: row.col::<Option<i64>>("expires_at")?.map(format_time),
            last_used_at: row.col::<Option<i64>>("last_used_at")?.map(format_time),
        })
    }
}

impl Store {
    /// Store a new API token of the caller.
    #[tracing::instrument(name = "store.create_api_token", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_api_token(&self, p: &Principal, new: NewApiToken) -> Result<ApiToken> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(StoreError::Invalid(
                "token name must be 1-128 characters".into(),
            ));
        }
        if new.scopes.is_empty() {
            return Err(StoreError::Invalid(
                "a token needs at least one scope".into(),
            ));
        }
        let mut scopes = new.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(
                "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, scopes, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(local_user(p)?)
                .bind(name)
                .bind(&new.token_hash)
                .bind(&new.prefix)
                .bind(scopes_to_text(&scopes))
                .bind(now)
                .bind(new.expires_at),
        )
        .await?;
        tx.commit().await?;
        Ok(ApiToken {
            id,
            name: name.to_string(),
            prefix: new.prefix,
            scopes,
            created_at: format_time(now),
            expires_at: new.expires_at.map(format_time),
            last_used_at: None,
        })
    }

    /// The caller's API tokens (expired ones included, so they can be cleaned up).
    #[tracing::instrument(name = "store.list_api_tokens", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_api_tokens(&self, p: &Principal, page: &PageQuery) -> Result<Page<ApiToken>> {
        let visible = visible(p, Table::ApiTokens, 3);
        let q = ListQuery {
            sql: format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {visible} AND id > $1 \
                 ORDER BY id LIMIT $2"
            ),
            binds: visible.binds,
            row: ApiToken::from_row,
            id: |t: &ApiToken| t.id.clone(),
        };
        self.list_page(p, page, q).await
    }

    /// One of the caller's API tokens.
    #[tracing::instrument(name = "store.get_api_token", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_api_token(&self, p: &Principal, id: &str) -> Result<ApiToken> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::ApiTokens, 2);
        let sql = tx
            .sql(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {visible} AND id = $1"
            ))
            .into_owned();
        let row = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        ApiToken::from_row(&row)
    }

    /// Revoke (delete) one of the caller's API tokens; it stops working at once.
    #[tracing::instrument(name = "store.revoke_api_token", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn revoke_api_token(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::ApiTokens, 2);
        let sql = tx
            .sql(&format!(
                "DELETE FROM api_tokens WHERE {visible} AND id = $1"
            ))
            .into_owned();
        let n = tx.execute(visible.bind(sqlx::query(&sql).bind(id))).await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        self.revoked(Revoked::ApiToken {
            token_id: id.to_string(),
        });
        Ok(())
    }

    /// Resolve a presented token hash to its live, enabled user.
    #[tracing::instrument(name = "store.authenticate_token", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn authenticate_token(&self, token_hash: &str) -> Result<Option<AuthenticatedToken>> {
        let now = now_ms();
        let hot = &self.inner().hot;
        let generation = hot.accounts.current();
        if let Some(found) = hot.tokens.get(&token_hash.to_string(), generation, now) {
            return Ok(Some(found));
        }
        let mut tx = self.begin(Acting::System, false).await?;
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = tx
            .sql(&format!(
                "SELECT {cols}, t.id AS token_id, t.scopes AS token_scopes, \
                 t.last_used_at AS token_last_used, t.expires_at AS token_expires_at \
                 FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) \
                 AND u.disabled = 0"
            ))
            .into_owned();
        let row = tx
            .fetch_optional(sqlx::query(&sql).bind(token_hash).bind(now))
            .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let auth = AuthenticatedToken {
            token_id: row.col("token_id")?,
            user: User::from_row(&row)?,
            scopes: scopes_from_text(&row.col::<String>("token_scopes")?),
        };
        let last_used: Option<i64> = row.col("token_last_used")?;
        if last_used.is_none_or(|t| now - t > LAST_USED_GRANULARITY_MS) {
            let mut tx = self.begin(Acting::System, true).await?;
            let sql = tx
                .sql("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .into_owned();
            tx.execute(sqlx::query(&sql).bind(&auth.token_id).bind(now))
                .await?;
            tx.commit().await?;
        }
        let expires: Option<i64> = row.col("token_expires_at")?;
        hot.tokens.put(
            token_hash.to_string(),
            generation,
            now,
            expires,
            auth.clone(),
        );
        Ok(Some(auth))
    }

    /// Start a web session for the caller (who has just proven their password).
    #[tracing::instrument(name = "store.create_web_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_web_session(&self, p: &Principal, new: NewWebSession) -> Result<String> {
        let id = new_id();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(
                "INSERT INTO web_sessions (id, user_id, token_hash, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(local_user(p)?)
                .bind(&new.token_hash)
                .bind(&new.csrf_token)
                .bind(now_ms())
                .bind(new.expires_at),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Resolve a presented session-cookie hash to its live, enabled user.
    #[tracing::instrument(name = "store.authenticate_web_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn authenticate_web_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<WebSessionAuth>> {
        let now = now_ms();
        let hot = &self.inner().hot;
        let generation = hot.accounts.current();
        if let Some(found) = hot
            .web_sessions
            .get(&token_hash.to_string(), generation, now)
        {
            return Ok(Some(found));
        }
        let mut tx = self.begin(Acting::System, false).await?;
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = tx
            .sql(&format!(
                "SELECT {cols}, s.id AS session_id, s.csrf_token, s.expires_at AS session_expires_at \
                 FROM web_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
            ))
            .into_owned();
        let row = tx
            .fetch_optional(sqlx::query(&sql).bind(token_hash).bind(now))
            .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let found = WebSessionAuth {
            session_id: row.col("session_id")?,
            user: User::from_row(&row)?,
            csrf_token: row.col("csrf_token")?,
        };
        let expires: i64 = row.col("session_expires_at")?;
        hot.web_sessions.put(
            token_hash.to_string(),
            generation,
            now,
            Some(expires),
            found.clone(),
        );
        Ok(Some(found))
    }

    /// End one of the caller's web sessions (logout).
    #[tracing::instrument(name = "store.delete_web_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_web_session(&self, p: &Principal, session_id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::WebSessions, 2);
        let sql = tx
            .sql(&format!(
                "DELETE FROM web_sessions WHERE {visible} AND id = $1"
            ))
            .into_owned();
        tx.execute(visible.bind(sqlx::query(&sql).bind(session_id)))
            .await?;
        tx.commit().await?;
        self.revoked(Revoked::WebSession {
            session_id: session_id.to_string(),
        });
        Ok(())
    }

    /// Housekeeping: forget expired web sessions and bootstrap tokens. Expired API
    /// tokens are kept (listed, refused) until their owner revokes them.
    #[tracing::instrument(name = "store.purge_expired", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.begin(Acting::System, true).await?;
        let mut n = 0;
        for table in ["web_sessions", "bootstrap_tokens"] {
            let sql = tx
                .sql(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .into_owned();
            n += tx.execute(sqlx::query(&sql).bind(now)).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}
