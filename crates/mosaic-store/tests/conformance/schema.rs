//! The two migration sets (`migrations/sqlite`, `migrations/postgres`) describe one
//! schema: a fresh database of each engine has the same tables, with the same columns
//! (names, nullability, type family) and primary keys. What differs on purpose is
//! listed below, so a change to one set that forgets the other fails here.
//!
//! Needs PostgreSQL (`MOSAIC_TEST_POSTGRES_URL`); fails without it.

use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use sqlx::{Connection, PgConnection, Row, SqliteConnection};

use mosaic_test_support::OnEngine;

use crate::support::{Engine, TestDb};

/// One column as both engines can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    family: &'static str,
    nullable: bool,
    primary_key: bool,
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.family)?;
        if !self.nullable {
            f.write_str(" NOT NULL")?;
        }
        if self.primary_key {
            f.write_str(" PRIMARY KEY")?;
        }
        Ok(())
    }
}

type Schema = BTreeMap<String, BTreeMap<String, Column>>;

/// The type family of a declared SQLite type (its affinity, by SQLite's rules).
fn sqlite_family(declared: &str) -> &'static str {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        "integer"
    } else if t.contains("CHAR") || t.contains("TEXT") || t.contains("CLOB") {
        "text"
    } else if t.contains("BLOB") || t.is_empty() {
        "blob"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "real"
    } else {
        "numeric"
    }
}

/// The type family of a PostgreSQL type.
fn postgres_family(data_type: &str, udt: &str) -> &'static str {
    match data_type {
        "text" | "character varying" | "character" | "uuid" => "text",
        "bigint" | "integer" | "smallint" => "integer",
        "bytea" => "blob",
        "double precision" | "real" => "real",
        "numeric" => "numeric",
        "boolean" => "boolean",
        "USER-DEFINED" if udt == "vector" => "vector",
        "tsvector" => "tsvector",
        _ => "other",
    }
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    let mut schema = Schema::new();
    for table in tables {
        // Names come from sqlite_master, not from input.
        let rows = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let columns = rows
            .iter()
            .map(|r| {
                let primary_key = r.get::<i64, _>("pk") > 0;
                let column = Column {
                    family: sqlite_family(&r.get::<String, _>("type")),
                    // SQLite lets a non-integer primary key hold NULL unless it says
                    // NOT NULL; the store never writes one, so it counts as NOT NULL.
                    nullable: r.get::<i64, _>("notnull") == 0 && !primary_key,
                    primary_key,
                };
                (r.get::<String, _>("name"), column)
            })
            .collect();
        schema.insert(table, columns);
    }
    conn.close().await.unwrap();
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(
        "SELECT c.table_name::text AS t, c.column_name::text AS c, c.data_type::text AS ty, \
           c.udt_name::text AS udt, c.is_nullable::text AS nullable, \
           EXISTS (SELECT 1 FROM information_schema.table_constraints k \
             JOIN information_schema.key_column_usage u \
               ON u.constraint_name = k.constraint_name AND u.table_schema = k.table_schema \
             WHERE k.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema \
               AND k.table_name = c.table_name AND u.column_name = c.column_name) AS pk \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for r in rows {
        let column = Column {
            family: postgres_family(&r.get::<String, _>("ty"), &r.get::<String, _>("udt")),
            nullable: r.get::<String, _>("nullable") == "YES",
            primary_key: r.get("pk"),
        };
        schema
            .entry(r.get("t"))
            .or_default()
            .insert(r.get("c"), column);
    }
    conn.close().await.unwrap();
    schema
}

/// Every difference, one line each: a table or column only one engine has, or a
/// column the engines describe differently.
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for table in sqlite.keys().chain(postgres.keys()) {
        match (sqlite.get(table), postgres.get(table)) {
            (Some(_), None) => out.push(format!("table {table}: SQLite only")),
            (None, Some(_)) => out.push(format!("table {table}: PostgreSQL only")),
            (Some(s), Some(p)) => {
                for column in s.keys().chain(p.keys()) {
                    match (s.get(column), p.get(column)) {
                        (Some(_), None) => out.push(format!("{table}.{column}: SQLite only")),
                        (None, Some(_)) => out.push(format!("{table}.{column}: PostgreSQL only")),
                        (Some(a), Some(b)) if a != b => {
                            out.push(format!("{table}.{column}: SQLite {a}, PostgreSQL {b}"))
                        }
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_and_postgres_migrations_make_the_same_schema() {
    let sqlite = TestDb::open(Engine::Sqlite).await;
    let postgres = TestDb::open(Engine::Postgres).await;
    let found = differences(
        &sqlite_schema(&sqlite.url).await,
        &postgres_schema(&postgres.url).await,
    );
    assert_eq!(found, intended());
}

/// What differs on purpose: only how the searchable kinds are indexed.
fn intended() -> Vec<String> {
    let mut out = Vec::new();
    for t in ["memories", "notes", "tasks"] {
        out.extend([
            // Embeddings: raw little-endian f32 bytes on SQLite (the in-process index
            // reads them), pgvector on PostgreSQL (its HNSW index).
            format!("{t}.embedding: SQLite blob, PostgreSQL vector"),
            // SQLite: an integer rowid (`seq`) is the key the FTS5 index refers to, and
            // the id is UNIQUE instead; PostgreSQL keys by the id.
            format!("{t}.id: SQLite text NOT NULL, PostgreSQL text NOT NULL PRIMARY KEY"),
            format!("{t}.seq: SQLite only"),
            // Word search: an FTS5 table (and its shadow tables) on SQLite, a tsvector
            // table beside each kind on PostgreSQL (migration 0009).
            format!("table {t}_fts: SQLite only"),
            format!("table {t}_fts_config: SQLite only"),
            format!("table {t}_fts_data: SQLite only"),
            format!("table {t}_fts_docsize: SQLite only"),
            format!("table {t}_fts_idx: SQLite only"),
            format!("table {t}_words: PostgreSQL only"),
        ]);
    }
    out.sort();
    out
}
