//! Keeping every replica's decision cache honest.
//!
//! Guarantee: once a consent write (grant, denial, withdrawal, signal, erasure, purpose
//! or controller change) has returned, no replica answers `CheckConsent` from a state
//! older than that write. How:
//!
//! - Every replica that serves from its cache is listed in `cache_replicas` (heartbeat
//!   every `cache_heartbeat_ms`); it serves only while its last heartbeat is younger than
//!   two intervals, and writers consider every replica seen within three, so a replica
//!   writers do not know about is never serving.
//! - After its commit, a writer forgets the subject locally, then publishes an
//!   invalidation on core NATS (`<events prefix>_cache.consent`, outside the JetStream
//!   stream) with a reply inbox and waits for every listed replica to confirm. A replica
//!   that does not confirm is waited out: the writer returns only when `cache_ttl_ms`
//!   has passed since its commit, after which no entry loaded before the commit exists.
//! - Each replica also listens (ephemeral core subscription, so every replica sees every
//!   event, unlike a shared durable consumer) to `<prefix>.consent.>` events, which
//!   covers writers that crashed between commit and broadcast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;

use crate::cache::{DecisionCache, SubjectKey, subject_key};
use crate::store::replicas;

/// Invalidates caches here and on every other replica.
pub struct Invalidator {
    nats: async_nats::Client,
    pool: PgPool,
    cache: Arc<DecisionCache>,
    replica: Uuid,
    subject: String,
    events_filter: String,
    heartbeat: Duration,
}

/// What to forget: a tenant's purposes and subjects, or one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything about a tenant (purpose or controller change).
    Tenant(Uuid),
    /// One subject.
    Subject(SubjectKey),
}

impl Scope {
    fn encode(&self) -> String {
        match self {
            Scope::Tenant(tenant) => tenant.to_string(),
            Scope::Subject((tenant, subject)) => format!("{tenant}:{}", hex::encode(subject)),
        }
    }

    fn decode(payload: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        match text.split_once(':') {
            None => Some(Scope::Tenant(text.parse().ok()?)),
            Some((tenant, subject)) => {
                subject_key(tenant.parse().ok()?, subject).map(Scope::Subject)
            }
        }
    }
}

impl Invalidator {
    /// An invalidator for this replica's `cache`.
    pub fn new(foundation: &Foundation, cache: Arc<DecisionCache>, heartbeat: Duration) -> Self {
        Self {
            nats: foundation.nats.clone(),
            pool: foundation.pool.clone(),
            cache,
            replica: Uuid::now_v7(),
            subject: format!("{}_cache.consent", foundation.events.subject_prefix),
            events_filter: format!("{}.consent.>", foundation.events.subject_prefix),
            heartbeat,
        }
    }

    fn forget(&self, scope: Scope) {
        match scope {
            Scope::Tenant(tenant) => self.cache.invalidate_tenant(tenant),
            Scope::Subject(key) => self.cache.invalidate_subject(&key),
        }
    }

    /// Call after the write committed at `committed`: returns once no replica can answer
    /// from a state older than the write.
    pub async fn after_commit(&self, scope: Scope, committed: Instant) {
        self.forget(scope);
        let deadline = tokio::time::Instant::from_std(committed + self.cache.ttl());
        let window = i64::try_from(self.heartbeat.as_millis() * 3).unwrap_or(i64::MAX);
        let mut waiting: Vec<Uuid> = match replicas::live(&self.pool, window).await {
            Ok(live) => live.into_iter().filter(|r| *r != self.replica).collect(),
            Err(error) => {
                tracing::warn!(error = %veil_core::error::ErrorChain(&error), "replica registry unreadable; waiting out the cache ttl");
                tokio::time::sleep_until(deadline).await;
                return;
            }
        };
        if waiting.is_empty() {
            return;
        }
        let inbox = self.nats.new_inbox();
        let confirmed = async {
            let mut replies = self.nats.subscribe(inbox.clone()).await.ok()?;
            self.nats
                .publish_with_reply(self.subject.clone(), inbox, scope.encode().into())
                .await
                .ok()?;
            while !waiting.is_empty() {
                let reply = replies.next().await?;
                if let Some(id) = std::str::from_utf8(&reply.payload)
                    .ok()
                    .and_then(|s| s.parse::<Uuid>().ok())
                {
                    waiting.retain(|r| *r != id);
                }
            }
            Some(())
        };
        match tokio::time::timeout_at(deadline, confirmed).await {
            Ok(Some(())) => {}
            _ => {
                tracing::warn!(
                    "a replica did not confirm a cache invalidation; waited out the cache ttl"
                );
                tokio::time::sleep_until(deadline).await;
            }
        }
    }

