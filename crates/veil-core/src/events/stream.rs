//! The event stream: get it, or create it with settings that suit an audit source.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::error::EventsError;
use super::subjects::EventsConfig;

/// The stream configuration for `config`.
///
/// Retention `Limits` so every consumer (audit above all) reads every event; file
/// storage; `discard New`, so a full stream refuses publishes (the outbox keeps the
/// events and retries) rather than dropping data no one consumed yet. Only fields that
/// NATS 2.9 understands are set.
pub fn stream_config(config: &EventsConfig) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        description: Some("Veil domain events".to_owned()),
        subjects: vec![config.all()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        max_age: Duration::from_secs(config.max_age_secs),
        max_bytes: config.max_bytes,
        max_messages: -1,
        max_messages_per_subject: -1,
        max_consumers: -1,
        duplicate_window: Duration::from_millis(config.duplicate_window_ms),
        num_replicas: config.replicas,
        deny_delete: true,
        ..stream::Config::default()
    }
}

/// Gets the stream, creating it if it does not exist.
///
/// An existing stream is not reconfigured (operators may have tuned it), but it must
/// capture `{prefix}.>`, else events would be published into nothing.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &EventsConfig,
) -> Result<stream::Info, EventsError> {
    config.validate().map_err(EventsError::InvalidConfig)?;
    let mut stream = js
        .get_or_create_stream(stream_config(config))
        .await
        .map_err(|e| EventsError::nats("get or create stream", e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| EventsError::nats("stream info", e))?
        .clone();
    let wanted = config.all();
    if !info.config.subjects.contains(&wanted) {
        return Err(EventsError::StreamMismatch {
            stream: config.stream.clone(),
            subject: wanted,
        });
    }
    Ok(info)
}
