//! One real sweep per tenant at a time, across replicas: a Postgres session advisory
//! lock on a connection of its own. If the process dies, the session ends and the lock
//! with it, so a crashed sweep never blocks its resumption.

use sqlx::{Connection, PgConnection, PgPool};
use veil_core::error::ServiceError;
use veil_core::types::TenantId;

/// First key of retention's sweep locks ("RSWP"), so they collide with nobody else's.
const LOCK_CLASS: i32 = 0x5253_5750;

/// A held sweep lock of one tenant.
pub struct SweepLock {
    conn: PgConnection,
}

impl SweepLock {
    /// The tenant's sweep lock, or `None` when another sweep of the tenant holds it.
    pub async fn try_acquire(
        pool: &PgPool,
        tenant: TenantId,
    ) -> Result<Option<Self>, ServiceError> {
        // Detached from the pool: the lock lives exactly as long as this connection.
        let mut conn = pool.acquire().await?.detach();
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(tenant.to_string())
            .fetch_one(&mut conn)
            .await?;
        if acquired {
            Ok(Some(Self { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Ends the session, which releases the lock.
    pub async fn release(self) {
        if let Err(error) = self.conn.close().await {
            tracing::warn!(error = %veil_core::error::ErrorChain(&error), "closing a sweep lock failed");
        }
    }
}
