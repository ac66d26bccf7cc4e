//! Schema migrations, applied in order at start. Each migration exists once per engine
//! (their SQL dialects differ in types and in PostgreSQL's row-level security); the
//! version numbers are shared, so both engines always have the same logical schema.

use sqlx::Row;

use crate::db::Backend;
use crate::{now_ms, Result, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts",
        sqlite: include_str!("../migrations/sqlite/0001_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0001_accounts.sql"),
    },
    Migration {
        version: 2,
        name: "providers",
        sqlite: include_str!("../migrations/sqlite/0002_providers.sql"),
        postgres: include_str!("../migrations/postgres/0002_providers.sql"),
    },
    Migration {
        version: 3,
        name: "agents",
        sqlite: include_str!("../migrations/sqlite/0003_agents.sql"),
        postgres: include_str!("../migrations/postgres/0003_agents.sql"),
    },
    Migration {
        version: 4,
        name: "sessions",
        sqlite: include_str!("../migrations/sqlite/0004_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0004_sessions.sql"),
    },
    Migration {
        version: 5,
        name: "runs",
        sqlite: include_str!("../migrations/sqlite/0005_runs.sql"),
        postgres: include_str!("../migrations/postgres/0005_runs.sql"),
    },
    Migration {
        version: 6,
        name: "brain",
        sqlite: include_str!("../migrations/sqlite/0006_brain.sql"),
        postgres: include_str!("../migrations/postgres/0006_brain.sql"),
    },
    Migration {
        version: 7,
        name: "missions",
        sqlite: include_str!("../migrations/sqlite/0007_missions.sql"),
        postgres: include_str!("../migrations/postgres/0007_missions.sql"),
    },
    Migration {
        version: 8,
        name: "memories",
        sqlite: include_str!("../migrations/sqlite/0008_memories.sql"),
        postgres: include_str!("../migrations/postgres/0008_memories.sql"),
    },
    Migration {
        version: 9,
        name: "search_words",
        sqlite: include_str!("../migrations/sqlite/0009_search_words.sql"),
        postgres: include_str!("../migrations/postgres/0009_search_words.sql"),
    },
];

/// The first migration that needs pgvector on PostgreSQL.
const NEEDS_PGVECTOR: i64 = 8;

/// An arbitrary constant: the advisory lock that keeps replicas from migrating at once.
const PG_MIGRATION_LOCK: i64 = 0x6d6f_7361_6963;

pub(crate) async fn run(store: &Store) -> Result<()> {
    let backend = store.backend();
    let mut conn = store.pool().acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let int = match backend {
        Backend::Sqlite => "INTEGER",
        Backend::Postgres => "BIGINT",
    };
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version {int} PRIMARY KEY, \
         name TEXT NOT NULL, applied_at {int} NOT NULL)"
    ))
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<std::result::Result<_, _>>()?;
    let newest_known = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if let Some(&newest) = applied.last() {
        if newest > newest_known {
            return Err(StoreError::Invalid(format!(
                "the database has schema version {newest}, newer than this binary knows \
                 ({newest_known}); upgrade mosaic"
            )));
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        if backend == Backend::Postgres && m.version == NEEDS_PGVECTOR {
            check_pgvector(&mut tx).await?;
        }
        let script = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(script)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let insert = match backend {
            Backend::Sqlite => "INSERT INTO schema_migrations VALUES (?1, ?2, ?3)",
            Backend::Postgres => "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
        };
        sqlx::query(insert)
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}

/// pgvector must be installed in the database before the memories migration; an
/// ordinary role cannot install it (it is not a trusted extension), so say how.
async fn check_pgvector(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    let installed = sqlx::query("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if installed {
        return Ok(());
    }
    let available =
        sqlx::query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
    let database: String = sqlx::query("SELECT current_database()::text AS d")
        .fetch_one(&mut **tx)
        .await?
        .try_get("d")?;
    Err(StoreError::Invalid(if available {
        format!(
            "PostgreSQL database '{database}' needs the pgvector extension: as a superuser, \
             run `CREATE EXTENSION vector;` in it once, then start mosaic again"
        )
    } else {
        "this PostgreSQL server does not have pgvector (the `vector` extension), which \
         Mosaic needs for vector search: install pgvector 0.8 or newer on the server, run \
         `CREATE EXTENSION vector;` in the database as a superuser, then start mosaic again"
            .to_string()
    }))
}
