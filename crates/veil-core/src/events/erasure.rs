//! The erasure saga's request as every data-holding service reads it: the one place that
//! decides whether a `retention.erasure_requested` event is addressed to a service and
//! which tenant and subject it names.

use prost::Message;
use veil_proto::common::v1::{Actor, ActorKind, VeilService};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;

use super::HandlerError;
use crate::emit::EventContext;
use crate::types::{SubjectRef, TenantId};

/// Why an erasure request cannot be acted on; permanent, so the message is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum ErasureRequestError {
    /// The payload is not an event envelope.
    #[error("erasure request does not decode")]
    Decode,
    /// The envelope names no valid tenant or subject ref.
    #[error("erasure request names no valid tenant or subject")]
    Target,
}

/// What one service must erase, and for which request.
#[derive(Debug, Clone)]
pub struct ErasureTarget {
    /// The tenant.
    pub tenant: TenantId,
    /// The subject.
    pub subject: SubjectRef,
    /// The data-subject request the erasure belongs to.
    pub request_id: String,
    /// The API request that started the saga, for the answer's envelope.
    pub api_request_id: String,
}

impl ErasureTarget {
    /// The context of the service's answer: the same tenant and subject, acted on by
    /// `veil-<service>` itself.
    pub fn answer_context(&self, service: &str) -> EventContext {
        EventContext {
            tenant: Some(self.tenant),
            subject_ref: Some(self.subject.clone()),
            actor: Some(Actor {
                kind: ActorKind::Service as i32,
                principal_id: format!("veil-{service}"),
                roles: Vec::new(),
                tenant_id: self.tenant.to_string(),
            }),
            request_id: self.api_request_id.clone(),
        }
    }
}

/// The target of an erasure request addressed to `service` (an empty list of expected
/// services addresses every one); `None` for any other event, or a saga that does not
/// expect this service.
pub fn erasure_target(
    payload: &[u8],
    service: VeilService,
) -> Result<Option<ErasureTarget>, HandlerError> {
    let envelope =
        Event::decode(payload).map_err(|_| HandlerError::permanent(ErasureRequestError::Decode))?;
    let Some(Payload::RetentionErasureRequested(request)) = envelope.payload else {
        return Ok(None);
    };
    let expected = &request.expected_services;
    if !expected.is_empty() && !expected.contains(&(service as i32)) {
        return Ok(None);
    }
    let target = |_| HandlerError::permanent(ErasureRequestError::Target);
    Ok(Some(ErasureTarget {
        tenant: envelope.tenant_id.parse().map_err(target)?,
        subject: envelope.subject_ref.parse().map_err(target)?,
        request_id: request.request_id,
        api_request_id: envelope.request_id,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use veil_proto::events::v1::{RetentionErasureRequested, VaultRevealed};

    fn envelope(payload: Payload, subject_ref: &str) -> Vec<u8> {
        Event {
            tenant_id: TenantId::generate().to_string(),
            subject_ref: subject_ref.into(),
            payload: Some(payload),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn request(expected: &[VeilService]) -> Payload {
        Payload::RetentionErasureRequested(RetentionErasureRequested {
            request_id: "r1".into(),
            expected_services: expected.iter().map(|s| *s as i32).collect(),
        })
    }

    #[test]
    fn only_requests_addressed_to_the_service_are_targets() {
        let subject = "a".repeat(64);
        let all = envelope(request(&[]), &subject);
        let target = erasure_target(&all, VeilService::Vault).unwrap().unwrap();
        assert_eq!(target.request_id, "r1");
        assert_eq!(target.subject.as_str(), subject);
        let others = envelope(request(&[VeilService::Gateway]), &subject);
        assert!(
            erasure_target(&others, VeilService::Vault)
                .unwrap()
                .is_none()
        );
        assert!(
            erasure_target(&others, VeilService::Gateway)
                .unwrap()
                .is_some()
        );
        let other_event = envelope(Payload::VaultRevealed(VaultRevealed::default()), &subject);
        assert!(
            erasure_target(&other_event, VeilService::Vault)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn undecodable_or_untargeted_requests_are_permanent_failures() {
        assert!(erasure_target(b"\xff\xff", VeilService::Vault).is_err());
        let no_subject = envelope(request(&[]), "not-a-ref");
        assert!(erasure_target(&no_subject, VeilService::Vault).is_err());
    }
}
