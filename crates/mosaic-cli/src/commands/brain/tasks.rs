//! `mosaic tasks`.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{CreateTaskRequest, Task, TaskPriority, TaskQuery, TaskStatus, UpdateTaskRequest};

use super::{
    date_arg, or_dash, parse_enum, read_body, resolve_project_opt, resolve_team_opt, resolve_user,
    set_or_clear, BodyArgs,
};
use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

fn task_statuses() -> clap::builder::PossibleValuesParser {
    ["todo", "doing", "blocked", "done"].into()
}

fn task_priorities() -> clap::builder::PossibleValuesParser {
    ["low", "normal", "high", "urgent"].into()
}

#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Dates (--due, --due-before) are YYYY-MM-DD (midnight UTC) or RFC 3339. A project is \
named by id or name; an assignee by user id, or `me`.

Examples:
  mosaic tasks create \"Renew the certificate\" --project ops --due 2026-12-01 --label infra
  mosaic tasks list --status todo --assignee me --due-before 2026-12-31
  mosaic tasks edit TASK_ID --status blocked --no-due
  mosaic tasks create \"Sow the beans\" --mission MISSION_ID
  mosaic tasks list --mission MISSION_ID
  mosaic tasks done TASK_ID")]
pub enum TasksCommand {
    /// List the tasks you can see, newest first.
    List {
        /// Only tasks of this project (id or name).
        #[arg(long)]
        project: Option<String>,
        #[arg(long, value_parser = task_statuses())]
        status: Option<String>,
        /// Only tasks assigned to this user (id, or `me`).
        #[arg(long, value_name = "USER")]
        assignee: Option<String>,
        /// Only tasks with this label.
        #[arg(long)]
        label: Option<String>,
        /// Only subtasks of this task (id).
        #[arg(long, value_name = "TASK")]
        parent: Option<String>,
        /// Only tasks that count towards this mission (id).
        #[arg(long, value_name = "MISSION")]
        mission: Option<String>,
        /// Only tasks due strictly before this date.
        #[arg(long, value_name = "DATE")]
        due_before: Option<String>,
        /// Only tasks whose title or body contains all these words.
        #[arg(long, value_name = "WORDS")]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a task.
    Create {
        title: String,
        #[command(flatten)]
        body: BodyArgs,
        /// Default: todo.
        #[arg(long, value_parser = task_statuses())]
        status: Option<String>,
        /// Default: normal.
        #[arg(long, value_parser = task_priorities())]
        priority: Option<String>,
        /// When it is due.
        #[arg(long, value_name = "DATE")]
        due: Option<String>,
        /// The user (id, or `me`) who should do it.
        #[arg(long, value_name = "USER")]
        assignee: Option<String>,
        /// A label; repeatable, or comma-separated.
        #[arg(long = "label", value_delimiter = ',')]
        labels: Vec<String>,
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Make it a subtask of this task (id).
        #[arg(long, value_name = "TASK")]
        parent: Option<String>,
        /// Count it towards this mission (id) of the same owner.
        #[arg(long, value_name = "MISSION")]
        mission: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Show a task and its body.
    Show { id: String },
    /// Change a task; only the fields given change.
    Edit {
        id: String,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        body: BodyArgs,
        #[arg(long, value_parser = task_statuses())]
        status: Option<String>,
        #[arg(long, value_parser = task_priorities())]
        priority: Option<String>,
        /// A new due date.
        #[arg(long, value_name = "DATE", conflicts_with = "no_due")]
        due: Option<String>,
        /// Remove the due date.
        #[arg(long)]
        no_due: bool,
        /// Assign it to this user (id, or `me`).
        #[arg(long, value_name = "USER", conflicts_with = "no_assignee")]
        assignee: Option<String>,
        /// Unassign it.
        #[arg(long)]
        no_assignee: bool,
        /// Replace every label; repeatable, or comma-separated.
        #[arg(long = "label", value_delimiter = ',', conflicts_with = "no_labels")]
        labels: Vec<String>,
        /// Remove every label.
        #[arg(long)]
        no_labels: bool,
        /// Move it to this project (id or name).
        #[arg(long, conflicts_with = "no_project")]
        project: Option<String>,
        /// Take it out of its project.
        #[arg(long)]
        no_project: bool,
        /// Make it a subtask of this task (id).
        #[arg(long, value_name = "TASK", conflicts_with = "no_parent")]
        parent: Option<String>,
        /// Make it a top-level task.
        #[arg(long)]
        no_parent: bool,
        /// Count it towards this mission (id) instead.
        #[arg(long, value_name = "MISSION", conflicts_with = "no_mission")]
        mission: Option<String>,
        /// Unlink it from its mission.
        #[arg(long)]
        no_mission: bool,
    },
    /// Mark a task done (the same as `edit ID --status done`).
    Done { id: String },
    /// Delete a task.
    Delete { id: String },
}

fn show(ctx: &Ctx, t: &Task) -> Result<()> {
    if ctx.json {
        return json(t);
    }
    let mut pairs = vec![
        ("id", t.id.clone()),
        ("title", t.title.clone()),
        ("status", t.status.as_str().to_string()),
        ("priority", t.priority.as_str().to_string()),
        ("due", or_dash(&t.due_at)),
        ("assignee", or_dash(&t.assignee_user_id)),
        ("labels", t.labels.join(", ")),
        ("project", or_dash(&t.project_id)),
        ("parent", or_dash(&t.parent_task_id)),
        ("mission", or_dash(&t.mission_id)),
        ("owner", t.owner.describe()),
        ("created", t.created_at.clone()),
        ("updated", t.updated_at.clone()),
    ];
    if let Some(done) = &t.done_at {
        pairs.push(("done", done.clone()));
    }
    fields(&pairs);
    if !t.body.is_empty() {
        println!("\n{}", t.body.trim_end());
    }
    Ok(())
}

pub async fn tasks(ctx: &Ctx, cmd: TasksCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TasksCommand::List {
            project,
            status,
            assignee,
            label,
            parent,
            mission,
            due_before,
            q,
            page,
        } => {
            let status = parse_enum(status, TaskStatus::parse)?;
            let project_id = resolve_project_opt(&client, project).await?;
            let assignee = resolve_user(&client, assignee).await?;
            let due_before = date_arg(due_before);
            let list = paged(&page, |p| {
                let query = TaskQuery {
                    project_id: project_id.clone(),
                    status,
                    assignee: assignee.clone(),
                    label: label.clone(),
                    parent_task_id: parent.clone(),
                    due_before: due_before.clone(),
                    q: q.clone(),
                    mission_id: mission.clone(),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_tasks(&query).await }
            })
            .await?;
            print_page(
                ctx,
                &list,
                &["ID", "STATUS", "PRIORITY", "DUE", "TITLE", "LABELS"],
                |t| {
                    vec![
                        t.id.clone(),
                        t.status.as_str().to_string(),
                        t.priority.as_str().to_string(),
                        or_dash(&t.due_at),
                        t.title.clone(),
                        t.labels.join(","),
                    ]
                },
            )
        }
        TasksCommand::Create {
            title,
            body,
            status,
            priority,
            due,
            assignee,
            labels,
            project,
            parent,
            mission,
            team,
        } => {
            let req = CreateTaskRequest {
                title,
                body: read_body(body)?.unwrap_or_default(),
                status: parse_enum(status, TaskStatus::parse)?,
                priority: parse_enum(priority, TaskPriority::parse)?,
                due_at: date_arg(due),
                assignee_user_id: resolve_user(&client, assignee).await?,
                labels,
                project_id: resolve_project_opt(&client, project).await?,
                parent_task_id: parent,
                mission_id: mission,
                team_id: resolve_team_opt(&client, team).await?,
            };
            show(ctx, &client.create_task(&req).await?)
        }
        TasksCommand::Show { id } => show(ctx, &client.get_task(&id).await?),
        TasksCommand::Edit {
            id,
            title,
            body,
            status,
            priority,
            due,
            no_due,
            assignee,
            no_assignee,
            labels,
            no_labels,
            project,
            no_project,
            parent,
            no_parent,
            mission,
            no_mission,
        } => {
            let labels = match (no_labels, labels.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(labels),
                (false, true) => None,
            };
            let req = UpdateTaskRequest {
                title,
                body: read_body(body)?,
                status: parse_enum(status, TaskStatus::parse)?,
                priority: parse_enum(priority, TaskPriority::parse)?,
                due_at: set_or_clear(date_arg(due), no_due),
                assignee_user_id: set_or_clear(resolve_user(&client, assignee).await?, no_assignee),
                labels,
                project_id: set_or_clear(resolve_project_opt(&client, project).await?, no_project),
                parent_task_id: set_or_clear(parent, no_parent),
                mission_id: set_or_clear(mission, no_mission),
            };
            if req == UpdateTaskRequest::default() {
                return Err(usage(
                    "nothing to change: pass --title, --body, --file, --status, --priority, --due, \
                     --assignee, --label, --project, --parent, --mission or one of their --no-… flags",
                ));
            }
            show(ctx, &client.update_task(&id, &req).await?)
        }
        TasksCommand::Done { id } => {
            let req = UpdateTaskRequest {
                status: Some(TaskStatus::Done),
                ..UpdateTaskRequest::default()
            };
            show(ctx, &client.update_task(&id, &req).await?)
        }
        TasksCommand::Delete { id } => {
            client.delete_task(&id).await?;
            eprintln!("deleted task {id}");
            Ok(())
        }
    }
}
