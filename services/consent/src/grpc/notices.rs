//! Versioned, immutable notices (privacy notice and AI disclosure) and deliveries.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::types::ConversationId;
use veil_proto::common::v1::{Actor, CollectionMethod, NoticeKind, PageResponse};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{ConsentNoticePublished, ConsentNoticeServed};

use super::convert::{ActorJson, instant};
use super::{Caller, ConsentApi, page_cursor, page_size, page_token};
use crate::domain::{locale_chain, validate_keys, validate_locale, validate_text, validate_url};
use crate::receipts::sha256_hex;
use crate::store::notices::{self as store, NewNotice, NewServed, NoticeRow};

/// Clock skew tolerated on instants a client supplies.
const SKEW: Duration = Duration::seconds(60);

/// The SHA-256 cited by records and receipts: over the title, a blank line and the body.
pub fn content_sha256(title: &str, body: &str) -> String {
    sha256_hex(format!("{title}\n\n{body}").as_bytes())
}

fn kind(value: i32, field: &str) -> ServiceResult<NoticeKind> {
    NoticeKind::try_from(value)
        .ok()
        .filter(|k| *k != NoticeKind::Unspecified)
        .ok_or_else(|| ServiceError::invalid(field, "is required"))
}

/// The proto form of a notice.
pub fn notice_to_proto(n: &NoticeRow) -> Notice {
    Notice {
        notice_id: n.id.to_string(),
        kind: n.kind,
        locale: n.locale.clone(),
        version: n.version,
        title: n.title.clone(),
        body: n.body.clone(),
        url: n.url.clone(),
        content_sha256: n.content_sha256.clone(),
        purpose_keys: n.purpose_keys.clone(),
        effective_at: Some(timestamp(n.effective_at)),
        published_at: Some(timestamp(n.published_at)),
        published_by: n
            .published_by
            .as_ref()
            .and_then(|a| serde_json::from_value::<ActorJson>(a.0.clone()).ok())
            .map(Actor::from),
    }
}

/// A notice id from a request: a UUID, else NOT_FOUND like any unknown id.
pub fn notice_id(value: &str, field: &str) -> ServiceResult<Uuid> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| ServiceError::NotFound("notice".into()))
}

impl ConsentApi {
    pub(super) async fn publish_notice_impl(
        &self,
        caller: &Caller,
        request: PublishNoticeRequest,
    ) -> ServiceResult<PublishNoticeResponse> {
        let kind = kind(request.kind, "kind")?;
        let locale = validate_locale(&request.locale)
            .map_err(|reason| ServiceError::invalid("locale", reason))?;
        if request.title.trim().is_empty() {
            return Err(ServiceError::invalid("title", "must not be empty"));
        }
        validate_text("title", &request.title, 500)?;
        if request.body.trim().is_empty() {
            return Err(ServiceError::invalid("body", "must not be empty"));
        }
        validate_text("body", &request.body, 256 * 1024)?;
        validate_url("url", &request.url)?;
        validate_keys("purpose_keys", &request.purpose_keys, 64)?;
        let effective_at = instant(request.effective_at.as_ref(), "effective_at")?;
        if effective_at.is_some_and(|at| at < OffsetDateTime::now_utc() - SKEW) {
            return Err(ServiceError::invalid(
                "effective_at",
                "must not be in the past: published notices never change history",
            ));
        }
        let tenant = caller.tenant.as_uuid();
        let purposes = self.check.purposes(tenant).await?;
        if let Some(key) = request
            .purpose_keys
            .iter()
            .find(|k| !purposes.by_key.contains_key(*k))
        {
            return Err(ServiceError::NotFound(format!("purpose {key}")));
        }
        let sha = content_sha256(&request.title, &request.body);
        let actor = serde_json::to_value(ActorJson::from(&caller.actor()))
            .map_err(ServiceError::internal)?;
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let row = store::publish(
            &mut tx,
            tenant,
            &NewNotice {
                kind: kind as i32,
                locale: &locale,
                title: &request.title,
                body: &request.body,
                url: &request.url,
                content_sha256: &sha,
                purpose_keys: &request.purpose_keys,
                effective_at,
                published_by: actor,
            },
        )
        .await?;
        let event = ConsentNoticePublished {
            notice_id: row.id.to_string(),
            kind: row.kind,
            locale: row.locale.clone(),
            version: row.version,
            content_sha256: row.content_sha256.clone(),
            effective_at: Some(timestamp(row.effective_at)),
        };
        self.emit(
            &mut tx,
            &caller.context(None),
            Payload::ConsentNoticePublished(event),
        )
        .await?;
        tx.commit().await?;
        self.relay.notify();
        Ok(PublishNoticeResponse {
            notice: Some(notice_to_proto(&row)),
        })
    }

