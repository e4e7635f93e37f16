//! Shared foundation of the Veil services.
//!
//! Every service links this crate for configuration, telemetry, error mapping, the gRPC
//! server, Postgres, NATS events, internal authentication, crypto and the Merkle log.

pub mod auth;
pub mod crypto;
pub mod events;
pub mod merkle;
pub mod types;
