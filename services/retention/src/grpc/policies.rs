//! Retention policies, legal holds and sweeps: validation at the edge, then storage and
//! events in one transaction.

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use veil_core::convert::from_timestamp;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::common::v1::PageResponse;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{LegalHoldChanged, RetentionPolicyChanged};
use veil_proto::retention::v1::*;

use crate::policies::caller::{self, Caller};
use crate::policies::hold_store::{self, HoldFilter, NewHold};
use crate::policies::rules;
use crate::policies::store::{self, PolicyRow, Upserted};
use crate::state::Retention;
use crate::sweep;

const OFFICER: &[Role] = &[Role::PrivacyOfficer];
const POLICY_READERS: &[Role] = &[Role::PrivacyOfficer, Role::Auditor, Role::Admin];
const HOLD_READERS: &[Role] = &[Role::PrivacyOfficer, Role::Auditor];

/// Longest hold reason and case reference kept.
const MAX_REASON: usize = 500;
const MAX_CASE_REFERENCE: usize = 200;

fn id(field: &str, value: &str) -> Result<Uuid, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    Uuid::try_parse(value).map_err(|_| ServiceError::invalid(field, "must be a uuid"))
}

fn policy_event(row: &PolicyRow, deleted: bool) -> Payload {
    Payload::RetentionPolicyChanged(RetentionPolicyChanged {
        policy_id: row.policy_id.to_string(),
        category: row.category,
        purpose_key: row.purpose_key.clone(),
        period: Some(prost_types::Duration {
            seconds: row.period_secs,
            nanos: 0,
        }),
        action: row.action,
        deleted,
    })
}

pub async fn set_policy(
    state: &Retention,
    request: Request<SetPolicyRequest>,
) -> Result<Response<SetPolicyResponse>, Status> {
    let caller = Caller::of(&request, OFFICER)?;
    let policy = request
        .into_inner()
        .policy
        .ok_or_else(|| ServiceError::invalid("policy", "is required"))?;
    let spec = rules::validate(&policy, &state.settings)?;
    let mut tx = veil_core::db::begin(&state.pool)
        .await
        .map_err(ServiceError::from)?;
    let (row, outcome) = store::upsert(&mut tx, caller.tenant, &spec, &caller.actor()).await?;
    if outcome != Upserted::Unchanged {
        state
            .emit(&mut tx, &caller.context(None), policy_event(&row, false))
            .await?;
    }
    tx.commit().await.map_err(ServiceError::from)?;
    state.notify_relay();
    Ok(Response::new(SetPolicyResponse {
        policy: Some(row.to_proto(caller.tenant)),
        created: outcome == Upserted::Created,
    }))
}

pub async fn list_policies(
    state: &Retention,
    request: Request<ListPoliciesRequest>,
) -> Result<Response<ListPoliciesResponse>, Status> {
    let caller = Caller::of(&request, POLICY_READERS)?;
    let message = request.into_inner();
    let category = match message.category {
        0 => None,
        value => Some(rules::category("category", value)? as i32),
    };
    let limit = caller::page_size(message.page.as_ref())?;
    let cursor = caller::page_cursor(message.page.as_ref())?;
    let after = match cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let (category, purpose) = cursor
                .split_once(':')
                .and_then(|(c, p)| c.parse::<i32>().ok().map(|c| (c, p)))
                .ok_or_else(|| {
                    ServiceError::invalid("page.page_token", "is not a token from this api")
                })?;
            Some((category, purpose))
        }
    };
    let mut conn = state.pool.acquire().await.map_err(ServiceError::from)?;
    let mut rows = store::list(&mut conn, caller.tenant, category, after, limit + 1).await?;
    let next_page_token = page_after(&mut rows, limit, |last| {
        format!("{}:{}", last.category, last.purpose_key)
    });
    Ok(Response::new(ListPoliciesResponse {
        policies: rows.iter().map(|r| r.to_proto(caller.tenant)).collect(),
        page: Some(PageResponse { next_page_token }),
    }))
}

/// Cuts a page fetched with `limit + 1` rows down to `limit`; the token of the next
/// page when there is one.
fn page_after<T>(rows: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> String {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return String::new();
    }
    rows.truncate(limit);
    rows.last()
        .map(|last| caller::page_token(&cursor(last)))
        .unwrap_or_default()
}

pub async fn delete_policy(
    state: &Retention,
    request: Request<DeletePolicyRequest>,
) -> Result<Response<DeletePolicyResponse>, Status> {
    let caller = Caller::of(&request, OFFICER)?;
    let policy_id = id("policy_id", &request.get_ref().policy_id)?;
    let mut tx = veil_core::db::begin(&state.pool)
        .await
        .map_err(ServiceError::from)?;
    let row = store::delete(&mut tx, caller.tenant, policy_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("policy".into()))?;
    state
        .emit(&mut tx, &caller.context(None), policy_event(&row, true))
        .await?;
    tx.commit().await.map_err(ServiceError::from)?;
    state.notify_relay();
    Ok(Response::new(DeletePolicyResponse {
        policy: Some(row.to_proto(caller.tenant)),
    }))
}

fn hold_event(row: &hold_store::HoldRow) -> LegalHoldChanged {
    LegalHoldChanged {
        hold_id: row.hold_id.to_string(),
        tenant_wide: row.subject_ref.is_none(),
        case_reference: row.case_reference.clone(),
    }
}

