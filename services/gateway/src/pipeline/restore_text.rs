//! `RestoreText`: the originals back into an LLM reply, for the same conversation and
//! subject only; audited as `gateway.text_restored` with counts, never values.

use veil_core::emit::{EventContext, emit_alone};
use veil_core::error::ServiceError;
use veil_core::subjects::validate_subject_id;
use veil_proto::events::v1::GatewayTextRestored;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{RestoreTextRequest, RestoreTextResponse};

use super::{Call, PipelineApi, validate_conversation_id, validate_text};
use crate::admin::actor;
use crate::restore::Restorer;

impl PipelineApi {
    pub(super) async fn restore_text(
        &self,
        call: &Call,
        request: RestoreTextRequest,
    ) -> Result<RestoreTextResponse, tonic::Status> {
        validate_conversation_id("conversation_id", &request.conversation_id)?;
        validate_subject_id("subject_id", &request.subject_id)?;
        validate_text("text", &request.text, true)?;
        let subject_ref = self.subjects.subject_ref(&call.tenant, &request.subject_id);
        // GDPR Art. 18: originals are not put back while the subject is restricted (read
        // with the rows of the placeholders the text names).
        let restorer = Restorer::load_named(
            &self.pool,
            &self.clients,
            &call.service(),
            (call.tenant, &request.conversation_id, subject_ref.as_str()),
            &veil_pii::placeholders_in(&request.text),
        )
        .await?;
        let (text, counts, unknown) = restorer.restore(&request.text)?;
        let restored_count: i64 = counts.values().sum();
        let context = EventContext {
            tenant: Some(call.tenant),
            subject_ref: Some(subject_ref),
            actor: Some(actor(&call.caller)),
            request_id: call.principal.request_id.to_string(),
        };
        emit_alone(
            &self.outbox,
            &self.events,
            &context,
            Payload::GatewayTextRestored(GatewayTextRestored {
                conversation_id: request.conversation_id,
                entity_counts: counts.into_iter().collect(),
                unknown_placeholders: i64::try_from(unknown.len()).unwrap_or(i64::MAX),
                streamed: false,
            }),
        )
        .await
        .map_err(ServiceError::internal)?;
        Ok(RestoreTextResponse {
            text,
            restored_count: i32::try_from(restored_count).unwrap_or(i32::MAX),
            unknown_placeholders: unknown,
        })
    }
}
