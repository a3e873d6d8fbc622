//! `lms-admin backup …`: the engine's backup, restore and undo from a
//! terminal, with progress bars, for when the web console is unavailable.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use app::models::grant_admin_command;
use indicatif::{ProgressBar, ProgressStyle};
use lms_backup::audit::Actor;
use lms_backup::backup::BackupRequest;
use lms_backup::jobs::messages::failure_message;
use lms_backup::jobs::Job;
use lms_backup::retention::{PruneReport, Removal};
use lms_backup::{catalog, Engine};
use lms_types::{AccessAfterRestore, BackupKind, JobStatus};

use crate::cli::{BackupCommand, CliResult};

/// Runs one `backup` subcommand.
pub async fn run(engine: &Engine, command: BackupCommand) -> CliResult {
    let actor = cli_actor();
    let fail = |e: lms_backup::Error| failure_message(&e);
    match command {
        BackupCommand::List { limit } => {
            let page = catalog::list(&engine.dbs().control, 0, limit)
                .await
                .map_err(fail)?;
            if let Some(unavailable) = engine.backup_dir_unavailable().await.map_err(fail)? {
                eprintln!("{}\n", unavailable.message);
            }
            println!("   ID  NAME                               KIND        STATUS           SIZE  CREATED");
            let pinned = |b: &catalog::Backup| {
                b.pinned_reason
                    .as_deref()
                    .map(|r| format!("  pinned: {}", printable(r)))
                    .unwrap_or_default()
            };
            let offsite = |b: &catalog::Backup| {
                b.offsite_state
                    .map(|state| {
                        let why = b
                            .offsite_error
                            .as_deref()
                            .filter(|_| state != lms_types::OffsiteState::Verified)
                            .map(|e| format!(" ({})", printable(e)))
                            .unwrap_or_default();
                        format!("  {}{why}", state.words())
                    })
                    .unwrap_or_default()
            };
            for b in &page.backups {
                println!(
                    "{:>5}  {:<34} {:<11} {:<10} {:>10}  {} by {}{}{}",
                    b.id,
                    b.filename,
                    b.kind,
                    b.status,
                    b.size_bytes
                        .map(app::models::human_bytes)
                        .unwrap_or_default(),
                    b.created_at.format("%Y-%m-%d %H:%M UTC"),
                    b.created_by_name,
                    pinned(b),
                    offsite(b)
                );
            }
            println!("{} of {} backups", page.backups.len(), page.total);
            Ok(())
        }
        BackupCommand::Import { from_offsite } => {
            if !from_offsite {
                return Err("Say where to import from: --from-offsite.".into());
            }
            let report = engine.import_from_offsite(&actor).await.map_err(fail)?;
            for name in &report.imported {
                println!("imported {name}");
            }
            for (name, why) in &report.refused {
                println!("not imported {name}: {}", printable(why));
            }
            println!(
                "{} backup(s) imported, {} listed already, {} refused.",
                report.imported.len(),
                report.already_listed,
                report.refused.len()
            );
            if report.refused.is_empty() {
                Ok(())
            } else {
                Err("Some backups on the target could not be listed (above).".into())
            }
        }
        BackupCommand::Create { notes } => {
            let started = engine
                .start_backup(BackupRequest {
                    actor: &actor,
                    notes: notes.as_deref(),
                    kind: BackupKind::Manual,
                })
                .await
                .map_err(fail)?;
            let job = follow(engine, started.job).await?;
            println!("{}: {}", started.backup.filename, job.status);
            for note in &job.notes {
                println!("note: {note}");
            }
            Ok(())
        }
        BackupCommand::Restore { id, yes } => {
            let backup = catalog::get_row(&engine.dbs().control, id)
                .await
                .map_err(fail)?;
            print_admins_after_restore(engine, id).await;
            confirm(
                yes,
                &format!(
                    "This replaces ALL current data in the LMS database with {} ({}), and signs everyone out.\n\
                     The current database is kept for undo. Type the backup's name to go on: ",
                    backup.filename,
                    backup.created_at.format("%Y-%m-%d %H:%M UTC")
                ),
                &backup.filename,
            )?;
            let job = engine.start_restore(id, true, &actor).await.map_err(fail)?;
            follow(engine, job).await.map(|_| ())
        }
        BackupCommand::Compare { a, b, json } => {
            let c = catalog::compare::compare(&engine.dbs().control, a, b)
                .await
                .map_err(fail)?;
            if json {
                let c = app::models::BackupComparison::from(c);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?
                );
            } else {
                print_comparison(&c);
            }
            Ok(())
        }
        BackupCommand::Drill { id } => {
            let job = engine.start_drill(id, &actor).await.map_err(fail)?;
            follow(engine, job).await.map(|_| ())
        }
        BackupCommand::Prune { dry_run } => {
            let report = if dry_run {
                engine.retention_dry_run(None).await
            } else {
                engine.prune(&actor).await
            }
            .map_err(fail)?;
            print_prune(&report);
            match report.failed().count() {
                0 => Ok(()),
                n => Err(format!(
                    "{n} backup(s) could not be deleted; they stay and the next pass tries again."
                )),
            }
        }
        BackupCommand::Pin { id, reason } => {
            let backup = engine.pin_backup(id, &reason, &actor).await.map_err(fail)?;
            println!(
                "Pinned {}: retention keeps it until it is unpinned (lms-admin backup unpin {}).",
                backup.filename, backup.id
            );
            Ok(())
        }
        BackupCommand::Unpin { id } => {
            let backup = engine.unpin_backup(id, &actor).await.map_err(fail)?;
            println!(
                "Unpinned {}: retention decides on it again at its next pass.",
                backup.filename
            );
            Ok(())
        }
        BackupCommand::Recheck => {
            let check = engine.check_backup_files(&actor).await.map_err(fail)?;
            let show = |what: &str, names: &[String]| {
                if !names.is_empty() {
                    println!("{what} ({}): {}", names.len(), names.join(", "));
                }
            };
            show("Found again, intact, now completed", &check.found);
            show("File gone, now missing", &check.newly_missing);
            show(
                "Still missing: a file of that name is back but is not the archive catalogued",
                &check.changed,
            );
            show("Still missing", &check.still_missing);
            if check == Default::default() {
                println!(
                    "Every completed backup's file is in the backup directory; none is missing."
                );
            }
            Ok(())
        }
        BackupCommand::Preview { id, json } => {
            let preview = prepare(engine, id, &actor).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&preview).map_err(|e| e.to_string())?
                );
            } else {
                print_preview(&preview);
            }
            Ok(())
        }
        BackupCommand::Recover {
            backup,
            table,
            key,
            dry_run,
            yes,
        } => {
            let request = lms_backup::records::RecordRequest {
                table,
                key: key.parse().map_err(fail)?,
            };
            let prepared = engine.prepared_copy().await.map_err(fail)?;
            if prepared.is_none_or(|p| p.backup_id != backup || p.diff.is_none()) {
                prepare(engine, backup, &actor).await?;
            } else {
                eprintln!("Using the prepared copy of backup {backup}.");
            }
            let plan = engine.plan_recovery(&request, &actor).await.map_err(fail)?;
            print_plan(&plan);
            if !plan.blockers.is_empty() {
                return Err("the plan is blocked; nothing was changed".into());
            }
            if plan.rows_to_insert() == 0 {
                println!("Nothing to insert: the record and what belongs to it exist live.");
                return Ok(());
            }
            if dry_run {
                println!("Dry run: nothing was changed.");
                return Ok(());
            }
            confirm(
                yes,
                "This inserts the rows above into the live database in one transaction. Type \"recover\" to go on: ",
                "recover",
            )?;
            let job = engine
                .start_recover(request, Some(plan.rows_to_insert()), &actor)
                .await
                .map_err(fail)?;
            let job = follow(engine, job).await?;
            println!("Undo with: lms-admin backup recover-undo {}", job.id);
            Ok(())
        }
        BackupCommand::RecoverUndo { job, yes } => {
            let job = job
                .map(|j| j.parse::<uuid::Uuid>())
                .transpose()
                .map_err(|_| "the recovery's job id is not a job id".to_string())?;
            confirm(
                yes,
                "This deletes the recovered rows again. Type \"undo\" to go on: ",
                "undo",
            )?;
            let job = engine.start_recover_undo(job, &actor).await.map_err(fail)?;
            follow(engine, job).await.map(|_| ())
        }
        BackupCommand::Undo { yes } => {
            confirm(
                yes,
                "This swaps the database from before the last restore back in; what was written since\n\
                 the restore is set aside with the current database. Type \"undo\" to go on: ",
                "undo",
            )?;
            let job = engine.start_undo(true, &actor).await.map_err(fail)?;
            follow(engine, job).await.map(|_| ())
        }
    }
}

