//! Agents.

use mosaic_api::{Agent, AgentList, CreateAgentRequest, UpdateAgentRequest};
use reqwest::Method;

use crate::{path_segment, Client, Result};

impl Client {
    pub async fn list_agents(&self) -> Result<AgentList> {
        self.get("/api/v1/agents", &[]).await
    }

    pub async fn create_agent(&self, req: &CreateAgentRequest) -> Result<Agent> {
        self.json(Method::POST, "/api/v1/agents", &[], Some(req))
            .await
    }

    pub async fn get_agent(&self, id: &str) -> Result<Agent> {
        self.get(&format!("/api/v1/agents/{}", path_segment(id)), &[])
            .await
    }

    pub async fn update_agent(&self, id: &str, req: &UpdateAgentRequest) -> Result<Agent> {
        let path = format!("/api/v1/agents/{}", path_segment(id));
        self.json(Method::PATCH, &path, &[], Some(req)).await
    }

    pub async fn delete_agent(&self, id: &str) -> Result<()> {
        self.empty::<()>(
            Method::DELETE,
            &format!("/api/v1/agents/{}", path_segment(id)),
            None,
        )
        .await
    }
}
