//! User preferences: typed values per user, checked against the contract's list of
//! known keys ([`mosaic_api::PREFERENCES`]) before they are stored.

use mosaic_api::{pref_spec, Preference};
use sqlx::any::AnyRow;

use crate::db::Acting;
use crate::principal::local_user;
use crate::row::{json, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, now_ms, Principal, Result, Store, StoreError};

impl FromRow for Preference {
    fn from_row(row: &AnyRow) -> Result<Preference> {
        let raw: String = row.col("value")?;
        Ok(Preference {
            key: row.col("key")?,
            value: json("preference", &raw)?,
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

fn known_key(key: &str) -> Result<&'static mosaic_api::PrefSpec> {
    pref_spec(key).ok_or(StoreError::NotFound)
}

impl Store {
    /// Every preference the caller has set.
    #[tracing::instrument(name = "store.list_preferences", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_preferences(&self, p: &Principal) -> Result<Vec<Preference>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Preferences, 1);
        let sql = tx
            .sql(&format!(
                "SELECT key, value, updated_at FROM preferences WHERE {visible} ORDER BY key"
            ))
            .into_owned();
        let rows = tx.fetch_all(visible.bind(sqlx::query(&sql))).await?;
        tx.commit().await?;
        rows.iter().map(Preference::from_row).collect()
    }

    /// One preference; `NotFound` when unknown or unset.
    #[tracing::instrument(name = "store.get_preference", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_preference(&self, p: &Principal, key: &str) -> Result<Preference> {
        known_key(key)?;
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Preferences, 2);
        let sql = tx
            .sql(&format!(
                "SELECT key, value, updated_at FROM preferences WHERE {visible} AND key = $1"
            ))
            .into_owned();
        let row = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(key)))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Preference::from_row(&row)
    }

    /// Set a preference, after checking the value against the key's type.
    #[tracing::instrument(name = "store.set_preference", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn set_preference(
        &self,
        p: &Principal,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<Preference> {
        let spec = pref_spec(key).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown preference '{key}'; known: {}",
                mosaic_api::PREFERENCES
                    .iter()
                    .map(|p| p.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        spec.value_type
            .validate(value)
            .map_err(|why| StoreError::Invalid(format!("{key}: {why}")))?;
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(
                "INSERT INTO preferences (user_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(local_user(p)?)
                .bind(key)
                .bind(value.to_string())
                .bind(now),
        )
        .await?;
        tx.commit().await?;
        Ok(Preference {
            key: key.to_string(),
            value: value.clone(),
            updated_at: format_time(now),
        })
    }

    /// Unset a preference (it falls back to its default).
    #[tracing::instrument(name = "store.delete_preference", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_preference(&self, p: &Principal, key: &str) -> Result<()> {
        known_key(key)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::Preferences, 2);
        let sql = tx
            .sql(&format!(
                "DELETE FROM preferences WHERE {visible} AND key = $1"
            ))
            .into_owned();
        let n = tx
            .execute(visible.bind(sqlx::query(&sql).bind(key)))
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }
}
