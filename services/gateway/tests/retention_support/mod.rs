//! Shared setup of the tests of the gateway's retention side: consent, vault and the
//! gateway on one test environment, a tenant with a bot key, clients of the internal
//! API as the retention service (or as someone else), and rows seeded straight into the
//! gateway schema where age matters.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use sqlx::PgPool;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use veil_core::auth::attach_bearer;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::common::v1::{SubjectSelector, subject_selector};
use veil_proto::events::v1::Event;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::gateway_internal_service_client::GatewayInternalServiceClient;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, CreateTenantRequest, GetTranscriptRequest, MessageContext, MessageRole,
    PrivacyPolicy, ProcessMessageRequest, ProcessMessageResponse, RestrictSubjectRequest,
    SetPrivacyPolicyRequest, TranscriptTurn,
};
use veil_testkit::{Running, TestEnv};

/// The platform administrator's secret in these tests.
pub const BOOTSTRAP: &str = "retention-test-bootstrap-key-0123456789abcdef";

/// Attaches one fixed bearer token to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            attach_bearer(&mut request, token)?;
        }
        Ok(request)
    }
}

/// A client of the gateway's internal API.
pub type Internal = GatewayInternalServiceClient<InterceptedService<Channel, Bearer>>;

/// Consent, vault and gateway of one test.
pub struct Stack {
    pub env: TestEnv,
    pub tenant: TenantId,
    /// The tenant administrator's key.
    pub admin_key: String,
    pub bot_key: String,
    /// A support agent's key (reads transcripts).
    pub agent_key: String,
    /// A privacy officer's key.
    pub officer_key: String,
    pub channel: Channel,
    pub vault_channel: Channel,
    pub consent_url: String,
    pub pool: PgPool,
    /// The gateway's settings, for more replicas.
    gateway_settings: veil_core::config::Settings<veil_gateway::GatewaySettings>,
    services: Vec<Running>,
}