/// Restores backup `id` into a prepared copy (a job followed to its end)
/// and returns its comparison with the live database.
async fn prepare(
    engine: &Engine,
    id: i64,
    actor: &lms_backup::audit::Actor,
) -> Result<lms_types::records::Preview, String> {
    let fail = |e: lms_backup::Error| failure_message(&e);
    let job = engine.start_preview(id, actor).await.map_err(fail)?;
    follow(engine, job).await?;
    engine
        .preview()
        .await
        .map_err(fail)?
        .ok_or_else(|| "the prepared copy is gone (discarded meanwhile)".to_string())
}

/// What a restore of the prepared copy's backup would change, in words,
/// then the tables that differ.
fn print_preview(p: &lms_types::records::Preview) {
    println!(
        "Prepared copy {} of {} (id {}), compared with the live database in {:.1} s:",
        p.database,
        p.backup_name,
        p.backup_id,
        p.compare_ms as f64 / 1000.0
    );
    for line in [
        p.would_come_back(),
        p.would_be_lost(),
        p.would_be_reverted(),
    ]
    .into_iter()
    .flatten()
    {
        println!("  {line}");
    }
    for t in p.unkeyed_differences() {
        println!("  {t} has no primary key: compared by count and content only, and differs");
    }
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "TABLE", "LIVE", "BACKUP", "ADDED", "DELETED", "CHANGED"
    );
    let rows = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    for t in p.tables.iter().filter(|t| !t.is_same()) {
        println!(
            "{:<40} {:>10} {:>10} {:>8} {:>8} {:>8}",
            printable(&format!("{}.{}", t.schema, t.name)),
            rows(t.live_rows),
            rows(t.copy_rows),
            t.added,
            t.deleted,
            t.changed
        );
        for row in t.recoverable.iter().take(5) {
            println!(
                "    deleted: {}  (--table {}.{} --key {})",
                printable(&row.words),
                t.schema,
                t.name,
                printable(&row.key)
            );
        }
    }
    println!(
        "\nThe copy stays until discarded or unused for PREPARED_COPY_IDLE_TIMEOUT (until {}).",
        p.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
}

