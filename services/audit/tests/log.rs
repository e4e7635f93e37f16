//! The log end to end: events in, entries once, heads, proofs the shared verifier
//! accepts, and `verify` catching every kind of tampering with the rows.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Audit, context};
use veil_audit::verify::{FindingKind, Report, Verifier, db::verify_database};
use veil_core::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use veil_core::types::{Role, TenantId};
use veil_proto::audit::v1::get_entry_request::Key;
use veil_proto::audit::v1::{
    GetConsistencyProofRequest, GetEntryRequest, GetInclusionProofRequest,
    GetSignedTreeHeadRequest, SignedTreeHead,
};
use veil_proto::events::v1::VaultRecordStored;
use veil_proto::events::v1::event::Payload;

fn stored(i: usize) -> Payload {
    Payload::VaultRecordStored(VaultRecordStored {
        record_id: format!("record-{i}"),
        category: "contact".into(),
        ..VaultRecordStored::default()
    })
}

async fn publish_many(audit: &Audit, tenant: TenantId, from: usize, to: usize) {
    for i in from..to {
        audit
            .publish(&context(tenant, None, "officer-1"), stored(i))
            .await
            .unwrap();
    }
}

fn check_head(head: &SignedTreeHead) {
    veil_audit::tree_head::verify(
        &veil_audit::tree_head::PresentedHead {
            tree_size: head.tree_size,
            root_hash: head.root_hash.clone(),
            signed_at_ms: head
                .signed_at
                .as_ref()
                .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
            signed_payload: head.signed_payload.clone(),
            signature: head.signature.clone(),
            key_id: head.key_id.clone(),
            public_key: head.public_key.clone(),
        },
        &[],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_appended_once_and_proven_by_signed_heads() -> anyhow::Result<()> {
    let audit = Audit::start().await?;
    let tenant = TenantId::generate();
    publish_many(&audit, tenant, 0, 21).await;
    audit.wait_for_entries(21).await?;
    let mut client = audit.client(Some(tenant), &[Role::Auditor]).await?;

    let first = client
        .inner
        .get_signed_tree_head(client.request(GetSignedTreeHeadRequest {
            tree_size: 0,
            sign_now: true,
        }))
        .await?
        .into_inner()
        .tree_head
        .unwrap();
    assert!(first.tree_size >= 21);
    check_head(&first);

    for index in 0..first.tree_size {
        let entry = client
            .inner
            .get_entry(client.request(GetEntryRequest {
                key: Some(Key::LeafIndex(index)),
            }))
            .await?
            .into_inner()
            .entry
            .unwrap();
        assert_eq!(entry.leaf_hash, leaf_hash(&entry.leaf_data).to_vec());
        let proof = client
            .inner
            .get_inclusion_proof(client.request(GetInclusionProofRequest {
                leaf_index: index,
                tree_size: first.tree_size,
            }))
            .await?
            .into_inner()
            .proof
            .unwrap();
        verify_inclusion(
            &entry.leaf_hash,
            index,
            first.tree_size,
            &proof.audit_path,
            &first.root_hash,
        )?;
    }

    // A redelivery whose processed_events row is long gone adds nothing.
    let row: (uuid::Uuid, Vec<u8>) =
        sqlx::query_as("SELECT event_id, envelope FROM entries WHERE idx = 3")
            .fetch_one(&audit.pool)
            .await?;
    sqlx::query(
        "INSERT INTO pending (event_id, event_type, occurred_at, envelope)
         VALUES ($1, 'vault.record_stored', now(), $2)",
    )
    .bind(row.0)
    .bind(&row.1)
    .execute(&audit.pool)
    .await?;
    publish_many(&audit, tenant, 21, 30).await;
    audit.wait_for_entries(31).await?;
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) FROM entries WHERE event_id = $1")
        .bind(row.0)
        .fetch_one(&audit.pool)
        .await?;
    assert_eq!(duplicates, 1);

    let second = client
        .inner
        .get_signed_tree_head(client.request(GetSignedTreeHeadRequest {
            tree_size: 0,
            sign_now: true,
        }))
        .await?
        .into_inner()
        .tree_head
        .unwrap();
    assert!(second.tree_size > first.tree_size);
    let consistency = client
        .inner
        .get_consistency_proof(client.request(GetConsistencyProofRequest {
            first_tree_size: first.tree_size,
            second_tree_size: second.tree_size,
        }))
        .await?
        .into_inner();
    verify_consistency(
        first.tree_size,
        second.tree_size,
        &first.root_hash,
        &second.root_hash,
        &consistency.proof,
    )?;

    // Beyond the latest signed head there are no proofs.
    let status = client
        .inner
        .get_inclusion_proof(client.request(GetInclusionProofRequest {
            leaf_index: 0,
            tree_size: second.tree_size + 1,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    audit.running.stop().await
}

async fn verify(pool: &sqlx::PgPool) -> Report {
    verify_database(pool, Verifier::new(Vec::new()), &mut |_| {})
        .await
        .unwrap()
}

/// A log of 40 events with two signed heads; the service is stopped, so nothing runs
/// against the rows while a test tampers with them.
async fn signed_log() -> anyhow::Result<(veil_testkit::TestEnv, sqlx::PgPool)> {
    let audit = Audit::start().await?;
    let tenant = TenantId::generate();
    publish_many(&audit, tenant, 0, 20).await;
    audit.wait_for_entries(20).await?;
    let mut client = audit.client(Some(tenant), &[Role::Auditor]).await?;
    let sign = GetSignedTreeHeadRequest {
        tree_size: 0,
        sign_now: true,
    };
    client
        .inner
        .get_signed_tree_head(client.request(sign))
        .await?;
    publish_many(&audit, tenant, 20, 40).await;
    audit.wait_for_entries(41).await?;
    client
        .inner
        .get_signed_tree_head(client.request(sign))
        .await?;
    let Audit { env, running, pool } = audit;
    running.stop().await?;
    Ok((env, pool))
}

async fn envelope(pool: &sqlx::PgPool, idx: i64) -> Vec<u8> {
    sqlx::query_scalar("SELECT envelope FROM entries WHERE idx = $1")
        .bind(idx)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_the_changed_removed_and_reordered_entry() -> anyhow::Result<()> {
    let (_env, pool) = signed_log().await?;
    let intact = verify(&pool).await;
    assert!(intact.intact(), "{:?}", intact.findings);
    assert!(intact.heads_verified >= 2);
    assert_eq!(intact.consistent_pairs, intact.heads_verified - 1);

    // UPDATE of one envelope.
    let original = envelope(&pool, 13).await;
    let mut altered = original.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    sqlx::query("UPDATE entries SET envelope = $1 WHERE idx = 13")
        .bind(&altered)
        .execute(&pool)
        .await?;
    let report = verify(&pool).await;
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Changed, Some(13)),
        "{first}"
    );
    // The same edit with the leaf hash recomputed to match still cannot hide.
    sqlx::query("UPDATE entries SET leaf_hash = $1 WHERE idx = 13")
        .bind(leaf_hash(&altered).to_vec())
        .execute(&pool)
        .await?;
    let report = verify(&pool).await;
    let first = report.first().unwrap();
    assert_eq!(first.kind, FindingKind::Changed, "{first}");
    assert!(first.index <= Some(13) && first.end > Some(13), "{first}");
    sqlx::query("UPDATE entries SET envelope = $1, leaf_hash = $2 WHERE idx = 13")
        .bind(&original)
        .bind(leaf_hash(&original).to_vec())
        .execute(&pool)
        .await?;
    assert!(verify(&pool).await.intact());

    // DELETE of one row leaves a gap.
    sqlx::query("CREATE TABLE saved_row AS SELECT * FROM entries WHERE idx = 7")
        .execute(&pool)
        .await?;
    sqlx::query("DELETE FROM entries WHERE idx = 7")
        .execute(&pool)
        .await?;
    let report = verify(&pool).await;
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Removed, Some(7)),
        "{first}"
    );
    sqlx::query("INSERT INTO entries SELECT * FROM saved_row")
        .execute(&pool)
        .await?;
    assert!(verify(&pool).await.intact());

    // Two rows swap their contents (every column but the index).
    let swap = "UPDATE entries e SET event_id = o.event_id, tenant_id = o.tenant_id,
                    subject_ref = o.subject_ref, actor_id = o.actor_id,
                    event_type = o.event_type, occurred_at = o.occurred_at,
                    envelope = o.envelope, leaf_hash = o.leaf_hash
                FROM entries o WHERE (e.idx, o.idx) IN ((4, 22), (22, 4))";
    sqlx::query("ALTER TABLE entries DROP CONSTRAINT entries_event_id_key")
        .execute(&pool)
        .await?;
    sqlx::query(swap).execute(&pool).await?;
    let report = verify(&pool).await;
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Reordered, Some(4)),
        "{first}"
    );
    assert!(first.detail.contains("22"), "{first}");
    Ok(())
}
