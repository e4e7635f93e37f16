//! SQL of the vault schema, one module per area; functions take an executor or the
//! handler's transaction.

pub mod keys;
pub mod records;
pub mod rotation;
pub mod tokens;
