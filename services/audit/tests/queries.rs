//! Queries, the access log, incidents and reports through the API, per tenant.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Audit, context};
use veil_core::types::{Role, TenantId};
use veil_proto::audit::v1::{
    AccessLogRequest, GetReportRequest, ListIncidentsRequest, QueryRequest, ReportFormat,
    ReportKind, UpdateIncidentRequest,
};
use veil_proto::common::v1::TimeRange;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{IncidentState, SubjectSelector};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{ConsentChanged, GatewayMessageProcessed, VaultRevealed};

const SUBJECT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn revealed(purpose: &str) -> Payload {
    Payload::VaultRevealed(VaultRevealed {
        purpose: purpose.into(),
        counts: [("EMAIL_ADDRESS".to_string(), 2)].into_iter().collect(),
        ..VaultRevealed::default()
    })
}

fn processed(entities: &[(&str, i64)], purposes: &[&str], denied: &[&str]) -> Payload {
    let strings = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
    Payload::GatewayMessageProcessed(GatewayMessageProcessed {
        entity_counts: entities.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
        purposes: strings(purposes),
        denied_purposes: strings(denied),
        ..GatewayMessageProcessed::default()
    })
}

/// The records of processing (GDPR Art. 30) count the tenant's messages per purpose, the
/// categories of personal data and the distinct data subjects of the period.
#[tokio::test(flavor = "multi_thread")]
async fn records_of_processing_count_the_tenants_messages_categories_and_subjects()
-> anyhow::Result<()> {
    let env = veil_testkit::TestEnv::new().await?;
    let settings = common::settings(&env);
    let audit = Audit::start_with(env, settings).await?;
    let (ours, theirs) = (TenantId::generate(), TenantId::generate());
    let other = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    let third = "ab".repeat(32);
    let events = [
        (
            ours,
            SUBJECT,
            processed(&[("EMAIL_ADDRESS", 2)], &["support"], &["analytics"]),
        ),
        (
            ours,
            SUBJECT,
            processed(&[("PERSON", 1)], &["support"], &[]),
        ),
        (ours, other, processed(&[("EMAIL_ADDRESS", 1)], &[], &[])),
        (
            theirs,
            third.as_str(),
            processed(&[("IBAN_CODE", 5)], &["support"], &[]),
        ),
    ];
    for (tenant, subject, payload) in events {
        audit
            .publish(&context(tenant, Some(subject), "bot"), payload)
            .await?;
    }
    audit.wait_for_entries(4).await?;

    let client = audit.client(Some(ours), &[Role::Auditor]).await?;
    let report = |period: Option<TimeRange>| {
        let request = client.request(GetReportRequest {
            kind: ReportKind::RecordsOfProcessing as i32,
            format: ReportFormat::Json as i32,
            period,
        });
        let mut inner = client.inner.clone();
        async move {
            let content = inner.get_report(request).await?.into_inner().content;
            anyhow::Ok(serde_json::from_slice::<serde_json::Value>(&content)?)
        }
    };
    let json = report(None).await?;
    assert_eq!(json["data_subjects"], 2, "{json}");
    assert_eq!(
        json["personal_data_categories"],
        serde_json::json!({"EMAIL_ADDRESS": 3, "PERSON": 1})
    );
    let support = &json["purposes"][1];
    assert_eq!(support["purpose_key"], "support", "{json}");
    assert_eq!(support["messages_processed"], 2);
    assert_eq!(json["purposes"][0]["messages_denied"], 1);

    // A period after the events holds none of them.
    let later = TimeRange {
        start: Some(prost_types::Timestamp {
            seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
            nanos: 0,
        }),
        end: None,
    };
    let json = report(Some(later)).await?;
    assert_eq!(json["data_subjects"], 0, "{json}");
    assert_eq!(json["personal_data_categories"], serde_json::json!({}));
    audit.running.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_access_log_incidents_and_reports_stay_in_the_tenant() -> anyhow::Result<()> {
    let env = veil_testkit::TestEnv::new().await?;
    let mut settings = common::settings(&env);
    settings.service.reveal_burst_threshold = 3;
    let audit = Audit::start_with(env, settings).await?;
    let (ours, theirs) = (TenantId::generate(), TenantId::generate());
    for _ in 0..3 {
        audit
            .publish(
                &context(ours, Some(SUBJECT), "officer-1"),
                revealed("fraud check"),
            )
            .await?;
    }
    audit
        .publish(
            &context(theirs, Some(SUBJECT), "officer-9"),
            revealed("other"),
        )
        .await?;
    let granted = Payload::ConsentGranted(ConsentChanged {
        purpose_keys: vec!["support".into(), "analytics".into()],
        ..ConsentChanged::default()
    });
    audit
        .publish(&context(ours, Some(SUBJECT), "bot"), granted)
        .await?;
    // Five events plus the incident the third reveal opens.
    audit.wait_for_entries(6).await?;

    let mut client = audit.client(Some(ours), &[Role::PrivacyOfficer]).await?;
    let page = client
        .inner
        .query(client.request(QueryRequest {
            actor_principal_id: "officer-1".into(),
            page: Some(veil_proto::common::v1::PageRequest {
                page_size: 2,
                page_token: String::new(),
            }),
            ..QueryRequest::default()
        }))
        .await?
        .into_inner();
    assert_eq!(page.entries.len(), 2);
    let token = page.page.unwrap().next_page_token;
    assert!(!token.is_empty());
    let rest = client
        .inner
        .query(client.request(QueryRequest {
            actor_principal_id: "officer-1".into(),
            page: Some(veil_proto::common::v1::PageRequest {
                page_size: 2,
                page_token: token,
            }),
            ..QueryRequest::default()
        }))
        .await?
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert!(rest.page.unwrap().next_page_token.is_empty());
    // The event types become a query parameter: at most 100.
    let too_many = client
        .inner
        .query(client.request(QueryRequest {
            event_types: (0..101).map(|i| format!("gateway.t{i}")).collect(),
            ..QueryRequest::default()
        }))
        .await
        .expect_err("101 event types");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(too_many.message().contains("event_types"));

    let access = client
        .inner
        .access_log(client.request(AccessLogRequest {
            subject: Some(SubjectSelector {
                subject: Some(Subject::SubjectRef(SUBJECT.into())),
            }),
            ..AccessLogRequest::default()
        }))
        .await?
        .into_inner();
    assert_eq!(
        access.accesses.len(),
        3,
        "the other tenant's reveal stays out"
    );
    assert!(access.accesses.iter().all(|a| a.purpose == "fraud check"));
    assert_eq!(access.accesses[0].counts.get("EMAIL_ADDRESS"), Some(&2));
    assert_eq!(
        access.accesses[0].actor.as_ref().unwrap().principal_id,
        "officer-1"
    );

    // The third reveal within the window opened one incident, for this tenant only.
    let incidents = client
        .inner
        .list_incidents(client.request(ListIncidentsRequest::default()))
        .await?
        .into_inner()
        .incidents;
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident.rule, "reveal_burst");
    assert_eq!(incident.event_ids.len(), 3);
    let opened = incident.opened_at.unwrap();
    assert_eq!(
        incident.notification_deadline.unwrap().seconds,
        opened.seconds + 72 * 3600
    );
    let mut other = audit.client(Some(theirs), &[Role::Auditor]).await?;
    let none = other
        .inner
        .list_incidents(other.request(ListIncidentsRequest::default()))
        .await?
        .into_inner()
        .incidents;
    assert!(none.is_empty());

    let update = |state: IncidentState, revision: i64| UpdateIncidentRequest {
        incident_id: incident.incident_id.clone(),
        state: state as i32,
        note: "looked into it".into(),
        expected_revision: revision,
    };
    let acknowledged = client
        .inner
        .update_incident(client.request(update(IncidentState::Acknowledged, incident.revision)))
        .await?
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(acknowledged.state, IncidentState::Acknowledged as i32);
    assert!(acknowledged.acknowledged_at.is_some());
    assert_eq!(acknowledged.notes.len(), 1);
    let stale = client
        .inner
        .update_incident(client.request(update(IncidentState::Notified, incident.revision)))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let backwards = client
        .inner
        .update_incident(client.request(update(IncidentState::Open, 0)))
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::FailedPrecondition);
    let auditor = audit.client(Some(ours), &[Role::Auditor]).await?;
    let denied = auditor
        .inner
        .clone()
        .update_incident(auditor.request(update(IncidentState::Closed, 0)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // The incident's own events reach the log too.
    let pool = audit.pool.clone();
    veil_testkit::eventually(common::WAIT, || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM entries
                 WHERE event_type IN ('audit.incident_opened', 'audit.incident_updated')",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (n >= 2).then_some(())
        }
    })
    .await?;

    let report = client
        .inner
        .get_report(client.request(GetReportRequest {
            kind: ReportKind::ConsentSummary as i32,
            format: ReportFormat::Csv as i32,
            period: None,
        }))
        .await?
        .into_inner();
    assert_eq!(report.content_type, "text/csv");
    let csv = String::from_utf8(report.content)?;
    assert_eq!(
        csv,
        "purpose_key,granted,denied,withdrawn\r\nanalytics,1,0,0\r\nsupport,1,0,0\r\n"
    );
    let report = client
        .inner
        .get_report(client.request(GetReportRequest {
            kind: ReportKind::Incidents as i32,
            format: ReportFormat::Json as i32,
            period: None,
        }))
        .await?
        .into_inner();
    let json: serde_json::Value = serde_json::from_slice(&report.content)?;
    assert_eq!(json["incidents"][0]["rule"], "reveal_burst");
    assert_eq!(json["incidents"][0]["deadline"], "pending");
    audit.running.stop().await
}
