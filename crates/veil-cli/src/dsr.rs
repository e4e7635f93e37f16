//! `veil dsr`: data-subject requests through the gateway (which proxies the retention
//! service), authenticated with an API key.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed on one line), 2 bad usage. Output is for people unless `--json` is given.

mod commands;
mod export;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;

/// `veil dsr ...`.
#[derive(Debug, Args)]
pub struct DsrArgs {
    /// Gateway gRPC URL.
    #[arg(
        long,
        global = true,
        env = "VEIL_GATEWAY",
        default_value = "http://127.0.0.1:50051"
    )]
    gateway: String,
    /// API key or JWT to call with (privacy_officer for most commands).
    #[arg(long, global = true, env = "VEIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate for an https:// gateway.
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
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

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments or local files: exit 2.
    Usage(String),
    /// The gateway answered with an error, was unreachable or sent a bad file: exit 1.
    Remote(String),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let code = snake_case(&format!("{:?}", status.code()));
        let message = status.message().replace('\n', " ");
        Failure::Remote(format!("{code}: {message}"))
    }
}

/// `FailedPrecondition` -> `failed_precondition`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A connected client and how to authenticate and print.
pub(crate) struct Context {
    client: RetentionServiceClient<Channel>,
    token: String,
    json: bool,
}

impl Context {
    pub(crate) fn client(&mut self) -> &mut RetentionServiceClient<Channel> {
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

fn connect(args: &DsrArgs) -> Result<Context, Failure> {
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

/// Runs `veil dsr`.
pub fn run(args: DsrArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil dsr: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut context = connect(&args)?;
        match args.command {
            DsrCommand::Submit(a) => commands::submit(&mut context, a).await,
            DsrCommand::Status(a) => commands::status(&mut context, a).await,
            DsrCommand::List(a) => commands::list(&mut context, a).await,
            DsrCommand::Extend(a) => commands::extend(&mut context, a).await,
            DsrCommand::Certificate(a) => commands::certificate(&mut context, a).await,
            DsrCommand::Export(a) => export::run(&mut context, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("veil dsr: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(message)) => {
            eprintln!("veil dsr: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_read_as_snake_case_on_one_line() {
        let failure = Failure::from(tonic::Status::failed_precondition("past\nthe maximum"));
        match failure {
            Failure::Remote(message) => {
                assert_eq!(message, "failed_precondition: past the maximum");
            }
            Failure::Usage(_) => panic!("a refusal is remote"),
        }
    }
}
