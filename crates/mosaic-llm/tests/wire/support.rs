//! The scripted provider server lives in the shared test-support crate.

pub use mosaic_test_support::scripted::{Answer, Scripted};
