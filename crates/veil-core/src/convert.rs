//! Conversions between proto enums/messages and domain types, kept in one place.

use veil_proto::common::v1 as pb;

use crate::auth::Principal;
use crate::types::Role;

/// The audit actor of an internal-token principal acting through an API key (or as a
/// service), with its roles and tenant.
pub fn principal_actor(principal: &Principal) -> pb::Actor {
    let kind = if principal.has_role(Role::Service) {
        pb::ActorKind::Service
    } else {
        pb::ActorKind::ApiKey
    };
    actor_as(principal, kind)
}

/// The audit actor of `principal` as an actor of `kind` (for callers that tell kinds
/// apart differently from [`principal_actor`]).
pub fn actor_as(principal: &Principal, kind: pb::ActorKind) -> pb::Actor {
    pb::Actor {
        kind: kind as i32,
        principal_id: principal.principal_id.to_string(),
        roles: principal
            .roles
            .iter()
            .map(|r| role_to_proto(*r) as i32)
            .collect(),
        tenant_id: principal.tenant.map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// The proto role of a domain role.
pub fn role_to_proto(role: Role) -> pb::Role {
    match role {
        Role::Bot => pb::Role::Bot,
        Role::Agent => pb::Role::Agent,
        Role::PrivacyOfficer => pb::Role::PrivacyOfficer,
        Role::Auditor => pb::Role::Auditor,
        Role::Admin => pb::Role::Admin,
        Role::PlatformAdmin => pb::Role::PlatformAdmin,
        Role::Service => pb::Role::Service,
    }
}

/// The domain role of a proto role value; `None` for unspecified or unknown values.
pub fn role_from_proto(value: i32) -> Option<Role> {
    match pb::Role::try_from(value).ok()? {
        pb::Role::Unspecified => None,
        pb::Role::Bot => Some(Role::Bot),
        pb::Role::Agent => Some(Role::Agent),
        pb::Role::PrivacyOfficer => Some(Role::PrivacyOfficer),
        pb::Role::Auditor => Some(Role::Auditor),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::PlatformAdmin => Some(Role::PlatformAdmin),
        pb::Role::Service => Some(Role::Service),
    }
}

/// A protobuf timestamp for an instant.
pub fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

/// An instant from a protobuf timestamp; `None` when out of range.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<time::OffsetDateTime> {
    let base = time::OffsetDateTime::from_unix_timestamp(ts.seconds).ok()?;
    Some(base + time::Duration::nanoseconds(i64::from(ts.nanos)))
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    timestamp(time::OffsetDateTime::now_utc())
}
