//! Model routing: named, ordered lists of `provider/model` steps (routes). Gateway-wide routes are
//! everyone's defaults; a user's route of the same name wins for that user.

use mosaic_api::{ConfigScope, RouteInfo, RouteStep};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::providers::{check_config_name, check_manageable, owner_for};
use crate::row::{json, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const COLUMNS: &str = "id, owner_user_id, name, steps, created_at, updated_at";

impl FromRow for RouteInfo {
    fn from_row(row: &AnyRow) -> Result<RouteInfo> {
        let steps: String = row.col("steps")?;
        let owner: Option<String> = row.col("owner_user_id")?;
        Ok(RouteInfo {
            id: row.col("id")?,
            name: row.col("name")?,
            scope: if owner.is_some() {
                ConfigScope::User
            } else {
                ConfigScope::Gateway
            },
            steps: json("route", &steps)?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

fn check_steps(steps: &[RouteStep]) -> Result<()> {
    if steps.is_empty() || steps.len() > 16 {
        return Err(StoreError::Invalid("a route needs 1 to 16 steps".into()));
    }
    for step in steps {
        check_config_name("provider", &step.provider)?;
        if step.model.trim().is_empty() || step.model.len() > 256 {
            return Err(StoreError::Invalid(
                "a step needs a model name (at most 256 characters)".into(),
            ));
        }
        if !(100..=600_000).contains(&step.timeout_ms) {
            return Err(StoreError::Invalid(
                "timeout_ms must be from 100 to 600000".into(),
            ));
        }
        if step
            .idle_timeout_ms
            .is_some_and(|ms| !(100..=600_000).contains(&ms))
        {
            return Err(StoreError::Invalid(
                "idle_timeout_ms must be from 100 to 600000".into(),
            ));
        }
    }
    Ok(())
}

async fn select_visible(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<RouteInfo> {
    let visible = tx.visible(p, Table::Routes, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {COLUMNS} FROM routes WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    RouteInfo::from_row(&row)
}

impl Store {
    /// Create or replace the route of this name in this scope.
    #[tracing::instrument(name = "store.set_route", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn set_route(
        &self,
        p: &Principal,
        scope: ConfigScope,
        name: &str,
        steps: &[RouteStep],
    ) -> Result<RouteInfo> {
        let name = check_config_name("route", name)?;
        check_steps(steps)?;
        let owner = owner_for(p, scope, "route")?;
        let steps_json = serde_json::to_string(steps)
            .map_err(|e| StoreError::Invalid(format!("route steps: {e}")))?;
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        // Two first sets of one name at once: the second replaces, not conflicts.
        tx.lock(&format!("route:{}:{name}", owner.as_deref().unwrap_or("")))
            .await?;
        let sql = tx
            .sql(
                "SELECT id FROM routes WHERE COALESCE(owner_user_id, '') = COALESCE($1, '') AND name = $2",
            )
            .into_owned();
        let existing = tx
            .fetch_optional(sqlx::query(&sql).bind(owner.clone()).bind(&name))
            .await?;
        let id = match existing {
            Some(row) => {
                let id: String = row.col("id")?;
                let sql = tx
                    .sql("UPDATE routes SET steps = $2, updated_at = $3 WHERE id = $1")
                    .into_owned();
                tx.execute(sqlx::query(&sql).bind(&id).bind(&steps_json).bind(now))
                    .await?;
                id
            }
            None => {
                let id = new_id();
                let sql = tx
                    .sql(&format!(
                        "INSERT INTO routes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5)"
                    ))
                    .into_owned();
                tx.execute(
                    sqlx::query(&sql)
                        .bind(&id)
                        .bind(owner)
                        .bind(&name)
                        .bind(&steps_json)
                        .bind(now),
                )
                .await?;
                id
            }
        };
        let route = select_visible(&mut tx, p, &id).await?;
        tx.commit().await?;
        self.inner().hot.models.bump();
        Ok(route)
    }

    /// The routes the principal can use: gateway-wide and their own.
    #[tracing::instrument(name = "store.list_routes", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_routes(&self, p: &Principal) -> Result<Vec<RouteInfo>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Routes, 1);
        let sql = tx
            .sql(&format!(
                "SELECT {COLUMNS} FROM routes WHERE {visible} \
                 ORDER BY name, CASE WHEN owner_user_id IS NULL THEN 1 ELSE 0 END"
            ))
            .into_owned();
        let rows = tx.fetch_all(visible.bind(sqlx::query(&sql))).await?;
        tx.commit().await?;
        rows.iter().map(RouteInfo::from_row).collect()
    }

    #[tracing::instrument(name = "store.get_route", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_route(&self, p: &Principal, id: &str) -> Result<RouteInfo> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let route = select_visible(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(route)
    }

    /// The route a name means for this principal: their own, else the gateway's.
    #[tracing::instrument(name = "store.resolve_route", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn resolve_route(&self, p: &Principal, name: &str) -> Result<RouteInfo> {
        let name = name.trim();
        let now = now_ms();
        let hot = &self.inner().hot;
        let generation = hot.models.current();
        let key = (p.clone(), name.to_string());
        if let Some(found) = hot.routes.get(&key, generation, now) {
            return Ok(found);
        }
        let found = self
            .list_routes(p)
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or(StoreError::NotFound)?;
        hot.routes.put(key, generation, now, None, found.clone());
        Ok(found)
    }

    #[tracing::instrument(name = "store.delete_route", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_route(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let current = select_visible(&mut tx, p, id).await?;
        check_manageable(p, current.scope, "route")?;
        let sql = tx.sql("DELETE FROM routes WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.inner().hot.models.bump();
        Ok(())
    }
}
