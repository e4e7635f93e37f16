//! What the gateway-facing commands (`veil admin`, `veil dsr`, `veil retention`) share:
//! the connection flags, the failure kinds that decide the exit code, an authenticated
//! client context and the runtime around a command.
//!
//! Exit codes: 0 done, 1 the gateway refused or could not be reached (the status message
//! is printed on one line), 2 bad usage.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// How to reach and authenticate to the gateway; global, so they may follow the
/// subcommand.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway gRPC URL.
    #[arg(
        long,
        global = true,
        env = "VEIL_GATEWAY",
        default_value = "http://127.0.0.1:50051"
    )]
    pub gateway: String,
    /// API key or JWT to call with.
    #[arg(long, global = true, env = "VEIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificate for an https:// gateway.
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or input: exit 2.
    Usage(String),
    /// The gateway answered with an error or was unreachable: exit 1.
    Remote(String),
}

impl From<tonic::Status> for Failure {
    /// `failed_precondition: <message>` on one line.
    fn from(status: tonic::Status) -> Self {
        let name = format!("{:?}", status.code());
        let mut code = String::with_capacity(name.len() + 4);
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                code.push('_');
            }
            code.push(c.to_ascii_lowercase());
        }
        let message = status.message().replace(['\n', '\r'], " ");
        Failure::Remote(format!("{code}: {message}"))
    }
}

/// A client of one gateway service with the caller's token and output mode.
pub struct Context<C> {
    client: C,
    token: String,
    json: bool,
}

impl<C> Context<C> {
    /// The gRPC client.
    pub fn client(&mut self) -> &mut C {
        &mut self.client
    }

    /// `message` with the caller's bearer token.
    pub fn request<T>(&self, message: T) -> Result<Request<T>, Failure> {
        let mut request = Request::new(message);
        veil_core::auth::attach_bearer(&mut request, &self.token)
            .map_err(|_| Failure::Usage("the token is not a valid header value".into()))?;
        Ok(request)
    }

    /// Prints `json` with `--json`, otherwise `text`.
    pub fn print(&self, json: serde_json::Value, text: impl FnOnce() -> String) {
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

/// A lazily connecting context: usage errors are reported before any network trouble,
/// and an unreachable gateway surfaces as UNAVAILABLE on the first call.
pub fn connect<C>(
    args: &GatewayArgs,
    client: impl FnOnce(Channel) -> C,
) -> Result<Context<C>, Failure> {
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
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    Ok(Context {
        client: client(channel),
        token,
        json: args.json,
    })
}

/// Runs one command of `veil <name>` and turns its outcome into the exit code, printing
/// a failure as one line.
pub fn run(name: &str, command: impl Future<Output = Result<(), Failure>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil {name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("veil {name}: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(message)) => {
            eprintln!("veil {name}: {message}");
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
