//! Tokenization: deterministic per tenant, different across tenants, all-or-nothing
//! batches, and who may detokenize what.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestVault, code, payloads, status};
use tonic::Code;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::RevealKind;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::{DetokenizeRequest, TokenizeItem, TokenizeRequest};

fn item(subject: &str, entity_type: &str, value: &str) -> TokenizeItem {
    TokenizeItem {
        subject_id: subject.into(),
        entity_type: entity_type.into(),
        value: value.into(),
    }
}

fn tokenize(items: Vec<TokenizeItem>) -> TokenizeRequest {
    TokenizeRequest {
        items,
        store_value: true,
        started_at: None,
    }
}

fn detokenize(tokens: &[String], purpose: &str, subject: Option<&str>) -> DetokenizeRequest {
    DetokenizeRequest {
        tokens: tokens.to_vec(),
        purpose: purpose.into(),
        subject: subject.map(|s| SubjectSelector {
            subject: Some(Subject::SubjectId(s.into())),
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_deterministic_within_a_tenant_and_differ_across_tenants() -> anyhow::Result<()>
{
    let mut vault = TestVault::start().await?;
    let (a, b) = (TenantId::generate(), TenantId::generate());
    let batch = || {
        tokenize(vec![
            item("user-1", "EMAIL_ADDRESS", "alice@example.com"),
            item("user-1", "PHONE_NUMBER", "alice@example.com"),
            item("user-2", "EMAIL_ADDRESS", "alice@example.com"),
            item("user-1", "EMAIL_ADDRESS", "alice@example.com"),
        ])
    };
    let first = vault
        .client
        .tokenize(vault.call(Some(a), &[Role::Service], batch()))
        .await?
        .into_inner()
        .tokens;
    assert_eq!(first.len(), 4);
    assert_eq!(
        first[0].token, first[2].token,
        "equal values, equal tokens, whoever the subject"
    );
    assert_eq!(first[0].token, first[3].token);
    assert_ne!(
        first[0].token, first[1].token,
        "the entity type is part of the token"
    );
    assert!(first[0].token.starts_with("tok_"));
    assert_eq!(
        first.iter().map(|t| t.created).collect::<Vec<_>>(),
        vec![true, true, true, false],
        "a repeat within the batch is not new"
    );
    let again = vault
        .client
        .tokenize(vault.call(Some(a), &[Role::Service], batch()))
        .await?
        .into_inner()
        .tokens;
    assert_eq!(
        again.iter().map(|t| t.token.clone()).collect::<Vec<_>>(),
        first.iter().map(|t| t.token.clone()).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|t| !t.created));
    let other = vault
        .client
        .tokenize(vault.call(Some(b), &[Role::Service], batch()))
        .await?
        .into_inner()
        .tokens;
    assert_ne!(other[0].token, first[0].token, "another tenant's token key");

    // The original only comes back within the tenant.
    let tokens = vec![first[0].token.clone()];
    let theirs = vault
        .client
        .detokenize(vault.call(
            Some(b),
            &[Role::PrivacyOfficer],
            detokenize(&tokens, "dsr_access", None),
        ))
        .await?
        .into_inner();
    assert!(!theirs.results[0].found);
    let mine = vault
        .client
        .detokenize(vault.call(
            Some(a),
            &[Role::PrivacyOfficer],
            detokenize(&tokens, "dsr_access", None),
        ))
        .await?
        .into_inner();
    assert!(mine.results[0].found);
    assert_eq!(mine.results[0].value, "alice@example.com");
    assert_eq!(mine.results[0].entity_type, "EMAIL_ADDRESS");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn detokenize_follows_roles_subjects_and_purposes_and_is_audited_by_counts()
-> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let tokens: Vec<String> = vault
        .client
        .tokenize(vault.call(
            Some(tenant),
            &[Role::Service],
            tokenize(vec![
                item("user-1", "EMAIL_ADDRESS", "one@example.com"),
                item("user-1", "PERSON", "Alice Example"),
                item("user-2", "EMAIL_ADDRESS", "two@example.com"),
            ]),
        ))
        .await?
        .into_inner()
        .tokens
        .into_iter()
        .map(|t| t.token)
        .collect();
    let one_way = vault
        .client
        .tokenize(vault.call(
            Some(tenant),
            &[Role::Service],
            TokenizeRequest {
                items: vec![item("user-1", "IBAN_CODE", "DE89370400440532013000")],
                store_value: false,
                started_at: None,
            },
        ))
        .await?
        .into_inner()
        .tokens[0]
        .token
        .clone();

    // A bot restores only its own subject's values, and must say which subject.
    assert_eq!(
        code(
            vault
                .client
                .detokenize(vault.call(
                    Some(tenant),
                    &[Role::Bot],
                    detokenize(&tokens, "restore_to_subject", None)
                ))
                .await
        ),
        Code::InvalidArgument
    );
    let mut asked = tokens.clone();
    asked.push(one_way.clone());
    let restored = vault
        .client
        .detokenize(vault.call(
            Some(tenant),
            &[Role::Bot],
            detokenize(&asked, "restore_to_subject", Some("user-1")),
        ))
        .await?
        .into_inner()
        .results;
    assert_eq!(
        restored
            .iter()
            .map(|r| (r.found, r.value.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (true, "one@example.com"),
            (true, "Alice Example"),
            (false, ""),
            (false, ""),
        ],
        "another subject's token and a one-way token stay hidden"
    );
    // Privacy officers need a purpose, and name each token once (a repeat would copy
    // its original into the answer again); auditors and agents never detokenize.
    let repeated = vec![tokens[0].clone(), tokens[1].clone(), tokens[0].clone()];
    for (asked, purpose, field) in [
        (&tokens, "", "purpose"),
        (&repeated, "dsr_access", "tokens[2]"),
    ] {
        let failure = status(
            vault
                .client
                .detokenize(vault.call(
                    Some(tenant),
                    &[Role::PrivacyOfficer],
                    detokenize(asked, purpose, None),
                ))
                .await,
        );
        assert_eq!(failure.code(), Code::InvalidArgument);
        assert!(failure.message().contains(field), "{}", failure.message());
    }
    for role in [Role::Auditor, Role::Agent] {
        assert_eq!(
            code(
                vault
                    .client
                    .detokenize(vault.call(Some(tenant), &[role], detokenize(&tokens, "x", None)))
                    .await
            ),
            Code::PermissionDenied
        );
    }
    assert_eq!(
        code(
            vault
                .client
                .tokenize(vault.call(
                    Some(tenant),
                    &[Role::Bot],
                    tokenize(vec![item("u", "PERSON", "x")])
                ))
                .await
        ),
        Code::PermissionDenied
    );
    let failure = status(
        vault
            .client
            .detokenize(vault.call(
                Some(tenant),
                &[Role::PrivacyOfficer],
                detokenize(&["tok_nope".to_string()], "x", None),
            ))
            .await,
    );
    assert_eq!(failure.code(), Code::InvalidArgument);
    assert!(failure.message().contains("tokens[0]"));

    let reveals = payloads(&vault.events().await?, |p| match p {
        Payload::VaultRevealed(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(
        reveals.len(),
        1,
        "only the successful call revealed anything"
    );
    let reveal = &reveals[0];
    assert_eq!(reveal.kind, RevealKind::Detokenize as i32);
    assert_eq!(reveal.purpose, "restore_to_subject");
    assert_eq!(reveal.counts["EMAIL_ADDRESS"], 1);
    assert_eq!(reveal.counts["PERSON"], 1);
    assert_eq!(reveal.not_found, 2);
    let events = vault.events().await?;
    for event in &events {
        let bytes = prost::Message::encode_to_vec(event);
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("one@example.com") && !text.contains("Alice"),
            "{text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_batches_are_rejected_whole() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let good = |i: usize| item("user-1", "EMAIL_ADDRESS", &format!("u{i}@example.com"));
    let mut items: Vec<TokenizeItem> = (0..5).map(good).collect();
    items[3].value = String::new();
    let failure = status(
        vault
            .client
            .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(items)))
            .await,
    );
    assert_eq!(failure.code(), Code::InvalidArgument);
    assert!(failure.message().contains("items[3].value"), "{failure:?}");

    let mut items: Vec<TokenizeItem> = (0..5).map(good).collect();
    items[2].value = "x".repeat(64 * 1024 + 1);
    let failure = status(
        vault
            .client
            .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(items)))
            .await,
    );
    assert_eq!(failure.code(), Code::ResourceExhausted);
    assert!(failure.message().contains("items[2].value"), "{failure:?}");

    let mut items: Vec<TokenizeItem> = (0..5).map(good).collect();
    items[1].entity_type = "email address".into();
    items[4].subject_id = String::new();
    let failure = status(
        vault
            .client
            .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(items)))
            .await,
    );
    assert_eq!(failure.code(), Code::InvalidArgument);
    assert!(
        failure.message().contains("items[1].entity_type"),
        "{failure:?}"
    );

    let items: Vec<TokenizeItem> = (0..1001).map(good).collect();
    let failure = status(
        vault
            .client
            .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(items)))
            .await,
    );
    assert_eq!(failure.code(), Code::ResourceExhausted);
    assert_eq!(
        code(
            vault
                .client
                .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(Vec::new())))
                .await
        ),
        Code::InvalidArgument
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens")
        .fetch_one(&vault.db().await?)
        .await?;
    assert_eq!(stored, 0, "nothing stored half-way");

    let items: Vec<TokenizeItem> = (0..1000).map(good).collect();
    let done = vault
        .client
        .tokenize(vault.call(Some(tenant), &[Role::Service], tokenize(items)))
        .await?;
    assert_eq!(done.into_inner().tokens.len(), 1000);
    Ok(())
}

