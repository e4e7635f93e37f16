//! Erasure: a subject's rows keep their proof value but lose the link to the person.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

/// Replaces `subject_ref` by `unlinkable` in every consent table and drops what could
/// identify the person (evidence, receipt JWS naming the ref, conversation ids,
/// idempotency keys). Returns the rows changed per kind; rows erased before are skipped.
pub async fn erase_subject(
    db: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
    unlinkable: &str,
) -> sqlx::Result<BTreeMap<String, i64>> {
    let statements: [(&str, &str); 4] = [
        (
            "consent_records",
            "UPDATE consent_events SET subject_ref = $3, evidence = NULL, erased_at = now()
             WHERE tenant_id = $1 AND subject_ref = $2 AND erased_at IS NULL",
        ),
        (
            "receipts",
            "UPDATE receipts SET subject_ref = $3, jws = NULL, idempotency_key = NULL,
                 request_sha256 = NULL, erased_at = now()
             WHERE tenant_id = $1 AND subject_ref = $2 AND erased_at IS NULL",
        ),
        (
            "preference_signals",
            "UPDATE preference_signals SET subject_ref = $3, erased_at = now()
             WHERE tenant_id = $1 AND subject_ref = $2 AND erased_at IS NULL",
        ),
        (
            "notices_served",
            "UPDATE notices_served SET subject_ref = $3, conversation_id = '', erased_at = now()
             WHERE tenant_id = $1 AND subject_ref = $2 AND erased_at IS NULL",
        ),
    ];
    let mut counts = BTreeMap::new();
    for (kind, sql) in statements {
        let done = sqlx::query(sql)
            .bind(tenant)
            .bind(subject_ref)
            .bind(unlinkable)
            .execute(&mut *db)
            .await?;
        counts.insert(
            kind.to_string(),
            i64::try_from(done.rows_affected()).unwrap_or(i64::MAX),
        );
    }
    Ok(counts)
}
