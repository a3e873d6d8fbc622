//! The audit log: who did what, when, from where, and how it ended.

use chrono::{DateTime, Utc};
use lms_types::{AuditAction, AuditOutcome};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};

use crate::Result;

/// Who performed an operation: a user id and a snapshot of the name, since
/// the LMS users table may be replaced by a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: String,
    pub client_ip: Option<String>,
}

/// One audited event to record.
pub struct Event<'a> {
    pub actor: &'a Actor,
    pub action: AuditAction,
    pub target: Option<&'a str>,
    pub outcome: AuditOutcome,
    pub detail: Option<&'a str>,
}

/// One entry of the audit log as read back.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_name: String,
    pub action: AuditAction,
    pub target: Option<String>,
    pub client_ip: Option<String>,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

/// Appends an event to the audit log.
pub async fn record<'e>(db: impl PgExecutor<'e>, event: &Event<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor_id, actor_name, action, target, client_ip, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.actor.id)
    .bind(&event.actor.name)
    .bind(event.action)
    .bind(event.target)
    .bind(event.actor.client_ip.as_deref())
    .bind(event.outcome)
    .bind(event.detail)
    .execute(db)
    .await?;
    Ok(())
}

/// Records an event, logging instead of failing: used where the audited
/// operation itself has already happened and must still be reported.
pub async fn record_or_log(control: &PgPool, event: Event<'_>) {
    if let Err(e) = record(control, &event).await {
        tracing::error!(error = %e, action = %event.action, "could not write the audit log");
    }
}

/// Records how an operation ended: success, or failure with its error.
pub async fn record_result<T>(
    control: &PgPool,
    actor: &Actor,
    action: AuditAction,
    target: &str,
    result: &crate::Result<T>,
) {
    let (outcome, detail) = match result {
        Ok(_) => (AuditOutcome::Success, None),
        Err(e) => (AuditOutcome::Failure, Some(e.to_string())),
    };
    record_or_log(
        control,
        Event {
            actor,
            action,
            target: Some(target),
            outcome,
            detail: detail.as_deref(),
        },
    )
    .await;
}

/// The most recent entries, newest first.
pub async fn recent(control: &PgPool, limit: i64) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor_name, action, target, client_ip, outcome, detail
         FROM audit_log ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(control)
    .await?)
}
