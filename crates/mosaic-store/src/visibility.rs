//! What a principal may see, as SQL: the one mechanism every query that reads, changes
//! or deletes a principal's rows goes through.
//!
//! [`Tx::visible`] gives the condition "this row of `table` is visible to `who`" with
//! the values it binds. Its placeholders are numbered after the statement's own (the
//! caller says where they start and binds it last, with [`Visible::bind`]), so a kind
//! of principal that needs more or fewer values than a local user does (a remote user
//! of a peer, seeing what grants name) fits every statement unchanged.
//!
//! Tables differ in how ownership is recorded ([`Table`]): brain items and workspaces
//! belong to one user or one team; providers and routes to the gateway (no owner) or
//! one user; sessions, runs, agents, tokens, preferences and usage to one user.
//!
//! On PostgreSQL, row-level security enforces the same rules from the settings each
//! transaction begins with (`db.rs`, `mosaic.uid`/`mosaic.teams…`, see the migrations);
//! the conformance suite's `rls` cases check that both walls agree.

use std::fmt;

use mosaic_api::BrainKind;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::db::Tx;
use crate::Principal;

/// A table whose rows belong to someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Tasks,
    Notes,
    Memories,
    Projects,
    Missions,
    Workspaces,
    Providers,
    Routes,
    Sessions,
    Runs,
    QueuedMessages,
    Agents,
    Preferences,
    ApiTokens,
    WebSessions,
    UsageDaily,
}

/// How a table records who owns a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// `owner_user_id` or `owner_team_id`: the user's, or every member's of the team.
    UserOrTeam,
    /// `owner_user_id`, NULL for gateway-wide rows everyone may use.
    GatewayOrUser,
    /// One user's, in this column.
    User(&'static str),
}

impl Table {
    /// The table of a searchable kind.
    pub(crate) fn brain(kind: BrainKind) -> Table {
        match kind {
            BrainKind::Task => Table::Tasks,
            BrainKind::Note => Table::Notes,
            BrainKind::Memory => Table::Memories,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Tasks => "tasks",
            Table::Notes => "notes",
            Table::Memories => "memories",
            Table::Projects => "projects",
            Table::Missions => "missions",
            Table::Workspaces => "workspaces",
            Table::Providers => "providers",
            Table::Routes => "routes",
            Table::Sessions => "sessions",
            Table::Runs => "runs",
            Table::QueuedMessages => "queued_messages",
            Table::Agents => "agents",
            Table::Preferences => "preferences",
            Table::ApiTokens => "api_tokens",
            Table::WebSessions => "web_sessions",
            Table::UsageDaily => "usage_daily",
        }
    }

    pub(crate) fn ownership(self) -> Ownership {
        match self {
            Table::Tasks
            | Table::Notes
            | Table::Memories
            | Table::Projects
            | Table::Missions
            | Table::Workspaces => Ownership::UserOrTeam,
            Table::Providers | Table::Routes => Ownership::GatewayOrUser,
            Table::Sessions | Table::Runs | Table::QueuedMessages | Table::Agents => {
                Ownership::User("owner_user_id")
            }
            Table::Preferences | Table::ApiTokens | Table::WebSessions | Table::UsageDaily => {
                Ownership::User("user_id")
            }
        }
    }
}

/// The rows a visibility condition is about: a table, the alias its columns go by in
/// the statement, and (PostgreSQL) the acting user's teams as the transaction read
/// them, when the statement should name them instead of reading `team_members`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub table: Table,
    pub alias: Option<&'a str>,
    pub teams: Option<&'a str>,
}

impl Target<'_> {
    /// A column of the target, qualified by its alias.
    pub(crate) fn column(&self, name: &str) -> String {
        match self.alias {
            Some(alias) => format!("{alias}.{name}"),
            None => name.to_string(),
        }
    }
}

/// A visibility condition: SQL with `$first`… placeholders, and their values in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visible {
    pub sql: String,
    pub binds: Vec<String>,
}

impl Visible {
    /// Bind the condition's values (after every value of the statement's own).
    pub(crate) fn bind<'q>(
        self,
        mut query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for value in self.binds {
            query = query.bind(value);
        }
        query
    }
}

impl fmt::Display for Visible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