/// A recovery plan: per table the rows to insert and those left alone,
/// then what blocks it.
fn print_plan(plan: &lms_types::records::RecoveryPlan) {
    println!(
        "Recovering {} ({}) from {} (id {}):",
        printable(&plan.root),
        plan.table,
        plan.backup_name,
        plan.backup_id
    );
    println!(
        "{:<40} {:>8} {:>8} {:>10} {:>8}",
        "TABLE", "INSERT", "NEEDED", "UNCHANGED", "CHANGED"
    );
    for t in &plan.tables {
        println!(
            "{:<40} {:>8} {:>8} {:>10} {:>8}",
            printable(&format!("{}.{}", t.schema, t.name)),
            t.insert,
            t.needed,
            t.unchanged,
            t.changed
        );
        for s in &t.changed_samples {
            println!("    changed live since, left as it is: {}", printable(s));
        }
    }
    match plan.insert_words() {
        Some(words) => println!("Would insert {words}."),
        None => println!("Would insert nothing."),
    }
    for b in &plan.blockers {
        println!(
            "BLOCKED: {} {}: {}",
            b.table,
            printable(&b.row),
            printable(&b.reason)
        );
    }
}

/// Two backups compared: a line of totals, then the tables that differ
/// (the unchanged ones only counted).
fn print_comparison(c: &catalog::compare::BackupComparison) {
    use lms_types::TableChange;
    let at = |b: &catalog::Backup| b.created_at.format("%Y-%m-%d %H:%M UTC").to_string();
    println!(
        "From {} ({}, id {}) to {} ({}, id {}):",
        c.older.filename,
        at(&c.older),
        c.older.id,
        c.newer.filename,
        at(&c.newer),
        c.newer.id
    );
    println!(
        "  {} table(s) changed, {} added, {} removed, {} the same{}.",
        c.count(TableChange::Changed),
        c.count(TableChange::Added),
        c.count(TableChange::Removed),
        c.count(TableChange::Same),
        match c.count(TableChange::Incomparable) {
            0 => String::new(),
            n => format!(", {n} with the same rows but fingerprinted differently (cannot tell)"),
        }
    );
    let differing: Vec<_> = c
        .tables
        .iter()
        .filter(|t| t.change != TableChange::Same)
        .collect();
    if differing.is_empty() {
        println!("  Their tables hold the same rows.");
        return;
    }
    let rows = |r: Option<i64>| r.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "  {:<40} {:>12} {:>12}  CHANGE",
        "TABLE", "OLDER ROWS", "NEWER ROWS"
    );
    for t in differing {
        let delta = match t.rows_moved() {
            Some(moved) => format!(" ({moved})"),
            None if t.change == TableChange::Changed => " (same count, other content)".into(),
            None => String::new(),
        };
        println!(
            "  {:<40} {:>12} {:>12}  {}{delta}",
            printable(&format!("{}.{}", t.schema, t.name)),
            rows(t.older_rows),
            rows(t.newer_rows),
            t.change
        );
    }
}

