//! Projects: named bodies of work that tasks and notes belong to, optionally inside a
//! workspace of the same owner.

use mosaic_api::{
    CreateProjectRequest, Owner, Page, Project, ProjectQuery, ProjectStatus, UpdateProjectRequest,
};
use sqlx::any::AnyRow;

use super::list::BrainList;
use super::{check_body, check_may_delete, check_reference, check_title, new_owner, owner_columns};
use crate::db::{Acting, Tx};
use crate::row::{parsed, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const PROJECT_COLUMNS: &str = "id, name, description, status, owner_user_id, owner_team_id, \
     workspace_id, created_at, updated_at";

impl FromRow for Project {
    fn from_row(row: &AnyRow) -> Result<Project> {
        let status: String = row.col("status")?;
        Ok(Project {
            id: row.col("id")?,
            name: row.col("name")?,
            description: row.col("description")?,
            status: parsed("project status", &status, ProjectStatus::parse)?,
            owner: Owner::from_row(row)?,
            workspace_id: row.col("workspace_id")?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

pub(crate) async fn select_project(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Project> {
    let visible = tx.visible(p, Table::Projects, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Project::from_row(&row)
}

async fn check_workspace(
    tx: &mut Tx<'_>,
    p: &Principal,
    workspace_id: Option<&str>,
    owner: &Owner,
) -> Result<()> {
    match workspace_id {
        Some(ws) => check_reference(tx, p, Table::Workspaces, "workspace", ws, owner).await,
        None => Ok(()),
    }
}

impl Store {
    /// Create a project, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_project", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_project(
        &self,
        p: &Principal,
        req: &CreateProjectRequest,
    ) -> Result<Project> {
        let name = check_title(&req.name, "project name")?;
        check_body(&req.description, "description")?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let owner = new_owner(&mut tx, p, req.team_id.as_deref()).await?;
        check_workspace(&mut tx, p, req.workspace_id.as_deref(), &owner).await?;
        let (user_owner, team_owner) = owner_columns(&owner)?;
        let id = new_id();
        let sql = tx
            .sql(&format!(
                "INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&name)
                .bind(&req.description)
                .bind(req.status.unwrap_or(ProjectStatus::Active).as_str())
                .bind(user_owner)
                .bind(team_owner)
                .bind(req.workspace_id.clone())
                .bind(now_ms()),
        )
        .await?;
        let project = select_project(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(project)
    }

    #[tracing::instrument(name = "store.get_project", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_project(&self, p: &Principal, id: &str) -> Result<Project> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let project = select_project(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(project)
    }

    /// The projects the caller can see, newest first.
    #[tracing::instrument(name = "store.list_projects", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_projects(&self, p: &Principal, q: &ProjectQuery) -> Result<Page<Project>> {
        BrainList::new(Table::Projects, PROJECT_COLUMNS)
            .eq("status", q.status.map(ProjectStatus::as_str))
            .eq("workspace_id", q.workspace_id.as_deref())
            .eq("owner_team_id", q.team_id.as_deref())
            .page(
                self,
                p,
                q.cursor.as_deref(),
                q.limit,
                Project::from_row,
                |p| p.id.clone(),
            )
            .await
    }

    /// Change a project; members of an owning team may.
    #[tracing::instrument(name = "store.update_project", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_project(
        &self,
        p: &Principal,
        id: &str,
        req: &UpdateProjectRequest,
    ) -> Result<Project> {
        let name = req
            .name
            .as_deref()
            .map(|n| check_title(n, "project name"))
            .transpose()?;
        if let Some(d) = &req.description {
            check_body(d, "description")?;
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_project(&mut tx, p, id).await?;
        let workspace_id = match &req.workspace_id {
            Some(ws) => ws.clone(),
            None => old.workspace_id.clone(),
        };
        if workspace_id != old.workspace_id {
            check_workspace(&mut tx, p, workspace_id.as_deref(), &old.owner).await?;
        }
        let sql = tx
            .sql(
                "UPDATE projects SET name = $2, description = $3, status = $4, \
                 workspace_id = $5, updated_at = $6 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(name.unwrap_or(old.name))
                .bind(req.description.clone().unwrap_or(old.description))
                .bind(req.status.unwrap_or(old.status).as_str())
                .bind(workspace_id)
                .bind(now_ms()),
        )
        .await?;
        let project = select_project(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(project)
    }

    /// Delete a project (a team's: its owners and admins only). Its tasks and notes
    /// stay, outside any project.
    #[tracing::instrument(name = "store.delete_project", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_project(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_project(&mut tx, p, id).await?;
        check_may_delete(&mut tx, p, &old.owner).await?;
        let sql = tx.sql("DELETE FROM projects WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await
    }
}
