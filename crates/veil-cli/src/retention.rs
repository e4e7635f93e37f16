//! `veil retention`: retention policies, legal holds and sweeps through the gateway
//! (which proxies the retention service), authenticated with a privacy officer's API key.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed on one line), 2 bad usage. Output is for people unless `--json` is given.

mod commands;
mod names;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::transport::Channel;
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;

use veil_cli::gateway_cli::Failure;
use veil_cli::gateway_cli::{self, GatewayArgs};

/// `veil retention ...`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    connection: GatewayArgs,
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Retention policies: set, list, delete.
    #[command(subcommand)]
    Policy(commands::PolicyCommand),
    /// Legal holds: place, release, list.
    #[command(subcommand)]
    Hold(commands::HoldCommand),
    /// Purge expired data now through every owning service (or only count, --dry-run).
    Sweep(commands::SweepArgs),
}

/// The gateway client of these commands, with the caller's token and output mode.
type Context = gateway_cli::Context<RetentionServiceClient<Channel>>;

/// Runs `veil retention`.
pub fn run(args: RetentionArgs) -> ExitCode {
    gateway_cli::run("retention", async move {
        let mut context = gateway_cli::connect(&args.connection, RetentionServiceClient::new)?;
        match args.command {
            RetentionCommand::Policy(command) => commands::policy(&mut context, command).await,
            RetentionCommand::Hold(command) => commands::hold(&mut context, command).await,
            RetentionCommand::Sweep(a) => commands::sweep(&mut context, a).await,
        }
    })
}
