//! Retention: which backups are kept (`policy`, a pure function of the
//! catalog), the pass that deletes the rest (after every backup, inside its
//! job, and on its own as `lms-admin backup prune`), its dry run, and pins.
//!
//! A pass runs only under the operation lock, so never while a restore
//! reads an archive; it first holds the catalog against the backup
//! directory (a completed backup whose file is gone becomes `missing` and
//! no longer counts as kept), then deletes one backup at a time, each with
//! its own audit entry naming the rule. A backup that cannot be deleted is
//! reported and the pass goes on.

pub mod policy;
#[cfg(test)]
mod properties;

use std::collections::HashMap;

use lms_types::{AuditAction, AuditOutcome, BackupStatus, OffsiteState, Operation};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor, Event};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::schedule::cron::parse_zone;
use crate::{Error, Result};

pub use policy::{plan, Entry, Period, Policies, Policy, Rules, Verdict};

/// The audit log's target for a retention pass as a whole (each deletion
/// is under its backup's name).
pub const PASS_TARGET: &str = "retention pass";

/// The most characters a pin's reason may have.
pub const MAX_PIN_REASON: usize = 200;

/// A policy an administrator is about to save for a schedule, to see what
/// it would delete before saving it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// The schedule it is for (`None`: a schedule not saved yet, which has
    /// no backups, so the proposal deletes none).
    pub schedule: Option<String>,
    pub policy: Policy,
    /// The zone its periods are read in (`None`: the schedule's own).
    pub timezone: Option<String>,
}

/// What happened to one backup retention let go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Removal {
    /// Archive, manifest and catalog entry deleted.
    Deleted,
    /// Its file had gone already; the entry was deleted.
    FileAlreadyGone,
    /// It could not be deleted (the reason in words); it stays.
    Failed(String),
}

/// One backup a pass let go (or, in a dry run, would let go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetGo {
    pub id: i64,
    pub filename: String,
    pub rule: String,
    /// `None` in a dry run.
    pub removal: Option<Removal>,
}

/// What a retention pass decided and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub dry_run: bool,
    /// Every verified backup's verdict, newest first.
    pub verdicts: Vec<Verdict>,
    /// The backups it deleted, or would delete.
    pub let_go: Vec<LetGo>,
    /// Completed backups whose file was found gone: they no longer count
    /// as kept (now `missing`; in a dry run, they would be).
    pub missing: Vec<String>,
}

impl PruneReport {
    /// Backups actually deleted.
    pub fn deleted(&self) -> impl Iterator<Item = &LetGo> {
        self.let_go
            .iter()
            .filter(|l| matches!(l.removal, Some(Removal::Deleted | Removal::FileAlreadyGone)))
    }

    /// Backups that should have gone and could not.
    pub fn failed(&self) -> impl Iterator<Item = &LetGo> {
        self.let_go
            .iter()
            .filter(|l| matches!(l.removal, Some(Removal::Failed(_))))
    }
}

impl Engine {
    /// The rules in force: each schedule's policy in its zone, and
    /// `MAX_BACKUPS_TO_KEEP` for the rest.
    pub async fn retention_policies(&self) -> Result<Policies> {
        let mut schedules = HashMap::new();
        for info in self.list_schedules().await? {
            let s = info.schedule;
            // A zone stored is one that parsed; should it no longer (a zone
            // dropped from the database), the periods are read in UTC.
            let zone = parse_zone(&s.timezone).unwrap_or(chrono_tz::UTC);
            schedules.insert(
                s.id,
                Rules {
                    name: s.name,
                    policy: s.policy,
                    zone,
                },
            );
        }
        Ok(Policies {
            schedules,
            others_keep_last: self.config().max_backups_to_keep.max(1),
        })
    }

