//! The erasure and export sagas of data-subject requests.
//!
//! Erasure: [`begin`] writes `retention.erasure_requested` (expected services: gateway,
//! vault, consent) into the outbox in the caller's transaction, opens one step per
//! service and moves the request to IN_PROGRESS. Each service erases and answers with
//! its own `erasure_completed`; [`consumer`] records the answers idempotently and, once
//! every step is done, [`finish`] issues the certificate, notifies the recipients and
//! completes the request in the same transaction. [`driver`] asks again for steps
//! unanswered after `saga_retry_secs` (the services are idempotent).
//!
//! Access and portability: [`begin`] opens an export job; the driver checks that the
//! export can be collected from every service and then completes the request with
//! `export_ready` (the contents are collected again at download, see [`crate::export`]).

mod consumer;
mod driver;
mod finish;
mod steps;

use sqlx::PgConnection;
use veil_core::app::Foundation;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_proto::common::v1::{RequestState, RequestType, VeilService};
use veil_proto::events::v1::RetentionErasureRequested;
use veil_proto::events::v1::event::Payload;

use crate::requests::store::{self as requests, RequestRow};
use crate::state::Retention;

pub use driver::spawn as spawn_driver;

/// Services that hold a subject's data and must each confirm an erasure.
pub const ERASING_SERVICES: [VeilService; 3] = [
    VeilService::Gateway,
    VeilService::Vault,
    VeilService::Consent,
];

/// Starts the saga of a verified, unblocked ERASURE, ACCESS or PORTABILITY request
/// inside the caller's transaction and moves it to IN_PROGRESS. The caller wakes
/// `state.saga_wake` after its commit so exports start at once.
pub async fn begin(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
) -> Result<(), ServiceError> {
    match row.request_type {
        RequestType::Erasure => {
            let labels = ERASING_SERVICES.map(crate::certificate::service_label);
            steps::open(conn, row.tenant.as_uuid(), row.request_id, &labels).await?;
            request_erasure(conn, state, row, &ERASING_SERVICES).await?;
        }
        RequestType::Access | RequestType::Portability => {
            crate::export::jobs::open(conn, row).await?;
        }
        _ => {
            return Err(ServiceError::FailedPrecondition(format!(
                "request {} has no saga",
                row.request_id
            )));
        }
    }
    if row.state != RequestState::InProgress {
        requests::transition(
            conn,
            state,
            row,
            RequestState::InProgress,
            "saga_started",
            None,
        )
        .await?;
    }
    Ok(())
}

/// Writes `retention.erasure_requested` for `services` (the envelope's subject_ref is
/// the subject to erase).
async fn request_erasure(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
    services: &[VeilService],
) -> Result<(), ServiceError> {
    let payload = Payload::RetentionErasureRequested(RetentionErasureRequested {
        request_id: row.request_id.to_string(),
        expected_services: services.iter().map(|s| *s as i32).collect(),
    });
    let context: EventContext = row.context(Some(requests::service_actor(row.tenant)));
    state.emit(conn, &context, payload).await
}

/// Registers the consumer of every service's `erasure_completed`.
pub fn spawn_consumer(
    foundation: &mut Foundation,
    state: std::sync::Arc<Retention>,
) -> anyhow::Result<()> {
    consumer::spawn(foundation, state)
}

/// Per-service progress of a request's erasure, for GetRequest.
pub async fn progress(
    conn: &mut PgConnection,
    row: &RequestRow,
) -> Result<Vec<veil_proto::retention::v1::ServiceProgress>, ServiceError> {
    let rows = steps::all(conn, row.tenant.as_uuid(), row.request_id).await?;
    Ok(rows
        .into_iter()
        .map(|step| {
            let service = crate::certificate::service_enum(&step.service);
            veil_proto::retention::v1::ServiceProgress {
                service: service as i32,
                done: step.done,
                outcome: step.done.then(|| veil_proto::common::v1::ErasureOutcome {
                    service: service as i32,
                    counts: step.counts.0.into_iter().collect(),
                    completed_at: step.completed_at.map(veil_core::convert::timestamp),
                }),
                error: step.error,
            }
        })
        .collect())
}
