//! Running a built service in the test's runtime and stopping it again.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use veil_core::app::Service;

/// A service running in-process; stopped (gracefully) by [`Running::stop`] or on drop.
pub struct Running {
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Metrics address.
    pub metrics_addr: SocketAddr,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// `http://` URL of the gRPC listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// Signals shutdown and waits for the service to finish draining.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.handle.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts `service` on the current runtime.
pub fn spawn(service: Service) -> Running {
    let shutdown = CancellationToken::new();
    let grpc_addr = service.grpc_addr();
    let metrics_addr = service.metrics_addr();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { service.run_until_stopped(token).await });
    Running {
        grpc_addr,
        metrics_addr,
        shutdown,
        handle: Some(handle),
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
