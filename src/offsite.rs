//! Off-site copies of the catalog's backups: the copy a backup job makes
//! once its archive is verified locally, the worker that retries failed
//! copies (and makes those of backups from before the target was
//! configured), the check that finds a copy deleted out of band, and the
//! deletion of a backup's copy with the backup.
//!
//! A failed copy never fails its backup: the backup stays `completed`, its
//! copy `failed` with the reason in words, and is tried again with backoff.
//! Which instance copies a backup is decided in the catalog: a copy is
//! claimed with a conditional update that also sets when the claim lapses
//! (an instance that died mid-copy leaves a claim another takes over).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::{AuditAction, AuditOutcome, BackupStatus, NotifyEvent, OffsiteState, Phase};
use serde::Serialize;

use crate::audit::{self, Actor, Event};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::run::JobRun;
use crate::storage::encryption::{self, Encryption};
use crate::storage::offsite::{Offsite, Sent, TargetDescription};
use crate::storage::Manifest;
use crate::{Error, Result};

/// How long a claim on a copy lasts before another instance may take it
/// over (it is renewed by nothing: a copy longer than this may be made
/// twice, which is harmless, as the same bytes are checked again).
const CLAIM: Duration = Duration::from_secs(60 * 60);

/// The longest wait between two attempts at a failing copy.
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// How often the worker looks for copies to make and checks the target.
pub const WORKER_PERIOD: Duration = Duration::from_secs(30);

/// The actor off-site work is audited as when no one started it.
pub const OFFSITE_ACTOR: &str = "off-site copy";

/// The off-site target and what was last seen of it (the card).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsiteStatus {
    pub target: TargetDescription,
    /// Why the target cannot be used, as last seen (`None`: it answered).
    pub problem: Option<String>,
    /// When it was last checked (`None`: not yet).
    pub checked_at: Option<DateTime<Utc>>,
    /// Backups whose copy is verified (kept here or not: a new host's
    /// imported ones are only off-site), and stored ones whose copy is not
    /// (pending, copying, failed or missing).
    pub verified: i64,
    pub unverified: i64,
    /// Backups whose manifests are in the bucket while the catalog is
    /// empty (a new host): offered for import.
    pub importable: Option<usize>,
}

/// What was last seen of the target.
#[derive(Debug, Default)]
pub(crate) struct TargetWatch {
    seen: std::sync::Mutex<Option<(DateTime<Utc>, Option<String>)>>,
    importable: std::sync::Mutex<Option<usize>>,
}

impl TargetWatch {
    /// Why the target could not be used when last checked.
    pub(crate) fn problem(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|(_, p)| p.clone())
    }
}

/// Bytes sent and read back, for a job's progress bar.
#[derive(Debug, Default)]
pub struct CopyProgress {
    sent: AtomicU64,
    read: AtomicU64,
}

impl CopyProgress {
    /// 0..=1: sending is the first half, reading back the second.
    pub fn fraction(&self, size: u64) -> f64 {
        if size == 0 {
            return 0.0;
        }
        let done = self.sent.load(Ordering::Relaxed) + self.read.load(Ordering::Relaxed);
        (done as f64 / (2 * size) as f64).min(1.0)
    }
}

/// What an import from the off-site target did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    /// Backups now listed, with their off-site copy to restore from.
    pub imported: Vec<String>,
    /// Backups the catalog listed already.
    pub already_listed: usize,
    /// Manifests whose backup could not be listed, and why.
    pub refused: Vec<(String, String)>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassReport {
    pub verified: Vec<String>,
    pub failed: Vec<String>,
    pub found_missing: Vec<String>,
}

