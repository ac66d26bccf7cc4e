//! Users: creation and administration (admins), self-service, and the look-ups that
//! logging in needs.

use mosaic_api::{Page, PageQuery, User};
use sqlx::any::AnyRow;

use crate::db::Acting;
use crate::page::ListQuery;
use crate::principal::local_user;
use crate::revocation::Revoked;
use crate::row::{Columns, FromRow};
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

/// A user to create; the password is already hashed by the caller.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
    pub is_admin: Option<bool>,
    pub password_hash: Option<String>,
}

/// What a login needs to check a password.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: String,
}

/// Held while checking "is there another active admin?" and changing one.
pub(crate) const ADMINS_LOCK: &str = "admins";

pub(crate) const USER_COLUMNS: &str =
    "id, username, display_name, is_admin, disabled, created_at, updated_at";

impl FromRow for User {
    fn from_row(row: &AnyRow) -> Result<User> {
        Ok(User {
            id: row.col("id")?,
            username: row.col("username")?,
            display_name: row.col("display_name")?,
            is_admin: row.col::<i64>("is_admin")? != 0,
            disabled: row.col::<i64>("disabled")? != 0,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

/// Usernames are lower case ASCII letters, digits, `.`, `_` and `-`, 1 to 64 long,
/// starting with a letter or digit. Returns the normalised form.
pub fn normalise_username(raw: &str) -> Result<String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok_len = (1..=64).contains(&name.len());
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_first && ok_chars {
        Ok(name)
    } else {
        Err(StoreError::Invalid(
            "username must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
                .into(),
        ))
    }
}

fn check_display_name(name: &str) -> Result<()> {
    if name.chars().count() > 128 {
        return Err(StoreError::Invalid(
            "display name is longer than 128 characters".into(),
        ));
    }
    Ok(())
}

fn require_admin(p: &Principal) -> Result<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(StoreError::Forbidden("this needs an admin".into()))
    }
}

impl Store {
    /// Admin: create a user.
    #[tracing::instrument(name = "store.create_user", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_user(&self, p: &Principal, new: NewUser) -> Result<User> {
        require_admin(p)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let user = insert_user(&mut tx, new).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Admin: every user, by creation.
    #[tracing::instrument(name = "store.list_users", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_users(&self, p: &Principal, page: &PageQuery) -> Result<Page<User>> {
        require_admin(p)?;
        let q = ListQuery {
            sql: format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"),
            binds: Vec::new(),
            row: User::from_row,
            id: |u: &User| u.id.clone(),
        };
        self.list_page(p, page, q).await
    }

