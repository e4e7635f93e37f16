//! In-chat privacy commands: detected in user messages, and acted on at once where the
//! law wants it easy (withdrawing consent, opting out) or where the tenant lets Veil act
//! (data-subject requests to retention). Otherwise the bot is asked to confirm.

use veil_proto::common::v1::{CollectionMethod, PreferenceSignalType, RequestType};
use veil_proto::consent::v1::{SetPreferenceSignalRequest, WithdrawConsentRequest};
use veil_proto::events::v1::GatewayPrivacyCommandDetected;
use veil_proto::gateway::v1::{MessageContext, PrivacyCommand, PrivacyCommandAction};
use veil_proto::retention::v1::{RequestChannel, SubmitRequestRequest};

use super::policies::TenantPolicy;
use super::{Call, PipelineApi};
use crate::commands::{CommandKind, DetectedCommand, suggested_reply, verification_reply};

/// Detections below this confidence are only reported, never acted on.
const ACT_CONFIDENCE: f32 = 0.75;

/// The subject a command is about.
pub struct CommandSubject<'a> {
    pub subject_id: &'a str,
    pub subject_ref: &'a veil_core::types::SubjectRef,
    pub locale: &'a str,
    pub jurisdiction: i32,
}

impl<'a> CommandSubject<'a> {
    /// The subject of a message with `context`.
    pub fn of(context: &'a MessageContext, subject_ref: &'a veil_core::types::SubjectRef) -> Self {
        Self {
            subject_id: &context.subject_id,
            subject_ref,
            locale: &context.locale,
            jurisdiction: context.jurisdiction,
        }
    }
}

impl PipelineApi {
    /// Detects a command in a user message and applies what may be applied now; returns
    /// the API answer and the event payload (without the message id, set by the caller).
    pub(super) async fn privacy_command(
        &self,
        call: &Call,
        text: &str,
        subject: &CommandSubject<'_>,
        policy: &TenantPolicy,
    ) -> Option<(PrivacyCommand, GatewayPrivacyCommandDetected)> {
        if !policy.proto.detect_privacy_commands {
            return None;
        }
        let detected = self.detector.detect(text, subject.locale)?;
        let mut command = PrivacyCommand {
            command_type: detected.kind.to_proto(),
            language: detected.language.to_string(),
            confidence: detected.confidence,
            purposes: detected.purposes.clone(),
            action: PrivacyCommandAction::ConfirmationNeeded as i32,
            suggested_reply: suggested_reply(detected.kind, detected.language).to_string(),
            ..Default::default()
        };
        if detected.confidence >= ACT_CONFIDENCE {
            self.act(call, &detected, subject, policy, &mut command)
                .await;
        }
        let event = GatewayPrivacyCommandDetected {
            command_type: command.command_type,
            language: command.language.clone(),
            confidence: command.confidence,
            purposes: command.purposes.clone(),
            request_id: command.request_id.clone(),
            withdrawn_purposes: command.withdrawn_purposes.clone(),
            ..Default::default()
        };
        Some((command, event))
    }

    /// Applies the command; a failure leaves it as "confirmation needed" (logged, never
    /// failing the message).
    async fn act(
        &self,
        call: &Call,
        detected: &DetectedCommand,
        subject: &CommandSubject<'_>,
        policy: &TenantPolicy,
        command: &mut PrivacyCommand,
    ) {
        let result = match detected.kind {
            CommandKind::WithdrawConsent => self.withdraw(call, detected, subject, command).await,
            CommandKind::OptOutAiTraining => {
                self.signal(
                    call,
                    subject,
                    PreferenceSignalType::OptOutAiTraining,
                    command,
                )
                .await
            }
            CommandKind::OptOutSale => {
                self.signal(call, subject, PreferenceSignalType::DoNotSell, command)
                    .await
            }
            CommandKind::LimitSensitive => {
                self.signal(call, subject, PreferenceSignalType::LimitSensitive, command)
                    .await
            }
            // An erasure is submitted only once the turn asking for it is stored (see
            // `erase_after_store`), so that the erasure also removes that turn.
            CommandKind::Erase => Ok(()),
            kind if kind.is_data_subject_request() && policy.proto.auto_act_on_privacy_commands => {
                self.submit(call, kind, &detected.purposes, subject, policy, command)
                    .await
            }
            _ => Ok(()),
        };
        if let Err(status) = result {
            // Retention may not accept requests yet (UNIMPLEMENTED): the detected-command
            // event then stands as the pending request.
            tracing::warn!(code = ?status.code(), kind = detected.kind.as_str(), "privacy command not applied");
            command.action = PrivacyCommandAction::ConfirmationNeeded as i32;
        }
    }

