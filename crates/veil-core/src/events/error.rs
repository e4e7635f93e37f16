//! Errors of the events module.

/// Errors from subject building, the stream, the outbox, the relay and consumers.
///
/// Messages never contain event payloads: those may be large and, by mistake, personal.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A service name, event name, prefix or stream name is not a valid NATS token.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which name was wrong (`service`, `event`, `subject prefix`, ...).
        what: &'static str,
        /// The rejected name (names are code constants, never personal data).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The events configuration does not validate; the message names the key.
    #[error("invalid events config: {0}")]
    InvalidConfig(String),
    /// The stream exists with settings that cannot carry the configured subjects.
    #[error("stream {stream} does not capture {subject}")]
    StreamMismatch {
        /// Stream name.
        stream: String,
        /// The subject filter the stream lacks.
        subject: String,
    },
    /// A NATS or JetStream operation failed.
    #[error("nats {operation} failed")]
    Nats {
        /// What was attempted, e.g. `create stream`.
        operation: &'static str,
        /// The client error.
        #[source]
        source: async_nats::Error,
    },
    /// A NATS operation did not finish in time.
    #[error("nats {operation} timed out")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
    },
    /// A database operation failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The batch an event joined ended without writing it (the service is stopping).
    #[error("outbox write lost: {0}")]
    WriteLost(#[from] crate::batch::BatchLost),
}

impl EventsError {
    /// Wraps a NATS client error with the operation that failed.
    pub(crate) fn nats(
        operation: &'static str,
        source: impl Into<async_nats::Error>,
    ) -> EventsError {
        EventsError::Nats {
            operation,
            source: source.into(),
        }
    }
}
