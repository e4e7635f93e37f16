//! `veil demo`: a scripted multilingual conversation through a running stack. For each
//! turn it prints the original, what the LLM sees, the LLM's reply with placeholders,
//! the reply restored for the user, the notices due and any privacy command; at the end
//! it fetches the tenant's audit entries through the gateway and verifies one inclusion
//! proof against a freshly signed tree head, then follows the erasure the user asked for
//! in the chat to its signed deletion certificate and verifies it against the audit log.

use std::time::Duration;

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::attach_bearer;
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::audit::v1::{
    AuditEntry, GetInclusionProofRequest, GetSignedTreeHeadRequest, QueryRequest, SignedTreeHead,
};
use veil_proto::common::v1::{
    CollectionMethod, Jurisdiction, LegalBasis, NoticeKind, PageRequest, PrivacyCommandType,
    Role as ProtoRole,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{
    ConsentChoice, PublishNoticeRequest, Purpose, RecordConsentRequest, RecordNoticeServedRequest,
    UpsertPurposeRequest,
};
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, CreateTenantRequest, GetPrivacyPolicyRequest, MessageContext, MessageRole,
    PrivacyCommand, ProcessMessageRequest, ProcessMessageResponse, RestoreTextRequest,
    SetPrivacyPolicyRequest,
};

/// The subject (the end user) of the demo conversation.
const SUBJECT: &str = "customer-4711";

/// One scripted exchange: the user's text, its locale, and the LLM's reply template.
/// `{TYPE}` in a reply stands for the placeholder the gateway gave the first entity of
/// that type in the user's turn, which is what an LLM would echo back.
struct Turn {
    locale: &'static str,
    user: &'static str,
    reply: &'static str,
}

const SCRIPT: &[Turn] = &[
    Turn {
        locale: "en",
        user: "Hi, I'm Anna Keller and I can't log in. My e-mail is anna.keller@example.org.",
        reply: "Hello {PERSON}, I have sent a reset link to {EMAIL_ADDRESS}.",
    },
    Turn {
        locale: "de",
        user: "Bitte rufen Sie mich unter +49 30 12345678 an. Meine IBAN ist DE89 3704 0044 0532 0130 00.",
        reply: "Gern, wir rufen Sie unter {PHONE_NUMBER} an; die Erstattung geht auf {IBAN_CODE}.",
    },
    Turn {
        locale: "fr",
        user: "Mon collègue Jean Dupont a le même problème : jean.dupont@example.fr.",
        reply: "D'accord, j'écris aussi à {EMAIL_ADDRESS}.",
    },
    Turn {
        locale: "en",
        user: "Please stop using my data for marketing.",
        reply: "Understood, no more marketing messages.",
    },
    Turn {
        locale: "es",
        user: "Por favor, borren todos mis datos.",
        reply: "Hemos recibido su solicitud.",
    },
];

/// Where the demo talks to.
pub struct DemoTarget {
    /// Gateway gRPC URL; every call, audit reads included, goes through it.
    pub gateway_url: String,
    /// Platform bootstrap key of the gateway (creates the demo tenant).
    pub bootstrap_key: String,
}

/// Options of `veil demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Gateway gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub gateway: String,
    /// Platform bootstrap key of the gateway.
    #[arg(long, env = "VEIL_BOOTSTRAP_KEY", hide_env_values = true)]
    pub bootstrap_key: String,
}

