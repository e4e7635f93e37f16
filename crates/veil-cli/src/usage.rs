//! Bad command lines: one line on stderr and exit code 2, as every `veil` command does.

use std::process::ExitCode;

/// What to do with a command line clap refused: help and version requests print as
/// clap has them and succeed; a command given without its subcommand prints its help and
/// exits 2; errors print their first line as `<prefix>: <message>` (without clap's usage
/// block and hint) and exit 2.
pub fn refused(prefix: &str, error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = error.print();
        return ExitCode::from(2);
    }
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!("{prefix}: {}", first.trim_start_matches("error: "));
    ExitCode::from(2)
}
