//! SQL of the consent schema, in small functions taking an executor or the handler's
//! transaction.

pub mod erase;
pub mod notices;
pub mod purge;
pub mod purposes;
pub mod records;
pub mod replicas;
pub mod signals;