/// Runs `veil demo` against a running stack: exit 0 on success, 1 on failure.
pub fn main(args: DemoArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil demo: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let target = DemoTarget {
        gateway_url: args.gateway,
        bootstrap_key: args.bootstrap_key,
    };
    match runtime.block_on(run(target)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("veil demo: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Keys of the demo tenant.
struct Keys {
    admin: String,
    bot: String,
    officer: String,
    auditor: String,
}

pub(crate) fn with_bearer<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token)?;
    Ok(request)
}

/// What the demo saw, for callers that check it.
#[derive(Debug, Default)]
pub struct DemoOutcome {
    /// The LLM replies as restored for the user, one per turn.
    pub restored: Vec<String>,
    /// The privacy commands detected, as `PrivacyCommandType` values, in turn order.
    pub commands: Vec<i32>,
    /// Audit entries of the demo tenant.
    pub audit_entries: usize,
    /// Whether an inclusion proof was fetched and verified against a signed head.
    pub proof_verified: bool,
    /// Whether the in-chat erasure completed with a certificate that verified against
    /// the audit log.
    pub erasure_certified: bool,
    /// Transcript turns the gateway erased, as the certificate states.
    pub erased_turns: i64,
}

/// Runs the demo and prints what happens.
pub async fn run(target: DemoTarget) -> anyhow::Result<()> {
    play(target).await.map(|_| ())
}

/// Runs the demo, prints what happens and returns what it saw.
pub async fn play(target: DemoTarget) -> anyhow::Result<DemoOutcome> {
    let mut outcome = DemoOutcome::default();
    let gateway = Channel::from_shared(target.gateway_url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let slug = format!("demo-{}", random_suffix());
    let keys = create_tenant(gateway.clone(), &slug, &target.bootstrap_key).await?;
    set_up_consent(gateway.clone(), &keys).await?;
    act_on_chat_requests(gateway.clone(), &keys).await?;

    let conversation = format!("{slug}-conversation");
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway.clone());
    let mut consent = ConsentServiceClient::new(gateway.clone());
    let mut erasure_request = None;
    for (number, turn) in SCRIPT.iter().enumerate() {
        let response = pipeline
            .process_message(with_bearer(
                ProcessMessageRequest {
                    context: Some(MessageContext {
                        conversation_id: conversation.clone(),
                        subject_id: SUBJECT.into(),
                        role: MessageRole::User as i32,
                        purposes: vec!["marketing".into()],
                        locale: turn.locale.into(),
                        channel: "web".into(),
                        jurisdiction: Jurisdiction::EuGdpr as i32,
                        ..Default::default()
                    }),
                    text: turn.user.into(),
                },
                &keys.bot,
            )?)
            .await?
            .into_inner();
        let reply = match response.privacy_command.as_ref() {
            Some(command) if !command.suggested_reply.is_empty() => command.suggested_reply.clone(),
            _ => fill_reply(turn.reply, &response),
        };
        let restored = pipeline
            .restore_text(with_bearer(
                RestoreTextRequest {
                    conversation_id: conversation.clone(),
                    subject_id: SUBJECT.into(),
                    text: reply.clone(),
                },
                &keys.bot,
            )?)
            .await?
            .into_inner();
        println!();
        println!("── turn {} ({}) ──", number + 1, turn.locale);
        println!("{:<13} {}", "user", turn.user);
        println!("{:<13} {}", "LLM sees", response.redacted_text);
        println!("{:<13} {}", "LLM replies", reply);
        println!("{:<13} {}", "user reads", restored.text);
        for notice in &response.notices_due {
            let kind = NoticeKind::try_from(notice.kind).map_or("notice", |k| k.as_str_name());
            println!(
                "{:<13} {kind} v{} ({}): {}",
                "notice due", notice.version, notice.locale, notice.title
            );
            // The bot shows the notice with its reply and says so, so it is not due again.
            consent
                .record_notice_served(with_bearer(
                    RecordNoticeServedRequest {
                        subject_id: SUBJECT.into(),
                        notice_id: notice.notice_id.clone(),
                        conversation_id: conversation.clone(),
                        channel: CollectionMethod::Chat as i32,
                        served_at: None,
                    },
                    &keys.bot,
                )?)
                .await?;
        }
        if let Some(command) = &response.privacy_command {
            println!("{:<13} {}", "privacy cmd", describe_command(command));
            outcome.commands.push(command.command_type);
            if command.command_type == PrivacyCommandType::Erase as i32
                && !command.request_id.is_empty()
            {
                erasure_request = Some(command.request_id.clone());
            }
        }
        outcome.restored.push(restored.text);
        if !response.effective_purposes.is_empty() {
            println!(
                "{:<13} {}",
                "purposes ok",
                response.effective_purposes.join(", ")
            );
        }
    }
    show_audit(gateway.clone(), &keys.auditor, SCRIPT.len(), &mut outcome).await?;
    let Some(request_id) = erasure_request else {
        anyhow::bail!("the erasure asked for in the chat was not submitted to retention");
    };
    outcome.erased_turns =
        crate::demo_erasure::show(gateway, &keys.officer, &keys.auditor, &request_id).await?;
    outcome.erasure_certified = true;
    Ok(outcome)
}

/// Lets Veil act on privacy commands in the chat, the user being signed in to the shop
/// (so the chat session counts as identity verification for data-subject requests).
async fn act_on_chat_requests(gateway: Channel, keys: &Keys) -> anyhow::Result<()> {
    let mut admin = AdminServiceClient::new(gateway);
    let mut policy = admin
        .get_privacy_policy(with_bearer(
            GetPrivacyPolicyRequest::default(),
            &keys.admin,
        )?)
        .await?
        .into_inner()
        .policy
        .unwrap_or_default();
    policy.auto_act_on_privacy_commands = true;
    policy.chat_identity_verified = true;
    admin
        .set_privacy_policy(with_bearer(
            SetPrivacyPolicyRequest {
                policy: Some(policy),
                ..Default::default()
            },
            &keys.admin,
        )?)
        .await?;
    Ok(())
}

/// Creates the demo tenant with a bot, a privacy-officer and an auditor key.
async fn create_tenant(gateway: Channel, slug: &str, bootstrap: &str) -> anyhow::Result<Keys> {
    let mut admin = AdminServiceClient::new(gateway);
    let created = admin
        .create_tenant(with_bearer(
            CreateTenantRequest {
                name: "Demo shop".into(),
                slug: slug.into(),
                create_admin_key: true,
                ..Default::default()
            },
            bootstrap,
        )?)
        .await?
        .into_inner();
    let tenant = created.tenant.unwrap_or_default();
    let admin_key = created.admin_key.map(|k| k.secret).unwrap_or_default();
    println!("tenant {} ({})", tenant.slug, tenant.tenant_id);
    let mut key = async |name: &str, role: ProtoRole| -> anyhow::Result<String> {
        Ok(admin
            .create_api_key(with_bearer(
                CreateApiKeyRequest {
                    name: name.into(),
                    roles: vec![role as i32],
                    ..Default::default()
                },
                &admin_key,
            )?)
            .await?
            .into_inner()
            .created
            .map(|k| k.secret)
            .unwrap_or_default())
    };
    Ok(Keys {
        admin: admin_key.clone(),
        bot: key("demo bot", ProtoRole::Bot).await?,
        officer: key("demo privacy officer", ProtoRole::PrivacyOfficer).await?,
        auditor: key("demo auditor", ProtoRole::Auditor).await?,
    })
}

/// A marketing purpose the subject consented to (so a withdrawal in the chat has
/// something to withdraw) and a privacy notice (so the first turn has a notice due).
async fn set_up_consent(gateway: Channel, keys: &Keys) -> anyhow::Result<()> {
    let mut consent = ConsentServiceClient::new(gateway);
    consent
        .upsert_purpose(with_bearer(
            UpsertPurposeRequest {
                purpose: Some(Purpose {
                    key: "marketing".into(),
                    name: "Marketing".into(),
                    legal_basis: LegalBasis::Consent as i32,
                    consent_required: true,
                    ..Default::default()
                }),
            },
            &keys.officer,
        )?)
        .await?;
    let notice = consent
        .publish_notice(with_bearer(
            PublishNoticeRequest {
                kind: NoticeKind::PrivacyNotice as i32,
                locale: "en".into(),
                title: "How the Demo shop assistant handles your data".into(),
                body: "We keep chat transcripts for 30 days; personal data is pseudonymised."
                    .into(),
                url: "https://shop.example/privacy".into(),
                purpose_keys: vec!["marketing".into()],
                effective_at: None,
            },
            &keys.officer,
        )?)
        .await?
        .into_inner()
        .notice
        .unwrap_or_default();
    consent
        .record_consent(with_bearer(
            RecordConsentRequest {
                subject_id: SUBJECT.into(),
                purpose_keys: vec!["marketing".into()],
                choice: ConsentChoice::Grant as i32,
                collection_method: CollectionMethod::Chat as i32,
                jurisdiction: Jurisdiction::EuGdpr as i32,
                language: "en".into(),
                notice_id: notice.notice_id,
                ..Default::default()
            },
            &keys.bot,
        )?)
        .await?;
    Ok(())
}

/// The reply template with each `{TYPE}` replaced by the user turn's placeholder for
/// that entity type (or the bare type name when the turn had none).
fn fill_reply(template: &str, response: &ProcessMessageResponse) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let wanted = &rest[open + 1..open + close];
        let placeholder = response
            .entities
            .iter()
            .find(|e| e.entity_type == wanted && !e.placeholder.is_empty())
            .map_or(wanted, |e| e.placeholder.as_str());
        out.push_str(placeholder);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn describe_command(command: &PrivacyCommand) -> String {
    use veil_proto::gateway::v1::PrivacyCommandAction;
    let kind =
        PrivacyCommandType::try_from(command.command_type).map_or("unknown", |k| k.as_str_name());
    let action =
        PrivacyCommandAction::try_from(command.action).map_or("unknown", |a| a.as_str_name());
    let mut text = format!("{kind} [{}] -> {action}", command.language);
    if !command.withdrawn_purposes.is_empty() {
        text.push_str(&format!(
            " (withdrawn: {})",
            command.withdrawn_purposes.join(", ")
        ));
    }
    text
}

/// Reads the tenant's audit entries through the gateway (as its auditor) once the
/// conversation's events have arrived, then proves one of them is in the signed log.
async fn show_audit(
    gateway: Channel,
    auditor: &str,
    turns: usize,
    outcome: &mut DemoOutcome,
) -> anyhow::Result<()> {
    let mut audit = AuditServiceClient::new(gateway);
    let entries = match wait_for_entries(&mut audit, auditor, turns).await {
        Ok(entries) => entries,
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            println!("\naudit queries are not available on this gateway yet (UNIMPLEMENTED)");
            return Ok(());
        }
        Err(status) => return Err(status.into()),
    };
    outcome.audit_entries = entries.len();
    println!();
    println!("audit log entries of this tenant ({}):", entries.len());
    for entry in &entries {
        println!(
            "  #{:<6} {:<34} leaf {}",
            entry.leaf_index,
            entry.event_type,
            hex_prefix(&entry.leaf_hash)
        );
    }
    let Some(last) = entries.iter().max_by_key(|e| e.leaf_index) else {
        anyhow::bail!("the audit log holds no entry of the demo tenant");
    };
    let head = audit
        .get_signed_tree_head(with_bearer(
            GetSignedTreeHeadRequest {
                tree_size: 0,
                sign_now: true,
            },
            auditor,
        )?)
        .await;
    let head = match head {
        Ok(head) => head.into_inner().tree_head.unwrap_or_default(),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            println!("signed tree heads are not available yet (UNIMPLEMENTED)");
            return Ok(());
        }
        Err(status) => return Err(status.into()),
    };
    verify_head(&head)?;
    let proof = audit
        .get_inclusion_proof(with_bearer(
            GetInclusionProofRequest {
                leaf_index: last.leaf_index,
                tree_size: head.tree_size,
            },
            auditor,
        )?)
        .await?
        .into_inner()
        .proof
        .unwrap_or_default();
    anyhow::ensure!(
        proof.leaf_hash == last.leaf_hash,
        "the proof is for another leaf than the entry"
    );
    veil_core::merkle::verify_inclusion(
        &last.leaf_hash,
        last.leaf_index,
        head.tree_size,
        &proof.audit_path,
        &head.root_hash,
    )?;
    outcome.proof_verified = true;
    println!();
    println!(
        "signed tree head: size {}, root {}, key {} (signature checked)",
        head.tree_size,
        hex_prefix(&head.root_hash),
        head.key_id
    );
    println!(
        "inclusion proof of #{} ({}, {} hashes): verified",
        last.leaf_index,
        last.event_type,
        proof.audit_path.len()
    );
    Ok(())
}