/// Something that sees rows: the acting principal. Implemented for [`Principal`], one
/// arm per variant; a test implements it for a stand-in grant-based principal.
pub(crate) trait Sight {
    /// The condition "a row of `target` is visible", its placeholders from `$first`.
    fn visible(&self, target: &Target<'_>, first: u32) -> Visible;
}

impl Sight for Principal {
    fn visible(&self, target: &Target<'_>, first: u32) -> Visible {
        match self {
            Principal::User { user_id, .. } => local_user(user_id, target, first),
        }
    }
}

/// What a local user sees: their own rows, their teams', the gateway's configuration.
fn local_user(user_id: &str, target: &Target<'_>, first: u32) -> Visible {
    let me = vec![user_id.to_string()];
    match target.table.ownership() {
        Ownership::UserOrTeam => {
            let (user, team) = (
                target.column("owner_user_id"),
                target.column("owner_team_id"),
            );
            match target.teams {
                None => Visible {
                    sql: format!(
                        "({user} = ${first} OR {team} IN \
                         (SELECT team_id FROM team_members WHERE user_id = ${first}))"
                    ),
                    binds: me,
                },
                Some(teams) => Visible {
                    sql: format!(
                        "({user} = ${first} OR {team} = ANY(string_to_array(${}, ',')))",
                        first + 1
                    ),
                    binds: vec![user_id.to_string(), teams.to_string()],
                },
            }
        }
        Ownership::GatewayOrUser => {
            let owner = target.column("owner_user_id");
            Visible {
                sql: format!("({owner} IS NULL OR {owner} = ${first})"),
                binds: me,
            }
        }
        Ownership::User(column) => Visible {
            sql: format!("{} = ${first}", target.column(column)),
            binds: me,
        },
    }
}

/// The rows of `table` visible to `who`, with placeholders from `$first`: put it after
/// the statement's own placeholders and bind it last. (Usually [`Tx::visible`]; this
/// for statements built before their transaction begins.)
pub(crate) fn visible(who: &impl Sight, table: Table, first: u32) -> Visible {
    let target = Target {
        table,
        alias: None,
        teams: None,
    };
    who.visible(&target, first)
}

impl Tx<'_> {
    /// The rows of `table` visible to `who`, with placeholders from `$first`: put it
    /// after the statement's own placeholders and bind it last.
    pub(crate) fn visible(&self, who: &impl Sight, table: Table, first: u32) -> Visible {
        visible(who, table, first)
    }

    /// [`Tx::visible`] for a table that goes by `alias` in the statement.
    pub(crate) fn visible_as(
        &self,
        who: &impl Sight,
        table: Table,
        alias: &str,
        first: u32,
    ) -> Visible {
        let target = Target {
            table,
            alias: Some(alias),
            teams: None,
        };
        who.visible(&target, first)
    }

