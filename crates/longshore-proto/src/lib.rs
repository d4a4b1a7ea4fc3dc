//! The agent protocol's messages and service stubs, generated at build time
//! from `proto/longshore/agent/v1/agent.proto` (which documents them).
//!
//! The server side (the gateway) lives in `longshore-server`; the client
//! side (the Rust agent SDK) in `longshore-agent`.

/// Version 1 of the protocol.
pub mod v1 {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    tonic::include_proto!("longshore.agent.v1");

    /// The protocol version this build speaks, sent in `Hello` and `Welcome`.
    pub const PROTOCOL_VERSION: u32 = 1;
}
