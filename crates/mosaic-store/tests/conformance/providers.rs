//! Model providers, routes over them, and token usage. Gateway-wide providers and
//! routes are everyone's and only admins change them; a user's own are theirs alone
//! (another user's id is simply not there). Usage is tallied per user, day and
//! `provider/model`, and each user sees only their own.

use std::time::Duration;

use mosaic_api::{
    ConfigScope, ProviderInfo, ProviderKind, RouteInfo, RouteStep, UsageRow, WireApi,
};
use mosaic_store::{day_of, now_ms, NewProvider, Principal, ProviderChanges};
use pretty_assertions::assert_eq;
use sqlx::Connection;

use crate::support::{err_kind, Engine, Kind, TestDb};

engines!(
    users_create_list_get_update_and_delete_their_providers,
    gateway_providers_are_for_everyone_and_changed_only_by_admins,
    other_users_providers_are_not_found,
    provider_names_are_unique_per_scope_and_checked,
    providers_for_calls_carry_the_encrypted_key_gateway_first,
    routes_are_set_replaced_by_name_and_deleted,
    route_names_and_steps_are_checked,
    a_users_route_wins_over_the_gateways_of_the_same_name,
    other_users_routes_are_not_found_and_gateway_routes_need_an_admin,
    usage_accumulates_per_day_provider_and_model,
    usage_reports_filter_by_day_and_show_only_the_callers_rows,
    bad_days_are_refused,
);

/// A provider with a placeholder address; `key` is what the gateway would have encrypted.
fn new_provider(scope: ConfigScope, name: &str, key: Option<&str>) -> NewProvider {
    NewProvider {
        scope,
        name: name.to_string(),
        kind: ProviderKind::OpenaiCompatible,
        wire: WireApi::ChatCompletions,
        base_url: format!("http://{name}.example/v1"),
        api_key_enc: key.map(str::to_string),
    }
}

fn step(provider: &str, model: &str, timeout_ms: u64) -> RouteStep {
    RouteStep {
        provider: provider.to_string(),
        model: model.to_string(),
        timeout_ms,
    }
}

fn names(providers: &[ProviderInfo]) -> Vec<(&str, ConfigScope)> {
    providers
        .iter()
        .map(|p| (p.name.as_str(), p.scope))
        .collect()
}

