//! The agent runtime against a real SQLite store and a scripted model: operations that
//! must hold a session's lane, tools added for one run, the run control and bus
//! conformance suites run against the in-process implementations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod control;
mod lanes;
mod references;
mod support;
mod tools;
