//! Agents: the caller's own configurations of prompt, route and tools.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{Agent, AgentList, CreateAgentRequest, ErrorBody, UpdateAgentRequest};
use mosaic_store::{AgentChanges, NewAgent};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::routes::no_content;
use crate::AppState;

/// The routes of agents.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
}

/// Your agents (the `default` one always among them).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", operation_id = "list_agents",
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody)))]
pub async fn list_agents(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        items: state.store.list_agents(&auth.principal).await?,
    }))
}

/// Create an agent.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", operation_id = "create_agent",
    request_body = CreateAgentRequest,
    responses((status = 201, body = Agent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateAgentRequest>,
) -> ApiResult<Response> {
    let defaults = mosaic_store::default_agent();
    let new = NewAgent {
        name: req.name,
        description: req.description.unwrap_or_default(),
        system_prompt: req.system_prompt.unwrap_or(defaults.system_prompt),
        route: req.route.unwrap_or(defaults.route),
        tools: req.tools.unwrap_or(defaults.tools),
        limits: req.limits.unwrap_or_default(),
    };
    let agent = state.store.create_agent(&auth.principal, new).await?;
    Ok((StatusCode::CREATED, Json(agent)).into_response())
}

/// One of your agents.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", operation_id = "get_agent",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(state.store.get_agent(&auth.principal, &id).await?))
}

/// Change an agent (the tool list is replaced whole).
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", operation_id = "update_agent",
    params(("id" = String, Path, description = "Agent id")), request_body = UpdateAgentRequest,
    responses((status = 200, body = Agent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateAgentRequest>,
) -> ApiResult<Json<Agent>> {
    let changes = AgentChanges {
        name: req.name,
        description: req.description,
        system_prompt: req.system_prompt,
        route: req.route,
        tools: req.tools,
        limits: req.limits,
    };
    Ok(Json(
        state
            .store
            .update_agent(&auth.principal, &id, changes)
            .await?,
    ))
}

/// Delete an agent (not the default one).
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", operation_id = "delete_agent",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The default agent")))]
pub async fn delete_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_agent(&auth.principal, &id).await?;
    Ok(no_content())
}
