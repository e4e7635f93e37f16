//! `veil admin`: tenants, API keys and privacy policies through the gateway's Admin API.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed), 2 bad usage. Output is for people unless `--json` is given.

mod key;
mod output;
mod policy;
mod tenant;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::transport::Channel;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;

pub(crate) use veil_cli::gateway_cli::Failure;
use veil_cli::gateway_cli::{self, GatewayArgs};

/// `veil admin ...`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    connection: GatewayArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create, show and list tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Show or set the tenant's privacy policy.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// The gateway client of these commands, with the caller's token and output mode.
pub(crate) type Context = gateway_cli::Context<AdminServiceClient<Channel>>;

/// Runs `veil admin`.
pub fn run(args: AdminArgs) -> ExitCode {
    gateway_cli::run("admin", async move {
        let mut context = gateway_cli::connect(&args.connection, AdminServiceClient::new)?;
        match args.command {
            AdminCommand::Tenant(command) => tenant::run(&mut context, command).await,
            AdminCommand::Key(command) => key::run(&mut context, command).await,
            AdminCommand::Policy(command) => policy::run(&mut context, command).await,
        }
    })
}