impl Stack {
    /// Starts the services and creates a tenant with a bot key.
    pub async fn start() -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let consent = veil_testkit::spawn(
            veil_consent::build_with(env.settings::<veil_consent::ConsentSettings>("consent"))
                .await?,
        );
        let mut vault_settings = env.settings::<veil_vault::VaultSettings>("vault");
        vault_settings.service.master_keys.insert(
            "1".into(),
            veil_core::types::Personal::new(
                veil_core::crypto::KeyBytes::generate()
                    .to_base64()
                    .to_string(),
            ),
        );
        let vault = veil_testkit::spawn(veil_vault::build(vault_settings).await?);
        let mut settings = env.settings::<veil_gateway::GatewaySettings>("gateway");
        settings.service.bootstrap_admin_key = veil_core::types::Personal::new(BOOTSTRAP.into());
        settings.service.consent_url = consent.url();
        settings.service.vault_url = vault.url();
        // Nothing listens there: in-chat requests to retention are only logged.
        settings.service.retention_url = "http://127.0.0.1:9".into();
        settings.service.audit_url = "http://127.0.0.1:9".into();
        let gateway = veil_testkit::spawn(veil_gateway::build(settings.clone()).await?);
        let timeout = std::time::Duration::from_secs(10);
        let channel = veil_testkit::probe::connect(&gateway.url(), timeout).await?;
        let vault_channel = veil_testkit::probe::connect(&vault.url(), timeout).await?;
        let (tenant, keys) = tenant_with_bot(channel.clone()).await?;
        let pool = env.db.pool("gateway").await?;
        let consent_url = consent.url();
        Ok(Self {
            env,
            tenant,
            admin_key: keys.admin,
            bot_key: keys.bot,
            agent_key: keys.agent,
            officer_key: keys.officer,
            channel,
            vault_channel,
            consent_url,
            pool,
            gateway_settings: settings,
            services: vec![gateway, vault, consent],
        })
    }

    /// Stops the services gracefully, gateway first.
    pub async fn stop(self) -> anyhow::Result<()> {
        for running in self.services {
            running.stop().await?;
        }
        Ok(())
    }

    /// An internal token for `audience` as `principal_id` with `roles` in the tenant.
    pub fn token(&self, audience: &str, principal_id: &str, roles: &[Role]) -> String {
        self.env
            .token(audience, principal_id, Some(self.tenant), roles)
            .unwrap()
    }

    /// The internal API as the retention service.
    pub fn retention(&self) -> Internal {
        self.internal(Some(self.token("gateway", "retention", &[Role::Service])))
    }

    /// The internal API with `token` (or none).
    pub fn internal(&self, token: Option<String>) -> Internal {
        GatewayInternalServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// Sets the tenant's privacy policy as its admin.
    pub async fn set_policy(&self, policy: PrivacyPolicy) -> anyhow::Result<()> {
        AdminServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(Some(self.admin_key.clone())),
        )
        .set_privacy_policy(SetPrivacyPolicyRequest {
            tenant_id: String::new(),
            policy: Some(policy),
            expected_version: 0,
        })
        .await?;
        Ok(())
    }

    /// The message pipeline as the tenant's bot.
    pub fn pipeline(&self) -> PrivacyGatewayServiceClient<InterceptedService<Channel, Bearer>> {
        self.pipeline_on(&self.channel)
    }

    /// The message pipeline of the gateway replica at `channel` as the tenant's bot.
    pub fn pipeline_on(
        &self,
        channel: &Channel,
    ) -> PrivacyGatewayServiceClient<InterceptedService<Channel, Bearer>> {
        PrivacyGatewayServiceClient::with_interceptor(
            channel.clone(),
            Bearer(Some(self.bot_key.clone())),
        )
    }

    /// Another gateway replica on the same database, services and event stream (it
    /// runs as long as the returned guard), and a channel to it.
    pub async fn replica(&self) -> anyhow::Result<(Running, Channel)> {
        let replica =
            veil_testkit::spawn(veil_gateway::build(self.gateway_settings.clone()).await?);
        let timeout = std::time::Duration::from_secs(10);
        let channel = veil_testkit::probe::connect(&replica.url(), timeout).await?;
        Ok((replica, channel))
    }

    /// The first page (up to 50 turns) of a conversation's transcript as read with `key`.
    pub async fn transcript(
        &self,
        key: &str,
        conversation: &str,
    ) -> anyhow::Result<Vec<TranscriptTurn>> {
        Ok(PrivacyGatewayServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(Some(key.to_string())),
        )
        .get_transcript(GetTranscriptRequest {
            conversation_id: conversation.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .turns)
    }

    /// One turn through ProcessMessage.
    pub async fn say(
        &self,
        conversation: &str,
        subject: &str,
        role: MessageRole,
        text: &str,
    ) -> anyhow::Result<ProcessMessageResponse> {
        self.say_on(&self.channel, conversation, subject, role, text)
            .await
    }

    /// One turn through ProcessMessage of the gateway replica at `channel`.
    pub async fn say_on(
        &self,
        channel: &Channel,
        conversation: &str,
        subject: &str,
        role: MessageRole,
        text: &str,
    ) -> anyhow::Result<ProcessMessageResponse> {
        Ok(self
            .pipeline_on(channel)
            .process_message(ProcessMessageRequest {
                context: Some(MessageContext {
                    conversation_id: conversation.into(),
                    subject_id: subject.into(),
                    role: role as i32,
                    ..Default::default()
                }),
                text: text.into(),
            })
            .await?
            .into_inner())
    }

    /// The subject ref of `subject_id` in the tenant (as the gateway computes it).
    pub fn subject_ref(&self, subject_id: &str) -> SubjectRef {
        let keys = veil_core::subjects::SubjectKeys::from_settings(
            &self
                .env
                .settings::<veil_gateway::GatewaySettings>("gateway")
                .privacy,
        )
        .unwrap();
        keys.subject_ref(&self.tenant, subject_id)
    }

    /// Restricts (or lifts the restriction of) `subject_id` as the retention service;
    /// returns whether it was restricted before.
    pub async fn restrict(&self, subject_id: &str, restricted: bool) -> anyhow::Result<bool> {
        Ok(self
            .retention()
            .restrict_subject(RestrictSubjectRequest {
                subject: by_id(subject_id),
                request_id: "dsr-4".into(),
                restricted,
            })
            .await?
            .into_inner()
            .was_restricted)
    }

    /// Rows of `table` of `subject_id` in the gateway schema.
    pub async fn rows(&self, table: &str, subject_id: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT count(*) FROM {table} WHERE tenant_id = $1 AND subject_ref = $2");
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.as_uuid())
            .bind(self.subject_ref(subject_id).as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Seeds `count` turns of `subject_id` in `conversation`, created `days_ago`, each
    /// with a pseudonym map row, and the given purposes.
    pub async fn seed(
        &self,
        conversation: &str,
        subject_id: &str,
        count: i64,
        days_ago: i64,
        purposes: &[&str],
    ) -> anyhow::Result<()> {
        let purposes: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
        let subject_ref = self.subject_ref(subject_id);
        sqlx::query(
            "INSERT INTO transcript_messages
                 (message_id, tenant_id, conversation_id, subject_ref, turn_index, role,
                  redacted_text, created_at, purposes)
             SELECT gen_random_uuid(), $1, $2, $3,
                    COALESCE((SELECT max(turn_index) + 1 FROM transcript_messages
                              WHERE tenant_id = $1 AND conversation_id = $2), 0) + i,
                    1, 'my mail is <EMAIL_ADDRESS_' || (i + 1) || '>, turn ' || i,
                    now() - make_interval(days => $5::int), $6
             FROM generate_series(0, $4 - 1) AS i",
        )
        .bind(self.tenant.as_uuid())
        .bind(conversation)
        .bind(subject_ref.as_str())
        .bind(count)
        .bind(days_ago as i32)
        .bind(&purposes)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "INSERT INTO conversation_pseudonyms
                 (tenant_id, conversation_id, token, placeholder, entity_type, number,
                  subject_ref, created_at)
             SELECT $1, $2,
                    -- Shaped like a vault token (16 bytes, base64url), known to no vault.
                    'tok_' || translate(left(encode(decode(md5($2 || $3 || i), 'hex'),
                                                    'base64'), 22), '+/', '-_'),
                    '<EMAIL_ADDRESS_' || (i + 1) || '>',
                    'EMAIL_ADDRESS', i + 1, $3, now() - make_interval(days => $5::int)
             FROM generate_series(0, $4 - 1) AS i
             ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant.as_uuid())
        .bind(conversation)
        .bind(subject_ref.as_str())
        .bind(count)
        .bind(days_ago as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every event of `kind` (for example `erasure_completed`) in the gateway's outbox.
    pub async fn events(&self, kind: &str) -> anyhow::Result<Vec<Event>> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM outbox WHERE subject LIKE $1 ORDER BY id")
                .bind(format!("%.gateway.{kind}"))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|bytes| Event::decode(bytes.as_slice()).unwrap())
            .collect())
    }
}

