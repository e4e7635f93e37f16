//! Data-subject requests through the whole stack: intake and identity verification,
//! duplicates and idempotency, deadline extensions, cancellation, the overdue check,
//! legal holds, and execution of restriction (gateway) and objection (consent).

use std::time::Duration;

use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;
use veil_core::auth::Principal;
use veil_core::types::{RequestId, Role, TenantId};
use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{
    CollectionMethod, ConsentDecision, Jurisdiction, LegalBasis, RequestState, RequestType,
    SubjectSelector,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{
    CheckConsentRequest, ConsentChoice, Purpose, Recipient, RecipientKind, RecordConsentRequest,
    UpsertPurposeRequest, UpsertRecipientRequest,
};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::*;
use veil_testkit::{TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(20);

/// An internal token for `audience` as `principal` with `roles` in `tenant`.
fn token(
    env: &TestEnv,
    audience: &str,
    tenant: TenantId,
    principal: &str,
    roles: &[Role],
) -> String {
    let principal = Principal {
        tenant: Some(tenant),
        principal_id: principal.parse().expect("principal id"),
        roles: roles.to_vec(),
        request_id: RequestId::generate(),
    };
    env.issuer()
        .expect("issuer")
        .mint_for(audience, &principal)
        .expect("token")
}

struct Harness {
    env: TestEnv,
    stack: TestStack,
    tenant: TenantId,
    retention: RetentionServiceClient<Channel>,
    officer: String,
    bot: String,
    pool: PgPool,
}

impl Harness {
    async fn start(slug: &str) -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let mut settings = stack_settings(&env);
        settings.retention.service.overdue_check_secs = 1;
        settings.retention.service.saga_retry_secs = 1;
        settings.retention.service.verification_max_attempts = 3;
        let stack = TestStack::start(settings).await?;
        let tenant = create_tenant(stack.channel("gateway").await?, slug)
            .await?
            .id;
        let retention = RetentionServiceClient::new(stack.channel("retention").await?);
        let officer = token(
            &env,
            "retention",
            tenant,
            "officer-1",
            &[Role::PrivacyOfficer],
        );
        let bot = token(&env, "retention", tenant, "bot-1", &[Role::Bot]);
        let pool = PgPool::connect(&env.db.url()).await?;
        Ok(Self {
            env,
            stack,
            tenant,
            retention,
            officer,
            bot,
            pool,
        })
    }

    fn submission(&self, subject: &str, request_type: RequestType) -> SubmitRequestRequest {
        SubmitRequestRequest {
            subject_id: subject.into(),
            request_type: request_type as i32,
            channel: RequestChannel::WebForm as i32,
            jurisdiction: Jurisdiction::EuGdpr as i32,
            locale: "en".into(),
            ..Default::default()
        }
    }

    async fn submit(
        &self,
        as_token: &str,
        message: SubmitRequestRequest,
    ) -> Result<tonic::Response<SubmitRequestResponse>, tonic::Status> {
        self.retention
            .clone()
            .submit_request(bearer(message, as_token))
            .await
    }

    async fn get(&self, request_id: &str) -> anyhow::Result<DataSubjectRequest> {
        Ok(self
            .retention
            .clone()
            .get_request(bearer(
                GetRequestRequest {
                    request_id: request_id.into(),
                },
                &self.officer,
            ))
            .await?
            .into_inner()
            .request
            .unwrap_or_default())
    }

    /// Events the retention service wrote whose subject ends in `.retention.<event>`.
    async fn events(&self, event: &str, request_id: &str) -> anyhow::Result<i64> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM retention.outbox WHERE subject LIKE '%.retention.' || $1",
        )
        .bind(event)
        .fetch_all(&self.pool)
        .await?;
        // The payload is the encoded envelope; the request id appears in it as text.
        Ok(rows
            .iter()
            .filter(|p| String::from_utf8_lossy(p).contains(request_id))
            .count() as i64)
    }
}

