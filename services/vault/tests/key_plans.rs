//! Plans of the statements every Tokenize and Detokenize runs: they must find a
//! subject's key and tokens by primary key (or key id) however many subjects the tenant
//! has.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestVault;
use veil_core::types::{Role, TenantId};
use veil_proto::vault::v1::{TokenizeItem, TokenizeRequest};
use veil_testkit::plans::{assert_reads_by, generic_plan};

/// A vault whose one tenant has one stored value of `user-1`.
async fn vault_with_one_value(entity: &str, value: &str) -> anyhow::Result<(TestVault, TenantId)> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let request = TokenizeRequest {
        items: vec![TokenizeItem {
            subject_id: "user-1".into(),
            entity_type: entity.into(),
            value: value.into(),
        }],
        store_value: true,
        started_at: None,
    };
    vault
        .client
        .tokenize(vault.call(Some(tenant), &[Role::Service], request))
        .await?;
    Ok((vault, tenant))
}

/// Every Tokenize reads its subjects' keys. Among many subjects of one tenant that read
/// must go through the primary key: a plan that scans the tenant's keys and filters
/// made each call cost 0.5 ms at 10,000 subjects, growing with every new subject.
/// Checked as the generic plan a long-lived pooled connection ends up with, in the three
/// states of the table's statistics: none yet, taken while the table was small (then
/// stale), and current.
#[tokio::test(flavor = "multi_thread")]
async fn subject_keys_are_read_by_primary_key_among_many_subjects() -> anyhow::Result<()> {
    let (vault, tenant) = vault_with_one_value("EMAIL_ADDRESS", "alice@example.com").await?;
    let pool = vault.db().await?;
    let mut conn = pool.acquire().await?;
    let grow = "INSERT INTO subject_keys (tenant_id, subject_ref, key_id, kek_version, wrapped)
                SELECT k.tenant_id, md5(i::text) || md5((i + 1)::text), gen_random_uuid(),
                       k.kek_version, k.wrapped
                FROM subject_keys k, generate_series(1, 5000) AS i
                WHERE k.tenant_id = $1";
    for state in ["never analyzed", "analyzed", "analyzed while small"] {
        match state {
            "never analyzed" => {
                sqlx::query(grow)
                    .bind(tenant.as_uuid())
                    .execute(&mut *conn)
                    .await?;
            }
            "analyzed" => {
                sqlx::query("ANALYZE subject_keys")
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {
                // Back to the one real key, statistics of that, then many keys again.
                sqlx::query(
                    "DELETE FROM subject_keys
                     WHERE created_at > (SELECT min(created_at) FROM subject_keys)",
                )
                .execute(&mut *conn)
                .await?;
                sqlx::query("ANALYZE subject_keys")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(grow)
                    .bind(tenant.as_uuid())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        let plan = generic_plan(&mut conn, veil_vault::SUBJECT_KEYS_LOCKED_SQL).await?;
        assert_by_subject(state, &plan);

        // The one-statement Tokenize checks the cached keys the same way.
        let plan = generic_plan(&mut conn, veil_vault::TOKENS_UNDER_KEYS_SQL).await?;
        assert_by_subject(state, &plan);
    }
    Ok(())
}

/// A subject's Detokenize (every restore) reads the subject's tokens by primary key.
/// Equal values give equal tokens in a tenant: read by token alone, a common value (a
/// city, a first name) is a row per subject that ever said it, all read and filtered.
#[tokio::test(flavor = "multi_thread")]
async fn a_subjects_tokens_are_read_by_primary_key_when_many_share_a_value() -> anyhow::Result<()> {
    let (vault, _) = vault_with_one_value("LOCATION", "Berlin").await?;
    let pool = vault.db().await?;
    let mut conn = pool.acquire().await?;
    // 5,000 other subjects said the same value.
    sqlx::query(
        "INSERT INTO tokens (tenant_id, subject_ref, token, entity_type, sealed_value)
         SELECT t.tenant_id, sha256(i::text::bytea), t.token, t.entity_type, t.sealed_value
         FROM tokens t, generate_series(1, 5000) AS i",
    )
    .execute(&mut *conn)
    .await?;
    for state in ["never analyzed", "analyzed"] {
        if state == "analyzed" {
            sqlx::query("ANALYZE tokens").execute(&mut *conn).await?;
        }
        let plan = generic_plan(&mut conn, veil_vault::LOOKUP_FOR_SUBJECT_SQL).await?;
        assert_reads_by(&plan, "tokens", &["(subject_ref = "], state);
    }
    Ok(())
}

/// Every read of `subject_keys` in `plan` is an index lookup by subject or key id, not
/// a scan of the tenant's keys (or of the table).
fn assert_by_subject(state: &str, plan: &serde_json::Value) {
    assert_reads_by(
        plan,
        "subject_keys",
        &["(subject_ref = ", "(key_id = "],
        state,
    );
}