/// Tokenize takes a one-statement path when this replica has the subject's key cached.
/// Another replica may have shredded the subject meanwhile (its delete does not reach
/// this cache): the values must then go under the subject's new key, never under the
/// destroyed one, and stay readable.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_written_after_a_shred_elsewhere_use_the_new_key() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    // The first call reads (creates) the key; the second uses the cached one.
    let (first, created_first) = tokenize_one(&mut vault, tenant, "alice@example.com").await?;
    let (second, created_second) = tokenize_one(&mut vault, tenant, "alice@work.example").await?;
    assert!(created_first && created_second);

    // What a shred on another replica leaves behind: no key row, no token rows.
    let db = vault.db().await?;
    let old_key: uuid::Uuid = sqlx::query_scalar("SELECT key_id FROM subject_keys")
        .fetch_one(&db)
        .await?;
    sqlx::query("DELETE FROM tokens").execute(&db).await?;
    sqlx::query("DELETE FROM subject_keys").execute(&db).await?;

    let (again, created_again) = tokenize_one(&mut vault, tenant, "alice@example.com").await?;
    assert_eq!(
        again, first,
        "tokens stay deterministic across key generations"
    );
    assert!(created_again);
    let new_key: uuid::Uuid = sqlx::query_scalar("SELECT key_id FROM subject_keys")
        .fetch_one(&db)
        .await?;
    assert_ne!(new_key, old_key);
    let revealed = vault
        .client
        .detokenize(vault.call(
            Some(tenant),
            &[Role::PrivacyOfficer],
            detokenize(&[first, second], "dsr_access", None),
        ))
        .await?
        .into_inner()
        .results;
    assert!(revealed[0].found, "the value stored after the shred opens");
    assert_eq!(revealed[0].value, "alice@example.com");
    assert!(!revealed[1].found, "the shredded value stays gone");
    Ok(())
}

