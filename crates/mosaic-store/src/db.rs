//! The connection pool, the engine it talks to, and principal-scoped transactions.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::{Principal, Result, StoreError};

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The OpenTelemetry `db.system` name.
    pub fn otel_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The engine a database URL names, if it is one we speak.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST:PORT/DB`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
        }
    }

    /// The URL of an SQLite file, created when missing.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        StoreOptions::new(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; taking turns here instead of inside SQLite
    /// turns "database is locked" failures of read-then-write transactions into waits.
    write_lock: Mutex<()>,
    /// Signalled whenever the text of a brain item changed (its embedding is due).
    pub(crate) text_changed: Arc<tokio::sync::Notify>,
    /// SQLite's nearest-neighbour index, loaded at the first vector search.
    pub(crate) vectors: tokio::sync::RwLock<Option<crate::brain::VectorIndex>>,
    /// PostgreSQL: the dimensions whose HNSW indexes are known to exist.
    pub(crate) hnsw_ready: std::sync::Mutex<Vec<usize>>,
    /// Permits for operations that hold two connections at once (hybrid search):
    /// half the pool, so they can never hold all of it while waiting for more.
    paired_reads: tokio::sync::Semaphore,
    /// Told whenever a credential stops being valid (see `revocation.rs`).
    pub(crate) revoke_listeners: std::sync::Mutex<Vec<crate::revocation::RevokeListener>>,
    /// What every request reads, kept until it changes (see `cache.rs`).
    pub(crate) hot: crate::cache::HotReads,
}

/// A std mutex's guard, poisoned or not (what it guards stays consistent either way).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Who a transaction acts for: a principal, or the gateway itself (authentication
/// look-ups and bootstrap, which by their nature happen before anyone is known).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Acting<'a> {
    As(&'a Principal),
    System,
}

impl Store {
    /// Connections of the pool: open, idle, and the most it opens.
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        let pool = self.pool();
        (
            pool.size(),
            pool.num_idle(),
            pool.options().get_max_connections(),
        )
    }
}

/// How long the first connection may take before the start gives up.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connect once and make the first statement the pool's connections would, failing
/// fast with the database's own reason ("connection refused", "file is not a
/// database", "attempt to write a readonly database").
async fn probe(url: &str, backend: Backend) -> Result<()> {
    use sqlx::Connection;
    let attempt = async {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        match backend {
            Backend::Sqlite => {
                // Reads the header (not a database?) and needs write access (read-only?).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("BEGIN IMMEDIATE; ROLLBACK;").await?;
            }
            Backend::Postgres => {
                conn.execute("SELECT 1").await?;
            }
        }
        conn.close().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(result) => result.map_err(StoreError::Db),
        Err(_) => Err(StoreError::Invalid(format!(
            "the database did not answer within {} s: {}",
            PROBE_TIMEOUT.as_secs(),
            redact_url(url)
        ))),
    }
}

impl Store {
    /// Connect and apply pending migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&options.url).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unsupported database URL (expected sqlite:// or postgres://): {}",
                redact_url(&options.url)
            ))
        })?;
        // One connection first, with the engine's own error: the pool would retry a
        // refused connection or a file that is not a database for its whole acquire
        // timeout and then report only that it timed out.
        probe(&options.url, backend).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            // A connection to a local file does not go stale, and the ping would cost
            // every acquire a round trip to the connection's thread; a PostgreSQL one
            // can (a restarted server), so it is checked before use.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&options.url)
            .await
            .map_err(StoreError::Db)?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set once, kept.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(StoreError::Db)?;
        }
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                write_lock: Mutex::new(()),
                text_changed: Arc::new(tokio::sync::Notify::new()),
                vectors: tokio::sync::RwLock::new(None),
                hnsw_ready: std::sync::Mutex::new(Vec::new()),
                revoke_listeners: std::sync::Mutex::new(Vec::new()),
                hot: Default::default(),
                paired_reads: tokio::sync::Semaphore::new(
                    (options.max_connections.max(2) / 2) as usize,
                ),
            }),
        };
        crate::migrate::run(&store).await?;
        if backend == Backend::Postgres && store.pg_role_bypasses_rls().await? {
            tracing::warn!(
                "the PostgreSQL role bypasses row-level security (superuser or BYPASSRLS); \
                 connect as an ordinary role to keep the second tenancy wall"
            );
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub(crate) fn inner_vectors(&self) -> &tokio::sync::RwLock<Option<crate::brain::VectorIndex>> {
        &self.inner.vectors
    }

    pub(crate) fn hnsw_ready(&self) -> &std::sync::Mutex<Vec<usize>> {
        &self.inner.hnsw_ready
    }

    /// Signalled whenever the text of a task, note or memory changed: an embedder
    /// waits on it (a change made while nobody waits is kept for the next wait).
    pub fn text_changes(&self) -> Arc<tokio::sync::Notify> {
        self.inner.text_changed.clone()
    }

    pub(crate) fn text_changed(&self) {
        self.inner.text_changed.notify_one();
    }

    pub(crate) fn paired_reads(&self) -> &tokio::sync::Semaphore {
        &self.inner.paired_reads
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Statement text for this store's engine (see [`Tx::sql`]).
    pub(crate) fn sql<'s>(&self, sql: &'s str) -> Cow<'s, str> {
        sql_for(self.inner.backend, sql)
    }

    /// A change of one statement, acting for `p`. On SQLite it runs by itself in the
    /// writer's turn (one statement is atomic), not inside `BEGIN … COMMIT`: two round
    /// trips to the connection's thread fewer, for the writes every model call makes.
    /// On PostgreSQL it runs in a transaction acting for `p`, as row-level security needs.
    pub(crate) async fn write_alone<'q>(
        &self,
        p: &Principal,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<()> {
        match self.inner.backend {
            Backend::Sqlite => {
                let _turn = self.inner.write_lock.lock().await;
                query.execute(&self.inner.pool).await?;
                Ok(())
            }
            Backend::Postgres => {
                let mut tx = self.begin(Acting::As(p), true).await?;
                tx.execute(query).await?;
                tx.commit().await
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(StoreError::Db)?;
        Ok(())
    }

    /// What is wrong with the database's structure, if anything: SQLite's
    /// `quick_check` (a read of every page; seconds for a large file, so callers run it
    /// in the background). PostgreSQL guards its own pages and answers `None`.
    pub async fn check_integrity(&self) -> Result<Option<String>> {
        if self.inner.backend != Backend::Sqlite {
            return Ok(None);
        }
        let rows = sqlx::query("PRAGMA quick_check(20)")
            .fetch_all(&self.inner.pool)
            .await
            .map_err(StoreError::Db)?;
        let problems: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter(|line| line != "ok")
            .collect();
        Ok((!problems.is_empty()).then(|| problems.join("; ")))
    }

    /// Connections open and idle in the pool.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.inner.pool.size(), self.inner.pool.num_idle())
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn pg_role_bypasses_rls(&self) -> Result<bool> {
        let row = sqlx::query(
            "SELECT CASE WHEN rolsuper OR rolbypassrls THEN 1 ELSE 0 END::bigint AS b \
             FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(row.try_get::<i64, _>("b")? == 1)
    }

    /// Begin a transaction acting for `who`. `write` transactions take the SQLite
    /// writer turn up front.
    pub(crate) async fn begin(&self, who: Acting<'_>, write: bool) -> Result<Tx<'_>> {
        let guard = match (self.inner.backend, write) {
            (Backend::Sqlite, true) => Some(self.inner.write_lock.lock().await),
            _ => None,
        };
        // Write transactions on SQLite take the write lock at BEGIN: a deferred one that
        // reads first and then writes can fail outright (SQLITE_BUSY) instead of waiting.
        let tx = match (self.inner.backend, write) {
            (Backend::Sqlite, true) => self.inner.pool.begin_with("BEGIN IMMEDIATE").await?,
            _ => self.inner.pool.begin().await?,
        };
        let mut tx = Tx {
            tx,
            backend: self.inner.backend,
            role: match who {
                Acting::As(p) if p.is_admin() => "admin",
                Acting::As(_) => "user",
                Acting::System => "system",
            },
            teams: TeamSettings::default(),
            _writer: guard,
        };
        if tx.backend == Backend::Postgres {
            // A principal that is not a local user has no uid: row-level security then
            // shows it nothing until policies for its kind exist.
            let uid = match who {
                Acting::As(p) => p.local_user().unwrap_or_default(),
                Acting::System => "",
            };
            let role = tx.role;
            sqlx::query(
                "SELECT set_config('mosaic.uid', $1, true), set_config('mosaic.role', $2, true)",
            )
            .bind(uid)
            .bind(role)
            .execute(&mut *tx.tx)
            .await?;
            if !uid.is_empty() {
                let rows = sqlx::query("SELECT team_id, role FROM team_members WHERE user_id = $1")
                    .bind(uid)
                    .fetch_all(&mut *tx.tx)
                    .await?;
                for row in rows {
                    let team: String = row.try_get("team_id")?;
                    let role: String = row.try_get("role")?;
                    tx.teams.add(team, &role);
                }
            }
            tx.apply_teams().await?;
        }
        Ok(tx)
    }
}

/// A transaction with its acting principal applied (PostgreSQL settings for RLS).
pub(crate) struct Tx<'a> {
    pub tx: Transaction<'static, Any>,
    backend: Backend,
    /// The `mosaic.role` the transaction began with.
    role: &'static str,
    teams: TeamSettings,
    _writer: Option<MutexGuard<'a, ()>>,
}

/// The acting user's teams, as row-level security sees them.
#[derive(Default)]
struct TeamSettings {
    member: Vec<String>,
    managed: Vec<String>,
    owned: Vec<String>,
}

impl TeamSettings {
    fn add(&mut self, team: String, role: &str) {
        if matches!(role, "owner" | "admin") {
            self.managed.push(team.clone());
        }
        if role == "owner" {
            self.owned.push(team.clone());
        }
        self.member.push(team);
    }
}

impl Tx<'_> {
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// PostgreSQL: the acting user's teams, comma-separated (ids are UUIDs), as read
    /// when the transaction began.
    pub(crate) fn member_teams(&self) -> String {
        self.teams.member.join(",")
    }

    /// Statement text for this engine: `$n` placeholders become `?n` on SQLite.
    pub fn sql<'s>(&self, sql: &'s str) -> Cow<'s, str> {
        sql_for(self.backend, sql)
    }

    async fn apply_teams(&mut self) -> Result<()> {
        sqlx::query(
            "SELECT set_config('mosaic.teams', $1, true), \
             set_config('mosaic.teams_managed', $2, true), set_config('mosaic.teams_owned', $3, true)",
        )
        .bind(self.teams.member.join(","))
        .bind(self.teams.managed.join(","))
        .bind(self.teams.owned.join(","))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Tell row-level security that the acting user now owns `team_id` (after creating
    /// it), so the rest of the transaction may touch the team's rows.
    pub async fn joined_team(&mut self, team_id: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            self.teams.add(team_id.to_string(), "owner");
            self.apply_teams().await?;
        }
        Ok(())
    }

    /// Continue the transaction as the gateway itself, for the parts of an operation
    /// that must see rows beyond the principal's own (a deleted user's teams, the
    /// directory of usernames). Callers check the principal's rights first, and call
    /// [`Tx::end_system`] when done.
    pub async fn act_as_system(&mut self) -> Result<()> {
        self.set_role("system").await
    }

    /// Back to the principal the transaction began with.
    pub async fn end_system(&mut self) -> Result<()> {
        self.set_role(self.role).await
    }

    async fn set_role(&mut self, role: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT set_config('mosaic.role', $1, true)")
                .bind(role)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Serialise transactions that check an invariant across rows and then change one
    /// (the last admin, the last owner of a team, bootstrap). SQLite writers already
    /// take turns; on PostgreSQL this is a transaction-scoped advisory lock.
    pub async fn lock(&mut self, key: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(key)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub async fn fetch_optional<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Option<AnyRow>> {
        Ok(query.fetch_optional(&mut *self.tx).await?)
    }

    pub async fn fetch_all<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<AnyRow>> {
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    /// Run a statement; returns rows affected.
    pub async fn execute<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64> {
        Ok(query.execute(&mut *self.tx).await?.rows_affected())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Statement text for an engine: on SQLite each `$` followed by a digit (a `$n`
/// placeholder) outside a quoted string literal becomes `?`; every other `$` (a JSON
/// path, text inside quotes) stays.
pub(crate) fn sql_for(backend: Backend, sql: &str) -> Cow<'_, str> {
    match backend {
        Backend::Postgres => Cow::Borrowed(sql),
        Backend::Sqlite => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            // A doubled quote inside a literal toggles twice: still inside.
            let mut in_literal = false;
            while let Some(c) = chars.next() {
                if c == '\'' {
                    in_literal = !in_literal;
                }
                if c == '$' && !in_literal && chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Hide the passwords of a database URL: in its user info and in `password` or
/// `sslpassword` query parameters.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &base[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme + 3],
                    &creds[..colon],
                    &base[at..]
                ),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dollar_digit_placeholders_are_rewritten_for_sqlite() {
        let sql = "SELECT json_extract(x, '$.a'), '$' || $1, 'it''s US$5' FROM t WHERE a = $2 AND b = $10$";
        assert_eq!(
            sql_for(Backend::Sqlite, sql),
            "SELECT json_extract(x, '$.a'), '$' || ?1, 'it''s US$5' FROM t WHERE a = ?2 AND b = ?10$"
        );
        assert_eq!(sql_for(Backend::Postgres, sql), sql);
    }

    #[test]
    fn database_url_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://mosaic:s3cret@127.0.0.1:5432/db"),
            "postgres://mosaic:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=s3cret&sslpassword=k"),
            "postgres://u@h/db?sslmode=disable&password=***&sslpassword=***"
        );
    }
}
