//! PostgreSQL's second wall: row-level security. These cases go around the store and
//! query the tables directly as the store's own (ordinary) role, with the session
//! settings the store sets for a principal (`mosaic.uid`, `mosaic.role`,
//! `mosaic.teams`), and show that the database itself hides other users' rows even
//! from a query that forgets to scope them.

use mosaic_api::{ConfigScope, PageQuery, ProviderKind, RouteStep, Scope, TeamRole, WireApi};
use mosaic_store::{now_ms, NewApiToken, NewProvider, NewWebSession, Principal};
use mosaic_test_support::postgres_only;
use pretty_assertions::assert_eq;
use serde_json::json;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::brain::row_level_security_guards_brain_rows;
use crate::memories::row_level_security_guards_memories;
use crate::runs::row_level_security_hides_other_users_runs_and_queues;
use crate::support::{Engine, TestDb};

postgres_only!(
    row_level_security_hides_other_users_rows_from_unscoped_queries,
    row_level_security_refuses_writes_to_other_users_rows,
    without_session_settings_no_rows_are_visible,
    row_level_security_holds_team_members_and_users_to_their_role,
    row_level_security_shares_gateway_config_read_only_and_hides_users_own,
    row_level_security_hides_other_users_runs_and_queues,
    row_level_security_guards_brain_rows,
    row_level_security_guards_memories,
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
pub(crate) async fn acting_as<'c>(
    conn: &'c mut PgConnection,
    p: &Principal,
    teams: &[&str],
) -> Transaction<'c, Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('mosaic.uid', $1, true), set_config('mosaic.role', $2, true), \
         set_config('mosaic.teams', $3, true)",
    )
    .bind(p.local_user().unwrap())
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
pub(crate) async fn connect_as_store_role(db: &TestDb) -> PgConnection {
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
        users: vec![bob.local_user().unwrap().to_string()],
        api_tokens: vec![],
        web_sessions: vec![],
        bootstrap_tokens: vec![],
        teams: vec![],
        team_members: vec![],
        workspaces: vec![],
        preferences: vec![format!("{}/theme", bob.local_user().unwrap())],
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
        format!("{}/{}", w.team_id, w.alice.local_user().unwrap()),
        format!("{}/{}", w.team_id, w.carol.local_user().unwrap()),
    ];
    team_members.sort();
    let mut teammates = vec![
        w.alice.local_user().unwrap().to_string(),
        w.carol.local_user().unwrap().to_string(),
    ];
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
    .bind(w.alice.local_user().unwrap())
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