/// Polls `Query` until at least one entry per turn is there and the count has settled.
async fn wait_for_entries(
    audit: &mut AuditServiceClient<Channel>,
    auditor: &str,
    turns: usize,
) -> Result<Vec<AuditEntry>, tonic::Status> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    loop {
        let entries = query_all(audit, auditor).await?;
        let settled = entries.len() >= turns && entries.len() == seen;
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(entries);
        }
        seen = entries.len();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn query_all(
    audit: &mut AuditServiceClient<Channel>,
    auditor: &str,
) -> Result<Vec<AuditEntry>, tonic::Status> {
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = Request::new(QueryRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: token.clone(),
            }),
            ..Default::default()
        });
        attach_bearer(&mut request, auditor)
            .map_err(|_| tonic::Status::invalid_argument("the auditor key is not a header"))?;
        let response = audit.query(request).await?.into_inner();
        entries.extend(response.entries);
        token = response.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return Ok(entries);
        }
    }
}

/// Checks the head's signature with the key it ships (integrity; pin the key for origin).
fn verify_head(head: &SignedTreeHead) -> anyhow::Result<()> {
    let at = head.signed_at.unwrap_or_default();
    let presented = veil_audit::tree_head::PresentedHead {
        tree_size: head.tree_size,
        root_hash: head.root_hash.clone(),
        signed_at_ms: at.seconds * 1000 + i64::from(at.nanos) / 1_000_000,
        signed_payload: head.signed_payload.clone(),
        signature: head.signature.clone(),
        key_id: head.key_id.clone(),
        public_key: head.public_key.clone(),
    };
    veil_audit::tree_head::verify(&presented, &[])?;
    Ok(())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}
