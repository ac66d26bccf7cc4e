//! End-to-end tests of the gateway over real HTTP on loopback, against a real SQLite
//! file: authentication, tenancy, the contract's error shapes and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod bootstrap;
mod brain;
mod brain_tools;
mod contract;
mod credentials;
mod egress;
mod fanout;
mod listeners;
mod memories;
mod memory_tools;
mod models;
mod openapi;
mod provider_faults;
mod revocation;
mod runs;
mod session_export;
mod sessions;
mod slow_clients;
mod strict_bodies;
mod support;
mod tenant_sweep;
mod thinking;
mod upstream_errors;