fn request_of(
    response: tonic::Response<SubmitRequestResponse>,
) -> (DataSubjectRequest, Option<VerificationChallenge>) {
    let inner = response.into_inner();
    (inner.request.unwrap_or_default(), inner.challenge)
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_verify_wrong_codes_count_and_exhaustion_rejects() -> anyhow::Result<()> {
    let h = Harness::start("dsr-verify").await?;
    // A bot cannot vouch for identity: it gets a code even when it asks not to.
    let mut asked = h.submission("alice", RequestType::Erasure);
    asked.identity_verified = true;
    let (request, challenge) = request_of(h.submit(&h.bot, asked).await?);
    let challenge = challenge.expect("a bot gets a challenge");
    assert_eq!(request.state, RequestState::Received as i32);
    assert_eq!(challenge.code.len(), 8);
    assert_eq!(challenge.max_attempts, 3);
    // The code is stored only as a keyed hash.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM retention.requests WHERE position(convert_to($1, 'UTF8') in code_hash) > 0",
    )
    .bind(&challenge.code)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(stored, 0);

    let wrong = if challenge.code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let verify = |code: &str| {
        let mut client = h.retention.clone();
        let message = VerifyRequestRequest {
            request_id: request.request_id.clone(),
            code: code.into(),
        };
        let bot = h.bot.clone();
        async move { client.verify_request(bearer(message, &bot)).await }
    };
    let status = verify("12ab").await.expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);
    let first = verify(wrong).await?.into_inner();
    assert!(!first.verified);
    assert_eq!(first.attempts_remaining, 2);
    let right = verify(&challenge.code).await?.into_inner();
    assert!(right.verified);
    let verified = right.request.unwrap_or_default();
    assert_ne!(verified.state, RequestState::Received as i32);
    assert!(verified.verified_at.is_some());

    // Another subject's request: three wrong codes reject it as unverifiable.
    let (other, challenge) = request_of(
        h.submit(&h.bot, h.submission("bob", RequestType::Access))
            .await?,
    );
    let wrong = if challenge.expect("challenge").code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let mut last = None;
    for expected_left in [2, 1, 0] {
        let answer = h
            .retention
            .clone()
            .verify_request(bearer(
                VerifyRequestRequest {
                    request_id: other.request_id.clone(),
                    code: wrong.into(),
                },
                &h.bot,
            ))
            .await?
            .into_inner();
        assert!(!answer.verified);
        assert_eq!(answer.attempts_remaining, expected_left);
        last = answer.request;
    }
    let rejected = last.unwrap_or_default();
    assert_eq!(rejected.state, RequestState::Rejected as i32);
    assert!(rejected.closing_reason.contains("too many wrong codes"));
    assert_eq!(
        h.events("request_state_changed", &other.request_id).await?,
        1
    );
    h.stack.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_idempotency_extensions_and_cancellation() -> anyhow::Result<()> {
    let h = Harness::start("dsr-manage").await?;
    let (first, _) = request_of(
        h.submit(&h.bot, h.submission("carol", RequestType::Erasure))
            .await?,
    );
    // Same subject and type while open: the open request comes back, flagged.
    let again = h
        .submit(&h.bot, h.submission("carol", RequestType::Erasure))
        .await?;
    assert_eq!(
        again
            .metadata()
            .get("veil-duplicate")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (again, challenge) = request_of(again);
    assert_eq!(again.request_id, first.request_id);
    assert!(
        challenge.is_some(),
        "an unverified duplicate gets a fresh code"
    );
    assert_eq!(h.events("request_received", &first.request_id).await?, 1);

    // Idempotency: the same key returns the same request; reused for another type it is refused.
    let mut keyed = h.submission("dave", RequestType::Access);
    keyed.idempotency_key = "form-42".into();
    let (one, _) = request_of(h.submit(&h.bot, keyed.clone()).await?);
    let (two, _) = request_of(h.submit(&h.bot, keyed.clone()).await?);
    assert_eq!(one.request_id, two.request_id);
    keyed.request_type = RequestType::Portability as i32;
    let status = h.submit(&h.bot, keyed).await.expect_err("key reuse");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("idempotency_key"));

    // Extensions: recorded with a reason, never beyond three months from receipt.
    let extend = |by_days: i64, reason: &str| {
        let mut client = h.retention.clone();
        let message = ExtendRequestRequest {
            request_id: first.request_id.clone(),
            extend_by: Some(prost_types::Duration {
                seconds: by_days * 86_400,
                nanos: 0,
            }),
            reason: reason.into(),
        };
        let officer = h.officer.clone();
        async move { client.extend_request(bearer(message, &officer)).await }
    };
    assert_eq!(
        extend(10, "").await.expect_err("no reason").code(),
        Code::InvalidArgument
    );
    let extended = extend(30, "complex request: many systems")
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    assert_eq!(extended.extensions.len(), 1);
    let before = first.due_at.unwrap_or_default().seconds;
    assert_eq!(
        extended.due_at.unwrap_or_default().seconds,
        before + 30 * 86_400
    );
    let status = extend(70, "more").await.expect_err("beyond three months");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        h.get(&first.request_id).await?.extensions.len(),
        1,
        "a refused extension records nothing"
    );
    // A bot may not extend.
    let status = h
        .retention
        .clone()
        .extend_request(bearer(
            ExtendRequestRequest {
                request_id: first.request_id.clone(),
                extend_by: Some(prost_types::Duration {
                    seconds: 86_400,
                    nanos: 0,
                }),
                reason: "x".into(),
            },
            &h.bot,
        ))
        .await
        .expect_err("bot");
    assert_eq!(status.code(), Code::PermissionDenied);

    // Cancellation: a bot cancels its own request, cannot reject, cannot see others'.
    let cancel = |token: &str, outcome: CancelOutcome, reason: &str, id: &str| {
        let mut client = h.retention.clone();
        let message = CancelRequestRequest {
            request_id: id.into(),
            outcome: outcome as i32,
            reason: reason.into(),
        };
        let token = token.to_string();
        async move { client.cancel_request(bearer(message, &token)).await }
    };
    let status = cancel(
        &h.bot,
        CancelOutcome::Rejected,
        "unfounded",
        &first.request_id,
    )
    .await
    .expect_err("bots only cancel");
    assert_eq!(status.code(), Code::PermissionDenied);
    let other_bot = token(&h.env, "retention", h.tenant, "bot-2", &[Role::Bot]);
    let status = cancel(&other_bot, CancelOutcome::Cancelled, "", &first.request_id)
        .await
        .expect_err("not its request");
    assert_eq!(status.code(), Code::NotFound);
    let cancelled = cancel(&h.bot, CancelOutcome::Cancelled, "", &first.request_id)
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    assert_eq!(cancelled.state, RequestState::Cancelled as i32);
    let status = cancel(&h.bot, CancelOutcome::Cancelled, "", &first.request_id)
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = cancel(&h.officer, CancelOutcome::Rejected, "", &one.request_id)
        .await
        .expect_err("reason required");
    assert_eq!(status.code(), Code::InvalidArgument);
    let rejected = cancel(
        &h.officer,
        CancelOutcome::Rejected,
        "manifestly unfounded",
        &one.request_id,
    )
    .await?
    .into_inner()
    .request
    .unwrap_or_default();
    assert_eq!(rejected.state, RequestState::Rejected as i32);
    assert_eq!(rejected.closing_reason, "manifestly unfounded");
    // Once closed, the same subject and type may be asked again: a new request.
    let (fresh, _) = request_of(
        h.submit(&h.bot, h.submission("carol", RequestType::Erasure))
            .await?,
    );
    assert_ne!(fresh.request_id, first.request_id);

    // Listing: filters and paging.
    let list = |states: Vec<i32>, page_token: String| {
        let mut client = h.retention.clone();
        let message = ListRequestsRequest {
            states,
            page: Some(veil_proto::common::v1::PageRequest {
                page_size: 2,
                page_token,
            }),
            ..Default::default()
        };
        let officer = h.officer.clone();
        async move { client.list_requests(bearer(message, &officer)).await }
    };
    let page = list(vec![], String::new()).await?.into_inner();
    assert_eq!(page.requests.len(), 2);
    let token_next = page.page.unwrap_or_default().next_page_token;
    assert!(!token_next.is_empty());
    let rest = list(vec![], token_next).await?.into_inner();
    assert_eq!(rest.requests.len(), 1, "three requests in all");
    let cancelled_only = list(vec![RequestState::Cancelled as i32], String::new())
        .await?
        .into_inner();
    assert_eq!(cancelled_only.requests.len(), 1);
    assert_eq!(cancelled_only.requests[0].request_id, first.request_id);
    h.stack.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn overdue_requests_are_marked_once_with_an_event() -> anyhow::Result<()> {
    let h = Harness::start("dsr-overdue").await?;
    let (late, _) = request_of(
        h.submit(&h.bot, h.submission("erin", RequestType::Access))
            .await?,
    );
    assert!(!late.overdue);
    sqlx::query("UPDATE retention.requests SET due_at = now() - interval '1 hour' WHERE request_id = $1::uuid")
        .bind(&late.request_id)
        .execute(&h.pool)
        .await?;
    eventually(WAIT, || async {
        let marked: bool = sqlx::query_scalar(
            "SELECT overdue FROM retention.requests WHERE request_id = $1::uuid",
        )
        .bind(&late.request_id)
        .fetch_one(&h.pool)
        .await
        .ok()?;
        marked.then_some(())
    })
    .await?;
    assert!(h.get(&late.request_id).await?.overdue);
    assert_eq!(h.events("request_overdue", &late.request_id).await?, 1);
    // A second overdue request proves later checks ran; the first is not reported again.
    let (second, _) = request_of(
        h.submit(&h.bot, h.submission("frank", RequestType::Access))
            .await?,
    );
    sqlx::query("UPDATE retention.requests SET due_at = now() - interval '1 hour' WHERE request_id = $1::uuid")
        .bind(&second.request_id)
        .execute(&h.pool)
        .await?;
    eventually(WAIT, || async {
        (h.events("request_overdue", &second.request_id).await.ok()? == 1).then_some(())
    })
    .await?;
    assert_eq!(h.events("request_overdue", &late.request_id).await?, 1);
    let overdue = h
        .retention
        .clone()
        .list_requests(bearer(
            ListRequestsRequest {
                overdue_only: true,
                ..Default::default()
            },
            &h.officer,
        ))
        .await?
        .into_inner();
    assert_eq!(overdue.requests.len(), 2);
    h.stack.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restriction_reaches_the_gateway_and_objection_withdraws_consent() -> anyhow::Result<()> {
    let h = Harness::start("dsr-execute").await?;
    let consent_officer = token(
        &h.env,
        "consent",
        h.tenant,
        "officer-1",
        &[Role::PrivacyOfficer],
    );
    let consent_bot = token(&h.env, "consent", h.tenant, "bot-1", &[Role::Bot]);
    let mut consent = ConsentServiceClient::new(h.stack.channel("consent").await?);
    consent
        .upsert_recipient(bearer(
            UpsertRecipientRequest {
                recipient: Some(Recipient {
                    key: "crm_vendor".into(),
                    name: "CRM Vendor".into(),
                    kind: RecipientKind::Processor as i32,
                    country: "DE".into(),
                    ..Default::default()
                }),
            },
            &consent_officer,
        ))
        .await?;

    // Restriction, asserted by a privacy officer: done at once, gateway marks the subject.
    let mut restrict = h.submission("grace", RequestType::Restriction);
    restrict.identity_verified = true;
    let (restricted, challenge) = request_of(h.submit(&h.officer, restrict).await?);
    assert!(challenge.is_none());
    let restricted = if restricted.state == RequestState::Completed as i32 {
        restricted
    } else {
        eventually(WAIT, || async {
            let r = h.get(&restricted.request_id).await.ok()?;
            (r.state == RequestState::Completed as i32).then_some(r)
        })
        .await?
    };
    let marked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM gateway.subject_restrictions WHERE subject_ref = $1",
    )
    .bind(&restricted.subject_ref)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(marked, 1);
    assert_eq!(
        h.events("recipient_notification", &restricted.request_id)
            .await?,
        1
    );

    // Objection: withdraws the consent the subject had given for the purpose.
    consent
        .upsert_purpose(bearer(
            UpsertPurposeRequest {
                purpose: Some(Purpose {
                    key: "marketing".into(),
                    name: "Marketing".into(),
                    legal_basis: LegalBasis::Consent as i32,
                    consent_required: true,
                    ..Default::default()
                }),
            },
            &consent_officer,
        ))
        .await?;
    consent
        .record_consent(bearer(
            RecordConsentRequest {
                subject_id: "heidi".into(),
                purpose_keys: vec!["marketing".into()],
                choice: ConsentChoice::Grant as i32,
                collection_method: CollectionMethod::Chat as i32,
                jurisdiction: Jurisdiction::UsCaCcpa as i32,
                language: "en".into(),
                ..Default::default()
            },
            &consent_bot,
        ))
        .await?;
    let decision = |consent: &mut ConsentServiceClient<Channel>| {
        let message = CheckConsentRequest {
            subject: Some(SubjectSelector {
                subject: Some(Subject::SubjectId("heidi".into())),
            }),
            purpose_keys: vec!["marketing".into()],
            jurisdiction: Jurisdiction::UsCaCcpa as i32,
        };
        let token = consent_bot.clone();
        let mut client = consent.clone();
        async move {
            client
                .check_consent(bearer(message, &token))
                .await
                .map(|r| {
                    r.into_inner()
                        .decisions
                        .first()
                        .map(|d| d.decision)
                        .unwrap_or_default()
                })
        }
    };
    assert_eq!(
        decision(&mut consent).await?,
        ConsentDecision::Allowed as i32
    );
    let mut object = h.submission("heidi", RequestType::Objection);
    object.purpose_keys = vec!["marketing".into()];
    let (objection, challenge) = request_of(h.submit(&h.bot, object).await?);
    // The bot's request needs the subject's code first.
    let code = challenge.expect("challenge").code;
    let answer = h
        .retention
        .clone()
        .verify_request(bearer(
            VerifyRequestRequest {
                request_id: objection.request_id.clone(),
                code,
            },
            &h.bot,
        ))
        .await?
        .into_inner();
    assert!(answer.verified);
    eventually(WAIT, || async {
        let r = h.get(&objection.request_id).await.ok()?;
        (r.state == RequestState::Completed as i32).then_some(())
    })
    .await?;
    assert_eq!(
        decision(&mut consent).await?,
        ConsentDecision::Denied as i32
    );
    // The subject id went to the vault, never into retention's tables.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM retention.requests r WHERE row_to_json(r)::text LIKE '%heidi%'",
    )
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(leaked, 0);
    h.stack.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_erasure_waits_and_resumes_when_the_hold_is_released() -> anyhow::Result<()> {
    let h = Harness::start("dsr-hold").await?;
    let hold = h
        .retention
        .clone()
        .place_hold(bearer(
            PlaceHoldRequest {
                subject: Some(SubjectSelector {
                    subject: Some(Subject::SubjectId("ivan".into())),
                }),
                reason: "litigation".into(),
                case_reference: "CASE-1".into(),
                expires_at: None,
            },
            &h.officer,
        ))
        .await?
        .into_inner()
        .hold
        .unwrap_or_default();
    let mut erase = h.submission("ivan", RequestType::Erasure);
    erase.identity_verified = true;
    let status = h.submit(&h.officer, erase).await.expect_err("held");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains(&hold.hold_id),
        "{}",
        status.message()
    );
    let listed = h
        .retention
        .clone()
        .list_requests(bearer(
            ListRequestsRequest {
                states: vec![RequestState::OnHold as i32],
                ..Default::default()
            },
            &h.officer,
        ))
        .await?
        .into_inner();
    assert_eq!(listed.requests.len(), 1);
    let held = &listed.requests[0];
    assert!(status.message().contains(&held.request_id));
    assert!(held.closing_reason.contains(&hold.hold_id));
    h.retention
        .clone()
        .release_hold(bearer(
            ReleaseHoldRequest {
                hold_id: hold.hold_id.clone(),
                reason: "case closed".into(),
            },
            &h.officer,
        ))
        .await?;
    let resumed = eventually(WAIT, || async {
        let r = h.get(&held.request_id).await.ok()?;
        (r.state != RequestState::OnHold as i32).then_some(r)
    })
    .await?;
    assert!(
        [
            RequestState::InProgress as i32,
            RequestState::Completed as i32
        ]
        .contains(&resumed.state),
        "state {}",
        resumed.state
    );
    h.stack.stop().await?;
    Ok(())
}

