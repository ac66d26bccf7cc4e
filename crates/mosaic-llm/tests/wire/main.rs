//! Each wire API against a local server that speaks it, scripted per test: what the
//! provider streams, and what Mosaic sent (asserted on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod embeddings;
mod llamacpp;
mod openai_chat;
mod openai_responses;
mod reasoning;
mod routing;
// Some helpers serve only some wire APIs' tests.
#[allow(dead_code)]
mod support;
