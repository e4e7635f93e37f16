//! Incidents: storage, the forward-only lifecycle and the 72-hour deadline.

use prost::Message;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;
use veil_proto::common::v1::{Actor, ActorKind, IncidentSeverity, IncidentState};

use crate::error::AuditError;

/// GDPR Art. 33: notify the supervisory authority within 72 hours of becoming aware.
pub const NOTIFICATION_HOURS: i64 = 72;

/// The actor of work the audit service does on its own.
pub fn system_actor() -> Actor {
    Actor {
        kind: ActorKind::System as i32,
        principal_id: "audit".into(),
        roles: Vec::new(),
        tenant_id: String::new(),
    }
}

/// An incident a rule is about to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub tenant_id: Option<Uuid>,
    pub rule: &'static str,
    pub rule_key: String,
    pub severity: IncidentSeverity,
    pub summary: String,
    pub window_start: time::OffsetDateTime,
    pub window_end: time::OffsetDateTime,
    pub event_ids: Vec<Uuid>,
    pub affected_subjects: i64,
}

/// An incident as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentRow {
    pub incident_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub rule: String,
    pub severity: i16,
    pub state: i16,
    pub summary: String,
    pub opened_at: time::OffsetDateTime,
    pub notification_deadline: time::OffsetDateTime,
    pub acknowledged_at: Option<time::OffsetDateTime>,
    pub notified_at: Option<time::OffsetDateTime>,
    pub closed_at: Option<time::OffsetDateTime>,
    pub window_start: time::OffsetDateTime,
    pub window_end: time::OffsetDateTime,
    pub event_ids: Vec<Uuid>,
    pub affected_subjects: i64,
    pub revision: i64,
}

/// A timeline note as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub incident_id: Uuid,
    pub created_at: time::OffsetDateTime,
    pub author: Vec<u8>,
    pub text: String,
}

impl NoteRow {
    /// The author, decoded.
    pub fn author(&self) -> Option<Actor> {
        Actor::decode(self.author.as_slice()).ok()
    }
}

const COLUMNS: &str = "incident_id, tenant_id, rule, severity, state, summary, opened_at,
    notification_deadline, acknowledged_at, notified_at, closed_at, window_start, window_end,
    event_ids, affected_subjects, revision";

/// Whether the rule and key already have an incident that is not closed and was opened
/// within the cooldown.
pub async fn active_exists(
    conn: &mut PgConnection,
    rule: &str,
    tenant: Option<Uuid>,
    key: &str,
    cooldown_secs: i64,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM incidents
             WHERE rule = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND rule_key = $3
               AND state <> $4 AND opened_at > now() - make_interval(secs => $5))",
    )
    .bind(rule)
    .bind(tenant)
    .bind(key)
    .bind(IncidentState::Closed as i16)
    .bind(cooldown_secs as f64)
    .fetch_one(conn)
    .await
}

/// Opens an incident now, with its deadline 72 hours later.
pub async fn insert(
    conn: &mut PgConnection,
    incident: &NewIncident,
) -> Result<IncidentRow, AuditError> {
    let opened_at = now_millis();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO incidents (incident_id, tenant_id, rule, rule_key, severity, state,
             summary, opened_at, notification_deadline, window_start, window_end, event_ids,
             affected_subjects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(incident.tenant_id)
    .bind(incident.rule)
    .bind(&incident.rule_key)
    .bind(incident.severity as i16)
    .bind(IncidentState::Open as i16)
    .bind(&incident.summary)
    .bind(opened_at)
    .bind(opened_at + time::Duration::hours(NOTIFICATION_HOURS))
    .bind(incident.window_start)
    .bind(incident.window_end)
    .bind(&incident.event_ids)
    .bind(incident.affected_subjects)
    .fetch_one(conn)
    .await?;
    Ok(row)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// None: every tenant (platform administrators).
    pub tenant: Option<Uuid>,
    /// States as `IncidentState` numbers; empty means all.
    pub states: Vec<i16>,
    pub opened_from: Option<time::OffsetDateTime>,
    pub opened_until: Option<time::OffsetDateTime>,
    /// Only incidents ordered after this id (ids are UUIDv7, so this is opening order).
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Incidents matching `filter`, oldest first.
pub async fn list(db: impl PgExecutor<'_>, filter: &ListFilter) -> sqlx::Result<Vec<IncidentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM incidents
         WHERE ($1::uuid IS NULL OR tenant_id = $1)
           AND (cardinality($2::smallint[]) = 0 OR state = ANY($2))
           AND ($3::timestamptz IS NULL OR opened_at >= $3)
           AND ($4::timestamptz IS NULL OR opened_at < $4)
           AND ($5::uuid IS NULL OR incident_id > $5)
         ORDER BY incident_id LIMIT $6"
    )))
    .bind(filter.tenant)
    .bind(&filter.states)
    .bind(filter.opened_from)
    .bind(filter.opened_until)
    .bind(filter.after)
    .bind(filter.limit)
    .fetch_all(db)
    .await
}

