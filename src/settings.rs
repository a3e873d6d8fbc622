//! Flags every instance honours, kept in the control database: maintenance
//! mode is on while a restore swaps databases, and every instance answers LMS
//! requests with 503 until it is off.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::Result;

/// Maintenance mode as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub reason: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Turns maintenance mode on with a reason shown to visitors.
pub async fn maintenance_on(control: &PgPool, reason: &str) -> Result<()> {
    let value = serde_json::json!({ "reason": reason, "since": chrono::Utc::now() });
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ('maintenance', $1, now())
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(value)
    .execute(control)
    .await?;
    Ok(())
}

/// Turns maintenance mode off.
pub async fn maintenance_off(control: &PgPool) -> Result<()> {
    sqlx::query("DELETE FROM settings WHERE key = 'maintenance'")
        .execute(control)
        .await?;
    Ok(())
}

/// Maintenance mode, if on.
pub async fn maintenance(control: &PgPool) -> Result<Option<Maintenance>> {
    let value: Option<sqlx::types::Json<Maintenance>> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'maintenance'")
            .fetch_optional(control)
            .await?;
    Ok(value.map(|v| v.0))
}
