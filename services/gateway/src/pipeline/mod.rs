//! `veil.gateway.v1.PrivacyGatewayService`: the message pipeline of ARCHITECTURE.md.
//!
//! Each RPC authenticates the bot, then runs its part: [`process`] (consent, detection,
//! minimization, vault tokens, transcript and event in one transaction, privacy
//! commands), [`restore_text`] (originals back for the same subject).

mod commands;
mod consent;
mod consent_cache;
mod context;
mod lookups;
mod map_hints;
mod notices;
mod persist;
mod policies;
mod process;
mod replays;
mod restore_stream;
mod restore_text;
mod stream;
mod stream_claims;
mod stream_replay;
mod transcript;
mod turn_writer;

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use veil_core::app::Foundation;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, OutboxWriter};
use veil_core::rpc_layer::CallId;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, TenantId};
use veil_core::validate::validate_plain_id as validate_conversation_id;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::privacy_gateway_service_server::PrivacyGatewayService;
use veil_proto::gateway::v1::{
    GetNoticesRequest, GetNoticesResponse, GetTranscriptRequest, GetTranscriptResponse,
    ProcessMessageRequest, ProcessMessageResponse, RedactStreamRequest, RedactStreamResponse,
    RestoreStreamRequest, RestoreStreamResponse, RestoreTextRequest, RestoreTextResponse,
};

use crate::apikeys::{Authenticator, Caller};
use crate::clients::Clients;
use crate::commands::CommandDetector;
use crate::engine::Engine;
use crate::limits::RateLimiter;

pub use policies::PolicyCache;

/// Connections the per-message statements need: one per batch in flight (turn writes,
/// turn state reads).
pub const HOT_CONNECTIONS: u32 = (turn_writer::IN_FLIGHT + lookups::IN_FLIGHT) as u32;

/// How often expired answers of idempotent messages are cleared.
const REPLAY_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Largest accepted message text.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Implementation of the message pipeline (cheap to clone: streams run in their own task).
#[derive(Clone)]
pub struct PipelineApi {
    pool: sqlx::PgPool,
    events: EventsConfig,
    /// Group commit of events that go with no other write (restores).
    outbox: OutboxWriter,
    turns: turn_writer::TurnWriter,
    lookups: lookups::Lookups,
    map_hints: Arc<map_hints::MapHints>,
    auth: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    clients: Clients,
    subjects: SubjectKeys,
    engine: Arc<Engine>,
    policies: Arc<PolicyCache>,
    notices: Arc<notices::NoticeCache>,
    consent_cache: Arc<consent_cache::ConsentCache>,
    detector: Arc<CommandDetector>,
    replays: replays::Replays,
    /// How far the replicas' clocks may be apart (see [`Self::erased_after`]).
    clock_skew: std::time::Duration,
}

/// Everything shared by the pipeline's services.
pub struct PipelineParts {
    /// Connections with generic plans for the per-message statements.
    pub hot_pool: sqlx::PgPool,
    /// Group commit of the events that go with no other write.
    pub outbox: OutboxWriter,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    pub clients: Clients,
    pub subjects: SubjectKeys,
    pub engine: Arc<Engine>,
    /// Compiled tenant policies, shared with the admin API.
    pub policies: Arc<PolicyCache>,
    pub detector: Arc<CommandDetector>,
    /// How long the answer of a message with an idempotency key is kept for its retries.
    pub idempotency_window: std::time::Duration,
    /// How far the replicas' clocks may be apart, for erasures (`service.clock_skew_ms`).
    pub clock_skew: std::time::Duration,
}

