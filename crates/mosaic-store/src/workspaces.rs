//! Workspaces: owned by a user, or by a team. A user's workspaces are theirs alone; a
//! team's are visible to its members and managed by its owners and admins.

use mosaic_api::{Owner, Page, PageQuery, TeamRole, Workspace};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::page::ListQuery;
use crate::principal::local_user;
use crate::row::{Columns, FromRow};
use crate::teams::role_in_team;
use crate::visibility::{visible, Table};
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const WORKSPACE_COLUMNS: &str =
    "id, name, description, owner_user_id, owner_team_id, created_at, updated_at";

impl FromRow for Workspace {
    fn from_row(row: &AnyRow) -> Result<Workspace> {
        Ok(Workspace {
            id: row.col("id")?,
            name: row.col("name")?,
            description: row.col("description")?,
            owner: Owner::from_row(row)?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(StoreError::Invalid(
            "workspace name must be 1-128 characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 4000 {
        return Err(StoreError::Invalid(
            "description is longer than 4000 characters".into(),
        ));
    }
    Ok(())
}

async fn select_visible(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Workspace> {
    let visible = tx.visible(p, Table::Workspaces, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Workspace::from_row(&row)
}

/// Visible, and the caller may change it.
async fn select_manageable(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Workspace> {
    let ws = select_visible(tx, p, id).await?;
    match &ws.owner {
        Owner::User { .. } => Ok(ws),
        Owner::Unknown => Err(crate::brain::unknown_owner()),
        Owner::Team { id: team } => {
            if role_in_team(tx, p, team).await?.can_manage() {
                Ok(ws)
            } else {
                Err(StoreError::Forbidden(
                    "only team owners and admins can change a team's workspace".into(),
                ))
            }
        }
    }
}

impl Store {
    /// Create a workspace, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_workspace", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_workspace(
        &self,
        p: &Principal,
        name: &str,
        description: &str,
        team_id: Option<&str>,
    ) -> Result<Workspace> {
        let name = check_name(name)?;
        check_description(description)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        if let Some(team) = team_id {
            let role: TeamRole = role_in_team(&mut tx, p, team).await?;
            if !role.can_manage() {
                return Err(StoreError::Forbidden(
                    "only team owners and admins can create a team's workspace".into(),
                ));
            }
        }
        let id = new_id();
        let now = now_ms();
        let (user_owner, team_owner) = match team_id {
            Some(t) => (None, Some(t.to_string())),
            None => (Some(local_user(p)?.to_string()), None),
        };
        let sql = tx
            .sql(
                "INSERT INTO workspaces (id, name, description, owner_user_id, owner_team_id, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&name)
                .bind(description)
                .bind(user_owner)
                .bind(team_owner)
                .bind(now),
        )
        .await?;
        let ws = select_visible(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(ws)
    }

    /// The workspaces the caller can see.
    #[tracing::instrument(name = "store.list_workspaces", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_workspaces(
        &self,
        p: &Principal,
        page: &PageQuery,
    ) -> Result<Page<Workspace>> {
        let visible = visible(p, Table::Workspaces, 3);
        let q = ListQuery {
            sql: format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE {visible} AND id > $1 \
                 ORDER BY id LIMIT $2"
            ),
            binds: visible.binds,
            row: Workspace::from_row,
            id: |w: &Workspace| w.id.clone(),
        };
        self.list_page(p, page, q).await
    }

    #[tracing::instrument(name = "store.get_workspace", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_workspace(&self, p: &Principal, id: &str) -> Result<Workspace> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let ws = select_visible(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(ws)
    }

    #[tracing::instrument(name = "store.update_workspace", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_workspace(
        &self,
        p: &Principal,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Workspace> {
        let name = name.map(check_name).transpose()?;
        if let Some(d) = description {
            check_description(d)?;
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_manageable(&mut tx, p, id).await?;
        let sql = tx
            .sql(
                "UPDATE workspaces SET name = COALESCE($2, name), \
                 description = COALESCE($3, description), updated_at = $4 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(name)
                .bind(description)
                .bind(now_ms()),
        )
        .await?;
        let ws = select_visible(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(ws)
    }

    #[tracing::instrument(name = "store.delete_workspace", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_workspace(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_manageable(&mut tx, p, id).await?;
        let sql = tx.sql("DELETE FROM workspaces WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await
    }
}