/// Let the clock move on, so that a change shows in `updated_at` (milliseconds).
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn users_create_list_get_update_and_delete_their_providers(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    assert_eq!(db.store.list_providers(&alice).await.unwrap(), vec![]);

    let local = db
        .store
        .create_provider(
            &alice,
            NewProvider {
                scope: ConfigScope::User,
                name: " local ".into(),
                kind: ProviderKind::Ollama,
                wire: WireApi::ChatCompletions,
                base_url: "http://127.0.0.1:11434/v1".into(),
                api_key_enc: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        local,
        ProviderInfo {
            id: local.id.clone(),
            name: "local".into(),
            kind: ProviderKind::Ollama,
            wire: WireApi::ChatCompletions,
            base_url: "http://127.0.0.1:11434/v1".into(),
            scope: ConfigScope::User,
            has_api_key: false,
            created_at: local.created_at.clone(),
            updated_at: local.created_at.clone(),
        }
    );
    assert!(!local.id.is_empty());

    let claude = db
        .store
        .create_provider(
            &alice,
            NewProvider {
                scope: ConfigScope::User,
                name: "claude".into(),
                kind: ProviderKind::Anthropic,
                wire: WireApi::AnthropicMessages,
                base_url: "https://api.anthropic.com/v1".into(),
                api_key_enc: Some("enc:claude".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(claude.kind, ProviderKind::Anthropic);
    assert_eq!(claude.wire, WireApi::AnthropicMessages);
    assert!(claude.has_api_key);

    assert_eq!(
        db.store.get_provider(&alice, &local.id).await.unwrap(),
        local
    );
    assert_eq!(
        db.store.get_provider(&alice, &claude.id).await.unwrap(),
        claude
    );
    // Listed by name, not by creation.
    assert_eq!(
        db.store.list_providers(&alice).await.unwrap(),
        vec![claude.clone(), local.clone()]
    );

    // Address, wire API and key change; the rest stays.
    tick().await;
    let changed = db
        .store
        .update_provider(
            &alice,
            &local.id,
            ProviderChanges {
                base_url: Some("http://gpu-box:11434/v1".into()),
                wire: Some(WireApi::Responses),
                api_key_enc: Some(Some("enc:local".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        changed,
        ProviderInfo {
            base_url: "http://gpu-box:11434/v1".into(),
            wire: WireApi::Responses,
            has_api_key: true,
            updated_at: changed.updated_at.clone(),
            ..local.clone()
        }
    );
    assert!(changed.updated_at > local.updated_at, "{changed:?}");
    assert_eq!(
        db.store.get_provider(&alice, &local.id).await.unwrap(),
        changed
    );
    assert_eq!(
        db.store
            .provider_for_call(&alice, &local.id)
            .await
            .unwrap()
            .api_key_enc
            .as_deref(),
        Some("enc:local")
    );

    // No changes keep everything, the key included.
    let same = db
        .store
        .update_provider(&alice, &local.id, ProviderChanges::default())
        .await
        .unwrap();
    assert_eq!(
        same,
        ProviderInfo {
            updated_at: same.updated_at.clone(),
            ..changed.clone()
        }
    );
    assert_eq!(
        db.store
            .provider_for_call(&alice, &local.id)
            .await
            .unwrap()
            .api_key_enc
            .as_deref(),
        Some("enc:local")
    );

    // Changing only the wire API keeps the address and the key.
    let rewired = db
        .store
        .update_provider(
            &alice,
            &local.id,
            ProviderChanges {
                wire: Some(WireApi::ChatCompletions),
                ..ProviderChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rewired.wire, WireApi::ChatCompletions);
    assert_eq!(rewired.base_url, "http://gpu-box:11434/v1");
    assert!(rewired.has_api_key);

    // `Some(None)` removes the key, and only the key.
    let keyless = db
        .store
        .update_provider(
            &alice,
            &local.id,
            ProviderChanges {
                api_key_enc: Some(None),
                ..ProviderChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        keyless,
        ProviderInfo {
            has_api_key: false,
            updated_at: keyless.updated_at.clone(),
            ..rewired.clone()
        }
    );
    assert_eq!(
        db.store
            .provider_for_call(&alice, &local.id)
            .await
            .unwrap()
            .api_key_enc,
        None
    );
    // The other provider was not touched.
    assert_eq!(
        db.store.get_provider(&alice, &claude.id).await.unwrap(),
        claude
    );

    db.store.delete_provider(&alice, &local.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_provider(&alice, &local.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.provider_for_call(&alice, &local.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_provider(&alice, &local.id, ProviderChanges::default())
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_provider(&alice, &local.id).await),
        Kind::NotFound
    );
    assert_eq!(db.store.list_providers(&alice).await.unwrap(), vec![claude]);

    // The name is free again.
    let again = db
        .store
        .create_provider(&alice, new_provider(ConfigScope::User, "local", None))
        .await
        .unwrap();
    assert_ne!(again.id, local.id);
}

async fn gateway_providers_are_for_everyone_and_changed_only_by_admins(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;

    // Only admins make them.
    assert_eq!(
        err_kind(
            db.store
                .create_provider(&alice, new_provider(ConfigScope::Gateway, "shared", None))
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(db.store.list_providers(&alice).await.unwrap(), vec![]);
    assert_eq!(db.store.list_providers(&admin).await.unwrap(), vec![]);

    let shared = db
        .store
        .create_provider(
            &admin,
            new_provider(ConfigScope::Gateway, "shared", Some("enc:gw")),
        )
        .await
        .unwrap();
    assert_eq!(shared.scope, ConfigScope::Gateway);
    assert!(shared.has_api_key);

    // Everyone sees and may use them.
    for p in [&admin, &alice, &bob] {
        assert_eq!(
            db.store.list_providers(p).await.unwrap(),
            vec![shared.clone()]
        );
        assert_eq!(db.store.get_provider(p, &shared.id).await.unwrap(), shared);
        assert_eq!(
            db.store
                .provider_for_call(p, &shared.id)
                .await
                .unwrap()
                .api_key_enc
                .as_deref(),
            Some("enc:gw")
        );
    }

    // Users may not change or delete them: it is there, it is not theirs to change.
    for changes in [
        ProviderChanges {
            base_url: Some("http://evil.example/v1".into()),
            ..ProviderChanges::default()
        },
        ProviderChanges {
            wire: Some(WireApi::Responses),
            ..ProviderChanges::default()
        },
        ProviderChanges {
            api_key_enc: Some(None),
            ..ProviderChanges::default()
        },
        ProviderChanges {
            api_key_enc: Some(Some("enc:mine-now".into())),
            ..ProviderChanges::default()
        },
    ] {
        assert_eq!(
            err_kind(db.store.update_provider(&alice, &shared.id, changes).await),
            Kind::Forbidden
        );
    }
    assert_eq!(
        err_kind(db.store.delete_provider(&bob, &shared.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        db.store.get_provider(&bob, &shared.id).await.unwrap(),
        shared
    );
    assert_eq!(
        db.store
            .provider_for_call(&bob, &shared.id)
            .await
            .unwrap()
            .api_key_enc
            .as_deref(),
        Some("enc:gw")
    );

    // Admins may, and everyone sees the change.
    let moved = db
        .store
        .update_provider(
            &admin,
            &shared.id,
            ProviderChanges {
                base_url: Some("http://moved.example/v1".into()),
                api_key_enc: Some(None),
                ..ProviderChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.base_url, "http://moved.example/v1");
    assert_eq!(moved.scope, ConfigScope::Gateway);
    assert!(!moved.has_api_key);
    assert_eq!(
        db.store.get_provider(&alice, &shared.id).await.unwrap(),
        moved
    );

    db.store.delete_provider(&admin, &shared.id).await.unwrap();
    for p in [&admin, &alice, &bob] {
        assert_eq!(
            err_kind(db.store.get_provider(p, &shared.id).await),
            Kind::NotFound
        );
        assert_eq!(db.store.list_providers(p).await.unwrap(), vec![]);
    }
}

async fn other_users_providers_are_not_found(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let alices = db
        .store
        .create_provider(
            &alice,
            new_provider(ConfigScope::User, "mine", Some("enc:alice")),
        )
        .await
        .unwrap();
    // An admin's own provider is theirs alone too.
    let admins = db
        .store
        .create_provider(&admin, new_provider(ConfigScope::User, "root-only", None))
        .await
        .unwrap();

    for (p, id) in [
        (&bob, &alices.id),
        (&admin, &alices.id),
        (&alice, &admins.id),
        (&bob, &admins.id),
    ] {
        assert_eq!(err_kind(db.store.get_provider(p, id).await), Kind::NotFound);
        assert_eq!(
            err_kind(db.store.provider_for_call(p, id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(
                db.store
                    .update_provider(
                        p,
                        id,
                        ProviderChanges {
                            base_url: Some("http://evil.example/v1".into()),
                            api_key_enc: Some(None),
                            ..ProviderChanges::default()
                        },
                    )
                    .await
            ),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_provider(p, id).await),
            Kind::NotFound
        );
    }
    assert_eq!(db.store.list_providers(&bob).await.unwrap(), vec![]);
    assert_eq!(
        db.store.list_providers(&admin).await.unwrap(),
        vec![admins.clone()]
    );
    assert!(db.store.providers_for_calls(&bob).await.unwrap().is_empty());

    // Nothing happened to Alice's.
    assert_eq!(
        db.store.list_providers(&alice).await.unwrap(),
        vec![alices.clone()]
    );
    let for_call = db
        .store
        .provider_for_call(&alice, &alices.id)
        .await
        .unwrap();
    assert_eq!(for_call.info, alices);
    assert_eq!(for_call.api_key_enc.as_deref(), Some("enc:alice"));

    // An id that was never there is the same to everyone.
    assert_eq!(
        err_kind(db.store.get_provider(&alice, "no-such-id").await),
        Kind::NotFound
    );
}

async fn provider_names_are_unique_per_scope_and_checked(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let gateway = db
        .store
        .create_provider(&admin, new_provider(ConfigScope::Gateway, "openai", None))
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .create_provider(&admin, new_provider(ConfigScope::Gateway, "openai", None))
                .await
        ),
        Kind::Conflict
    );

    // A user may reuse the gateway's name for their own, once.
    let alices = db
        .store
        .create_provider(&alice, new_provider(ConfigScope::User, "openai", None))
        .await
        .unwrap();
    for name in ["openai", " openai "] {
        assert_eq!(
            err_kind(
                db.store
                    .create_provider(&alice, new_provider(ConfigScope::User, name, None))
                    .await
            ),
            Kind::Conflict,
            "{name:?}"
        );
    }
    // So may another user, and the admin for their own.
    let bobs = db
        .store
        .create_provider(&bob, new_provider(ConfigScope::User, "openai", None))
        .await
        .unwrap();
    let admins = db
        .store
        .create_provider(&admin, new_provider(ConfigScope::User, "openai", None))
        .await
        .unwrap();
    assert_eq!(
        names(&db.store.list_providers(&alice).await.unwrap()),
        vec![
            ("openai", ConfigScope::Gateway),
            ("openai", ConfigScope::User)
        ]
    );
    assert_eq!(
        db.store.list_providers(&alice).await.unwrap(),
        vec![gateway.clone(), alices]
    );
    assert_eq!(
        db.store.list_providers(&bob).await.unwrap(),
        vec![gateway.clone(), bobs]
    );
    assert_eq!(
        db.store.list_providers(&admin).await.unwrap(),
        vec![gateway, admins]
    );

    // Names are what `provider/model` refers to: 1-64 of letters, digits, '-', '_', '.'.
    let longest = "x".repeat(64);
    let ok = db
        .store
        .create_provider(&alice, new_provider(ConfigScope::User, &longest, None))
        .await
        .unwrap();
    assert_eq!(ok.name, longest);
    db.store
        .create_provider(&alice, new_provider(ConfigScope::User, "A-z_0.9", None))
        .await
        .unwrap();
    let too_long = "x".repeat(65);
    for name in [
        "",
        "   ",
        "two words",
        "open/ai",
        "naïve",
        "tab\there",
        "semi;colon",
        too_long.as_str(),
    ] {
        assert_eq!(
            err_kind(
                db.store
                    .create_provider(&alice, new_provider(ConfigScope::User, name, None))
                    .await
            ),
            Kind::Invalid,
            "{name:?}"
        );
        assert_eq!(
            err_kind(
                db.store
                    .create_provider(&admin, new_provider(ConfigScope::Gateway, name, None))
                    .await
            ),
            Kind::Invalid,
            "{name:?}"
        );
    }
    assert_eq!(db.store.list_providers(&alice).await.unwrap().len(), 4);
}

async fn providers_for_calls_carry_the_encrypted_key_gateway_first(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    for (p, scope, name, key) in [
        (&alice, ConfigScope::User, "beta", Some("enc:beta")),
        (&admin, ConfigScope::Gateway, "zeta", Some("enc:zeta")),
        (&alice, ConfigScope::User, "aardvark", None),
        (&admin, ConfigScope::Gateway, "alpha", None),
        (&bob, ConfigScope::User, "bobs", Some("enc:bob")),
    ] {
        db.store
            .create_provider(p, new_provider(scope, name, key))
            .await
            .unwrap();
    }

    let for_calls = db.store.providers_for_calls(&alice).await.unwrap();
    assert_eq!(
        for_calls
            .iter()
            .map(|f| (f.info.name.as_str(), f.info.scope, f.api_key_enc.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("alpha", ConfigScope::Gateway, None),
            ("zeta", ConfigScope::Gateway, Some("enc:zeta")),
            ("aardvark", ConfigScope::User, None),
            ("beta", ConfigScope::User, Some("enc:beta")),
        ]
    );
    for f in &for_calls {
        assert_eq!(f.info.has_api_key, f.api_key_enc.is_some(), "{f:?}");
        let one = db
            .store
            .provider_for_call(&alice, &f.info.id)
            .await
            .unwrap();
        assert_eq!(one.info, f.info);
        assert_eq!(one.api_key_enc, f.api_key_enc);
    }
    // The list without keys is the same list.
    assert_eq!(
        db.store.list_providers(&alice).await.unwrap(),
        for_calls.into_iter().map(|f| f.info).collect::<Vec<_>>()
    );

    let bobs = db.store.providers_for_calls(&bob).await.unwrap();
    assert_eq!(
        bobs.iter()
            .map(|f| (f.info.name.as_str(), f.api_key_enc.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("alpha", None),
            ("zeta", Some("enc:zeta")),
            ("bobs", Some("enc:bob")),
        ]
    );
}

async fn routes_are_set_replaced_by_name_and_deleted(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    assert_eq!(db.store.list_routes(&alice).await.unwrap(), vec![]);

    let first = vec![step("openai", "gpt-4o", 30_000)];
    let route = db
        .store
        .set_route(&alice, ConfigScope::User, "default", &first)
        .await
        .unwrap();
    assert_eq!(
        route,
        RouteInfo {
            id: route.id.clone(),
            name: "default".into(),
            scope: ConfigScope::User,
            steps: first,
            created_at: route.created_at.clone(),
            updated_at: route.created_at.clone(),
        }
    );
    assert_eq!(db.store.get_route(&alice, &route.id).await.unwrap(), route);
    assert_eq!(
        db.store.resolve_route(&alice, "default").await.unwrap(),
        route
    );
    assert_eq!(
        db.store.list_routes(&alice).await.unwrap(),
        vec![route.clone()]
    );

    // Setting the same name again replaces the steps and keeps the route.
    tick().await;
    let second = vec![
        step("local", "llama3.1:8b", 5_000),
        step("openai", "gpt-4o-mini", 60_000),
    ];
    let replaced = db
        .store
        .set_route(&alice, ConfigScope::User, " default ", &second)
        .await
        .unwrap();
    assert_eq!(
        replaced,
        RouteInfo {
            steps: second,
            updated_at: replaced.updated_at.clone(),
            ..route.clone()
        }
    );
    assert!(replaced.updated_at > route.updated_at, "{replaced:?}");
    assert_eq!(
        db.store.get_route(&alice, &route.id).await.unwrap(),
        replaced
    );

    let fast = db
        .store
        .set_route(
            &alice,
            ConfigScope::User,
            "fast",
            &[step("local", "qwen", 1_000)],
        )
        .await
        .unwrap();
    assert_ne!(fast.id, route.id);
    // By name.
    assert_eq!(
        db.store.list_routes(&alice).await.unwrap(),
        vec![replaced.clone(), fast.clone()]
    );

    db.store.delete_route(&alice, &route.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_route(&alice, &route.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_route(&alice, &route.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.resolve_route(&alice, "default").await),
        Kind::NotFound
    );
    assert_eq!(db.store.list_routes(&alice).await.unwrap(), vec![fast]);

    // Setting a deleted name makes a new route.
    let anew = db
        .store
        .set_route(
            &alice,
            ConfigScope::User,
            "default",
            &[step("openai", "o3", 600_000)],
        )
        .await
        .unwrap();
    assert_ne!(anew.id, route.id);
}

async fn route_names_and_steps_are_checked(db: TestDb) {
    let (admin, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let good = vec![step("openai", "gpt-4o", 60_000)];
    let kept = db
        .store
        .set_route(&alice, ConfigScope::User, "kept", &good)
        .await
        .unwrap();

    let long_model = "m".repeat(257);
    let bad_steps: Vec<(&str, Vec<RouteStep>)> = vec![
        ("no steps", vec![]),
        ("17 steps", vec![step("openai", "gpt-4o", 60_000); 17]),
        ("timeout 0", vec![step("openai", "gpt-4o", 0)]),
        ("timeout 99", vec![step("openai", "gpt-4o", 99)]),
        ("timeout 600001", vec![step("openai", "gpt-4o", 600_001)]),
        (
            "a bad step after a good one",
            vec![
                step("openai", "gpt-4o", 60_000),
                step("openai", "gpt-4o", 1),
            ],
        ),
        ("empty model", vec![step("openai", "", 60_000)]),
        ("blank model", vec![step("openai", "  ", 60_000)]),
        ("long model", vec![step("openai", &long_model, 60_000)]),
        ("empty provider", vec![step("", "gpt-4o", 60_000)]),
        (
            "provider with a slash",
            vec![step("open/ai", "gpt-4o", 60_000)],
        ),
    ];
    for (what, steps) in &bad_steps {
        for name in ["kept", "new"] {
            assert_eq!(
                err_kind(
                    db.store
                        .set_route(&alice, ConfigScope::User, name, steps)
                        .await
                ),
                Kind::Invalid,
                "{what}, {name}"
            );
        }
        assert_eq!(
            err_kind(
                db.store
                    .set_route(&admin, ConfigScope::Gateway, "new", steps)
                    .await
            ),
            Kind::Invalid,
            "{what}, gateway"
        );
    }
    let long_name = "r".repeat(65);
    for name in ["", " ", "two words", "a/b", long_name.as_str()] {
        assert_eq!(
            err_kind(
                db.store
                    .set_route(&alice, ConfigScope::User, name, &good)
                    .await
            ),
            Kind::Invalid,
            "{name:?}"
        );
    }
    // Nothing was stored or replaced.
    assert_eq!(db.store.list_routes(&alice).await.unwrap(), vec![kept]);
    assert_eq!(db.store.list_routes(&admin).await.unwrap(), vec![]);

    // The limits themselves are fine.
    let edges = vec![step("a", "m", 100), step("b", &"m".repeat(256), 600_000)];
    let edge = db
        .store
        .set_route(&alice, ConfigScope::User, "edges", &edges)
        .await
        .unwrap();
    assert_eq!(edge.steps, edges);
    let sixteen = vec![step("openai", "gpt-4o", 60_000); 16];
    let many = db
        .store
        .set_route(&alice, ConfigScope::User, "sixteen", &sixteen)
        .await
        .unwrap();
    assert_eq!(many.steps, sixteen);
}

async fn a_users_route_wins_over_the_gateways_of_the_same_name(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let gw_default = db
        .store
        .set_route(
            &admin,
            ConfigScope::Gateway,
            "default",
            &[step("shared", "big", 60_000)],
        )
        .await
        .unwrap();
    assert_eq!(gw_default.scope, ConfigScope::Gateway);
    let gw_cheap = db
        .store
        .set_route(
            &admin,
            ConfigScope::Gateway,
            "cheap",
            &[step("shared", "small", 60_000)],
        )
        .await
        .unwrap();

    for p in [&alice, &bob] {
        assert_eq!(
            db.store.resolve_route(p, "default").await.unwrap(),
            gw_default
        );
        assert_eq!(
            db.store.list_routes(p).await.unwrap(),
            vec![gw_cheap.clone(), gw_default.clone()]
        );
        assert_eq!(
            db.store.get_route(p, &gw_default.id).await.unwrap(),
            gw_default
        );
    }

    // Alice's own "default" is hers, next to the gateway's, and wins for her alone.
    let alices = db
        .store
        .set_route(
            &alice,
            ConfigScope::User,
            "default",
            &[step("mine", "local", 5_000)],
        )
        .await
        .unwrap();
    assert_eq!(alices.scope, ConfigScope::User);
    assert_ne!(alices.id, gw_default.id);
    assert_eq!(
        db.store.resolve_route(&alice, "default").await.unwrap(),
        alices
    );
    assert_eq!(
        db.store.resolve_route(&alice, "cheap").await.unwrap(),
        gw_cheap
    );
    assert_eq!(
        db.store.resolve_route(&bob, "default").await.unwrap(),
        gw_default
    );
    assert_eq!(
        db.store.list_routes(&alice).await.unwrap(),
        vec![gw_cheap.clone(), alices.clone(), gw_default.clone()]
    );
    assert_eq!(
        db.store.list_routes(&bob).await.unwrap(),
        vec![gw_cheap.clone(), gw_default.clone()]
    );
    // The gateway's route is untouched by Alice's.
    assert_eq!(
        db.store.get_route(&admin, &gw_default.id).await.unwrap(),
        gw_default
    );

    // An admin replacing the gateway's route changes it for Bob, not for Alice.
    let gw_new = db
        .store
        .set_route(
            &admin,
            ConfigScope::Gateway,
            "default",
            &[step("shared", "bigger", 60_000)],
        )
        .await
        .unwrap();
    assert_eq!(gw_new.id, gw_default.id);
    assert_eq!(
        db.store.resolve_route(&bob, "default").await.unwrap(),
        gw_new
    );
    assert_eq!(
        db.store.resolve_route(&alice, "default").await.unwrap(),
        alices
    );

    // Without her own, Alice falls back to the gateway's.
    db.store.delete_route(&alice, &alices.id).await.unwrap();
    assert_eq!(
        db.store.resolve_route(&alice, "default").await.unwrap(),
        gw_new
    );
    assert_eq!(
        err_kind(db.store.resolve_route(&alice, "nothing").await),
        Kind::NotFound
    );
}

async fn other_users_routes_are_not_found_and_gateway_routes_need_an_admin(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let alices = db
        .store
        .set_route(
            &alice,
            ConfigScope::User,
            "mine",
            &[step("openai", "gpt-4o", 60_000)],
        )
        .await
        .unwrap();

    for p in [&bob, &admin] {
        assert_eq!(
            err_kind(db.store.get_route(p, &alices.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_route(p, &alices.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.resolve_route(p, "mine").await),
            Kind::NotFound
        );
        assert_eq!(db.store.list_routes(p).await.unwrap(), vec![]);
    }
    // Bob's route of the same name is his own, and leaves Alice's alone.
    let bobs = db
        .store
        .set_route(
            &bob,
            ConfigScope::User,
            "mine",
            &[step("local", "llama", 60_000)],
        )
        .await
        .unwrap();
    assert_ne!(bobs.id, alices.id);
    assert_eq!(
        db.store.list_routes(&alice).await.unwrap(),
        vec![alices.clone()]
    );
    assert_eq!(db.store.list_routes(&bob).await.unwrap(), vec![bobs]);

    // Gateway routes: only admins set or delete them.
    let steps = [step("shared", "big", 60_000)];
    assert_eq!(
        err_kind(
            db.store
                .set_route(&alice, ConfigScope::Gateway, "shared", &steps)
                .await
        ),
        Kind::Forbidden
    );
    let shared = db
        .store
        .set_route(&admin, ConfigScope::Gateway, "shared", &steps)
        .await
        .unwrap();
    assert_eq!(
        db.store.get_route(&alice, &shared.id).await.unwrap(),
        shared
    );
    assert_eq!(
        err_kind(
            db.store
                .set_route(
                    &alice,
                    ConfigScope::Gateway,
                    "shared",
                    &[step("evil", "model", 60_000)],
                )
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.delete_route(&alice, &shared.id).await),
        Kind::Forbidden
    );
    assert_eq!(db.store.get_route(&bob, &shared.id).await.unwrap(), shared);

    db.store.delete_route(&admin, &shared.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_route(&alice, &shared.id).await),
        Kind::NotFound
    );
    assert_eq!(db.store.list_routes(&alice).await.unwrap(), vec![alices]);
}

fn usage(day: &str, provider: &str, model: &str, n: [u64; 4]) -> UsageRow {
    UsageRow {
        day: day.to_string(),
        provider: provider.to_string(),
        model: model.to_string(),
        requests: n[0],
        input_tokens: n[1],
        output_tokens: n[2],
        cached_tokens: n[3],
    }
}

async fn usage_accumulates_per_day_provider_and_model(db: TestDb) {
    let (admin, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let today = day_of(now_ms());
    assert_eq!(
        db.store.usage_report(&alice, &today, &today).await.unwrap(),
        vec![]
    );
    for (provider, model, input, output, cached) in [
        ("openai", "gpt-4o", 100, 20, 5),
        ("openai", "gpt-4o-mini", 1, 2, 3),
        ("openai", "gpt-4o", 50, 10, 0),
        ("local", "llama", 7, 8, 9),
        ("openai", "gpt-4o", 0, 0, 0),
    ] {
        db.store
            .record_usage(&alice, provider, model, input, output, cached)
            .await
            .unwrap();
    }
    if day_of(now_ms()) != today {
        return; // Midnight (UTC) passed meanwhile: the tallies are split over two days.
    }
    assert_eq!(
        db.store.usage_report(&alice, &today, &today).await.unwrap(),
        vec![
            usage(&today, "local", "llama", [1, 7, 8, 9]),
            usage(&today, "openai", "gpt-4o", [3, 150, 30, 5]),
            usage(&today, "openai", "gpt-4o-mini", [1, 1, 2, 3]),
        ]
    );
    // Alice's calls are not the admin's.
    assert_eq!(
        db.store.usage_report(&admin, &today, &today).await.unwrap(),
        vec![]
    );
}

/// A usage row for an earlier day, written directly, as the user it belongs to.
async fn seed_usage(db: &TestDb, user: &Principal, row: &UsageRow) {
    const INSERT: &str = "INSERT INTO usage_daily (user_id, day, provider, model, requests, \
                          input_tokens, output_tokens, cached_tokens) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    macro_rules! bind_row {
        ($q:expr) => {
            $q.bind(user.user_id())
                .bind(&row.day)
                .bind(&row.provider)
                .bind(&row.model)
                .bind(row.requests as i64)
                .bind(row.input_tokens as i64)
                .bind(row.output_tokens as i64)
                .bind(row.cached_tokens as i64)
        };
    }
    match db.engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let sql = INSERT.replace('$', "?");
            bind_row!(sqlx::query(&sql))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SELECT set_config('mosaic.uid', $1, true)")
                .bind(user.user_id())
                .execute(&mut *tx)
                .await
                .unwrap();
            bind_row!(sqlx::query(INSERT))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

async fn usage_reports_filter_by_day_and_show_only_the_callers_rows(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let jan1 = usage("2024-01-01", "openai", "gpt-4o", [1, 10, 1, 0]);
    let jan15_mini = usage("2024-01-15", "openai", "gpt-4o-mini", [2, 20, 2, 1]);
    let jan15 = usage("2024-01-15", "openai", "gpt-4o", [3, 30, 3, 0]);
    let feb1 = usage("2024-02-01", "local", "llama", [4, 40, 4, 4]);
    let bobs = usage("2024-01-15", "openai", "gpt-4o", [9, 90, 9, 9]);
    for row in [&feb1, &jan15_mini, &jan1, &jan15] {
        seed_usage(&db, &alice, row).await;
    }
    seed_usage(&db, &bob, &bobs).await;

    let report = |p: &Principal, from: &str, to: &str| {
        let (store, p, from, to) = (
            db.store.clone(),
            p.clone(),
            from.to_string(),
            to.to_string(),
        );
        async move { store.usage_report(&p, &from, &to).await.unwrap() }
    };
    // Inclusive at both ends, by day, then provider and model.
    assert_eq!(
        report(&alice, "2024-01-01", "2024-12-31").await,
        vec![
            jan1.clone(),
            jan15.clone(),
            jan15_mini.clone(),
            feb1.clone()
        ]
    );
    assert_eq!(
        report(&alice, "2024-01-01", "2024-01-31").await,
        vec![jan1.clone(), jan15.clone(), jan15_mini.clone()]
    );
    assert_eq!(
        report(&alice, "2024-01-15", "2024-01-15").await,
        vec![jan15.clone(), jan15_mini.clone()]
    );
    assert_eq!(
        report(&alice, "2024-01-02", "2024-02-01").await,
        vec![jan15.clone(), jan15_mini.clone(), feb1.clone()]
    );
    assert_eq!(report(&alice, "2024-01-02", "2024-01-14").await, vec![]);
    assert_eq!(report(&alice, "2023-01-01", "2023-12-31").await, vec![]);
    // A range the wrong way round is empty, not an error.
    assert_eq!(report(&alice, "2024-12-31", "2024-01-01").await, vec![]);

    // Each user sees their own rows only; an admin is no exception.
    assert_eq!(
        report(&bob, "2024-01-01", "2024-12-31").await,
        vec![bobs.clone()]
    );
    assert_eq!(report(&admin, "2000-01-01", "2999-12-31").await, vec![]);

    // Today's calls land today, next to the earlier days.
    let today = day_of(now_ms());
    db.store
        .record_usage(&alice, "openai", "gpt-4o", 5, 6, 7)
        .await
        .unwrap();
    let day = day_of(now_ms());
    if day != today {
        return; // Midnight (UTC) passed meanwhile.
    }
    assert_eq!(
        report(&alice, &today, &today).await,
        vec![usage(&today, "openai", "gpt-4o", [1, 5, 6, 7])]
    );
    assert_eq!(
        report(&alice, "2024-01-01", "2999-12-31").await,
        vec![
            jan1,
            jan15,
            jan15_mini,
            feb1,
            usage(&today, "openai", "gpt-4o", [1, 5, 6, 7]),
        ]
    );
    assert_eq!(report(&bob, "2024-01-01", "2999-12-31").await, vec![bobs]);
}

async fn bad_days_are_refused(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    db.store
        .record_usage(&alice, "openai", "gpt-4o", 1, 1, 1)
        .await
        .unwrap();
    let good = "2024-01-01";
    for bad in [
        "",
        "yesterday",
        "2024-1-01",
        "2024-01-1",
        "2024/01/01",
        "20240101",
        "2024-01-01T00:00:00Z",
        " 2024-01-01",
        "2024-01-0x",
        "2024--01-01",
        "２０２４-01-01",
    ] {
        assert_eq!(
            err_kind(db.store.usage_report(&alice, bad, good).await),
            Kind::Invalid,
            "from {bad:?}"
        );
        assert_eq!(
            err_kind(db.store.usage_report(&alice, good, bad).await),
            Kind::Invalid,
            "to {bad:?}"
        );
    }
}
