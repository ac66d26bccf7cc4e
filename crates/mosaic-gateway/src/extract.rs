//! Extractors whose rejections speak the API's error format (axum's own answer in
//! plain text): JSON bodies, paths and queries. JSON bodies are read strictly (see
//! [`strict`]): an object where the type has one, and no field it does not name.

mod strict;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mosaic_api::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

/// A JSON request body or response.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        strict::from_value(&value)
            .map(Json)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status().as_u16();
    let code = ErrorCode::from_status(status);
    let message = match (&r, code) {
        (_, ErrorCode::PayloadTooLarge) => "request body is larger than the gateway accepts".into(),
        (JsonRejection::MissingJsonContentType(_), _) => {
            "expected a JSON body with Content-Type: application/json".into()
        }
        _ => r.body_text(),
    };
    // 422 (well-formed JSON of the wrong shape) is a bad request like any other.
    ApiError::new(code, message)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r: PathRejection| ApiError::bad_request(r.body_text()))
    }
}

/// Query-string parameters, as strictly as bodies: a parameter the type does not name is
/// refused, and so is an empty one (`?limit=`; leave it out instead), so that what the
/// document allows is exactly what is taken.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let invalid = |e: serde_urlencoded::de::Error| {
            ApiError::bad_request(format!("invalid query string: {e}"))
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(invalid)?;
        let fields = strict::fields_of::<T>().unwrap_or_default();
        for (name, value) in &pairs {
            if !fields.contains(&name.as_str()) {
                let expected = fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>();
                return Err(ApiError::bad_request(match expected.is_empty() {
                    true => format!("unknown query parameter `{name}`: this operation takes none"),
                    false => format!(
                        "unknown query parameter `{name}`, expected one of {}",
                        expected.join(", ")
                    ),
                }));
            }
            if value.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{name}` is empty: leave it out instead"
                )));
            }
        }
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(invalid)
    }
}
