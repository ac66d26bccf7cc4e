//! The brain's embedder: computes embeddings of tasks, notes and memories in the
//! background through an OpenAI-compatible `/v1/embeddings` endpoint, and embeds
//! search queries for hybrid search.
//!
//! It works from the store's list of items without an embedding, so nothing is lost
//! across restarts or failures: an item is pending until its vector lands, and pending
//! again whenever its text changes. Woken by every text change (and every minute
//! regardless); while the endpoint is down it backs off up to a minute, and search
//! keeps working by words alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mosaic_llm::embeddings::OpenAiEmbeddings;
use mosaic_llm::LlmError;
use mosaic_store::{PendingText, QueryVector, Store};
use tokio_util::sync::CancellationToken;

use crate::egress::{self, Egress};

/// Items embedded per request.
const BATCH: u32 = 32;
/// How long a search waits for its query's embedding before going by words alone.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a background batch may take.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait between looks for pending items (changes wake it sooner).
const IDLE_POLL: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where embeddings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// Base URL of the OpenAI-compatible API, e.g. `http://127.0.0.1:8080/v1`.
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
}

/// Counters of the background work, for `/metrics`.
#[derive(Debug, Default)]
pub struct EmbedderStats {
    pub embedded: AtomicU64,
    pub refused: AtomicU64,
    pub failed_requests: AtomicU64,
}

pub struct Embedder {
    client: OpenAiEmbeddings,
    model: String,
    store: Store,
    pub stats: EmbedderStats,
}

impl Embedder {
    /// An embedder of the admin's configured endpoint (any address; no redirects).
    pub fn new(store: Store, config: &EmbedderConfig) -> Result<Embedder, reqwest::Error> {
        let http = egress::client(Egress::trusted("the embedder"))?;
        Ok(Embedder {
            client: OpenAiEmbeddings::new(http, &config.url, config.api_key.clone()),
            model: config.model.clone(),
            store,
            stats: EmbedderStats::default(),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The embedding of a search query, or why there is none.
    pub async fn embed_query(&self, q: &str) -> Result<QueryVector, String> {
        let inputs = [q.to_string()];
        match tokio::time::timeout(QUERY_TIMEOUT, self.client.embed(&self.model, &inputs)).await {
            Err(_) => Err(format!(
                "the embedding model did not answer within {QUERY_TIMEOUT:?}"
            )),
            Ok(Err(e)) => Err(format!("the embedding model failed: {e}")),
            Ok(Ok(mut embedded)) => match embedded.vectors.pop() {
                Some(values) => Ok(QueryVector {
                    model: self.model.clone(),
                    values,
                }),
                None => Err("the embedding model returned no vector".into()),
            },
        }
    }

    /// Run until `stop`: embed whatever is pending, then wait for changes.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let changes = self.store.text_changes();
        // Vectors of another model cannot be compared with this one's: embed again.
        match self.store.retire_embeddings(&self.model).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                model = %self.model,
                items = n,
                "the embedding model changed: embedding every item again"
            ),
            Err(e) => tracing::warn!("cannot retire old embeddings: {e}"),
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            let progress = tokio::select! {
                _ = stop.cancelled() => return,
                p = self.step() => p,
            };
            let wait = match progress {
                Ok(0) => {
                    backoff = Duration::from_secs(1);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = changes.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                    continue;
                }
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    continue;
                }
                Err(e) => {
                    self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        model = %self.model,
                        retry_in = ?backoff,
                        "embedding failed: {e}"
                    );
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Embed one batch of pending items; returns how many were handled (0: none left).
    pub async fn step(&self) -> Result<usize, String> {
        let pending = self
            .store
            .pending_embeddings(BATCH)
            .await
            .map_err(|e| format!("cannot read pending items: {e}"))?;
        if pending.is_empty() {
            return Ok(0);
        }
        let inputs: Vec<String> = pending.iter().map(PendingText::input).collect();
        match self.embed(&inputs).await {
            Ok(vectors) => {
                for (item, v) in pending.iter().zip(&vectors) {
                    self.save(item, Some(v)).await?;
                }
            }
            // The server refused the batch as a request (not as a failure of its own):
            // one item may be at fault. Try each alone and mark the ones it refuses.
            Err(LlmError::Http { status, .. }) if refuses_the_text(status) => {
                for (item, input) in pending.iter().zip(&inputs) {
                    match self.embed(std::slice::from_ref(input)).await {
                        Ok(mut v) => self.save(item, v.pop().as_ref()).await?,
                        Err(LlmError::Http {
                            status, message, ..
                        }) if refuses_the_text(status) => {
                            tracing::warn!(
                                kind = item.kind.as_str(),
                                id = %item.id,
                                "the embedding model refused this text ({status}): {message}"
                            );
                            self.stats.refused.fetch_add(1, Ordering::Relaxed);
                            self.save(item, None).await?;
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        Ok(pending.len())
    }

    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        match tokio::time::timeout(BATCH_TIMEOUT, self.client.embed(&self.model, inputs)).await {
            Err(_) => Err(LlmError::Timeout(BATCH_TIMEOUT)),
            Ok(result) => Ok(result?.vectors),
        }
    }

    async fn save(&self, item: &PendingText, vector: Option<&Vec<f32>>) -> Result<(), String> {
        let landed = self
            .store
            .save_embedding(item, &self.model, vector.map(Vec::as_slice))
            .await
            .map_err(|e| format!("cannot store an embedding: {e}"))?;
        if landed && vector.is_some() {
            self.stats.embedded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Whether an HTTP error refuses the request's texts rather than the gateway: a client
/// error that is not a refused key (401, 403) nor a rate limit (429).
fn refuses_the_text(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 429)
}
