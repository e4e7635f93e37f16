//! Anomaly rules over the appended events, evaluated by the writer inside each batch's
//! transaction (one writer at a time, so windows are counted exactly once).
//!
//! Every event a rule counts is kept in `rule_events` with the key it is grouped by;
//! after each batch the windows of the touched keys are counted in Postgres, so the
//! rules survive restarts and fail-over between replicas. A rule that reaches its
//! threshold opens an incident (72-hour notification deadline, GDPR Art. 33) and emits
//! `audit.incident_opened` in the same transaction.

use std::collections::BTreeMap;

use prost::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use veil_core::emit::{EventContext, emit};
use veil_core::events::EventsConfig;
use veil_proto::common::v1::IncidentSeverity;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{AuditIncidentOpened, Event};

use crate::error::AuditError;
use crate::incidents::{self, NewIncident};
use crate::settings::AuditSettings;
use crate::writer::QueuedRow;

/// Rule names as they appear on incidents.
pub const REVEAL_BURST: &str = "reveal_burst";
/// Repeated authentication failures.
pub const AUTH_FAILURE_BURST: &str = "auth_failure_burst";
/// Unusual volume of personal data found in one tenant's messages.
pub const PII_VOLUME_SPIKE: &str = "pii_volume_spike";

/// Thresholds and windows of the rules.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    reveal: Threshold,
    auth_failure: Threshold,
    pii_volume: Threshold,
    cooldown_secs: i64,
}

#[derive(Debug, Clone, Copy)]
struct Threshold {
    limit: i64,
    window_secs: i64,
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<&AuditSettings> for RuleSettings {
    fn from(settings: &AuditSettings) -> Self {
        Self {
            reveal: Threshold {
                limit: secs(settings.reveal_burst_threshold),
                window_secs: secs(settings.reveal_window_secs),
            },
            auth_failure: Threshold {
                limit: secs(settings.auth_failure_threshold),
                window_secs: secs(settings.auth_failure_window_secs),
            },
            pii_volume: Threshold {
                limit: secs(settings.pii_volume_threshold),
                window_secs: secs(settings.pii_volume_window_secs),
            },
            cooldown_secs: secs(settings.incident_cooldown_secs),
        }
    }
}

/// One counted event.
#[derive(Debug, Clone)]
struct Hit {
    rule: &'static str,
    tenant: Uuid,
    key: String,
    occurred_at: time::OffsetDateTime,
    event_id: Uuid,
    subject_ref: Option<String>,
    weight: i64,
}

/// What a window holds for one rule and key.
#[derive(Debug, sqlx::FromRow)]
struct WindowCount {
    events: i64,
    weight: i64,
    subjects: i64,
    first: time::OffsetDateTime,
    last: time::OffsetDateTime,
    event_ids: Vec<Uuid>,
}

/// The rule engine.
#[derive(Debug, Clone)]
pub struct Rules {
    settings: RuleSettings,
    events: EventsConfig,
}

impl Rules {
    /// Rules with `settings`, emitting into `events`' namespace.
    pub fn new(settings: RuleSettings, events: EventsConfig) -> Self {
        Self { settings, events }
    }

    fn threshold(&self, rule: &str) -> Threshold {
        match rule {
            REVEAL_BURST => self.settings.reveal,
            AUTH_FAILURE_BURST => self.settings.auth_failure,
            _ => self.settings.pii_volume,
        }
    }

