//! Entries whose content is not stored: a run's context is built through the runtime's
//! entry source, which fetches them for each model call; what it fetches is never
//! stored, and one it cannot fetch is a placeholder, not a failed run.

use std::sync::Arc;

use mosaic_agent::context::EntrySource;
use mosaic_agent::tools::Registry;
use mosaic_agent::RuntimeConfig;
use mosaic_api::{Entry, EntryBody};
use mosaic_llm::BoxFuture;
use mosaic_store::Principal;
use pretty_assertions::assert_eq;

use crate::support::{Events, ScriptedModel, World};

/// A stand-in for a peer: user messages `ref:<id>` stand for a message held there.
struct Peer;

impl EntrySource for Peer {
    fn resolve<'a>(
        &'a self,
        _p: &'a Principal,
        entry: &'a Entry,
    ) -> Option<BoxFuture<'a, Result<EntryBody, String>>> {
        let EntryBody::User { text } = &entry.body else {
            return None;
        };
        let id = text.strip_prefix("ref:")?;
        Some(Box::pin(async move {
            match id {
                "hello" => Ok(EntryBody::User {
                    text: "hello from the peer".into(),
                }),
                _ => Err(format!("the peer holds no message {id}")),
            }
        }))
    }
}

#[tokio::test]
async fn a_run_sees_what_a_reference_stands_for_and_a_placeholder_for_what_is_gone() {
    let w = World::open().await;
    let (model, _arrived) = ScriptedModel::new(Vec::new());
    let rt = mosaic_agent::Runtime::builder(
        w.store.clone(),
        model.clone(),
        Registry::default(),
        RuntimeConfig::default(),
    )
    .entries(Arc::new(Peer))
    .build();
    let mut events = Events::follow(&rt, &w).await;
    events.exchange(&rt, &w, "ref:hello").await;
    events.exchange(&rt, &w, "ref:gone").await;

    let requests = model.requests();
    let users = |i: usize| -> Vec<String> {
        requests[i]
            .messages
            .iter()
            .filter(|m| m.role == mosaic_llm::Role::User)
            .map(|m| m.content.clone())
            .collect()
    };
    assert_eq!(users(0), vec!["hello from the peer".to_string()]);
    assert_eq!(
        users(1),
        vec![
            "hello from the peer".to_string(),
            "[this message is not available now: the peer holds no message gone]".to_string(),
        ]
    );
    // The store holds the references, never what they stood for.
    let stored: Vec<EntryBody> = w
        .store
        .session_path(&w.alice, &w.session_id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .filter(|b| matches!(b, EntryBody::User { .. }))
        .collect();
    assert_eq!(
        stored,
        vec![
            EntryBody::User {
                text: "ref:hello".into()
            },
            EntryBody::User {
                text: "ref:gone".into()
            },
        ]
    );
}
