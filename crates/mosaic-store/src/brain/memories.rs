//! Memories: short things worth remembering, with a kind, tags and an importance.
//! Pinned memories are read at the start of every run of their owner (those with an
//! `agent_id` only in that agent's runs); `recall` marks what it returned as used.

use mosaic_api::{
    CreateMemoryRequest, Memory, MemoryKind, MemoryQuery, Owner, Page, UpdateMemoryRequest,
    DEFAULT_IMPORTANCE, MAX_MEMORY_CHARS, MAX_PINNED,
};
use sqlx::any::AnyRow;

use super::list::BrainList;
use super::{
    check_may_delete, decode_labels, encode_labels, index_text, new_owner, normalise_labels,
    owner_columns,
};
use crate::db::{Acting, Tx};
use crate::row::{parsed, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const MEMORY_COLUMNS: &str = "id, text, kind, tags, importance, pinned, agent_id, \
     source_session_id, owner_user_id, owner_team_id, created_at, updated_at, used_at";

/// The columns read back: the stored ones and whether the embedding is there.
fn select_columns() -> String {
    format!("{MEMORY_COLUMNS}, CASE WHEN embedding IS NULL THEN 0 ELSE 1 END AS embedded")
}

impl FromRow for Memory {
    fn from_row(row: &AnyRow) -> Result<Memory> {
        let kind: String = row.col("kind")?;
        Ok(Memory {
            id: row.col("id")?,
            text: row.col("text")?,
            kind: parsed("memory kind", &kind, MemoryKind::parse)?,
            tags: decode_labels(&row.col::<String>("tags")?),
            importance: u8::try_from(row.col::<i64>("importance")?).unwrap_or(DEFAULT_IMPORTANCE),
            pinned: row.col::<i64>("pinned")? != 0,
            agent_id: row.col("agent_id")?,
            source_session_id: row.col("source_session_id")?,
            owner: Owner::from_row(row)?,
            embedded: row.col::<i64>("embedded")? != 0,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
            used_at: row.col::<Option<i64>>("used_at")?.map(format_time),
        })
    }
}

async fn select_memory(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Memory> {
    let visible = tx.visible(p, Table::Memories, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {} FROM memories WHERE id = $1 AND {visible}",
            select_columns()
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Memory::from_row(&row)
}

/// Trimmed, 1 to [`MAX_MEMORY_CHARS`] characters.
fn check_text(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_MEMORY_CHARS {
        return Err(StoreError::Invalid(format!(
            "a memory is 1-{MAX_MEMORY_CHARS} characters (longer text belongs in a note)"
        )));
    }
    Ok(text.to_string())
}

fn check_importance(importance: Option<u8>) -> Result<Option<u8>> {
    match importance {
        Some(i) if !(1..=5).contains(&i) => Err(StoreError::Invalid(
            "importance runs from 1 (trivia) to 5 (essential)".into(),
        )),
        other => Ok(other),
    }
}

/// Fails unless `table` (agents or sessions: a user's own) has row `id` of the caller.
async fn check_own(
    tx: &mut Tx<'_>,
    p: &Principal,
    table: Table,
    what: &str,
    id: &str,
) -> Result<()> {
    let visible = tx.visible(p, table, 2);
    let sql = tx
        .sql(&format!(
            "SELECT id FROM {} WHERE id = $1 AND {visible}",
            table.name()
        ))
        .into_owned();
    match tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!("no {what} {id} of yours"))),
    }
}

/// Fails when the owner already has [`MAX_PINNED`] pinned memories (other than `except`).
async fn check_pin_room(tx: &mut Tx<'_>, owner: &Owner, except: Option<&str>) -> Result<()> {
    let (user, team) = owner_columns(owner)?;
    let sql = tx
        .sql(
            "SELECT COUNT(*) AS n FROM memories WHERE pinned = 1 AND id <> $3 AND \
             (owner_user_id = $1 OR owner_team_id = $2)",
        )
        .into_owned();
    let row = tx
        .fetch_optional(
            sqlx::query(&sql)
                .bind(user.unwrap_or_default())
                .bind(team.unwrap_or_default())
                .bind(except.unwrap_or_default()),
        )
        .await?;
    let pinned = match row {
        Some(row) => row.col::<i64>("n")?,
        None => 0,
    };
    if pinned >= MAX_PINNED as i64 {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_PINNED} pinned memories per owner: unpin one first"
        )));
    }
    Ok(())
}

impl Store {
    /// Save a memory, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_memory", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_memory(&self, p: &Principal, req: &CreateMemoryRequest) -> Result<Memory> {
        let text = check_text(&req.text)?;
        let tags = normalise_labels(&req.tags)?;
        let importance = check_importance(req.importance)?.unwrap_or(DEFAULT_IMPORTANCE);
        let mut tx = self.begin(Acting::As(p), true).await?;
        let owner = new_owner(&mut tx, p, req.team_id.as_deref()).await?;
        if let Some(agent) = &req.agent_id {
            check_own(&mut tx, p, Table::Agents, "agent", agent).await?;
        }
        if let Some(session) = &req.source_session_id {
            check_own(&mut tx, p, Table::Sessions, "session", session).await?;
        }
        if req.pinned {
            check_pin_room(&mut tx, &owner, None).await?;
        }
        let (user_owner, team_owner) = owner_columns(&owner)?;
        let id = new_id();
        let sql = tx
            .sql(&format!(
                "INSERT INTO memories ({MEMORY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, NULL)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&text)
                .bind(req.kind.unwrap_or(MemoryKind::Fact).as_str())
                .bind(encode_labels(&tags))
                .bind(i64::from(importance))
                .bind(i64::from(req.pinned))
                .bind(req.agent_id.clone())
                .bind(req.source_session_id.clone())
                .bind(user_owner)
                .bind(team_owner)
                .bind(now_ms()),
        )
        .await?;
        index_text(&mut tx, self.backend(), "memories", &id, &text, "").await?;
        let memory = select_memory(&mut tx, p, &id).await?;
        tx.commit().await?;
        self.text_changed();
        Ok(memory)
    }

