//! Retention policies and legal holds: validation rules, storage and the caller checks
//! their RPCs share. The RPCs themselves are in `grpc/policies.rs`; sweeps in
//! [`crate::sweep`]; the one hold check every destructive path uses in [`crate::holds`].

pub mod caller;
pub mod hold_store;
pub mod rules;
pub mod store;
