//! The brain: projects, tasks, missions and notes (create, list with filters, read,
//! change, delete) and the lexical search over tasks and notes.

use mosaic_api::{
    BrainKind, CreateMissionRequest, CreateNoteRequest, CreateProjectRequest, CreateTaskRequest,
    Mission, MissionQuery, Note, NoteQuery, Page, Project, ProjectQuery, SearchMode, SearchResults,
    Task, TaskQuery, UpdateMissionRequest, UpdateNoteRequest, UpdateProjectRequest,
    UpdateTaskRequest,
};
use reqwest::Method;

use crate::{path_segment, Client, Result};

/// What the search looks for: `q`, and optionally only some kinds and at most `limit` hits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub q: String,
    /// Every kind when empty.
    pub kinds: Vec<BrainKind>,
    pub limit: Option<u32>,
    /// `Lexical` goes by words alone; absent (or `Hybrid`) adds meaning when the
    /// gateway has an embedding model.
    pub mode: Option<SearchMode>,
}

/// Query parameters from `(name, value)` pairs, leaving out the absent ones.
fn query(pairs: &[(&'static str, Option<String>)]) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect()
}

fn project_query(q: &ProjectQuery) -> Vec<(&'static str, String)> {
    query(&[
        ("status", q.status.map(|s| s.as_str().to_string())),
        ("workspace_id", q.workspace_id.clone()),
        ("team_id", q.team_id.clone()),
        ("cursor", q.cursor.clone()),
        ("limit", q.limit.map(|l| l.to_string())),
    ])
}

fn task_query(q: &TaskQuery) -> Vec<(&'static str, String)> {
    // Destructured so that a new filter cannot be forgotten here.
    let TaskQuery {
        project_id,
        status,
        assignee,
        label,
        parent_task_id,
        mission_id,
        due_before,
        q,
        cursor,
        limit,
    } = q;
    query(&[
        ("project_id", project_id.clone()),
        ("status", status.map(|s| s.as_str().to_string())),
        ("assignee", assignee.clone()),
        ("label", label.clone()),
        ("parent_task_id", parent_task_id.clone()),
        ("mission_id", mission_id.clone()),
        ("due_before", due_before.clone()),
        ("q", q.clone()),
        ("cursor", cursor.clone()),
        ("limit", limit.map(|l| l.to_string())),
    ])
}

fn mission_query(q: &MissionQuery) -> Vec<(&'static str, String)> {
    let MissionQuery {
        status,
        project_id,
        cursor,
        limit,
    } = q;
    query(&[
        ("status", status.map(|s| s.as_str().to_string())),
        ("project_id", project_id.clone()),
        ("cursor", cursor.clone()),
        ("limit", limit.map(|l| l.to_string())),
    ])
}

fn note_query(q: &NoteQuery) -> Vec<(&'static str, String)> {
    query(&[
        ("project_id", q.project_id.clone()),
        ("tag", q.tag.clone()),
        ("q", q.q.clone()),
        ("cursor", q.cursor.clone()),
        ("limit", q.limit.map(|l| l.to_string())),
    ])
}

fn search_query(q: &SearchQuery) -> Vec<(&'static str, String)> {
    let kinds = (!q.kinds.is_empty()).then(|| {
        q.kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    query(&[
        ("q", Some(q.q.clone())),
        ("kinds", kinds),
        ("limit", q.limit.map(|l| l.to_string())),
        (
            "mode",
            q.mode.map(|m| match m {
                SearchMode::Lexical => "lexical".to_string(),
                SearchMode::Hybrid => "hybrid".to_string(),
            }),
        ),
    ])
}

fn item_path(collection: &str, id: &str) -> String {
    format!("/api/v1/{collection}/{}", path_segment(id))
}

impl Client {
    // --- projects ---

    pub async fn list_projects(&self, q: &ProjectQuery) -> Result<Page<Project>> {
        self.get("/api/v1/projects", &project_query(q)).await
    }

    pub async fn create_project(&self, req: &CreateProjectRequest) -> Result<Project> {
        self.json(Method::POST, "/api/v1/projects", &[], Some(req))
            .await
    }

    pub async fn get_project(&self, id: &str) -> Result<Project> {
        self.get(&item_path("projects", id), &[]).await
    }

    pub async fn update_project(&self, id: &str, req: &UpdateProjectRequest) -> Result<Project> {
        self.json(Method::PATCH, &item_path("projects", id), &[], Some(req))
            .await
    }

    pub async fn delete_project(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &item_path("projects", id), None)
            .await
    }

    // --- tasks ---

    pub async fn list_tasks(&self, q: &TaskQuery) -> Result<Page<Task>> {
        self.get("/api/v1/tasks", &task_query(q)).await
    }

    pub async fn create_task(&self, req: &CreateTaskRequest) -> Result<Task> {
        self.json(Method::POST, "/api/v1/tasks", &[], Some(req))
            .await
    }

    pub async fn get_task(&self, id: &str) -> Result<Task> {
        self.get(&item_path("tasks", id), &[]).await
    }

    pub async fn update_task(&self, id: &str, req: &UpdateTaskRequest) -> Result<Task> {
        self.json(Method::PATCH, &item_path("tasks", id), &[], Some(req))
            .await
    }

    pub async fn delete_task(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &item_path("tasks", id), None)
            .await
    }

    // --- missions ---

    pub async fn list_missions(&self, q: &MissionQuery) -> Result<Page<Mission>> {
        self.get("/api/v1/missions", &mission_query(q)).await
    }

    pub async fn create_mission(&self, req: &CreateMissionRequest) -> Result<Mission> {
        self.json(Method::POST, "/api/v1/missions", &[], Some(req))
            .await
    }

    pub async fn get_mission(&self, id: &str) -> Result<Mission> {
        self.get(&item_path("missions", id), &[]).await
    }

    pub async fn update_mission(&self, id: &str, req: &UpdateMissionRequest) -> Result<Mission> {
        self.json(Method::PATCH, &item_path("missions", id), &[], Some(req))
            .await
    }

    pub async fn delete_mission(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &item_path("missions", id), None)
            .await
    }

    // --- notes ---

    pub async fn list_notes(&self, q: &NoteQuery) -> Result<Page<Note>> {
        self.get("/api/v1/notes", &note_query(q)).await
    }

    pub async fn create_note(&self, req: &CreateNoteRequest) -> Result<Note> {
        self.json(Method::POST, "/api/v1/notes", &[], Some(req))
            .await
    }

    pub async fn get_note(&self, id: &str) -> Result<Note> {
        self.get(&item_path("notes", id), &[]).await
    }

    pub async fn update_note(&self, id: &str, req: &UpdateNoteRequest) -> Result<Note> {
        self.json(Method::PATCH, &item_path("notes", id), &[], Some(req))
            .await
    }

    pub async fn delete_note(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &item_path("notes", id), None)
            .await
    }

    // --- search ---

    /// Tasks and notes matching `q.q`, best first.
    pub async fn search_brain(&self, q: &SearchQuery) -> Result<SearchResults> {
        self.get("/api/v1/brain/search", &search_query(q)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_api::TaskStatus;
    use pretty_assertions::assert_eq;

    #[test]
    fn only_the_task_filters_given_go_into_the_query() {
        assert_eq!(task_query(&TaskQuery::default()), vec![]);
        let q = TaskQuery {
            project_id: Some("p1".into()),
            status: Some(TaskStatus::Doing),
            due_before: Some("2026-01-01T00:00:00Z".into()),
            limit: Some(5),
            ..TaskQuery::default()
        };
        assert_eq!(
            task_query(&q),
            vec![
                ("project_id", "p1".to_string()),
                ("status", "doing".to_string()),
                ("due_before", "2026-01-01T00:00:00Z".to_string()),
                ("limit", "5".to_string()),
            ]
        );
    }

    #[test]
    fn only_the_mission_filters_given_go_into_the_query() {
        assert_eq!(mission_query(&MissionQuery::default()), vec![]);
        let q = MissionQuery {
            status: Some(mosaic_api::MissionStatus::Achieved),
            project_id: Some("p1".into()),
            cursor: Some("c".into()),
            limit: None,
        };
        assert_eq!(
            mission_query(&q),
            vec![
                ("status", "achieved".to_string()),
                ("project_id", "p1".to_string()),
                ("cursor", "c".to_string()),
            ]
        );
        let linked = TaskQuery {
            mission_id: Some("m1".into()),
            ..TaskQuery::default()
        };
        assert_eq!(task_query(&linked), vec![("mission_id", "m1".to_string())]);
    }

    #[test]
    fn search_kinds_go_comma_separated_and_only_when_narrowed() {
        let all = SearchQuery {
            q: "deploy".into(),
            ..SearchQuery::default()
        };
        assert_eq!(search_query(&all), vec![("q", "deploy".to_string())]);
        let notes = SearchQuery {
            q: "deploy".into(),
            kinds: vec![BrainKind::Task, BrainKind::Note],
            limit: Some(3),
            mode: Some(SearchMode::Lexical),
        };
        assert_eq!(
            search_query(&notes),
            vec![
                ("q", "deploy".to_string()),
                ("kinds", "task,note".to_string()),
                ("limit", "3".to_string()),
                ("mode", "lexical".to_string()),
            ]
        );
    }
}
