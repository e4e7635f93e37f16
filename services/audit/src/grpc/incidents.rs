//! `ListIncidents` and `UpdateIncident`.

use std::collections::HashMap;

use tonic::{Request, Response, Status};
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::convert::{role_to_proto, timestamp};
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::types::RequestId;
use veil_proto::audit::v1::{
    Incident, IncidentNote, ListIncidentsRequest, ListIncidentsResponse, UpdateIncidentRequest,
    UpdateIncidentResponse,
};
use veil_proto::common::v1::{Actor, ActorKind, IncidentState, PageResponse, TimeRange};
use veil_proto::events::v1::AuditIncidentUpdated;
use veil_proto::events::v1::event::Payload;

use super::AuditApi;
use super::scope::{INCIDENT_HANDLERS, READERS, page, tenant_scope, time_range, token};
use crate::error::AuditError;
use crate::incidents::{self, IncidentRow, ListFilter, NoteRow};

/// Longest note accepted.
const MAX_NOTE_BYTES: usize = 4_000;

/// The wire form of an incident and its notes.
pub(crate) fn incident_to_proto(row: IncidentRow, notes: Vec<&NoteRow>) -> Incident {
    Incident {
        incident_id: row.incident_id.to_string(),
        rule: row.rule,
        severity: i32::from(row.severity),
        state: i32::from(row.state),
        summary: row.summary,
        opened_at: Some(timestamp(row.opened_at)),
        notification_deadline: Some(timestamp(row.notification_deadline)),
        acknowledged_at: row.acknowledged_at.map(timestamp),
        notified_at: row.notified_at.map(timestamp),
        closed_at: row.closed_at.map(timestamp),
        window: Some(TimeRange {
            start: Some(timestamp(row.window_start)),
            end: Some(timestamp(row.window_end)),
        }),
        event_ids: row.event_ids.iter().map(Uuid::to_string).collect(),
        affected_subjects: row.affected_subjects,
        notes: notes
            .into_iter()
            .map(|note| IncidentNote {
                created_at: Some(timestamp(note.created_at)),
                author: note.author(),
                text: note.text.clone(),
            })
            .collect(),
        revision: row.revision,
    }
}

/// Incidents with their notes attached.
pub(crate) async fn with_notes(
    db: &sqlx::PgPool,
    rows: Vec<IncidentRow>,
) -> Result<Vec<Incident>, AuditError> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.incident_id).collect();
    let notes = incidents::notes(db, &ids).await?;
    let mut by_incident: HashMap<Uuid, Vec<&NoteRow>> = HashMap::new();
    for note in &notes {
        by_incident.entry(note.incident_id).or_default().push(note);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let notes = by_incident.remove(&row.incident_id).unwrap_or_default();
            incident_to_proto(row, notes)
        })
        .collect())
}

pub(super) async fn list(
    api: &AuditApi,
    request: Request<ListIncidentsRequest>,
) -> Result<Response<ListIncidentsResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let tenant = tenant_scope(principal)?;
    let request = request.into_inner();
    let (limit, after) = page(request.page.as_ref(), "incidents:")?;
    let after = after
        .map(|a| a.parse::<Uuid>())
        .transpose()
        .map_err(|_| ServiceError::invalid("page.page_token", "is not a token of this list"))?;
    let (from, until) = time_range(request.opened.as_ref(), "opened")?;
    let mut states = Vec::with_capacity(request.states.len());
    for (i, state) in request.states.iter().enumerate() {
        match IncidentState::try_from(*state) {
            Ok(IncidentState::Unspecified) | Err(_) => {
                return Err(ServiceError::invalid(format!("states[{i}]"), "unknown state").into());
            }
            // Each once: the list becomes a query parameter.
            Ok(state) if !states.contains(&(state as i16)) => states.push(state as i16),
            Ok(_) => {}
        }
    }
    let filter = ListFilter {
        tenant,
        states,
        opened_from: from,
        opened_until: until,
        after,
        limit: limit + 1,
    };
    let mut rows = incidents::list(&api.pool, &filter)
        .await
        .map_err(ServiceError::from)?;
    let next = if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.last()
            .map(|row| token("incidents:", &row.incident_id.to_string()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Response::new(ListIncidentsResponse {
        incidents: with_notes(&api.pool, rows).await?,
        page: Some(PageResponse {
            next_page_token: next,
        }),
    }))
}

fn actor_of(principal: &Principal) -> Actor {
    Actor {
        kind: ActorKind::User as i32,
        principal_id: principal.principal_id.as_str().to_owned(),
        roles: principal
            .roles
            .iter()
            .map(|role| role_to_proto(*role) as i32)
            .collect(),
        tenant_id: principal.tenant.map(|t| t.to_string()).unwrap_or_default(),
    }
}

pub(super) async fn update(
    api: &AuditApi,
    request: Request<UpdateIncidentRequest>,
) -> Result<Response<UpdateIncidentResponse>, Status> {
    let principal = Principal::from_request(&request)?.clone();
    principal.require_any(INCIDENT_HANDLERS)?;
    let tenant = tenant_scope(&principal)?;
    let request = request.into_inner();
    let id: Uuid = request
        .incident_id
        .parse()
        .map_err(|_| ServiceError::invalid("incident_id", "must be a UUID"))?;
    if request.note.len() > MAX_NOTE_BYTES {
        return Err(ServiceError::invalid("note", "must be at most 4000 bytes").into());
    }
    let keeps_state = request.state == IncidentState::Unspecified as i32;
    if keeps_state && request.note.trim().is_empty() {
        return Err(ServiceError::invalid("state", "a new state or a note is required").into());
    }
    let mut tx = veil_core::db::begin(&api.pool)
        .await
        .map_err(ServiceError::from)?;
    let current = incidents::get_for_update(&mut tx, id, tenant)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound("incident".into()))?;
    if request.expected_revision != 0 && request.expected_revision != current.revision {
        return Err(Status::aborted("incident was changed by someone else"));
    }
    let author = actor_of(&principal);
    if !keeps_state {
        let to = incidents::check_transition(current.state, request.state)
            .map_err(|e| ServiceError::FailedPrecondition(e.to_string()))?;
        incidents::set_state(&mut tx, id, to)
            .await
            .map_err(ServiceError::from)?;
        let context = EventContext {
            tenant: current.tenant_id.map(veil_core::types::TenantId::from_uuid),
            subject_ref: None,
            actor: Some(author.clone()),
            request_id: request_id(&principal.request_id),
        };
        let from = IncidentState::try_from(i32::from(current.state)).unwrap_or_default();
        emit(
            &mut *tx,
            &api.events,
            &context,
            Payload::AuditIncidentUpdated(AuditIncidentUpdated {
                incident_id: id.to_string(),
                from_state: from as i32,
                to_state: to as i32,
            }),
        )
        .await
        .map_err(AuditError::from)?;
    }
    if !request.note.trim().is_empty() {
        incidents::add_note(&mut tx, id, &author, request.note.trim())
            .await
            .map_err(ServiceError::from)?;
    }
    incidents::bump_revision(&mut tx, id)
        .await
        .map_err(ServiceError::from)?;
    let updated = incidents::get_for_update(&mut tx, id, tenant)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound("incident".into()))?;
    tx.commit().await.map_err(ServiceError::from)?;
    api.relay.notify();
    let mut incident = with_notes(&api.pool, vec![updated]).await?;
    Ok(Response::new(UpdateIncidentResponse {
        incident: incident.pop(),
    }))
}

fn request_id(id: &RequestId) -> String {
    id.as_str().to_owned()
}
