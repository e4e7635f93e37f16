//! What every handler and background task of the vault shares.

use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use veil_core::auth::Principal;
use veil_core::convert::actor_as;
use veil_core::emit::{self, EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, OutboxWriter, RelayHandle};
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::event::Payload;

use crate::error::VaultResult;
use crate::hierarchy::KeyHierarchy;
use crate::settings::VaultSettings;

/// The vault's shared state.
pub struct Vault {
    /// The vault schema's pool.
    pub pool: PgPool,
    /// Keys and their caches.
    pub keys: KeyHierarchy,
    /// Subject id -> subject ref.
    pub subjects: SubjectKeys,
    /// Event names.
    pub events: EventsConfig,
    /// Wakes the outbox relay after a commit.
    pub relay: RelayHandle,
    /// Group commit of events that go with no other write (reveals).
    pub outbox: OutboxWriter,
    /// Limits and pacing.
    pub settings: VaultSettings,
    /// Wakes the rewrap worker after a rotation.
    pub rewrap_wake: Notify,
}

impl Vault {
    /// Writes an event into the outbox within `tx` (call [`Vault::notify_relay`] after
    /// the commit).
    pub async fn emit(
        &self,
        tx: &mut PgConnection,
        context: &EventContext,
        payload: Payload,
    ) -> VaultResult<()> {
        emit(&mut *tx, &self.events, context, payload)
            .await
            .map_err(ServiceError::internal)?;
        Ok(())
    }

    /// Writes an event that goes with no other write (a reveal), batched with other
    /// calls' events into one statement and commit; durable when this returns.
    pub async fn emit_alone(&self, context: &EventContext, payload: Payload) -> VaultResult<()> {
        emit::emit_alone(&self.outbox, &self.events, context, payload)
            .await
            .map_err(ServiceError::internal)?;
        Ok(())
    }

    /// Wakes the relay so committed events go out now.
    pub fn notify_relay(&self) {
        self.relay.notify();
    }
}

/// Event context of a call: tenant, subject and who acted.
pub fn event_context(
    principal: &Principal,
    tenant: Option<TenantId>,
    subject: Option<&SubjectRef>,
) -> EventContext {
    EventContext {
        tenant,
        subject_ref: subject.cloned(),
        actor: Some(actor(principal)),
        request_id: principal.request_id.to_string(),
    }
}

/// The audit actor of an internal-token principal.
pub fn actor(principal: &Principal) -> Actor {
    let kind = if principal.has_role(Role::Service) {
        ActorKind::Service
    } else if principal.has_role(Role::Bot) {
        ActorKind::ApiKey
    } else {
        ActorKind::User
    };
    actor_as(principal, kind)
}

/// A system actor for background work (rewrap completion).
pub fn system_context(tenant: Option<TenantId>) -> EventContext {
    EventContext {
        tenant,
        subject_ref: None,
        actor: Some(Actor {
            kind: ActorKind::System as i32,
            principal_id: "veil-vault".into(),
            roles: Vec::new(),
            tenant_id: String::new(),
        }),
        request_id: String::new(),
    }
}
