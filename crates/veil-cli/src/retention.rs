//! `veil retention`: retention policies, legal holds and sweeps through the gateway
//! (which proxies the retention service), authenticated with a privacy officer's API key.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed on one line), 2 bad usage. Output is for people unless `--json` is given.

mod commands;
mod names;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;

/// `veil retention ...`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Gateway gRPC URL.
    #[arg(
        long,
        global = true,
        env = "VEIL_GATEWAY",
        default_value = "http://127.0.0.1:50051"
    )]
    gateway: String,
    /// API key or JWT to call with (privacy_officer; auditors may list).
    #[arg(long, global = true, env = "VEIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate for an https:// gateway.
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
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

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
enum Failure {
    /// Bad arguments: exit 2.
    Usage(String),
    /// The gateway answered with an error or was unreachable: exit 1.
    Remote(String),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let code = format!("{:?}", status.code()).to_lowercase();
        let message = status.message().replace('\n', " ");
        Failure::Remote(format!("{code}: {message}"))
    }
}

/// A connected client and how to authenticate and print.
struct Context {
    client: RetentionServiceClient<Channel>,
    token: String,
    json: bool,
}

impl Context {
    /// `message` with the caller's bearer token.
    fn request<T>(&self, message: T) -> Result<Request<T>, Failure> {
        let mut request = Request::new(message);
        veil_core::auth::attach_bearer(&mut request, &self.token)
            .map_err(|_| Failure::Usage("the token is not a valid header value".into()))?;
        Ok(request)
    }

    /// Prints `json` with `--json`, otherwise `text`.
    fn print(&self, json: serde_json::Value, text: impl FnOnce() -> String) {
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

fn connect(args: &RetentionArgs) -> Result<Context, Failure> {
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
    // Lazy: usage errors are reported before any network trouble.
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    Ok(Context {
        client: RetentionServiceClient::new(channel),
        token,
        json: args.json,
    })
}

/// Runs `veil retention`.
pub fn run(args: RetentionArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil retention: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut context = connect(&args)?;
        match args.command {
            RetentionCommand::Policy(command) => commands::policy(&mut context, command).await,
            RetentionCommand::Hold(command) => commands::hold(&mut context, command).await,
            RetentionCommand::Sweep(a) => commands::sweep(&mut context, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("veil retention: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(message)) => {
            eprintln!("veil retention: {message}");
            ExitCode::FAILURE
        }
    }
}
