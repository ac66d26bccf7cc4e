//! People in a store nobody uses yet, made the way a real gateway makes them: the first
//! admin (`root`) through a bootstrap token, then local users. For the tests of the
//! crates above the store.

use std::path::Path;

use mosaic_store::{BootstrapSource, NewUser, Principal, Store, StoreOptions};

/// A new local account's fields (the password hash is a placeholder: these tests never
/// log in).
pub fn new_user(username: &str, is_admin: bool) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: String::new(),
        password_hash: format!("hash-of-{username}"),
        is_admin,
    }
}

/// A fresh SQLite store, `file` in `dir`.
pub async fn sqlite_store(dir: &Path, file: &str) -> Store {
    Store::open(&StoreOptions::sqlite_file(&dir.join(file)))
        .await
        .expect("open a scratch SQLite store")
}

/// The first admin, and one user per name.
pub async fn people<const N: usize>(
    store: &Store,
    names: [&str; N],
) -> (Principal, [Principal; N]) {
    store
        .issue_bootstrap_token(
            BootstrapSource::Startup,
            "h",
            mosaic_store::now_ms() + 60_000,
        )
        .await
        .expect("issue a bootstrap token");
    let root = store
        .redeem_bootstrap("h", new_user("root", true))
        .await
        .expect("redeem the bootstrap token");
    let root = Principal::user(&root.id, true);
    let mut users = Vec::with_capacity(N);
    for name in names {
        let user = store
            .create_user(&root, new_user(name, false))
            .await
            .expect("create a user");
        users.push(Principal::user(&user.id, false));
    }
    let Ok(users) = users.try_into() else {
        unreachable!("one principal per name")
    };
    (root, users)
}
