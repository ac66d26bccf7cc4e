//! Token usage per user, per `provider/model`, per day (UTC).

use mosaic_api::UsageRow;

use crate::db::Acting;
use crate::principal::local_user;
use crate::row::Columns;
use crate::visibility::Table;
use crate::{Principal, Result, Store, StoreError};

/// `YYYY-MM-DD` (UTC) of a time in milliseconds.
pub fn day_of(ms: i64) -> String {
    crate::format_time(ms)[..10].to_string()
}

fn check_day(day: &str) -> Result<()> {
    let bad = || StoreError::Invalid(format!("'{day}' is not a YYYY-MM-DD day"));
    let b = day.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(bad());
    }
    let month: u32 = day[5..7].parse().map_err(|_| bad())?;
    let dom: u32 = day[8..10].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
        return Err(bad());
    }
    Ok(())
}

impl Store {
    /// Add one call's tokens to the principal's tally for today.
    #[tracing::instrument(name = "store.record_usage", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn record_usage(
        &self,
        p: &Principal,
        provider: &str,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
        cached_tokens: u64,
    ) -> Result<()> {
        let day = day_of(crate::now_ms());
        let sql = self
            .sql(
                "INSERT INTO usage_daily (user_id, day, provider, model, requests, input_tokens, \
                 output_tokens, cached_tokens) VALUES ($1, $2, $3, $4, 1, $5, $6, $7) \
                 ON CONFLICT (user_id, day, provider, model) DO UPDATE SET \
                 requests = usage_daily.requests + 1, \
                 input_tokens = usage_daily.input_tokens + excluded.input_tokens, \
                 output_tokens = usage_daily.output_tokens + excluded.output_tokens, \
                 cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens",
            )
            .into_owned();
        self.write_alone(
            p,
            sqlx::query(&sql)
                .bind(local_user(p)?)
                .bind(day)
                .bind(provider)
                .bind(model)
                .bind(input_tokens as i64)
                .bind(output_tokens as i64)
                .bind(cached_tokens as i64),
        )
        .await
    }

    /// The principal's usage between two days, inclusive.
    #[tracing::instrument(name = "store.usage_report", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn usage_report(&self, p: &Principal, from: &str, to: &str) -> Result<Vec<UsageRow>> {
        check_day(from)?;
        check_day(to)?;
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::UsageDaily, 3);
        let sql = tx
            .sql(&format!(
                "SELECT day, provider, model, requests, input_tokens, output_tokens, cached_tokens \
                 FROM usage_daily WHERE {visible} AND day >= $1 AND day <= $2 \
                 ORDER BY day, provider, model",
            ))
            .into_owned();
        let rows = tx
            .fetch_all(visible.bind(sqlx::query(&sql).bind(from).bind(to)))
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    day: r.col("day")?,
                    provider: r.col("provider")?,
                    model: r.col("model")?,
                    requests: r.col::<i64>("requests")? as u64,
                    input_tokens: r.col::<i64>("input_tokens")? as u64,
                    output_tokens: r.col::<i64>("output_tokens")? as u64,
                    cached_tokens: r.col::<i64>("cached_tokens")? as u64,
                })
            })
            .collect()
    }
}
