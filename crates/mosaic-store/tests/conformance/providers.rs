//! Model providers, routes over them, and token usage. Gateway-wide providers and
//! routes are everyone's and only admins change them; a user's own are theirs alone
//! (another user's id is simply not there). Usage is tallied per user, day and
//! `provider/model`, and each user sees only their own.

use mosaic_test_support::engines;
use std::time::Duration;

use mosaic_api::{ConfigScope, ProviderInfo, ProviderKind, RouteStep, WireApi};
use mosaic_store::{NewProvider, ProviderChanges};
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    users_create_list_get_update_and_delete_their_providers,
    gateway_providers_are_for_everyone_and_changed_only_by_admins,
    other_users_providers_are_not_found,
    provider_names_are_unique_per_scope_and_checked,
    providers_for_calls_carry_the_encrypted_key_gateway_first,
    what_a_call_resolves_follows_every_change_at_once,
);

/// A provider with a placeholder address; `key` is what the gateway would have encrypted.
pub(crate) fn new_provider(scope: ConfigScope, name: &str, key: Option<&str>) -> NewProvider {
    NewProvider {
        scope,
        name: name.to_string(),
        kind: ProviderKind::OpenaiCompatible,
        wire: WireApi::ChatCompletions,
        base_url: format!("http://{name}.example/v1"),
        api_key_enc: key.map(str::to_string),
    }
}

pub(crate) fn step(provider: &str, model: &str, timeout_ms: u64) -> RouteStep {
    RouteStep {
        provider: provider.to_string(),
        model: model.to_string(),
        timeout_ms,
        idle_timeout_ms: None,
    }
}

pub(crate) fn names(providers: &[ProviderInfo]) -> Vec<(&str, ConfigScope)> {
    providers
        .iter()
        .map(|p| (p.name.as_str(), p.scope))
        .collect()
}

/// Let the clock move on, so that a change shows in `updated_at` (milliseconds).
pub(crate) async fn tick() {
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

/// The providers and routes a call resolves are kept in memory between changes; each
/// change is seen by the very next call, never a stale answer.
async fn what_a_call_resolves_follows_every_change_at_once(db: TestDb) {
    let (admin, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let resolved_key = |providers: Vec<mosaic_store::ProviderForCall>| {
        providers
            .into_iter()
            .map(|f| (f.info.name, f.info.base_url, f.api_key_enc))
            .collect::<Vec<_>>()
    };
    assert_eq!(db.store.providers_for_calls(&alice).await.unwrap().len(), 0);
    let gateway = db
        .store
        .create_provider(
            &admin,
            new_provider(ConfigScope::Gateway, "shared", Some("k1")),
        )
        .await
        .unwrap();
    // Twice: the second answer may come from memory, and must be the same.
    for _ in 0..2 {
        assert_eq!(
            resolved_key(db.store.providers_for_calls(&alice).await.unwrap()),
            vec![(
                "shared".into(),
                "http://shared.example/v1".into(),
                Some("k1".into())
            )]
        );
    }
    db.store
        .update_provider(
            &admin,
            &gateway.id,
            ProviderChanges {
                base_url: Some("http://moved.example/v1".into()),
                api_key_enc: Some(Some("k2".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        resolved_key(db.store.providers_for_calls(&alice).await.unwrap()),
        vec![(
            "shared".into(),
            "http://moved.example/v1".into(),
            Some("k2".into())
        )]
    );

    db.store
        .set_route(
            &admin,
            ConfigScope::Gateway,
            "fast",
            &[step("shared", "a", 1_000)],
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let route = db.store.resolve_route(&alice, "fast").await.unwrap();
        assert_eq!(route.steps, vec![step("shared", "a", 1_000)]);
    }
    // Her own route of the same name wins from now on.
    let own = db
        .store
        .set_route(
            &alice,
            ConfigScope::User,
            "fast",
            &[step("shared", "b", 2_000)],
        )
        .await
        .unwrap();
    let route = db.store.resolve_route(&alice, "fast").await.unwrap();
    assert_eq!(route.steps, vec![step("shared", "b", 2_000)]);
    db.store.delete_route(&alice, &own.id).await.unwrap();
    let route = db.store.resolve_route(&alice, "fast").await.unwrap();
    assert_eq!(route.steps, vec![step("shared", "a", 1_000)]);

    db.store.delete_provider(&admin, &gateway.id).await.unwrap();
    assert_eq!(db.store.providers_for_calls(&alice).await.unwrap().len(), 0);
}
