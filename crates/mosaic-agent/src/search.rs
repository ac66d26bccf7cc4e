//! Searching the brain: the one place that embeds the query and then searches by words
//! and meaning. The HTTP search and the agent's search tools all come here, so a change
//! of ranking or of the embedder's handling touches one function.
//!
//! When the embedding model cannot embed the query, the search still answers, by words
//! alone, and says why (`SearchResults::notice`, and a warning in the log): a failing
//! model must not pass for a search that found nothing by meaning.

use mosaic_api::{BrainKind, SearchMode, SearchResults};
use mosaic_store::{Principal, Store, StoreError};

use crate::embedder::Embedder;

/// Tasks, notes and memories `p` can see that match `q`, best first. By words, and by
/// meaning too when an embedder is given, `mode` is not `lexical` and the query has
/// words; `mode` of the result says which it was.
pub async fn search(
    store: &Store,
    embedder: Option<&Embedder>,
    p: &Principal,
    q: &str,
    kinds: &[BrainKind],
    limit: u32,
    mode: Option<SearchMode>,
) -> Result<SearchResults, StoreError> {
    let (vector, notice) = match (embedder, mode) {
        (Some(embedder), None | Some(SearchMode::Hybrid)) if !q.trim().is_empty() => {
            match embedder.embed_query(q).await {
                Ok(v) => (Some(v), None),
                Err(why) => {
                    tracing::warn!(model = %embedder.model(), "searching by words only: {why}");
                    (None, Some(format!("searched by words only: {why}")))
                }
            }
        }
        _ => (None, None),
    };
    let items = store
        .search_hybrid(p, q, kinds, limit, vector.as_ref())
        .await?;
    Ok(SearchResults {
        items,
        mode: if vector.is_some() {
            SearchMode::Hybrid
        } else {
            SearchMode::Lexical
        },
        notice,
    })
}
