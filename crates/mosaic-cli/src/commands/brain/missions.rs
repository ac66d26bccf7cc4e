//! `mosaic missions`. Milestones are edited by number (as `show` lists them, from 1):
//! the command reads the mission, applies the edits to its milestones and sends the
//! whole list back, since the API replaces milestones as one value.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use mosaic_api::{
    CreateMissionRequest, Milestone, Mission, MissionProgress, MissionQuery, MissionStatus,
    UpdateMissionRequest,
};

use super::{or_dash, parse_enum, read_text, resolve_project_opt, resolve_team_opt, set_or_clear};
use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

fn mission_statuses() -> clap::builder::PossibleValuesParser {
    ["active", "achieved", "abandoned"].into()
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

/// "2/5 tasks done, 40%"; "no tasks yet" before any task is linked.
fn progress_text(p: MissionProgress) -> String {
    if p.tasks_total == 0 {
        return "no tasks yet".into();
    }
    let percent = p.tasks_done * 100 / p.tasks_total;
    format!("{}/{} tasks done, {percent}%", p.tasks_done, p.tasks_total)
}

/// "1/3", or "-" without milestones.
fn milestones_text(milestones: &[Milestone]) -> String {
    if milestones.is_empty() {
        return "-".into();
    }
    let done = milestones.iter().filter(|m| m.done).count();
    format!("{done}/{}", milestones.len())
}

fn read_criteria(args: CriteriaArgs) -> Result<Option<String>> {
    read_text(args.criteria, args.criteria_file)
}

fn show(ctx: &Ctx, m: &Mission) -> Result<()> {
    if ctx.json {
        return json(m);
    }
    fields(&[
        ("id", m.id.clone()),
        ("goal", m.goal.clone()),
        ("status", m.status.as_str().to_string()),
        ("progress", progress_text(m.progress)),
        ("milestones", milestones_text(&m.milestones)),
        ("project", or_dash(&m.project_id)),
        ("owner", m.owner.describe()),
        ("created", m.created_at.clone()),
        ("updated", m.updated_at.clone()),
    ]);
    if !m.milestones.is_empty() {
        println!();
        for (n, milestone) in m.milestones.iter().enumerate() {
            let mark = if milestone.done { "x" } else { " " };
            println!("{:>3}. [{mark}] {}", n + 1, milestone.title);
        }
    }
    if !m.success_criteria.is_empty() {
        println!("\nSuccess criteria:\n{}", m.success_criteria.trim_end());
    }
    Ok(())
}

/// The milestone edits of `mosaic missions edit`, by number from 1.
#[derive(Debug, Default)]
struct MilestoneEdits {
    done: Vec<usize>,
    undone: Vec<usize>,
    add: Vec<String>,
    remove: Vec<usize>,
}

impl MilestoneEdits {
    fn is_empty(&self) -> bool {
        self.done.is_empty()
            && self.undone.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
    }

    /// The milestones after the edits: numbers name the milestones as they were, so
    /// ticks and removals never shift each other; added ones go at the end, not done.
    fn apply(&self, current: &[Milestone]) -> Result<Vec<Milestone>> {
        let check = |n: usize| {
            if n == 0 || n > current.len() {
                Err(usage(format!(
                    "there is no milestone {n}; the mission has {} (numbered from 1)",
                    current.len()
                )))
            } else {
                Ok(n - 1)
            }
        };
        if let Some(n) = self.done.iter().find(|n| self.undone.contains(n)) {
            return Err(usage(format!(
                "milestone {n} cannot be both done and undone"
            )));
        }
        let mut milestones = current.to_vec();
        for &n in &self.done {
            milestones[check(n)?].done = true;
        }
        for &n in &self.undone {
            milestones[check(n)?].done = false;
        }
        let remove = self
            .remove
            .iter()
            .map(|&n| check(n))
            .collect::<Result<Vec<_>>>()?;
        let mut kept: Vec<Milestone> = milestones
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !remove.contains(i))
            .map(|(_, m)| m)
            .collect();
        kept.extend(self.add.iter().map(|title| Milestone {
            title: title.clone(),
            done: false,
        }));
        Ok(kept)
    }
}

fn fresh(titles: Vec<String>) -> Vec<Milestone> {
    titles
        .into_iter()
        .map(|title| Milestone { title, done: false })
        .collect()
}

