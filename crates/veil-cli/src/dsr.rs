//! `veil dsr`: data-subject requests through the gateway (which proxies the retention
//! service), authenticated with an API key.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed on one line), 2 bad usage. Output is for people unless `--json` is given.

mod commands;
mod export;
mod output;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::transport::Channel;
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;

pub(crate) use crate::gateway_cli::Failure;
use crate::gateway_cli::{self, GatewayArgs};

/// `veil dsr ...`.
#[derive(Debug, Args)]
pub struct DsrArgs {
    #[command(flatten)]
    connection: GatewayArgs,
    #[command(subcommand)]
    command: DsrCommand,
}

#[derive(Debug, Subcommand)]
enum DsrCommand {
    /// Open a data-subject request; prints its id, due date and any verification code.
    Submit(commands::SubmitArgs),
    /// Show one request: state, due date, extensions, per-service progress.
    Status(commands::StatusArgs),
    /// List requests, newest first, with filters.
    List(commands::ListArgs),
    /// Extend a request's deadline with a recorded reason.
    Extend(commands::ExtendArgs),
    /// Print the signed deletion certificate of a completed erasure.
    Certificate(commands::CertificateArgs),
    /// Download the export of a completed access or portability request to a file.
    Export(export::ExportArgs),
}

/// The gateway client of these commands, with the caller's token and output mode.
pub(crate) type Context = gateway_cli::Context<RetentionServiceClient<Channel>>;

/// Runs `veil dsr`.
pub fn run(args: DsrArgs) -> ExitCode {
    gateway_cli::run("dsr", async move {
        let mut context = gateway_cli::connect(&args.connection, RetentionServiceClient::new)?;
        match args.command {
            DsrCommand::Submit(a) => commands::submit(&mut context, a).await,
            DsrCommand::Status(a) => commands::status(&mut context, a).await,
            DsrCommand::List(a) => commands::list(&mut context, a).await,
            DsrCommand::Extend(a) => commands::extend(&mut context, a).await,
            DsrCommand::Certificate(a) => commands::certificate(&mut context, a).await,
            DsrCommand::Export(a) => export::run(&mut context, a).await,
        }
    })
}