async fn row_level_security_shares_gateway_config_read_only_and_hides_users_own(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let provider = |scope, name: &str| NewProvider {
        scope,
        name: name.to_string(),
        kind: ProviderKind::Openai,
        wire: WireApi::ChatCompletions,
        base_url: "https://api.openai.com/v1".into(),
        api_key_enc: Some(format!("enc:{name}")),
    };
    let steps = [RouteStep {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        timeout_ms: 60_000,
        idle_timeout_ms: None,
    }];
    let gw_provider = db
        .store
        .create_provider(&admin, provider(ConfigScope::Gateway, "shared"))
        .await
        .unwrap();
    let gw_route = db
        .store
        .set_route(&admin, ConfigScope::Gateway, "shared", &steps)
        .await
        .unwrap();
    let mut own = Vec::new();
    for (p, name) in [(&alice, "alices"), (&bob, "bobs"), (&admin, "admins")] {
        let pr = db
            .store
            .create_provider(p, provider(ConfigScope::User, name))
            .await
            .unwrap();
        let rt = db
            .store
            .set_route(p, ConfigScope::User, name, &steps)
            .await
            .unwrap();
        db.store
            .record_usage(p, name, "gpt-4o", 1, 2, 3)
            .await
            .unwrap();
        own.push((p.local_user().unwrap().to_string(), pr.id, rt.id));
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    let mut conn = connect_as_store_role(&db).await;

    // Bob sees the gateway's rows and his own, nothing of Alice's or the admin's.
    let mut tx = acting_as(&mut conn, &bob, &[]).await;
    assert_eq!(
        keys(&mut tx, "SELECT id FROM providers").await,
        sorted(vec![gw_provider.id.clone(), own[1].1.clone()])
    );
    assert_eq!(
        keys(&mut tx, "SELECT id FROM routes").await,
        sorted(vec![gw_route.id.clone(), own[1].2.clone()])
    );
    assert_eq!(
        keys(
            &mut tx,
            "SELECT user_id || '/' || provider FROM usage_daily"
        )
        .await,
        vec![format!("{}/bobs", bob.local_user().unwrap())]
    );
    // The gateway's rows are read-only to him, and the others' are not there to change.
    for sql in [
        "UPDATE providers SET base_url = 'http://evil.example' WHERE owner_user_id IS NULL",
        "UPDATE providers SET api_key_enc = NULL WHERE owner_user_id IS NULL",
        "DELETE FROM providers WHERE owner_user_id IS NULL",
        "UPDATE routes SET steps = '[]' WHERE owner_user_id IS NULL",
        "DELETE FROM routes WHERE owner_user_id IS NULL",
        "UPDATE providers SET base_url = 'http://evil.example' WHERE owner_user_id <> mosaic_uid()",
        "DELETE FROM providers WHERE owner_user_id <> mosaic_uid()",
        "UPDATE routes SET steps = '[]' WHERE owner_user_id <> mosaic_uid()",
        "DELETE FROM routes WHERE owner_user_id <> mosaic_uid()",
        "UPDATE usage_daily SET requests = 0 WHERE user_id <> mosaic_uid()",
        "DELETE FROM usage_daily WHERE user_id <> mosaic_uid()",
    ] {
        let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    // His own rows he may change.
    let done = sqlx::query("UPDATE providers SET base_url = 'http://mine.example'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    tx.rollback().await.unwrap();

    // Nor can he make gateway rows, or rows in Alice's name, or turn his own into either.
    let alice_id = alice.local_user().unwrap().to_string();
    for (sql, bind) in [
        (
            "INSERT INTO providers (id, owner_user_id, name, kind, wire, base_url, created_at, \
             updated_at) VALUES ('forged', $1, 'forged', 'openai', 'chat_completions', 'x', 0, 0)",
            None,
        ),
        (
            "INSERT INTO providers (id, owner_user_id, name, kind, wire, base_url, created_at, \
             updated_at) VALUES ('forged', $1, 'forged', 'openai', 'chat_completions', 'x', 0, 0)",
            Some(alice_id.as_str()),
        ),
        (
            "INSERT INTO routes (id, owner_user_id, name, steps, created_at, updated_at) \
             VALUES ('forged', $1, 'forged', '[]', 0, 0)",
            None,
        ),
        (
            "INSERT INTO routes (id, owner_user_id, name, steps, created_at, updated_at) \
             VALUES ('forged', $1, 'forged', '[]', 0, 0)",
            Some(alice_id.as_str()),
        ),
        (
            "INSERT INTO usage_daily (user_id, day, provider, model, requests, input_tokens, \
             output_tokens, cached_tokens) VALUES ($1, '2024-01-01', 'p', 'm', 1, 1, 1, 1)",
            Some(alice_id.as_str()),
        ),
        ("UPDATE providers SET owner_user_id = $1", None),
        (
            "UPDATE providers SET owner_user_id = $1",
            Some(alice_id.as_str()),
        ),
        ("UPDATE routes SET owner_user_id = $1", None),
        (
            "UPDATE routes SET owner_user_id = $1",
            Some(alice_id.as_str()),
        ),
        (
            "UPDATE usage_daily SET user_id = $1",
            Some(alice_id.as_str()),
        ),
    ] {
        let mut tx = acting_as(&mut conn, &bob, &[]).await;
        let err = sqlx::query(sql)
            .bind(bind)
            .execute(&mut *tx)
            .await
            .expect_err(sql);
        assert!(
            err.to_string().contains("row-level security"),
            "{sql}: {err}"
        );
        tx.rollback().await.unwrap();
    }

    // The admin manages the gateway's rows, and still sees no user's own.
    let mut tx = acting_as(&mut conn, &admin, &[]).await;
    assert_eq!(
        keys(&mut tx, "SELECT id FROM providers").await,
        sorted(vec![gw_provider.id.clone(), own[2].1.clone()])
    );
    assert_eq!(
        keys(&mut tx, "SELECT id FROM routes").await,
        sorted(vec![gw_route.id.clone(), own[2].2.clone()])
    );
    assert_eq!(
        keys(
            &mut tx,
            "SELECT user_id || '/' || provider FROM usage_daily"
        )
        .await,
        vec![format!("{}/admins", admin.local_user().unwrap())]
    );
    for sql in [
        "UPDATE providers SET base_url = 'http://moved.example' WHERE owner_user_id IS NULL",
        "UPDATE routes SET steps = '[]' WHERE owner_user_id IS NULL",
    ] {
        let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }
    for sql in [
        "DELETE FROM providers WHERE owner_user_id <> mosaic_uid()",
        "DELETE FROM routes WHERE owner_user_id <> mosaic_uid()",
        "DELETE FROM usage_daily WHERE user_id <> mosaic_uid()",
    ] {
        let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    tx.rollback().await.unwrap();
    conn.close().await.unwrap();

    // Everything is as it was.
    assert_eq!(
        db.store.get_provider(&bob, &gw_provider.id).await.unwrap(),
        gw_provider
    );
    assert_eq!(
        db.store.get_route(&bob, &gw_route.id).await.unwrap(),
        gw_route
    );
    for (p, (_, provider_id, route_id)) in [&alice, &bob, &admin].into_iter().zip(&own) {
        db.store.get_provider(p, provider_id).await.unwrap();
        db.store.get_route(p, route_id).await.unwrap();
        let rows = db
            .store
            .usage_report(p, "2000-01-01", "2999-12-31")
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].requests, 1);
    }
}
