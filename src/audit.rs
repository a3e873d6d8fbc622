//! The audit log: who did what, when, from where, and how it ended.
//!
//! What strangers can make the log hold is bounded: refused attempts are
//! counted into one row per source and window ([`tally`]) rather than
//! written one row each, and [`prune`] drops entries past their age or
//! beyond a row count, never the newest.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::{ActivityKind, AuditAction, AuditOutcome};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

impl Actor {
    /// The product itself acting ("recovery", "retention", "system").
    pub fn system(name: &str) -> Actor {
        Actor {
            id: None,
            name: name.to_owned(),
            client_ip: None,
        }
    }
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

/// What part of the audit log to read: every entry by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries of this kind.
    pub kind: Option<ActivityKind>,
    /// Only entries by this person: their name as recorded, compared
    /// without regard to case; a name someone typed at sign-in but nobody
    /// verified counts as theirs too.
    pub person: Option<String>,
}

/// The most recent entries that pass `filter`, newest first.
pub async fn recent(control: &PgPool, limit: i64, filter: &Filter) -> Result<Vec<Entry>> {
    let kind = filter.kind;
    let actions: Option<Vec<&str>> = kind.map(|k| k.actions().iter().map(|a| a.as_str()).collect());
    let refusals_only = kind == Some(ActivityKind::Refusals);
    let person = filter.person.as_deref().map(str::to_lowercase);
    let unverified = person.as_deref().map(|p| format!("{p}{UNVERIFIED}"));
    Ok(sqlx::query_as(
        "SELECT id, at, actor_name, action, target, client_ip, outcome, detail
         FROM audit_log
         WHERE ($2::text[] IS NULL OR action = ANY($2))
           AND (NOT $3 OR outcome <> $4)
           AND ($5::text IS NULL OR lower(actor_name) = $5 OR lower(actor_name) = $6)
         ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(actions)
    .bind(refusals_only)
    .bind(AuditOutcome::Success)
    .bind(person)
    .bind(unverified)
    .fetch_all(control)
    .await?)
}

/// How long one tally row counts a source's refused attempts.
pub const TALLY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Distinct names a tally row remembers (as short hashes); past this it
/// still counts attempts, and says "at least".
const TALLY_NAMES_CAP: i32 = 100;

/// Longest actor name and target a tally row stores: they come from
/// whoever sent the request.
const TALLY_NAME_CHARS: usize = 64;
const TALLY_TARGET_CHARS: usize = 200;

/// A refused attempt, counted into its source's row for the window.
pub struct Refusal<'a> {
    /// Named on the row when it is first written (later attempts in the
    /// window only count).
    pub actor: &'a Actor,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// What attempts are counted per: a client address, a user.
    pub source: &'a str,
    /// What this attempt tried (a username, a path): distinct ones are
    /// counted, and stored only as hashes.
    pub tried: &'a str,
    /// The latest attempt's target.
    pub target: Option<&'a str>,
    /// The attempts and the things tried, in the log's words: "refused
    /// sign-ins" for "usernames" reads "3 refused sign-ins for 2 usernames".
    pub counted: &'a str,
    pub distinct: &'a str,
}

