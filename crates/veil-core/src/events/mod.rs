//! NATS JetStream events: subject names, the stream, the transactional outbox with its
//! relay, and the durable pull-consumer helper.
//!
//! A service writes an [`OutboxEvent`] with [`enqueue`] in the same transaction as the
//! state change, calls [`RelayHandle::notify`] after the commit, and runs one
//! [`OutboxRelay`] that publishes with `Nats-Msg-Id` = event id. Consumers run a
//! [`Consumer`] with an [`EventHandler`] whose database work commits before the ack and
//! which is idempotent by event id (the `processed_events` table).

mod backoff;
mod consumer;
mod erasure;
mod error;
mod outbox;
mod outbox_writer;
mod relay;
mod stream;
mod subjects;

pub use consumer::{
    BatchEventHandler, BatchSettings, Consumer, ConsumerLag, ConsumerSettings, EventHandler,
    HandlerError, ReceivedEvent,
};
pub use erasure::{ErasureRequestError, ErasureTarget, erasure_target};
pub use error::EventsError;
pub use outbox::{OUTBOX_DDL, OutboxEvent, enqueue, ensure_tables};
pub use outbox_writer::OutboxWriter;
pub use relay::{CLAIM_PLAN, CLAIM_SQL, OutboxRelay, RelayHandle, RelayRound, RelaySettings};
pub use stream::{ensure_stream, stream_config};
pub use subjects::{EventsConfig, parse_subject, validate_token};

/// Header carrying the event id; JetStream de-duplicates on it inside the stream's window.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// Header carrying the W3C trace context across NATS.
pub const TRACEPARENT_HEADER: &str = "traceparent";