pub async fn place_hold(
    state: &Retention,
    request: Request<PlaceHoldRequest>,
) -> Result<Response<PlaceHoldResponse>, Status> {
    let caller = Caller::of(&request, OFFICER)?;
    let message = request.into_inner();
    let subject = caller::subject_ref(
        &state.subjects,
        &caller.tenant,
        "subject",
        message.subject.as_ref(),
    )?;
    caller::note("reason", &message.reason, MAX_REASON, true)?;
    caller::note(
        "case_reference",
        &message.case_reference,
        MAX_CASE_REFERENCE,
        false,
    )?;
    let expires_at = match message.expires_at.as_ref() {
        None => None,
        Some(ts) => {
            let at = from_timestamp(ts)
                .ok_or_else(|| ServiceError::invalid("expires_at", "is out of range"))?;
            if at <= OffsetDateTime::now_utc() {
                return Err(ServiceError::invalid("expires_at", "must be in the future").into());
            }
            Some(at)
        }
    };
    let hold = NewHold {
        subject: subject.as_ref(),
        reason: &message.reason,
        case_reference: &message.case_reference,
        expires_at,
    };
    let mut tx = veil_core::db::begin(&state.pool)
        .await
        .map_err(ServiceError::from)?;
    let row = hold_store::insert(&mut tx, caller.tenant, &hold, &caller.actor()).await?;
    state
        .emit(
            &mut tx,
            &caller.context(subject.as_ref()),
            Payload::RetentionHoldPlaced(hold_event(&row)),
        )
        .await?;
    tx.commit().await.map_err(ServiceError::from)?;
    state.notify_relay();
    Ok(Response::new(PlaceHoldResponse {
        hold: Some(row.to_proto(caller.tenant)),
    }))
}

pub async fn release_hold(
    state: &Retention,
    request: Request<ReleaseHoldRequest>,
) -> Result<Response<ReleaseHoldResponse>, Status> {
    let caller = Caller::of(&request, OFFICER)?;
    let message = request.into_inner();
    let hold_id = id("hold_id", &message.hold_id)?;
    caller::note("reason", &message.reason, MAX_REASON, true)?;
    let mut tx = veil_core::db::begin(&state.pool)
        .await
        .map_err(ServiceError::from)?;
    let held = hold_store::lock(&mut tx, caller.tenant, hold_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("hold".into()))?;
    if held.released_at.is_some() {
        return Err(ServiceError::FailedPrecondition(format!(
            "hold {hold_id} is already released"
        ))
        .into());
    }
    let row = hold_store::release(
        &mut tx,
        caller.tenant,
        hold_id,
        &message.reason,
        &caller.actor(),
    )
    .await?;
    state
        .emit(
            &mut tx,
            &caller.context(row.subject().as_ref()),
            Payload::RetentionHoldReleased(hold_event(&row)),
        )
        .await?;
    tx.commit().await.map_err(ServiceError::from)?;
    state.notify_relay();
    // Requests waiting on this hold resume now rather than at the saga's next tick.
    state.saga_wake.notify_waiters();
    Ok(Response::new(ReleaseHoldResponse {
        hold: Some(row.to_proto(caller.tenant)),
    }))
}

pub async fn list_holds(
    state: &Retention,
    request: Request<ListHoldsRequest>,
) -> Result<Response<ListHoldsResponse>, Status> {
    let caller = Caller::of(&request, HOLD_READERS)?;
    let message = request.into_inner();
    let subject = caller::subject_ref(
        &state.subjects,
        &caller.tenant,
        "subject",
        message.subject.as_ref(),
    )?;
    let limit = caller::page_size(message.page.as_ref())?;
    let after = match caller::page_cursor(message.page.as_ref())? {
        None => None,
        Some(cursor) => Some(hold_cursor(&cursor).ok_or_else(|| {
            ServiceError::invalid("page.page_token", "is not a token from this api")
        })?),
    };
    let filter = HoldFilter {
        subject: subject.as_ref(),
        include_released: message.include_released,
        after,
        limit: limit + 1,
    };
    let mut conn = state.pool.acquire().await.map_err(ServiceError::from)?;
    let mut rows = hold_store::list(&mut conn, caller.tenant, &filter).await?;
    let next_page_token = page_after(&mut rows, limit, |last| {
        format!("{}:{}", last.placed_at.unix_timestamp_nanos(), last.hold_id)
    });
    Ok(Response::new(ListHoldsResponse {
        holds: rows.iter().map(|r| r.to_proto(caller.tenant)).collect(),
        page: Some(PageResponse { next_page_token }),
    }))
}

/// (placed_at, hold_id) from a hold page cursor.
fn hold_cursor(cursor: &str) -> Option<(OffsetDateTime, Uuid)> {
    let (nanos, id) = cursor.split_once(':')?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
    Some((at, Uuid::try_parse(id).ok()?))
}

pub async fn run_sweep(
    state: &std::sync::Arc<Retention>,
    request: Request<RunSweepRequest>,
) -> Result<Response<RunSweepResponse>, Status> {
    let caller = Caller::of(&request, OFFICER)?;
    let message = request.into_inner();
    let mut categories = Vec::with_capacity(message.categories.len());
    for (i, value) in message.categories.iter().enumerate() {
        let category = rules::category(&format!("categories[{i}]"), *value)?;
        if !categories.contains(&category) {
            categories.push(category);
        }
    }
    let order = sweep::Order {
        tenant: caller.tenant,
        dry_run: message.dry_run,
        categories,
        trigger: sweep::Trigger::Manual(caller.context(None)),
    };
    Ok(Response::new(
        sweep::run_detached(state.clone(), order).await?,
    ))
}
