//! Issue 8 acceptance: a data-subject erasure end to end through every service.
//!
//! After the erasure no canary value of the subject (nor its raw id) remains in any
//! schema or in the test's JetStream stream, the subject's vault ciphertexts no longer
//! decrypt, and the deletion certificate verifies (JWS and audit inclusion proof). A
//! legal hold blocks an erasure, and releasing it lets the erasure finish by itself.

mod retention_support;

use tonic::Code;
use veil_core::types::Role;
use veil_e2e::bearer;
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::audit::v1::{GetEntryRequest, get_entry_request};
use veil_proto::common::v1::{Jurisdiction, RequestState, RequestType};
use veil_proto::retention::v1::{
    ListRequestsRequest, PlaceHoldRequest, ReleaseHoldRequest, SubmitRequestRequest,
};
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_proto::vault::v1::{DetokenizeRequest, GetRecordRequest};
use veil_testkit::{TestEnv, eventually};

use retention_support::{Canaries, SAGA_DEADLINE, World, selector};

fn erasure(subject_id: &str) -> SubmitRequestRequest {
    SubmitRequestRequest {
        subject_id: subject_id.into(),
        request_type: RequestType::Erasure as i32,
        jurisdiction: Jurisdiction::EuGdpr as i32,
        locale: "en".into(),
        identity_verified: true,
        ..Default::default()
    }
}

/// Every text, json, bytea and array column of every table in every schema of the
/// test database that contains one of `needles`, as `schema.table.column`.
async fn scan_database(env: &TestEnv, needles: &[&str]) -> anyhow::Result<Vec<String>> {
    let pool = env.db.pool("public").await?;
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.data_type::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE t.table_type = 'BASE TABLE'
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
           AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                               'bytea', 'ARRAY', 'USER-DEFINED')",
    )
    .fetch_all(&pool)
    .await?;
    assert!(
        columns.len() > 20,
        "the scan sees the services' tables ({} columns)",
        columns.len()
    );
    let patterns: Vec<String> = needles.iter().map(|n| format!("%{n}%")).collect();
    let mut found = Vec::new();
    for (schema, table, column, data_type) in columns {
        let quoted = format!("\"{}\"", column.replace('"', "\"\""));
        let expr = if data_type == "bytea" {
            format!("encode({quoted}, 'escape')")
        } else {
            format!("{quoted}::text")
        };
        let sql = format!(
            "SELECT count(*) FROM \"{}\".\"{}\" WHERE {expr} ILIKE ANY($1)",
            schema.replace('"', "\"\""),
            table.replace('"', "\"\"")
        );
        let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&patterns)
            .fetch_one(&pool)
            .await?;
        if hits > 0 {
            found.push(format!("{schema}.{table}.{column} ({hits} rows)"));
        }
    }
    Ok(found)
}

/// Subjects of the messages of the test's stream that contain one of `needles`.
async fn scan_stream(env: &TestEnv, needles: &[&str]) -> anyhow::Result<(u64, Vec<String>)> {
    let mut stream = env
        .nats
        .jetstream()
        .get_stream(&env.events().stream)
        .await?;
    let info = stream.info().await?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut found = Vec::new();
    for sequence in first..=last {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let text = String::from_utf8_lossy(&message.payload).to_lowercase();
        for needle in needles {
            if text.contains(&needle.to_lowercase()) {
                found.push(format!("{} #{sequence}", message.subject));
            }
        }
    }
    Ok((last.saturating_sub(first) + 1, found))
}