/// Counts a refused attempt: the first in its source's window writes a row,
/// the others update that row's count ("12 refused sign-ins for 5
/// usernames"), so an attempt never adds more than that one row.
pub async fn tally<'e>(
    db: impl PgExecutor<'e>,
    refusal: &Refusal<'_>,
    window: Duration,
) -> Result<()> {
    let name = capped(&refusal.actor.name, TALLY_NAME_CHARS);
    let target = refusal.target.map(|t| capped(t, TALLY_TARGET_CHARS));
    let tried = hex::encode(&Sha256::digest(refusal.tried.as_bytes())[..8]);
    // The names after this attempt: the row's, plus this one when new and
    // while under the cap.
    let merged = "CASE WHEN EXCLUDED.tally_names <@ audit_log.tally_names
                         OR cardinality(audit_log.tally_names) >= $11::int
                       THEN audit_log.tally_names
                       ELSE audit_log.tally_names || EXCLUDED.tally_names END";
    sqlx::query(&format!(
        "INSERT INTO audit_log (actor_id, actor_name, action, target, client_ip, outcome, detail,
                                tally_key, tally_window, tally_count, tally_names)
         VALUES ($1, $2, $3, $4, $5, $6, format('1 %s for 1 %s', $9::text, $10::text),
                 $7, to_timestamp(floor(extract(epoch FROM now())::float8 / $8) * $8), 1, ARRAY[$12::text])
         ON CONFLICT (action, outcome, tally_key, tally_window) WHERE tally_key IS NOT NULL
         DO UPDATE SET
             at = now(),
             target = EXCLUDED.target,
             tally_count = audit_log.tally_count + 1,
             tally_names = {merged},
             detail = format('%s %s for %s%s %s',
                             audit_log.tally_count + 1, $9::text,
                             CASE WHEN cardinality({merged}) >= $11 THEN 'at least ' ELSE '' END,
                             cardinality({merged}), $10::text)"
    ))
    .bind(refusal.actor.id)
    .bind(name)
    .bind(refusal.action)
    .bind(target)
    .bind(refusal.actor.client_ip.as_deref())
    .bind(refusal.outcome)
    .bind(refusal.source)
    .bind(window.as_secs_f64().max(1.0))
    .bind(refusal.counted)
    .bind(refusal.distinct)
    .bind(TALLY_NAMES_CAP)
    .bind(tried)
    .execute(db)
    .await?;
    Ok(())
}

/// Counts a refused attempt, logging instead of failing (the refusal is
/// answered either way).
pub async fn tally_or_log(control: &PgPool, refusal: &Refusal<'_>) {
    if let Err(e) = tally(control, refusal, TALLY_WINDOW).await {
        tracing::error!(error = %e, action = %refusal.action, "could not write the audit log");
    }
}

/// A name someone typed but nobody verified, as the log may show it:
/// control characters dropped, cut short, and marked.
/// An empty name (a form sent without one) shows as [`NO_USERNAME`].
pub fn unverified_name(claimed: &str) -> String {
    let name: String = claimed.chars().filter(|c| !c.is_control()).collect();
    if name.trim().is_empty() {
        return NO_USERNAME.to_owned();
    }
    format!("{}{UNVERIFIED}", capped(&name, 32))
}

/// What the log names as the actor of an attempt sent without a username.
pub const NO_USERNAME: &str = "(no username)";

/// The mark after a name nobody verified.
const UNVERIFIED: &str = " (unverified)";

fn capped(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// How much of the audit log is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Entries older than this many days are deleted.
    pub max_age_days: u32,
    /// Beyond this many entries, the oldest are deleted.
    pub max_rows: u64,
}

/// Entries never pruned, whatever their age: the newest, so recent activity
/// always has something to show.
pub const ALWAYS_KEPT: u64 = 100;

/// Deletes entries older than the retention's age or beyond its row count,
/// keeping the newest [`ALWAYS_KEPT`] regardless. Returns how many went.
pub async fn prune(control: &PgPool, retention: Retention) -> Result<u64> {
    let kept = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let deleted = sqlx::query(
        "DELETE FROM audit_log WHERE id IN (
             SELECT id FROM (
                 SELECT id, at, row_number() OVER (ORDER BY at DESC, id DESC) AS n
                 FROM audit_log
             ) ranked
             WHERE n > $1 AND (n > $2 OR at < now() - make_interval(days => $3))
         )",
    )
    .bind(kept(ALWAYS_KEPT))
    .bind(kept(retention.max_rows.max(ALWAYS_KEPT)))
    .bind(i32::try_from(retention.max_age_days).unwrap_or(i32::MAX))
    .execute(control)
    .await?
    .rows_affected();
    Ok(deleted)
}

/// Prunes now and then every `period`, for as long as the process runs.
pub fn prune_every(control: PgPool, retention: Retention, period: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match prune(&control, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned the audit log"),
                Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
            }
        }
    });
}