    async fn withdraw(
        &self,
        call: &Call,
        detected: &DetectedCommand,
        subject: &CommandSubject<'_>,
        command: &mut PrivacyCommand,
    ) -> Result<(), tonic::Status> {
        let request = self.clients.request(
            "consent",
            &call.principal,
            WithdrawConsentRequest {
                subject_id: subject.subject_id.to_string(),
                purpose_keys: detected.purposes.clone(),
                collection_method: CollectionMethod::Chat as i32,
                language: detected.language.to_string(),
                ..Default::default()
            },
        )?;
        let response = self
            .clients
            .consent()
            .withdraw_consent(request)
            .await?
            .into_inner();
        // This replica answers the very next check from consent, not from its cache.
        self.consent_cache
            .invalidate(call.tenant, subject.subject_ref.as_str());
        command.action = PrivacyCommandAction::ConsentWithdrawn as i32;
        command.withdrawn_purposes = response
            .records
            .iter()
            .map(|r| r.purpose_key.clone())
            .collect();
        command.receipt_id = response.receipt.map(|r| r.receipt_id).unwrap_or_default();
        Ok(())
    }

    async fn signal(
        &self,
        call: &Call,
        subject: &CommandSubject<'_>,
        signal: PreferenceSignalType,
        command: &mut PrivacyCommand,
    ) -> Result<(), tonic::Status> {
        let request = self.clients.request(
            "consent",
            &call.principal,
            SetPreferenceSignalRequest {
                subject_id: subject.subject_id.to_string(),
                signal: signal as i32,
                enabled: true,
                source: CollectionMethod::Chat as i32,
                observed_at: None,
            },
        )?;
        self.clients
            .consent()
            .set_preference_signal(request)
            .await?;
        self.consent_cache
            .invalidate(call.tenant, subject.subject_ref.as_str());
        command.action = PrivacyCommandAction::PreferenceRecorded as i32;
        Ok(())
    }

    /// Submits the erasure an in-chat command asked for, after the caller stored the turn:
    /// submitted earlier, the saga could erase the subject before this turn's commit and
    /// the turn asking for erasure would outlive it. The request id goes into the answer;
    /// the turn's `privacy_command_detected` event, written with the turn, has none, and
    /// retention's `request_received` event carries the same API request id.
    pub(super) async fn erase_after_store(
        &self,
        call: &Call,
        subject: &CommandSubject<'_>,
        policy: &TenantPolicy,
        command: &mut PrivacyCommand,
    ) {
        if !acts_after_store(Some(command), policy) {
            return;
        }
        let purposes = command.purposes.clone();
        if let Err(status) = self
            .submit(
                call,
                CommandKind::Erase,
                &purposes,
                subject,
                policy,
                command,
            )
            .await
        {
            tracing::warn!(code = ?status.code(), kind = CommandKind::Erase.as_str(), "privacy command not applied");
            command.action = PrivacyCommandAction::ConfirmationNeeded as i32;
        }
    }

