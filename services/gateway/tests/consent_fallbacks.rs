//! The tenant policy's fallbacks for a purpose without consent (refuse the message,
//! redact everything), and how a restricted subject (GDPR Art. 18) escapes both: its
//! turns are stored for no purpose, with the tenant's usual minimization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use retention_support::Stack;
use tonic::Code;
use veil_core::types::Role;
use veil_proto::common::v1::LegalBasis;
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{Purpose, UpsertPurposeRequest};
use veil_proto::gateway::v1::{
    ConsentFallback, MessageContext, MessageRole, ProcessMessageRequest, ProcessMessageResponse,
    PurposeConsentRule,
};

const MAIL: &str = "anna.keller@example.org";

/// `support` rests on the contract; `marketing` and `profiling` need consent nobody
/// gave, and the policy refuses messages for the first and redacts everything for the
/// second.
async fn fallbacks(stack: &Stack) -> anyhow::Result<()> {
    let channel =
        veil_testkit::probe::connect(&stack.consent_url, std::time::Duration::from_secs(10))
            .await?;
    let token = stack.token("consent", "admin", &[Role::Admin]);
    let mut consent = ConsentServiceClient::new(channel);
    for (key, basis) in [
        ("support", LegalBasis::Contract),
        ("marketing", LegalBasis::Consent),
        ("profiling", LegalBasis::Consent),
    ] {
        let mut request = tonic::Request::new(UpsertPurposeRequest {
            purpose: Some(Purpose {
                key: key.into(),
                name: key.into(),
                legal_basis: basis as i32,
                ..Default::default()
            }),
        });
        veil_core::auth::attach_bearer(&mut request, &token)?;
        consent.upsert_purpose(request).await?;
    }
    let mut policy = veil_gateway::policy_store::default_policy();
    policy.consent_rules = vec![
        PurposeConsentRule {
            purpose_key: "marketing".into(),
            fallback: ConsentFallback::Reject as i32,
        },
        PurposeConsentRule {
            purpose_key: "profiling".into(),
            fallback: ConsentFallback::RedactAll as i32,
        },
    ];
    stack.set_policy(policy).await
}

async fn say(
    stack: &Stack,
    subject: &str,
    purpose: &str,
) -> Result<ProcessMessageResponse, tonic::Status> {
    let response = stack
        .pipeline()
        .process_message(ProcessMessageRequest {
            context: Some(MessageContext {
                conversation_id: format!("conv-{subject}"),
                subject_id: subject.into(),
                role: MessageRole::User as i32,
                purposes: vec![purpose.into()],
                ..Default::default()
            }),
            text: format!("Write to {MAIL}"),
        })
        .await?;
    Ok(response.into_inner())
}

/// The officer's view of the subject's conversation, turn by turn.
async fn stored(stack: &Stack, subject: &str) -> anyhow::Result<Vec<String>> {
    let turns = stack
        .transcript(&stack.officer_key, &format!("conv-{subject}"))
        .await?;
    Ok(turns.into_iter().map(|t| t.redacted_text).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn fallbacks_refuse_or_redact_all_but_not_for_a_restricted_subject() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    fallbacks(&stack).await?;

    let refused = say(&stack, "anna", "marketing").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.message(), "no consent for purpose marketing");
    let redacted = say(&stack, "anna", "profiling").await?;
    assert_eq!(redacted.redacted_text, "Write to ");
    assert!(redacted.effective_purposes.is_empty());
    let supported = say(&stack, "anna", "support").await?;
    assert_eq!(supported.redacted_text, "Write to <EMAIL_ADDRESS_1>");
    assert_eq!(supported.effective_purposes, ["support"]);
    assert_eq!(
        stored(&stack, "anna").await?,
        ["Write to ", "Write to <EMAIL_ADDRESS_1>"]
    );

    // Restricted, the same messages are all stored, for no purpose, pseudonymized as
    // the policy says for any message: no fallback applies without a purpose.
    assert!(!stack.restrict("ben", true).await?);
    for purpose in ["marketing", "profiling", "support"] {
        let held = say(&stack, "ben", purpose).await?;
        assert!(held.processing_restricted, "{purpose}");
        assert!(held.stored, "{purpose}");
        assert!(held.redacted_text.is_empty(), "{purpose}");
        assert!(held.effective_purposes.is_empty(), "{purpose}");
        assert!(held.consent.is_empty(), "{purpose}");
    }
    assert_eq!(
        stored(&stack, "ben").await?,
        ["Write to <EMAIL_ADDRESS_1>"; 3]
    );

    // Lifted, the fallbacks apply again.
    assert!(stack.restrict("ben", false).await?);
    let refused = say(&stack, "ben", "marketing").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        say(&stack, "ben", "profiling").await?.redacted_text,
        "Write to "
    );
    stack.stop().await
}
