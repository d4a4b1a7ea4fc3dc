//! The running Longshore node, as a library: what `longshore serve` and
//! `longshore worker` are, apart from their command line.
//!
//! # Brief overview
//!
//! - [`settings`]: every setting of a node and its default, layered from a
//!   YAML file, `LONGSHORE_*` variables and flags, checked at start-up.
//! - [`database`]: which database the settings name, and connecting to it.
//! - [`serve`] and [`worker`]: the two kinds of node, from start to
//!   drained stop; [`node`] is what they share (a worker with the built-in
//!   actors, HTTP servers bound before it starts, the drain on a stop
//!   signal, see [`signals`]).
//! - [`api`]: the HTTP API under `/api/v1`, with its OpenAPI document,
//!   split as axum splits itself: state, extractors, errors, models, and a
//!   module per resource.
//! - [`probes`]: `/health/live`, `/health/ready` and `/metrics`, without a
//!   token.
//! - [`listener`]: accepting connections, with deadlines on a request's
//!   headers and body.
//!
//! - [`dashboard`]: the web pages at `/`, signed in with an API token.
//!
//! - [`gateway`]: the agents' gRPC gateway (`serve --grpc-listen`), and
//!   [`agent`]: `longshore agent`, its client with the built-in actors.

#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod dashboard;
pub mod database;
pub mod gateway;
pub mod listener;
pub mod node;
pub mod probes;
pub mod serve;
pub mod settings;
pub mod signals;
pub mod worker;
