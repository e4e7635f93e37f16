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

/// An instant from a protobuf timestamp; `None` when out of range. Decoding does not
/// check `nanos`, so a timestamp from the wire may carry any; only the normalized range
/// (0 to 999,999,999, as the protobuf spec demands) is accepted.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<time::OffsetDateTime> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let base = time::OffsetDateTime::from_unix_timestamp(ts.seconds).ok()?;
    base.replace_nanosecond(nanos).ok()
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    timestamp(time::OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_round_trip() {
        let at = time::macros::datetime!(2026-11-30 17:05:01.123456789 UTC);
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
    }

    #[test]
    fn timestamps_out_of_range_are_refused_not_panics() {
        // The last representable second plus a whole second of nanos, and the first one
        // minus one nano: adding the nanos would leave the calendar's range.
        let last = time::macros::datetime!(9999-12-31 23:59:59 UTC).unix_timestamp();
        let first = time::macros::datetime!(-9999-01-01 00:00:00 UTC).unix_timestamp();
        for bad in [
            ts(last, 1_000_000_000),
            ts(first, -1),
            ts(0, -1),
            ts(0, i32::MAX),
            ts(i64::MAX, 0),
            ts(i64::MIN, 0),
        ] {
            assert_eq!(from_timestamp(&bad), None, "{bad:?}");
        }
        assert!(from_timestamp(&ts(last, 999_999_999)).is_some());
        assert!(from_timestamp(&ts(first, 0)).is_some());
    }
}
