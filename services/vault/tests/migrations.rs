//! Schema migrations keep existing data usable.
#![allow(clippy::unwrap_used)]

use veil_testkit::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn token_rows_survive_the_move_to_byte_keys() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let pool = db.pool("vault").await?;
    sqlx::raw_sql(include_str!("../migrations/0001_keys_records_tokens.sql"))
        .execute(&pool)
        .await?;
    let subject = "ab".repeat(32);
    sqlx::query(
        "INSERT INTO tokens (tenant_id, token, subject_ref, entity_type, sealed_value)
         VALUES ('0190c7a8-6c1e-7b3a-9f00-000000000001', 'tok_----____AQIDBAUGBwgJEA', $1,
                 'EMAIL_ADDRESS', $2)",
    )
    .bind(&subject)
    .bind(vec![7u8; 40])
    .execute(&pool)
    .await?;
    sqlx::raw_sql(include_str!("../migrations/0002_tokens_by_subject.sql"))
        .execute(&pool)
        .await?;
    let (token, subject_ref, sealed): (Vec<u8>, Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT token, subject_ref, sealed_value FROM tokens")
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        veil_vault::token_string(&token),
        "tok_----____AQIDBAUGBwgJEA"
    );
    assert_eq!(subject_ref, vec![0xab; 32]);
    assert_eq!(sealed, vec![7u8; 40]);
    Ok(())
}
