//! Conversions between stored rows, JSON and proto messages.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use serde_json::{Number, Value};
use time::OffsetDateTime;
use veil_core::convert::{from_timestamp, timestamp};
use veil_core::error::ServiceError;
use veil_proto::common::v1::Actor;
use veil_proto::consent::v1::{ConsentRecord, Controller};

use crate::store::purposes::ControllerRow;
use crate::store::records::RecordRow;

/// Largest evidence object accepted, as JSON.
pub const MAX_EVIDENCE_BYTES: usize = 8 * 1024;

/// A protobuf `Struct` as a JSON object.
pub fn struct_to_json(value: &prost_types::Struct) -> Value {
    Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

/// A JSON object as a protobuf `Struct` (other JSON values give an empty struct).
pub fn json_to_struct(value: &Value) -> prost_types::Struct {
    let fields: BTreeMap<String, prost_types::Value> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    prost_types::Struct { fields }
}

fn json_to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Validated evidence: at most [`MAX_EVIDENCE_BYTES`] of JSON.
pub fn evidence(
    value: Option<&prost_types::Struct>,
    field: &str,
) -> Result<Option<Value>, ServiceError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let json = struct_to_json(value);
    if json.to_string().len() > MAX_EVIDENCE_BYTES {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {MAX_EVIDENCE_BYTES} bytes of json"),
        ));
    }
    Ok(Some(json))
}

/// An optional instant from a request field; `field` names it when out of range.
pub fn instant(
    ts: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<OffsetDateTime>, ServiceError> {
    ts.map(|t| {
        from_timestamp(t)
            .map(crate::domain::to_micros)
            .ok_or_else(|| ServiceError::invalid(field, "is not a valid timestamp"))
    })
    .transpose()
}

/// The longest duration a purpose may name (a retention period, a consent's validity):
/// 100 years, as for settings. Longer ones mean nothing for a person's data, and
/// instants computed from them would leave the calendar's range.
pub const MAX_DURATION_SECS: i64 = veil_core::config::MAX_DURATION.as_secs() as i64;

/// Whole seconds of a positive duration field, if set.
pub fn seconds(
    duration: Option<&prost_types::Duration>,
    field: &str,
) -> Result<Option<i64>, ServiceError> {
    match duration {
        None => Ok(None),
        Some(d) if (1..=MAX_DURATION_SECS).contains(&d.seconds) && d.nanos >= 0 => {
            Ok(Some(d.seconds))
        }
        Some(_) => Err(ServiceError::invalid(
            field,
            "must be a positive duration of at most 100 years",
        )),
    }
}

/// A duration of `secs` seconds.
pub fn duration(secs: Option<i64>) -> Option<prost_types::Duration> {
    secs.map(|seconds| prost_types::Duration { seconds, nanos: 0 })
}

/// The proto form of a stored record.
pub fn record(row: &RecordRow, tenant: &str) -> ConsentRecord {
    ConsentRecord {
        record_id: row.id.to_string(),
        subject_ref: row.subject_ref.clone(),
        notice_id: row.notice_id.map(|id| id.to_string()).unwrap_or_default(),
        notice_version: row.notice_version,
        notice_sha256: row.notice_sha256.clone(),
        language: row.language.clone(),
        purpose_key: row.purpose_key.clone(),
        purpose_version: row.purpose_version,
        legal_basis: row.legal_basis,
        pii_categories: row.pii_categories.clone(),
        controller: Some(Controller {
            tenant_id: tenant.to_string(),
            name: row.controller_name.clone(),
            contact: row.controller_contact.clone(),
            ..Default::default()
        }),
        recipient_keys: row.recipient_keys.clone(),
        collection_method: row.collection_method,
        retention_period: duration(row.retention_secs),
        jurisdiction: row.jurisdiction,
        withdrawal_method: row.withdrawal_method.clone(),
        event_time: Some(timestamp(row.event_time)),
        event_type: row.event_type,
        state: row.state,
        valid_from: Some(timestamp(row.valid_from)),
        expires_at: row.expires_at.map(timestamp),
        receipt_id: row.receipt_id.map(|id| id.to_string()).unwrap_or_default(),
        supersedes_record_id: row
            .supersedes_record_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        recorded_by: row
            .recorded_by
            .as_ref()
            .and_then(|a| serde_json::from_value::<ActorJson>(a.0.clone()).ok())
            .map(Actor::from),
        evidence: row.evidence.as_ref().map(|e| json_to_struct(&e.0)),
        preference_conflict: row.preference_conflict,
        subject_erased: row.erased_at.is_some(),
    }
}

/// An actor as kept in records (JSON with readable role names).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ActorJson {
    pub kind: i32,
    pub principal_id: String,
    pub roles: Vec<i32>,
    pub tenant_id: String,
}

impl From<&Actor> for ActorJson {
    fn from(actor: &Actor) -> Self {
        Self {
            kind: actor.kind,
            principal_id: actor.principal_id.clone(),
            roles: actor.roles.clone(),
            tenant_id: actor.tenant_id.clone(),
        }
    }
}

impl From<ActorJson> for Actor {
    fn from(actor: ActorJson) -> Self {
        Self {
            kind: actor.kind,
            principal_id: actor.principal_id,
            roles: actor.roles,
            tenant_id: actor.tenant_id,
        }
    }
}

/// The proto form of the tenant's controller settings.
pub fn controller(row: &ControllerRow, tenant: &str, default_locale: &str) -> Controller {
    Controller {
        tenant_id: tenant.to_string(),
        name: row.name.clone(),
        contact: row.contact.clone(),
        default_locale: if row.default_locale.is_empty() {
            default_locale.to_string()
        } else {
            row.default_locale.clone()
        },
        default_jurisdiction: row.default_jurisdiction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_and_json_round_trip() {
        let json = serde_json::json!({"ui": "chat_button", "n": 2.0, "ok": true,
                                      "list": ["a", null], "nested": {"x": "y"}});
        assert_eq!(struct_to_json(&json_to_struct(&json)), json);
    }

    #[test]
    fn durations_must_be_positive() {
        let d = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert!(seconds(Some(&d), "f").is_err());
        assert_eq!(seconds(None, "f").ok(), Some(None));
        let century = prost_types::Duration {
            seconds: MAX_DURATION_SECS,
            nanos: 0,
        };
        assert_eq!(seconds(Some(&century), "f").ok(), Some(Some(3_155_760_000)));
        let forever = prost_types::Duration {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(seconds(Some(&forever), "f").is_err());
    }
}
