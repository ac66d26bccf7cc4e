//! PostgreSQL's second wall: row-level security. These cases go around the store and
//! query the tables directly as the store's own (ordinary) role, with the session
//! settings the store sets for a principal (`mosaic.uid`, `mosaic.role`,
//! `mosaic.teams`), and show that the database itself hides other users' rows even
//! from a query that forgets to scope them.

use mosaic_api::{PageQuery, Scope, TeamRole};
use mosaic_store::{now_ms, NewApiToken, NewWebSession, Principal};
use pretty_assertions::assert_eq;
use serde_json::json;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::support::{Engine, TestDb};

postgres_only!(
    row_level_security_hides_other_users_rows_from_unscoped_queries,
    row_level_security_refuses_writes_to_other_users_rows,
    without_session_settings_no_rows_are_visible,
    row_level_security_holds_team_members_and_users_to_their_role,
);

/// What each table shows, as sorted keys, for one query of every table.
#[derive(Debug, PartialEq, Eq)]
struct Visible {
    users: Vec<String>,
    api_tokens: Vec<String>,
    web_sessions: Vec<String>,
    bootstrap_tokens: Vec<String>,
    teams: Vec<String>,
    team_members: Vec<String>,
    workspaces: Vec<String>,
    preferences: Vec<String>,
}

async fn keys(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    let mut keys: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    keys.sort();
    keys
}

/// Every row of every table the connection can see; no `WHERE` anywhere.
async fn visible(conn: &mut PgConnection) -> Visible {
    Visible {
        users: keys(conn, "SELECT id FROM users").await,
        api_tokens: keys(conn, "SELECT id FROM api_tokens").await,
        web_sessions: keys(conn, "SELECT id FROM web_sessions").await,
        bootstrap_tokens: keys(conn, "SELECT id FROM bootstrap_tokens").await,
        teams: keys(conn, "SELECT id FROM teams").await,
        team_members: keys(conn, "SELECT team_id || '/' || user_id FROM team_members").await,
        workspaces: keys(conn, "SELECT id FROM workspaces").await,
        preferences: keys(conn, "SELECT user_id || '/' || key FROM preferences").await,
    }
}

/// A transaction with the settings `Store::begin` makes for a principal.
async fn acting_as<'c>(
    conn: &'c mut PgConnection,
    p: &Principal,
    teams: &[&str],
) -> Transaction<'c, Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('mosaic.uid', $1, true), set_config('mosaic.role', $2, true), \
         set_config('mosaic.teams', $3, true)",
    )
    .bind(p.user_id())
    .bind(if p.is_admin() { "admin" } else { "user" })
    .bind(teams.join(","))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

/// Like [`acting_as`], with the team-role settings `Store::begin` also makes.
async fn acting_with_roles<'c>(
    conn: &'c mut PgConnection,
    p: &Principal,
    member: &[&str],
    managed: &[&str],
    owned: &[&str],
) -> Transaction<'c, Postgres> {
    let mut tx = acting_as(conn, p, member).await;
    sqlx::query(
        "SELECT set_config('mosaic.teams_managed', $1, true), \
         set_config('mosaic.teams_owned', $2, true)",
    )
    .bind(managed.join(","))
    .bind(owned.join(","))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

/// The store's role, connected directly; it must not be able to bypass RLS.
async fn connect_as_store_role(db: &TestDb) -> PgConnection {
    assert_eq!(db.engine, Engine::Postgres);
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let bypasses: bool = sqlx::query_scalar(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        !bypasses,
        "the test role must be subject to row-level security"
    );
    conn
}

/// Alice: a personal workspace, a token, a web session, a preference, and a team
/// (with Carol in it) that owns a workspace. Bob: the same, minus the team.
struct World {
    alice: Principal,
    bob: Principal,
    carol: Principal,
    team_id: String,
    bob_rows: Visible,
}