pub async fn missions(ctx: &Ctx, cmd: MissionsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        MissionsCommand::List {
            status,
            project,
            page,
        } => {
            let status = parse_enum(status, MissionStatus::parse)?;
            let project_id = resolve_project_opt(&client, project).await?;
            let list = paged(&page, |p| {
                let query = MissionQuery {
                    status,
                    project_id: project_id.clone(),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_missions(&query).await }
            })
            .await?;
            print_page(
                ctx,
                &list,
                &["ID", "STATUS", "PROGRESS", "MILESTONES", "GOAL"],
                |m| {
                    vec![
                        m.id.clone(),
                        m.status.as_str().to_string(),
                        progress_text(m.progress),
                        milestones_text(&m.milestones),
                        m.goal.clone(),
                    ]
                },
            )
        }
        MissionsCommand::Create {
            goal,
            criteria,
            milestones,
            status,
            project,
            team,
        } => {
            let req = CreateMissionRequest {
                goal,
                success_criteria: read_criteria(criteria)?.unwrap_or_default(),
                milestones: fresh(milestones),
                status: parse_enum(status, MissionStatus::parse)?,
                project_id: resolve_project_opt(&client, project).await?,
                team_id: resolve_team_opt(&client, team).await?,
            };
            show(ctx, &client.create_mission(&req).await?)
        }
        MissionsCommand::Show { id } => show(ctx, &client.get_mission(&id).await?),
        MissionsCommand::Edit {
            id,
            goal,
            criteria,
            status,
            project,
            no_project,
            milestone_done,
            milestone_undone,
            add_milestone,
            remove_milestone,
            milestones,
            no_milestones,
        } => {
            let edits = MilestoneEdits {
                done: milestone_done,
                undone: milestone_undone,
                add: add_milestone,
                remove: remove_milestone,
            };
            let milestones = match (no_milestones, milestones.is_empty(), edits.is_empty()) {
                (true, _, _) => Some(fresh(edits.add)),
                (false, false, _) => Some(fresh(milestones.into_iter().chain(edits.add).collect())),
                (false, true, false) => {
                    let current = client.get_mission(&id).await?;
                    Some(edits.apply(&current.milestones)?)
                }
                (false, true, true) => None,
            };
            let req = UpdateMissionRequest {
                goal,
                success_criteria: read_criteria(criteria)?,
                milestones,
                status: parse_enum(status, MissionStatus::parse)?,
                project_id: set_or_clear(resolve_project_opt(&client, project).await?, no_project),
            };
            if req == UpdateMissionRequest::default() {
                return Err(usage(
                    "nothing to change: pass --goal, --criteria, --criteria-file, --status, \
                     --project, --no-project or a milestone flag (--milestone-done N, \
                     --milestone-undone N, --add-milestone, --remove-milestone N, --milestone, \
                     --no-milestones)",
                ));
            }
            show(ctx, &client.update_mission(&id, &req).await?)
        }
        MissionsCommand::Delete { id } => {
            client.delete_mission(&id).await?;
            eprintln!("deleted mission {id}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ms(items: &[(&str, bool)]) -> Vec<Milestone> {
        items
            .iter()
            .map(|(title, done)| Milestone {
                title: (*title).into(),
                done: *done,
            })
            .collect()
    }

    #[test]
    fn progress_reads_as_done_of_total_with_a_percentage() {
        let p = |tasks_done, tasks_total| MissionProgress {
            tasks_total,
            tasks_done,
        };
        assert_eq!(progress_text(p(2, 5)), "2/5 tasks done, 40%");
        assert_eq!(progress_text(p(1, 3)), "1/3 tasks done, 33%");
        assert_eq!(progress_text(p(0, 0)), "no tasks yet");
        assert_eq!(milestones_text(&ms(&[("a", true), ("b", false)])), "1/2");
        assert_eq!(milestones_text(&[]), "-");
    }

    #[test]
    fn milestone_numbers_name_the_milestones_as_they_were() {
        let current = ms(&[("a", false), ("b", true), ("c", false)]);
        let edits = MilestoneEdits {
            done: vec![3],
            undone: vec![2],
            add: vec!["d".into()],
            remove: vec![1],
        };
        assert_eq!(
            edits.apply(&current).map_err(|e| e.to_string()),
            Ok(ms(&[("b", false), ("c", true), ("d", false)]))
        );
    }

    #[test]
    fn unknown_or_contradictory_milestone_numbers_are_refused() {
        let current = ms(&[("a", false)]);
        for edits in [
            MilestoneEdits {
                done: vec![2],
                ..MilestoneEdits::default()
            },
            MilestoneEdits {
                remove: vec![0],
                ..MilestoneEdits::default()
            },
            MilestoneEdits {
                done: vec![1],
                undone: vec![1],
                ..MilestoneEdits::default()
            },
        ] {
            assert!(edits.apply(&current).is_err(), "{edits:?}");
        }
    }
}
