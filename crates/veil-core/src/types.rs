//! Validated domain newtypes shared by every service.
//!
//! Proto and config values are converted into these at the edge with `FromStr` /
//! `TryFrom`, so the rest of the code never sees an unchecked id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod personal;

pub use personal::Personal;

/// A value that failed validation; the message names what was wrong, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a UUID.
    #[error("invalid tenant id: expected a uuid")]
    TenantId,
    /// Not 64 lowercase hex characters.
    #[error("invalid subject ref: expected 64 lowercase hex characters")]
    SubjectRef,
    /// Empty, too long or containing control characters.
    #[error("invalid principal id: expected 1 to 256 characters without control characters")]
    PrincipalId,
    /// Empty, too long or not printable ASCII.
    #[error("invalid request id: expected 1 to 128 printable ascii characters")]
    RequestId,
    /// Empty, too long or not of `[A-Za-z0-9._:-]`.
    #[error("invalid conversation id: expected 1 to 128 characters of [A-Za-z0-9._:-]")]
    ConversationId,
    /// Not one of the role names.
    #[error(
        "unknown role: expected one of bot, agent, privacy_officer, auditor, admin, platform_admin, service"
    )]
    Role,
}

impl ValidationError {
    /// The name of the field that was wrong, for INVALID_ARGUMENT details.
    pub fn field(&self) -> &'static str {
        match self {
            Self::TenantId => "tenant_id",
            Self::SubjectRef => "subject_ref",
            Self::PrincipalId => "principal_id",
            Self::RequestId => "request_id",
            Self::ConversationId => "conversation_id",
            Self::Role => "role",
        }
    }
}

/// A tenant: every row and every event carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// A new random tenant id (UUIDv7, so ids sort by creation time).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID (e.g. read from a database column).
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID, for database binds.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The 16 raw bytes, used as unambiguous input to key derivation.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| ValidationError::TenantId)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The pseudonymous reference to a data subject: HMAC-SHA256 of the external subject id
/// under the tenant's pseudonym key, as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectRef(String);

impl SubjectRef {
    /// Builds the reference from a 32-byte MAC output.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SubjectRef {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::SubjectRef)
        }
    }
}

impl TryFrom<&str> for SubjectRef {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<String> for SubjectRef {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SubjectRef> for String {
    fn from(value: SubjectRef) -> Self {
        value.0
    }
}

/// Defines a validated string id newtype with `FromStr`, `TryFrom`, serde and `Display`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $error:ident, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let valid: fn(&str) -> bool = $valid;
                if valid(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(ValidationError::$error)
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ValidationError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

fn is_printable_ascii_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

string_id!(
    /// Who is calling: an API key id, a user from a trusted issuer, or a service name.
    PrincipalId,
    PrincipalId,
    |s| (1..=256).contains(&s.len()) && !s.chars().any(char::is_control)
);

string_id!(
    /// Correlates one public request across services, logs and audit events.
    RequestId,
    RequestId,
    is_printable_ascii_id
);

/// The rule for ids a client names its own things with (conversations, messages):
/// 1 to 128 characters of `[A-Za-z0-9._:-]`. Such ids are carried into events, logs and
/// the audit log, so nothing that could be personal data (an e-mail address, a name
/// with spaces) passes.
pub fn is_plain_id(s: &str) -> bool {
    (1..=PLAIN_ID_MAX_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The longest id [`is_plain_id`] accepts.
pub const PLAIN_ID_MAX_LEN: usize = 128;

/// What [`is_plain_id`] demands, for error messages.
pub const PLAIN_ID_RULE: &str = "must be 1 to 128 characters of [A-Za-z0-9._:-]";

string_id!(
    /// The chatbot's own conversation id, as the client sends it (see [`is_plain_id`]).
    ConversationId,
    ConversationId,
    is_plain_id
);

impl RequestId {
    /// A fresh request id (UUIDv7, so ids sort by time).
    pub fn generate() -> Self {
        Self(Uuid::now_v7().to_string())
    }
}

/// What a principal may do; checked by every RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A chatbot backend: process and restore messages.
    Bot,
    /// Support staff: read redacted transcripts.
    Agent,
    /// Reveal with a stated purpose, data-subject requests, policies, holds.
    PrivacyOfficer,
    /// Read the audit log, reports and proofs.
    Auditor,
    /// Tenant administration: tenants, keys.
    Admin,
    /// Administration across tenants.
    PlatformAdmin,
    /// A Veil service calling another one.
    Service,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 7] = [
        Role::Bot,
        Role::Agent,
        Role::PrivacyOfficer,
        Role::Auditor,
        Role::Admin,
        Role::PlatformAdmin,
        Role::Service,
    ];

    /// The snake_case name used in tokens, config and error messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Bot => "bot",
            Role::Agent => "agent",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::PlatformAdmin => "platform_admin",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(ValidationError::Role)
    }
}

impl TryFrom<&str> for Role {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tenant_id_round_trips_and_rejects_garbage() {
        let id = TenantId::generate();
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
        assert_eq!(
            "not-a-uuid".parse::<TenantId>(),
            Err(ValidationError::TenantId)
        );
    }

    #[test]
    fn subject_ref_accepts_only_64_lowercase_hex() {
        let good = "ab".repeat(32);
        assert_eq!(SubjectRef::try_from(good.as_str()).unwrap().as_str(), good);
        for bad in [
            "",
            "ab",
            &"AB".repeat(32),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert_eq!(bad.parse::<SubjectRef>(), Err(ValidationError::SubjectRef));
        }
        assert!(serde_json::from_str::<SubjectRef>("\"xyz\"").is_err());
        assert_eq!(
            SubjectRef::from_digest(&[0xab; 32]).as_str(),
            "ab".repeat(32)
        );
    }

    #[test]
    fn string_ids_validate() {
        assert!("key_123".parse::<PrincipalId>().is_ok());
        assert!("".parse::<PrincipalId>().is_err());
        assert!("a\nb".parse::<PrincipalId>().is_err());
        assert!("x".repeat(257).parse::<PrincipalId>().is_err());
        assert!("req-1".parse::<RequestId>().is_ok());
        assert!("req 1".parse::<RequestId>().is_err());
        assert!(RequestId::generate().as_str().parse::<RequestId>().is_ok());
        assert!("conv-42".parse::<ConversationId>().is_ok());
        assert!("x".repeat(129).parse::<ConversationId>().is_err());
        // Carried into events: nothing that could be an address or a name.
        assert!("anna@example.org".parse::<ConversationId>().is_err());
        assert!("Anna Schmidt".parse::<ConversationId>().is_err());
        assert!(serde_json::from_str::<RequestId>("\"\"").is_err());
    }

    #[test]
    fn roles_round_trip_by_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!("PrivacyOfficer".parse::<Role>(), Err(ValidationError::Role));
    }

    #[test]
    fn errors_never_echo_the_value() {
        let secret = "alice@example.com";
        for err in [
            secret.parse::<TenantId>().unwrap_err(),
            secret.parse::<SubjectRef>().unwrap_err(),
            secret.parse::<Role>().unwrap_err(),
        ] {
            assert!(!err.to_string().contains(secret));
        }
    }
}