/// A retention pass (or its dry run), one line per backup it lets go.
fn print_prune(report: &PruneReport) {
    for name in &report.missing {
        let verb = if report.dry_run {
            "would be marked"
        } else {
            "now"
        };
        println!("{name}: its file is gone ({verb} missing; it no longer counts as kept)");
    }
    let kept = report.verdicts.iter().filter(|v| v.keep).count();
    if report.let_go.is_empty() {
        println!("Nothing to delete: retention keeps all {kept} verified backups.");
        return;
    }
    for gone in &report.let_go {
        let what = match &gone.removal {
            None => "would be deleted".to_owned(),
            Some(Removal::Deleted) => "deleted".to_owned(),
            Some(Removal::FileAlreadyGone) => "deleted (its file had gone already)".to_owned(),
            Some(Removal::Failed(why)) => format!("NOT deleted: {why}"),
        };
        println!("{:>5}  {}  {what}: {}", gone.id, gone.filename, gone.rule);
    }
    let n = report.let_go.len();
    if report.dry_run {
        println!("{n} backup(s) would be deleted, {kept} kept. Nothing was changed.");
    } else {
        println!(
            "{} backup(s) deleted, {kept} kept.",
            report.deleted().count()
        );
    }
}

/// The actor for audit and jobs: the operating-system user at the terminal.
pub(crate) fn cli_actor() -> Actor {
    Actor {
        id: None,
        name: format!("cli:{}", terminal_user()),
        client_ip: None,
    }
}

