//! `GetNotices` and `GetTranscript`: what the subject still has to be shown, and the
//! redacted turns of a conversation for support agents (never raw text).

use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::subjects::validate_subject_id;
use veil_core::types::Role;
use veil_proto::common::v1::PageResponse;
use veil_proto::gateway::v1::{
    GetNoticesRequest, GetNoticesResponse, GetTranscriptRequest, GetTranscriptResponse,
    TranscriptTurn,
};

use super::notices::NoticeSubject;
use super::{Call, PipelineApi, validate_conversation_id};
use crate::store;

/// Turns per page when the caller names no size, and the most it may ask for.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

impl PipelineApi {
    pub(super) async fn get_notices(
        &self,
        call: &Call,
        request: GetNoticesRequest,
    ) -> Result<GetNoticesResponse, tonic::Status> {
        validate_subject_id("subject_id", &request.subject_id)?;
        let locale = if request.locale.is_empty() {
            String::new()
        } else {
            veil_core::validate::validate_locale(&request.locale)
                .map_err(|reason| ServiceError::invalid("locale", reason))?
        };
        let conversation = if request.conversation_id.is_empty() {
            None
        } else {
            validate_conversation_id("conversation_id", &request.conversation_id)?;
            Some(request.conversation_id.as_str())
        };
        let subject = NoticeSubject {
            subject_id: &request.subject_id,
            locale: &locale,
            jurisdiction: request.jurisdiction,
            conversation,
        };
        Ok(GetNoticesResponse {
            notices: self.notice_statuses(call, &subject).await?,
        })
    }

    pub(super) async fn get_transcript(
        &self,
        call: &Call,
        request: GetTranscriptRequest,
    ) -> Result<GetTranscriptResponse, tonic::Status> {
        validate_conversation_id("conversation_id", &request.conversation_id)?;
        let page = request.page.unwrap_or_default();
        let size = match i64::from(page.page_size) {
            0 => DEFAULT_PAGE,
            n if n < 0 => {
                return Err(ServiceError::invalid("page.page_size", "must not be negative").into());
            }
            n => n.min(MAX_PAGE),
        };
        let after: i64 = if page.page_token.is_empty() {
            -1
        } else {
            page.page_token.parse().map_err(|_| {
                ServiceError::invalid("page.page_token", "is not a token from this API")
            })?
        };
        let rows = store::turns(
            &self.pool,
            call.tenant.as_uuid(),
            &request.conversation_id,
            after,
            size + 1,
        )
        .await
        .map_err(ServiceError::from)?;
        // Another tenant's conversation looks exactly like one that does not exist.
        if rows.is_empty() && after < 0 {
            return Err(ServiceError::NotFound("conversation".into()).into());
        }
        let more = rows.len() as i64 > size;
        let subject_ref = rows
            .first()
            .map(|r| r.subject_ref.clone())
            .unwrap_or_default();
        // A restricted turn may only be stored (GDPR Art. 18): agents see that it exists,
        // in its place, but not its text; privacy officers, who handle the requests and
        // claims it is kept for, see the text too.
        let officer = call.caller.roles.contains(&Role::PrivacyOfficer);
        let turns: Vec<TranscriptTurn> = rows
            .into_iter()
            .take(usize::try_from(size).unwrap_or(usize::MAX))
            .map(|row| TranscriptTurn {
                message_id: row.message_id.to_string(),
                turn_index: row.turn_index,
                role: row.role,
                redacted_text: if row.restricted && !officer {
                    String::new()
                } else {
                    row.redacted_text
                },
                created_at: Some(timestamp(row.created_at)),
                restricted: row.restricted,
                ..Default::default()
            })
            .collect();
        let next_page_token = if more {
            turns
                .last()
                .map(|t| t.turn_index.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(GetTranscriptResponse {
            conversation_id: request.conversation_id,
            subject_ref,
            turns,
            page: Some(PageResponse { next_page_token }),
        })
    }
}
