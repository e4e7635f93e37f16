//! Probes of a running gRPC server as an operator's tools see it: health checks and
//! server reflection (v1 and v1alpha, the one grpcurl 1.8 speaks).

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// `grpc.health.v1.Health/Check` for `service` ("" = the whole server).
pub async fn health(channel: Channel, service: &str) -> anyhow::Result<ServingStatus> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(response.status)?)
}

/// Services listed by reflection v1.
pub async fn list_services_v1(channel: Channel) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let response = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("reflection closed the stream"))?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}

/// Services listed by reflection v1alpha.
pub async fn list_services_v1alpha(channel: Channel) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let response = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("reflection closed the stream"))?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}

/// Connects to `url`, retrying until `timeout` (the listener may still be starting).
pub async fn connect(url: &str, timeout: std::time::Duration) -> anyhow::Result<Channel> {
    let endpoint = Channel::from_shared(url.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(anyhow::anyhow!("cannot connect to {url}: {error}"));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}