    /// A user: yourself, or anyone if you are an admin.
    #[tracing::instrument(name = "store.get_user", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_user(&self, p: &Principal, id: &str) -> Result<User> {
        if !p.is_admin() && p.local_user() != Some(id) {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.begin(Acting::As(p), false).await?;
        let user = select_user(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Change a user. Non-admins may change only their own display name and password.
    /// No change may leave the gateway without an active admin.
    #[tracing::instrument(name = "store.update_user", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_user(&self, p: &Principal, id: &str, changes: UserChanges) -> Result<User> {
        if !p.is_admin() {
            if p.local_user() != Some(id) {
                return Err(StoreError::NotFound);
            }
            if changes.disabled.is_some() || changes.is_admin.is_some() {
                return Err(StoreError::Forbidden(
                    "only an admin can disable users or change admin rights".into(),
                ));
            }
        }
        if let Some(name) = &changes.display_name {
            check_display_name(name)?;
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        tx.lock(ADMINS_LOCK).await?;
        let current = select_user(&mut tx, id).await?;
        let demoted = changes.is_admin == Some(false) || changes.disabled == Some(true);
        if current.is_admin
            && !current.disabled
            && demoted
            && count_active_admins(&mut tx).await? <= 1
        {
            return Err(StoreError::Conflict(
                "this would leave the gateway without an active admin".into(),
            ));
        }
        let sql = tx.sql(
            "UPDATE users SET display_name = COALESCE($2, display_name), \
             disabled = COALESCE($3, disabled), is_admin = COALESCE($4, is_admin), \
             password_hash = COALESCE($5, password_hash), updated_at = $6 WHERE id = $1",
        );
        let sql = sql.into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(changes.display_name)
                .bind(changes.disabled.map(i64::from))
                .bind(changes.is_admin.map(i64::from))
                .bind(changes.password_hash.clone())
                .bind(now_ms()),
        )
        .await?;
        let revoked = if changes.disabled == Some(true) {
            Some(Revoked::User {
                user_id: id.to_string(),
            })
        } else if changes.password_hash.is_some() {
            Some(Revoked::Sessions {
                user_id: id.to_string(),
                tokens: p.local_user() != Some(id),
            })
        } else {
            None
        };
        if revoked.is_some() {
            // A new password or a disabled account ends every web session.
            let sql = tx
                .sql("DELETE FROM web_sessions WHERE user_id = $1")
                .into_owned();
            tx.execute(sqlx::query(&sql).bind(id)).await?;
        }
        if changes.password_hash.is_some() && p.local_user() != Some(id) {
            // An admin's reset assumes the account may be compromised: its API tokens go
            // too. (Changing your own password keeps the tokens you made on purpose.)
            let sql = tx
                .sql("DELETE FROM api_tokens WHERE user_id = $1")
                .into_owned();
            tx.execute(sqlx::query(&sql).bind(id)).await?;
        }
        let user = select_user(&mut tx, id).await?;
        tx.commit().await?;
        // What a credential of theirs answers (admin or not, their name) changed.
        self.inner().hot.accounts.bump();
        if let Some(what) = revoked {
            self.revoked(what);
        }
        Ok(user)
    }

    /// Admin: delete a user and everything they own.
    #[tracing::instrument(name = "store.delete_user", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_user(&self, p: &Principal, id: &str) -> Result<()> {
        if !p.is_admin() {
            // Someone else's id is not even there; your own is there but not yours to delete.
            return Err(if p.local_user() == Some(id) {
                StoreError::Forbidden("only an admin can delete users".into())
            } else {
                StoreError::NotFound
            });
        }
        if p.local_user() == Some(id) {
            return Err(StoreError::Forbidden("you cannot delete yourself".into()));
        }
        let mut tx = self.begin(Acting::As(p), true).await?;
        tx.lock(ADMINS_LOCK).await?;
        let user = select_user(&mut tx, id).await?;
        if user.is_admin && !user.disabled && count_active_admins(&mut tx).await? <= 1 {
            return Err(StoreError::Conflict(
                "this would leave the gateway without an active admin".into(),
            ));
        }
        tx.act_as_system().await?;
        hand_over_teams(&mut tx, id).await?;
        let sql = tx.sql("DELETE FROM users WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.revoked(Revoked::User {
            user_id: id.to_string(),
        });
        Ok(())
    }

    /// The caller's own password hash, to check a current password before changing it.
    #[tracing::instrument(name = "store.own_password_hash", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn own_password_hash(&self, p: &Principal) -> Result<String> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let sql = tx
            .sql("SELECT password_hash FROM users WHERE id = $1")
            .into_owned();
        let row = tx
            .fetch_optional(sqlx::query(&sql).bind(local_user(p)?))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        row.col("password_hash")
    }

    /// Login: the user and password hash for a username (the gateway asks, before
    /// anyone is authenticated).
    #[tracing::instrument(name = "store.login_record", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn login_record(&self, username: &str) -> Result<Option<LoginRecord>> {
        let Ok(username) = normalise_username(username) else {
            return Ok(None);
        };
        let mut tx = self.begin(Acting::System, false).await?;
        let sql = tx
            .sql(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
            ))
            .into_owned();
        let row = tx.fetch_optional(sqlx::query(&sql).bind(&username)).await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(LoginRecord {
                user: User::from_row(&r)?,
                password_hash: r.col("password_hash")?,
            })
        })
        .transpose()
    }

    /// Whether the gateway still has no admin (and so waits for its bootstrap).
    #[tracing::instrument(name = "store.needs_bootstrap", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn needs_bootstrap(&self) -> Result<bool> {
        let mut tx = self.begin(Acting::System, false).await?;
        let admins = count_active_admins(&mut tx).await?;
        tx.commit().await?;
        Ok(admins == 0)
    }
}