/// The default policy with every e-mail address replaced by 256 characters: 1,100
/// addresses (about 20 KB of text) would redact to more than 256 KiB.
pub fn long_email_replacements() -> PrivacyPolicy {
    let mut policy = veil_gateway::policy_store::default_policy();
    policy.entity_rules = vec![veil_proto::gateway::v1::EntityRule {
        entity_type: "EMAIL_ADDRESS".into(),
        operator: veil_proto::common::v1::Operator::Replace as i32,
        replacement: "R".repeat(256),
        ..Default::default()
    }];
    policy
}

/// A selector naming the subject by its external id.
pub fn by_id(subject_id: &str) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(subject_selector::Subject::SubjectId(subject_id.into())),
    })
}

/// A selector naming the subject by its ref.
pub fn by_ref(subject_ref: &SubjectRef) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(subject_selector::Subject::SubjectRef(
            subject_ref.as_str().into(),
        )),
    })
}

async fn tenant_with_bot(channel: Channel) -> anyhow::Result<(TenantId, Keys)> {
    let mut admin =
        AdminServiceClient::with_interceptor(channel.clone(), Bearer(Some(BOOTSTRAP.into())));
    let created = admin
        .create_tenant(CreateTenantRequest {
            name: "Tenant retention".into(),
            slug: "retention".into(),
            create_admin_key: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let tenant: TenantId = created.tenant.unwrap().tenant_id.parse()?;
    let admin_key = created.admin_key.unwrap().secret;
    let mut admin = AdminServiceClient::with_interceptor(channel, Bearer(Some(admin_key.clone())));
    let mut keys = Vec::new();
    for (name, role) in [
        ("bot", ProtoRole::Bot),
        ("agent", ProtoRole::Agent),
        ("officer", ProtoRole::PrivacyOfficer),
    ] {
        let key = admin
            .create_api_key(CreateApiKeyRequest {
                name: name.into(),
                roles: vec![role as i32],
                ..Default::default()
            })
            .await?
            .into_inner()
            .created
            .unwrap()
            .secret;
        keys.push(key);
    }
    let [bot, agent, officer] = <[String; 3]>::try_from(keys).unwrap();
    Ok((
        tenant,
        Keys {
            admin: admin_key,
            bot,
            agent,
            officer,
        },
    ))
}

/// API keys of the test tenant.
pub struct Keys {
    pub admin: String,
    pub bot: String,
    pub agent: String,
    pub officer: String,
}