impl Engine {
    /// The off-site target and what was last seen of it, when one is
    /// configured.
    pub async fn offsite_status(&self) -> Result<Option<OffsiteStatus>> {
        let Some(offsite) = self.offsite() else {
            return Ok(None);
        };
        let (verified, unverified): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE offsite_state = 'verified'),
                    count(*) FILTER (WHERE status = $1 AND offsite_state IS DISTINCT FROM 'verified')
             FROM backup_history WHERE status IN ($1, $2)",
        )
        .bind(BackupStatus::Completed)
        .bind(BackupStatus::Missing)
        .fetch_one(&self.dbs().control)
        .await?;
        let seen = self.target_watch().seen.lock().unwrap().clone();
        Ok(Some(OffsiteStatus {
            target: offsite.description().clone(),
            problem: seen.as_ref().and_then(|(_, p)| p.clone()),
            checked_at: seen.map(|(at, _)| at),
            verified,
            unverified,
            importable: *self.target_watch().importable.lock().unwrap(),
        }))
    }

    /// Asks the target whether it can be used, and remembers the answer
    /// for the card. `None` when no target is configured.
    pub async fn check_offsite(&self) -> Option<Result<()>> {
        let offsite = self.offsite()?;
        let result = offsite.check().await;
        let problem = result.as_ref().err().map(|e| e.to_string());
        *self.target_watch().seen.lock().unwrap() = Some((Utc::now(), problem));
        // An empty catalog beside a bucket with backups is a new host: the
        // console offers to import them (never on its own).
        let importable = match result {
            Ok(()) if catalog::count_all(&self.dbs().control).await.ok() == Some(0) => offsite
                .manifest_names()
                .await
                .ok()
                .map(|names| names.len())
                .filter(|n| *n > 0),
            _ => None,
        };
        *self.target_watch().importable.lock().unwrap() = importable;
        Some(result)
    }

    /// Copies a backup the caller has claimed (see [`Engine::claim_due_copy`]) to the
    /// target, reads it back and records the outcome: `verified`, or
    /// `failed` with the reason and the time of the next attempt. Audited
    /// either way. Returns the error for the caller to report.
    pub(crate) async fn copy_offsite(
        &self,
        backup: &Backup,
        actor: &Actor,
        progress: &CopyProgress,
    ) -> Result<()> {
        let Some(offsite) = self.offsite() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let result = self.send_and_read_back(offsite, backup, progress).await;
        let control = &self.dbs().control;
        let recorded = match &result {
            Ok((sent, encrypted)) => {
                // Sending, then reading back and the manifest.
                let read_back = started.elapsed().saturating_sub(sent.took);
                tracing::info!(
                    backup = %backup.filename,
                    parts = sent.parts,
                    part_size = sent.part_size,
                    encrypted = encrypted.is_some(),
                    send_ms = sent.took.as_millis() as u64,
                    read_back_ms = read_back.as_millis() as u64,
                    "off-site copy verified"
                );
                // The catalog's manifest says how the copy is encrypted, so
                // the console can say which key it needs.
                let updated = sqlx::query(
                    "UPDATE backup_history SET offsite_state = $2, offsite_error = NULL,
                            offsite_verified_at = now(), offsite_next_attempt_at = NULL,
                            offsite_attempts = 0,
                            manifest = CASE WHEN $4::jsonb IS NULL THEN manifest - 'encryption'
                                            ELSE manifest || jsonb_build_object('encryption', $4::jsonb) END
                     WHERE id = $1 AND status = $3",
                )
                .bind(backup.id)
                .bind(OffsiteState::Verified)
                .bind(BackupStatus::Completed)
                .bind(encrypted.as_ref().map(sqlx::types::Json))
                .execute(control)
                .await
                .map(|r| r.rows_affected());
                if let Ok(0) = updated {
                    // Deleted while it was copied: its copy goes too.
                    if let Err(e) = offsite.delete(&backup.filename).await {
                        tracing::warn!(error = %e, backup = %backup.filename, "could not delete the copy of a backup deleted meanwhile");
                    }
                }
                updated.map(|_| ()).map_err(Error::from)
            }
            Err(err) => {
                tracing::warn!(error = %err, backup = %backup.filename, "off-site copy failed");
                let base = self.config().offsite_retry_after;
                // The first failure of a streak is told (with what the retries
                // will do); the retries failing again are not, until one works.
                async {
                    let mut tx = control.begin().await?;
                    let failed: Option<(Option<OffsiteState>, i32, Option<chrono::DateTime<chrono::Utc>>)> =
                        sqlx::query_as(
                            "WITH old AS (
                                SELECT id, offsite_state FROM backup_history WHERE id = $1 FOR UPDATE
                             )
                             UPDATE backup_history b SET offsite_state = $2, offsite_error = $3,
                                    offsite_next_attempt_at = now() + least(
                                        $4 * power(2, greatest(b.offsite_attempts - 1, 0)), $5)
                                        * interval '1 millisecond'
                             FROM old
                             WHERE b.id = old.id AND b.status = $6
                             RETURNING old.offsite_state, b.offsite_attempts, b.offsite_next_attempt_at",
                        )
                        .bind(backup.id)
                        .bind(OffsiteState::Failed)
                        .bind(err.to_string())
                        .bind(base.as_millis() as f64)
                        .bind(MAX_BACKOFF.as_millis() as f64)
                        .bind(BackupStatus::Completed)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let told = match failed {
                        Some((was, attempts, next)) if was != Some(OffsiteState::Failed) => {
                            let notice = copy_failed_notice(&backup.filename, err, attempts, next);
                            crate::notify::record(&mut tx, NotifyEvent::OffsiteFailed, &notice, None)
                                .await?;
                            true
                        }
                        _ => false,
                    };
                    tx.commit().await?;
                    if told {
                        self.wake_notifier();
                    }
                    Ok::<_, Error>(())
                }
                .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, backup = %backup.filename, "could not record the off-site copy's outcome");
        }
        audit::record_or_log(
            control,
            Event {
                actor,
                action: AuditAction::OffsiteCopy,
                target: Some(&backup.filename),
                outcome: if result.is_ok() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Failure
                },
                detail: result.as_ref().err().map(|e| e.to_string()).as_deref(),
            },
        )
        .await;
        result.map(|_| ())
    }

    /// Sends the archive (encrypted as it streams when encryption is set),
    /// reads the object back in full and checks it, then writes its
    /// manifest beside it: the copy counts only when what is stored is what
    /// was sent and opens to the manifest's archive. Returns how it went and
    /// how the copy is encrypted.
    async fn send_and_read_back(
        &self,
        offsite: &Offsite,
        backup: &Backup,
        progress: &CopyProgress,
    ) -> Result<(Sent, Option<Encryption>)> {
        let detail = catalog::get(&self.dbs().control, backup.id).await?;
        let mut manifest = detail.manifest.ok_or_else(|| {
            Error::Invalid(format!("{} has no manifest to copy.", backup.filename))
        })?;
        // The local file, read once: hashed as it is sent, and the copy is
        // never completed unless it is the manifest's.
        let name = &backup.filename;
        let local = tokio::fs::File::from_std(self.backup_dir().open_archive(name).await?);
        let (expected_size, expected_sha256) = manifest.stored();
        let expected_sha256 = expected_sha256.to_owned();
        let unchanged = |size: u64, sha256: &str| {
            if (size, sha256) == (expected_size, expected_sha256.as_str()) {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "{name} no longer matches its checksum here: it was changed or damaged, so \
                     it was not copied off-site."
                )))
            }
        };
        let changed = |what: &str| {
            Error::Offsite(format!(
                "The off-site copy of {name} was read back {what}: the target stored something \
                 else. It will be copied again."
            ))
        };
        let (sent, encrypted) = match (manifest.kept_encrypted(), &self.config().encryption) {
            // The file as it is kept: plain, or kept encrypted here (proven
            // when it was made: decrypted to its end, it hashes to the
            // archive pg_restore read in full as it was written).
            (kept @ Some(_), _) | (kept @ None, None) => {
                let kept = kept.cloned();
                let sent = offsite
                    .send(local, name, expected_size, &progress.sent, unchanged)
                    .await?;
                let got = offsite.read_back(name, &progress.read).await?;
                if got != (expected_size, expected_sha256.clone()) {
                    return Err(changed("with another size or SHA-256 than its manifest's"));
                }
                (sent, kept)
            }
            (None, Some(config)) => {
                let (plain, plain_hash) = encryption::hashing(local);
                let (cipher, check_key) = encryption::encrypt(plain, config)?;
                let bound = encryption::encrypted_size_bound(manifest.size_bytes);
                // The ciphertext has ended, so the plain file was read to its end.
                let plain_unchanged = |_: u64, _: &str| {
                    let (size, sha256) = plain_hash.result();
                    unchanged(size, &sha256)
                };
                let sent = offsite
                    .send(cipher, name, bound, &progress.sent, plain_unchanged)
                    .await?;
                // One read of the object: its bytes hashed as they come and
                // decrypted with the one-off key; the plaintext must be the
                // archive pg_restore read in full.
                let (stored, stored_hash) = encryption::hashing(offsite.reader(name).await?);
                let plain = encryption::decrypt_for_check(stored, &check_key, |e| {
                    Error::Offsite(format!(
                        "The encrypted off-site copy could not be opened with the key it was made \
                         with ({e}): the target stored something else."
                    ))
                })
                .await?;
                let opened = encryption::hash_all(plain)
                    .await
                    .map_err(|_| changed("and could not be decrypted in full"))?;
                let stored = stored_hash.result();
                progress.read.store(stored.0, Ordering::Relaxed);
                if stored != (sent.size, sent.sha256.clone()) {
                    return Err(changed("with other bytes than were sent"));
                }
                if opened != (manifest.size_bytes, manifest.sha256.clone()) {
                    return Err(changed(
                        "and decrypts to another archive than its manifest's",
                    ));
                }
                let encryption = config.record(sent.size, sent.sha256.clone(), false);
                (sent, Some(encryption))
            }
        };
        manifest.encryption = encrypted.clone();
        offsite.put_manifest(&manifest).await?;
        Ok((sent, encrypted))
    }

    /// Claims the newest stored backup whose copy is due (to be made,
    /// failed, found missing, or claimed by an instance that died), but
    /// none of `tried`, so no other instance copies it meanwhile.
    pub(crate) async fn claim_due_copy(&self, tried: &[i64]) -> Result<Option<Backup>> {
        let claimed: Option<(i64,)> = sqlx::query_as(
            "UPDATE backup_history SET offsite_state = $1, offsite_attempts = offsite_attempts + 1,
                    offsite_next_attempt_at = now() + $2 * interval '1 second'
             WHERE id = (
                SELECT id FROM backup_history
                WHERE status = $3 AND offsite_state IN ('pending', 'failed', 'missing', 'copying')
                  AND coalesce(offsite_next_attempt_at, '-infinity') <= now()
                  AND id <> ALL($4)
                ORDER BY created_at DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(OffsiteState::Copying)
        .bind(CLAIM.as_secs() as f64)
        .bind(BackupStatus::Completed)
        .bind(tried)
        .fetch_optional(&self.dbs().control)
        .await?;
        match claimed {
            Some((id,)) => Ok(Some(catalog::get_row(&self.dbs().control, id).await?)),
            None => Ok(None),
        }
    }

    /// Claims a just-completed backup for its own job's copy.
    pub(crate) async fn claim_for_job(&self, id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE backup_history SET offsite_state = $2, offsite_attempts = 1,
                    offsite_next_attempt_at = now() + $3 * interval '1 second'
             WHERE id = $1",
        )
        .bind(id)
        .bind(OffsiteState::Copying)
        .bind(CLAIM.as_secs() as f64)
        .execute(&self.dbs().control)
        .await?;
        Ok(())
    }

    /// One pass of the worker: checks the target, marks stored backups
    /// without a copy state `pending`, looks each verified copy up (one
    /// deleted out of band is `missing`, audited), then makes every copy
    /// that is due.
    pub async fn offsite_pass(&self) -> Result<PassReport> {
        let mut report = PassReport::default();
        let Some(offsite) = self.offsite() else {
            return Ok(report);
        };
        if let Some(Err(e)) = self.check_offsite().await {
            tracing::warn!(error = %e, "the off-site target cannot be used");
            return Ok(report);
        }
        offsite.abort_stranded().await;
        let control = &self.dbs().control;
        sqlx::query(
            "UPDATE backup_history SET offsite_state = $1
             WHERE status = $2 AND offsite_state IS NULL",
        )
        .bind(OffsiteState::Pending)
        .bind(BackupStatus::Completed)
        .execute(control)
        .await?;
        // An encrypted copy's object is the encrypted file's size.
        let verified: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, filename,
                    coalesce((manifest->'encryption'->>'size_bytes')::bigint, size_bytes)
             FROM backup_history WHERE status = $1 AND offsite_state = $2",
        )
        .bind(BackupStatus::Completed)
        .bind(OffsiteState::Verified)
        .fetch_all(control)
        .await?;
        let stored = if verified.is_empty() {
            Default::default()
        } else {
            offsite.archive_sizes().await?
        };
        for (id, filename, size) in verified {
            let found = stored.get(&filename).copied();
            if found.is_some() && found.map(|s| s as i64) == size {
                continue;
            }
            let why = match found {
                None => "The off-site copy was found gone from the target (deleted out of band); it will be copied again.".to_owned(),
                Some(s) => format!("The off-site copy was found changed on the target ({s} bytes instead of the manifest's); it will be copied again."),
            };
            let updated = sqlx::query(
                "UPDATE backup_history SET offsite_state = $2, offsite_error = $3,
                        offsite_next_attempt_at = now()
                 WHERE id = $1 AND offsite_state = $4",
            )
            .bind(id)
            .bind(OffsiteState::Missing)
            .bind(&why)
            .bind(OffsiteState::Verified)
            .execute(control)
            .await?;
            if updated.rows_affected() == 1 {
                audit::record_or_log(
                    control,
                    Event {
                        actor: &Actor::system(OFFSITE_ACTOR),
                        action: AuditAction::OffsiteMissing,
                        target: Some(&filename),
                        outcome: AuditOutcome::Failure,
                        detail: Some(&why),
                    },
                )
                .await;
                report.found_missing.push(filename);
            }
        }
        let actor = Actor::system(OFFSITE_ACTOR);
        // Each backup at most once a pass: one that fails is due again
        // after its wait, which may be none.
        let mut tried = Vec::new();
        while let Some(backup) = self.claim_due_copy(&tried).await? {
            tried.push(backup.id);
            match self
                .copy_offsite(&backup, &actor, &CopyProgress::default())
                .await
            {
                Ok(()) => report.verified.push(backup.filename),
                Err(_) => report.failed.push(backup.filename),
            }
        }
        Ok(report)
    }

    /// Runs a pass every [`WORKER_PERIOD`] for as long as the process lives.
    pub fn spawn_offsite_worker(&self) {
        if self.offsite().is_none() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WORKER_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = engine.offsite_pass().await {
                    tracing::warn!(error = %e, "the off-site pass failed");
                }
            }
        });
    }

    /// A stored backup whose file is gone from the backup directory but
    /// whose off-site copy is verified gets its file back from that copy
    /// first (checked against the manifest as it streams in): downloads and
    /// restores then read the local file as always. Anything else is
    /// returned as it is, and the caller's own checks speak.
    pub(crate) async fn ensure_local(&self, backup: &Backup) -> Result<Backup> {
        let Some(offsite) = self.offsite() else {
            return Ok(backup.clone());
        };
        let wanted = matches!(
            backup.status,
            BackupStatus::Completed | BackupStatus::Missing
        ) && backup.offsite_state == Some(OffsiteState::Verified);
        if !wanted || self.backup_dir().archive_exists(&backup.filename).await? {
            return Ok(backup.clone());
        }
        self.fetch_back(offsite, backup).await?;
        catalog::get_row(&self.dbs().control, backup.id).await
    }

    /// Streams an archive's off-site copy into the backup directory beside
    /// its final name, and keeps it only when its size and SHA-256 are the
    /// manifest's; then the entry is `completed` again. Audited. An
    /// encrypted copy is decrypted on the way, unless files are kept
    /// encrypted here (it was made so, or `ENCRYPT_LOCAL` is set now): then
    /// it is kept as it is.
    async fn fetch_back(&self, offsite: &Offsite, backup: &Backup) -> Result<()> {
        let control = &self.dbs().control;
        let mut manifest = catalog::get(control, backup.id)
            .await?
            .manifest
            .ok_or_else(|| Error::Invalid(format!("{} has no manifest.", backup.filename)))?;
        if let Some(unavailable) = self.backup_dir_unavailable().await? {
            return Err(Error::StorageUnavailable(unavailable.message));
        }
        let dir = self.backup_dir();
        let partial = dir.partial_path(&backup.filename);
        let file = dir.create_new(&partial).await.map_err(|e| match e {
            Error::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists => Error::Conflict(
                format!(
                    "{} is being fetched back from its off-site copy already; try again in a moment.",
                    backup.filename
                ),
            ),
            other => other,
        })?;
        let keep_encrypted = self.config().encrypt_local;
        let fetched = async {
            self.fetch_into(offsite, &mut manifest, keep_encrypted, file)
                .await?;
            dir.publish(&partial, &backup.filename).await?;
            dir.write_manifest(&manifest).await?;
            catalog::set_manifest(control, backup.id, &manifest).await
        }
        .await;
        if fetched.is_err() {
            if let Err(e) = dir.remove(vec![partial]).await {
                tracing::error!(error = %e, "could not remove a partly fetched archive");
            }
        }
        let detail = fetched
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "fetched back from its off-site copy and checked".to_owned());
        audit::record_or_log(
            control,
            Event {
                actor: &Actor::system(OFFSITE_ACTOR),
                action: AuditAction::BackupFound,
                target: Some(&backup.filename),
                outcome: if fetched.is_ok() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Failure
                },
                detail: Some(&detail),
            },
        )
        .await;
        fetched?;
        catalog::change_status(
            control,
            backup.id,
            BackupStatus::Missing,
            BackupStatus::Completed,
        )
        .await?;
        tracing::info!(backup = %backup.filename, "fetched back from the off-site copy");
        Ok(())
    }

    /// Streams the off-site copy of `manifest`'s archive into `file`, and
    /// fails unless its size and SHA-256 are the manifest's (for the file as
    /// it is then kept). An encrypted copy is decrypted on the way, unless
    /// it is kept encrypted here (made so, or `keep_encrypted` asks for it
    /// now); `manifest` then says so.
    async fn fetch_into(
        &self,
        offsite: &Offsite,
        manifest: &mut Manifest,
        keep_encrypted: bool,
        file: tokio::fs::File,
    ) -> Result<()> {
        let name = manifest.filename.clone();
        let mismatch = || {
            Error::Invalid(format!(
                "The off-site copy of {name} does not match its manifest (size or SHA-256): it \
                 was changed on the target. Nothing was restored or served; use another backup."
            ))
        };
        let kept_encrypted = manifest
            .encryption
            .as_ref()
            .filter(|e| e.local || keep_encrypted)
            .map(|e| Encryption {
                local: true,
                ..e.clone()
            });
        let stored = offsite.reader(&name).await?;
        let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &manifest.encryption {
            Some(encryption) if kept_encrypted.is_none() => Box::new(
                encryption::decrypt(stored, encryption, &self.config().decryption, &name).await?,
            ),
            _ => Box::new(stored),
        };
        if kept_encrypted.is_some() {
            manifest.encryption = kept_encrypted;
        }
        let (expected_size, expected_sha256) = manifest.stored();
        let (size, sha256) = crate::postgres::archive::write_and_hash(
            reader,
            file,
            expected_size,
            Some(Duration::from_secs(60)),
        )
        .await
        .map_err(|e| match e {
            Error::Invalid(_) => mismatch(),
            other => other,
        })?;
        if size != expected_size || sha256 != expected_sha256 {
            return Err(mismatch());
        }
        Ok(())
    }

    /// For a restore drill: the verified off-site copy of `backup`, fetched
    /// into a scratch file of job `job` in the backup directory and checked
    /// against the manifest, as a restore on a new host would read it.
    /// Returns the file and the manifest as it is kept; `None` when there is
    /// no target or no verified copy (the drill then reads the local file).
    pub(crate) async fn fetch_for_drill(
        &self,
        backup: &Backup,
        job: uuid::Uuid,
    ) -> Result<Option<(std::path::PathBuf, Manifest)>> {
        let Some(offsite) = self.offsite() else {
            return Ok(None);
        };
        if backup.offsite_state != Some(OffsiteState::Verified) {
            return Ok(None);
        }
        let mut manifest = catalog::get(&self.dbs().control, backup.id)
            .await?
            .manifest
            .ok_or_else(|| Error::Invalid(format!("{} has no manifest.", backup.filename)))?;
        if let Some(unavailable) = self.backup_dir_unavailable().await? {
            return Err(Error::StorageUnavailable(unavailable.message));
        }
        let dir = self.backup_dir();
        let scratch = dir.partial_path(&drill_file(&backup.filename, job));
        let file = dir.create_new(&scratch).await?;
        match self.fetch_into(offsite, &mut manifest, false, file).await {
            Ok(()) => Ok(Some((scratch, manifest))),
            Err(e) => {
                if let Err(removed) = dir.remove(vec![scratch]).await {
                    tracing::error!(error = %removed, "could not remove a drill's scratch file");
                }
                Err(e)
            }
        }
    }

    /// Lists again every backup whose manifest is on the target and which
    /// the catalog does not list: disaster recovery on a new host, where
    /// only the databases' URL, the target's settings (and the key) are
    /// left. Each is listed with its off-site copy (`verified` once its
    /// object is there with the manifest's size; its SHA-256 is checked when
    /// it is fetched back) and `missing` here unless its file is in the
    /// backup directory. Audited, one entry each.
    pub async fn import_from_offsite(&self, actor: &Actor) -> Result<ImportReport> {
        let offsite = self.offsite().ok_or_else(|| {
            Error::Config(
                "No off-site target is configured: set S3_BUCKET (and S3_ENDPOINT, the credentials) \
                 to the bucket the backups were copied to."
                    .into(),
            )
        })?;
        let control = &self.dbs().control;
        let mut report = ImportReport::default();
        for name in offsite.manifest_names().await? {
            if catalog::name_taken(control, &name).await? {
                report.already_listed += 1;
                continue;
            }
            let checked = async {
                let manifest = offsite.read_manifest(&name).await?;
                if manifest.filename != name {
                    return Err(Error::Invalid(format!(
                        "its manifest names another archive ({})",
                        manifest.filename
                    )));
                }
                let expected = manifest
                    .encryption
                    .as_ref()
                    .map_or(manifest.size_bytes, |e| e.size_bytes);
                match offsite.archive_size(&name).await? {
                    Some(size) if size == expected => Ok(manifest),
                    Some(size) => Err(Error::Invalid(format!(
                        "its archive has {size} bytes, its manifest says {expected}"
                    ))),
                    None => Err(Error::Invalid("its archive is not on the target".into())),
                }
            }
            .await;
            let manifest = match checked {
                Ok(manifest) => manifest,
                Err(e) => {
                    audit::record_or_log(
                        control,
                        Event {
                            actor,
                            action: AuditAction::OffsiteImport,
                            target: Some(&name),
                            outcome: AuditOutcome::Failure,
                            detail: Some(&e.to_string()),
                        },
                    )
                    .await;
                    report.refused.push((name, e.to_string()));
                    continue;
                }
            };
            let here = self
                .backup_dir()
                .archive_exists(&name)
                .await
                .unwrap_or(false);
            let mut tx = control.begin().await?;
            let id = catalog::import(&mut *tx, &manifest).await?;
            sqlx::query(
                "UPDATE backup_history SET status = $2, offsite_state = $3, offsite_verified_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(if here {
                BackupStatus::Completed
            } else {
                BackupStatus::Missing
            })
            .bind(OffsiteState::Verified)
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut *tx,
                &Event {
                    actor,
                    action: AuditAction::OffsiteImport,
                    target: Some(&name),
                    outcome: AuditOutcome::Success,
                    detail: None,
                },
            )
            .await?;
            tx.commit().await?;
            report.imported.push(name);
        }
        *self.target_watch().importable.lock().unwrap() = None;
        Ok(report)
    }

    /// Deletes a backup's off-site copy (with the backup, or by retention),
    /// audited, when it may have one. A copy that cannot be deleted is
    /// reported (log and audit), not hidden.
    pub(crate) async fn delete_offsite(
        &self,
        filename: &str,
        state: Option<OffsiteState>,
        actor: &Actor,
    ) {
        let Some(offsite) = self.offsite() else {
            return;
        };
        if matches!(state, None | Some(OffsiteState::Pending)) {
            return;
        }
        let result = offsite.delete(filename).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, backup = %filename, "could not delete the off-site copy");
        }
        audit::record_result(
            &self.dbs().control,
            actor,
            AuditAction::OffsiteDelete,
            filename,
            &result,
        )
        .await;
    }

    /// The copy a backup job makes once its archive is saved: a failure
    /// leaves the backup completed, says so in the job, and is tried again
    /// later by the worker.
    pub(crate) async fn copy_new_backup(
        &self,
        run: &JobRun,
        backup: &Backup,
        actor: &Actor,
        size: u64,
    ) {
        if self.offsite().is_none() {
            return;
        }
        if let Err(e) = self.claim_for_job(backup.id).await {
            tracing::error!(error = %e, "could not claim the off-site copy; the worker will make it");
            return;
        }
        let progress = CopyProgress::default();
        let copied = run
            .run_phase(
                Phase::Offsite,
                || progress.fraction(size),
                self.copy_offsite(backup, actor, &progress),
            )
            .await;
        match copied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => run.note(&format!("{e} It will be tried again.")).await,
            Err(e) => tracing::error!(error = %e, "could not record the off-site phase"),
        }
    }
}