#[tokio::test(flavor = "multi_thread")]
async fn erasure_leaves_no_canary_shreds_the_vault_and_certifies_against_the_audit_log()
-> anyhow::Result<()> {
    let world = World::start("erasure").await?;
    let canaries = Canaries::new();
    let (record_id, tokens) = world.seed(&canaries).await?;
    // The seed really put the canaries somewhere the scan looks.
    let before = scan_database(&world.env, &canaries.all()).await?;
    assert!(
        before
            .iter()
            .any(|hit| hit.starts_with("gateway.transcript_messages.")),
        "the unredacted remark is in the transcripts before the erasure: {before:?}"
    );

    let officer = world.token("retention", Role::PrivacyOfficer)?;
    let submitted = world
        .retention()
        .await?
        .submit_request(bearer(erasure(&canaries.subject_id), &officer))
        .await?
        .into_inner();
    assert!(submitted.challenge.is_none(), "identity was vouched for");
    let request_id = submitted.request.expect("request").request_id;
    world.wait_for(&request_id, RequestState::Completed).await?;

    let request = world.request(&request_id).await?;
    assert!(!request.certificate_id.is_empty());
    assert_eq!(request.progress.len(), 3, "gateway, vault and consent");
    assert!(request.progress.iter().all(|p| p.done));

    // Nothing of the subject is left in any schema or in the stream.
    let leftovers = scan_database(&world.env, &canaries.all()).await?;
    assert!(leftovers.is_empty(), "canaries left in {leftovers:?}");
    let (messages, in_stream) = scan_stream(&world.env, &canaries.all()).await?;
    assert!(messages > 10, "the stream holds the run's events");
    assert!(
        in_stream.is_empty(),
        "canaries in stream messages {in_stream:?}"
    );

    // The subject's ciphertexts no longer open: the record and every token are gone.
    let vault_token = world.token("vault", Role::PrivacyOfficer)?;
    let mut vault = VaultServiceClient::new(world.stack.channel("vault").await?);
    let record = vault
        .get_record(bearer(
            GetRecordRequest {
                record_id,
                purpose: "e2e_check".into(),
            },
            &vault_token,
        ))
        .await;
    assert!(record.is_err(), "a shredded record does not decrypt");
    let revealed = vault
        .detokenize(bearer(
            DetokenizeRequest {
                tokens: tokens.clone(),
                purpose: "e2e_check".into(),
                subject: selector(&canaries.subject_id),
            },
            &vault_token,
        ))
        .await?
        .into_inner()
        .results;
    assert_eq!(revealed.len(), tokens.len());
    assert!(revealed.iter().all(|r| !r.found && r.value.is_empty()));

    // The certificate names what each service erased and verifies against audit.
    let certificate = eventually(SAGA_DEADLINE, || async {
        world
            .certificate(&request_id)
            .await
            .ok()
            .filter(|c| c.anchored)
    })
    .await?;
    assert_eq!(certificate.certificate_id, request.certificate_id);
    let gateway = certificate
        .erasures
        .iter()
        .find(|e| e.service == veil_proto::common::v1::VeilService::Gateway as i32)
        .expect("gateway erasure");
    assert_eq!(gateway.counts.get("turns"), Some(&12));
    assert!(
        certificate
            .certificate_json
            .contains("\"recipient_id\":\"crm\"")
    );
    let auditor = world.token("audit", Role::Auditor)?;
    let entry = AuditServiceClient::new(world.stack.channel("audit").await?)
        .get_entry(bearer(
            GetEntryRequest {
                key: Some(get_entry_request::Key::LeafIndex(
                    certificate.audit_leaf_index,
                )),
            },
            &auditor,
        ))
        .await?
        .into_inner()
        .entry
        .expect("entry");
    let verified = veil_retention::certificate::verify::verify(&certificate, &entry, None, &[])?;
    assert_eq!(verified.document.request_id, request_id);
    // A tampered certificate does not verify.
    let mut tampered = certificate.clone();
    tampered.certificate_json = tampered.certificate_json.replace("\"crm\"", "\"xrm\"");
    assert!(veil_retention::certificate::verify::verify(&tampered, &entry, None, &[]).is_err());

    world.stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legal_hold_blocks_the_erasure_until_it_is_released() -> anyhow::Result<()> {
    let world = World::start("erasure-hold").await?;
    let canaries = Canaries::new();
    world.seed(&canaries).await?;
    let officer = world.token("retention", Role::PrivacyOfficer)?;
    let mut retention = world.retention().await?;
    let hold = retention
        .place_hold(bearer(
            PlaceHoldRequest {
                subject: selector(&canaries.subject_id),
                reason: "litigation".into(),
                case_reference: "CASE-42".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await?
        .into_inner()
        .hold
        .expect("hold");

    let refused = retention
        .submit_request(bearer(erasure(&canaries.subject_id), &officer))
        .await
        .expect_err("a held subject's erasure is refused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains(&hold.hold_id), "names the hold");
    let held = retention
        .list_requests(bearer(
            ListRequestsRequest {
                states: vec![RequestState::OnHold as i32],
                subject: selector(&canaries.subject_id),
                ..Default::default()
            },
            &officer,
        ))
        .await?
        .into_inner()
        .requests;
    assert_eq!(held.len(), 1);
    let request_id = held[0].request_id.clone();
    assert!(held[0].closing_reason.contains(&hold.hold_id));
    // Nothing was erased while held.
    let gateway_db = world.env.db.pool("gateway").await?;
    let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_messages")
        .fetch_one(&gateway_db)
        .await?;
    assert_eq!(turns, 12);

    retention
        .release_hold(bearer(
            ReleaseHoldRequest {
                hold_id: hold.hold_id.clone(),
                reason: "case closed".into(),
            },
            &officer,
        ))
        .await?;
    world.wait_for(&request_id, RequestState::Completed).await?;
    let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_messages")
        .fetch_one(&gateway_db)
        .await?;
    assert_eq!(turns, 0);
    assert!(!world.certificate(&request_id).await?.jws.is_empty());

    world.stack.stop().await
}
