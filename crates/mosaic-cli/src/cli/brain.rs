//! The flags of `mosaic projects|tasks|missions|notes|search`: the brain's items and the
//! search over them. Filters mirror the API's query structs (`ProjectQuery`, `TaskQuery`,
//! `MissionQuery`, `NoteQuery`); edits are partial, and a `--no-…` flag clears a field
//! that may be empty.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::PageArgs;

fn project_statuses() -> clap::builder::PossibleValuesParser {
    ["active", "paused", "done", "archived"].into()
}

fn task_statuses() -> clap::builder::PossibleValuesParser {
    ["todo", "doing", "blocked", "done"].into()
}

fn task_priorities() -> clap::builder::PossibleValuesParser {
    ["low", "normal", "high", "urgent"].into()
}

fn mission_statuses() -> clap::builder::PossibleValuesParser {
    ["active", "achieved", "abandoned"].into()
}

fn brain_kinds() -> clap::builder::PossibleValuesParser {
    ["task", "note", "memory"].into()
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List the projects you can see (yours and your teams'), newest first.
    List {
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Only projects in this workspace (id).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// Only this team's projects (id or name).
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a project.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Default: active.
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
        /// Put it in this workspace (id) of the same owner.
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
    },
    /// Show a project (by id or name).
    Show { project: String },
    /// Change a project (by id or name); only the fields given change.
    Edit {
        project: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// A new status.
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Move it to this workspace (id).
        #[arg(long, value_name = "ID", conflicts_with = "no_workspace")]
        workspace: Option<String>,
        /// Take it out of its workspace.
        #[arg(long)]
        no_workspace: bool,
    },
    /// Delete a project (by id or name).
    Delete { project: String },
}

/// A body: text, `-` for standard input, or a file.
#[derive(Debug, Args, Clone, Default)]
pub struct BodyArgs {
    /// The body (Markdown); `-` reads it from standard input.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub body: Option<String>,
    /// Read the body from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
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

/// Success criteria: text, `-` for standard input, or a file.
#[derive(Debug, Args, Clone, Default)]
pub struct CriteriaArgs {
    /// How you will know the goal is reached (Markdown); `-` reads it from standard input.
    #[arg(long, value_name = "TEXT", conflicts_with = "criteria_file")]
    pub criteria: Option<String>,
    /// Read the success criteria from this file.
    #[arg(long, value_name = "PATH")]
    pub criteria_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
A mission is a goal with success criteria and milestones. Its progress is counted from \
the tasks linked to it (`mosaic tasks create --mission ID`, `mosaic tasks edit ID \
--mission ID`). Milestones are numbered from 1 as `mosaic missions show` lists them.

Examples:
  mosaic missions create \"Ship 2.0\" --criteria \"All blockers closed\" \\
      --milestone \"Feature freeze\" --milestone \"Release candidate\" --project ops
  mosaic missions list --status active
  mosaic missions edit MISSION_ID --milestone-done 1 --add-milestone \"Announce\"
  mosaic missions edit MISSION_ID --status achieved
  mosaic missions show MISSION_ID --json")]
pub enum MissionsCommand {
    /// List the missions you can see, newest first, with their progress.
    List {
        /// Only missions with this status.
        #[arg(long, value_parser = mission_statuses())]
        status: Option<String>,
        /// Only missions of this project (id or name).
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a mission.
    Create {
        /// What the mission is to achieve.
        goal: String,
        #[command(flatten)]
        criteria: CriteriaArgs,
        /// A milestone, in order; repeatable.
        #[arg(long = "milestone", value_name = "TITLE")]
        milestones: Vec<String>,
        /// Default: active.
        #[arg(long, value_parser = mission_statuses())]
        status: Option<String>,
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Show a mission: its progress, milestones and success criteria.
    Show { id: String },
    /// Change a mission; only the fields given change.
    Edit {
        id: String,
        /// A new goal.
        #[arg(long)]
        goal: Option<String>,
        #[command(flatten)]
        criteria: CriteriaArgs,
        /// A new status (achieved: the goal is reached; abandoned: it no longer will be).
        #[arg(long, value_parser = mission_statuses())]
        status: Option<String>,
        /// Move it to this project (id or name).
        #[arg(long, conflicts_with = "no_project")]
        project: Option<String>,
        /// Take it out of its project.
        #[arg(long)]
        no_project: bool,
        /// Mark milestone N done; repeatable.
        #[arg(long, value_name = "N")]
        milestone_done: Vec<usize>,
        /// Mark milestone N not done; repeatable.
        #[arg(long, value_name = "N")]
        milestone_undone: Vec<usize>,
        /// Add a milestone at the end; repeatable.
        #[arg(long, value_name = "TITLE")]
        add_milestone: Vec<String>,
        /// Remove milestone N; repeatable.
        #[arg(long, value_name = "N")]
        remove_milestone: Vec<usize>,
        /// Replace every milestone (all not done); repeatable.
        #[arg(
            long = "milestone",
            value_name = "TITLE",
            conflicts_with_all = ["no_milestones", "milestone_done", "milestone_undone", "remove_milestone"]
        )]
        milestones: Vec<String>,
        /// Remove every milestone.
        #[arg(
            long,
            conflicts_with_all = ["milestone_done", "milestone_undone", "remove_milestone"]
        )]
        no_milestones: bool,
    },
    /// Delete a mission; its tasks stay, linked to no mission.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Examples:
  mosaic notes create \"Release checklist\" --file checklist.md --tag release
  git log --oneline | mosaic notes create \"Changes\" --body -
  mosaic notes list --tag release
  mosaic notes show NOTE_ID --json")]
pub enum NotesCommand {
    /// List the notes you can see, newest first.
    List {
        /// Only notes of this project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Only notes with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only notes whose title or body contains all these words.
        #[arg(long, value_name = "WORDS")]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a note.
    Create {
        title: String,
        #[command(flatten)]
        body: BodyArgs,
        /// A tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',')]
        tags: Vec<String>,
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Print a note: its fields, then its body.
    Show { id: String },
    /// Change a note; only the fields given change.
    Edit {
        id: String,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        body: BodyArgs,
        /// Replace every tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',', conflicts_with = "no_tags")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long)]
        no_tags: bool,
        /// Move it to this project (id or name).
        #[arg(long, conflicts_with = "no_project")]
        project: Option<String>,
        /// Take it out of its project.
        #[arg(long)]
        no_project: bool,
    },
    /// Delete a note.
    Delete { id: String },
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Tasks, notes and memories are searched by their words and, when the gateway has an \
embedding model (embedding_url, embedding_model), by meaning too; the two rankings are \
merged by reciprocal rank fusion. Matched words are shown between « and ». With --json \
each hit carries its fused score and its parts: lexical_rank and lexical_score (bm25 on \
SQLite, ts_rank on PostgreSQL), vector_rank and similarity (cosine); the answer's mode \
says whether meaning was used, and notice why not when the model could not answer.

Examples:
  mosaic search certificate
  mosaic search \"what does alice eat\" --kind memory
  mosaic search \"release checklist\" --kind note --limit 5 --json")]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// Only this kind of item; repeatable, or comma-separated (default: all).
    #[arg(long = "kind", value_delimiter = ',', value_parser = brain_kinds())]
    pub kinds: Vec<String>,
    /// At most this many hits (1-100; default 20).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Go by words alone, even with an embedding model.
    #[arg(long)]
    pub words_only: bool,
}
