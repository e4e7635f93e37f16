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
pub mod fences;
pub mod merkle;
pub mod metrics;
pub mod rpc_layer;
pub mod server;
pub mod shutdown;
pub mod subjects;
pub mod telemetry;
pub mod types;
pub mod validate;

/// The allocator every Veil binary declares in its `main.rs`:
/// `#[global_allocator] static ALLOCATOR: veil_core::Allocator = veil_core::Allocator;`.
/// Under the gateway's load glibc's malloc took about 12 % of the process's CPU
/// (consolidating and unlinking chunks); with mimalloc the whole stack made 25-48 % more
/// messages per second in alternating runs (docs/benchmarks.md, gateway).
pub use mimalloc::MiMalloc as Allocator;