    /// What retention would do now, changing nothing: with the policies in
    /// force, or with one schedule's policy replaced by `proposal`.
    pub async fn retention_dry_run(&self, proposal: Option<Proposal>) -> Result<PruneReport> {
        self.require_backup_dir().await?;
        let mut policies = self.retention_policies().await?;
        if let Some(proposal) = proposal {
            policy::check(&proposal.policy)?;
            if let Some(name) = &proposal.schedule {
                let schedule = self.schedule(name).await?;
                let zone = match &proposal.timezone {
                    Some(z) => parse_zone(z)?,
                    None => parse_zone(&schedule.timezone).unwrap_or(chrono_tz::UTC),
                };
                policies.schedules.insert(
                    schedule.id,
                    Rules {
                        name: schedule.name,
                        policy: proposal.policy,
                        zone,
                    },
                );
            }
        }
        let mut backups = catalog::all(&self.dbs().control).await?;
        let mut missing = Vec::new();
        for b in &mut backups {
            if b.status == BackupStatus::Completed
                && !self.backup_dir().archive_exists(&b.filename).await?
            {
                b.status = BackupStatus::Missing;
                missing.push(b.filename.clone());
            }
        }
        let verdicts = plan(&entries(&backups), &policies);
        let let_go = verdicts
            .iter()
            .filter(|v| !v.keep)
            .map(|v| LetGo {
                id: v.id,
                filename: v.filename.clone(),
                rule: v.rule.clone(),
                removal: None,
            })
            .collect();
        Ok(PruneReport {
            dry_run: true,
            verdicts,
            let_go,
            missing,
        })
    }

    /// A retention pass on its own, as a short job under the operation
    /// lock (refused while anything else holds it, a restore above all).
    /// Audited as a whole under `actor`, and each deletion on its own.
    pub async fn prune(&self, actor: &Actor) -> Result<PruneReport> {
        self.run_short_job(
            Operation::Cleanup,
            actor,
            (AuditAction::BackupCleanup, PASS_TARGET),
            self.apply_retention(),
        )
        .await
    }

    /// Deletes what retention no longer keeps. The caller holds the
    /// operation lock. Refused while the backup directory cannot be used
    /// (every file would look gone).
    pub(crate) async fn apply_retention(&self) -> Result<PruneReport> {
        let who = Actor::system("retention");
        let checked = self.check_backup_files(&who).await?;
        let policies = self.retention_policies().await?;
        let backups = catalog::all(&self.dbs().control).await?;
        let verdicts = plan(&entries(&backups), &policies);
        let mut let_go = Vec::new();
        for v in verdicts.iter().filter(|v| !v.keep) {
            let removal = match self.remove_for_retention(v).await {
                Ok(Some(removal)) => removal,
                // Pinned or changed since the plan: it stays.
                Ok(None) => continue,
                Err(e) => Removal::Failed(e.to_string()),
            };
            let detail = match &removal {
                Removal::Deleted => v.rule.clone(),
                Removal::FileAlreadyGone => format!("{}; its file had gone already", v.rule),
                Removal::Failed(why) => format!("{}; not deleted: {why}", v.rule),
            };
            match &removal {
                Removal::Failed(_) => {
                    tracing::error!(backup = %v.filename, %detail, "retention could not delete a backup")
                }
                _ => tracing::info!(backup = %v.filename, rule = %v.rule, "deleted by retention"),
            }
            audit::record_or_log(
                &self.dbs().control,
                Event {
                    actor: &who,
                    action: AuditAction::BackupCleanup,
                    target: Some(&v.filename),
                    outcome: match removal {
                        Removal::Failed(_) => AuditOutcome::Failure,
                        _ => AuditOutcome::Success,
                    },
                    detail: Some(&detail),
                },
            )
            .await;
            let_go.push(LetGo {
                id: v.id,
                filename: v.filename.clone(),
                rule: v.rule.clone(),
                removal: Some(removal),
            });
        }
        Ok(PruneReport {
            dry_run: false,
            verdicts,
            let_go,
            missing: checked.newly_missing,
        })
    }

