//! Shared by the retention end-to-end tests: a stack with one tenant, and a subject
//! seeded with canary values in messages, consent, vault and the gateway's tokens.
#![allow(dead_code)]

use std::time::Duration;

use tonic::transport::Channel;
use veil_core::types::{Role, TenantId};
use veil_e2e::{TestStack, bearer, create_tenant, internal_token, stack_settings, support_purpose};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{CollectionMethod, Jurisdiction, RequestState, SubjectSelector};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{
    ConsentChoice, Recipient, RecipientKind, RecordConsentRequest, UpsertRecipientRequest,
};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{
    DataSubjectRequest, DeletionCertificate, GetDeletionCertificateRequest, GetRequestRequest,
};
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_proto::vault::v1::{GetRecordRequest, PutRecordRequest};
use veil_testkit::{TestEnv, eventually};

/// How long the saga may take on a loaded machine.
pub const SAGA_DEADLINE: Duration = Duration::from_secs(60);

/// The subject's personal data, unique to one run.
pub struct Canaries {
    pub subject_id: String,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub secret: String,
    /// Free text no detector redacts: it is stored in clear in the transcript until the
    /// erasure, which proves the scan finds what is there.
    pub remark: String,
}

impl Canaries {
    pub fn new() -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string();
        Self {
            subject_id: format!("cust-canary-{}", &run[..12]),
            email: format!("canary.{}@example.org", &run[..10]),
            name: "Annabelle Quistorp".into(),
            phone: "+49 170 5550123".into(),
            secret: format!("vault-canary-{}", &run[12..24]),
            remark: format!("quokka{}", &run[20..30]),
        }
    }

    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.subject_id,
            &self.email,
            &self.name,
            &self.phone,
            &self.secret,
            &self.remark,
        ]
    }
}

pub fn selector(subject_id: &str) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(Subject::SubjectId(subject_id.into())),
    })
}

pub struct World {
    pub env: TestEnv,
    pub stack: TestStack,
    pub tenant: TenantId,
    pub bot_key: String,
    pub gateway: Channel,
}

impl World {
    pub async fn start(slug: &str) -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let mut settings = stack_settings(&env);
        // Retries of unanswered saga steps come quickly in tests.
        settings.retention.service.saga_retry_secs = 1;
        let stack = TestStack::start(settings).await?;
        let gateway = stack.channel("gateway").await?;
        let tenant = create_tenant(gateway.clone(), slug).await?;
        Ok(Self {
            env,
            stack,
            tenant: tenant.id,
            bot_key: tenant.bot_key,
            gateway,
        })
    }

    pub fn token(&self, audience: &str, role: Role) -> anyhow::Result<String> {
        internal_token(&self.env, audience, Some(self.tenant), &[role])
    }

    pub async fn retention(&self) -> anyhow::Result<RetentionServiceClient<Channel>> {
        Ok(RetentionServiceClient::new(
            self.stack.channel("retention").await?,
        ))
    }

    /// Messages, consent records, a recipient and a vault record of the subject; returns
    /// the vault record id and the subject's vault tokens the gateway created.
    pub async fn seed(&self, canaries: &Canaries) -> anyhow::Result<(String, Vec<String>)> {
        let consent_token = self.token("consent", Role::PrivacyOfficer)?;
        let mut consent = ConsentServiceClient::new(self.stack.channel("consent").await?);
        consent
            .upsert_purpose(bearer(support_purpose(), &consent_token))
            .await?;
        consent
            .upsert_recipient(bearer(
                UpsertRecipientRequest {
                    recipient: Some(Recipient {
                        key: "crm".into(),
                        name: "CRM provider".into(),
                        kind: RecipientKind::Processor as i32,
                        country: "DE".into(),
                        ..Default::default()
                    }),
                },
                &consent_token,
            ))
            .await?;
        consent
            .record_consent(bearer(
                RecordConsentRequest {
                    subject_id: canaries.subject_id.clone(),
                    purpose_keys: vec!["support".into()],
                    choice: ConsentChoice::Grant as i32,
                    collection_method: CollectionMethod::Chat as i32,
                    // No notice needed for a CCPA record; the test is about erasure.
                    jurisdiction: Jurisdiction::UsCaCcpa as i32,
                    language: "en".into(),
                    ..Default::default()
                },
                &consent_token,
            ))
            .await?;

        let mut pipeline = PrivacyGatewayServiceClient::new(self.gateway.clone());
        for turn in 0..12 {
            let text = format!(
                "Turn {turn}: my name is {}, write to {} or call {}. Codeword {}. <script>x</script>",
                canaries.name, canaries.email, canaries.phone, canaries.remark
            );
            pipeline
                .process_message(bearer(
                    ProcessMessageRequest {
                        context: Some(MessageContext {
                            conversation_id: format!("conv-{}", turn % 3),
                            subject_id: canaries.subject_id.clone(),
                            role: MessageRole::User as i32,
                            ..Default::default()
                        }),
                        text,
                    },
                    &self.bot_key,
                ))
                .await?;
        }

        let vault_token = self.token("vault", Role::PrivacyOfficer)?;
        let mut vault = VaultServiceClient::new(self.stack.channel("vault").await?);
        let record_id = vault
            .put_record(bearer(
                PutRecordRequest {
                    subject_id: canaries.subject_id.clone(),
                    category: "contact".into(),
                    field: "note".into(),
                    value: canaries.secret.clone().into_bytes(),
                    content_type: "text/plain".into(),
                    ..Default::default()
                },
                &vault_token,
            ))
            .await?
            .into_inner()
            .record
            .expect("record")
            .record_id;
        // The record decrypts before the erasure.
        let value = vault
            .get_record(bearer(
                GetRecordRequest {
                    record_id: record_id.clone(),
                    purpose: "e2e_check".into(),
                },
                &vault_token,
            ))
            .await?
            .into_inner()
            .value;
        assert_eq!(value, canaries.secret.as_bytes());

        let gateway_db = self.env.db.pool("gateway").await?;
        let tokens: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT token FROM conversation_pseudonyms WHERE tenant_id = $1",
        )
        .bind(self.tenant.as_uuid())
        .fetch_all(&gateway_db)
        .await?;
        assert!(!tokens.is_empty(), "the gateway tokenized the canaries");
        Ok((record_id, tokens))
    }

    pub async fn request(&self, request_id: &str) -> anyhow::Result<DataSubjectRequest> {
        let token = self.token("retention", Role::PrivacyOfficer)?;
        Ok(self
            .retention()
            .await?
            .get_request(bearer(
                GetRequestRequest {
                    request_id: request_id.into(),
                },
                &token,
            ))
            .await?
            .into_inner()
            .request
            .expect("request"))
    }

    /// Polls until the request reaches `state`.
    pub async fn wait_for(&self, request_id: &str, state: RequestState) -> anyhow::Result<()> {
        eventually(SAGA_DEADLINE, || async {
            let request = self.request(request_id).await.ok()?;
            (request.state == state as i32).then_some(())
        })
        .await
    }

    pub async fn certificate(&self, request_id: &str) -> anyhow::Result<DeletionCertificate> {
        let token = self.token("retention", Role::PrivacyOfficer)?;
        Ok(self
            .retention()
            .await?
            .get_deletion_certificate(bearer(
                GetDeletionCertificateRequest {
                    request_id: request_id.into(),
                },
                &token,
            ))
            .await?
            .into_inner()
            .certificate
            .expect("certificate"))
    }
}