/// Before a user is deleted: every team they alone own passes to its longest-standing
/// admin (or, failing one, member), so no team is left that nobody can manage; a team
/// with no other member goes with its owner.
async fn hand_over_teams(tx: &mut crate::db::Tx<'_>, user_id: &str) -> Result<()> {
    let sql = tx
        .sql(
            "SELECT m.team_id FROM team_members m WHERE m.user_id = $1 AND m.role = 'owner' \
             AND (SELECT COUNT(*) FROM team_members o WHERE o.team_id = m.team_id AND o.role = 'owner') = 1",
        )
        .into_owned();
    let teams = tx.fetch_all(sqlx::query(&sql).bind(user_id)).await?;
    for row in teams {
        let team_id: String = row.col("team_id")?;
        let sql = tx
            .sql(
                "SELECT user_id FROM team_members WHERE team_id = $1 AND user_id <> $2 \
                 ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, added_at, user_id LIMIT 1",
            )
            .into_owned();
        let successor = tx
            .fetch_optional(sqlx::query(&sql).bind(&team_id).bind(user_id))
            .await?;
        match successor {
            Some(s) => {
                let successor: String = s.col("user_id")?;
                let sql = tx
                    .sql("UPDATE team_members SET role = 'owner' WHERE team_id = $1 AND user_id = $2")
                    .into_owned();
                tx.execute(sqlx::query(&sql).bind(&team_id).bind(&successor))
                    .await?;
                tracing::info!(team = %team_id, new_owner = %successor, "team ownership handed over");
            }
            None => {
                let sql = tx.sql("DELETE FROM teams WHERE id = $1").into_owned();
                tx.execute(sqlx::query(&sql).bind(&team_id)).await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn insert_user(tx: &mut crate::db::Tx<'_>, new: NewUser) -> Result<User> {
    let username = normalise_username(&new.username)?;
    check_display_name(&new.display_name)?;
    let display_name = if new.display_name.trim().is_empty() {
        username.clone()
    } else {
        new.display_name.trim().to_string()
    };
    let id = new_id();
    let now = now_ms();
    let sql = tx
        .sql(
            "INSERT INTO users (id, username, display_name, password_hash, is_admin, disabled, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .into_owned();
    let inserted = tx
        .execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&username)
                .bind(&display_name)
                .bind(&new.password_hash)
                .bind(i64::from(new.is_admin))
                .bind(now),
        )
        .await;
    match inserted {
        Err(StoreError::Conflict(_)) => {
            return Err(StoreError::Conflict(format!(
                "username '{username}' is taken"
            )))
        }
        other => other?,
    };
    Ok(User {
        id,
        username,
        display_name,
        is_admin: new.is_admin,
        disabled: false,
        created_at: format_time(now),
        updated_at: format_time(now),
    })
}

pub(crate) async fn select_user(tx: &mut crate::db::Tx<'_>, id: &str) -> Result<User> {
    let sql = tx
        .sql(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .into_owned();
    let row = tx
        .fetch_optional(sqlx::query(&sql).bind(id))
        .await?
        .ok_or(StoreError::NotFound)?;
    User::from_row(&row)
}

pub(crate) async fn count_active_admins(tx: &mut crate::db::Tx<'_>) -> Result<i64> {
    let row = tx
        .fetch_optional(sqlx::query(
            "SELECT COUNT(*) AS n FROM users WHERE is_admin = 1 AND disabled = 0",
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    row.col("n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_or_refused() {
        assert_eq!(normalise_username(" Alice ").ok(), Some("alice".into()));
        assert!(normalise_username("").is_err());
        assert!(normalise_username("-x").is_err());
        assert!(normalise_username("a b").is_err());
        assert!(normalise_username(&"a".repeat(65)).is_err());
    }
}