    /// Runs the listener and heartbeat for the life of the service (only when the cache
    /// is enabled: a replica without a cache needs no invalidation).
    pub fn spawn(self: Arc<Self>, foundation: &mut Foundation) {
        foundation.spawn_task("consent cache invalidation", move |token| self.run(token));
    }

    async fn run(self: Arc<Self>, token: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        while !token.is_cancelled() {
            if let Err(error) = self.listen(&token).await {
                tracing::warn!(error = %error, "cache invalidation listener stopped; cache off until it is back");
            }
            self.cache.stop_serving();
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        self.cache.stop_serving();
        if let Err(error) = replicas::leave(&self.pool, self.replica).await {
            tracing::debug!(error = %error, "could not leave the replica registry");
        }
    }

    async fn listen(&self, token: &CancellationToken) -> anyhow::Result<()> {
        let mut direct = self.nats.subscribe(self.subject.clone()).await?;
        let mut events = self.nats.subscribe(self.events_filter.clone()).await?;
        self.nats.flush().await?;
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                message = direct.next() => {
                    let message = message.ok_or_else(|| anyhow::anyhow!("subscription closed"))?;
                    if let Some(scope) = Scope::decode(&message.payload) {
                        self.forget(scope);
                    }
                    if let Some(reply) = message.reply {
                        self.nats.publish(reply, self.replica.to_string().into()).await?;
                    }
                }
                message = events.next() => {
                    let message = message.ok_or_else(|| anyhow::anyhow!("subscription closed"))?;
                    if let Some(scope) = scope_of_event(&message.payload) {
                        self.forget(scope);
                    }
                }
                _ = tick.tick() => self.renew().await,
            }
        }
    }

    /// Heartbeat: while NATS is connected and the registry write succeeds, the cache may
    /// serve for two more intervals.
    async fn renew(&self) {
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            self.cache.stop_serving();
            return;
        }
        let started = Instant::now();
        match replicas::heartbeat(&self.pool, self.replica).await {
            Ok(()) => {
                if !self.cache.serving() {
                    // Entries from before a lapse may predate writes that did not wait
                    // for this replica.
                    self.cache.clear();
                }
                self.cache.serve_until(started + self.heartbeat * 2);
            }
            Err(error) => {
                tracing::warn!(error = %veil_core::error::ErrorChain(&error), "replica heartbeat failed");
            }
        }
    }
}

/// What a consent event invalidates; `None` for events that change no decision.
fn scope_of_event(payload: &[u8]) -> Option<Scope> {
    let event = Event::decode(payload).ok()?;
    let tenant: Uuid = event.tenant_id.parse().ok()?;
    match event.payload? {
        Payload::ConsentPurposeChanged(_) => Some(Scope::Tenant(tenant)),
        Payload::ConsentGranted(_)
        | Payload::ConsentDenied(_)
        | Payload::ConsentWithdrawn(_)
        | Payload::ConsentPreferenceSignal(_)
        | Payload::ConsentErasureCompleted(_) => {
            subject_key(tenant, &event.subject_ref).map(Scope::Subject)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        let tenant = Uuid::now_v7();
        for scope in [Scope::Tenant(tenant), Scope::Subject((tenant, [7; 32]))] {
            assert_eq!(Scope::decode(scope.encode().as_bytes()), Some(scope));
        }
        assert_eq!(Scope::decode(b"garbage"), None);
    }

    #[test]
    fn withdrawals_invalidate_their_subject() {
        let tenant = Uuid::now_v7();
        let event = Event {
            tenant_id: tenant.to_string(),
            subject_ref: "ab".repeat(32),
            payload: Some(Payload::ConsentWithdrawn(Default::default())),
            ..Default::default()
        };
        assert_eq!(
            scope_of_event(&event.encode_to_vec()),
            Some(Scope::Subject((tenant, [0xab; 32])))
        );
        let notice = Event {
            tenant_id: tenant.to_string(),
            payload: Some(Payload::ConsentNoticePublished(Default::default())),
            ..Default::default()
        };
        assert_eq!(scope_of_event(&notice.encode_to_vec()), None);
    }
}