async fn world(db: &TestDb) -> World {
    let (_, [(_, alice), (_, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let mut bob_rows = Visible {
        users: vec![bob.user_id().to_string()],
        api_tokens: vec![],
        web_sessions: vec![],
        bootstrap_tokens: vec![],
        teams: vec![],
        team_members: vec![],
        workspaces: vec![],
        preferences: vec![format!("{}/theme", bob.user_id())],
    };
    for (p, name) in [(&alice, "alice"), (&bob, "bob")] {
        let ws = db
            .store
            .create_workspace(p, &format!("{name}'s"), "", None)
            .await
            .unwrap();
        let token = db
            .store
            .create_api_token(
                p,
                NewApiToken {
                    name: "cli".into(),
                    token_hash: format!("token-hash-{name}"),
                    prefix: "msk_".into(),
                    scopes: vec![Scope::Read],
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        let session = db
            .store
            .create_web_session(
                p,
                NewWebSession {
                    token_hash: format!("session-hash-{name}"),
                    csrf_token: "csrf".into(),
                    expires_at: now_ms() + 3_600_000,
                },
            )
            .await
            .unwrap();
        db.store
            .set_preference(p, "theme", &json!("dark"))
            .await
            .unwrap();
        if name == "bob" {
            bob_rows.workspaces.push(ws.id);
            bob_rows.api_tokens.push(token.id);
            bob_rows.web_sessions.push(session);
        }
    }
    let team = db.store.create_team(&alice, "crew").await.unwrap();
    db.store
        .put_team_member(&alice, &team.id, "carol", TeamRole::Member)
        .await
        .unwrap();
    db.store
        .create_workspace(&alice, "crew's", "", Some(&team.id))
        .await
        .unwrap();
    World {
        alice,
        bob,
        carol,
        team_id: team.id,
        bob_rows,
    }
}

async fn row_level_security_hides_other_users_rows_from_unscoped_queries(db: TestDb) {
    let w = world(&db).await;
    let mut conn = connect_as_store_role(&db).await;

    // Bob sees his own rows and nothing of Alice's (nor Carol's).
    let mut tx = acting_as(&mut conn, &w.bob, &[]).await;
    assert_eq!(visible(&mut tx).await, w.bob_rows);
    tx.rollback().await.unwrap();

    // Carol, in Alice's team, sees the team, its members and its workspace, but not
    // Alice's personal workspace, tokens, sessions or preferences.
    let carols_workspaces: Vec<String> = db
        .store
        .list_workspaces(&w.carol, &PageQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|ws| ws.id)
        .collect();
    assert_eq!(carols_workspaces.len(), 1);
    let mut team_members = vec![
        format!("{}/{}", w.team_id, w.alice.user_id()),
        format!("{}/{}", w.team_id, w.carol.user_id()),
    ];
    team_members.sort();
    let mut teammates = vec![w.alice.user_id().to_string(), w.carol.user_id().to_string()];
    teammates.sort();
    let mut tx = acting_as(&mut conn, &w.carol, &[&w.team_id]).await;
    assert_eq!(
        visible(&mut tx).await,
        Visible {
            users: teammates,
            api_tokens: vec![],
            web_sessions: vec![],
            bootstrap_tokens: vec![],
            teams: vec![w.team_id.clone()],
            team_members,
            workspaces: carols_workspaces,
            preferences: vec![],
        }
    );
    tx.rollback().await.unwrap();

    conn.close().await.unwrap();
}

async fn row_level_security_refuses_writes_to_other_users_rows(db: TestDb) {
    let w = world(&db).await;
    let mut conn = connect_as_store_role(&db).await;
    let mut tx = acting_as(&mut conn, &w.bob, &[]).await;

    for sql in [
        "UPDATE workspaces SET name = 'pwned'",
        "UPDATE users SET display_name = 'pwned' WHERE id <> mosaic_uid()",
        "DELETE FROM api_tokens WHERE user_id <> mosaic_uid()",
        "DELETE FROM web_sessions WHERE user_id <> mosaic_uid()",
        "DELETE FROM preferences WHERE user_id <> mosaic_uid()",
        "DELETE FROM teams",
        "DELETE FROM team_members",
    ] {
        let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
        let expected = if sql.starts_with("UPDATE workspaces") {
            1 // Bob's own workspace, and only it
        } else {
            0
        };
        assert_eq!(done.rows_affected(), expected, "{sql}");
    }

    // Nor can Bob create rows in Alice's name.
    let insert = sqlx::query(
        "INSERT INTO workspaces (id, name, description, owner_user_id, created_at, updated_at) \
         VALUES ('forged', 'forged', '', $1, 0, 0)",
    )
    .bind(w.alice.user_id())
    .execute(&mut *tx)
    .await;
    let err = insert.expect_err("a row owned by someone else is refused");
    assert!(
        err.to_string().contains("row-level security"),
        "unexpected error: {err}"
    );
    tx.rollback().await.unwrap();

    // Alice's rows are all still there, unchanged.
    let mut tx = acting_as(&mut conn, &w.alice, &[&w.team_id]).await;
    let names: Vec<String> = keys(&mut tx, "SELECT name FROM workspaces").await;
    assert_eq!(names, vec!["alice's".to_string(), "crew's".to_string()]);
    tx.rollback().await.unwrap();
    conn.close().await.unwrap();
}

async fn without_session_settings_no_rows_are_visible(db: TestDb) {
    let w = world(&db).await;
    let mut conn = connect_as_store_role(&db).await;
    let empty = Visible {
        users: vec![],
        api_tokens: vec![],
        web_sessions: vec![],
        bootstrap_tokens: vec![],
        teams: vec![],
        team_members: vec![],
        workspaces: vec![],
        preferences: vec![],
    };
    assert_eq!(visible(&mut conn).await, empty);
    // Nor after a transaction that set them has ended: the settings are local to it.
    let tx = acting_as(&mut conn, &w.bob, &[]).await;
    tx.commit().await.unwrap();
    assert_eq!(visible(&mut conn).await, empty);
    conn.close().await.unwrap();
}

async fn row_level_security_holds_team_members_and_users_to_their_role(db: TestDb) {
    let w = world(&db).await;
    let mut conn = connect_as_store_role(&db).await;
    let team = w.team_id.as_str();

    // Carol is a plain member of Alice's team: she sees it, she cannot run it.
    let mut tx = acting_with_roles(&mut conn, &w.carol, &[team], &[], &[]).await;
    for sql in [
        "DELETE FROM users WHERE id <> mosaic_uid()",
        "UPDATE teams SET name = 'pwned'",
        "DELETE FROM teams",
        "UPDATE team_members SET role = 'owner'",
        "DELETE FROM team_members WHERE user_id <> mosaic_uid()",
        "UPDATE workspaces SET name = 'pwned'",
        "DELETE FROM workspaces",
    ] {
        let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    // Nor can she make herself an admin.
    let promoted = sqlx::query("UPDATE users SET is_admin = 1 WHERE id = mosaic_uid()")
        .execute(&mut *tx)
        .await;
    assert!(promoted.is_err(), "a user made themselves admin");
    tx.rollback().await.unwrap();

    // Bob, an outsider, cannot join the team, even naming himself.
    let mut tx = acting_with_roles(&mut conn, &w.bob, &[], &[], &[]).await;
    let joined = sqlx::query(
        "INSERT INTO team_members (team_id, user_id, role, added_at) VALUES ($1, mosaic_uid(), 'owner', 0)",
    )
    .bind(team)
    .execute(&mut *tx)
    .await;
    let err = joined.expect_err("an outsider joined a team");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Alice, the owner, can do all of it.
    let mut tx = acting_with_roles(&mut conn, &w.alice, &[team], &[team], &[team]).await;
    let renamed = sqlx::query("UPDATE teams SET name = 'renamed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 1);
    let ws = sqlx::query("UPDATE workspaces SET name = 'renamed' WHERE owner_team_id = $1")
        .bind(team)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(ws.rows_affected(), 1);
    tx.rollback().await.unwrap();
    conn.close().await.unwrap();
}
