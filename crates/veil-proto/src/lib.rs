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
