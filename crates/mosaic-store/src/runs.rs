//! Runs, the answer a run is streaming, and messages waiting for a run. A run's row is
//! written when it starts, checkpointed while the model streams, and closed when it
//! ends; a row still `running` after a restart belongs to a run the gateway lost, and
//! [`Store::recover_run`] closes it, keeping the text that had streamed.

use mosaic_api::{
    Delivery, Entry, EntryBody, Page, PageQuery, QueuedMessage, Run, RunStatus, RunUsage,
    StopReason, DEFAULT_LIMIT, MAX_LIMIT,
};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::principal::local_user;
use crate::row::{parsed, Columns, FromRow};
use crate::sessions::{append_in, check_entry, select_session};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Parent, Principal, Result, Store, StoreError};

const RUN_COLUMNS: &str = "id, session_id, status, stop_reason, error, model_calls, \
     input_tokens, output_tokens, cached_tokens, started_at, finished_at";

/// Where a run has got to: counted model calls and tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub model_calls: u32,
    pub usage: RunUsage,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub status: RunStatus,
    pub stop_reason: Option<StopReason>,
    pub error: Option<String>,
}

/// The answer streaming now, as last saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialAnswer {
    pub text: String,
    pub thinking: String,
    /// The entry the answer will hang under.
    pub parent_id: Option<String>,
    /// `provider/model` answering.
    pub model: Option<String>,
}

/// A run the gateway lost (it stopped mid-run), for recovery at start.
#[derive(Debug, Clone)]
pub struct OrphanRun {
    pub principal: Principal,
    pub session_id: String,
    pub run_id: String,
}

impl FromRow for Run {
    fn from_row(row: &AnyRow) -> Result<Run> {
        let status: String = row.col("status")?;
        let count = |name: &str| -> Result<u64> { Ok(row.col::<i64>(name)?.max(0) as u64) };
        Ok(Run {
            id: row.col("id")?,
            session_id: row.col("session_id")?,
            status: parsed("run status", &status, RunStatus::parse)?,
            stop_reason: row
                .col::<Option<String>>("stop_reason")?
                .map(|r| StopReason::parse(&r)),
            error: row.col("error")?,
            model_calls: count("model_calls")? as u32,
            usage: RunUsage {
                input_tokens: count("input_tokens")?,
                output_tokens: count("output_tokens")?,
                cached_tokens: count("cached_tokens")?,
            },
            started_at: format_time(row.col("started_at")?),
            finished_at: row.col::<Option<i64>>("finished_at")?.map(format_time),
        })
    }
}

impl FromRow for QueuedMessage {
    fn from_row(row: &AnyRow) -> Result<QueuedMessage> {
        let delivery: String = row.col("delivery")?;
        Ok(QueuedMessage {
            id: row.col("id")?,
            text: row.col("text")?,
            delivery: match delivery.as_str() {
                "steer" => Delivery::Steer,
                _ => Delivery::FollowUp,
            },
            created_at: format_time(row.col("created_at")?),
        })
    }
}

fn delivery_str(d: Delivery) -> &'static str {
    match d {
        Delivery::FollowUp => "follow_up",
        Delivery::Steer => "steer",
    }
}

async fn select_run(tx: &mut Tx<'_>, p: &Principal, run_id: &str) -> Result<Run> {
    let visible = tx.visible(p, Table::Runs, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {visible} AND id = $1"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(run_id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Run::from_row(&row)
}

/// A new `running` row; `Conflict` while another runs in the session.
async fn insert_run(tx: &mut Tx<'_>, p: &Principal, session_id: &str) -> Result<String> {
    let id = new_id();
    let sql = tx
        .sql(
            // A disabled owner starts nothing, not even the runs of messages they queued
            // before an admin disabled them.
            "INSERT INTO runs (id, session_id, owner_user_id, status, started_at) \
             SELECT $1, $2, $3, 'running', $4 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $3 AND disabled = 0)",
        )
        .into_owned();
    let inserted = tx
        .execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(session_id)
                .bind(local_user(p)?)
                .bind(now_ms()),
        )
        .await;
    match inserted {
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(
            "a run is already active in this session".into(),
        )),
        Ok(0) => Err(StoreError::Forbidden("this account is disabled".into())),
        other => other.map(|_| id),
    }
}

