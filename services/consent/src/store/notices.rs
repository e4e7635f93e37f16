//! Versioned notices and the record of which version a subject was shown.

use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

const NOTICE_COLUMNS: &str = "id, kind, locale, version, title, body, url, content_sha256, \
     purpose_keys, effective_at, published_at, published_by";

/// A published notice version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NoticeRow {
    pub id: Uuid,
    pub kind: i32,
    pub locale: String,
    pub version: i32,
    pub title: String,
    pub body: String,
    pub url: String,
    pub content_sha256: String,
    pub purpose_keys: Vec<String>,
    pub effective_at: OffsetDateTime,
    pub published_at: OffsetDateTime,
    pub published_by: Option<Json<serde_json::Value>>,
}

/// A notice to publish; the version is assigned here.
#[derive(Debug)]
pub struct NewNotice<'a> {
    pub kind: i32,
    pub locale: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub url: &'a str,
    pub content_sha256: &'a str,
    pub purpose_keys: &'a [String],
    pub effective_at: Option<OffsetDateTime>,
    pub published_by: serde_json::Value,
}

/// Publishes the next version for (tenant, kind, locale). Concurrent publishers of the
/// same notice are serialized so versions have no gaps or duplicates.
pub async fn publish(
    db: &mut PgConnection,
    tenant: Uuid,
    notice: &NewNotice<'_>,
) -> sqlx::Result<NoticeRow> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "consent.notice:{tenant}:{}:{}",
            notice.kind, notice.locale
        ))
        .execute(&mut *db)
        .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notices (id, tenant_id, kind, locale, version, title, body, url,
             content_sha256, purpose_keys, effective_at, published_by)
         SELECT $1, $2, $3, $4, COALESCE(MAX(version), 0) + 1, $5, $6, $7, $8, $9,
                COALESCE($10, now()), $11
         FROM notices WHERE tenant_id = $2 AND kind = $3 AND locale = $4
         RETURNING {NOTICE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(notice.kind)
    .bind(notice.locale)
    .bind(notice.title)
    .bind(notice.body)
    .bind(notice.url)
    .bind(notice.content_sha256)
    .bind(notice.purpose_keys)
    .bind(notice.effective_at)
    .bind(Json(&notice.published_by))
    .fetch_one(db)
    .await
}

/// One notice of `tenant` by id.
pub async fn by_id(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<NoticeRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The given version (or, with `version` 0, the current one: the newest already in
/// effect) of a notice in the first locale of `locales` that has one.
pub async fn find(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    kind: i32,
    locales: &[String],
    version: i32,
) -> sqlx::Result<Option<NoticeRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTICE_COLUMNS} FROM notices
         WHERE tenant_id = $1 AND kind = $2 AND locale = ANY($3)
           AND (CASE WHEN $4 = 0 THEN effective_at <= now() ELSE version = $4 END)
         ORDER BY array_position($3, locale), version DESC
         LIMIT 1"
    )))
    .bind(tenant)
    .bind(kind)
    .bind(locales)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// Versions of a notice kind (optionally one locale), newest first, bodies omitted, after
/// the `(published_at, id)` cursor.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    kind: i32,
    locale: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<NoticeRow>> {
    sqlx::query_as(
        "SELECT id, kind, locale, version, title, '' AS body, url, content_sha256, purpose_keys,
                effective_at, published_at, published_by
         FROM notices
         WHERE tenant_id = $1 AND kind = $2 AND ($3::text IS NULL OR locale = $3)
           AND ($4::uuid IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5",
    )
    .bind(tenant)
    .bind(kind)
    .bind(locale)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A delivery of a notice to a subject.
#[derive(Debug)]
pub struct NewServed<'a> {
    pub id: Uuid,
    pub subject_ref: &'a str,
    pub notice_id: Uuid,
    pub conversation_id: &'a str,
    pub channel: i32,
    pub served_at: OffsetDateTime,
}

/// Records that a subject was shown a notice.
pub async fn insert_served(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    served: &NewServed<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notices_served (id, tenant_id, subject_ref, notice_id, conversation_id,
             channel, served_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(served.id)
    .bind(tenant)
    .bind(served.subject_ref)
    .bind(served.notice_id)
    .bind(served.conversation_id)
    .bind(served.channel)
    .bind(served.served_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A notice delivery as read back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ServedRow {
    pub id: Uuid,
    pub notice_id: Uuid,
    pub kind: i32,
    pub version: i32,
    pub locale: String,
    pub conversation_id: String,
    pub channel: i32,
    pub served_at: OffsetDateTime,
}

/// Deliveries to a subject; with `latest_only`, the newest per notice kind and locale.
pub async fn served_to(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    latest_only: bool,
) -> sqlx::Result<Vec<ServedRow>> {
    sqlx::query_as(
        "SELECT * FROM (
             SELECT DISTINCT ON (CASE WHEN $3 THEN n.kind::text || n.locale
                                      ELSE s.id::text END)
                    s.id, s.notice_id, n.kind, n.version, n.locale, s.conversation_id,
                    s.channel, s.served_at
             FROM notices_served s JOIN notices n ON n.id = s.notice_id
             WHERE s.tenant_id = $1 AND s.subject_ref = $2
             ORDER BY (CASE WHEN $3 THEN n.kind::text || n.locale ELSE s.id::text END),
                      s.served_at DESC, s.id DESC) latest
         ORDER BY served_at DESC, id DESC",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(latest_only)
    .fetch_all(db)
    .await
}