    #[tracing::instrument(name = "store.get_memory", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_memory(&self, p: &Principal, id: &str) -> Result<Memory> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let memory = select_memory(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(memory)
    }

    /// The memories the caller can see that pass every given filter, newest first.
    #[tracing::instrument(name = "store.list_memories", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_memories(&self, p: &Principal, q: &MemoryQuery) -> Result<Page<Memory>> {
        BrainList::new(Table::Memories, select_columns())
            .eq("kind", q.kind.map(MemoryKind::as_str))
            .label("tags", q.tag.as_deref())
            .eq_int("pinned", q.pinned.map(i64::from))
            .eq("agent_id", q.agent_id.as_deref())
            .words(self, q.q.as_deref())
            .page(
                self,
                p,
                q.cursor.as_deref(),
                q.limit,
                Memory::from_row,
                |m| m.id.clone(),
            )
            .await
    }

    /// The pinned memories a run of `agent_id` for the caller starts with: the caller's
    /// and their teams', shared ones and that agent's own, most important first, then
    /// most recently changed. At most [`MAX_PINNED`].
    #[tracing::instrument(name = "store.pinned_memories", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn pinned_memories(&self, p: &Principal, agent_id: &str) -> Result<Vec<Memory>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Memories, 3);
        let sql = tx
            .sql(&format!(
                "SELECT {} FROM memories WHERE {visible} AND pinned = 1 \
                 AND (agent_id IS NULL OR agent_id = $1) \
                 ORDER BY importance DESC, updated_at DESC, id DESC LIMIT $2",
                select_columns()
            ))
            .into_owned();
        let rows = tx
            .fetch_all(visible.bind(sqlx::query(&sql).bind(agent_id).bind(MAX_PINNED as i64)))
            .await?;
        tx.commit().await?;
        rows.iter().map(Memory::from_row).collect()
    }

    /// Change a memory; members of an owning team may.
    #[tracing::instrument(name = "store.update_memory", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_memory(
        &self,
        p: &Principal,
        id: &str,
        req: &UpdateMemoryRequest,
    ) -> Result<Memory> {
        let text = req.text.as_deref().map(check_text).transpose()?;
        let tags = req.tags.as_deref().map(normalise_labels).transpose()?;
        let importance = check_importance(req.importance)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_memory(&mut tx, p, id).await?;
        if let Some(Some(agent)) = &req.agent_id {
            check_own(&mut tx, p, Table::Agents, "agent", agent).await?;
        }
        if req.pinned == Some(true) && !old.pinned {
            check_pin_room(&mut tx, &old.owner, Some(id)).await?;
        }
        let text_changed = text.as_ref().is_some_and(|t| *t != old.text);
        let text = text.unwrap_or(old.text);
        let sql = tx
            .sql(
                "UPDATE memories SET text = $2, kind = $3, tags = $4, importance = $5, \
                 pinned = $6, agent_id = $7, updated_at = $8 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(&text)
                .bind(req.kind.unwrap_or(old.kind).as_str())
                .bind(encode_labels(&tags.unwrap_or(old.tags)))
                .bind(i64::from(importance.unwrap_or(old.importance)))
                .bind(i64::from(req.pinned.unwrap_or(old.pinned)))
                .bind(req.agent_id.clone().unwrap_or(old.agent_id))
                .bind(now_ms()),
        )
        .await?;
        if text_changed {
            index_text(&mut tx, self.backend(), "memories", id, &text, "").await?;
        }
        let memory = select_memory(&mut tx, p, id).await?;
        tx.commit().await?;
        if text_changed {
            self.text_changed();
        }
        Ok(memory)
    }

    /// Note that a recall returned these memories (those the caller can see).
    #[tracing::instrument(name = "store.touch_memories", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn touch_memories(&self, p: &Principal, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        let visible = tx.visible(p, Table::Memories, 3);
        let sql = tx
            .sql(&format!(
                "UPDATE memories SET used_at = $2 WHERE id = $1 AND {visible}"
            ))
            .into_owned();
        let now = now_ms();
        for id in ids {
            tx.execute(visible.clone().bind(sqlx::query(&sql).bind(id).bind(now)))
                .await?;
        }
        tx.commit().await
    }

    /// Forget a memory (a team's: its owners and admins only).
    #[tracing::instrument(name = "store.delete_memory", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_memory(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_memory(&mut tx, p, id).await?;
        check_may_delete(&mut tx, p, &old.owner).await?;
        let sql = tx.sql("DELETE FROM memories WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.forget_vector(mosaic_api::BrainKind::Memory, id).await;
        Ok(())
    }
}
