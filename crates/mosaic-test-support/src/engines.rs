//! Running one test body on both engines. A case is an `async fn(fixture)` whose
//! fixture type implements [`OnEngine`] (opens itself on a fresh database of the engine
//! it is given); [`engines!`](crate::engines) turns a list of cases into one
//! `#[tokio::test]` per case and engine, so the same body pins the same behaviour on
//! SQLite and on PostgreSQL.

use std::future::Future;

/// The database engine a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A test fixture that can be opened on a fresh database of either engine (a store, a
/// gateway…). Opening on PostgreSQL fails loudly when no server is configured (see
/// [`ScratchPostgres`](crate::ScratchPostgres)).
pub trait OnEngine: Sized {
    fn open(engine: Engine) -> impl Future<Output = Self>;
}

/// The fixture a case takes, opened on `engine` (its type is inferred from the case).
#[doc(hidden)]
pub async fn open<F: OnEngine>(engine: Engine) -> F {
    F::open(engine).await
}

/// One test per case and engine: `mod sqlite { async fn case }` and
/// `mod postgres { async fn case }`, each calling `super::case` with a fixture freshly
/// opened on that engine. Tests are named `<module>::sqlite::<case>` and
/// `<module>::postgres::<case>`.
///
/// ```ignore
/// use mosaic_test_support::engines;
///
/// engines!(a_user_sees_their_own_rows, other_users_rows_are_not_found);
///
/// async fn a_user_sees_their_own_rows(db: TestDb) { /* … */ }
/// async fn other_users_rows_are_not_found(db: TestDb) { /* … */ }
/// ```
///
/// Every case of one invocation may take a different fixture type, as long as each
/// implements [`OnEngine`]. The calling crate needs `tokio` (with the `macros` and
/// multi-threaded runtime features) among its dev-dependencies.
#[macro_export]
macro_rules! engines {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::engines::open($crate::Engine::Sqlite).await).await
                }
            )+
        }
        $crate::postgres_only!($($case),+);
    };
}

/// Like [`engines!`](crate::engines), for cases about PostgreSQL alone (row-level
/// security, say): only the `postgres` module.
#[macro_export]
macro_rules! postgres_only {
    ($($case:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::engines::open($crate::Engine::Postgres).await).await
                }
            )+
        }
    };
}
