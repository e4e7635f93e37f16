//! Consent summary: grants, refusals and withdrawals per purpose.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::PgPool;
use veil_proto::events::v1::event::Payload;

use super::{Csv, Report, ReportScope, scan};
use crate::error::AuditError;

#[derive(Default)]
struct Counts {
    granted: i64,
    denied: i64,
    withdrawn: i64,
}

pub(super) async fn build(pool: &PgPool, scope: ReportScope) -> Result<Report, AuditError> {
    let mut purposes: BTreeMap<String, Counts> = BTreeMap::new();
    let mut signals = 0i64;
    let types = [
        "consent.granted",
        "consent.denied",
        "consent.withdrawn",
        "consent.preference_signal",
    ];
    scan(
        pool,
        scope.tenant,
        &types,
        scope.from,
        scope.until,
        |_, event| {
            let (changed, pick): (_, fn(&mut Counts) -> &mut i64) = match event.payload {
                Some(Payload::ConsentGranted(c)) => (c, |c| &mut c.granted),
                Some(Payload::ConsentDenied(c)) => (c, |c| &mut c.denied),
                Some(Payload::ConsentWithdrawn(c)) => (c, |c| &mut c.withdrawn),
                Some(Payload::ConsentPreferenceSignal(_)) => {
                    signals += 1;
                    return;
                }
                _ => return,
            };
            for purpose in changed.purpose_keys {
                *pick(purposes.entry(purpose).or_default()) += 1;
            }
        },
    )
    .await?;
    let mut csv = Csv {
        header: vec!["purpose_key", "granted", "denied", "withdrawn"],
        rows: Vec::new(),
    };
    let mut list = Vec::new();
    for (purpose, counts) in &purposes {
        csv.rows.push(vec![
            purpose.clone(),
            counts.granted.to_string(),
            counts.denied.to_string(),
            counts.withdrawn.to_string(),
        ]);
        list.push(json!({
            "purpose_key": purpose,
            "granted": counts.granted,
            "denied": counts.denied,
            "withdrawn": counts.withdrawn,
        }));
    }
    Ok(Report {
        json: json!({"purposes": list, "preference_signals": signals}),
        csv: Some(csv),
    })
}
