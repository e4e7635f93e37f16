//! `SetPreferenceSignal`: GPC and do-not-sell/share style opt-outs per subject.

use std::time::Instant;

use time::Duration;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::{ServiceError, ServiceResult};
use veil_proto::common::v1::{CollectionMethod, PreferenceSignalType};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::ConsentPreferenceSignal;
use veil_proto::events::v1::event::Payload;

use super::convert::instant;
use super::{Caller, ConsentApi};
use crate::cache::subject_key;
use crate::invalidation::Scope;
use crate::store;
use crate::store::signals::SignalRow;

impl ConsentApi {
    pub(super) async fn set_signal_impl(
        &self,
        caller: &Caller,
        request: SetPreferenceSignalRequest,
    ) -> ServiceResult<SetPreferenceSignalResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        let signal = PreferenceSignalType::try_from(request.signal)
            .ok()
            .filter(|s| *s != PreferenceSignalType::Unspecified)
            .ok_or_else(|| ServiceError::invalid("signal", "is required"))?;
        let source = CollectionMethod::try_from(request.source)
            .ok()
            .filter(|s| *s != CollectionMethod::Unspecified)
            .ok_or_else(|| ServiceError::invalid("source", "is required"))?;
        let now = crate::domain::now();
        let observed_at = instant(request.observed_at.as_ref(), "observed_at")?.unwrap_or(now);
        if observed_at > now + Duration::seconds(60) {
            return Err(ServiceError::invalid(
                "observed_at",
                "must not be in the future",
            ));
        }
        let tenant = caller.tenant.as_uuid();
        let row = SignalRow {
            id: Uuid::now_v7(),
            signal: signal as i32,
            enabled: request.enabled,
            source: source as i32,
            observed_at,
        };
        let mut tx = veil_core::db::begin(&self.pool).await?;
        store::records::lock_subject(&mut tx, tenant, subject.as_str()).await?;
        store::signals::insert(&mut *tx, tenant, subject.as_str(), &row).await?;
        let mut affected: Vec<String> = if request.enabled {
            let stored = store::purposes::all_purposes(&mut *tx, tenant).await?;
            crate::cache::TenantPurposes::new(stored, Default::default())
                .by_key
                .into_values()
                .filter(|p| p.opted_out_by.contains(&(signal as i32)))
                .map(|p| p.key)
                .collect()
        } else {
            Vec::new()
        };
        affected.sort();
        let event = ConsentPreferenceSignal {
            signal: signal as i32,
            enabled: request.enabled,
            source: source as i32,
            affected_purpose_keys: affected.clone(),
        };
        self.emit(
            &mut tx,
            &caller.context(Some(&subject)),
            Payload::ConsentPreferenceSignal(event),
        )
        .await?;
        tx.commit().await?;
        let committed = Instant::now();
        self.relay.notify();
        if let Some(key) = subject_key(tenant, subject.as_str()) {
            self.invalidator
                .after_commit(Scope::Subject(key), committed)
                .await;
        }
        Ok(SetPreferenceSignalResponse {
            signal: Some(PreferenceSignal {
                signal: row.signal,
                enabled: row.enabled,
                source: row.source,
                observed_at: Some(timestamp(row.observed_at)),
            }),
            affected_purpose_keys: affected,
        })
    }
}
