//! Test harness: a fresh database and NATS namespace per test, settings derived from
//! them, and services spawned in-process on port 0.

pub mod binary;
pub mod db;
pub mod env;
pub mod nats;
pub mod plans;
pub mod probe;
pub mod spawn;

pub use db::TestDb;
pub use env::TestEnv;
pub use nats::{PrivateNats, TestNats};
pub use spawn::{Running, eventually, spawn};
