//! Model providers, the models they offer, routes over them, their health, token
//! usage, and the OpenAI-compatible endpoint (`/v1`), whose bodies are OpenAI's and so
//! stay JSON values here rather than types of the contract.

use mosaic_api::{
    CreateProviderRequest, HealthList, ModelList, ProviderInfo, ProviderList, RouteInfo, RouteList,
    SetRouteRequest, TestProviderRequest, TestProviderResponse, UpdateProviderRequest, UsageQuery,
    UsageReport,
};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sse::ChatStream;
use crate::{path_segment, Client, ClientError, Result};

/// Where the gateway sent a chat completion: the `x-mosaic-*` headers of a streamed
/// answer, or the `mosaic` field of a whole one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The provider that answered (its name).
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The route entries that failed before it, in order.
    #[serde(default)]
    pub fallbacks: Vec<Fallback>,
}

/// One route entry that failed before the one that answered, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub provider: String,
    pub model: String,
    pub error: String,
}

impl Routing {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Routing {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Routing {
            provider: text("x-mosaic-provider"),
            model: text("x-mosaic-model"),
            fallbacks: text("x-mosaic-fallbacks")
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default(),
        }
    }
}

/// The routing of a whole (non-streamed) chat completion, from its `mosaic` field.
pub fn routing_of(answer: &Value) -> Routing {
    serde_json::from_value(answer["mosaic"].clone()).unwrap_or_default()
}

/// `body` with its `stream` flag set: each method below decides how it reads the answer.
fn with_stream(body: &Value, stream: bool) -> Result<Value> {
    let mut body = body.clone();
    let Some(fields) = body.as_object_mut() else {
        return Err(ClientError::Decode(
            "a chat completion request must be a JSON object".into(),
        ));
    };
    fields.insert("stream".into(), Value::Bool(stream));
    Ok(body)
}

impl Client {
    // --- providers ---

    pub async fn list_providers(&self) -> Result<ProviderList> {
        self.get("/api/v1/providers", &[]).await
    }

    pub async fn create_provider(&self, req: &CreateProviderRequest) -> Result<ProviderInfo> {
        self.json(Method::POST, "/api/v1/providers", &[], Some(req))
            .await
    }

    pub async fn get_provider(&self, id: &str) -> Result<ProviderInfo> {
        self.get(&format!("/api/v1/providers/{}", path_segment(id)), &[])
            .await
    }

    pub async fn update_provider(
        &self,
        id: &str,
        req: &UpdateProviderRequest,
    ) -> Result<ProviderInfo> {
        let path = format!("/api/v1/providers/{}", path_segment(id));
        self.json(Method::PATCH, &path, &[], Some(req)).await
    }

    pub async fn delete_provider(&self, id: &str) -> Result<()> {
        let path = format!("/api/v1/providers/{}", path_segment(id));
        self.empty::<()>(Method::DELETE, &path, None).await
    }

    /// One tiny completion through this provider: its latency, or its exact error.
    pub async fn test_provider(
        &self,
        id: &str,
        req: &TestProviderRequest,
    ) -> Result<TestProviderResponse> {
        let path = format!("/api/v1/providers/{}/test", path_segment(id));
        self.json(Method::POST, &path, &[], Some(req)).await
    }

    // --- models, routes, health, usage ---

    pub async fn list_models(&self) -> Result<ModelList> {
        self.get("/api/v1/models", &[]).await
    }

    pub async fn model_health(&self) -> Result<HealthList> {
        self.get("/api/v1/models/health", &[]).await
    }

    pub async fn list_routes(&self) -> Result<RouteList> {
        self.get("/api/v1/routes", &[]).await
    }

    /// Create or replace the route of this name.
    pub async fn set_route(&self, req: &SetRouteRequest) -> Result<RouteInfo> {
        self.json(Method::POST, "/api/v1/routes", &[], Some(req))
            .await
    }

    pub async fn get_route(&self, id: &str) -> Result<RouteInfo> {
        self.get(&format!("/api/v1/routes/{}", path_segment(id)), &[])
            .await
    }

    pub async fn delete_route(&self, id: &str) -> Result<()> {
        let path = format!("/api/v1/routes/{}", path_segment(id));
        self.empty::<()>(Method::DELETE, &path, None).await
    }

    pub async fn get_usage(&self, q: &UsageQuery) -> Result<UsageReport> {
        let mut query = Vec::new();
        if let Some(from) = &q.from {
            query.push(("from", from.clone()));
        }
        if let Some(to) = &q.to {
            query.push(("to", to.clone()));
        }
        self.get("/api/v1/usage", &query).await
    }

    // --- the OpenAI-compatible endpoint ---

    /// `GET /v1/models`: routes, then `provider/model`s, as an OpenAI model list.
    pub async fn openai_models(&self) -> Result<Value> {
        self.get("/v1/models", &[]).await
    }

    /// `POST /v1/chat/completions` for a whole answer (`stream` is set to false).
    pub async fn chat_completions(&self, body: &Value) -> Result<Value> {
        let body = with_stream(body, false)?;
        self.json(Method::POST, "/v1/chat/completions", &[], Some(&body))
            .await
    }

    /// `POST /v1/chat/completions` streamed (`stream` is set to true): the answer's
    /// chunks as they arrive, and where the gateway routed it.
    pub async fn chat_completions_stream(&self, body: &Value) -> Result<ChatStream> {
        let body = with_stream(body, true)?;
        let resp = self
            .send(Method::POST, "/v1/chat/completions", &[], Some(&body))
            .await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            return Err(ClientError::Decode(format!(
                "expected an event stream, got '{content_type}'"
            )));
        }
        let routing = Routing::from_headers(resp.headers());
        Ok(ChatStream::new(self.base.clone(), routing, resp))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    #[test]
    fn routing_is_read_from_the_headers_of_a_streamed_answer() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mosaic-provider", HeaderValue::from_static("local"));
        headers.insert("x-mosaic-model", HeaderValue::from_static("m1"));
        headers.insert(
            "x-mosaic-fallbacks",
            HeaderValue::from_static(r#"[{"provider":"down","model":"m0","error":"refused"}]"#),
        );
        assert_eq!(
            Routing::from_headers(&headers),
            Routing {
                provider: Some("local".into()),
                model: Some("m1".into()),
                fallbacks: vec![Fallback {
                    provider: "down".into(),
                    model: "m0".into(),
                    error: "refused".into(),
                }],
            }
        );
        assert_eq!(Routing::from_headers(&HeaderMap::new()), Routing::default());
    }

    #[test]
    fn routing_is_read_from_the_mosaic_field_of_a_whole_answer() {
        let answer =
            json!({"choices": [], "mosaic": {"provider": "local", "model": "m1", "fallbacks": []}});
        let routing = routing_of(&answer);
        assert_eq!(routing.provider.as_deref(), Some("local"));
        assert_eq!(routing_of(&json!({})), Routing::default());
    }

    #[test]
    fn the_stream_flag_is_the_methods_choice() {
        let body = json!({"model": "m", "messages": [], "stream": true});
        assert_eq!(with_stream(&body, false).unwrap()["stream"], false);
        assert!(with_stream(&json!([]), true).is_err());
    }
}
