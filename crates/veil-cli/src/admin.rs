//! `veil admin`: tenants, API keys and privacy policies through the gateway's Admin API.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed), 2 bad usage. Output is for people unless `--json` is given.

mod key;
mod output;
mod policy;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;

/// `veil admin ...`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Gateway gRPC URL.
    #[arg(
        long,
        global = true,
        env = "VEIL_GATEWAY",
        default_value = "http://127.0.0.1:50051"
    )]
    gateway: String,
    /// API key or JWT to call with.
    #[arg(long, global = true, env = "VEIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate for an https:// gateway.
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
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

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments or input files: exit 2.
    Usage(String),
    /// The gateway answered with an error or was unreachable: exit 1.
    Remote(String),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let code = format!("{:?}", status.code()).to_lowercase();
        Failure::Remote(format!("{code}: {}", status.message()))
    }
}

/// A connected client and how to authenticate and print.
pub(crate) struct Context {
    client: AdminServiceClient<Channel>,
    token: String,
    json: bool,
}

impl Context {
    pub(crate) fn client(&mut self) -> &mut AdminServiceClient<Channel> {
        &mut self.client
    }

    /// `message` with the caller's bearer token.
    pub(crate) fn request<T>(&self, message: T) -> Result<Request<T>, Failure> {
        let mut request = Request::new(message);
        veil_core::auth::attach_bearer(&mut request, &self.token)
            .map_err(|_| Failure::Usage("the token is not a valid header value".into()))?;
        Ok(request)
    }

    /// Prints `json` with `--json`, otherwise `text`.
    pub(crate) fn print(&self, json: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        } else {
            println!("{}", text());
        }
    }
}

fn connect(args: &AdminArgs) -> Result<Context, Failure> {
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Usage("a token is required: --token or VEIL_TOKEN".into()))?;
    let mut endpoint = Endpoint::from_shared(args.gateway.clone())
        .map_err(|_| Failure::Usage(format!("--gateway {} is not a URL", args.gateway)))?;
    if args.gateway.starts_with("https://") {
        let path = args
            .ca_file
            .as_ref()
            .ok_or_else(|| Failure::Usage("an https gateway needs --ca-file".into()))?;
        let pem = std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| Failure::Usage(format!("bad tls settings: {e}")))?;
    }
    // Lazy, so usage errors in the subcommand are reported before any network trouble;
    // an unreachable gateway surfaces as UNAVAILABLE on the first call.
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    Ok(Context {
        client: AdminServiceClient::new(channel),
        token,
        json: args.json,
    })
}

/// Runs `veil admin`.
pub fn run(args: AdminArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil admin: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut context = connect(&args)?;
        match args.command {
            AdminCommand::Tenant(command) => tenant::run(&mut context, command).await,
            AdminCommand::Key(command) => key::run(&mut context, command).await,
            AdminCommand::Policy(command) => policy::run(&mut context, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("veil admin: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(message)) => {
            eprintln!("veil admin: {message}");
            ExitCode::FAILURE
        }
    }
}