impl PipelineApi {
    pub fn new(foundation: &Foundation, parts: PipelineParts) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            outbox: parts.outbox,
            turns: turn_writer::TurnWriter::spawn(parts.hot_pool.clone(), foundation.relay.clone()),
            lookups: lookups::Lookups::spawn(parts.hot_pool),
            map_hints: Arc::default(),
            auth: parts.auth,
            limiter: parts.limiter,
            clients: parts.clients,
            subjects: parts.subjects.clone(),
            policies: parts.policies,
            replays: replays::Replays::new(
                foundation.pool.clone(),
                parts.subjects.clone(),
                parts.idempotency_window,
            ),
            notices: Arc::default(),
            consent_cache: Arc::default(),
            engine: parts.engine,
            detector: parts.detector,
            clock_skew: parts.clock_skew,
        }
    }

    /// The time after which an erasure of the call's subject refuses its turn: the
    /// call's start by this replica's clock, less the skew allowed between replicas (the
    /// erasure's time is the erasing replica's). A message begun within the skew after
    /// an erasure is refused too: it cannot be told from one begun before.
    fn erased_after(&self, call: &Call) -> time::OffsetDateTime {
        call.started - self.clock_skew
    }

    /// Keeps the consent cache in step with `consent.*` events from every replica.
    pub fn follow_consent_events(&self, foundation: &mut Foundation) {
        let cache = self.consent_cache.clone();
        let nats = foundation.nats.clone();
        let subject = format!("{}.consent.>", foundation.events.subject_prefix);
        foundation.spawn_task("consent cache", move |token| {
            cache.follow(nats, subject, token)
        });
    }

    /// Clears the answers of idempotent messages once their window has passed.
    pub fn purge_replays(&self, foundation: &mut Foundation) {
        let replays = self.replays.clone();
        foundation.spawn_every("idempotent answers", REPLAY_PURGE_EVERY, move || {
            let replays = replays.clone();
            async move {
                if let Err(error) = replays.purge_expired().await {
                    tracing::warn!(%error, "expired idempotent answers not cleared");
                }
            }
        });
    }

    /// Keeps the API key and policy caches in step with `gateway.api_key_revoked` and
    /// `gateway.policy_changed` events from every replica (each cache's TTL bounds the
    /// staleness when an event is missed).
    pub fn follow_gateway_events(&self, foundation: &mut Foundation) {
        let nats = foundation.nats.clone();
        let prefix = foundation.events.subject_prefix.clone();
        let auth = self.auth.clone();
        let subject = format!("{prefix}.gateway.api_key_revoked");
        let revoked = nats.clone();
        foundation.spawn_task("api key cache", move |token| {
            consent_cache::follow_events(revoked, subject, token, move |event| {
                if let Some(Payload::GatewayApiKeyRevoked(revoked)) = &event.payload {
                    auth.forget_key(&revoked.key_id);
                }
            })
        });
        let policies = self.policies.clone();
        let subject = format!("{prefix}.gateway.policy_changed");
        foundation.spawn_task("policy cache", move |token| {
            consent_cache::follow_events(nats, subject, token, move |event| {
                if let Ok(tenant) = event.tenant_id.parse::<TenantId>() {
                    policies.invalidate(tenant);
                }
            })
        });
    }

    /// Authenticates a bot call of `method` and takes a rate-limit token.
    async fn begin<T>(&self, request: &Request<T>, method: &str) -> Result<Call, Status> {
        self.begin_as(request, method, &[Role::Bot]).await
    }

    /// Authenticates a call of `method` by one of `roles` and takes a rate-limit token.
    async fn begin_as<T>(
        &self,
        request: &Request<T>,
        method: &str,
        roles: &[Role],
    ) -> Result<Call, Status> {
        let started = time::OffsetDateTime::now_utc();
        let peer = self.auth.proxies().peer_of(request);
        let caller = self
            .auth
            .authenticate_call(request.metadata(), peer, method)
            .await?;
        self.auth
            .require_roles(&caller, peer, method, roles)
            .await?;
        self.limiter
            .admit(&self.auth, &caller, peer, method)
            .await?;
        let tenant = caller.tenant()?;
        let request_id = CallId::request_id(request.extensions().get::<CallId>());
        // The same principal as the proxy gives this caller: a data-subject request the
        // pipeline opens from the chat belongs to the bot, which then follows it up
        // (GetRequest, VerifyRequest) through the proxy.
        let principal = Principal {
            tenant: Some(tenant),
            principal_id: caller.key_id.parse().map_err(ServiceError::internal)?,
            roles: vec![Role::Bot],
            request_id,
        };
        Ok(Call {
            caller,
            tenant,
            principal,
            started,
        })
    }
}

