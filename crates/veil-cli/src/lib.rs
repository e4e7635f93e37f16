//! The `veil` command line as a library, so tests run exactly what the binary runs.

pub mod demo;
mod demo_erasure;
pub mod dsr;
pub mod gateway_cli;
pub mod stack;
pub mod up;
pub mod usage;
