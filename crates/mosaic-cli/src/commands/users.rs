//! `mosaic users`: accounts of the gateway (admins create, change, disable, enable and delete them).

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{CreateUserRequest, UpdateUserRequest, User};

use crate::commands::{paged, print_page, read_password, Ctx, PageArgs};
use crate::output::{fields, json, yes_no};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List(PageArgs),
    /// Create a user.
    Create {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user.
    Show { id: String },
    /// Change a user.
    Update {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Grant (true) or remove (false) admin rights.
        #[arg(long)]
        admin: Option<bool>,
        /// Set a new password, read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their sessions and tokens stop working.
    Disable { id: String },
    /// Enable a disabled user.
    Enable { id: String },
    /// Delete a user and everything they own.
    Delete { id: String },
}

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
