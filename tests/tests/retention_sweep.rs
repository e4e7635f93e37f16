//! Retention sweeps through every owning service: expired rows of the gateway, the vault
//! and consent go, held subjects' rows stay, the dry run counts exactly what the real
//! run then purges, and a sweep interrupted halfway resumes without redoing a step.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tonic::transport::Channel;
use veil_core::types::{Role, TenantId};
use veil_e2e::{TestStack, bearer, create_tenant, internal_token, stack_settings};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{
    CollectionMethod, DataCategory, Jurisdiction, LegalBasis, NoticeKind, PurgeOutcome,
    RetentionAction, SubjectSelector, VeilService,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{
    ConsentChoice, PublishNoticeRequest, Purpose, RecordConsentRequest, UpsertPurposeRequest,
    WithdrawConsentRequest,
};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{
    PlaceHoldRequest, RetentionPolicy, RunSweepRequest, RunSweepResponse, SetPolicyRequest,
};
use veil_proto::vault::v1::PutRecordRequest;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_testkit::TestEnv;

const ALICE: &str = "alice-4711";
const BOB: &str = "bob-0815";
const DAY: i64 = 86_400;

/// The stack, one tenant, and clients acting in it.
struct World {
    env: TestEnv,
    stack: TestStack,
    tenant: TenantId,
    bot_key: String,
}

impl World {
    async fn start() -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let stack = TestStack::start(stack_settings(&env)).await?;
        let tenant = create_tenant(stack.channel("gateway").await?, "sweeps").await?;
        Ok(Self {
            env,
            stack,
            tenant: tenant.id,
            bot_key: tenant.bot_key,
        })
    }

    fn token(&self, audience: &str, role: Role) -> anyhow::Result<String> {
        internal_token(&self.env, audience, Some(self.tenant), &[role])
    }

    async fn retention(&self) -> anyhow::Result<RetentionServiceClient<Channel>> {
        Ok(RetentionServiceClient::new(
            self.stack.channel("retention").await?,
        ))
    }

    async fn db(&self, schema: &str) -> anyhow::Result<PgPool> {
        self.env.db.pool(schema).await
    }

    /// Two turns with personal data in `conversation` of `subject`.
    async fn chat(&self, conversation: &str, subject: &str) -> anyhow::Result<()> {
        let mut gateway = PrivacyGatewayServiceClient::new(self.stack.channel("gateway").await?);
        for text in [
            "My email is anna.keller@example.org, call me on +49 30 1234567.",
            "Thanks, my IBAN is DE89 3704 0044 0532 0130 00.",
        ] {
            gateway
                .process_message(bearer(
                    ProcessMessageRequest {
                        context: Some(MessageContext {
                            conversation_id: conversation.into(),
                            subject_id: subject.into(),
                            role: MessageRole::User as i32,
                            ..Default::default()
                        }),
                        text: text.into(),
                    },
                    &self.bot_key,
                ))
                .await?;
        }
        Ok(())
    }

    /// A vault record of `subject`; returns its id.
    async fn record(&self, subject: &str, field: &str) -> anyhow::Result<String> {
        let mut vault = VaultServiceClient::new(self.stack.channel("vault").await?);
        let record = vault
            .put_record(bearer(
                PutRecordRequest {
                    subject_id: subject.into(),
                    category: "contact".into(),
                    field: field.into(),
                    value: b"Hauptstrasse 1, Berlin".to_vec(),
                    content_type: "text/plain".into(),
                    ..Default::default()
                },
                &self.token("vault", Role::Service)?,
            ))
            .await?
            .into_inner()
            .record
            .unwrap_or_default();
        Ok(record.record_id)
    }

    /// A grant and a later withdrawal of `support` for `subject`: the grant is superseded.
    async fn consent_history(&self, subject: &str, notice_id: &str) -> anyhow::Result<()> {
        let mut consent = ConsentServiceClient::new(self.stack.channel("consent").await?);
        let bot = self.token("consent", Role::Bot)?;
        consent
            .record_consent(bearer(
                RecordConsentRequest {
                    subject_id: subject.into(),
                    purpose_keys: vec!["support".into()],
                    choice: ConsentChoice::Grant as i32,
                    notice_id: notice_id.into(),
                    language: "en".into(),
                    collection_method: CollectionMethod::Chat as i32,
                    jurisdiction: Jurisdiction::EuGdpr as i32,
                    ..Default::default()
                },
                &bot,
            ))
            .await?;
        consent
            .withdraw_consent(bearer(
                WithdrawConsentRequest {
                    subject_id: subject.into(),
                    purpose_keys: vec!["support".into()],
                    collection_method: CollectionMethod::Chat as i32,
                    ..Default::default()
                },
                &bot,
            ))
            .await?;
        Ok(())
    }

    /// The purpose and notice consent records refer to; returns the notice id.
    async fn consent_setup(&self) -> anyhow::Result<String> {
        let mut consent = ConsentServiceClient::new(self.stack.channel("consent").await?);
        consent
            .upsert_purpose(bearer(
                UpsertPurposeRequest {
                    purpose: Some(Purpose {
                        key: "support".into(),
                        name: "Support".into(),
                        legal_basis: LegalBasis::Consent as i32,
                        data_categories: vec!["conversation_content".into()],
                        ..Default::default()
                    }),
                },
                &self.token("consent", Role::Admin)?,
            ))
            .await?;
        let notice = consent
            .publish_notice(bearer(
                PublishNoticeRequest {
                    kind: NoticeKind::PrivacyNotice as i32,
                    locale: "en".into(),
                    title: "Privacy notice".into(),
                    body: "We use your data for support.".into(),
                    ..Default::default()
                },
                &self.token("consent", Role::PrivacyOfficer)?,
            ))
            .await?
            .into_inner()
            .notice
            .unwrap_or_default();
        Ok(notice.notice_id)
    }

    async fn set_policy(
        &self,
        category: DataCategory,
        action: RetentionAction,
    ) -> anyhow::Result<()> {
        self.retention()
            .await?
            .set_policy(bearer(
                SetPolicyRequest {
                    policy: Some(RetentionPolicy {
                        category: category as i32,
                        period: Some(prost_types::Duration {
                            seconds: 30 * DAY,
                            nanos: 0,
                        }),
                        action: action as i32,
                        ..Default::default()
                    }),
                },
                &self.token("retention", Role::PrivacyOfficer)?,
            ))
            .await?;
        Ok(())
    }

    async fn hold(&self, subject: Option<&str>) -> anyhow::Result<()> {
        self.retention()
            .await?
            .place_hold(bearer(
                PlaceHoldRequest {
                    subject: subject.map(|id| SubjectSelector {
                        subject: Some(Subject::SubjectId(id.into())),
                    }),
                    reason: "litigation".into(),
                    case_reference: "CASE-1".into(),
                    expires_at: None,
                },
                &self.token("retention", Role::PrivacyOfficer)?,
            ))
            .await?;
        Ok(())
    }

    async fn sweep(&self, dry_run: bool) -> anyhow::Result<RunSweepResponse> {
        Ok(self
            .retention()
            .await?
            .run_sweep(bearer(
                RunSweepRequest {
                    dry_run,
                    categories: Vec::new(),
                },
                &self.token("retention", Role::PrivacyOfficer)?,
            ))
            .await?
            .into_inner())
    }
}

