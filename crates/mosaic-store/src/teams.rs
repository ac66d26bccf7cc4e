//! Teams and their members. A team is visible to its members only; owners and admins
//! of a team manage its members; only owners hand out or take away ownership, and a
//! team always keeps at least one owner.

use mosaic_api::{Page, PageQuery, Team, TeamMember, TeamRole};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::page::ListQuery;
use crate::principal::local_user;
use crate::row::{parsed, Columns, FromRow};
use crate::users::normalise_username;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

fn role_from(text: &str) -> Result<TeamRole> {
    parsed("team role", text, TeamRole::parse)
}

impl FromRow for Team {
    fn from_row(row: &AnyRow) -> Result<Team> {
        Ok(Team {
            id: row.col("id")?,
            name: row.col("name")?,
            role: role_from(&row.col::<String>("role")?)?,
            created_at: format_time(row.col("created_at")?),
        })
    }
}

impl FromRow for TeamMember {
    fn from_row(row: &AnyRow) -> Result<TeamMember> {
        Ok(TeamMember {
            user_id: row.col("user_id")?,
            username: row.col("username")?,
            role: role_from(&row.col::<String>("role")?)?,
            added_at: format_time(row.col("added_at")?),
        })
    }
}

fn check_team_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(StoreError::Invalid(
            "team name must be 1-128 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// The caller's role in a team; `NotFound` when they are not a member.
pub(crate) async fn role_in_team(
    tx: &mut Tx<'_>,
    p: &Principal,
    team_id: &str,
) -> Result<TeamRole> {
    let sql = tx
        .sql("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
        .into_owned();
    let row = tx
        .fetch_optional(sqlx::query(&sql).bind(team_id).bind(local_user(p)?))
        .await?
        .ok_or(StoreError::NotFound)?;
    role_from(&row.col::<String>("role")?)
}

async fn select_team(tx: &mut Tx<'_>, p: &Principal, team_id: &str) -> Result<Team> {
    let sql = tx
        .sql(
            "SELECT t.id, t.name, t.created_at, m.role FROM teams t \
             JOIN team_members m ON m.team_id = t.id AND m.user_id = $1 WHERE t.id = $2",
        )
        .into_owned();
    let row = tx
        .fetch_optional(sqlx::query(&sql).bind(local_user(p)?).bind(team_id))
        .await?
        .ok_or(StoreError::NotFound)?;
    Team::from_row(&row)
}

async fn count_owners(tx: &mut Tx<'_>, team_id: &str) -> Result<i64> {
    let sql = tx
        .sql("SELECT COUNT(*) AS n FROM team_members WHERE team_id = $1 AND role = 'owner'")
        .into_owned();
    let row = tx
        .fetch_optional(sqlx::query(&sql).bind(team_id))
        .await?
        .ok_or(StoreError::NotFound)?;
    row.col("n")
}

impl Store {
    /// Create a team with the caller as its owner.
    #[tracing::instrument(name = "store.create_team", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_team(&self, p: &Principal, name: &str) -> Result<Team> {
        let name = check_team_name(name)?;
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql("INSERT INTO teams (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)")
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&name)
                .bind(local_user(p)?)
                .bind(now),
        )
        .await?;
        tx.joined_team(&id).await?;
        let sql = tx
            .sql("INSERT INTO team_members (team_id, user_id, role, added_at) VALUES ($1, $2, 'owner', $3)")
            .into_owned();
        tx.execute(sqlx::query(&sql).bind(&id).bind(local_user(p)?).bind(now))
            .await?;
        tx.commit().await?;
        Ok(Team {
            id,
            name,
            role: TeamRole::Owner,
            created_at: format_time(now),
        })
    }

    /// The teams the caller belongs to.
    #[tracing::instrument(name = "store.list_teams", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_teams(&self, p: &Principal, page: &PageQuery) -> Result<Page<Team>> {
        let q = ListQuery {
            sql: "SELECT t.id, t.name, t.created_at, m.role FROM teams t \
                  JOIN team_members m ON m.team_id = t.id AND m.user_id = $3 \
                  WHERE t.id > $1 ORDER BY t.id LIMIT $2"
                .to_string(),
            binds: vec![local_user(p)?.to_string()],
            row: Team::from_row,
            id: |t: &Team| t.id.clone(),
        };
        self.list_page(p, page, q).await
    }

    /// A team the caller belongs to.
    #[tracing::instrument(name = "store.get_team", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_team(&self, p: &Principal, team_id: &str) -> Result<Team> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let team = select_team(&mut tx, p, team_id).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Rename a team (owners and admins of the team).
    #[tracing::instrument(name = "store.rename_team", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn rename_team(&self, p: &Principal, team_id: &str, name: &str) -> Result<Team> {
        let name = check_team_name(name)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        if !role_in_team(&mut tx, p, team_id).await?.can_manage() {
            return Err(StoreError::Forbidden(
                "only team owners and admins can rename a team".into(),
            ));
        }
        let sql = tx
            .sql("UPDATE teams SET name = $2 WHERE id = $1")
            .into_owned();
        tx.execute(sqlx::query(&sql).bind(team_id).bind(&name))
            .await?;
        let team = select_team(&mut tx, p, team_id).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Delete a team and its workspaces (owners only).
    #[tracing::instrument(name = "store.delete_team", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_team(&self, p: &Principal, team_id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        if role_in_team(&mut tx, p, team_id).await? != TeamRole::Owner {
            return Err(StoreError::Forbidden(
                "only a team owner can delete a team".into(),
            ));
        }
        let sql = tx.sql("DELETE FROM teams WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(team_id)).await?;
        tx.commit().await
    }

    /// The members of a team the caller belongs to.
    #[tracing::instrument(name = "store.list_team_members", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_team_members(&self, p: &Principal, team_id: &str) -> Result<Vec<TeamMember>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        role_in_team(&mut tx, p, team_id).await?;
        let sql = tx
            .sql(
                "SELECT m.user_id, u.username, m.role, m.added_at FROM team_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY m.added_at, u.username",
            )
            .into_owned();
        let rows = tx.fetch_all(sqlx::query(&sql).bind(team_id)).await?;
        tx.commit().await?;
        rows.iter().map(TeamMember::from_row).collect()
    }

    /// Add a user to a team, or change their role there.
    #[tracing::instrument(name = "store.put_team_member", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn put_team_member(
        &self,
        p: &Principal,
        team_id: &str,
        username: &str,
        role: TeamRole,
    ) -> Result<TeamMember> {
        let username = normalise_username(username)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        // Rights first: someone outside the team learns nothing, not even whether the
        // username exists.
        let my_role = role_in_team(&mut tx, p, team_id).await?;
        if !my_role.can_manage() {
            return Err(StoreError::Forbidden(
                "only team owners and admins can manage members".into(),
            ));
        }
        tx.lock(&format!("team:{team_id}")).await?;
        // The directory look-up is the gateway's: a team admin may add someone they
        // cannot otherwise see. It reveals only the id.
        tx.act_as_system().await?;
        let sql = tx
            .sql("SELECT id FROM users WHERE username = $1")
            .into_owned();
        let row = tx.fetch_optional(sqlx::query(&sql).bind(&username)).await?;
        tx.end_system().await?;
        let user_id: String = match row {
            Some(r) => r.col("id")?,
            None => return Err(StoreError::Conflict(format!("no user named '{username}'"))),
        };
        let sql = tx
            .sql("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .into_owned();
        let existing = tx
            .fetch_optional(sqlx::query(&sql).bind(team_id).bind(&user_id))
            .await?
            .map(|r| r.col::<String>("role"))
            .transpose()?
            .map(|r| role_from(&r))
            .transpose()?;
        let touches_owner = role == TeamRole::Owner || existing == Some(TeamRole::Owner);
        if touches_owner && my_role != TeamRole::Owner {
            return Err(StoreError::Forbidden(
                "only a team owner can grant or change ownership".into(),
            ));
        }
        if existing == Some(TeamRole::Owner)
            && role != TeamRole::Owner
            && count_owners(&mut tx, team_id).await? <= 1
        {
            return Err(StoreError::Conflict(
                "a team must keep at least one owner".into(),
            ));
        }
        let now = now_ms();
        let sql = tx
            .sql(
                "INSERT INTO team_members (team_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(team_id)
                .bind(&user_id)
                .bind(role.as_str())
                .bind(now),
        )
        .await?;
        let sql = tx
            .sql(
                "SELECT m.user_id, u.username, m.role, m.added_at FROM team_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 AND m.user_id = $2",
            )
            .into_owned();
        let row = tx
            .fetch_optional(sqlx::query(&sql).bind(team_id).bind(&user_id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        TeamMember::from_row(&row)
    }

    /// Remove a member (team owners and admins; anyone may leave). Owners are removed
    /// only by owners, and never the last one.
    #[tracing::instrument(name = "store.remove_team_member", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn remove_team_member(
        &self,
        p: &Principal,
        team_id: &str,
        user_id: &str,
    ) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let my_role = role_in_team(&mut tx, p, team_id).await?;
        tx.lock(&format!("team:{team_id}")).await?;
        let sql = tx
            .sql("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .into_owned();
        let target = tx
            .fetch_optional(sqlx::query(&sql).bind(team_id).bind(user_id))
            .await?
            .ok_or(StoreError::NotFound)?;
        let target_role = role_from(&target.col::<String>("role")?)?;
        let leaving = p.local_user() == Some(user_id);
        if !leaving && !my_role.can_manage() {
            return Err(StoreError::Forbidden(
                "only team owners and admins can remove members".into(),
            ));
        }
        if target_role == TeamRole::Owner {
            if !leaving && my_role != TeamRole::Owner {
                return Err(StoreError::Forbidden(
                    "only a team owner can remove an owner".into(),
                ));
            }
            if count_owners(&mut tx, team_id).await? <= 1 {
                return Err(StoreError::Conflict(
                    "a team must keep at least one owner".into(),
                ));
            }
        }
        let sql = tx
            .sql("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            .into_owned();
        tx.execute(sqlx::query(&sql).bind(team_id).bind(user_id))
            .await?;
        tx.commit().await
    }
}
