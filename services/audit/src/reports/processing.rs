//! Records of processing activities (GDPR Art. 30), from the log: purposes and their
//! legal bases (consent service events), retention policies (retention service events)
//! and the volumes processed per purpose and per category of personal data.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::PgPool;
use veil_proto::common::v1::{DataCategory, LegalBasis, RetentionAction};
use veil_proto::events::v1::event::Payload;

use super::{Csv, Report, ReportScope, scan, scope_filter};
use crate::error::AuditError;
use crate::store;

#[derive(Default)]
struct Purpose {
    version: i64,
    legal_basis: i32,
    consent_required: bool,
    archived: bool,
    messages: i64,
    denied: i64,
    entities: BTreeMap<String, i64>,
}

pub(super) async fn build(pool: &PgPool, scope: ReportScope) -> Result<Report, AuditError> {
    let mut purposes: BTreeMap<String, Purpose> = BTreeMap::new();
    let mut policies: BTreeMap<String, Value> = BTreeMap::new();
    // Definitions as they stand at the end of the period.
    let definitions = ["consent.purpose_changed", "retention.policy_changed"];
    scan(
        pool,
        scope.tenant,
        &definitions,
        None,
        scope.until,
        |_, event| match event.payload {
            Some(Payload::ConsentPurposeChanged(changed)) => {
                let purpose = purposes.entry(changed.purpose_key).or_default();
                purpose.version = changed.version;
                purpose.legal_basis = changed.legal_basis;
                purpose.consent_required = changed.consent_required;
                purpose.archived = changed.archived;
            }
            Some(Payload::RetentionPolicyChanged(changed)) => {
                if changed.deleted {
                    policies.remove(&changed.policy_id);
                    return;
                }
                let category = DataCategory::try_from(changed.category)
                    .unwrap_or_default()
                    .as_str_name();
                let action = RetentionAction::try_from(changed.action)
                    .unwrap_or_default()
                    .as_str_name();
                policies.insert(
                    changed.policy_id.clone(),
                    json!({
                        "policy_id": changed.policy_id,
                        "category": category,
                        "purpose_key": changed.purpose_key,
                        "period_seconds": changed.period.map(|p| p.seconds),
                        "action": action,
                    }),
                );
            }
            _ => {}
        },
    )
    .await?;

    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    let mut vault_records: BTreeMap<String, i64> = BTreeMap::new();
    let volumes = ["gateway.message_processed", "vault.record_stored"];
    scan(
        pool,
        scope.tenant,
        &volumes,
        scope.from,
        scope.until,
        |_, event| match event.payload {
            Some(Payload::GatewayMessageProcessed(processed)) => {
                for (entity, count) in &processed.entity_counts {
                    *categories.entry(entity.clone()).or_default() += count;
                }
                for key in &processed.purposes {
                    let purpose = purposes.entry(key.clone()).or_default();
                    purpose.messages += 1;
                    for (entity, count) in &processed.entity_counts {
                        *purpose.entities.entry(entity.clone()).or_default() += count;
                    }
                }
                for key in processed.denied_purposes {
                    purposes.entry(key).or_default().denied += 1;
                }
            }
            Some(Payload::VaultRecordStored(stored)) => {
                *vault_records.entry(stored.category).or_default() += 1;
            }
            _ => {}
        },
    )
    .await?;

    let volume_entries = scope_filter(scope.tenant, &volumes, scope.from, scope.until);
    let subjects = store::distinct_subjects(pool, &volume_entries).await?;

    let mut csv = Csv {
        header: vec![
            "purpose_key",
            "version",
            "legal_basis",
            "consent_required",
            "archived",
            "messages_processed",
            "messages_denied",
            "entities_found",
        ],
        rows: Vec::new(),
    };
    let mut list = Vec::new();
    for (key, purpose) in &purposes {
        let basis = LegalBasis::try_from(purpose.legal_basis)
            .unwrap_or_default()
            .as_str_name();
        let entities: i64 = purpose.entities.values().sum();
        csv.rows.push(vec![
            key.clone(),
            purpose.version.to_string(),
            basis.into(),
            purpose.consent_required.to_string(),
            purpose.archived.to_string(),
            purpose.messages.to_string(),
            purpose.denied.to_string(),
            entities.to_string(),
        ]);
        list.push(json!({
            "purpose_key": key,
            "version": purpose.version,
            "legal_basis": basis,
            "consent_required": purpose.consent_required,
            "archived": purpose.archived,
            "messages_processed": purpose.messages,
            "messages_denied": purpose.denied,
            "personal_data_categories": purpose.entities,
        }));
    }
    Ok(Report {
        json: json!({
            "purposes": list,
            "retention_policies": policies.into_values().collect::<Vec<_>>(),
            "personal_data_categories": categories,
            "vault_records_stored": vault_records,
            "data_subjects": subjects,
            "recipients_note": "recipients are kept by the consent service (ListRecipients)",
        }),
        csv: Some(csv),
    })
}
