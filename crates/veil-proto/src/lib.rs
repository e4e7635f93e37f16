//! Generated protobuf messages and tonic clients/servers for every Veil API.
//!
//! Modules mirror the proto packages without the leading `veil`, so
//! `veil.gateway.v1.ProcessMessageRequest` is `veil_proto::gateway::v1::ProcessMessageRequest`.

/// Generated code is exempt from the workspace lints it cannot follow.
macro_rules! generated_package {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub mod $name {
            /// Version 1 of the package.
            #[allow(
                clippy::all,
                clippy::pedantic,
                clippy::nursery,
                missing_docs,
                rustdoc::broken_intra_doc_links,
                rustdoc::invalid_html_tags,
                rustdoc::bare_urls
            )]
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/", $file));
            }
        }
    };
}

generated_package!(
    /// Types shared by every API: actors, paging, jurisdictions, entities, lifecycle enums.
    common,
    "veil.common.v1.rs"
);
generated_package!(
    /// The privacy gateway: message pipeline, administration and its internal API.
    gateway,
    "veil.gateway.v1.rs"
);
generated_package!(
    /// Consent: purposes, recipients, notices, consent records, receipts, preference signals.
    consent,
    "veil.consent.v1.rs"
);
generated_package!(
    /// Vault: encrypted records, tokens, crypto-shredding and key rotation.
    vault,
    "veil.vault.v1.rs"
);
generated_package!(
    /// Retention: policies, legal holds, sweeps and data-subject requests.
    retention,
    "veil.retention.v1.rs"
);
generated_package!(
    /// Audit: the Merkle-tree log, proofs, reports and incidents.
    audit,
    "veil.audit.v1.rs"
);
generated_package!(
    /// Events: the `Event` envelope published on NATS and every payload.
    events,
    "veil.events.v1.rs"
);

/// Encoded `google.protobuf.FileDescriptorSet` of every Veil proto and its imports, with
/// source info, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/veil_descriptor.bin"));

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::common::v1::{Actor, ActorKind, ErasureOutcome, Role, VeilService};
    use super::events::v1::{ErasureCompleted, Event, event::Payload};

    #[test]
    fn descriptor_set_holds_every_service_and_its_imports() {
        let set = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service
                    .iter()
                    .map(move |service| format!("{package}.{}", service.name()))
            })
            .collect();
        for expected in [
            "veil.gateway.v1.PrivacyGatewayService",
            "veil.gateway.v1.AdminService",
            "veil.gateway.v1.GatewayInternalService",
            "veil.consent.v1.ConsentService",
            "veil.vault.v1.VaultService",
            "veil.retention.v1.RetentionService",
            "veil.audit.v1.AuditService",
        ] {
            assert!(
                services.iter().any(|name| name == expected),
                "{expected} missing from {services:?}"
            );
        }
        // Reflection clients must be able to resolve the well-known types we import.
        assert!(
            set.file
                .iter()
                .any(|file| file.name() == "google/protobuf/timestamp.proto")
        );
    }

    fn events_package(set: &FileDescriptorSet) -> Vec<&prost_types::DescriptorProto> {
        set.file
            .iter()
            .filter(|file| file.package() == "veil.events.v1")
            .flat_map(|file| file.message_type.iter())
            .collect()
    }

    /// Every event ARCHITECTURE.md names, as `<service>_<event>` oneof fields, plus
    /// `retention_recipient_notification` (GDPR Art. 19, added by the retention issue).
    const ARCHITECTURE_EVENTS: [&str; 36] = [
        "gateway_message_processed",
        "gateway_text_restored",
        "gateway_privacy_command_detected",
        "gateway_auth_failed",
        "gateway_tenant_created",
        "gateway_api_key_created",
        "gateway_api_key_revoked",
        "gateway_policy_changed",
        "gateway_erasure_completed",
        "consent_purpose_changed",
        "consent_notice_published",
        "consent_notice_served",
        "consent_granted",
        "consent_denied",
        "consent_withdrawn",
        "consent_preference_signal",
        "consent_erasure_completed",
        "vault_record_stored",
        "vault_record_deleted",
        "vault_revealed",
        "vault_subject_shredded",
        "vault_key_rotated",
        "vault_erasure_completed",
        "retention_policy_changed",
        "retention_hold_placed",
        "retention_hold_released",
        "retention_purge_completed",
        "retention_request_received",
        "retention_request_state_changed",
        "retention_request_overdue",
        "retention_erasure_requested",
        "retention_certificate_issued",
        "retention_recipient_notification",
        "audit_tree_head_signed",
        "audit_incident_opened",
        "audit_incident_updated",
    ];

    #[test]
    fn event_payloads_are_exactly_the_architecture_events() {
        let set = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let envelope = events_package(&set)
            .into_iter()
            .find(|message| message.name() == "Event")
            .unwrap();
        let mut payloads: Vec<&str> = envelope
            .field
            .iter()
            .filter(|field| field.oneof_index.is_some())
            .map(|field| field.name())
            .collect();
        payloads.sort_unstable();
        let mut expected = ARCHITECTURE_EVENTS.to_vec();
        expected.sort_unstable();
        assert_eq!(payloads, expected);
    }

    #[test]
    fn event_payloads_have_no_field_meant_for_raw_personal_data() {
        // Events are broadcast and kept forever in the audit log; a field with one of these
        // names would invite a raw value in.
        const FORBIDDEN: [&str; 8] = [
            "text",
            "value",
            "subject_id",
            "redacted_text",
            "body",
            "new_value",
            "secret",
            "email",
        ];
        let set = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        for message in events_package(&set) {
            for field in &message.field {
                assert!(
                    !FORBIDDEN.contains(&field.name()),
                    "{}.{} looks like raw personal data",
                    message.name(),
                    field.name()
                );
            }
        }
    }

    #[test]
    fn event_round_trips_through_prost() {
        let event = Event {
            event_id: "01936f3e-8d2a-7c4b-9e1f-2a3b4c5d6e7f".to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_732_000_000,
                nanos: 5,
            }),
            tenant_id: "tenant-a".to_owned(),
            subject_ref: "ab".repeat(32),
            actor: Some(Actor {
                kind: ActorKind::Service.into(),
                principal_id: "vault".to_owned(),
                roles: vec![Role::Service.into()],
                tenant_id: "tenant-a".to_owned(),
            }),
            source: VeilService::Vault.into(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            request_id: "req-1".to_owned(),
            payload: Some(Payload::VaultErasureCompleted(ErasureCompleted {
                request_id: "dsr-9".to_owned(),
                outcome: Some(ErasureOutcome {
                    service: VeilService::Vault.into(),
                    counts: [("records".to_owned(), 3), ("tokens".to_owned(), 17)].into(),
                    completed_at: None,
                }),
            })),
        };
        let decoded = Event::decode(event.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, event);
    }
}
