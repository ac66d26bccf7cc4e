//! The agent runtime: runs of agents inside sessions, the tools they call, compaction of
//! long contexts, and the bus that carries each session's numbered live events to every
//! subscriber.

pub mod bus;
pub mod conformance;
pub mod context;
pub mod control;
pub mod egress;
pub mod embedder;
pub mod runtime;
pub mod search;
pub mod tools;

pub use runtime::{
    Fallback, ModelError, ModelStream, Models, Runtime, RuntimeBuilder, RuntimeConfig,
};
