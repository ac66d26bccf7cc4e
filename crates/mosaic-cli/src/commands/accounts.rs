//! `mosaic users|tokens|teams|workspaces|prefs`: account management over the API.

use std::time::Duration;

use anyhow::Result;
use mosaic_api::{
    AddMemberRequest, ApiToken, CreateTeamRequest, CreateTokenRequest, CreateUserRequest,
    CreateWorkspaceRequest, Owner, Preference, Scope, SetPreferenceRequest, Team, TeamRole,
    UpdateTeamRequest, UpdateUserRequest, UpdateWorkspaceRequest, User, Workspace, PREFERENCES,
};

use crate::cli::{PrefsCommand, TeamsCommand, TokensCommand, UsersCommand, WorkspacesCommand};
use crate::commands::{paged, print_page, read_password, usage, Ctx};
use crate::output::{fields, json, table, yes_no};

fn show_user(ctx: &Ctx, u: &User) -> Result<()> {
    if ctx.json {
        return json(u);
    }
    fields(&[
        ("id", u.id.clone()),
        ("username", u.username.clone()),
        ("name", u.display_name.clone()),
        ("admin", yes_no(u.is_admin)),
        ("disabled", yes_no(u.disabled)),
        ("created", u.created_at.clone()),
        ("updated", u.updated_at.clone()),
    ]);
    Ok(())
}

pub async fn users(ctx: &Ctx, cmd: UsersCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        UsersCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_users(&q).await }
            })
            .await?;
            print_page(
                ctx,
                &page,
                &["ID", "USERNAME", "NAME", "ADMIN", "DISABLED"],
                |u| {
                    vec![
                        u.id.clone(),
                        u.username.clone(),
                        u.display_name.clone(),
                        yes_no(u.is_admin),
                        yes_no(u.disabled),
                    ]
                },
            )
        }
        UsersCommand::Create {
            username,
            display_name,
            admin,
            password_stdin,
        } => {
            let password = read_password(&format!("password for {username}: "), password_stdin)?;
            let user = client
                .create_user(&CreateUserRequest {
                    username,
                    password,
                    display_name,
                    is_admin: admin,
                })
                .await?;
            show_user(ctx, &user)
        }
        UsersCommand::Show { id } => show_user(ctx, &client.get_user(&id).await?),
        UsersCommand::Update {
            id,
            display_name,
            admin,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password("new password: ", true)?)
            } else {
                None
            };
            let req = UpdateUserRequest {
                display_name,
                is_admin: admin,
                password,
                disabled: None,
            };
            show_user(ctx, &client.update_user(&id, &req).await?)
        }
        UsersCommand::Disable { id } => {
            let req = UpdateUserRequest {
                disabled: Some(true),
                ..UpdateUserRequest::default()
            };
            show_user(ctx, &client.update_user(&id, &req).await?)
        }
        UsersCommand::Enable { id } => {
            let req = UpdateUserRequest {
                disabled: Some(false),
                ..UpdateUserRequest::default()
            };
            show_user(ctx, &client.update_user(&id, &req).await?)
        }
        UsersCommand::Delete { id } => {
            client.delete_user(&id).await?;
            eprintln!("deleted user {id}");
            Ok(())
        }
    }
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn show_token(ctx: &Ctx, t: &ApiToken) -> Result<()> {
    if ctx.json {
        return json(t);
    }
    fields(&[
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("prefix", format!("{}…", t.prefix)),
        ("scopes", scopes_text(&t.scopes)),
        ("created", t.created_at.clone()),
        (
            "expires",
            t.expires_at.clone().unwrap_or_else(|| "never".into()),
        ),
        (
            "last used",
            t.last_used_at.clone().unwrap_or_else(|| "never".into()),
        ),
    ]);
    Ok(())
}