/// An authenticated pipeline call.
struct Call {
    caller: Caller,
    tenant: TenantId,
    /// The bot acting through the gateway, for calls to consent and retention.
    principal: Principal,
    /// When the call began (this replica's clock): what it reads before is its basis.
    started: time::OffsetDateTime,
}

impl Call {
    /// The gateway itself acting for the bot (vault tokenization and restore).
    fn service(&self) -> Principal {
        Principal {
            roles: vec![Role::Service],
            ..self.principal.clone()
        }
    }
}

/// The longest a redacted text may be: four times the longest message. Replacements of
/// up to 256 characters on many short entities could otherwise store megabytes per
/// message.
const MAX_REDACTED_BYTES: usize = 4 * MAX_TEXT_BYTES;

/// FAILED_PRECONDITION when the tenant's policy made `redacted` longer than
/// [`MAX_REDACTED_BYTES`].
fn check_redacted_size(redacted: &str) -> Result<(), ServiceError> {
    if redacted.len() > MAX_REDACTED_BYTES {
        return Err(ServiceError::FailedPrecondition(
            "the policy's replacements make the redacted text longer than 256 KiB".into(),
        ));
    }
    Ok(())
}

fn validate_text(field: &str, text: &str, allow_empty: bool) -> Result<(), ServiceError> {
    if text.is_empty() && !allow_empty {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ServiceError::invalid(field, "must be at most 64 KiB"));
    }
    Ok(())
}

#[tonic::async_trait]
impl PrivacyGatewayService for PipelineApi {
    async fn process_message(
        &self,
        request: Request<ProcessMessageRequest>,
    ) -> Result<Response<ProcessMessageResponse>, Status> {
        let call = self
            .begin(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/ProcessMessage",
            )
            .await?;
        let response = self.process(call, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn get_notices(
        &self,
        request: Request<GetNoticesRequest>,
    ) -> Result<Response<GetNoticesResponse>, Status> {
        let call = self
            .begin(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/GetNotices",
            )
            .await?;
        let response = self.get_notices(&call, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn get_transcript(
        &self,
        request: Request<GetTranscriptRequest>,
    ) -> Result<Response<GetTranscriptResponse>, Status> {
        let call = self
            .begin_as(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/GetTranscript",
                &[Role::Agent, Role::PrivacyOfficer, Role::Bot],
            )
            .await?;
        let response = self.get_transcript(&call, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn restore_text(
        &self,
        request: Request<RestoreTextRequest>,
    ) -> Result<Response<RestoreTextResponse>, Status> {
        let call = self
            .begin(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/RestoreText",
            )
            .await?;
        let response = self.restore_text(&call, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn redact_stream(
        &self,
        request: Request<Streaming<RedactStreamRequest>>,
    ) -> Result<Response<stream::ResponseStream<RedactStreamResponse>>, Status> {
        let call = self
            .begin(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/RedactStream",
            )
            .await?;
        let api = self.clone();
        let input = request.into_inner();
        Ok(Response::new(stream::spawn_stream(
            move |sender| async move { api.redact_stream(call, input, sender).await },
        )))
    }

    async fn restore_stream(
        &self,
        request: Request<Streaming<RestoreStreamRequest>>,
    ) -> Result<Response<stream::ResponseStream<RestoreStreamResponse>>, Status> {
        let call = self
            .begin(
                &request,
                "/veil.gateway.v1.PrivacyGatewayService/RestoreStream",
            )
            .await?;
        let api = self.clone();
        let input = request.into_inner();
        Ok(Response::new(stream::spawn_stream(
            move |sender| async move { api.restore_stream(call, input, sender).await },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_are_checked() {
        assert!(validate_conversation_id("c", "conv-1:a.b_c").is_ok());
        assert!(validate_conversation_id("c", "").is_err());
        assert!(validate_conversation_id("c", "has space").is_err());
    }

    #[test]
    fn texts_are_bounded() {
        assert!(validate_text("text", "", false).is_err());
        assert!(validate_text("text", "", true).is_ok());
        assert!(validate_text("text", &"x".repeat(MAX_TEXT_BYTES + 1), false).is_err());
    }
}
