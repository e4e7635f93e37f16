//! The `veil` command line.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod redact;

#[derive(Parser)]
#[command(name = "veil", version, about = "Veil: privacy and data protection for chatbot conversations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect and minimize personal data in text or JSON lines.
    Redact(redact::RedactArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Redact(args) => redact::run(args),
    }
}