pub async fn tokens(ctx: &Ctx, cmd: TokensCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TokensCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_tokens(&q).await }
            })
            .await?;
            print_page(
                ctx,
                &page,
                &["ID", "NAME", "PREFIX", "SCOPES", "EXPIRES", "LAST USED"],
                |t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        format!("{}…", t.prefix),
                        scopes_text(&t.scopes),
                        t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        t.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                },
            )
        }
        TokensCommand::Create {
            name,
            scopes,
            expires_in,
        } => {
            let scopes = if scopes.is_empty() {
                None
            } else {
                let parsed = scopes
                    .iter()
                    .map(|s| {
                        Scope::parse(s.trim()).ok_or_else(|| {
                            usage(format!(
                                "unknown scope '{s}' (expected read, write or admin)"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(parsed)
            };
            let expires_in_secs = expires_in
                .map(|s| humantime::parse_duration(&s).map(|d: Duration| d.as_secs()))
                .transpose()
                .map_err(|e| usage(format!("--expires-in: {e} (e.g. 30d, 12h)")))?;
            let created = client
                .create_token(&CreateTokenRequest {
                    name,
                    scopes,
                    expires_in_secs,
                })
                .await?;
            if ctx.json {
                return json(&created);
            }
            println!("{}", created.token);
            eprintln!(
                "token {} created; it is shown only now, store it safely",
                created.info.id
            );
            Ok(())
        }
        TokensCommand::Show { id } => show_token(ctx, &client.get_token(&id).await?),
        TokensCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            eprintln!("revoked token {id}");
            Ok(())
        }
    }
}

fn show_team(ctx: &Ctx, t: &Team) -> Result<()> {
    if ctx.json {
        return json(t);
    }
    fields(&[
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("your role", t.role.as_str().into()),
        ("created", t.created_at.clone()),
    ]);
    Ok(())
}

fn parse_role(s: &str) -> Result<TeamRole> {
    TeamRole::parse(s).ok_or_else(|| {
        usage(format!(
            "unknown role '{s}' (expected owner, admin or member)"
        ))
    })
}

pub async fn teams(ctx: &Ctx, cmd: TeamsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TeamsCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_teams(&q).await }
            })
            .await?;
            print_page(ctx, &page, &["ID", "NAME", "YOUR ROLE"], |t| {
                vec![t.id.clone(), t.name.clone(), t.role.as_str().into()]
            })
        }
        TeamsCommand::Create { name } => {
            show_team(ctx, &client.create_team(&CreateTeamRequest { name }).await?)
        }
        TeamsCommand::Show { id } => show_team(ctx, &client.get_team(&id).await?),
        TeamsCommand::Rename { id, name } => show_team(
            ctx,
            &client.update_team(&id, &UpdateTeamRequest { name }).await?,
        ),
        TeamsCommand::Delete { id } => {
            client.delete_team(&id).await?;
            eprintln!("deleted team {id}");
            Ok(())
        }
        TeamsCommand::Members { id } => {
            let members = client.list_team_members(&id).await?;
            if ctx.json {
                return json(&members);
            }
            let rows: Vec<Vec<String>> = members
                .items
                .iter()
                .map(|m| {
                    vec![
                        m.user_id.clone(),
                        m.username.clone(),
                        m.role.as_str().into(),
                        m.added_at.clone(),
                    ]
                })
                .collect();
            table(&["USER ID", "USERNAME", "ROLE", "ADDED"], &rows);
            Ok(())
        }
        TeamsCommand::AddMember { id, username, role } => {
            let member = client
                .add_team_member(
                    &id,
                    &AddMemberRequest {
                        username,
                        role: parse_role(&role)?,
                    },
                )
                .await?;
            if ctx.json {
                return json(&member);
            }
            eprintln!(
                "{} is now {} of team {id}",
                member.username,
                member.role.as_str()
            );
            Ok(())
        }
        TeamsCommand::RemoveMember { id, user_id } => {
            client.remove_team_member(&id, &user_id).await?;
            eprintln!("removed {user_id} from team {id}");
            Ok(())
        }
    }
}

fn owner_text(o: &Owner) -> String {
    match o {
        Owner::User { id } => format!("user {id}"),
        Owner::Team { id } => format!("team {id}"),
    }
}

fn show_workspace(ctx: &Ctx, w: &Workspace) -> Result<()> {
    if ctx.json {
        return json(w);
    }
    fields(&[
        ("id", w.id.clone()),
        ("name", w.name.clone()),
        ("description", w.description.clone()),
        ("owner", owner_text(&w.owner)),
        ("created", w.created_at.clone()),
        ("updated", w.updated_at.clone()),
    ]);
    Ok(())
}

pub async fn workspaces(ctx: &Ctx, cmd: WorkspacesCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        WorkspacesCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_workspaces(&q).await }
            })
            .await?;
            print_page(ctx, &page, &["ID", "NAME", "OWNER"], |w| {
                vec![w.id.clone(), w.name.clone(), owner_text(&w.owner)]
            })
        }
        WorkspacesCommand::Create {
            name,
            description,
            team,
        } => {
            let req = CreateWorkspaceRequest {
                name,
                description,
                team_id: team,
            };
            show_workspace(ctx, &client.create_workspace(&req).await?)
        }
        WorkspacesCommand::Show { id } => show_workspace(ctx, &client.get_workspace(&id).await?),
        WorkspacesCommand::Update {
            id,
            name,
            description,
        } => {
            if name.is_none() && description.is_none() {
                return Err(usage("nothing to change: pass --name and/or --description"));
            }
            let req = UpdateWorkspaceRequest { name, description };
            show_workspace(ctx, &client.update_workspace(&id, &req).await?)
        }
        WorkspacesCommand::Delete { id } => {
            client.delete_workspace(&id).await?;
            eprintln!("deleted workspace {id}");
            Ok(())
        }
    }
}

fn show_pref(ctx: &Ctx, p: &Preference) -> Result<()> {
    if ctx.json {
        return json(p);
    }
    println!("{} = {}", p.key, p.value);
    Ok(())
}

pub async fn prefs(ctx: &Ctx, cmd: PrefsCommand) -> Result<()> {
    if let PrefsCommand::Keys = cmd {
        if ctx.json {
            let keys: Vec<serde_json::Value> = PREFERENCES
                .iter()
                .map(|p| {
                    serde_json::json!({"key": p.key, "type": p.value_type.describe(), "description": p.description})
                })
                .collect();
            return json(&keys);
        }
        let rows: Vec<Vec<String>> = PREFERENCES
            .iter()
            .map(|p| vec![p.key.into(), p.value_type.describe(), p.description.into()])
            .collect();
        table(&["KEY", "VALUES", "DESCRIPTION"], &rows);
        return Ok(());
    }
    let client = ctx.client()?;
    match cmd {
        PrefsCommand::Keys => Ok(()),
        PrefsCommand::List => {
            let list = client.list_preferences().await?;
            if ctx.json {
                return json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|p| vec![p.key.clone(), p.value.to_string(), p.updated_at.clone()])
                .collect();
            table(&["KEY", "VALUE", "UPDATED"], &rows);
            Ok(())
        }
        PrefsCommand::Get { key } => show_pref(ctx, &client.get_preference(&key).await?),
        PrefsCommand::Set { key, value } => {
            // JSON when it parses (true, 20, "quoted"), plain text otherwise.
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
            show_pref(
                ctx,
                &client
                    .set_preference(&key, &SetPreferenceRequest { value })
                    .await?,
            )
        }
        PrefsCommand::Unset { key } => {
            client.delete_preference(&key).await?;
            eprintln!("unset {key}");
            Ok(())
        }
    }
}
