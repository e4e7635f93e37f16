//! The data-subject request workflow: intake, identity verification, due dates,
//! duplicates, extensions, cancellation, the overdue check, the execution of the
//! requests that need no saga (restriction, objection, opt-outs, rectification), and
//! the minimization of old request records for the sweeper.
//!
//! Erasure, access and portability run through [`crate::saga`] once verified and not
//! blocked by a legal hold.

pub mod convert;
pub mod due;
pub mod execute;
pub mod extensions;
pub mod intake;
pub mod machine;
pub mod manage;
pub mod notifier;
pub mod purge;
pub mod store;
pub mod tasks;
pub mod verification;

pub use notifier::{NoopNotifier, Notifier};
pub use purge::purge;
