//! Missions: a goal with success criteria and milestones, optionally in a project of
//! the same owner. Progress is not stored: it is counted from the linked tasks each
//! time a mission is read, so it can never drift from them.

use mosaic_api::{
    CreateMissionRequest, Milestone, Mission, MissionProgress, MissionQuery, MissionStatus, Owner,
    Page, UpdateMissionRequest, DEFAULT_LIMIT, MAX_CRITERIA_BYTES, MAX_LIMIT, MAX_MILESTONES,
};
use sqlx::any::AnyRow;

use super::{check_may_delete, check_reference, check_title, new_owner, owner_columns};
use crate::db::{Acting, Tx};
use crate::page::paginate;
use crate::row::{json, parsed, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

/// The mission's columns plus its progress, counted over the visible linked tasks
/// (they share the mission's owner, so all of them are).
const MISSION_SELECT: &str = "SELECT m.id, m.goal, m.success_criteria, m.milestones, m.status, \
     m.project_id, m.owner_user_id, m.owner_team_id, m.created_at, m.updated_at, \
     (SELECT COUNT(*) FROM tasks t WHERE t.mission_id = m.id) AS tasks_total, \
     (SELECT COUNT(*) FROM tasks t WHERE t.mission_id = m.id AND t.status = 'done') \
       AS tasks_done \
     FROM missions m";

impl FromRow for Mission {
    fn from_row(row: &AnyRow) -> Result<Mission> {
        let status: String = row.col("status")?;
        let milestones: String = row.col("milestones")?;
        let count =
            |name: &str| -> Result<u64> { Ok(u64::try_from(row.col::<i64>(name)?).unwrap_or(0)) };
        Ok(Mission {
            id: row.col("id")?,
            goal: row.col("goal")?,
            success_criteria: row.col("success_criteria")?,
            milestones: json("milestones", &milestones)?,
            project_id: row.col("project_id")?,
            owner: Owner::from_row(row)?,
            status: parsed("mission status", &status, MissionStatus::parse)?,
            progress: MissionProgress {
                tasks_total: count("tasks_total")?,
                tasks_done: count("tasks_done")?,
            },
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

async fn select_mission(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Mission> {
    let visible = tx.visible_as(p, Table::Missions, "m", 2);
    let sql = tx
        .sql(&format!("{MISSION_SELECT} WHERE m.id = $1 AND {visible}"))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Mission::from_row(&row)
}

fn check_criteria(text: &str) -> Result<()> {
    if text.len() > MAX_CRITERIA_BYTES {
        return Err(StoreError::Invalid(format!(
            "success criteria are longer than {MAX_CRITERIA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Milestones as stored: titles trimmed and checked, at most `MAX_MILESTONES`, as JSON.
fn encode_milestones(milestones: &[Milestone]) -> Result<String> {
    if milestones.len() > MAX_MILESTONES {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_MILESTONES} milestones"
        )));
    }
    let clean = milestones
        .iter()
        .map(|m| {
            Ok(Milestone {
                title: check_title(&m.title, "milestone title")?,
                done: m.done,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    serde_json::to_string(&clean)
        .map_err(|e| StoreError::Invalid(format!("milestones do not encode: {e}")))
}

async fn check_project(
    tx: &mut Tx<'_>,
    p: &Principal,
    project_id: Option<&str>,
    owner: &Owner,
) -> Result<()> {
    match project_id {
        Some(id) => check_reference(tx, p, Table::Projects, "project", id, owner).await,
        None => Ok(()),
    }
}

impl Store {
    /// Create a mission, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_mission", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_mission(
        &self,
        p: &Principal,
        req: &CreateMissionRequest,
    ) -> Result<Mission> {
        let goal = check_title(&req.goal, "mission goal")?;
        check_criteria(&req.success_criteria)?;
        let milestones = encode_milestones(&req.milestones)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let owner = new_owner(&mut tx, p, req.team_id.as_deref()).await?;
        check_project(&mut tx, p, req.project_id.as_deref(), &owner).await?;
        let (user_owner, team_owner) = owner_columns(&owner)?;
        let id = new_id();
        let sql = tx
            .sql(
                "INSERT INTO missions (id, goal, success_criteria, milestones, status, \
                 project_id, owner_user_id, owner_team_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&goal)
                .bind(&req.success_criteria)
                .bind(milestones)
                .bind(req.status.unwrap_or(MissionStatus::Active).as_str())
                .bind(req.project_id.clone())
                .bind(user_owner)
                .bind(team_owner)
                .bind(now_ms()),
        )
        .await?;
        let mission = select_mission(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(mission)
    }

    #[tracing::instrument(name = "store.get_mission", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_mission(&self, p: &Principal, id: &str) -> Result<Mission> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let mission = select_mission(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(mission)
    }

    /// The missions the caller can see, newest first.
    #[tracing::instrument(name = "store.list_missions", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_missions(&self, p: &Principal, q: &MissionQuery) -> Result<Page<Mission>> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible_as(p, Table::Missions, "m", 5);
        let sql = tx
            .sql(&format!(
                "{MISSION_SELECT} WHERE {visible} \
                 AND ($1 = '' OR m.id < $1) AND ($2 = '' OR m.status = $2) \
                 AND ($3 = '' OR m.project_id = $3) ORDER BY m.id DESC LIMIT $4"
            ))
            .into_owned();
        let rows = tx
            .fetch_all(
                visible.bind(
                    sqlx::query(&sql)
                        .bind(q.cursor.clone().unwrap_or_default())
                        .bind(q.status.map(MissionStatus::as_str).unwrap_or_default())
                        .bind(q.project_id.clone().unwrap_or_default())
                        .bind(i64::from(limit) + 1),
                ),
            )
            .await?;
        tx.commit().await?;
        let items = rows
            .iter()
            .map(Mission::from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |m: &Mission| m.id.clone()))
    }

    /// Change a mission; members of an owning team may.
    #[tracing::instrument(name = "store.update_mission", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_mission(
        &self,
        p: &Principal,
        id: &str,
        req: &UpdateMissionRequest,
    ) -> Result<Mission> {
        let goal = req
            .goal
            .as_deref()
            .map(|g| check_title(g, "mission goal"))
            .transpose()?;
        if let Some(c) = &req.success_criteria {
            check_criteria(c)?;
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_mission(&mut tx, p, id).await?;
        let milestones = encode_milestones(req.milestones.as_ref().unwrap_or(&old.milestones))?;
        let project_id = match &req.project_id {
            Some(project) => project.clone(),
            None => old.project_id.clone(),
        };
        if project_id != old.project_id {
            check_project(&mut tx, p, project_id.as_deref(), &old.owner).await?;
        }
        let sql = tx
            .sql(
                "UPDATE missions SET goal = $2, success_criteria = $3, milestones = $4, \
                 status = $5, project_id = $6, updated_at = $7 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(goal.unwrap_or(old.goal))
                .bind(req.success_criteria.clone().unwrap_or(old.success_criteria))
                .bind(milestones)
                .bind(req.status.unwrap_or(old.status).as_str())
                .bind(project_id)
                .bind(now_ms()),
        )
        .await?;
        let mission = select_mission(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(mission)
    }

    /// Delete a mission (a team's: its owners and admins only). Its tasks stay,
    /// linked to no mission.
    #[tracing::instrument(name = "store.delete_mission", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_mission(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_mission(&mut tx, p, id).await?;
        check_may_delete(&mut tx, p, &old.owner).await?;
        let sql = tx.sql("DELETE FROM missions WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await
    }
}
