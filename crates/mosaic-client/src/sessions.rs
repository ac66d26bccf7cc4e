//! Sessions: list, search, read a branch, switch branches, rename, archive, delete,
//! export and import (JSON Lines, passed through as text).

use mosaic_api::{
    BranchList, CreateSessionRequest, EntryList, Page, Session, SessionQuery, SetLeafRequest,
    UpdateSessionRequest,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;

use crate::{path_segment, Client, Result};

/// The media type of a session export.
const JSONL: &str = "application/x-ndjson";

fn session_path(id: &str) -> String {
    format!("/api/v1/sessions/{}", path_segment(id))
}

fn session_query(q: &SessionQuery) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(text) = &q.q {
        out.push(("q", text.clone()));
    }
    if let Some(archived) = q.archived {
        out.push(("archived", archived.to_string()));
    }
    if let Some(c) = &q.cursor {
        out.push(("cursor", c.clone()));
    }
    if let Some(l) = q.limit {
        out.push(("limit", l.to_string()));
    }
    out
}

impl Client {
    pub async fn list_sessions(&self, q: &SessionQuery) -> Result<Page<Session>> {
        self.get("/api/v1/sessions", &session_query(q)).await
    }

    pub async fn create_session(&self, req: &CreateSessionRequest) -> Result<Session> {
        self.json(Method::POST, "/api/v1/sessions", &[], Some(req))
            .await
    }

    pub async fn get_session(&self, id: &str) -> Result<Session> {
        self.get(&session_path(id), &[]).await
    }

    pub async fn update_session(&self, id: &str, req: &UpdateSessionRequest) -> Result<Session> {
        self.json(Method::PATCH, &session_path(id), &[], Some(req))
            .await
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &session_path(id), None)
            .await
    }

    /// The entries from a root to `leaf` (the active leaf when `None`).
    pub async fn list_session_entries(&self, id: &str, leaf: Option<&str>) -> Result<EntryList> {
        let query: Vec<_> = leaf.map(|l| ("leaf", l.to_string())).into_iter().collect();
        self.get(&format!("{}/entries", session_path(id)), &query)
            .await
    }

    pub async fn list_session_branches(&self, id: &str) -> Result<BranchList> {
        self.get(&format!("{}/branches", session_path(id)), &[])
            .await
    }

    /// Make `entry_id` the active leaf.
    pub async fn set_session_leaf(&self, id: &str, entry_id: &str) -> Result<Session> {
        let req = SetLeafRequest {
            entry_id: entry_id.to_string(),
        };
        let path = format!("{}/leaf", session_path(id));
        self.json(Method::PUT, &path, &[], Some(&req)).await
    }

    /// The session as JSON Lines, exactly as the gateway wrote it.
    pub async fn export_session(&self, id: &str) -> Result<String> {
        let path = format!("{}/export", session_path(id));
        let resp = self.send::<()>(Method::GET, &path, &[], None).await?;
        self.text(resp).await
    }

    /// Recreate a session from an export; the new session gets its own id.
    pub async fn import_session(&self, jsonl: String) -> Result<Session> {
        let req = self
            .request(Method::POST, "/api/v1/sessions/import", &[])
            .header(CONTENT_TYPE, JSONL)
            .body(jsonl);
        let resp = self.execute(req).await?;
        let text = self.text(resp).await?;
        serde_json::from_str(&text).map_err(|e| crate::ClientError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn only_the_filters_given_go_into_the_query() {
        assert_eq!(session_query(&SessionQuery::default()), vec![]);
        let q = SessionQuery {
            q: Some("rust".into()),
            archived: Some(true),
            cursor: Some("c1".into()),
            limit: Some(5),
        };
        assert_eq!(
            session_query(&q),
            vec![
                ("q", "rust".to_string()),
                ("archived", "true".to_string()),
                ("cursor", "c1".to_string()),
                ("limit", "5".to_string()),
            ]
        );
    }
}
