//! The engines a case runs against, and the fixtures every case needs.
//!
//! Each case is an `async fn(TestDb)`; `mosaic_test_support::engines!` turns a list of
//! cases into one test per case and engine (`<area>::sqlite::<case>`,
//! `<area>::postgres::<case>`), so the same body pins the same behaviour on both.
//!
//! SQLite gets a fresh file in a temporary directory. PostgreSQL gets a fresh database
//! owned by a fresh ordinary LOGIN role, made through the superuser URL in
//! `MOSAIC_TEST_POSTGRES_URL`; the store connects as that role, because a superuser
//! would bypass row-level security and hide bugs in it.

use mosaic_api::{Team, TeamRole, User};
use mosaic_store::BootstrapSource;
use mosaic_store::{NewUser, Principal, Store, StoreError, StoreOptions};
use mosaic_test_support::{OnEngine, ScratchPostgres};

pub use mosaic_test_support::Engine;

/// One store on a database of its own, removed when dropped.
pub struct TestDb {
    pub store: Store,
    pub engine: Engine,
    /// The URL the store was opened with (for PostgreSQL: the ordinary role's).
    pub url: String,
    // Dropped after the store: the SQLite file's directory, or the PostgreSQL database.
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<ScratchPostgres>,
}

impl OnEngine for TestDb {
    async fn open(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => TestDb::sqlite().await,
            Engine::Postgres => TestDb::postgres().await,
        }
    }
}

impl TestDb {
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
        let scratch = ScratchPostgres::create().await;
        let url = scratch.url.clone();
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
            .issue_bootstrap_token(
                BootstrapSource::Startup,
                "bootstrap-hash",
                mosaic_store::now_ms() + 3_600_000,
            )
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

    /// The team "crew" of `owner`, with the user "bob" as a plain member.
    pub async fn crew(&self, owner: &Principal) -> Team {
        let team = self.store.create_team(owner, "crew").await.unwrap();
        self.store
            .put_team_member(owner, &team.id, "bob", TeamRole::Member)
            .await
            .unwrap();
        team
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
    Corrupt,
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
        Err(StoreError::Corrupt(_)) => Kind::Corrupt,
        Err(e) => panic!("expected a domain error, got {e:?}"),
    }
}