/// Makes the old conversations, old vault records and superseded consent records 40
/// days old.
async fn backdate(world: &World, old_records: &[String]) -> anyhow::Result<()> {
    let gateway = world.db("gateway").await?;
    for table in ["transcript_messages", "conversation_pseudonyms"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET created_at = now() - interval '40 days'
             WHERE conversation_id LIKE '%-old'"
        )))
        .execute(&gateway)
        .await?;
    }
    let ids: Vec<uuid::Uuid> = old_records
        .iter()
        .map(|id| id.parse())
        .collect::<Result<_, _>>()?;
    sqlx::query(
        "UPDATE records SET created_at = now() - interval '40 days' WHERE record_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&world.db("vault").await?)
    .await?;
    // Consent records are append-only (a trigger refuses updates); the test steps
    // around it for the one statement that ages them.
    let consent = world.db("consent").await?;
    let mut tx = consent.begin().await?;
    sqlx::query("ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE consent_events t SET event_time = now() - interval '40 days'
         WHERE EXISTS (SELECT 1 FROM consent_events n WHERE n.tenant_id = t.tenant_id
                       AND n.subject_ref = t.subject_ref AND n.purpose_key = t.purpose_key
                       AND n.seq > t.seq)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("ALTER TABLE consent_events ENABLE TRIGGER consent_events_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What is left of each kind of row, per subject id and age.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rows {
    turns: HashMap<String, i64>,
    maps: HashMap<String, i64>,
    records: HashMap<String, i64>,
    consents: HashMap<String, i64>,
}

async fn rows(world: &World) -> anyhow::Result<Rows> {
    let refs = subject_refs(world)?;
    let name = |subject_ref: &str, old: bool| {
        let who = refs
            .iter()
            .find(|(_, r)| r == subject_ref)
            .map(|(id, _)| *id)
            .unwrap_or("other");
        format!("{who}/{}", if old { "old" } else { "new" })
    };
    let age = "created_at < now() - interval '30 days'";
    let mut out = Rows {
        turns: HashMap::new(),
        maps: HashMap::new(),
        records: HashMap::new(),
        consents: HashMap::new(),
    };
    let gateway = world.db("gateway").await?;
    for (table, target) in [
        ("transcript_messages", &mut out.turns),
        ("conversation_pseudonyms", &mut out.maps),
    ] {
        let counted: Vec<(String, bool, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT subject_ref, {age}, count(*) FROM {table} GROUP BY 1, 2"
        )))
        .fetch_all(&gateway)
        .await?;
        for (subject_ref, old, n) in counted {
            *target.entry(name(&subject_ref, old)).or_insert(0) += n;
        }
    }
    let counted: Vec<(String, bool, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT subject_ref, {age}, count(*) FROM records GROUP BY 1, 2"
    )))
    .fetch_all(&world.db("vault").await?)
    .await?;
    for (subject_ref, old, n) in counted {
        *out.records.entry(name(&subject_ref, old)).or_insert(0) += n;
    }
    let counted: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT subject_ref, event_time < now() - interval '30 days', count(*)
         FROM consent_events GROUP BY 1, 2",
    )
    .fetch_all(&world.db("consent").await?)
    .await?;
    for (subject_ref, old, n) in counted {
        *out.consents.entry(name(&subject_ref, old)).or_insert(0) += n;
    }
    Ok(out)
}

