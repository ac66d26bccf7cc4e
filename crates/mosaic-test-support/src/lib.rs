//! Shared test fixtures. [`engines!`] runs one test body on SQLite and on PostgreSQL
//! ([`engines`]). [`ScratchPostgres`] is a fresh PostgreSQL database owned by a
//! fresh ordinary LOGIN role, made through the superuser URL in
//! `MOSAIC_TEST_POSTGRES_URL` (`scripts/services.sh start-postgres` starts a server and
//! prints it). Code under test connects as that role, because a superuser would bypass
//! row-level security and hide bugs in it. Without the variable, tests fail loudly:
//! they never skip. With the `store` feature, [`people`] makes a scratch store's first
//! admin and users; with the `gateway` feature, [`gateway`] starts a gateway in-process
//! for the gateway's own test binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chat;
pub mod engines;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "store")]
pub mod people;
pub mod reasoning;
pub mod scripted;

pub use engines::{Engine, OnEngine};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

/// Where the superuser URL of the test PostgreSQL comes from.
pub const POSTGRES_URL_VAR: &str = "MOSAIC_TEST_POSTGRES_URL";

/// A PostgreSQL database and role of one test, dropped afterwards (kept when the test
/// failed, for a look at what it left behind).
pub struct ScratchPostgres {
    /// The URL to connect with, as the database's ordinary owner role.
    pub url: String,
    admin_url: String,
    name: String,
}

impl ScratchPostgres {
    /// Make the role and database; panics with instructions when no server is configured.
    pub async fn create() -> ScratchPostgres {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
        assert!(
            !admin_url.is_empty(),
            "{POSTGRES_URL_VAR} is not set: this test needs a real PostgreSQL server. \
             Start a throwaway one with\n\n    eval \"$(scripts/services.sh start-postgres)\"\n\n\
             and run the tests again (scripts/services.sh stop-postgres stops it), or run \
             scripts/test.sh, which does both."
        );
        let options: PgConnectOptions = admin_url
            .parse()
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a PostgreSQL URL: {e}"));
        let name = format!("mosaic_t_{}", uuid::Uuid::now_v7().simple());
        let password = uuid::Uuid::now_v7().simple().to_string();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect with {POSTGRES_URL_VAR}: {e}"));
        // Names are generated above (letters, digits, '_'), so formatting them in is safe.
        admin
            .execute(
                format!(
                    "CREATE ROLE {name} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS \
                     NOCREATEDB NOCREATEROLE"
                )
                .as_str(),
            )
            .await
            .expect("create the test role");
        admin
            .execute(format!("CREATE DATABASE {name} OWNER {name}").as_str())
            .await
            .expect("create the test database");
        admin.close().await.expect("close the admin connection");
        // pgvector is not a trusted extension: a superuser installs it, as an operator
        // would (the store's migration tells them to).
        let mut admin_db = PgConnection::connect_with(&options.clone().database(&name))
            .await
            .expect("connect to the test database as superuser");
        admin_db
            .execute("CREATE EXTENSION IF NOT EXISTS vector")
            .await
            .expect("install pgvector in the test database");
        admin_db.close().await.expect("close the admin connection");
        let url = format!(
            "postgres://{name}:{password}@{host}:{port}/{name}?sslmode=disable",
            host = options.get_host(),
            port = options.get_port(),
        );
        ScratchPostgres {
            url,
            admin_url,
            name,
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "keeping PostgreSQL database and role {} of the failed test",
                self.name
            );
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be single-threaded: clean up on
        // a thread with a runtime of its own.
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                for sql in [
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    format!("DROP ROLE IF EXISTS {name}"),
                ] {
                    admin
                        .execute(sql.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: cleanup panicked",
                self.name
            ),
        }
    }
}