/// Concurrent first calls for the same new subjects race to create their keys: each
/// subject ends up with one key, whichever call created it, and every value stored by
/// every call opens (the losers of the race read the winner's key).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_calls_for_new_subjects_share_one_key_each() -> anyhow::Result<()> {
    let vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let subjects = ["s-0", "s-1", "s-2", "s-3"];
    let calls = (0..8).map(|call| {
        let mut client = vault.client.clone();
        let items = subjects
            .iter()
            .map(|s| item(s, "EMAIL_ADDRESS", &format!("{s}.{call}@example.com")))
            .collect();
        let request = vault.call(Some(tenant), &[Role::Service], tokenize(items));
        async move { client.tokenize(request).await }
    });
    let answers = futures::future::try_join_all(calls).await?;
    let mut tokens = Vec::new();
    let mut values = Vec::new();
    for (call, answer) in answers.into_iter().enumerate() {
        for (s, token) in subjects.iter().zip(answer.into_inner().tokens) {
            tokens.push(token.token);
            values.push(format!("{s}.{call}@example.com"));
        }
    }
    let db = vault.db().await?;
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_keys")
        .fetch_one(&db)
        .await?;
    assert_eq!(keys, 4, "one key per subject");
    let mut client = vault.client.clone();
    let revealed = client
        .detokenize(vault.call(
            Some(tenant),
            &[Role::PrivacyOfficer],
            detokenize(&tokens, "dsr_access", None),
        ))
        .await?
        .into_inner()
        .results;
    let opened: Vec<String> = revealed.into_iter().map(|r| r.value).collect();
    assert_eq!(opened, values);
    Ok(())
}

/// One value of `user-1` tokenized and stored; its token and whether it was new.
async fn tokenize_one(
    vault: &mut TestVault,
    tenant: TenantId,
    value: &str,
) -> anyhow::Result<(String, bool)> {
    let token = vault
        .client
        .tokenize(vault.call(
            Some(tenant),
            &[Role::Service],
            tokenize(vec![item("user-1", "EMAIL_ADDRESS", value)]),
        ))
        .await?
        .into_inner()
        .tokens
        .remove(0);
    Ok((token.token, token.created))
}