    /// Counts the batch's relevant events and opens the incidents they trigger;
    /// returns how many were opened.
    pub async fn evaluate(
        &self,
        conn: &mut PgConnection,
        rows: &[QueuedRow],
    ) -> Result<usize, AuditError> {
        let hits: Vec<Hit> = rows.iter().filter_map(hit_of).collect();
        if hits.is_empty() {
            return Ok(0);
        }
        record(conn, &hits).await?;
        // The latest event time per rule and key: the window ends there.
        let mut touched: BTreeMap<(&'static str, Uuid, String), time::OffsetDateTime> =
            BTreeMap::new();
        for hit in &hits {
            let end = touched
                .entry((hit.rule, hit.tenant, hit.key.clone()))
                .or_insert(hit.occurred_at);
            *end = (*end).max(hit.occurred_at);
        }
        let mut opened = 0;
        for ((rule, tenant, key), end) in touched {
            let threshold = self.threshold(rule);
            // The per-second sums bound the window from above (its first and last
            // seconds count whole): below the threshold, nothing can open.
            let (events, weight): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(sum(events), 0)::bigint, COALESCE(sum(weight), 0)::bigint
                 FROM rule_buckets
                 WHERE rule = $1 AND tenant_id = $2 AND rule_key = $3
                   AND second > $4 - make_interval(secs => $5 + 1) AND second <= $4",
            )
            .bind(rule)
            .bind(tenant)
            .bind(&key)
            .bind(end)
            .bind(threshold.window_secs as f64)
            .fetch_one(&mut *conn)
            .await?;
            let bound = if rule == PII_VOLUME_SPIKE {
                weight
            } else {
                events
            };
            if bound < threshold.limit {
                continue;
            }
            let incident_tenant = (!tenant.is_nil()).then_some(tenant);
            if incidents::active_exists(
                &mut *conn,
                rule,
                incident_tenant,
                &key,
                self.settings.cooldown_secs,
            )
            .await?
            {
                continue;
            }
            let count: WindowCount = sqlx::query_as(
                "SELECT count(*) AS events, COALESCE(sum(weight), 0)::bigint AS weight,
                        count(DISTINCT subject_ref) AS subjects,
                        min(occurred_at) AS first, max(occurred_at) AS last,
                        (array_agg(event_id ORDER BY occurred_at))[1:100] AS event_ids
                 FROM rule_events
                 WHERE rule = $1 AND tenant_id = $2 AND rule_key = $3
                   AND occurred_at > $4 - make_interval(secs => $5) AND occurred_at <= $4",
            )
            .bind(rule)
            .bind(tenant)
            .bind(&key)
            .bind(end)
            .bind(threshold.window_secs as f64)
            .fetch_one(&mut *conn)
            .await?;
            let measure = if rule == PII_VOLUME_SPIKE {
                count.weight
            } else {
                count.events
            };
            if measure < threshold.limit {
                continue;
            }
            let tenant = incident_tenant;
            let incident = NewIncident {
                tenant_id: tenant,
                rule,
                rule_key: key,
                severity: severity_of(rule),
                summary: summary_of(rule, measure, threshold),
                window_start: count.first,
                window_end: count.last,
                event_ids: count.event_ids,
                affected_subjects: count.subjects,
            };
            let opened_row = incidents::insert(&mut *conn, &incident).await?;
            let context = EventContext {
                tenant: tenant.map(veil_core::types::TenantId::from_uuid),
                subject_ref: None,
                actor: Some(incidents::system_actor()),
                request_id: String::new(),
            };
            emit(
                &mut *conn,
                &self.events,
                &context,
                Payload::AuditIncidentOpened(AuditIncidentOpened {
                    incident_id: opened_row.incident_id.to_string(),
                    rule: rule.to_string(),
                    severity: incident.severity as i32,
                    notification_deadline: Some(veil_core::convert::timestamp(
                        opened_row.notification_deadline,
                    )),
                    event_count: count.events,
                }),
            )
            .await?;
            tracing::warn!(rule, incident_id = %opened_row.incident_id, "incident opened");
            opened += 1;
        }
        Ok(opened)
    }

    /// Deletes counted events older than the longest window.
    pub async fn prune(&self, pool: &PgPool) -> Result<u64, AuditError> {
        let longest = [
            self.settings.reveal,
            self.settings.auth_failure,
            self.settings.pii_volume,
        ]
        .iter()
        .map(|t| t.window_secs)
        .max()
        .unwrap_or(86_400);
        // Events may arrive late; keep twice the window.
        let done = sqlx::query(
            "DELETE FROM rule_events WHERE occurred_at < now() - make_interval(secs => $1)",
        )
        .bind((longest * 2) as f64)
        .execute(pool)
        .await?;
        sqlx::query("DELETE FROM rule_buckets WHERE second < now() - make_interval(secs => $1)")
            .bind((longest * 2) as f64)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}

async fn record(conn: &mut PgConnection, hits: &[Hit]) -> sqlx::Result<()> {
    let rules: Vec<&str> = hits.iter().map(|h| h.rule).collect();
    let tenants: Vec<Uuid> = hits.iter().map(|h| h.tenant).collect();
    let keys: Vec<&str> = hits.iter().map(|h| h.key.as_str()).collect();
    let times: Vec<time::OffsetDateTime> = hits.iter().map(|h| h.occurred_at).collect();
    let ids: Vec<Uuid> = hits.iter().map(|h| h.event_id).collect();
    let subjects: Vec<Option<&str>> = hits.iter().map(|h| h.subject_ref.as_deref()).collect();
    let weights: Vec<i64> = hits.iter().map(|h| h.weight).collect();
    sqlx::query(
        "INSERT INTO rule_events (rule, tenant_id, rule_key, occurred_at, event_id,
                                  subject_ref, weight)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::timestamptz[],
                              $5::uuid[], $6::text[], $7::bigint[])",
    )
    .bind(&rules)
    .bind(&tenants)
    .bind(&keys)
    .bind(&times)
    .bind(&ids)
    .bind(&subjects)
    .bind(&weights)
    .execute(&mut *conn)
    .await?;
    record_buckets(conn, hits).await
}

