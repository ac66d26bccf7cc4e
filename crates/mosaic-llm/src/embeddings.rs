//! Embeddings through the same provider layer: the OpenAI-compatible
//! `POST {base}/embeddings`, which OpenAI, Ollama, LM Studio, llama.cpp and most
//! local servers speak. The brain uses it to index memories and notes.

use serde_json::{json, Value};

use crate::stream::check_status;
use crate::LlmError;

/// An embeddings endpoint.
#[derive(Clone)]
pub struct OpenAiEmbeddings {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
}

/// Vectors for a batch of inputs, in input order, and the tokens it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u64,
}

impl OpenAiEmbeddings {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<String>) -> Self {
        OpenAiEmbeddings {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    /// Embed `inputs` with `model`. Every vector has the same length, or it is an error;
    /// an error's text is redacted of the key (see [`crate::redact`]).
    pub async fn embed(&self, model: &str, inputs: &[String]) -> Result<Embedded, LlmError> {
        let key = self.api_key.as_deref().into_iter().collect::<Vec<_>>();
        self.embed_unredacted(model, inputs)
            .await
            .map_err(|e| e.redacted(&key))
    }

    async fn embed_unredacted(&self, model: &str, inputs: &[String]) -> Result<Embedded, LlmError> {
        if inputs.is_empty() {
            return Ok(Embedded {
                vectors: Vec::new(),
                input_tokens: 0,
            });
        }
        let mut req = crate::trace::traced(self.http.post(format!("{}/embeddings", self.base_url)))
            .json(&json!({"model": model, "input": inputs, "encoding_format": "float"}));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = check_status(req.send().await.map_err(LlmError::from_reqwest)?).await?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| LlmError::Protocol(format!("embeddings answer is not JSON: {e}")))?;
        parse(&body, inputs.len())
    }
}

fn parse(body: &Value, expected: usize) -> Result<Embedded, LlmError> {
    let data = body["data"]
        .as_array()
        .ok_or_else(|| LlmError::Protocol("embeddings answer without `data`".into()))?;
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in data.iter().enumerate() {
        // `index` says which input a vector belongs to; servers that omit it answer in order.
        let index = item["index"]
            .as_u64()
            .map(|i| i as usize)
            .unwrap_or(position);
        let vector = item["embedding"]
            .as_array()
            .ok_or_else(|| LlmError::Protocol("an embedding is not a list of numbers".into()))?
            .iter()
            .map(|x| {
                x.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| LlmError::Protocol("an embedding holds a non-number".into()))
            })
            .collect::<Result<Vec<f32>, _>>()?;
        let slot = slots
            .get_mut(index)
            .ok_or_else(|| LlmError::Protocol(format!("embedding index {index} out of range")))?;
        *slot = Some(vector);
    }
    let vectors = slots
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| LlmError::Protocol(format!("no embedding for input {i}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = vectors.first() {
        if first.is_empty() || vectors.iter().any(|v| v.len() != first.len()) {
            return Err(LlmError::Protocol(
                "embeddings differ in length or are empty".into(),
            ));
        }
    }
    Ok(Embedded {
        vectors,
        input_tokens: body["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
    })
}
