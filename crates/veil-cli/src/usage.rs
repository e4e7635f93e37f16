//! Bad command lines: one line on stderr and exit code 2, as every `veil` command does.

use std::process::ExitCode;

/// What to do with a command line clap refused: help and version requests print as
/// clap has them and succeed; errors print their first line as `<prefix>: <message>`
/// (without clap's usage block and hint) and exit 2.
pub fn refused(prefix: &str, error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!("{prefix}: {}", first.trim_start_matches("error: "));
    ExitCode::from(2)
}
