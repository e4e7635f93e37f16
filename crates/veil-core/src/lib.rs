//! Shared foundation of the Veil services.
//!
//! Every service links this crate for configuration, telemetry, error mapping, the gRPC
//! server, Postgres, NATS events, internal authentication, crypto and the Merkle log.

pub mod app;
pub mod auth;
pub mod batch;
pub mod broker;
pub mod client;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod db;
pub mod emit;
pub mod error;
pub mod events;
pub mod merkle;
pub mod metrics;
pub mod rpc_layer;
pub mod server;
pub mod shutdown;
pub mod subjects;
pub mod telemetry;
pub mod types;
