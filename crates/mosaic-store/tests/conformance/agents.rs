//! Agents: each user's own, a `default` one always there.

use mosaic_api::{AgentTool, ToolPolicy};
use mosaic_store::{AgentChanges, NewAgent};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    every_user_gets_one_default_agent_even_when_asking_at_once,
    agents_are_created_changed_and_deleted_by_their_owner_only,
    the_default_agent_keeps_its_name_and_cannot_be_deleted,
);

fn agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        description: String::new(),
        system_prompt: "be brief".into(),
        route: "default".into(),
        tools: vec![AgentTool {
            name: "current_time".into(),
            policy: ToolPolicy::Allowed,
        }],
        limits: Default::default(),
    }
}

async fn every_user_gets_one_default_agent_even_when_asking_at_once(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let (a, b, c) = tokio::join!(
        db.store.list_agents(&alice),
        db.store.list_agents(&alice),
        db.store.list_agents(&alice)
    );
    for list in [a, b, c] {
        let names: Vec<String> = list.unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, vec!["default".to_string()]);
    }
}

async fn agents_are_created_changed_and_deleted_by_their_owner_only(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let made = db.store.create_agent(&alice, agent("coder")).await.unwrap();
    assert_eq!(db.store.get_agent(&alice, &made.id).await.unwrap(), made);
    assert_eq!(
        err_kind(db.store.create_agent(&alice, agent("coder")).await),
        Kind::Conflict
    );
    // Bob may use the same name; Alice's agent is not there for him.
    db.store.create_agent(&bob, agent("coder")).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_agent(&bob, &made.id).await),
        Kind::NotFound
    );
    let changes = AgentChanges {
        route: Some("openai/gpt-4o".into()),
        ..AgentChanges::default()
    };
    assert_eq!(
        err_kind(db.store.update_agent(&bob, &made.id, changes.clone()).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_agent(&bob, &made.id).await),
        Kind::NotFound
    );
    let changed = db
        .store
        .update_agent(&alice, &made.id, changes)
        .await
        .unwrap();
    assert_eq!(changed.route, "openai/gpt-4o");
    assert_eq!(changed.tools, made.tools);
    let bad = AgentChanges {
        tools: Some(vec![
            AgentTool {
                name: "x".into(),
                policy: ToolPolicy::Allowed,
            },
            AgentTool {
                name: "x".into(),
                policy: ToolPolicy::Denied,
            },
        ]),
        ..AgentChanges::default()
    };
    assert_eq!(
        err_kind(db.store.update_agent(&alice, &made.id, bad).await),
        Kind::Invalid
    );
    db.store.delete_agent(&alice, &made.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_agent(&alice, &made.id).await),
        Kind::NotFound
    );
}

async fn the_default_agent_keeps_its_name_and_cannot_be_deleted(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let default = db.store.agent_by_name(&alice, "default").await.unwrap();
    assert_eq!(
        err_kind(db.store.delete_agent(&alice, &default.id).await),
        Kind::Conflict
    );
    let rename = AgentChanges {
        name: Some("other".into()),
        ..AgentChanges::default()
    };
    assert_eq!(
        err_kind(db.store.update_agent(&alice, &default.id, rename).await),
        Kind::Conflict
    );
    let reprompt = AgentChanges {
        system_prompt: Some("You are terse.".into()),
        ..AgentChanges::default()
    };
    let changed = db
        .store
        .update_agent(&alice, &default.id, reprompt)
        .await
        .unwrap();
    assert_eq!(changed.system_prompt, "You are terse.");
}
