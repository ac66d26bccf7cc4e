//! Model routing: routes set and replaced by name, checked, a user's own winning over the gateway's,
//! and invisible to other users.

use mosaic_api::{ConfigScope, RouteInfo, RouteStep};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::providers::{step, tick};
use crate::support::{err_kind, Kind, TestDb};

engines!(
    routes_are_set_replaced_by_name_and_deleted,
    route_names_and_steps_are_checked,
    a_users_route_wins_over_the_gateways_of_the_same_name,
    other_users_routes_are_not_found_and_gateway_routes_need_an_admin,
);

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
