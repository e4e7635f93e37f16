//! The consent step: one `CheckConsent` for the message's purposes, and the tenant's
//! fallback for every purpose that lacks consent.

use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{ConsentDecision, PurposeDecision, SubjectSelector, subject_selector};
use veil_proto::consent::v1::CheckConsentRequest;
use veil_proto::gateway::v1::{ConsentApplied, ConsentFallback};

use super::policies::TenantPolicy;
use super::{Call, PipelineApi};

/// What consent allows for one message.
#[derive(Default)]
pub struct ConsentOutcome {
    /// One entry per requested purpose.
    pub applied: Vec<ConsentApplied>,
    /// Purposes the message is processed for.
    pub effective: Vec<String>,
    /// Purposes dropped or refused.
    pub denied: Vec<String>,
    /// Redact every entity regardless of per-type operators.
    pub redact_all: bool,
    /// Keep the turn out of the transcript.
    pub do_not_store: bool,
}

impl PipelineApi {
    /// Checks consent for `purposes`; a purpose whose fallback is REJECT refuses the
    /// message with FAILED_PRECONDITION naming it.
    pub(super) async fn consent(
        &self,
        call: &Call,
        subject_ref: &SubjectRef,
        purposes: &[String],
        jurisdiction: i32,
        policy: &TenantPolicy,
    ) -> Result<ConsentOutcome, tonic::Status> {
        let mut outcome = ConsentOutcome::default();
        if purposes.is_empty() {
            return Ok(outcome);
        }
        let cached =
            self.consent_cache
                .get(call.tenant, subject_ref.as_str(), jurisdiction, purposes);
        let decisions = match cached {
            Some(decisions) => decisions,
            None => {
                let decisions = self
                    .check_consent(call, subject_ref, purposes, jurisdiction)
                    .await?;
                self.consent_cache
                    .put(call.tenant, subject_ref.as_str(), jurisdiction, &decisions);
                decisions
            }
        };
        for decision in decisions {
            let key = decision.purpose_key.clone();
            if decision.decision == ConsentDecision::Allowed as i32 {
                outcome.effective.push(key);
                outcome.applied.push(ConsentApplied {
                    decision: Some(decision),
                    fallback: ConsentFallback::Unspecified as i32,
                });
                continue;
            }
            let fallback = policy.fallback_for(&key);
            match fallback {
                ConsentFallback::Reject => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "no consent for purpose {key}"
                    ))
                    .into());
                }
                ConsentFallback::RedactAll => outcome.redact_all = true,
                ConsentFallback::DoNotStore => outcome.do_not_store = true,
                _ => {}
            }
            outcome.denied.push(key);
            outcome.applied.push(ConsentApplied {
                decision: Some(decision),
                fallback: fallback as i32,
            });
        }
        Ok(outcome)
    }

    async fn check_consent(
        &self,
        call: &Call,
        subject_ref: &SubjectRef,
        purposes: &[String],
        jurisdiction: i32,
    ) -> Result<Vec<PurposeDecision>, tonic::Status> {
        let check = CheckConsentRequest {
            subject: Some(SubjectSelector {
                subject: Some(subject_selector::Subject::SubjectRef(
                    subject_ref.as_str().to_string(),
                )),
            }),
            purpose_keys: purposes.to_vec(),
            jurisdiction,
        };
        let request = self.clients.request("consent", &call.principal, check)?;
        Ok(self
            .clients
            .consent()
            .check_consent(request)
            .await?
            .into_inner()
            .decisions)
    }
}
