//! The `veil` command line.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: veil_core::Allocator = veil_core::Allocator;

mod admin;
mod audit;
mod bench;
mod redact;
mod retention;

#[derive(Parser)]
#[command(
    name = "veil",
    version,
    about = "Veil: privacy and data protection for chatbot conversations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all five services in one process on their usual ports.
    Up(veil_cli::up::UpArgs),
    /// Detect and minimize personal data in text or JSON lines.
    Redact(redact::RedactArgs),
    /// Administer tenants, API keys and privacy policies through the gateway.
    Admin(admin::AdminArgs),
    /// Verify or export the tamper-evident audit log.
    Audit(audit::AuditArgs),
    /// Data-subject requests: submit, status, list, extend, certificate, export.
    Dsr(veil_cli::dsr::DsrArgs),
    /// Retention policies, legal holds and sweeps.
    Retention(retention::RetentionArgs),
    /// Measure gateway throughput and latency on a throwaway in-process stack.
    Bench(bench::RawArgs),
    /// Run a scripted conversation through a running stack and verify its audit trail.
    Demo(veil_cli::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return veil_cli::usage::refused("veil", &error),
    };
    match cli.command {
        Command::Up(args) => up(args),
        Command::Redact(args) => redact::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Dsr(args) => veil_cli::dsr::run(args),
        Command::Retention(args) => retention::run(args),
        Command::Bench(args) => bench::main(args),
        Command::Demo(args) => veil_cli::demo::main(args),
    }
}

fn up(args: veil_cli::up::UpArgs) -> ExitCode {
    let settings = match veil_cli::up::load_settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("veil up: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil up: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let telemetry = match veil_core::telemetry::init("veil", &settings.gateway.telemetry) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("veil up: {error}");
                return ExitCode::from(2);
            }
        };
        let shutdown = veil_core::shutdown::on_signals();
        let result = veil_cli::up::run(args, settings, shutdown).await;
        telemetry.shutdown();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("veil up: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}
