//! Tasks: things to do, optionally in a project, optionally under a parent task (a
//! tree: no task is its own ancestor), assigned to the owner or a member of the owning
//! team.

use mosaic_api::{
    BrainKind, CreateTaskRequest, Owner, Page, Task, TaskPriority, TaskQuery, TaskStatus,
    UpdateTaskRequest,
};
use sqlx::any::AnyRow;

use super::list::BrainList;
use super::{
    check_body, check_may_delete, check_reference, check_title, decode_labels, encode_labels,
    index_text, new_owner, normalise_labels, owner_columns, parse_time,
};
use crate::db::{Acting, Tx};
use crate::row::{parsed, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const TASK_COLUMNS: &str = "id, title, body, status, priority, due_at, assignee_user_id, \
     labels, project_id, parent_task_id, owner_user_id, owner_team_id, created_at, \
     updated_at, done_at, mission_id";

/// Deeper parent chains than this are refused (and bound the ancestor walk).
const MAX_DEPTH: i64 = 1000;

impl FromRow for Task {
    fn from_row(row: &AnyRow) -> Result<Task> {
        let status: String = row.col("status")?;
        let priority: String = row.col("priority")?;
        Ok(Task {
            id: row.col("id")?,
            title: row.col("title")?,
            body: row.col("body")?,
            status: parsed("task status", &status, TaskStatus::parse)?,
            priority: parsed("priority", &priority, TaskPriority::parse)?,
            due_at: row.col::<Option<i64>>("due_at")?.map(format_time),
            assignee_user_id: row.col("assignee_user_id")?,
            labels: decode_labels(&row.col::<String>("labels")?),
            project_id: row.col("project_id")?,
            parent_task_id: row.col("parent_task_id")?,
            mission_id: row.col("mission_id")?,
            owner: Owner::from_row(row)?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
            done_at: row.col::<Option<i64>>("done_at")?.map(format_time),
        })
    }
}

pub(crate) async fn select_task(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Task> {
    let visible = tx.visible(p, Table::Tasks, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Task::from_row(&row)
}

/// The assignee must be the owning user or a member of the owning team.
async fn check_assignee(tx: &mut Tx<'_>, owner: &Owner, user_id: &str) -> Result<()> {
    let ok = match owner {
        Owner::User { id } => id == user_id,
        Owner::Unknown => return Err(super::unknown_owner()),
        Owner::Team { id } => {
            let sql = tx
                .sql("SELECT user_id FROM team_members WHERE team_id = $1 AND user_id = $2")
                .into_owned();
            tx.fetch_optional(sqlx::query(&sql).bind(id).bind(user_id))
                .await?
                .is_some()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "user {user_id} cannot be assigned a task of this owner"
        )))
    }
}

/// `parent` must be a visible task of the same owner, and `task` (when it exists
/// already) must not be among its ancestors.
async fn check_parent(
    tx: &mut Tx<'_>,
    p: &Principal,
    owner: &Owner,
    parent: &str,
    task: Option<&str>,
) -> Result<()> {
    check_reference(tx, p, Table::Tasks, "task", parent, owner).await?;
    // Concurrent re-parentings of one owner's tasks take turns, so two of them cannot
    // each pass this check and together close a cycle.
    let (user, team) = owner_columns(owner)?;
    tx.lock(&format!("task-tree:{}", user.or(team).unwrap_or_default()))
        .await?;
    let sql = tx
        .sql(
            "WITH RECURSIVE up(id, parent_task_id, depth) AS ( \
               SELECT id, parent_task_id, 0 FROM tasks WHERE id = $1 \
               UNION ALL \
               SELECT t.id, t.parent_task_id, up.depth + 1 FROM tasks t \
                 JOIN up ON t.id = up.parent_task_id WHERE up.depth < $3) \
             SELECT id, depth FROM up WHERE id = $2 OR depth >= $3 - 1",
        )
        .into_owned();
    let found = tx
        .fetch_optional(
            sqlx::query(&sql)
                .bind(parent)
                .bind(task.unwrap_or_default())
                .bind(MAX_DEPTH),
        )
        .await?;
    match found {
        None => Ok(()),
        Some(row) if task == Some(row.col::<String>("id")?.as_str()) => Err(StoreError::Conflict(
            "a task cannot be its own ancestor".into(),
        )),
        Some(_) => Err(StoreError::Conflict("tasks nest too deeply".into())),
    }
}

impl Store {
    /// Create a task, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_task", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_task(&self, p: &Principal, req: &CreateTaskRequest) -> Result<Task> {
        let title = check_title(&req.title, "task title")?;
        check_body(&req.body, "task body")?;
        let labels = normalise_labels(&req.labels)?;
        let due_at = req.due_at.as_deref().map(parse_time).transpose()?;
        let status = req.status.unwrap_or(TaskStatus::Todo);
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let owner = new_owner(&mut tx, p, req.team_id.as_deref()).await?;
        if let Some(project) = &req.project_id {
            check_reference(&mut tx, p, Table::Projects, "project", project, &owner).await?;
        }
        if let Some(parent) = &req.parent_task_id {
            check_parent(&mut tx, p, &owner, parent, None).await?;
        }
        if let Some(mission) = &req.mission_id {
            check_reference(&mut tx, p, Table::Missions, "mission", mission, &owner).await?;
        }
        if let Some(assignee) = &req.assignee_user_id {
            check_assignee(&mut tx, &owner, assignee).await?;
        }
        let (user_owner, team_owner) = owner_columns(&owner)?;
        let id = new_id();
        let sql = tx
            .sql(&format!(
                "INSERT INTO tasks ({TASK_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&title)
                .bind(&req.body)
                .bind(status.as_str())
                .bind(req.priority.unwrap_or(TaskPriority::Normal).as_str())
                .bind(due_at)
                .bind(req.assignee_user_id.clone())
                .bind(encode_labels(&labels))
                .bind(req.project_id.clone())
                .bind(req.parent_task_id.clone())
                .bind(user_owner)
                .bind(team_owner)
                .bind(now)
                .bind((status == TaskStatus::Done).then_some(now))
                .bind(req.mission_id.clone()),
        )
        .await?;
        index_text(&mut tx, self.backend(), "tasks", &id, &title, &req.body).await?;
        let task = select_task(&mut tx, p, &id).await?;
        tx.commit().await?;
        self.text_changed();
        Ok(task)
    }

    #[tracing::instrument(name = "store.get_task", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_task(&self, p: &Principal, id: &str) -> Result<Task> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let task = select_task(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// The tasks the caller can see that pass every given filter, newest first.
    #[tracing::instrument(name = "store.list_tasks", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_tasks(&self, p: &Principal, q: &TaskQuery) -> Result<Page<Task>> {
        let due_before = q.due_before.as_deref().map(parse_time).transpose()?;
        BrainList::new(Table::Tasks, TASK_COLUMNS)
            .eq("project_id", q.project_id.as_deref())
            .eq("status", q.status.map(TaskStatus::as_str))
            .eq("assignee_user_id", q.assignee.as_deref())
            .label("labels", q.label.as_deref())
            .eq("parent_task_id", q.parent_task_id.as_deref())
            .eq("mission_id", q.mission_id.as_deref())
            .before("due_at", due_before)
            .words(self, q.q.as_deref())
            .page(self, p, q.cursor.as_deref(), q.limit, Task::from_row, |t| {
                t.id.clone()
            })
            .await
    }

    /// Change a task; members of an owning team may.
    #[tracing::instrument(name = "store.update_task", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_task(
        &self,
        p: &Principal,
        id: &str,
        req: &UpdateTaskRequest,
    ) -> Result<Task> {
        let title = req
            .title
            .as_deref()
            .map(|t| check_title(t, "task title"))
            .transpose()?;
        if let Some(body) = &req.body {
            check_body(body, "task body")?;
        }
        let labels = req.labels.as_deref().map(normalise_labels).transpose()?;
        let due_at = match &req.due_at {
            Some(Some(t)) => Some(Some(parse_time(t)?)),
            Some(None) => Some(None),
            None => None,
        };
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_task(&mut tx, p, id).await?;
        if let Some(Some(project)) = &req.project_id {
            check_reference(&mut tx, p, Table::Projects, "project", project, &old.owner).await?;
        }
        if let Some(Some(parent)) = &req.parent_task_id {
            check_parent(&mut tx, p, &old.owner, parent, Some(id)).await?;
        }
        if let Some(Some(mission)) = &req.mission_id {
            check_reference(&mut tx, p, Table::Missions, "mission", mission, &old.owner).await?;
        }
        if let Some(Some(assignee)) = &req.assignee_user_id {
            check_assignee(&mut tx, &old.owner, assignee).await?;
        }
        let status = req.status.unwrap_or(old.status);
        let done_at = match (status, old.status, &old.done_at) {
            (TaskStatus::Done, TaskStatus::Done, Some(t)) => Some(parse_time(t)?),
            (TaskStatus::Done, _, _) => Some(now),
            (TaskStatus::Todo | TaskStatus::Doing | TaskStatus::Blocked, _, _) => None,
        };
        let due_at = match due_at {
            Some(d) => d,
            None => old.due_at.as_deref().map(parse_time).transpose()?,
        };
        let (old_title, old_body) = (old.title.clone(), old.body.clone());
        let title = title.unwrap_or(old.title);
        let body = req.body.clone().unwrap_or(old.body);
        let sql = tx
            .sql(
                "UPDATE tasks SET title = $2, body = $3, status = $4, priority = $5, \
                 due_at = $6, assignee_user_id = $7, labels = $8, project_id = $9, \
                 parent_task_id = $10, updated_at = $11, done_at = $12, \
                 mission_id = $13 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(&title)
                .bind(&body)
                .bind(status.as_str())
                .bind(req.priority.unwrap_or(old.priority).as_str())
                .bind(due_at)
                .bind(req.assignee_user_id.clone().unwrap_or(old.assignee_user_id))
                .bind(encode_labels(&labels.unwrap_or(old.labels)))
                .bind(req.project_id.clone().unwrap_or(old.project_id))
                .bind(req.parent_task_id.clone().unwrap_or(old.parent_task_id))
                .bind(now)
                .bind(done_at)
                .bind(req.mission_id.clone().unwrap_or(old.mission_id)),
        )
        .await?;
        let text_changed = title != old_title || body != old_body;
        if text_changed {
            index_text(&mut tx, self.backend(), "tasks", id, &title, &body).await?;
        }
        let task = select_task(&mut tx, p, id).await?;
        tx.commit().await?;
        if text_changed {
            self.text_changed();
        }
        Ok(task)
    }

    /// Delete a task (a team's: its owners and admins only). Its subtasks stay, as
    /// top-level tasks.
    #[tracing::instrument(name = "store.delete_task", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_task(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_task(&mut tx, p, id).await?;
        check_may_delete(&mut tx, p, &old.owner).await?;
        let sql = tx.sql("DELETE FROM tasks WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.forget_vector(BrainKind::Task, id).await;
        Ok(())
    }
}
