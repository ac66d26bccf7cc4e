//! Memories: create, list with filters, read, change, forget.

use mosaic_api::{CreateMemoryRequest, Memory, MemoryQuery, Page, UpdateMemoryRequest};
use reqwest::Method;

use crate::{path_segment, Client, Result};

fn memory_query(q: &MemoryQuery) -> Vec<(&'static str, String)> {
    // Destructured so that a new filter cannot be forgotten here.
    let MemoryQuery {
        kind,
        tag,
        pinned,
        agent_id,
        q,
        cursor,
        limit,
    } = q;
    [
        ("kind", kind.map(|k| k.as_str().to_string())),
        ("tag", tag.clone()),
        ("pinned", pinned.map(|p| p.to_string())),
        ("agent_id", agent_id.clone()),
        ("q", q.clone()),
        ("cursor", cursor.clone()),
        ("limit", limit.map(|l| l.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

fn memory_path(id: &str) -> String {
    format!("/api/v1/memories/{}", path_segment(id))
}

impl Client {
    pub async fn list_memories(&self, q: &MemoryQuery) -> Result<Page<Memory>> {
        self.get("/api/v1/memories", &memory_query(q)).await
    }

    pub async fn create_memory(&self, req: &CreateMemoryRequest) -> Result<Memory> {
        self.json(Method::POST, "/api/v1/memories", &[], Some(req))
            .await
    }

    pub async fn get_memory(&self, id: &str) -> Result<Memory> {
        self.get(&memory_path(id), &[]).await
    }

    pub async fn update_memory(&self, id: &str, req: &UpdateMemoryRequest) -> Result<Memory> {
        self.json(Method::PATCH, &memory_path(id), &[], Some(req))
            .await
    }

    pub async fn delete_memory(&self, id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &memory_path(id), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_api::MemoryKind;
    use pretty_assertions::assert_eq;

    #[test]
    fn only_the_memory_filters_given_go_into_the_query() {
        assert_eq!(memory_query(&MemoryQuery::default()), vec![]);
        let q = MemoryQuery {
            kind: Some(MemoryKind::Preference),
            pinned: Some(false),
            limit: Some(3),
            ..MemoryQuery::default()
        };
        assert_eq!(
            memory_query(&q),
            vec![
                ("kind", "preference".to_string()),
                ("pinned", "false".to_string()),
                ("limit", "3".to_string()),
            ]
        );
    }
}
