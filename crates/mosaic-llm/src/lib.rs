//! Model providers behind one interface. Each wire API (OpenAI Chat Completions, OpenAI
//! Responses, Anthropic Messages) is decoded from its own server-sent events into one
//! [`StreamEvent`] stream, so everything above this crate — the routing matrix, the
//! agent runtime, the OpenAI-compatible endpoint — handles a single shape.
//!
//! A provider has one required method, [`Provider::stream`]; a non-streaming call is
//! the collected stream ([`collect`]). Dropping a stream aborts the call; whatever
//! arrived before stays with the caller.

pub mod anthropic;
pub mod embeddings;
pub mod error;
pub mod openai_chat;
pub mod openai_responses;
pub mod redact;
pub mod routing;
pub mod sse;
pub mod stream;
pub mod trace;
pub mod types;

pub use error::LlmError;
pub use stream::{collect, collect_partial, BoxFuture, EventStream, Partial, Provider};
pub use types::*;
