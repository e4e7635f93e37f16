//! A short-lived cache of consent decisions per subject, so most messages need no call to
//! consent. Every `consent.*` event (from any replica, received on a plain NATS
//! subscription that each gateway replica holds) drops the subject's entry, and a
//! withdrawal made by this gateway drops it at once; the TTL bounds staleness if an event
//! is missed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use veil_core::types::TenantId;
use veil_proto::common::v1::PurposeDecision;
use veil_proto::events::v1::Event;

/// How long a decision is reused without an event.
const TTL: Duration = Duration::from_secs(5);
/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 100_000;

type Key = (TenantId, String);
/// When an entry was filled, and its decisions by (jurisdiction, purpose).
type Entry = (Instant, HashMap<(i32, String), PurposeDecision>);

/// Decisions by (tenant, subject_ref), then by (jurisdiction, purpose): defaults differ by
/// jurisdiction.
#[derive(Default)]
pub struct ConsentCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl ConsentCache {
    /// The cached decisions for every one of `purposes`, if all are fresh.
    pub fn get(
        &self,
        tenant: TenantId,
        subject_ref: &str,
        jurisdiction: i32,
        purposes: &[String],
    ) -> Option<Vec<PurposeDecision>> {
        let entries = self.entries.lock().ok()?;
        let (at, decisions) = entries.get(&(tenant, subject_ref.to_string()))?;
        if at.elapsed() >= TTL {
            return None;
        }
        purposes
            .iter()
            .map(|p| decisions.get(&(jurisdiction, p.clone())).cloned())
            .collect()
    }

    /// Remembers `decisions` for the subject.
    pub fn put(
        &self,
        tenant: TenantId,
        subject_ref: &str,
        jurisdiction: i32,
        decisions: &[PurposeDecision],
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let entry = entries
            .entry((tenant, subject_ref.to_string()))
            .or_insert_with(|| (Instant::now(), HashMap::new()));
        entry.0 = Instant::now();
        for decision in decisions {
            entry.1.insert(
                (jurisdiction, decision.purpose_key.clone()),
                decision.clone(),
            );
        }
    }

    /// Drops one subject's decisions.
    pub fn invalidate(&self, tenant: TenantId, subject_ref: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(tenant, subject_ref.to_string()));
        }
    }

    /// Drops a whole tenant (a purpose or a default changed).
    pub fn invalidate_tenant(&self, tenant: TenantId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(t, _), _| *t != tenant);
        }
    }

    /// Applies one consent event.
    fn apply(&self, event: &Event) {
        let Ok(tenant) = event.tenant_id.parse::<TenantId>() else {
            return;
        };
        if event.subject_ref.is_empty() {
            self.invalidate_tenant(tenant);
        } else {
            self.invalidate(tenant, &event.subject_ref);
        }
    }

    /// Follows `consent.*` events until `shutdown`.
    pub async fn follow(
        self: std::sync::Arc<Self>,
        nats: async_nats::Client,
        subject: String,
        shutdown: CancellationToken,
    ) {
        follow_events(nats, subject, shutdown, move |event| self.apply(event)).await;
    }
}

/// Calls `apply` with every event published on `subject` until `shutdown`, on a plain
/// NATS subscription (each replica gets every event), resubscribing after errors. For
/// cache invalidation only: events published while unsubscribed are missed, which is
/// why every cache also has a TTL.
pub async fn follow_events(
    nats: async_nats::Client,
    subject: String,
    shutdown: CancellationToken,
    apply: impl Fn(&Event),
) {
    loop {
        let mut subscription = match nats.subscribe(subject.clone()).await {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::warn!(%error, "cannot subscribe to events for cache invalidation; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                message = subscription.next() => match message {
                    Some(message) => {
                        if let Ok(event) = Event::decode(message.payload.as_ref()) {
                            apply(&event);
                        }
                    }
                    None => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(purpose: &str) -> PurposeDecision {
        PurposeDecision {
            purpose_key: purpose.into(),
            ..Default::default()
        }
    }

    #[test]
    fn hits_need_every_purpose_and_events_invalidate() {
        let cache = ConsentCache::default();
        let tenant = TenantId::generate();
        cache.put(tenant, "ref", 0, &[decision("a"), decision("b")]);
        assert_eq!(
            cache.get(tenant, "ref", 0, &["a".into()]).map(|d| d.len()),
            Some(1)
        );
        assert!(cache.get(tenant, "ref", 1, &["a".into()]).is_none());
        assert!(
            cache
                .get(tenant, "ref", 0, &["a".into(), "c".into()])
                .is_none()
        );
        cache.apply(&Event {
            tenant_id: tenant.to_string(),
            subject_ref: "ref".into(),
            ..Default::default()
        });
        assert!(cache.get(tenant, "ref", 0, &["a".into()]).is_none());
        cache.put(tenant, "ref2", 0, &[decision("a")]);
        cache.apply(&Event {
            tenant_id: tenant.to_string(),
            ..Default::default()
        });
        assert!(cache.get(tenant, "ref2", 0, &["a".into()]).is_none());
    }
}