/// The notes of `ids`, oldest first.
pub async fn notes(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<NoteRow>> {
    sqlx::query_as(
        "SELECT incident_id, created_at, author, text FROM incident_notes
         WHERE incident_id = ANY($1) ORDER BY seq",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// The incident, locked for an update, if the tenant may see it.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
    tenant: Option<Uuid>,
) -> sqlx::Result<Option<IncidentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM incidents
         WHERE incident_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) FOR UPDATE"
    )))
    .bind(id)
    .bind(tenant)
    .fetch_optional(conn)
    .await
}

/// Why a state change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not a state an incident can be moved to.
    #[error("unknown incident state")]
    Unknown,
    /// States only move forward.
    #[error("incident cannot move from {from} to {to}")]
    Backwards {
        /// Current state name.
        from: &'static str,
        /// Requested state name.
        to: &'static str,
    },
}

fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Unspecified => "unspecified",
        IncidentState::Open => "open",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Notified => "notified",
        IncidentState::Closed => "closed",
    }
}

/// Checks a move along open, acknowledged, notified, closed (skipping ahead is allowed,
/// staying or going back is not).
pub fn check_transition(from: i16, to: i32) -> Result<IncidentState, TransitionError> {
    let from = IncidentState::try_from(i32::from(from)).map_err(|_| TransitionError::Unknown)?;
    let to = IncidentState::try_from(to).map_err(|_| TransitionError::Unknown)?;
    if to == IncidentState::Unspecified {
        return Err(TransitionError::Unknown);
    }
    if (to as i32) <= (from as i32) {
        return Err(TransitionError::Backwards {
            from: state_name(from),
            to: state_name(to),
        });
    }
    Ok(to)
}

/// Moves the incident to `to` (stamping the time of the step) and bumps its revision.
pub async fn set_state(conn: &mut PgConnection, id: Uuid, to: IncidentState) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE incidents SET state = $2,
             acknowledged_at = CASE WHEN $2 = 2 THEN now() ELSE acknowledged_at END,
             notified_at = CASE WHEN $2 = 3 THEN now() ELSE notified_at END,
             closed_at = CASE WHEN $2 = 4 THEN now() ELSE closed_at END
         WHERE incident_id = $1",
    )
    .bind(id)
    .bind(to as i16)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a note and bumps the revision.
pub async fn add_note(
    conn: &mut PgConnection,
    id: Uuid,
    author: &Actor,
    text: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO incident_notes (incident_id, author, text) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(author.encode_to_vec())
        .bind(text)
        .execute(conn)
        .await?;
    Ok(())
}

/// Increments the revision after an update.
pub async fn bump_revision(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE incidents SET revision = revision + 1 WHERE incident_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The current time at millisecond precision (what every encoding round-trips).
pub fn now_millis() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_only_move_forward() {
        let open = IncidentState::Open as i16;
        let notified = IncidentState::Notified as i16;
        assert_eq!(
            check_transition(open, IncidentState::Acknowledged as i32),
            Ok(IncidentState::Acknowledged)
        );
        assert_eq!(
            check_transition(open, IncidentState::Closed as i32),
            Ok(IncidentState::Closed)
        );
        assert_eq!(
            check_transition(notified, IncidentState::Acknowledged as i32),
            Err(TransitionError::Backwards {
                from: "notified",
                to: "acknowledged"
            })
        );
        assert!(check_transition(open, IncidentState::Open as i32).is_err());
        assert_eq!(check_transition(open, 42), Err(TransitionError::Unknown));
        assert_eq!(check_transition(open, 0), Err(TransitionError::Unknown));
    }
}