/// What a failed off-site copy tells the channels.
fn copy_failed_notice(
    filename: &str,
    err: &Error,
    attempts: i32,
    next: Option<chrono::DateTime<chrono::Utc>>,
) -> crate::notify::Notice {
    crate::notify::Notice {
        title: "Off-site copy failed".into(),
        severity: crate::notify::Severity::Critical,
        happened: format!("The off-site copy of {filename} failed: {err}"),
        since: Some(chrono::Utc::now()),
        done: format!(
            "The backup is kept here, verified. The copy was tried {attempts} time{} and is tried \
             again{}, waiting longer after each failure. Until a copy is verified, this backup \
             does not count towards the recovery point objective.",
            if attempts == 1 { "" } else { "s" },
            next.map(|n| format!(" at {}", n.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        ),
        todo: "Check the off-site target's settings and that it can be reached (the console's \
               off-site card shows its health); the copy is retried by itself."
            .into(),
        backup: Some(filename.to_owned()),
        job: None,
    }
}

/// The scratch file a drill fetches an off-site copy into (before its
/// `.partial` suffix): `<archive>.drill-<job>`.
pub(crate) fn drill_file(archive: &str, job: uuid::Uuid) -> String {
    format!("{archive}{DRILL_INFIX}{}", &job.simple().to_string()[..12])
}

/// What names a drill's scratch file after its archive's name.
pub(crate) const DRILL_INFIX: &str = ".drill-";