/// Adds the hits to their per-second sums (one row per rule, key and second).
async fn record_buckets(conn: &mut PgConnection, hits: &[Hit]) -> sqlx::Result<()> {
    let mut buckets: BTreeMap<(&str, Uuid, &str, time::OffsetDateTime), (i64, i64)> =
        BTreeMap::new();
    for hit in hits {
        let second = hit
            .occurred_at
            .replace_nanosecond(0)
            .unwrap_or(hit.occurred_at);
        let sums = buckets
            .entry((hit.rule, hit.tenant, hit.key.as_str(), second))
            .or_default();
        sums.0 += 1;
        sums.1 = sums.1.saturating_add(hit.weight);
    }
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((rule, tenant, key, second), (events, weight)) in buckets {
        columns.0.push(rule);
        columns.1.push(tenant);
        columns.2.push(key);
        columns.3.push(second);
        columns.4.push(events);
        columns.5.push(weight);
    }
    sqlx::query(
        "INSERT INTO rule_buckets (rule, tenant_id, rule_key, second, events, weight)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::timestamptz[],
                              $5::bigint[], $6::bigint[])
         ON CONFLICT (rule, tenant_id, rule_key, second) DO UPDATE
         SET events = rule_buckets.events + excluded.events,
             weight = rule_buckets.weight + excluded.weight",
    )
    .bind(&columns.0)
    .bind(&columns.1)
    .bind(&columns.2)
    .bind(&columns.3)
    .bind(&columns.4)
    .bind(&columns.5)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rule an appended event counts for, if any. Audit's own events count for none,
/// so incidents never feed back into the rules.
fn hit_of(row: &QueuedRow) -> Option<Hit> {
    let (rule, key, weight) = match row.event_type.as_str() {
        "vault.revealed" => (
            REVEAL_BURST,
            row.actor_id.clone().unwrap_or_else(|| "unknown".into()),
            1,
        ),
        "gateway.auth_failed" => {
            let event = Event::decode(row.envelope.as_slice()).ok()?;
            let Some(Payload::GatewayAuthFailed(failed)) = event.payload else {
                return None;
            };
            // Keyed hash of the peer, else the key's public prefix: never an address.
            let key = [failed.peer_ref, failed.key_prefix]
                .into_iter()
                .find(|k| !k.is_empty())
                .unwrap_or_else(|| "unknown".into());
            (AUTH_FAILURE_BURST, key, 1)
        }
        "gateway.message_processed" => {
            let event = Event::decode(row.envelope.as_slice()).ok()?;
            let Some(Payload::GatewayMessageProcessed(processed)) = event.payload else {
                return None;
            };
            let entities: i64 = processed.entity_counts.values().copied().sum();
            if entities <= 0 {
                return None;
            }
            (PII_VOLUME_SPIKE, String::new(), entities)
        }
        _ => return None,
    };
    Some(Hit {
        rule,
        tenant: row.tenant_id.unwrap_or(Uuid::nil()),
        key,
        occurred_at: row.occurred_at,
        event_id: row.event_id,
        subject_ref: row.subject_ref.clone(),
        weight,
    })
}

fn severity_of(rule: &str) -> IncidentSeverity {
    match rule {
        REVEAL_BURST => IncidentSeverity::High,
        _ => IncidentSeverity::Medium,
    }
}

fn summary_of(rule: &str, measure: i64, threshold: Threshold) -> String {
    let window = threshold.window_secs;
    let limit = threshold.limit;
    match rule {
        REVEAL_BURST => {
            format!("{measure} reveals by one principal within {window} s (threshold {limit})")
        }
        AUTH_FAILURE_BURST => format!(
            "{measure} authentication failures from one peer within {window} s (threshold {limit})"
        ),
        _ => format!(
            "{measure} personal-data entities in one tenant's messages within {window} s (threshold {limit})"
        ),
    }
}