    pub(super) async fn get_notice_impl(
        &self,
        caller: &Caller,
        request: GetNoticeRequest,
    ) -> ServiceResult<GetNoticeResponse> {
        let kind = kind(request.kind, "kind")?;
        if request.version < 0 {
            return Err(ServiceError::invalid("version", "must not be negative"));
        }
        let tenant = caller.tenant.as_uuid();
        let fallback = self.fallback_locale(tenant).await?;
        let requested = if request.locale.is_empty() {
            fallback.clone()
        } else {
            validate_locale(&request.locale)
                .map_err(|reason| ServiceError::invalid("locale", reason))?
        };
        let chain = locale_chain(&requested, &fallback);
        let row = store::find(&self.pool, tenant, kind as i32, &chain, request.version)
            .await?
            .ok_or_else(|| ServiceError::NotFound("notice".into()))?;
        Ok(GetNoticeResponse {
            fallback_used: row.locale != requested,
            notice: Some(notice_to_proto(&row)),
        })
    }

    /// The tenant's locale of last resort.
    async fn fallback_locale(&self, tenant: Uuid) -> ServiceResult<String> {
        let controller = self.check.purposes(tenant).await?.controller.clone();
        Ok(if controller.default_locale.is_empty() {
            self.default_locale.clone()
        } else {
            controller.default_locale
        })
    }

    pub(super) async fn list_notices_impl(
        &self,
        caller: &Caller,
        request: ListNoticeVersionsRequest,
    ) -> ServiceResult<ListNoticeVersionsResponse> {
        let kind = kind(request.kind, "kind")?;
        let locale = if request.locale.is_empty() {
            None
        } else {
            Some(
                validate_locale(&request.locale)
                    .map_err(|reason| ServiceError::invalid("locale", reason))?,
            )
        };
        let limit = page_size(request.page.as_ref())?;
        let after = page_cursor(request.page.as_ref())?
            .map(|c| Uuid::parse_str(&c))
            .transpose()
            .map_err(|_| {
                ServiceError::invalid("page.page_token", "is not a token from this api")
            })?;
        let mut rows = store::list(
            &self.pool,
            caller.tenant.as_uuid(),
            kind as i32,
            locale.as_deref(),
            after,
            limit + 1,
        )
        .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if more => page_token(&last.id.to_string()),
            _ => String::new(),
        };
        Ok(ListNoticeVersionsResponse {
            notices: rows.iter().map(notice_to_proto).collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        })
    }

    pub(super) async fn notice_served_impl(
        &self,
        caller: &Caller,
        request: RecordNoticeServedRequest,
    ) -> ServiceResult<RecordNoticeServedResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        let id = notice_id(&request.notice_id, "notice_id")?;
        CollectionMethod::try_from(request.channel)
            .ok()
            .filter(|c| *c != CollectionMethod::Unspecified)
            .ok_or_else(|| ServiceError::invalid("channel", "is required"))?;
        if !request.conversation_id.is_empty() {
            request
                .conversation_id
                .parse::<ConversationId>()
                .map_err(|e| ServiceError::invalid("conversation_id", e.to_string()))?;
        }
        let now = crate::domain::now();
        let served_at = instant(request.served_at.as_ref(), "served_at")?.unwrap_or(now);
        if served_at > now + SKEW {
            return Err(ServiceError::invalid(
                "served_at",
                "must not be in the future",
            ));
        }
        let tenant = caller.tenant.as_uuid();
        let notice = store::by_id(&self.pool, tenant, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("notice".into()))?;
        if notice.kind == NoticeKind::AiDisclosure as i32 && request.conversation_id.is_empty() {
            return Err(ServiceError::invalid(
                "conversation_id",
                "is required for the ai disclosure, which is due per conversation",
            ));
        }
        let served_id = Uuid::now_v7();
        let mut tx = veil_core::db::begin(&self.pool).await?;
        store::insert_served(
            &mut *tx,
            tenant,
            &NewServed {
                id: served_id,
                subject_ref: subject.as_str(),
                notice_id: id,
                conversation_id: &request.conversation_id,
                channel: request.channel,
                served_at,
            },
        )
        .await?;
        let event = ConsentNoticeServed {
            notice_id: id.to_string(),
            kind: notice.kind,
            locale: notice.locale.clone(),
            version: notice.version,
            conversation_id: request.conversation_id.clone(),
            channel: request.channel,
        };
        self.emit(
            &mut tx,
            &caller.context(Some(&subject)),
            Payload::ConsentNoticeServed(event),
        )
        .await?;
        tx.commit().await?;
        self.relay.notify();
        Ok(RecordNoticeServedResponse {
            served_id: served_id.to_string(),
            subject_ref: subject.as_str().to_string(),
        })
    }
}