    /// Deletes one backup the plan let go, holding its catalog row for the
    /// whole removal, so a pin made meanwhile waits and then finds it gone;
    /// `None` when it is no longer a completed, unpinned backup.
    async fn remove_for_retention(&self, verdict: &Verdict) -> Result<Option<Removal>> {
        let mut tx = self.dbs().control.begin().await?;
        let row: Option<(BackupStatus, Option<String>, Option<OffsiteState>)> = sqlx::query_as(
            "SELECT status, pinned_reason, offsite_state FROM backup_history WHERE id = $1 FOR UPDATE",
        )
        .bind(verdict.id)
        .fetch_optional(&mut *tx)
        .await?;
        let offsite_state = match row {
            Some((BackupStatus::Completed, None, offsite_state)) => offsite_state,
            _ => return Ok(None),
        };
        let dir = self.backup_dir();
        let present = dir.archive_exists(&verdict.filename).await?;
        dir.remove_backup(&verdict.filename).await?;
        self.verified_archives().forget(&verdict.filename);
        catalog::delete_row(&mut *tx, verdict.id).await?;
        tx.commit().await?;
        self.delete_offsite(
            &verdict.filename,
            offsite_state,
            &Actor::system("retention"),
        )
        .await;
        Ok(Some(if present {
            Removal::Deleted
        } else {
            Removal::FileAlreadyGone
        }))
    }

    /// Pins a backup: retention keeps it, whatever its policy says, until it
    /// is unpinned. Only a backup that is (or was) verified can be pinned.
    /// Audited, refusals included.
    pub async fn pin_backup(&self, id: i64, reason: &str, actor: &Actor) -> Result<Backup> {
        let result = self.set_pin(id, Some(reason), actor).await;
        self.audit_pin(id, AuditAction::BackupPin, actor, &result, Some(reason))
            .await;
        result
    }

    /// Unpins a backup: retention decides on it again at its next pass.
    pub async fn unpin_backup(&self, id: i64, actor: &Actor) -> Result<Backup> {
        let result = self.set_pin(id, None, actor).await;
        self.audit_pin(id, AuditAction::BackupUnpin, actor, &result, None)
            .await;
        result
    }

    async fn set_pin(&self, id: i64, reason: Option<&str>, actor: &Actor) -> Result<Backup> {
        let reason = reason.map(clean_reason).transpose()?;
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        if reason.is_some()
            && !matches!(
                backup.status,
                BackupStatus::Completed | BackupStatus::Missing
            )
        {
            return Err(Error::Conflict(format!(
                "{} is {}: only a verified backup can be pinned.",
                backup.filename, backup.status
            )));
        }
        catalog::set_pin(
            &self.dbs().control,
            id,
            reason.as_deref().map(|r| (r, actor)),
        )
        .await
    }

    async fn audit_pin(
        &self,
        id: i64,
        action: AuditAction,
        actor: &Actor,
        result: &Result<Backup>,
        reason: Option<&str>,
    ) {
        let target = match result {
            Ok(b) => b.filename.clone(),
            Err(_) => catalog::get_row(&self.dbs().control, id)
                .await
                .map(|b| b.filename)
                .unwrap_or_else(|_| format!("id {id}")),
        };
        let detail = match result {
            Ok(_) => reason.map(str::to_owned),
            Err(e) => Some(e.to_string()),
        };
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action,
                target: Some(&target),
                outcome: if result.is_ok() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Failure
                },
                detail: detail.as_deref(),
            },
        )
        .await;
    }
}

/// A pin's reason, trimmed; refused when empty, too long or with control
/// characters.
fn clean_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Invalid(
            "reason: say why this backup is kept, such as \"before the term upgrade\".".into(),
        ));
    }
    if reason.chars().count() > MAX_PIN_REASON {
        return Err(Error::Invalid(format!(
            "reason: at most {MAX_PIN_REASON} characters."
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(Error::Invalid("reason: no control characters.".into()));
    }
    Ok(reason.to_owned())
}

/// The catalog as retention sees it.
fn entries(backups: &[Backup]) -> Vec<Entry> {
    backups
        .iter()
        .map(|b| Entry {
            id: b.id,
            filename: b.filename.clone(),
            created_at: b.created_at,
            status: b.status,
            schedule_id: b.schedule_id,
            pinned: b.pinned_reason.clone(),
        })
        .collect()
}
