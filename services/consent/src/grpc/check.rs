//! `CheckConsent` (every message) and `GetConsentState`.

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::db::retry_if_lost;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::types::SubjectRef;
use veil_core::validate::MAX_PURPOSES;
use veil_proto::common::v1::{Jurisdiction, PurposeDecision};
use veil_proto::consent::v1::*;

use super::{Caller, ConsentApi};
use crate::cache::{DecisionCache, TenantPurposes, subject_key};
use crate::domain::{SubjectState, decide, validate_keys};
use crate::store;

/// Decisions from the in-process cache, falling back to Postgres.
pub struct CheckPath {
    pool: PgPool,
    cache: Arc<DecisionCache>,
}

impl CheckPath {
    /// A check path over `pool` with `cache`.
    pub fn new(pool: PgPool, cache: Arc<DecisionCache>) -> Self {
        Self { pool, cache }
    }

    /// The tenant's purposes and controller settings.
    pub async fn purposes(&self, tenant: Uuid) -> ServiceResult<Arc<TenantPurposes>> {
        if let Some(purposes) = self.cache.tenant(tenant) {
            return Ok(purposes);
        }
        let generation = self.cache.generation();
        let pool = &self.pool;
        let (stored, controller) = retry_if_lost(|| async move {
            let stored = store::purposes::all_purposes(pool, tenant).await?;
            Ok((stored, store::purposes::controller(pool, tenant).await?))
        })
        .await?;
        let purposes = Arc::new(TenantPurposes::new(stored, controller));
        self.cache.put_tenant(tenant, purposes.clone(), generation);
        Ok(purposes)
    }

    /// The subject's current state.
    pub async fn state(
        &self,
        tenant: Uuid,
        subject: &SubjectRef,
    ) -> ServiceResult<Arc<SubjectState>> {
        let key = subject_key(tenant, subject.as_str());
        if let Some(state) = key.as_ref().and_then(|k| self.cache.subject(k)) {
            return Ok(state);
        }
        let generation = self.cache.generation();
        let (pool, subject_ref) = (&self.pool, subject.as_str());
        let state = Arc::new(
            retry_if_lost(|| async move {
                let mut conn = pool.acquire().await?;
                store::records::subject_state(&mut conn, tenant, subject_ref).await
            })
            .await?,
        );
        if let Some(key) = key {
            self.cache.put_subject(key, state.clone(), generation);
        }
        Ok(state)
    }

    /// Decisions answered from the cache alone, or `None` on a miss. This is the hot
    /// path: no allocation beyond the decisions, no I/O.
    pub fn decide_cached(
        &self,
        tenant: Uuid,
        subject: &SubjectRef,
        keys: &[String],
        jurisdiction: i32,
        now: OffsetDateTime,
    ) -> Option<Result<Vec<PurposeDecision>, String>> {
        let purposes = self.cache.tenant(tenant)?;
        let state = self
            .cache
            .subject(&subject_key(tenant, subject.as_str())?)?;
        Some(purposes.decide_all(&state, keys, jurisdiction, now))
    }

    /// One decision per key, in order; NOT_FOUND for an unknown purpose.
    pub async fn decide(
        &self,
        tenant: Uuid,
        subject: &SubjectRef,
        keys: &[String],
        jurisdiction: i32,
    ) -> ServiceResult<Vec<PurposeDecision>> {
        let now = OffsetDateTime::now_utc();
        let decided = match self.decide_cached(tenant, subject, keys, jurisdiction, now) {
            Some(decided) => decided,
            None => {
                let purposes = self.purposes(tenant).await?;
                let state = self.state(tenant, subject).await?;
                purposes.decide_all(&state, keys, jurisdiction, now)
            }
        };
        decided.map_err(|key| ServiceError::NotFound(format!("purpose {key}")))
    }

    /// The cache behind this path.
    pub fn cache(&self) -> &Arc<DecisionCache> {
        &self.cache
    }
}

impl ConsentApi {
    pub(super) async fn check_consent_impl(
        &self,
        caller: &Caller,
        request: CheckConsentRequest,
    ) -> ServiceResult<CheckConsentResponse> {
        let subject = self.subject_of(&caller.tenant, request.subject.as_ref())?;
        if request.purpose_keys.len() > MAX_PURPOSES {
            return Err(ServiceError::invalid(
                "purpose_keys",
                format!("at most {MAX_PURPOSES} purposes per check"),
            ));
        }
        validate_keys("purpose_keys", &request.purpose_keys, MAX_PURPOSES)?;
        Jurisdiction::try_from(request.jurisdiction)
            .map_err(|_| ServiceError::invalid("jurisdiction", "is not a jurisdiction"))?;
        let decisions = self
            .check
            .decide(
                caller.tenant.as_uuid(),
                &subject,
                &request.purpose_keys,
                request.jurisdiction,
            )
            .await?;
        Ok(CheckConsentResponse {
            subject_ref: subject.as_str().to_string(),
            decisions,
            evaluated_at: Some(veil_core::convert::now()),
        })
    }

    pub(super) async fn consent_state_impl(
        &self,
        caller: &Caller,
        request: GetConsentStateRequest,
    ) -> ServiceResult<GetConsentStateResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        Jurisdiction::try_from(request.jurisdiction)
            .map_err(|_| ServiceError::invalid("jurisdiction", "is not a jurisdiction"))?;
        let tenant = caller.tenant.as_uuid();
        let purposes = self.check.purposes(tenant).await?;
        // On the message path (notices due): read again on a lost connection.
        let (pool, subject_ref) = (&self.pool, subject.as_str());
        let (state, signals, served) = retry_if_lost(|| async move {
            let mut conn = pool.acquire().await?;
            let state = store::records::subject_state(&mut conn, tenant, subject_ref).await?;
            let signals = store::signals::of_subject(&mut *conn, tenant, subject_ref, true).await?;
            let served = store::notices::served_to(&mut *conn, tenant, subject_ref, true).await?;
            Ok((state, signals, served))
        })
        .await?;
        let now = OffsetDateTime::now_utc();
        let jurisdiction = purposes.jurisdiction(request.jurisdiction);
        let mut keys: Vec<&String> = purposes.by_key.keys().collect();
        keys.sort();
        let states = keys
            .into_iter()
            .filter_map(|key| purposes.by_key.get(key))
            .filter(|p| !p.archived)
            .map(|purpose| {
                let record = state.record(&purpose.key);
                PurposeState {
                    purpose_key: purpose.key.clone(),
                    state: record.map(|r| r.state).unwrap_or_default(),
                    decision: Some(decide(purpose, &state, jurisdiction, now)),
                    updated_at: record.map(|r| timestamp(r.event_time)),
                    expires_at: record.and_then(|r| r.expires_at).map(timestamp),
                }
            })
            .collect();
        Ok(GetConsentStateResponse {
            subject_ref: subject.as_str().to_string(),
            purposes: states,
            signals: signals
                .iter()
                .map(|s| PreferenceSignal {
                    signal: s.signal,
                    enabled: s.enabled,
                    source: s.source,
                    observed_at: Some(timestamp(s.observed_at)),
                })
                .collect(),
            notices_served: served
                .iter()
                .map(|s| NoticeServed {
                    notice_id: s.notice_id.to_string(),
                    kind: s.kind,
                    version: s.version,
                    locale: s.locale.clone(),
                    served_at: Some(timestamp(s.served_at)),
                })
                .collect(),
        })
    }
}