    /// Does for a retry what a keyed call left undone after its turn, having died before
    /// (see `Replayed::unfinished`): submits the in-chat erasure its `command` asked for,
    /// as the tenant's policy now stands. Retention finds the request again if the first
    /// call had submitted it (an open request of the subject and type is returned, with a
    /// fresh verification code), so the erasure is asked for once either way.
    pub(super) async fn finish_after_store(
        &self,
        call: &Call,
        subject: &CommandSubject<'_>,
        command: Option<&mut PrivacyCommand>,
    ) {
        let Some(command) = command else {
            return;
        };
        match self.policies.get(&self.pool, call.tenant).await {
            Ok(policy) => {
                self.erase_after_store(call, subject, &policy, command)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%error, "the tenant's policy was not read; the command stays unapplied");
            }
        }
    }

    async fn submit(
        &self,
        call: &Call,
        kind: CommandKind,
        purposes: &[String],
        subject: &CommandSubject<'_>,
        policy: &TenantPolicy,
        command: &mut PrivacyCommand,
    ) -> Result<(), tonic::Status> {
        let request_type = match kind {
            CommandKind::Erase => RequestType::Erasure,
            CommandKind::Access => RequestType::Access,
            CommandKind::Export => RequestType::Portability,
            CommandKind::Rectify => RequestType::Rectification,
            CommandKind::Restrict => RequestType::Restriction,
            _ => RequestType::Objection,
        };
        let request = self.clients.request(
            "retention",
            &call.service(),
            SubmitRequestRequest {
                subject_id: subject.subject_id.to_string(),
                request_type: request_type as i32,
                channel: RequestChannel::Chat as i32,
                jurisdiction: subject.jurisdiction,
                locale: subject.locale.to_string(),
                purpose_keys: purposes.to_vec(),
                identity_verified: policy.proto.chat_identity_verified,
                idempotency_key: idempotency_key(&call.principal.request_id, request_type),
                ..Default::default()
            },
        )?;
        let response = self
            .clients
            .retention()
            .submit_request(request)
            .await?
            .into_inner();
        command.action = PrivacyCommandAction::RequestSubmitted as i32;
        command.request_id = response.request.map(|r| r.request_id).unwrap_or_default();
        // Without the code the request could never be verified: it goes to the bot only
        // (never into the command's event or a log), and the reply says what comes next.
        if let Some(challenge) = response.challenge {
            command.verification_code = challenge.code;
            command.verification_expires_at = challenge.expires_at;
            command.suggested_reply = format!(
                "{} {}",
                command.suggested_reply,
                verification_reply(&command.language)
            );
        }
        Ok(())
    }
}

/// Whether [`PipelineApi::erase_after_store`] acts on `command` (and so changes it once
/// the turn is stored).
pub(super) fn acts_after_store(command: Option<&PrivacyCommand>, policy: &TenantPolicy) -> bool {
    command.is_some_and(|command| {
        command.command_type == CommandKind::Erase.to_proto()
            && command.confidence >= ACT_CONFIDENCE
            && policy.proto.auto_act_on_privacy_commands
    })
}

/// Retention's idempotency key for a request opened from a chat message: a retried call
/// (same request id, e.g. a bot resending after a timeout) finds the request it opened
/// the first time instead of opening a second one. The request id is plain ASCII of at
/// most 64 characters, so the key stays short and carries nothing personal.
fn idempotency_key(request_id: &veil_core::types::RequestId, request_type: RequestType) -> String {
    format!("gateway-chat:{request_id}:{}", request_type.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_core::types::RequestId;

    #[test]
    fn a_retried_call_reuses_its_idempotency_key() {
        let first: RequestId = "0190c1b2-aaaa-7bbb-8ccc-123456789abc".parse().expect("id");
        let retried = first.clone();
        let other = RequestId::generate();
        let key = idempotency_key(&first, RequestType::Erasure);
        assert_eq!(key, idempotency_key(&retried, RequestType::Erasure));
        assert_ne!(key, idempotency_key(&other, RequestType::Erasure));
        assert_ne!(key, idempotency_key(&first, RequestType::Access));
        assert!(key.contains("0190c1b2-aaaa-7bbb-8ccc-123456789abc"));
    }
}