/// Waits until the request reaches `state`.
async fn until_state(
    h: &Harness,
    request_id: &str,
    state: RequestState,
) -> anyhow::Result<DataSubjectRequest> {
    eventually(WAIT, || async {
        let r = h.get(request_id).await.ok()?;
        (r.state == state as i32).then_some(r)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn opt_outs_set_consent_signals_and_rectification_keeps_only_vault_tokens()
-> anyhow::Result<()> {
    let h = Harness::start("dsr-signals").await?;
    // Opt-out of sale/share: two signals; limit-sensitive: one.
    for (subject, request_type, expected) in [
        ("judy", RequestType::OptOutSaleShare, vec![2, 3]),
        ("ken", RequestType::LimitSensitive, vec![4]),
    ] {
        let mut message = h.submission(subject, request_type);
        message.jurisdiction = Jurisdiction::UsCaCcpa as i32;
        message.identity_verified = true;
        let (request, _) = request_of(h.submit(&h.officer, message).await?);
        let done = until_state(&h, &request.request_id, RequestState::Completed).await?;
        let signals: Vec<i32> = sqlx::query_scalar(
            "SELECT signal FROM consent.preference_signals WHERE subject_ref = $1 AND enabled ORDER BY signal",
        )
        .bind(&done.subject_ref)
        .fetch_all(&h.pool)
        .await?;
        assert_eq!(signals, expected, "{request_type:?}");
    }

    // Access for a subject no service holds anything of still completes, with an export.
    let mut access = h.submission("quinn", RequestType::Access);
    access.identity_verified = true;
    let (access, _) = request_of(h.submit(&h.officer, access).await?);
    let done = until_state(&h, &access.request_id, RequestState::Completed).await?;
    assert!(done.export_ready);

    // Rectification: the corrected value goes to the vault; retention keeps its token.
    let mut rectify = h.submission("liam", RequestType::Rectification);
    rectify.identity_verified = true;
    rectify.corrections = vec![Correction {
        field: "contact.email".into(),
        new_value: "liam.new@example.org".into(),
    }];
    let (request, _) = request_of(h.submit(&h.officer, rectify).await?);
    let done = until_state(&h, &request.request_id, RequestState::Completed).await?;
    assert_eq!(done.correction_record_ids.len(), 1);
    assert!(done.correction_record_ids[0].starts_with("tok_"));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM retention.requests r WHERE row_to_json(r)::text LIKE '%liam%'",
    )
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(leaked, 0);
    // Without corrections (an in-chat "correct my data") it waits for the values; a new
    // submission with them continues the same request.
    let mut bare = h.submission("noah", RequestType::Rectification);
    bare.identity_verified = true;
    let (waiting, _) = request_of(h.submit(&h.officer, bare.clone()).await?);
    assert_eq!(waiting.state, RequestState::AwaitingInput as i32);
    assert!(waiting.closing_reason.contains("corrected values"));
    bare.corrections = vec![Correction {
        field: "contact.phone".into(),
        new_value: "+41 44 000 00 00".into(),
    }];
    let (continued, _) = request_of(h.submit(&h.officer, bare).await?);
    assert_eq!(continued.request_id, waiting.request_id);
    let continued = until_state(&h, &waiting.request_id, RequestState::Completed).await?;
    assert_eq!(continued.correction_record_ids.len(), 1);
    assert_eq!(continued.closing_reason, "");

    // A field naming a token that is not the subject's is refused, naming the field.
    let mut foreign = h.submission("mia", RequestType::Rectification);
    foreign.corrections = vec![Correction {
        field: done.correction_record_ids[0].clone(),
        new_value: "x".into(),
    }];
    let status = h
        .submit(&h.officer, foreign)
        .await
        .expect_err("foreign token");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("corrections[0].field"));
    h.stack.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dsr_records_are_minimized_only_after_the_statutory_floor() -> anyhow::Result<()> {
    let h = Harness::start("dsr-records").await?;
    h.retention
        .clone()
        .set_policy(bearer(
            SetPolicyRequest {
                policy: Some(RetentionPolicy {
                    category: veil_proto::common::v1::DataCategory::DsrRecord as i32,
                    period: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    action: veil_proto::common::v1::RetentionAction::Anonymize as i32,
                    ..Default::default()
                }),
            },
            &h.officer,
        ))
        .await?;
    let mut ids = Vec::new();
    for subject in ["nina", "omar", "pia"] {
        let (request, _) = request_of(
            h.submit(&h.bot, h.submission(subject, RequestType::Access))
                .await?,
        );
        ids.push(request.request_id);
    }
    // nina's closed request is 800 days old, omar's closed one 100 days, pia's old but open.
    for id in &ids[..2] {
        h.retention
            .clone()
            .cancel_request(bearer(
                CancelRequestRequest {
                    request_id: id.clone(),
                    outcome: CancelOutcome::Rejected as i32,
                    reason: "unfounded".into(),
                },
                &h.officer,
            ))
            .await?;
    }
    for (id, days) in [(&ids[0], 800), (&ids[1], 100), (&ids[2], 800)] {
        sqlx::query("UPDATE retention.requests SET received_at = now() - make_interval(days => $2) WHERE request_id = $1::uuid")
            .bind(id)
            .bind(days)
            .execute(&h.pool)
            .await?;
    }
    let before: Vec<String> = {
        let mut refs = Vec::new();
        for id in &ids {
            refs.push(h.get(id).await?.subject_ref);
        }
        refs
    };
    let sweep = |dry_run: bool| {
        let mut client = h.retention.clone();
        let message = RunSweepRequest {
            dry_run,
            categories: vec![veil_proto::common::v1::DataCategory::DsrRecord as i32],
        };
        let officer = h.officer.clone();
        async move { client.run_sweep(bearer(message, &officer)).await }
    };
    let counted = |response: &RunSweepResponse| -> i64 {
        response
            .results
            .iter()
            .filter_map(|r| r.outcome.as_ref())
            .map(|o| o.counts.values().sum::<i64>())
            .sum()
    };
    let dry = sweep(true).await?.into_inner();
    assert_eq!(counted(&dry), 1, "{dry:?}");
    let real = sweep(false).await?.into_inner();
    assert_eq!(counted(&real), 1, "{real:?}");
    let after: Vec<DataSubjectRequest> = {
        let mut rows = Vec::new();
        for id in &ids {
            rows.push(h.get(id).await?);
        }
        rows
    };
    assert_ne!(
        after[0].subject_ref, before[0],
        "the old closed record is unlinked"
    );
    assert_eq!(after[0].closing_reason, "");
    assert_eq!(
        after[0].state,
        RequestState::Rejected as i32,
        "kept, not deleted"
    );
    assert_eq!(after[1].subject_ref, before[1], "younger than the floor");
    assert_eq!(
        after[2].subject_ref, before[2],
        "open requests are never purged"
    );
    h.stack.stop().await?;
    Ok(())
}
