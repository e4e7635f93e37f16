//! gRPC edge of the consent service: validates requests into domain values, runs the
//! handlers (one file per area) and maps errors through `ServiceError`.

mod check;
mod consent;
mod convert;
mod dsr;
mod notices;
mod purge;
mod purposes;
mod signals;
mod writes;

use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::emit::EventContext;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{Actor, PageRequest, SubjectSelector};
use veil_proto::consent::v1::consent_service_server::ConsentService;
use veil_proto::consent::v1::*;
use veil_proto::events::v1::event::Payload;

use crate::cache::DecisionCache;
use crate::invalidation::Invalidator;
use crate::receipts::ReceiptKeys;

pub use check::CheckPath;

/// Every role that acts inside a tenant ("any tenant role" in the proto comments).
const ANY_TENANT_ROLE: &[Role] = &[
    Role::Bot,
    Role::Agent,
    Role::PrivacyOfficer,
    Role::Auditor,
    Role::Admin,
    Role::Service,
];

/// Implementation of `veil.consent.v1.ConsentService`.
pub struct ConsentApi {
    pool: PgPool,
    events: EventsConfig,
    relay: RelayHandle,
    subjects: SubjectKeys,
    receipts: Arc<ReceiptKeys>,
    check: CheckPath,
    invalidator: Arc<Invalidator>,
    default_locale: String,
}

/// Everything the handlers share.
pub struct Parts {
    pub pool: PgPool,
    pub events: EventsConfig,
    pub relay: RelayHandle,
    pub subjects: SubjectKeys,
    pub receipts: Arc<ReceiptKeys>,
    pub cache: Arc<DecisionCache>,
    pub invalidator: Arc<Invalidator>,
    pub default_locale: String,
}

impl ConsentApi {
    /// The API over `parts`.
    pub fn new(parts: Parts) -> Self {
        Self {
            check: CheckPath::new(parts.pool.clone(), parts.cache),
            pool: parts.pool,
            events: parts.events,
            relay: parts.relay,
            subjects: parts.subjects,
            receipts: parts.receipts,
            invalidator: parts.invalidator,
            default_locale: parts.default_locale,
        }
    }

    /// The subject ref of a request's `subject_id` (validated; never stored raw).
    fn subject_of_id(&self, tenant: &TenantId, field: &str, id: &str) -> ServiceResult<SubjectRef> {
        validate_subject_id(field, id)?;
        Ok(self.subjects.subject_ref(tenant, id))
    }

    /// The subject ref named by a selector.
    fn subject_of(
        &self,
        tenant: &TenantId,
        selector: Option<&SubjectSelector>,
    ) -> ServiceResult<SubjectRef> {
        match selector.and_then(|s| s.subject.as_ref()) {
            Some(Subject::SubjectId(id)) => self.subject_of_id(tenant, "subject.subject_id", id),
            Some(Subject::SubjectRef(reference)) => reference
                .parse()
                .map_err(|_| ServiceError::invalid("subject.subject_ref", "must be 64 hex chars")),
            None => Err(ServiceError::invalid("subject", "is required")),
        }
    }

    /// Writes an event into the outbox inside the caller's transaction.
    async fn emit(
        &self,
        db: &mut PgConnection,
        context: &EventContext,
        payload: Payload,
    ) -> ServiceResult<()> {
        veil_core::emit::emit(&mut *db, &self.events, context, payload)
            .await
            .map_err(ServiceError::internal)?;
        Ok(())
    }
}

/// The verified caller of one RPC.
pub(crate) struct Caller {
    pub tenant: TenantId,
    pub principal: Principal,
}

impl Caller {
    /// Who acted, for records and events.
    pub fn actor(&self) -> Actor {
        // The principal's tenant is the caller's tenant (checked when the caller was made).
        veil_core::convert::principal_actor(&self.principal)
    }

    /// Event context for this caller, about `subject` if any.
    pub fn context(&self, subject: Option<&SubjectRef>) -> EventContext {
        EventContext {
            tenant: Some(self.tenant),
            subject_ref: subject.cloned(),
            actor: Some(self.actor()),
            request_id: self.principal.request_id.to_string(),
        }
    }
}

/// Checks the caller holds one of `roles` and is bound to a tenant.
fn caller<T>(request: &Request<T>, roles: &[Role]) -> Result<Caller, Status> {
    let principal = Principal::from_request(request)?;
    principal.require_any(roles)?;
    Ok(Caller {
        tenant: principal.tenant()?,
        principal: principal.clone(),
    })
}

/// Page size (default 50, at most 1000) of a page request.
fn page_size(page: Option<&PageRequest>) -> ServiceResult<i64> {
    match page.map(|p| p.page_size).unwrap_or(0) {
        0 => Ok(50),
        n if n < 0 => Err(ServiceError::invalid(
            "page.page_size",
            "must not be negative",
        )),
        n => Ok(i64::from(n.min(1000))),
    }
}

/// The cursor inside an opaque page token.
fn page_cursor(page: Option<&PageRequest>) -> ServiceResult<Option<String>> {
    let token = page.map(|p| p.page_token.as_str()).unwrap_or("");
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| ServiceError::invalid("page.page_token", "is not a token from this api"))
}

/// The opaque page token for a cursor.
fn page_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor)
}

