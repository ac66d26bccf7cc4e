//! Token usage: tallied per user, day and `provider/model`; each user sees only theirs.

use mosaic_api::UsageRow;
use mosaic_store::{day_of, now_ms, Principal};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use sqlx::Connection;

use crate::support::{err_kind, Engine, Kind, TestDb};

engines!(
    usage_accumulates_per_day_provider_and_model,
    usage_reports_filter_by_day_and_show_only_the_callers_rows,
    bad_days_are_refused,
);

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
            $q.bind(user.local_user().unwrap())
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
                .bind(user.local_user().unwrap())
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
        "2024-13-01",
        "2024-00-10",
        "2024-02-32",
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
