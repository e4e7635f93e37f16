//! Access and portability exports: collection from every service ([`collect`]), the
//! JSON document and its HTML rendering ([`render`], schema in docs/exports.md), the
//! chunked download ([`download`]), the jobs that decide when an export is ready
//! ([`jobs`]) and their expiry for the sweeper ([`purge()`]).
//!
//! Export contents are personal data: they are never stored by retention. They are
//! collected from the owning services again at every download (so an erasure in between
//! also erases them).

pub mod collect;
pub mod download;
pub mod jobs;
mod purge;
pub mod render;

pub use download::download_export;
pub use purge::purge;
