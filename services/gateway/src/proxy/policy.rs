//! The one policy table of the proxy: which public method of which internal service a
//! role may call. A method missing here is not reachable through the gateway (internal
//! methods such as `Purge`, `EraseSubject` and `ExportSubject` never are).

use veil_core::types::Role;

/// Where a method goes and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Audience of the internal token (the target service name).
    pub service: &'static str,
    /// Roles allowed; platform administrators pass every check.
    pub roles: &'static [Role],
}

use Role::{Admin, Agent, Auditor, Bot, PrivacyOfficer};

const ANY_TENANT_ROLE: &[Role] = &[Bot, Agent, PrivacyOfficer, Auditor, Admin];
const ADMIN_OR_PO: &[Role] = &[Admin, PrivacyOfficer];
const BOT_OR_PO: &[Role] = &[Bot, PrivacyOfficer];
const PO: &[Role] = &[PrivacyOfficer];
const PO_OR_AUDITOR: &[Role] = &[PrivacyOfficer, Auditor];

/// `(service, method, roles)` for every proxied method.
const TABLE: &[(&str, &str, &[Role])] = &[
    ("consent", "UpsertPurpose", ADMIN_OR_PO),
    ("consent", "ListPurposes", ANY_TENANT_ROLE),
    ("consent", "UpsertRecipient", ADMIN_OR_PO),
    ("consent", "ListRecipients", ANY_TENANT_ROLE),
    ("consent", "PublishNotice", PO),
    ("consent", "GetNotice", ANY_TENANT_ROLE),
    ("consent", "ListNoticeVersions", ANY_TENANT_ROLE),
    ("consent", "RecordNoticeServed", &[Bot]),
    ("consent", "RecordConsent", BOT_OR_PO),
    ("consent", "WithdrawConsent", BOT_OR_PO),
    ("consent", "SetPreferenceSignal", BOT_OR_PO),
    ("consent", "CheckConsent", BOT_OR_PO),
    ("consent", "GetConsentState", BOT_OR_PO),
    ("consent", "History", PO_OR_AUDITOR),
    ("consent", "VerifyReceipt", ANY_TENANT_ROLE),
    ("consent", "GetReceiptKeys", ANY_TENANT_ROLE),
    ("consent", "SetController", ADMIN_OR_PO),
    ("consent", "GetController", ANY_TENANT_ROLE),
    ("vault", "PutRecord", PO),
    ("vault", "GetRecord", PO),
    ("vault", "DeleteRecord", PO),
    ("vault", "ListRecords", PO_OR_AUDITOR),
    ("vault", "Tokenize", PO),
    ("vault", "Detokenize", PO),
    ("vault", "ShredSubject", PO),
    ("vault", "RotateTenantKey", ADMIN_OR_PO),
    ("vault", "RotateMasterKey", &[]),
    ("vault", "KeyStatus", &[Admin, PrivacyOfficer, Auditor]),
    ("retention", "SetPolicy", PO),
    (
        "retention",
        "ListPolicies",
        &[PrivacyOfficer, Auditor, Admin],
    ),
    ("retention", "DeletePolicy", PO),
    ("retention", "PlaceHold", PO),
    ("retention", "ReleaseHold", PO),
    ("retention", "ListHolds", PO_OR_AUDITOR),
    ("retention", "RunSweep", PO),
    ("retention", "SubmitRequest", BOT_OR_PO),
    ("retention", "VerifyRequest", BOT_OR_PO),
    ("retention", "GetRequest", &[Bot, PrivacyOfficer, Auditor]),
    ("retention", "ListRequests", PO_OR_AUDITOR),
    ("retention", "ExtendRequest", PO),
    ("retention", "CancelRequest", BOT_OR_PO),
    (
        "retention",
        "GetDeletionCertificate",
        &[Bot, PrivacyOfficer, Auditor],
    ),
    ("retention", "DownloadExport", BOT_OR_PO),
    ("audit", "GetSignedTreeHead", PO_OR_AUDITOR),
    ("audit", "GetInclusionProof", PO_OR_AUDITOR),
    ("audit", "GetConsistencyProof", PO_OR_AUDITOR),
    ("audit", "GetEntry", PO_OR_AUDITOR),
    ("audit", "Query", PO_OR_AUDITOR),
    ("audit", "AccessLog", PO_OR_AUDITOR),
    ("audit", "GetReport", PO_OR_AUDITOR),
    ("audit", "ListIncidents", PO_OR_AUDITOR),
    ("audit", "UpdateIncident", PO),
    ("audit", "Export", PO_OR_AUDITOR),
];

/// The proxied gRPC services: (service name, fully qualified gRPC service).
pub const SERVICES: &[(&str, &str)] = &[
    ("consent", "veil.consent.v1.ConsentService"),
    ("vault", "veil.vault.v1.VaultService"),
    ("retention", "veil.retention.v1.RetentionService"),
    ("audit", "veil.audit.v1.AuditService"),
];

/// The route of a gRPC method path such as `/veil.vault.v1.VaultService/Tokenize`.
pub fn route(path: &str) -> Option<Route> {
    let (grpc_service, method) = path.strip_prefix('/')?.split_once('/')?;
    let service = SERVICES
        .iter()
        .find(|(_, full)| *full == grpc_service)
        .map(|(name, _)| *name)?;
    TABLE
        .iter()
        .find(|(s, m, _)| *s == service && *m == method)
        .map(|(service, _, roles)| Route { service, roles })
}

/// Every proxied method path with its roles (for tests and documentation).
pub fn all_routes() -> impl Iterator<Item = (String, Route)> {
    TABLE.iter().filter_map(|(service, method, roles)| {
        let full = SERVICES.iter().find(|(name, _)| name == service)?.1;
        Some((format!("/{full}/{method}"), Route { service, roles }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_methods_are_not_routed() {
        for path in [
            "/veil.vault.v1.VaultService/Purge",
            "/veil.vault.v1.VaultService/ExportSubject",
            "/veil.consent.v1.ConsentService/EraseSubject",
            "/veil.gateway.v1.GatewayInternalService/Purge",
            "/veil.gateway.v1.GatewayInternalService/EraseSubject",
            "/veil.gateway.v1.GatewayInternalService/ExportSubject",
            "/veil.gateway.v1.GatewayInternalService/RestrictSubject",
            "/veil.gateway.v1.GatewayInternalService/RectifySubject",
            "/veil.vault.v1.VaultService/NoSuchMethod",
            "/not-a-path",
        ] {
            assert!(route(path).is_none(), "{path}");
        }
    }

    #[test]
    fn every_table_method_exists_in_the_descriptor_set() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(veil_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let mut known = std::collections::HashSet::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    known.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        for (path, _) in all_routes() {
            assert!(known.contains(&path), "{path} is not a real method");
        }
    }

    #[test]
    fn routes_name_their_service() {
        let tokenize = route("/veil.vault.v1.VaultService/Tokenize").expect("routed");
        assert_eq!(tokenize.service, "vault");
        assert_eq!(tokenize.roles, &[Role::PrivacyOfficer]);
    }
}