/// Record progress on a run and forget its partial answer (it has just become an entry,
/// or there is none).
async fn save_progress(
    tx: &mut Tx<'_>,
    p: &Principal,
    run_id: &str,
    progress: &RunProgress,
) -> Result<()> {
    let visible = tx.visible(p, Table::Runs, 6);
    let sql = tx
        .sql(&format!(
            "UPDATE runs SET model_calls = $2, input_tokens = $3, output_tokens = $4, \
             cached_tokens = $5, partial_text = '', partial_thinking = '', \
             partial_parent_id = NULL, partial_model = NULL \
             WHERE {visible} AND id = $1",
        ))
        .into_owned();
    let n = tx
        .execute(
            visible.bind(
                sqlx::query(&sql)
                    .bind(run_id)
                    .bind(i64::from(progress.model_calls))
                    .bind(progress.usage.input_tokens as i64)
                    .bind(progress.usage.output_tokens as i64)
                    .bind(progress.usage.cached_tokens as i64),
            ),
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

impl Store {
    /// Begin a run in a session. Fails with `Conflict` while another is running there.
    #[tracing::instrument(name = "store.start_run", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn start_run(&self, p: &Principal, session_id: &str) -> Result<Run> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_session(&mut tx, p, session_id).await?;
        let id = insert_run(&mut tx, p, session_id).await?;
        let run = select_run(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Append a user's message and begin a run for it, in one transaction.
    #[tracing::instrument(name = "store.start_run_with", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn start_run_with(
        &self,
        p: &Principal,
        session_id: &str,
        parent: Parent<'_>,
        message: EntryBody,
    ) -> Result<(Run, Entry)> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let entry = append_in(&mut tx, p, session_id, parent, message).await?;
        let id = insert_run(&mut tx, p, session_id).await?;
        let run = select_run(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok((run, entry))
    }

    /// Append an entry made by a run, recording the run's progress in the same
    /// transaction (so a crash cannot both keep the entry and its partial copy).
    #[tracing::instrument(name = "store.append_run_entry", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn append_run_entry(
        &self,
        p: &Principal,
        session_id: &str,
        run_id: &str,
        parent: Parent<'_>,
        body: EntryBody,
        progress: &RunProgress,
    ) -> Result<Entry> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let entry = append_in(&mut tx, p, session_id, parent, body).await?;
        save_progress(&mut tx, p, run_id, progress).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Save the answer streaming now.
    #[tracing::instrument(name = "store.checkpoint_run", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn checkpoint_run(
        &self,
        p: &Principal,
        run_id: &str,
        partial: &PartialAnswer,
    ) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::Runs, 6);
        let sql = tx
            .sql(&format!(
                "UPDATE runs SET partial_text = $2, partial_thinking = $3, \
                 partial_parent_id = $4, partial_model = $5 \
                 WHERE {visible} AND id = $1 AND status = 'running'",
            ))
            .into_owned();
        tx.execute(
            visible.bind(
                sqlx::query(&sql)
                    .bind(run_id)
                    .bind(&partial.text)
                    .bind(&partial.thinking)
                    .bind(partial.parent_id.clone())
                    .bind(partial.model.clone()),
            ),
        )
        .await?;
        tx.commit().await
    }

    /// Close a run.
    #[tracing::instrument(name = "store.finish_run", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn finish_run(
        &self,
        p: &Principal,
        run_id: &str,
        end: &RunEnd,
        progress: &RunProgress,
    ) -> Result<Run> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        save_progress(&mut tx, p, run_id, progress).await?;
        let visible = tx.visible(p, Table::Runs, 6);
        let sql = tx
            .sql(&format!(
                "UPDATE runs SET status = $2, stop_reason = $3, error = $4, finished_at = $5 \
                 WHERE {visible} AND id = $1",
            ))
            .into_owned();
        tx.execute(
            visible.bind(
                sqlx::query(&sql)
                    .bind(run_id)
                    .bind(end.status.as_str())
                    .bind(end.stop_reason.as_ref().map(|r| r.as_str().to_string()))
                    .bind(end.error.clone())
                    .bind(now_ms()),
            ),
        )
        .await?;
        let run = select_run(&mut tx, p, run_id).await?;
        tx.commit().await?;
        Ok(run)
    }

    #[tracing::instrument(name = "store.get_run", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_run(&self, p: &Principal, run_id: &str) -> Result<Run> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let run = select_run(&mut tx, p, run_id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// A session's runs, newest first.
    #[tracing::instrument(name = "store.list_runs", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_runs(
        &self,
        p: &Principal,
        session_id: &str,
        page: &PageQuery,
    ) -> Result<Page<Run>> {
        let limit = page.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let mut tx = self.begin(Acting::As(p), false).await?;
        select_session(&mut tx, p, session_id).await?;
        let visible = tx.visible(p, Table::Runs, 4);
        let sql = tx
            .sql(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {visible} AND session_id = $1 \
                 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
            ))
            .into_owned();
        let rows = tx
            .fetch_all(
                visible.bind(
                    sqlx::query(&sql)
                        .bind(session_id)
                        .bind(page.cursor.clone().unwrap_or_default())
                        .bind(i64::from(limit) + 1),
                ),
            )
            .await?;
        tx.commit().await?;
        let mut items = rows.iter().map(Run::from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Runs left `running` by a gateway that stopped, across all users.
    #[tracing::instrument(name = "store.orphan_runs", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn orphan_runs(&self) -> Result<Vec<OrphanRun>> {
        let mut tx = self.begin(Acting::System, false).await?;
        let sql = "SELECT r.id, r.session_id, r.owner_user_id, u.is_admin FROM runs r \
                   JOIN users u ON u.id = r.owner_user_id WHERE r.status = 'running'";
        let rows = tx.fetch_all(sqlx::query(sql)).await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(OrphanRun {
                    principal: Principal::user(
                        row.col::<String>("owner_user_id")?,
                        row.col::<i64>("is_admin")? != 0,
                    ),
                    session_id: row.col("session_id")?,
                    run_id: row.col("id")?,
                })
            })
            .collect()
    }

    /// Close a run the gateway lost: what had streamed becomes an assistant entry
    /// marked `interrupted`, and the run is marked interrupted (`gateway_stopped`).
    #[tracing::instrument(name = "store.recover_run", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn recover_run(&self, p: &Principal, run_id: &str) -> Result<(Run, Option<Entry>)> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::Runs, 2);
        let sql = tx
            .sql(&format!(
                "SELECT session_id, partial_text, partial_thinking, partial_parent_id, \
                 partial_model, status FROM runs WHERE {visible} AND id = $1",
            ))
            .into_owned();
        let row = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(run_id)))
            .await?
            .ok_or(StoreError::NotFound)?;
        let status: String = row.col("status")?;
        if status != "running" {
            let run = select_run(&mut tx, p, run_id).await?;
            tx.commit().await?;
            return Ok((run, None));
        }
        let session_id: String = row.col("session_id")?;
        let partial = PartialAnswer {
            text: row.col("partial_text")?,
            thinking: row.col("partial_thinking")?,
            parent_id: row.col("partial_parent_id")?,
            model: row.col("partial_model")?,
        };
        let mut entry = None;
        if !partial.text.is_empty() || !partial.thinking.is_empty() {
            let parent = match &partial.parent_id {
                Some(id) if check_entry(&mut tx, &session_id, id).await.is_ok() => Some(id.clone()),
                _ => None,
            };
            let body = EntryBody::Assistant {
                text: partial.text,
                thinking: partial.thinking,
                model: partial.model,
                stop_reason: Some(StopReason::Interrupted),
                reasoning: Vec::new(),
            };
            let at = match &parent {
                Some(id) => Parent::Entry(id),
                None => Parent::ActiveLeaf,
            };
            entry = Some(append_in(&mut tx, p, &session_id, at, body).await?);
        }
        let visible = tx.visible(p, Table::Runs, 3);
        let sql = tx
            .sql(&format!(
                "UPDATE runs SET status = 'interrupted', stop_reason = 'gateway_stopped', \
                 partial_text = '', partial_thinking = '', partial_parent_id = NULL, \
                 partial_model = NULL, finished_at = $2 WHERE {visible} AND id = $1",
            ))
            .into_owned();
        tx.execute(visible.bind(sqlx::query(&sql).bind(run_id).bind(now_ms())))
            .await?;
        let run = select_run(&mut tx, p, run_id).await?;
        tx.commit().await?;
        Ok((run, entry))
    }

    /// Reserve `block` event numbers for a session; returns the first of them. Numbers
    /// handed out never repeat, also across restarts.
    #[tracing::instrument(name = "store.reserve_event_numbers", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn reserve_event_numbers(
        &self,
        p: &Principal,
        session_id: &str,
        block: u64,
    ) -> Result<u64> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::Runs, 3);
        let sql = tx
            .sql(&format!(
                "UPDATE sessions SET event_seq = event_seq + $2 \
                 WHERE {visible} AND id = $1 RETURNING event_seq",
            ))
            .into_owned();
        let row = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(session_id).bind(block as i64)))
            .await?
            .ok_or(StoreError::NotFound)?;
        let high: i64 = row.col("event_seq")?;
        tx.commit().await?;
        Ok(high as u64 - block + 1)
    }

    /// Keep a message for a run to come.
    #[tracing::instrument(name = "store.enqueue_message", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn enqueue_message(
        &self,
        p: &Principal,
        session_id: &str,
        delivery: Delivery,
        text: &str,
    ) -> Result<QueuedMessage> {
        check_message(text)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_session(&mut tx, p, session_id).await?;
        let id = new_id();
        let sql = tx
            .sql(
                "INSERT INTO queued_messages (id, session_id, owner_user_id, delivery, text, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(session_id)
                .bind(local_user(p)?)
                .bind(delivery_str(delivery))
                .bind(text)
                .bind(now_ms()),
        )
        .await?;
        let sql = tx
            .sql("SELECT id, text, delivery, created_at FROM queued_messages WHERE id = $1")
            .into_owned();
        let row = tx
            .fetch_optional(sqlx::query(&sql).bind(&id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        QueuedMessage::from_row(&row)
    }

    /// A session's waiting messages, oldest first.
    #[tracing::instrument(name = "store.queued_messages", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn queued_messages(
        &self,
        p: &Principal,
        session_id: &str,
    ) -> Result<Vec<QueuedMessage>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        select_session(&mut tx, p, session_id).await?;
        let visible = tx.visible(p, Table::QueuedMessages, 2);
        let sql = tx
            .sql(&format!(
                "SELECT id, text, delivery, created_at FROM queued_messages \
                 WHERE {visible} AND session_id = $1 ORDER BY id",
            ))
            .into_owned();
        let rows = tx
            .fetch_all(visible.bind(sqlx::query(&sql).bind(session_id)))
            .await?;
        tx.commit().await?;
        rows.iter().map(QueuedMessage::from_row).collect()
    }

    /// Turn a waiting message into a user entry after the active leaf, in one
    /// transaction (it is neither lost nor delivered twice). `NotFound` when it is gone.
    #[tracing::instrument(name = "store.deliver_queued", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn deliver_queued(
        &self,
        p: &Principal,
        session_id: &str,
        message_id: &str,
        run: Option<(&str, &RunProgress)>,
    ) -> Result<Entry> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::QueuedMessages, 3);
        let sql = tx
            .sql(&format!(
                "SELECT text FROM queued_messages \
                 WHERE {visible} AND session_id = $1 AND id = $2",
            ))
            .into_owned();
        let row = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(session_id).bind(message_id)))
            .await?
            .ok_or(StoreError::NotFound)?;
        let text: String = row.col("text")?;
        let sql = tx
            .sql("DELETE FROM queued_messages WHERE id = $1")
            .into_owned();
        tx.execute(sqlx::query(&sql).bind(message_id)).await?;
        let entry = append_in(
            &mut tx,
            p,
            session_id,
            Parent::ActiveLeaf,
            EntryBody::User { text },
        )
        .await?;
        if let Some((run_id, progress)) = run {
            save_progress(&mut tx, p, run_id, progress).await?;
        }
        tx.commit().await?;
        Ok(entry)
    }

    /// Sessions with waiting messages, across all users (for the gateway's start).
    #[tracing::instrument(name = "store.sessions_with_queue", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn sessions_with_queue(&self) -> Result<Vec<(Principal, String)>> {
        let mut tx = self.begin(Acting::System, false).await?;
        let sql = "SELECT DISTINCT q.session_id, q.owner_user_id, u.is_admin \
                   FROM queued_messages q JOIN users u ON u.id = q.owner_user_id";
        let rows = tx.fetch_all(sqlx::query(sql)).await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Principal::user(
                        row.col::<String>("owner_user_id")?,
                        row.col::<i64>("is_admin")? != 0,
                    ),
                    row.col("session_id")?,
                ))
            })
            .collect()
    }
}

/// Largest message a user may send, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A message must say something and fit.
pub fn check_message(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(StoreError::Invalid("the message is empty".into()));
    }
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(StoreError::Invalid(format!(
            "the message is longer than {} KiB",
            MAX_MESSAGE_BYTES / 1024
        )));
    }
    Ok(())
}