    /// PostgreSQL: [`Tx::visible_as`] naming the teams the transaction read when it
    /// began instead of reading `team_members` (for search, where planning that
    /// sub-select costs as much as the rest of the statement).
    pub(crate) fn visible_teams_known(
        &self,
        who: &impl Sight,
        table: Table,
        alias: &str,
        first: u32,
    ) -> Visible {
        let teams = self.member_teams();
        let target = Target {
            table,
            alias: Some(alias),
            teams: Some(&teams),
        };
        who.visible(&target, first)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use mosaic_api::{CreateNoteRequest, CreateProjectRequest, CreateTaskRequest};
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::db::Acting;
    use crate::row::Columns;
    use crate::{BootstrapSource, NewUser, Store, StoreOptions};

    /// A stand-in for the remote principal the federation issue adds: it owns nothing
    /// and sees what its grants name (an owner's rows of one table, optionally only
    /// those in one project).
    struct Granted {
        grants: Vec<Grant>,
    }

    struct Grant {
        owner_user_id: String,
        table: Table,
        project_id: Option<String>,
    }

    impl Sight for Granted {
        fn visible(&self, target: &Target<'_>, first: u32) -> Visible {
            let (mut parts, mut binds) = (Vec::new(), Vec::new());
            for grant in self.grants.iter().filter(|g| g.table == target.table) {
                let n = first + binds.len() as u32;
                let owner = target.column("owner_user_id");
                binds.push(grant.owner_user_id.clone());
                match &grant.project_id {
                    None => parts.push(format!("{owner} = ${n}")),
                    Some(project) => {
                        let column = target.column("project_id");
                        parts.push(format!("({owner} = ${n} AND {column} = ${})", n + 1));
                        binds.push(project.clone());
                    }
                }
            }
            if parts.is_empty() {
                return Visible {
                    sql: "1 = 0".into(),
                    binds,
                };
            }
            Visible {
                sql: format!("({})", parts.join(" OR ")),
                binds,
            }
        }
    }

    #[test]
    fn a_local_user_sees_own_team_and_gateway_rows_numbered_after_the_statement() {
        let me = Principal::user("u1", false);
        let at = |table, alias, teams| Target {
            table,
            alias,
            teams,
        };
        assert_eq!(
            me.visible(&at(Table::Tasks, None, None), 3),
            Visible {
                sql: "(owner_user_id = $3 OR owner_team_id IN \
                      (SELECT team_id FROM team_members WHERE user_id = $3))"
                    .into(),
                binds: vec!["u1".into()],
            }
        );
        assert_eq!(
            me.visible(&at(Table::Notes, Some("c"), Some("t1,t2")), 2),
            Visible {
                sql: "(c.owner_user_id = $2 OR c.owner_team_id = ANY(string_to_array($3, ',')))"
                    .into(),
                binds: vec!["u1".into(), "t1,t2".into()],
            }
        );
        assert_eq!(
            me.visible(&at(Table::Routes, Some("r"), None), 1),
            Visible {
                sql: "(r.owner_user_id IS NULL OR r.owner_user_id = $1)".into(),
                binds: vec!["u1".into()],
            }
        );
        assert_eq!(
            me.visible(&at(Table::Sessions, None, None), 2).sql,
            "owner_user_id = $2"
        );
        assert_eq!(
            me.visible(&at(Table::ApiTokens, None, None), 4).sql,
            "user_id = $4"
        );
    }

    async fn ids(tx: &mut Tx<'_>, who: &impl Sight, table: Table) -> Vec<String> {
        // One value of the statement's own first, as real statements have.
        let visible = tx.visible(who, table, 2);
        let sql = tx
            .sql(&format!(
                "SELECT id FROM {} WHERE id <> $1 AND {visible} ORDER BY id",
                table.name()
            ))
            .into_owned();
        let rows = tx
            .fetch_all(visible.bind(sqlx::query(&sql).bind("")))
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.col::<String>("id").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_grant_based_principal_sees_only_the_granted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::sqlite_file(&dir.path().join("m.db")))
            .await
            .unwrap();
        let user = |name: &str| NewUser {
            username: name.into(),
            display_name: String::new(),
            password_hash: "hash".into(),
            is_admin: false,
        };
        store
            .issue_bootstrap_token(BootstrapSource::Startup, "h", crate::now_ms() + 60_000)
            .await
            .unwrap();
        let root = store.redeem_bootstrap("h", user("root")).await.unwrap();
        let root = Principal::user(&root.id, true);
        let alice = store.create_user(&root, user("alice")).await.unwrap();
        let alice = Principal::user(&alice.id, false);
        let bob = store.create_user(&root, user("bob")).await.unwrap();
        let bob = Principal::user(&bob.id, false);

        let project = store
            .create_project(
                &alice,
                &CreateProjectRequest {
                    name: "shared".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let task = |title: &str, project_id: Option<&str>| CreateTaskRequest {
            title: title.into(),
            project_id: project_id.map(str::to_string),
            ..Default::default()
        };
        let in_project = store
            .create_task(&alice, &task("in the project", Some(&project.id)))
            .await
            .unwrap();
        let outside = store
            .create_task(&alice, &task("outside it", None))
            .await
            .unwrap();
        store.create_task(&bob, &task("bob's", None)).await.unwrap();
        let note = CreateNoteRequest {
            title: "alice's note".into(),
            ..Default::default()
        };
        let alice_note = store.create_note(&alice, &note).await.unwrap();
        store.create_note(&bob, &note).await.unwrap();

        let alice_id = alice.local_user().unwrap().to_string();
        let remote = Granted {
            grants: vec![
                Grant {
                    owner_user_id: alice_id.clone(),
                    table: Table::Tasks,
                    project_id: Some(project.id.clone()),
                },
                Grant {
                    owner_user_id: alice_id.clone(),
                    table: Table::Notes,
                    project_id: None,
                },
            ],
        };
        let mut tx = store.begin(Acting::System, false).await.unwrap();
        assert_eq!(
            tx.visible(&remote, Table::Tasks, 2),
            Visible {
                sql: "((owner_user_id = $2 AND project_id = $3))".into(),
                binds: vec![alice_id.clone(), project.id.clone()],
            }
        );
        assert_eq!(
            ids(&mut tx, &remote, Table::Tasks).await,
            vec![in_project.id.clone()]
        );
        assert_eq!(
            ids(&mut tx, &remote, Table::Notes).await,
            vec![alice_note.id]
        );
        assert_eq!(
            ids(&mut tx, &remote, Table::Memories).await,
            Vec::<String>::new()
        );
        // The same statements as the owner: everything of hers.
        assert_eq!(
            ids(&mut tx, &alice, Table::Tasks).await,
            vec![in_project.id, outside.id]
        );
        tx.commit().await.unwrap();
    }
}
