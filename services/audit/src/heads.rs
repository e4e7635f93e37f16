//! Signing tree heads on a schedule and on demand.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use veil_core::emit::{EventContext, emit};
use veil_core::events::{EventsConfig, RelayHandle};
use veil_proto::events::v1::AuditTreeHeadSigned;
use veil_proto::events::v1::event::Payload;

use crate::error::AuditError;
use crate::incidents::system_actor;
use crate::store::tree::{self, HeadRow};
use crate::tree_head::HeadSigner;

/// Event type of the heads' own events, which alone never call for a new head.
const HEAD_EVENT: &str = "audit.tree_head_signed";

/// Signs heads of the current tree.
#[derive(Debug, Clone)]
pub struct Heads {
    pool: PgPool,
    signer: HeadSigner,
    events: EventsConfig,
    relay: Option<RelayHandle>,
}

impl Heads {
    /// Heads signed by `signer`, announced in `events`' namespace.
    pub fn new(pool: PgPool, signer: HeadSigner, events: EventsConfig) -> Self {
        Self {
            pool,
            signer,
            events,
            relay: None,
        }
    }

    /// Wakes `relay` after a head's event was written.
    pub fn with_relay(mut self, relay: RelayHandle) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Signs the current tree unless a head for its size exists (then that head is
    /// returned). Without `force`, a tree that only grew by the heads' own events is
    /// not signed again, or every head would call for the next one.
    pub async fn sign_current(&self, force: bool) -> Result<Option<HeadRow>, AuditError> {
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let size = tree::size(&mut *tx).await?;
        if size == 0 {
            return Ok(None);
        }
        let latest = tree::latest_head(&mut *tx).await?;
        let latest_size = latest
            .as_ref()
            .map_or(0, |head| u64::try_from(head.tree_size).unwrap_or_default());
        if latest_size >= size {
            return Ok(latest);
        }
        if !force {
            let grew: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM entries
                                WHERE idx >= $1 AND idx < $2 AND event_type <> $3)",
            )
            .bind(tree::to_i64(latest_size))
            .bind(tree::to_i64(size))
            .bind(HEAD_EVENT)
            .fetch_one(&mut *tx)
            .await?;
            if !grew {
                return Ok(None);
            }
        }
        let root = tree::root(&mut *tx, size).await?;
        let signed = self
            .signer
            .sign(size, root, time::OffsetDateTime::now_utc());
        let row = HeadRow {
            tree_size: tree::to_i64(size),
            root_hash: signed.root_hash,
            signed_at: crate::tree_head::TreeHeadPayload::decode(&signed.signed_payload)
                .map(|payload| payload.signed_at())
                .map_err(|e| AuditError::Inconsistent(e.to_string()))?,
            signed_payload: signed.signed_payload,
            signature: signed.signature,
            key_id: signed.key_id,
            public_key: signed.public_key,
        };
        if !tree::insert_head(&mut tx, &row).await? {
            // Another replica signed this size first; its head is as good.
            return Ok(tree::head_at(&mut *tx, size).await?);
        }
        emit(
            &mut *tx,
            &self.events,
            &EventContext {
                tenant: None,
                subject_ref: None,
                actor: Some(system_actor()),
                request_id: String::new(),
            },
            Payload::AuditTreeHeadSigned(AuditTreeHeadSigned {
                tree_size: size,
                root_hash: row.root_hash.clone(),
                key_id: row.key_id.clone(),
                signed_at: Some(veil_core::convert::timestamp(row.signed_at)),
            }),
        )
        .await?;
        tx.commit().await?;
        if let Some(relay) = &self.relay {
            relay.notify();
        }
        tracing::info!(tree_size = size, "tree head signed");
        Ok(Some(row))
    }

    /// Signs every `interval` while the log grows, until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.sign_current(false).await {
                tracing::warn!(error = %veil_core::error::ErrorChain(&error), "scheduled tree head failed");
            }
        }
    }
}
