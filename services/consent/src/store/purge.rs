//! Retention sweeps of consent data. Only what no longer decides anything is purged:
//! records and signals that a newer one superseded, and notice deliveries; a subject's
//! current record stays, since it is the proof (or the refusal) processing relies on.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// What to purge, already validated.
#[derive(Debug)]
pub struct Sweep<'a> {
    pub tenant: Uuid,
    pub cutoff: OffsetDateTime,
    pub purpose_key: Option<&'a str>,
    pub held: &'a [String],
    pub limit: i64,
    pub anonymize: bool,
    pub dry_run: bool,
}

/// Affected rows, rows skipped for a hold, and whether the limit stopped the sweep.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub affected: i64,
    pub held: i64,
    pub more: bool,
}

/// One kind of purgeable row: its table, the condition that makes a row purgeable
/// (besides tenant and holds), its sweep order and what anonymization also clears.
struct Kind {
    table: &'static str,
    purgeable: &'static str,
    order: &'static str,
    clears: &'static str,
}

const RECORDS: Kind = Kind {
    table: "consent_events",
    purgeable: "t.event_time < $2 AND ($3::text IS NULL OR t.purpose_key = $3)
        AND EXISTS (SELECT 1 FROM consent_events n WHERE n.tenant_id = t.tenant_id
                    AND n.subject_ref = t.subject_ref AND n.purpose_key = t.purpose_key
                    AND n.seq > t.seq)",
    order: "t.seq",
    clears: ", evidence = NULL",
};

const SIGNALS: Kind = Kind {
    table: "preference_signals",
    purgeable: "t.observed_at < $2 AND $3::text IS NULL
        AND EXISTS (SELECT 1 FROM preference_signals n WHERE n.tenant_id = t.tenant_id
                    AND n.subject_ref = t.subject_ref AND n.signal = t.signal
                    AND n.seq > t.seq)",
    order: "t.seq",
    clears: "",
};

const DELIVERIES: Kind = Kind {
    table: "notices_served",
    purgeable: "t.served_at < $2 AND $3::text IS NULL",
    order: "t.served_at",
    clears: ", conversation_id = ''",
};

/// The kinds with their names in `PurgeOutcome.counts`.
pub fn kinds() -> [(&'static str, &'static str); 3] {
    [
        ("consent_records", RECORDS.table),
        ("preference_signals", SIGNALS.table),
        ("notices_served", DELIVERIES.table),
    ]
}

fn kind(table: &str) -> Option<&'static Kind> {
    [&RECORDS, &SIGNALS, &DELIVERIES]
        .into_iter()
        .find(|k| k.table == table)
}

/// Purges (or counts, in a dry run) one kind of row.
pub async fn sweep(db: &mut PgConnection, table: &str, s: &Sweep<'_>) -> sqlx::Result<Swept> {
    let Some(k) = kind(table) else {
        return Ok(Swept::default());
    };
    // Anonymizing skips rows already unlinked; deleting takes them too.
    let fresh = if s.anonymize {
        "AND t.erased_at IS NULL"
    } else {
        ""
    };
    let ids: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT t.id FROM {table} t
         WHERE t.tenant_id = $1 AND {purgeable} {fresh} AND t.subject_ref <> ALL($4)
         ORDER BY {order} LIMIT $5",
        table = k.table,
        purgeable = k.purgeable,
        order = k.order,
    )))
    .bind(s.tenant)
    .bind(s.cutoff)
    .bind(s.purpose_key)
    .bind(s.held)
    .bind(s.limit + 1)
    .fetch_all(&mut *db)
    .await?;
    let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} t
         WHERE t.tenant_id = $1 AND {purgeable} {fresh} AND t.subject_ref = ANY($4)",
        table = k.table,
        purgeable = k.purgeable,
    )))
    .bind(s.tenant)
    .bind(s.cutoff)
    .bind(s.purpose_key)
    .bind(s.held)
    .fetch_one(&mut *db)
    .await?;
    let more = i64::try_from(ids.len()).unwrap_or(i64::MAX) > s.limit;
    let ids: Vec<Uuid> = ids
        .into_iter()
        .take(usize::try_from(s.limit).unwrap_or(usize::MAX))
        .map(|(id,)| id)
        .collect();
    let affected = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    if !s.dry_run && !ids.is_empty() {
        let statement = if s.anonymize {
            // Each row gets its own random value: purged rows are not even grouped.
            format!(
                "UPDATE {table} SET erased_at = now(),
                     subject_ref = encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')),
                                          'hex'){clears}
                 WHERE id = ANY($1)",
                table = k.table,
                clears = k.clears,
            )
        } else {
            format!("DELETE FROM {table} WHERE id = ANY($1)", table = k.table)
        };
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(&ids)
            .execute(&mut *db)
            .await?;
    }
    Ok(Swept {
        affected,
        held,
        more,
    })
}

/// Deletes receipts whose records are all gone and that were issued before the cutoff (a
/// dry run counts the receipts already in that state).
pub async fn orphan_receipts(db: &mut PgConnection, s: &Sweep<'_>) -> sqlx::Result<i64> {
    if s.anonymize {
        return Ok(0);
    }
    let condition = "tenant_id = $1 AND issued_at < $2 AND subject_ref <> ALL($3)
         AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.receipt_id = receipts.id)";
    let affected = if s.dry_run {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM receipts WHERE {condition}"
        )))
        .bind(s.tenant)
        .bind(s.cutoff)
        .bind(s.held)
        .fetch_one(&mut *db)
        .await?
    } else {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM receipts WHERE {condition}"
        )))
        .bind(s.tenant)
        .bind(s.cutoff)
        .bind(s.held)
        .execute(&mut *db)
        .await?;
        i64::try_from(done.rows_affected()).unwrap_or(i64::MAX)
    };
    Ok(affected)
}
