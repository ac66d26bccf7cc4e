//! Model providers: gateway-wide ones (managed by admins, used by everyone) and each
//! user's own (used only by them). API keys arrive here already encrypted by the
//! gateway and leave only through [`Store::provider_for_call`], for making calls.

use mosaic_api::{ConfigScope, ProviderInfo, ProviderKind, WireApi};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::principal::local_user;
use crate::row::{parsed, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

/// A provider to store.
#[derive(Debug, Clone)]
pub struct NewProvider {
    pub scope: ConfigScope,
    pub name: String,
    pub kind: ProviderKind,
    pub wire: WireApi,
    pub base_url: String,
    pub api_key_enc: Option<String>,
}

/// Changes to a provider; `None` keeps a field. `api_key_enc: Some(None)` removes the key.
#[derive(Debug, Clone, Default)]
pub struct ProviderChanges {
    pub base_url: Option<String>,
    pub wire: Option<WireApi>,
    pub api_key_enc: Option<Option<String>>,
}

/// What calling a provider needs, secret included (still encrypted).
#[derive(Debug, Clone)]
pub struct ProviderForCall {
    pub info: ProviderInfo,
    pub api_key_enc: Option<String>,
}

const COLUMNS: &str =
    "id, owner_user_id, name, kind, wire, base_url, api_key_enc, created_at, updated_at";

impl FromRow for ProviderForCall {
    fn from_row(row: &AnyRow) -> Result<ProviderForCall> {
        let kind: String = row.col("kind")?;
        let wire: String = row.col("wire")?;
        let owner: Option<String> = row.col("owner_user_id")?;
        let api_key_enc: Option<String> = row.col("api_key_enc")?;
        Ok(ProviderForCall {
            info: ProviderInfo {
                id: row.col("id")?,
                name: row.col("name")?,
                kind: parsed("provider kind", &kind, ProviderKind::parse)?,
                wire: parsed("wire API", &wire, WireApi::parse)?,
                base_url: row.col("base_url")?,
                scope: if owner.is_some() {
                    ConfigScope::User
                } else {
                    ConfigScope::Gateway
                },
                has_api_key: api_key_enc.is_some(),
                created_at: format_time(row.col("created_at")?),
                updated_at: format_time(row.col("updated_at")?),
            },
            api_key_enc,
        })
    }
}

/// Names of providers and routes: what `provider/model` and route lists refer to.
pub(crate) fn check_config_name(what: &str, name: &str) -> Result<String> {
    let name = name.trim();
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} name must be 1-64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The owner column for a scope; gateway scope needs an admin.
pub(crate) fn owner_for(p: &Principal, scope: ConfigScope, what: &str) -> Result<Option<String>> {
    match scope {
        ConfigScope::User => Ok(Some(local_user(p)?.to_string())),
        ConfigScope::Gateway if p.is_admin() => Ok(None),
        ConfigScope::Gateway => Err(StoreError::Forbidden(format!(
            "only admins manage gateway-wide {what}s"
        ))),
    }
}

async fn select_visible(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<ProviderForCall> {
    let visible = tx.visible(p, Table::Providers, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {COLUMNS} FROM providers WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    ProviderForCall::from_row(&row)
}

/// Visible and the principal may change it (their own; the gateway's if admin).
pub(crate) fn check_manageable(p: &Principal, scope: ConfigScope, what: &str) -> Result<()> {
    match scope {
        ConfigScope::User => Ok(()),
        ConfigScope::Gateway if p.is_admin() => Ok(()),
        ConfigScope::Gateway => Err(StoreError::Forbidden(format!(
            "only admins change gateway-wide {what}s"
        ))),
    }
}

impl Store {
    #[tracing::instrument(name = "store.create_provider", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_provider(&self, p: &Principal, new: NewProvider) -> Result<ProviderInfo> {
        let name = check_config_name("provider", &new.name)?;
        let owner = owner_for(p, new.scope, "provider")?;
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(&format!(
                "INSERT INTO providers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
            ))
            .into_owned();
        let inserted = tx
            .execute(
                sqlx::query(&sql)
                    .bind(&id)
                    .bind(owner)
                    .bind(&name)
                    .bind(new.kind.as_str())
                    .bind(new.wire.as_str())
                    .bind(&new.base_url)
                    .bind(new.api_key_enc)
                    .bind(now),
            )
            .await;
        if let Err(StoreError::Conflict(_)) = inserted {
            return Err(StoreError::Conflict(format!(
                "a provider named '{name}' exists already"
            )));
        }
        inserted?;
        let info = select_visible(&mut tx, p, &id).await?.info;
        tx.commit().await?;
        self.inner().hot.models.bump();
        Ok(info)
    }

    /// The providers the principal can use, gateway-wide first, then by name.
    #[tracing::instrument(name = "store.list_providers", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_providers(&self, p: &Principal) -> Result<Vec<ProviderInfo>> {
        Ok(self
            .providers_for_calls(p)
            .await?
            .into_iter()
            .map(|f| f.info)
            .collect())
    }

    /// Every usable provider with its (encrypted) key, for the gateway to call them.
    #[tracing::instrument(name = "store.providers_for_calls", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn providers_for_calls(&self, p: &Principal) -> Result<Vec<ProviderForCall>> {
        let now = now_ms();
        let hot = &self.inner().hot;
        let generation = hot.models.current();
        let key = p.clone();
        if let Some(found) = hot.providers.get(&key, generation, now) {
            return Ok(found);
        }
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Providers, 1);
        let sql = tx
            .sql(&format!(
                "SELECT {COLUMNS} FROM providers WHERE {visible} \
                 ORDER BY CASE WHEN owner_user_id IS NULL THEN 0 ELSE 1 END, name"
            ))
            .into_owned();
        let rows = tx.fetch_all(visible.bind(sqlx::query(&sql))).await?;
        tx.commit().await?;
        let found = rows
            .iter()
            .map(ProviderForCall::from_row)
            .collect::<Result<Vec<_>>>()?;
        hot.providers.put(key, generation, now, None, found.clone());
        Ok(found)
    }

    #[tracing::instrument(name = "store.get_provider", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_provider(&self, p: &Principal, id: &str) -> Result<ProviderInfo> {
        Ok(self.provider_for_call(p, id).await?.info)
    }

    /// One usable provider with its (encrypted) key.
    #[tracing::instrument(name = "store.provider_for_call", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn provider_for_call(&self, p: &Principal, id: &str) -> Result<ProviderForCall> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let found = select_visible(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(found)
    }

    #[tracing::instrument(name = "store.update_provider", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_provider(
        &self,
        p: &Principal,
        id: &str,
        changes: ProviderChanges,
    ) -> Result<ProviderInfo> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let current = select_visible(&mut tx, p, id).await?;
        check_manageable(p, current.info.scope, "provider")?;
        let (set_key, key) = match changes.api_key_enc {
            Some(k) => (1i64, k),
            None => (0i64, None),
        };
        let sql = tx
            .sql(
                "UPDATE providers SET base_url = COALESCE($2, base_url), wire = COALESCE($3, wire), \
                 api_key_enc = CASE WHEN $4 = 1 THEN $5 ELSE api_key_enc END, updated_at = $6 \
                 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(changes.base_url)
                .bind(changes.wire.map(|w| w.as_str()))
                .bind(set_key)
                .bind(key)
                .bind(now_ms()),
        )
        .await?;
        let info = select_visible(&mut tx, p, id).await?.info;
        tx.commit().await?;
        self.inner().hot.models.bump();
        Ok(info)
    }

    #[tracing::instrument(name = "store.delete_provider", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_provider(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let current = select_visible(&mut tx, p, id).await?;
        check_manageable(p, current.info.scope, "provider")?;
        let sql = tx.sql("DELETE FROM providers WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.inner().hot.models.bump();
        Ok(())
    }
}
