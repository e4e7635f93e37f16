//! What every handler and background task of the retention service shares.

use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::subjects::SubjectKeys;
use veil_proto::events::v1::event::Payload;

use crate::certificate::CertificateKeys;
use crate::peers::Peers;
use crate::settings::RetentionSettings;

/// The retention service's shared state.
pub struct Retention {
    /// The retention schema's pool.
    pub pool: PgPool,
    /// Subject id -> subject ref.
    pub subjects: SubjectKeys,
    /// Event names.
    pub events: EventsConfig,
    /// Wakes the outbox relay after a commit.
    pub relay: RelayHandle,
    /// Clients of the services retention drives.
    pub peers: Peers,
    /// Schedules, caps and DSR limits.
    pub settings: RetentionSettings,
    /// Wakes the saga driver (a hold was released, a service answered, a request was
    /// verified) so it does not wait for its next retry tick.
    pub saga_wake: Notify,
    /// Delivers DSR verification codes (default: none; the caller delivers them).
    pub notifier: std::sync::Arc<dyn crate::requests::Notifier>,
    /// Signs deletion certificates.
    pub certificates: CertificateKeys,
}

impl Retention {
    /// Writes an event into the outbox within `tx`; call [`Retention::notify_relay`]
    /// after the commit.
    pub async fn emit(
        &self,
        tx: &mut PgConnection,
        context: &EventContext,
        payload: Payload,
    ) -> Result<(), ServiceError> {
        emit(&mut *tx, &self.events, context, payload)
            .await
            .map_err(ServiceError::internal)?;
        Ok(())
    }

    /// Wakes the relay so committed events go out now.
    pub fn notify_relay(&self) {
        self.relay.notify();
    }
}