type ExportStream =
    Pin<Box<dyn futures::Stream<Item = Result<ExportSubjectResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    async fn upsert_purpose(
        &self,
        request: Request<UpsertPurposeRequest>,
    ) -> Result<Response<UpsertPurposeResponse>, Status> {
        let caller = caller(&request, &[Role::Admin, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.upsert_purpose_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn list_purposes(
        &self,
        request: Request<ListPurposesRequest>,
    ) -> Result<Response<ListPurposesResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(
            self.list_purposes_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn upsert_recipient(
        &self,
        request: Request<UpsertRecipientRequest>,
    ) -> Result<Response<UpsertRecipientResponse>, Status> {
        let caller = caller(&request, &[Role::Admin, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.upsert_recipient_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn list_recipients(
        &self,
        request: Request<ListRecipientsRequest>,
    ) -> Result<Response<ListRecipientsResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(
            self.list_recipients_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn publish_notice(
        &self,
        request: Request<PublishNoticeRequest>,
    ) -> Result<Response<PublishNoticeResponse>, Status> {
        let caller = caller(&request, &[Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.publish_notice_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_notice(
        &self,
        request: Request<GetNoticeRequest>,
    ) -> Result<Response<GetNoticeResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(
            self.get_notice_impl(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_notice_versions(
        &self,
        request: Request<ListNoticeVersionsRequest>,
    ) -> Result<Response<ListNoticeVersionsResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(
            self.list_notices_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn record_notice_served(
        &self,
        request: Request<RecordNoticeServedRequest>,
    ) -> Result<Response<RecordNoticeServedResponse>, Status> {
        let caller = caller(&request, &[Role::Bot, Role::Service])?;
        Ok(Response::new(
            self.notice_served_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn record_consent(
        &self,
        request: Request<RecordConsentRequest>,
    ) -> Result<Response<RecordConsentResponse>, Status> {
        let caller = caller(&request, &[Role::Bot, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.record_consent_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn withdraw_consent(
        &self,
        request: Request<WithdrawConsentRequest>,
    ) -> Result<Response<WithdrawConsentResponse>, Status> {
        let caller = caller(&request, &[Role::Bot, Role::PrivacyOfficer, Role::Service])?;
        Ok(Response::new(
            self.withdraw_consent_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn set_preference_signal(
        &self,
        request: Request<SetPreferenceSignalRequest>,
    ) -> Result<Response<SetPreferenceSignalResponse>, Status> {
        // Service: retention applies opt-out and limit-sensitive requests (CCPA).
        let caller = caller(&request, &[Role::Bot, Role::PrivacyOfficer, Role::Service])?;
        Ok(Response::new(
            self.set_signal_impl(&caller, request.into_inner()).await?,
        ))
    }

    async fn check_consent(
        &self,
        request: Request<CheckConsentRequest>,
    ) -> Result<Response<CheckConsentResponse>, Status> {
        let caller = caller(&request, &[Role::Bot, Role::Service, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.check_consent_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_consent_state(
        &self,
        request: Request<GetConsentStateRequest>,
    ) -> Result<Response<GetConsentStateResponse>, Status> {
        let caller = caller(&request, &[Role::Bot, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.consent_state_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let caller = caller(&request, &[Role::PrivacyOfficer, Role::Auditor])?;
        Ok(Response::new(
            self.history_impl(&caller, request.into_inner()).await?,
        ))
    }

    async fn verify_receipt(
        &self,
        request: Request<VerifyReceiptRequest>,
    ) -> Result<Response<VerifyReceiptResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(
            self.verify_receipt_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_receipt_keys(
        &self,
        request: Request<GetReceiptKeysRequest>,
    ) -> Result<Response<GetReceiptKeysResponse>, Status> {
        caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(GetReceiptKeysResponse {
            jwks_json: self.receipts.jwks(),
        }))
    }

    async fn export_subject(
        &self,
        request: Request<ExportSubjectRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let caller = caller(&request, &[Role::Service])?;
        let chunks = self.export_impl(&caller, request.into_inner()).await?;
        let stream = futures::stream::iter(chunks.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn erase_subject(
        &self,
        request: Request<EraseSubjectRequest>,
    ) -> Result<Response<EraseSubjectResponse>, Status> {
        let caller = caller(&request, &[Role::Service])?;
        Ok(Response::new(
            self.erase_impl(&caller, request.into_inner()).await?,
        ))
    }

    async fn purge(
        &self,
        request: Request<PurgeRequest>,
    ) -> Result<Response<PurgeResponse>, Status> {
        let caller = caller(&request, &[Role::Service])?;
        Ok(Response::new(
            self.purge_impl(&caller, request.into_inner()).await?,
        ))
    }

    async fn set_controller(
        &self,
        request: Request<SetControllerRequest>,
    ) -> Result<Response<SetControllerResponse>, Status> {
        let caller = caller(&request, &[Role::Admin, Role::PrivacyOfficer])?;
        Ok(Response::new(
            self.set_controller_impl(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_controller(
        &self,
        request: Request<GetControllerRequest>,
    ) -> Result<Response<GetControllerResponse>, Status> {
        let caller = caller(&request, ANY_TENANT_ROLE)?;
        Ok(Response::new(self.get_controller_impl(&caller).await?))
    }
}
