//! In-chat privacy commands: "delete my data", "what do you know about me", "stop using
//! my data for marketing", "don't train your AI on my chats", in en, de, fr, es and nl.
//!
//! The detector is pure and runs on every user message: one fold of the text, one
//! scan of a compiled regex set over all phrase rules, and only when that scan hits,
//! a look at the hit's clause for negations and how-questions. See
//! docs/privacy-commands.md for the phrase tables, decisions and limits.

mod detector;
mod kind;
mod lang_any;
mod lang_de;
mod lang_en;
mod lang_es;
mod lang_fr;
mod lang_nl;
mod normalize;
mod purposes;
mod replies;
mod rules;

pub use detector::{CommandDetector, CommandsError, DetectedCommand};
pub use kind::CommandKind;
pub use replies::{suggested_reply, verification_reply};

#[cfg(test)]
mod tests;
