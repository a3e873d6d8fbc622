//! What a job's start and end tell the channels, in words.

use lms_types::{JobStatus, NotifyEvent, Operation};

use super::{Notice, Severity};
use crate::jobs::Job;

/// The event a job's start is, if any (restores and undos are announced).
pub(crate) fn job_started(job: &Job) -> Option<(NotifyEvent, Notice)> {
    let backup = job.backup_name.clone();
    let (kind, title, happened) = match job.kind {
        Operation::Restore => (
            NotifyEvent::RestoreStarted,
            "Restore started".to_owned(),
            format!(
                "{} started restoring the LMS database from {}. The site keeps serving until the \
                 switch, which takes it offline for a moment.",
                job.started_by_name,
                backup.as_deref().unwrap_or("a backup")
            ),
        ),
        Operation::Undo => (
            NotifyEvent::UndoStarted,
            "Undo of the last restore started".to_owned(),
            format!(
                "{} started putting back the LMS database from before the last restore{}.",
                job.started_by_name,
                backup
                    .as_deref()
                    .map(|b| format!(" (of {b})"))
                    .unwrap_or_default()
            ),
        ),
        _ => return None,
    };
    Some((
        kind,
        Notice {
            title,
            severity: Severity::Info,
            happened,
            since: job.started_at.or(Some(job.created_at)),
            done: String::new(),
            todo: "Nothing, if this was expected; the console follows it live.".into(),
            backup,
            job: Some(job.id),
        },
    ))
}

/// The event a job's end is, if any.
pub(crate) fn job_ended(
    job: &Job,
    status: JobStatus,
    message: Option<&str>,
) -> Option<(NotifyEvent, Notice)> {
    let ok = status == JobStatus::Succeeded;
    let by = &job.started_by_name;
    let backup = job.backup_name.clone();
    let named = backup.as_deref().unwrap_or("a backup");
    let why = message.unwrap_or("no reason was recorded");
    if status == JobStatus::Interrupted {
        return job_interrupted(job, why);
    }
    let (kind, notice) = match (job.kind, ok) {
        (Operation::Backup, false) => (
            NotifyEvent::BackupFailed,
            Notice {
                title: "Backup failed".into(),
                severity: Severity::Critical,
                happened: format!("The backup started by {by} failed: {why}"),
                since: job.started_at.or(Some(job.created_at)),
                done: "Nothing of the failed attempt was kept; the older backups are untouched. \
                       A scheduled backup is tried again at its next due time."
                    .into(),
                todo: "Open the console, read the job's message, fix what it names, then start \
                       a backup (or wait for the schedule's next run)."
                    .into(),
                backup,
                job: Some(job.id),
            },
        ),
        (Operation::Backup, true) => (
            NotifyEvent::BackupSucceeded,
            Notice {
                title: "Backup verified".into(),
                severity: Severity::Info,
                happened: format!(
                    "The backup {named} started by {by} was made and read back in full.{}",
                    if job.notes.is_empty() {
                        String::new()
                    } else {
                        format!(" Notes: {}", job.notes.join(" "))
                    }
                ),
                since: job.started_at.or(Some(job.created_at)),
                done: String::new(),
                todo: "Nothing.".into(),
                backup,
                job: Some(job.id),
            },
        ),
        (Operation::Restore, ok) => (
            NotifyEvent::RestoreFinished,
            Notice {
                title: if ok {
                    "Restore finished"
                } else {
                    "Restore failed"
                }
                .into(),
                severity: if ok {
                    Severity::Info
                } else {
                    Severity::Critical
                },
                happened: if ok {
                    format!(
                        "The LMS database was restored from {named} (started by {by}); everyone \
                         was signed out."
                    )
                } else {
                    format!("The restore from {named} started by {by} failed: {why}")
                },
                since: job.started_at.or(Some(job.created_at)),
                done: if ok {
                    "The database from before the restore is kept, so the restore can be undone \
                     from the console."
                        .into()
                } else {
                    "The live database was not changed.".into()
                },
                todo: if ok {
                    "Check the site; if the restore was a mistake, undo it in the console.".into()
                } else {
                    "Open the console and read the job's message before trying again.".into()
                },
                backup,
                job: Some(job.id),
            },
        ),
        (Operation::Drill, false) => (
            NotifyEvent::DrillFailed,
            Notice {
                title: "Restore drill failed".into(),
                severity: Severity::Critical,
                happened: format!(
                    "The restore drill of {named} (started by {by}) failed: {why} This backup \
                     may not bring the LMS back."
                ),
                since: job.started_at.or(Some(job.created_at)),
                done: "The scratch database was dropped; the live database and the site were \
                       never touched."
                    .into(),
                todo: "Open the console, read the drill's message, and make a new backup; drill \
                       it, and the older backups, before relying on them."
                    .into(),
                backup,
                job: Some(job.id),
            },
        ),
        (Operation::Undo, ok) => {
            (
                NotifyEvent::UndoFinished,
                Notice {
                    title: if ok { "Undo finished" } else { "Undo failed" }.into(),
                    severity: if ok {
                        Severity::Info
                    } else {
                        Severity::Critical
                    },
                    happened: if ok {
                        format!("The database from before the last restore is back (undo started by {by}).")
                    } else {
                        format!("Undoing the last restore (started by {by}) failed: {why}")
                    },
                    since: job.started_at.or(Some(job.created_at)),
                    done: if ok {
                        String::new()
                    } else {
                        "The live database was not changed.".into()
                    },
                    todo: if ok {
                        "Check the site.".into()
                    } else {
                        "Open the console and read the job's message.".into()
                    },
                    backup,
                    job: Some(job.id),
                },
            )
        }
        _ => return None,
    };
    Some((kind, notice))
}

/// A job the server stopped in (killed, restarted, its lock released): the
/// message already says what was kept and what to check.
fn job_interrupted(job: &Job, why: &str) -> Option<(NotifyEvent, Notice)> {
    let (kind, what) = match job.kind {
        Operation::Backup => (NotifyEvent::BackupFailed, "backup"),
        Operation::Restore => (NotifyEvent::RestoreFinished, "restore"),
        Operation::Undo => (NotifyEvent::UndoFinished, "undo"),
        Operation::Drill => (NotifyEvent::DrillFailed, "restore drill"),
        _ => return None,
    };
    Some((
        kind,
        Notice {
            title: format!("{}{} interrupted", what[..1].to_uppercase(), &what[1..]),
            severity: Severity::Critical,
            happened: format!(
                "The {what} started by {} was interrupted: {why}",
                job.started_by_name
            ),
            since: job.started_at.or(Some(job.created_at)),
            done: "The console cleaned up after it (start-up recovery or the watchdog).".into(),
            todo: "Open the console, check the outcome the job describes, and start it again if \
                   it is still needed."
                .into(),
            backup: job.backup_name.clone(),
            job: Some(job.id),
        },
    ))
}