fn subject_refs(world: &World) -> anyhow::Result<Vec<(&'static str, String)>> {
    let settings = world
        .env
        .settings::<veil_retention::RetentionSettings>("retention");
    let keys = veil_core::subjects::SubjectKeys::from_settings(&settings.privacy)?;
    Ok([ALICE, BOB]
        .into_iter()
        .map(|id| (id, keys.subject_ref(&world.tenant, id).to_string()))
        .collect())
}

fn get(map: &HashMap<String, i64>, key: &str) -> i64 {
    map.get(key).copied().unwrap_or(0)
}

/// (service, category) -> outcome, with errors surfaced.
fn outcomes(response: &RunSweepResponse) -> HashMap<(i32, i32), PurgeOutcome> {
    response
        .results
        .iter()
        .map(|r| {
            assert!(r.error.is_empty(), "sweep step failed: {r:?}");
            (
                (r.service, r.category),
                r.outcome.clone().expect("an outcome per result"),
            )
        })
        .collect()
}

async fn retention_events(world: &World) -> anyhow::Result<Vec<Event>> {
    use prost::Message as _;
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE subject LIKE '%.purge_completed' ORDER BY id",
    )
    .fetch_all(&world.db("retention").await?)
    .await?;
    Ok(payloads
        .iter()
        .map(|p| Event::decode(p.as_slice()))
        .collect::<Result<_, _>>()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_purges_exactly_the_expired_rows_the_dry_run_counted() -> anyhow::Result<()> {
    let world = World::start().await?;
    let notice = world.consent_setup().await?;
    let mut old_records = Vec::new();
    for subject in [ALICE, BOB] {
        world.chat(&format!("{subject}-old"), subject).await?;
        world.chat(&format!("{subject}-new"), subject).await?;
        old_records.push(world.record(subject, "address_old").await?);
        world.record(subject, "address_new").await?;
        world.consent_history(subject, &notice).await?;
    }
    backdate(&world, &old_records).await?;
    for (category, action) in [
        (DataCategory::Transcript, RetentionAction::Delete),
        (DataCategory::VaultRecord, RetentionAction::Delete),
        (DataCategory::ConsentRecord, RetentionAction::Delete),
        (DataCategory::AuditEvent, RetentionAction::Anonymize),
    ] {
        world.set_policy(category, action).await?;
    }
    world.hold(Some(ALICE)).await?;
    let before = rows(&world).await?;
    // The setup produced what the test relies on: old and new rows of both subjects.
    for who in [ALICE, BOB] {
        for age in ["old", "new"] {
            let key = format!("{who}/{age}");
            assert!(get(&before.turns, &key) > 0, "turns {key}: {before:?}");
            assert!(get(&before.maps, &key) > 0, "maps {key}: {before:?}");
            assert_eq!(get(&before.records, &key), 1, "records {key}");
            assert_eq!(get(&before.consents, &key), 1, "consents {key}");
        }
    }

    let dry = world.sweep(true).await?;
    assert!(dry.dry_run && !dry.blocked_by_hold);
    assert_eq!(rows(&world).await?, before, "a dry run changes nothing");
    let counted = outcomes(&dry);
    let gateway = &counted[&(VeilService::Gateway as i32, DataCategory::Transcript as i32)];
    let bob_old = format!("{BOB}/old");
    assert_eq!(
        gateway.counts.get("turns"),
        Some(&get(&before.turns, &bob_old))
    );
    assert_eq!(
        gateway.counts.get("pseudonym_maps"),
        Some(&get(&before.maps, &bob_old))
    );
    let alice_old = format!("{ALICE}/old");
    assert_eq!(
        gateway.held_skipped,
        get(&before.turns, &alice_old) + get(&before.maps, &alice_old)
    );
    let vault = &counted[&(VeilService::Vault as i32, DataCategory::VaultRecord as i32)];
    assert_eq!(vault.counts.get("records"), Some(&1));
    assert_eq!(vault.held_skipped, 1);
    let consent = &counted[&(
        VeilService::Consent as i32,
        DataCategory::ConsentRecord as i32,
    )];
    assert_eq!(consent.counts.get("consent_records"), Some(&1));
    assert_eq!(consent.held_skipped, 1);
    assert!(counted.contains_key(&(VeilService::Audit as i32, DataCategory::AuditEvent as i32)));

    let real = world.sweep(false).await?;
    assert!(!real.dry_run && !real.blocked_by_hold);
    let purged = outcomes(&real);
    assert_eq!(purged.len(), counted.len());
    for (key, outcome) in &purged {
        let expected = &counted[key];
        let nonzero = |o: &PurgeOutcome| -> HashMap<String, i64> {
            o.counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (k.clone(), *n))
                .collect()
        };
        assert_eq!(nonzero(outcome), nonzero(expected), "counts of {key:?}");
        assert_eq!(
            outcome.held_skipped, expected.held_skipped,
            "held of {key:?}"
        );
        assert!(!outcome.more_remaining);
    }

    // Exactly Bob's expired rows are gone; Alice (held) and everything recent stay.
    let after = rows(&world).await?;
    let mut expected = before.clone();
    for map in [
        &mut expected.turns,
        &mut expected.maps,
        &mut expected.records,
        &mut expected.consents,
    ] {
        map.remove(&bob_old);
    }
    assert_eq!(after, expected);

    // Each step announced itself once, under this sweep's id.
    let events = retention_events(&world).await?;
    let ours: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::RetentionPurgeCompleted(p)) if p.sweep_id == real.sweep_id => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(ours.len(), 4, "{ours:?}");
    assert!(events.len() == 4, "the dry run emits nothing");

    // Sweeping again finds nothing more to do.
    let again = world.sweep(false).await?;
    for (key, outcome) in outcomes(&again) {
        assert!(
            outcome.counts.values().all(|n| *n == 0),
            "{key:?} {outcome:?}"
        );
    }
    assert_eq!(rows(&world).await?, expected);

    // A tenant-wide hold stops sweeps altogether.
    world.hold(None).await?;
    let blocked = world.sweep(false).await?;
    assert!(blocked.blocked_by_hold);
    assert!(blocked.results.is_empty());
    let blocked_dry = world.sweep(true).await?;
    assert!(blocked_dry.blocked_by_hold);
    world.stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_sweep_resumes_on_start_without_redoing_finished_steps() -> anyhow::Result<()>
{
    let world = World::start().await?;
    let notice = world.consent_setup().await?;
    let old = vec![world.record(BOB, "address_old").await?];
    world.consent_history(BOB, &notice).await?;
    backdate(&world, &old).await?;
    world
        .set_policy(DataCategory::VaultRecord, RetentionAction::Delete)
        .await?;
    world
        .set_policy(DataCategory::ConsentRecord, RetentionAction::Delete)
        .await?;

    // A sweep that crashed after finishing its vault step (as recorded) and before its
    // consent step: the vault record is deliberately still there, so redoing the step
    // would show.
    let retention = world.db("retention").await?;
    let sweep_id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO sweeps (sweep_id, tenant_id, trigger) VALUES ($1, $2, 'manual')")
        .bind(sweep_id)
        .bind(world.tenant.as_uuid())
        .execute(&retention)
        .await?;
    let policies: Vec<(uuid::Uuid, i32, i32)> =
        sqlx::query_as("SELECT policy_id, category, action FROM policies ORDER BY category")
            .fetch_all(&retention)
            .await?;
    for (ordinal, (policy_id, category, action)) in policies.iter().enumerate() {
        let vault_step = *category == DataCategory::VaultRecord as i32;
        let service = if vault_step {
            VeilService::Vault
        } else {
            VeilService::Consent
        };
        sqlx::query(
            "INSERT INTO sweep_steps (sweep_id, ordinal, policy_id, service, category,
                                      purpose_key, action, cutoff, counts, batches, done)
             VALUES ($1, $2, $3, $4, $5, '', $6, now() - interval '30 days', $7, $8, $9)",
        )
        .bind(sweep_id)
        .bind(i32::try_from(ordinal)?)
        .bind(policy_id)
        .bind(service as i32)
        .bind(category)
        .bind(action)
        .bind(sqlx::types::Json(if vault_step {
            HashMap::from([("records".to_string(), 1_i64)])
        } else {
            HashMap::new()
        }))
        .bind(i32::from(vault_step))
        .bind(vault_step)
        .execute(&retention)
        .await?;
    }

    // A second retention instance on the same database resumes it as it starts.
    let mut settings = world
        .env
        .settings::<veil_retention::RetentionSettings>("retention");
    settings.service.gateway_url = world.stack.service("gateway").url();
    settings.service.vault_url = world.stack.service("vault").url();
    settings.service.consent_url = world.stack.service("consent").url();
    settings.service.audit_url = world.stack.service("audit").url();
    let restarted = veil_testkit::spawn(veil_retention::build(settings).await?);
    veil_testkit::eventually(Duration::from_secs(20), || {
        let retention = retention.clone();
        async move {
            let finished: Option<bool> = sqlx::query_scalar(
                "SELECT finished_at IS NOT NULL FROM sweeps WHERE sweep_id = $1",
            )
            .bind(sweep_id)
            .fetch_optional(&retention)
            .await
            .ok()?;
            (finished == Some(true)).then_some(())
        }
    })
    .await?;

    let after = rows(&world).await?;
    let bob_old = format!("{BOB}/old");
    assert_eq!(
        get(&after.records, &bob_old),
        1,
        "the finished vault step was not redone"
    );
    assert_eq!(
        get(&after.consents, &bob_old),
        0,
        "the pending consent step ran"
    );
    assert_eq!(get(&after.consents, &format!("{BOB}/new")), 1);
    let announced: Vec<_> = retention_events(&world)
        .await?
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::RetentionPurgeCompleted(p)) if p.sweep_id == sweep_id.to_string() => {
                Some(p)
            }
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), 1, "only the resumed step is announced");
    assert_eq!(announced[0].service, VeilService::Consent as i32);
    assert_eq!(
        announced[0]
            .outcome
            .as_ref()
            .and_then(|o| o.counts.get("consent_records")),
        Some(&1)
    );
    restarted.stop().await?;
    world.stack.stop().await
}