/// The login name of whoever runs the command.
fn terminal_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Before a restore is confirmed: the administrators the backup holds, who
/// comes back and who can no longer sign in, and a warning with the way
/// back in when the account named like the user at the terminal would be
/// locked out. The restore's own checks decide whether it may go on, so a
/// backup whose accounts cannot be read is only warned about.
async fn print_admins_after_restore(engine: &Engine, id: i64) {
    let user = terminal_user();
    let seen = match engine.admins_after_restore(id, Some(&user)).await {
        Ok(seen) => seen,
        Err(e) => {
            println!(
                "WARNING: the administrators in this backup cannot be told: {}\n\
                 After restoring it you may be unable to sign in to the console; to get back in, \
                 run on this server:\n  {}\n",
                failure_message(&e),
                grant_admin_command(&user)
            );
            return;
        }
    };
    println!("Administrators in {}:", seen.backup.filename);
    if seen.admins.is_empty() {
        println!("  (none)");
    }
    for admin in &seen.admins {
        let state = if !admin.is_active {
            "  (deactivated)"
        } else if admin.password_tag.is_none() {
            "  (no password: cannot sign in)"
        } else {
            ""
        };
        println!(
            "  {:<20} {}{state}",
            printable(&admin.username),
            printable(&admin.full_name)
        );
    }
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| printable(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !seen.returning.is_empty() {
        println!(
            "Back as administrators after the restore: {}",
            list(&seen.returning)
        );
    }
    if !seen.leaving.is_empty() {
        println!(
            "Administrators now who can no longer sign in after it: {}",
            list(&seen.leaving)
        );
    }
    if !seen.anyone_can_sign_in() {
        println!("WARNING: no administrator in this backup can sign in.");
    }
    let who = format!("\"{}\" (your login name)", printable(&user));
    let warning = match seen.access {
        Some(AccessAfterRestore::NotAdmin) => format!(
            "{who} is not an administrator in this backup: after the restore that name cannot \
             sign in to the console."
        ),
        Some(AccessAfterRestore::Deactivated) => format!(
            "{who} is a deactivated administrator in this backup: after the restore that name \
             cannot sign in to the console."
        ),
        Some(AccessAfterRestore::NoPassword) => format!(
            "{who} has no password in this backup: after the restore that name cannot sign in \
             to the console."
        ),
        Some(AccessAfterRestore::OlderPassword) => format!(
            "{who} has another password in this backup: after the restore only the password it \
             had when the backup was taken signs in."
        ),
        Some(AccessAfterRestore::Kept) | None => {
            println!();
            return;
        }
    };
    println!(
        "WARNING: {warning}\nTo get back in afterwards, run on this server (it reads the new \
         password from standard input):\n  {}\n",
        grant_admin_command(&user)
    );
}

/// Text from an archive, safe to print on a terminal: control characters
/// (an escape sequence, a line break) become spaces.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(crate) fn confirm(yes: bool, prompt: &str, expected: &str) -> CliResult {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err("refusing without confirmation: run it in a terminal or pass --yes".into());
    }
    print!("{prompt}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.trim() == expected {
        Ok(())
    } else {
        Err("not confirmed; nothing was changed".into())
    }
}

/// Shows a job's progress until it ends; a failed job is an error.
async fn follow(engine: &Engine, job: Job) -> Result<Job, String> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:40}] {percent:>3}%  {elapsed}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    loop {
        let current = engine.job(job.id).await.map_err(|e| failure_message(&e))?;
        bar.set_message(current.phase.as_str());
        bar.set_position((current.progress * 1000.0) as u64);
        match current.status {
            JobStatus::Running => tokio::time::sleep(Duration::from_millis(250)).await,
            JobStatus::Succeeded => {
                bar.finish_with_message("done");
                if let Some(message) = &current.message {
                    println!("{message}");
                }
                return Ok(current);
            }
            other @ (JobStatus::Failed | JobStatus::Interrupted) => {
                bar.abandon_with_message(other.as_str());
                return Err(current
                    .message
                    .unwrap_or_else(|| format!("the job ended {other}")));
            }
        }
    }
}
