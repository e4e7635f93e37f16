//! `veil up`: all five services in one process on their usual ports.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use tokio_util::sync::CancellationToken;
use veil_core::config::Sources;
use veil_core::types::Personal;

use crate::demo::DemoTarget;
use crate::stack::{Stack, StackSettings};

/// Options of `veil up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Run `veil demo` against the stack once it is up, then keep serving.
    #[arg(long)]
    pub demo: bool,
}

/// Runs the stack until Ctrl-C / SIGTERM.
pub async fn run(
    args: UpArgs,
    mut settings: StackSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Without a configured bootstrap key, make one for this run so the operator (and
    // the demo) can create the first tenant.
    if settings
        .gateway
        .service
        .bootstrap_admin_key
        .expose()
        .is_empty()
    {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let key = format!("veil_bootstrap_{}", URL_SAFE_NO_PAD.encode(bytes));
        eprintln!("bootstrap admin key for this run (platform_admin): {key}");
        settings.gateway.service.bootstrap_admin_key = Personal::new(key);
    }
    let bootstrap_key = settings
        .gateway
        .service
        .bootstrap_admin_key
        .expose()
        .clone();
    let stack = Stack::build(settings).await?;
    for (name, service) in &stack.services {
        eprintln!(
            "veil-{name:<9} gRPC {}  metrics http://{}/metrics",
            service.grpc_addr(),
            service.metrics_addr()
        );
    }
    if args.demo {
        let target = DemoTarget {
            gateway_url: format!(
                "http://{}",
                stack
                    .addr("gateway")
                    .ok_or_else(|| anyhow::anyhow!("no gateway"))?
            ),
            bootstrap_key,
        };
        let demo_shutdown = shutdown.clone();
        tokio::spawn(async move {
            match crate::demo::run(target).await {
                Ok(()) => eprintln!("\ndemo finished; Veil keeps running (Ctrl-C stops it)"),
                Err(error) => {
                    eprintln!("demo failed: {error:#}");
                    demo_shutdown.cancel();
                }
            }
        });
    }
    stack.run(shutdown).await
}

/// Loads the settings of every service from the usual sources.
pub fn load_settings() -> anyhow::Result<StackSettings> {
    StackSettings::load(&Sources::default())
}
