//! The engines a case runs against, and the fixtures every case needs.
//!
//! Each case is an `async fn(TestDb)`; [`engines!`] turns a list of cases into one test
//! per case and engine (`<area>::sqlite::<case>`, `<area>::postgres::<case>`), so the
//! same body pins the same behaviour on both.
//!
//! SQLite gets a fresh file in a temporary directory. PostgreSQL gets a fresh database
//! owned by a fresh ordinary LOGIN role, made through the superuser URL in
//! `MOSAIC_TEST_POSTGRES_URL`; the store connects as that role, because a superuser
//! would bypass row-level security and hide bugs in it.

use mosaic_api::User;
use mosaic_store::{NewUser, Principal, Store, StoreError, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

/// Where the superuser URL of the test PostgreSQL comes from.
pub const POSTGRES_URL_VAR: &str = "MOSAIC_TEST_POSTGRES_URL";

/// The engine a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// One store on a database of its own, removed when dropped.
pub struct TestDb {
    pub store: Store,
    pub engine: Engine,
    /// The URL the store was opened with (for PostgreSQL: the ordinary role's).
    pub url: String,
    // Dropped after the store: the SQLite file's directory, or the PostgreSQL database.
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<PgScratch>,
}

impl TestDb {
    pub async fn open(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => TestDb::sqlite().await,
            Engine::Postgres => TestDb::postgres().await,
        }
    }

    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = StoreOptions::sqlite_file(&dir.path().join("mosaic.db"));
        let store = Store::open(&options).await.expect("open the SQLite store");
        TestDb {
            store,
            engine: Engine::Sqlite,
            url: options.url,
            _sqlite_dir: Some(dir),
            _postgres: None,
        }
    }

    async fn postgres() -> TestDb {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
        assert!(
            !admin_url.is_empty(),
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the storage conformance \
             suite needs a real server. Start a throwaway one with\n\n    \
             eval \"$(scripts/services.sh start-postgres)\"\n\nand run the tests again \
             (scripts/services.sh stop-postgres stops it)."
        );
        let options: PgConnectOptions = admin_url
            .parse()
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a PostgreSQL URL: {e}"));
        let scratch = PgScratch {
            admin_url: admin_url.clone(),
            name: format!("mosaic_t_{}", uuid::Uuid::now_v7().simple()),
        };
        let password = uuid::Uuid::now_v7().simple().to_string();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect with {POSTGRES_URL_VAR}: {e}"));
        // Names are generated above (letters, digits, '_'), so formatting them in is safe.
        admin
            .execute(
                format!(
                    "CREATE ROLE {0} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS \
                     NOCREATEDB NOCREATEROLE",
                    scratch.name
                )
                .as_str(),
            )
            .await
            .expect("create the test role");
        admin
            .execute(format!("CREATE DATABASE {0} OWNER {0}", scratch.name).as_str())
            .await
            .expect("create the test database");
        admin.close().await.expect("close the admin connection");

        let url = format!(
            "postgres://{name}:{password}@{host}:{port}/{name}?sslmode=disable",
            name = scratch.name,
            host = options.get_host(),
            port = options.get_port(),
        );
        let store = Store::open(&StoreOptions::new(&url))
            .await
            .expect("open the PostgreSQL store as the test role");
        TestDb {
            store,
            engine: Engine::Postgres,
            url,
            _sqlite_dir: None,
            _postgres: Some(scratch),
        }
    }

    /// The first admin, made the way a gateway makes it: through a bootstrap token.
    pub async fn first_admin(&self, username: &str) -> (User, Principal) {
        self.store
            .issue_bootstrap_token("bootstrap-hash", mosaic_store::now_ms() + 3_600_000)
            .await
            .expect("issue a bootstrap token");
        let user = self
            .store
            .redeem_bootstrap("bootstrap-hash", new_user(username, false))
            .await
            .expect("redeem the bootstrap token");
        let p = principal(&user);
        (user, p)
    }

    /// A user created by `admin`.
    pub async fn user(&self, admin: &Principal, username: &str) -> (User, Principal) {
        let user = self
            .store
            .create_user(admin, new_user(username, false))
            .await
            .expect("create a user");
        let p = principal(&user);
        (user, p)
    }

    /// An admin, and ordinary users with the given names.
    pub async fn admin_and_users<const N: usize>(
        &self,
        names: [&str; N],
    ) -> (Principal, [(User, Principal); N]) {
        let (_, admin) = self.first_admin("root").await;
        let mut users = Vec::with_capacity(N);
        for name in names {
            users.push(self.user(&admin, name).await);
        }
        let users: [(User, Principal); N] = users
            .try_into()
            .unwrap_or_else(|_| unreachable!("one user per name"));
        (admin, users)
    }
}

/// A new user with a placeholder password hash (the store never looks inside it).
pub fn new_user(username: &str, is_admin: bool) -> NewUser {
    NewUser {
        username: username.to_string(),
        display_name: String::new(),
        password_hash: format!("hash-of-{username}"),
        is_admin,
    }
}

/// The principal a gateway would make for this user.
pub fn principal(user: &User) -> Principal {
    Principal::user(&user.id, user.is_admin)
}

/// The error kind, for comparing results without comparing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Forbidden,
    Conflict,
    Invalid,
}

/// Unwrap the error of a result that must have failed, and name its kind.
#[track_caller]
pub fn err_kind<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Kind {
    match result {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(StoreError::NotFound) => Kind::NotFound,
        Err(StoreError::Forbidden(_)) => Kind::Forbidden,
        Err(StoreError::Conflict(_)) => Kind::Conflict,
        Err(StoreError::Invalid(_)) => Kind::Invalid,
        Err(e) => panic!("expected a domain error, got {e:?}"),
    }
}

/// A PostgreSQL database and role of one test, dropped afterwards (kept when the test
/// failed, for a look at what it left behind).
struct PgScratch {
    admin_url: String,
    name: String,
}

impl Drop for PgScratch {
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

/// One `#[tokio::test]` per case and engine: `mod sqlite { fn case }` and
/// `mod postgres { fn case }`, each calling the case with a fresh [`TestDb`].
macro_rules! engines {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(
                        $crate::support::TestDb::open($crate::support::Engine::Sqlite).await,
                    )
                    .await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(
                        $crate::support::TestDb::open($crate::support::Engine::Postgres).await,
                    )
                    .await
                }
            )+
        }
    };
}

/// Like [`engines!`], for cases about PostgreSQL alone (row-level security).
macro_rules! postgres_only {
    ($($case:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(
                        $crate::support::TestDb::open($crate::support::Engine::Postgres).await,
                    )
                    .await
                }
            )+
        }
    };
}
