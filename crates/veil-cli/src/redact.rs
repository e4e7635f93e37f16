//! `veil redact` (in progress).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RedactArgs {}

pub fn run(_args: RedactArgs) -> ExitCode {
    ExitCode::from(2)
}
