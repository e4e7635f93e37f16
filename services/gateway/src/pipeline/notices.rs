//! Notices due: the tenant's current privacy notice until the subject was served that
//! version, and the AI disclosure (EU AI Act Art. 50) at the start of a conversation.
//! Current notices are cached briefly per tenant, kind and locale; what a subject was
//! served is asked of consent each time, so a `RecordNoticeServed` counts at once.
//! Locales come normalized; many of them fall back to one notice, which the cache holds
//! once (a notice may be 256 KiB).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veil_core::types::TenantId;
use veil_proto::common::v1::NoticeKind;
use veil_proto::consent::v1::{GetConsentStateRequest, GetNoticeRequest, Notice};
use veil_proto::gateway::v1::{NoticeDue, NoticeStatus};

use super::{Call, PipelineApi};

/// How long a current notice is reused before asking consent again.
const NOTICE_TTL: Duration = Duration::from_secs(10);

type NoticeKey = (TenantId, i32, String);

/// Entries the cache holds at most before it starts over.
const CAPACITY: usize = 10_000;

/// Current notices by tenant, kind and locale (`None`: the tenant published none).
#[derive(Default)]
pub struct NoticeCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<NoticeKey, (Instant, Option<Arc<Notice>>)>,
    /// Each notice version once, however many locales fell back to it.
    notices: HashMap<String, Arc<Notice>>,
}

impl NoticeCache {
    fn get(&self, key: &NoticeKey) -> Option<Option<Arc<Notice>>> {
        let entries = self.entries.lock().ok()?;
        let (at, notice) = entries.by_key.get(key)?;
        (at.elapsed() < NOTICE_TTL).then(|| notice.clone())
    }

    fn put(&self, key: NoticeKey, notice: Option<Notice>) -> Option<Arc<Notice>> {
        let mut fresh = notice.map(Arc::new);
        let Ok(mut entries) = self.entries.lock() else {
            return fresh;
        };
        if entries.by_key.len() >= CAPACITY {
            *entries = Entries::default();
        }
        if let Some(notice) = &mut fresh {
            let held = entries
                .notices
                .entry(notice.notice_id.clone())
                .or_insert_with(|| notice.clone());
            // A version is immutable: the one held serves every locale.
            *notice = held.clone();
        }
        entries.by_key.insert(key, (Instant::now(), fresh.clone()));
        fresh
    }

    /// Versions held (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.notices.len())
    }
}

/// Who and where the notices are for.
pub struct NoticeSubject<'a> {
    pub subject_id: &'a str,
    pub locale: &'a str,
    pub jurisdiction: i32,
    /// The conversation, for the AI disclosure (due while it has no turn yet).
    pub conversation: Option<&'a str>,
}

fn due_notice(notice: &Notice) -> NoticeDue {
    NoticeDue {
        kind: notice.kind,
        notice_id: notice.notice_id.clone(),
        version: notice.version,
        locale: notice.locale.clone(),
        title: notice.title.clone(),
        body: notice.body.clone(),
        url: notice.url.clone(),
    }
}

impl PipelineApi {
    /// The tenant's current notices and whether each is due for the subject.
    pub(super) async fn notice_statuses(
        &self,
        call: &Call,
        subject: &NoticeSubject<'_>,
    ) -> Result<Vec<NoticeStatus>, tonic::Status> {
        let mut current = Vec::new();
        for kind in [NoticeKind::PrivacyNotice, NoticeKind::AiDisclosure] {
            if let Some(notice) = self.current_notice(call, kind, subject.locale).await? {
                current.push(notice);
            }
        }
        if current.is_empty() {
            return Ok(Vec::new());
        }
        // Only asked when an AI disclosure exists: most messages need no extra query.
        let conversation_starts = match subject.conversation {
            Some(conversation)
                if current
                    .iter()
                    .any(|n| n.kind == NoticeKind::AiDisclosure as i32) =>
            {
                crate::store::next_turn_index(&self.pool, call.tenant.as_uuid(), conversation)
                    .await
                    .map_err(veil_core::error::ServiceError::from)?
                    == 0
            }
            _ => false,
        };
        let request = self.clients.request(
            "consent",
            &call.principal,
            GetConsentStateRequest {
                subject_id: subject.subject_id.to_string(),
                jurisdiction: subject.jurisdiction,
            },
        )?;
        let state = self
            .clients
            .consent()
            .get_consent_state(request)
            .await?
            .into_inner();
        Ok(current
            .iter()
            .map(|notice| {
                let served = state
                    .notices_served
                    .iter()
                    .filter(|s| s.kind == notice.kind)
                    .max_by_key(|s| s.version);
                let due = if notice.kind == NoticeKind::AiDisclosure as i32 {
                    conversation_starts
                } else {
                    served.is_none_or(|s| s.version < notice.version)
                };
                NoticeStatus {
                    notice: Some(due_notice(notice)),
                    due,
                    last_served_at: served.and_then(|s| s.served_at),
                    last_served_version: served.map_or(0, |s| s.version),
                }
            })
            .collect())
    }

    async fn current_notice(
        &self,
        call: &Call,
        kind: NoticeKind,
        locale: &str,
    ) -> Result<Option<Arc<Notice>>, tonic::Status> {
        let key = (call.tenant, kind as i32, locale.to_string());
        if let Some(cached) = self.notices.get(&key) {
            return Ok(cached);
        }
        let request = self.clients.request(
            "consent",
            &call.principal,
            GetNoticeRequest {
                kind: kind as i32,
                locale: locale.to_string(),
                version: 0,
            },
        )?;
        let notice = match self.clients.consent().get_notice(request).await {
            Ok(response) => response.into_inner().notice,
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(status) => return Err(status),
        };
        Ok(self.notices.put(key, notice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: &str) -> Notice {
        Notice {
            notice_id: id.into(),
            body: "x".repeat(1024),
            ..Default::default()
        }
    }

    #[test]
    fn locales_falling_back_to_one_notice_share_it() {
        let cache = NoticeCache::default();
        let tenant = TenantId::generate();
        for i in 0..100 {
            let key = (tenant, 1, format!("en-x{i}"));
            let held = cache.put(key.clone(), Some(notice("n-1"))).expect("notice");
            assert_eq!(held.notice_id, "n-1");
            assert!(cache.get(&key).expect("cached").is_some());
        }
        assert_eq!(cache.held(), 1);
        cache.put((tenant, 1, "de".into()), Some(notice("n-2")));
        cache.put((tenant, 2, "de".into()), None);
        assert_eq!(cache.held(), 2);
        assert_eq!(cache.get(&(tenant, 2, "de".into())), Some(None));
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let cache = NoticeCache::default();
        let tenant = TenantId::generate();
        for i in 0..=CAPACITY {
            cache.put(
                (tenant, 1, format!("l{i}")),
                Some(notice(&format!("n-{i}"))),
            );
        }
        assert_eq!(cache.held(), 1);
    }
}
