//! A restore job's phases, in the order of [`lms_types::phases::RESTORE`]:
//! the gates, the restore into a copy (each table fingerprinted as soon as
//! its data is in), the comparison with the backup, then the switch.

use std::collections::HashMap;
use std::process::Stdio;

use lms_types::Phase;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::carry::DatabaseProfile;
use super::gates::Room;
use super::SwapReport;
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::run::JobRun;
use crate::postgres::archive::{DataLoadWatcher, Reading, TableProgress};
use crate::postgres::fingerprint::{
    self, BucketSums, Fingerprint, HashMethod, KeyRanges, TableFingerprint, TableRef,
};
use crate::postgres::grants;
use crate::postgres::names::{copy_name, drill_name, prepared_name};
use crate::postgres::process::follow_stderr;
use crate::records::diff::CopySums;
use crate::storage::{ArchiveSource, Manifest};
use crate::{Error, Result};

/// pg_restore's parallel jobs at most: one per core up to here; past it the
/// copy's disk, not the CPU, is what a restore waits on.
const MAX_RESTORE_JOBS: usize = 4;

/// What the gates found, for the steps after them.
struct Gates {
    source: ArchiveSource,
    manifest: Option<Manifest>,
    privileges: grants::ArchivePrivileges,
    /// "schema.name" of the archive's tables.
    tables: Vec<String>,
    profile: DatabaseProfile,
    /// What the copy may take of the disk (`None`: the disk cannot be seen).
    room: Option<Room>,
}

/// The copy being built and what it will be checked against.
struct Copy {
    name: String,
    pool: PgPool,
    /// What the backup recorded (`None` for an upload never restored before).
    expected: Option<Fingerprint>,
    /// Tables fingerprinted while pg_restore was still working on others.
    early: HashMap<String, TableFingerprint>,
    /// Tables to sum by ranges of their key as they are fingerprinted
    /// ("schema.name"; a preview's, for its comparison), and those summed.
    ranges: HashMap<String, KeyRanges>,
    sums: HashMap<String, BucketSums>,
    /// pg_restore's parallel jobs (and the checks' connections).
    jobs: usize,
}

impl Engine {
    /// The whole restore of `backup`, phase by phase.
    pub(super) async fn restore_pipeline(
        &self,
        run: &JobRun,
        backup: &Backup,
    ) -> Result<SwapReport> {
        let gates = self.restore_gates(run, backup).await?;
        // Only once every gate passed is anything made, even beside the
        // live database.
        let shadow = copy_name(self.dbs().lms_name(), run.job().id);
        run.enter(Phase::Restoring).await?;
        self.create_copy(&shadow).await?;
        let copy = self
            .restore_into_copy(run, &gates, shadow, HashMap::new())
            .await?;
        self.check_copy(run, backup, copy, &gates.profile).await
    }

    /// Verifying: every gate before anything changes.
    async fn restore_gates(&self, run: &JobRun, backup: &Backup) -> Result<Gates> {
        run.enter(Phase::Verifying).await?;
        let backup = &self.ensure_local(backup).await?;
        let manifest = catalog::get(&self.dbs().control, backup.id).await?.manifest;
        let (source, tables) = self.check_archive(backup, manifest.as_ref()).await?;
        self.remaining_gates(run, source, tables, manifest).await
    }

    /// The gates of a drill of an archive fetched from its off-site copy
    /// into `path` (already checked against `manifest`).
    async fn fetched_gates(
        &self,
        run: &JobRun,
        backup: &Backup,
        path: std::path::PathBuf,
        manifest: Manifest,
    ) -> Result<Gates> {
        run.enter(Phase::Verifying).await?;
        let (source, tables) = self
            .check_fetched_archive(&backup.filename, path, &manifest)
            .await?;
        self.remaining_gates(run, source, tables, Some(manifest))
            .await
    }

    /// The gates after the archive's: privileges, roles, settings, room.
    async fn remaining_gates(
        &self,
        run: &JobRun,
        source: ArchiveSource,
        tables: Vec<String>,
        manifest: Option<Manifest>,
    ) -> Result<Gates> {
        // Independent of each other, so checked at once; a failure is said
        // in this order whatever finished first.
        let (allowed, privileges, profile, room) = tokio::join!(
            self.check_restore_privileges(),
            async {
                let privileges = grants::inspect(&self.tools().pg_restore, &source).await?;
                self.check_roles_exist(&privileges.roles).await?;
                Ok::<_, Error>(privileges)
            },
            self.live_database_profile(),
            self.check_room_for_copy(run, manifest.as_ref()),
        );
        allowed?;
        let (privileges, profile, room) = (privileges?, profile?, room?);
        Ok(Gates {
            source,
            manifest,
            privileges,
            tables,
            profile,
            room,
        })
    }

    /// Restoring (the phase entered by the caller): the fresh copy `shadow`
    /// (just created, empty) filled by
    /// pg_restore; each table is fingerprinted as soon as its data is in,
    /// while pg_restore goes on with the others and with the indexes.
    async fn restore_into_copy(
        &self,
        run: &JobRun,
        gates: &Gates,
        shadow: String,
        ranges: HashMap<String, KeyRanges>,
    ) -> Result<Copy> {
        let dbs = self.dbs();
        let manifest = gates.manifest.as_ref();
        let login = self.open_restore_role().await?;
        let weights: Vec<TableRef> = manifest
            .and_then(|m| m.tables.as_ref())
            .map(|ts| {
                ts.iter()
                    .map(|t| TableRef {
                        schema: t.schema.clone(),
                        name: t.name.clone(),
                        size_bytes: t.size_bytes,
                    })
                    .collect()
            })
            // No table record yet (an upload before its first restore):
            // the archive's tables, of equal weight.
            .unwrap_or_else(|| {
                gates
                    .tables
                    .iter()
                    .filter_map(|t| t.split_once('.'))
                    .map(|(schema, name)| TableRef {
                        schema: schema.to_owned(),
                        name: name.to_owned(),
                        size_bytes: 0,
                    })
                    .collect()
            });
        let progress = TableProgress::new(&weights);
        let expected = manifest.and_then(|m| {
            Some(Fingerprint {
                tables: m.tables.clone()?,
                sequences: m.sequences.clone()?,
            })
        });
        let input = gates.source.input().await?;
        // An archive kept encrypted reaches pg_restore as one stream, which
        // it reads with one job.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs_n = if input.is_seekable() {
            cores.clamp(1, MAX_RESTORE_JOBS)
        } else {
            1
        };
        // The copy is read and migrated as the restore role too: whatever the
        // archive left in it (a row-security policy, a trigger) runs with
        // that role's rights, never the application's.
        let shadow_pool = PgPoolOptions::new()
            .max_connections(jobs_n as u32 + 1)
            .connect_lazy_with(login.options.clone().database(&shadow));
        let (loaded_tx, loaded_rx) = tokio::sync::mpsc::unbounded_channel();
        let early = tokio::spawn(fingerprint_as_loaded(
            shadow_pool.clone(),
            expected.clone(),
            loaded_rx,
            ranges.clone(),
        ));
        let connection = dbs
            .tool_connection_as(&login.user, &login.password, Some(&shadow))
            .await?;
        let mut cmd = connection.command(&self.tools().pg_restore);
        // Objects are owned by the restore role until the copy is taken
        // over; their privileges (GRANT/REVOKE) are restored as the archive
        // has them, default privileges excepted (see `grants`).
        cmd.args([
            "--no-owner",
            "--exit-on-error",
            "--verbose",
            "--no-password",
        ])
        .arg(format!("--jobs={jobs_n}"))
        .arg(format!(
            "--use-list={}",
            gates.privileges.restore_list.path().display()
        ))
        .arg(format!("--dbname={shadow}"));
        if gates.privileges.default_privileges_skipped > 0 {
            run.note(&format!(
                "The backup's default privileges (ALTER DEFAULT PRIVILEGES, {} entries) were not \
                 restored: the live database's are kept, so tables created later get the grants \
                 they get today.",
                gates.privileges.default_privileges_skipped
            ))
            .await;
        }
        if input.is_seekable() {
            run.note(&format!(
                "pg_restore loaded the copy with {jobs_n} parallel job{}: one per CPU core this \
                 machine has ({cores}), at most {MAX_RESTORE_JOBS}.",
                if jobs_n == 1 { "" } else { "s" }
            ))
            .await;
        } else {
            run.note(
                "The backup is kept encrypted, so pg_restore read it as it was decrypted, with one \
                 job rather than several.",
            )
            .await;
        }
        let mut tool = Reading::spawn(cmd, input, Stdio::null())?;
        let stderr = tool.child().stderr.take().expect("stderr is piped");
        let follower = {
            let progress = progress.clone();
            let mut watcher = DataLoadWatcher::default();
            follow_stderr(stderr, move |line| {
                progress.on_line(line);
                if let Some(table) = watcher.on_line(line) {
                    let _ = loaded_tx.send(table);
                }
            })
        };
        let watched = async {
            tokio::select! {
                tail = follower => Ok(tail),
                err = self.watch_copy_growth(&shadow, gates.room) => Err(err),
            }
        };
        let tail = run
            .run_phase(Phase::Restoring, || progress.fraction(), watched)
            .await??;
        tool.wait(tail).await?;
        if let Some(outgrown) = self.copy_outgrew(&shadow, gates.room).await {
            return Err(outgrown);
        }
        let (early, sums) = early
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(Copy {
            name: shadow,
            pool: shadow_pool,
            expected,
            early,
            ranges,
            sums,
            jobs: jobs_n,
        })
    }

    /// A restore drill of `backup`: the restore's gates and its restore into
    /// a scratch database, the same comparison and migrations, then the LMS
    /// smoke queries. The scratch database is dropped by the caller.
    pub(super) async fn drill_pipeline(
        &self,
        run: &JobRun,
        backup: &Backup,
    ) -> Result<super::drill::Smoke> {
        // With a verified off-site copy, the drill reads that copy, as a
        // restore on a new host would.
        let began = std::time::Instant::now();
        let gates = async {
            match self.fetch_for_drill(backup, run.job().id).await? {
                Some((path, manifest)) => {
                    run.note(
                        "Drilled from the off-site copy: fetched and checked against the \
                         manifest, as a restore on a new host would read it.",
                    )
                    .await;
                    self.fetched_gates(run, backup, path, manifest).await
                }
                None => self.restore_gates(run, backup).await,
            }
        };
        // A drill changes nothing, whatever happens (its scratch database is
        // dropped at its end), so the empty scratch database is made while
        // the gates are checked; a gate's refusal is what the drill says.
        let shadow = drill_name(self.dbs().lms_name(), run.job().id);
        let (gates, created) = tokio::join!(gates, self.create_copy(&shadow));
        let gates = gates?;
        created?;
        let gated = began.elapsed();
        run.enter(Phase::Restoring).await?;
        let copy = self
            .restore_into_copy(run, &gates, shadow, HashMap::new())
            .await?;
        let restored = began.elapsed();
        let since = std::time::Instant::now();
        let smoke = run
            .run_phase(
                Phase::Checking,
                || time_share(since.elapsed(), CHECKS_USUALLY_TAKE),
                async {
                    let (_, pool, _) = self.verify_copy(backup, copy).await?;
                    let verified = began.elapsed();
                    let smoke = super::drill::smoke_queries(&pool).await;
                    pool.close().await;
                    Ok::<_, Error>((verified, smoke?))
                },
            )
            .await??;
        let (verified, smoke) = smoke;
        tracing::info!(
            gates_ms = gated.as_millis() as u64,
            restore_ms = (restored - gated).as_millis() as u64,
            checks_ms = (verified - restored).as_millis() as u64,
            smoke_ms = (began.elapsed() - verified).as_millis() as u64,
            "restore drill's steps"
        );
        Ok(smoke)
    }

    /// Preview changes: the restore's gates and its restore into a copy
    /// that is kept (`<db>_prepared_<job>`), checked against the backup and
    /// migrated as a restore's copy is. Returns its name; the caller records
    /// it and compares it with the live database (in the checking phase).
    pub(super) async fn preview_pipeline(
        &self,
        run: &JobRun,
        backup: &Backup,
    ) -> Result<(String, CopySums)> {
        // The copy's side of the comparison is summed as the copy is
        // fingerprinted, in the same scans, by ranges of the keys the live
        // tables have now (see `records::diff::CopySums`).
        let (gates, ranges) = tokio::join!(self.restore_gates(run, backup), async {
            let live = self.live_pool_in_utc(1);
            let ranges = crate::records::diff::plan_ranges(&live).await;
            live.close().await;
            ranges
        },);
        let gates = gates?;
        let name = prepared_name(self.dbs().lms_name(), run.job().id);
        run.enter(Phase::Restoring).await?;
        self.create_copy(&name).await?;
        let copy = self.restore_into_copy(run, &gates, name, ranges).await?;
        run.enter(Phase::Checking).await?;
        let ranges = copy.ranges.clone();
        let (name, pool, sums) = self.verify_copy(backup, copy).await?;
        pool.close().await;
        Ok((name, CopySums::new(ranges, sums)))
    }

    /// Switching to a prepared copy: checked once more against the backup
    /// (nothing may have changed it while it waited), taken over, given the
    /// live database's properties, then the restore's switch.
    pub(super) async fn switch_pipeline(
        &self,
        run: &JobRun,
        backup: &Backup,
        prepared: &str,
    ) -> Result<SwapReport> {
        run.enter(Phase::Checking).await?;
        let manifest = catalog::get(&self.dbs().control, backup.id).await?.manifest;
        let expected = manifest.and_then(|m| {
            Some(Fingerprint {
                tables: m.tables?,
                sequences: m.sequences?,
            })
        });
        let login = self.open_restore_role().await?;
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .connect_lazy_with(login.options.clone().database(prepared));
        let copy = Copy {
            name: prepared.to_owned(),
            pool,
            expected,
            early: HashMap::new(),
            ranges: HashMap::new(),
            sums: HashMap::new(),
            jobs: 2,
        };
        let profile = self.live_database_profile().await?;
        let shadow = self.check_and_prepare_copy(backup, copy, &profile).await?;
        sqlx::query("DELETE FROM prepared_copies WHERE database_name = $1")
            .bind(&shadow)
            .execute(&self.dbs().control)
            .await?;
        run.enter(Phase::Switching).await?;
        self.swap_in(&shadow, run.job().id).await
    }

    /// Checking, then the switch. Nothing reports how far the checks are,
    /// so the bar moves with the time they usually take (never reaching the
    /// switch's share before they are done).
    async fn check_copy(
        &self,
        run: &JobRun,
        backup: &Backup,
        copy: Copy,
        profile: &DatabaseProfile,
    ) -> Result<SwapReport> {
        let since = std::time::Instant::now();
        let shadow = run
            .run_phase(
                Phase::Checking,
                || time_share(since.elapsed(), CHECKS_USUALLY_TAKE),
                self.check_and_prepare_copy(backup, copy, profile),
            )
            .await??;
        run.enter(Phase::Switching).await?;
        self.swap_in(&shadow, run.job().id).await
    }

    /// The copy equals the backup, its schema is brought up to date, and it
    /// is taken over. Returns its name.
    async fn check_and_prepare_copy(
        &self,
        backup: &Backup,
        copy: Copy,
        profile: &DatabaseProfile,
    ) -> Result<String> {
        let (shadow, shadow_pool, _) = self.verify_copy(backup, copy).await?;
        shadow_pool.close().await;
        self.take_over_copy(&shadow).await?;
        self.carry_to_copy(&shadow, profile).await?;
        Ok(shadow)
    }

    /// The copy equals the backup (what was not fingerprinted during the
    /// restore is now) and its schema is brought up to date by the app's
    /// migrations. Returns its name, a pool on it (as the restore role) and
    /// the sums of the tables it was asked to sum by ranges (none when a
    /// migration changed the copy after they were taken).
    async fn verify_copy(
        &self,
        backup: &Backup,
        copy: Copy,
    ) -> Result<(String, PgPool, HashMap<String, BucketSums>)> {
        let Copy {
            name: shadow,
            pool: shadow_pool,
            expected,
            mut early,
            ranges,
            mut sums,
            jobs: jobs_n,
        } = copy;
        let actual = {
            let tables = fingerprint::list_tables(&mut *shadow_pool.acquire().await?).await?;
            let rest: Vec<TableRef> = tables
                .iter()
                .filter(|t| !early.contains_key(&qualified(&t.schema, &t.name)))
                .cloned()
                .collect();
            tracing::info!(
                during_restore = tables.len() - rest.len(),
                after = rest.len(),
                "fingerprinting the copy"
            );
            let (mut late, late_sums) = fingerprint::fingerprint_quiescent_summed(
                &shadow_pool,
                &rest,
                expected.as_ref(),
                jobs_n,
                &ranges,
            )
            .await?;
            sums.extend(late_sums);
            let mut late_tables = late.tables.drain(..);
            let all = tables
                .iter()
                .map(|t| match early.remove(&qualified(&t.schema, &t.name)) {
                    Some(f) => Ok(TableFingerprint {
                        size_bytes: t.size_bytes,
                        ..f
                    }),
                    None => late_tables
                        .next()
                        .ok_or_else(|| Error::Io(std::io::Error::other("fingerprint out of step"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Fingerprint {
                tables: all,
                sequences: late.sequences,
            }
        };
        match expected {
            Some(expected) => {
                let diffs = expected.differences(&actual);
                if !diffs.is_empty() {
                    tracing::error!(?diffs, "restored copy differs from the backup");
                    return Err(Error::Invalid(format!(
                        "The restored copy does not match the backup ({}); nothing was changed.",
                        diffs.first().cloned().unwrap_or_default()
                    )));
                }
            }
            // An uploaded archive: its fingerprint is what its first restore produced.
            None => self.record_fingerprint(backup, &actual).await?,
        }
        let applied = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(&shadow_pool)
                .await
                .ok()
        };
        let before = if sums.is_empty() {
            None
        } else {
            applied().await
        };
        self.dbs().migrate_lms_copy(&shadow_pool).await?;
        if before.is_none() || before != applied().await {
            // Migrated (or of unknown migrations): what was summed may
            // have changed since.
            sums.clear();
        }
        Ok((shadow, shadow_pool, sums))
    }

    /// Stores a fingerprint in a backup's manifest (catalog and sidecar).
    async fn record_fingerprint(&self, backup: &Backup, fingerprint: &Fingerprint) -> Result<()> {
        let detail = catalog::get(&self.dbs().control, backup.id).await?;
        let Some(mut manifest) = detail.manifest else {
            return Ok(());
        };
        manifest.tables = Some(fingerprint.tables.clone());
        manifest.sequences = Some(fingerprint.sequences.clone());
        self.backup_dir().write_manifest(&manifest).await?;
        catalog::mark_completed(&self.dbs().control, backup.id, &manifest).await
    }
}

fn qualified(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// About how long the checks after a restore take on a small database.
const CHECKS_USUALLY_TAKE: std::time::Duration = std::time::Duration::from_secs(2);

/// The share of a step of unknown length done after `elapsed`, for one that
/// usually takes `usual`: quick at first, then slower, never all of it.
fn time_share(elapsed: std::time::Duration, usual: std::time::Duration) -> f64 {
    let share = 1.0 - (-elapsed.as_secs_f64() / usual.as_secs_f64().max(0.001)).exp();
    share.min(0.95)
}

/// Fingerprints the tables named on `loaded` ("schema.name", data complete)
/// until the channel closes. Tables the backup did not record are skipped
/// (partitions, covered by their parent); a table that cannot be done here
/// is simply left for the check after the restore.
async fn fingerprint_as_loaded(
    pool: sqlx::PgPool,
    expected: Option<Fingerprint>,
    mut loaded: tokio::sync::mpsc::UnboundedReceiver<String>,
    ranges: HashMap<String, KeyRanges>,
) -> (
    HashMap<String, TableFingerprint>,
    HashMap<String, BucketSums>,
) {
    let methods: Option<HashMap<String, HashMethod>> = expected.map(|e| {
        e.tables
            .into_iter()
            .map(|t| (qualified(&t.schema, &t.name), t.method))
            .collect()
    });
    let mut done = HashMap::new();
    let mut sums = HashMap::new();
    let mut busy = std::time::Duration::ZERO;
    while let Some(table) = loaded.recv().await {
        let method = match &methods {
            Some(methods) => match methods.get(&table) {
                Some(&method) => method,
                None => continue,
            },
            None => HashMethod::Columns,
        };
        let Some((schema, name)) = table.split_once('.').filter(|(_, n)| !n.contains('.')) else {
            continue;
        };
        let t = TableRef {
            schema: schema.to_owned(),
            name: name.to_owned(),
            size_bytes: 0,
        };
        let began = std::time::Instant::now();
        let result = async {
            // One process per fingerprint: a parallel scan's workers would
            // take the cores from pg_restore's jobs, which are still loading.
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
                .execute(&mut *tx)
                .await?;
            let f = fingerprint::table_fingerprint_summed(&mut tx, &t, method, ranges.get(&table))
                .await?;
            tx.commit().await?;
            Ok::<_, Error>(f)
        }
        .await;
        busy += began.elapsed();
        match result {
            Ok((f, summed)) => {
                if let Some(summed) = summed {
                    sums.insert(table.clone(), summed);
                }
                done.insert(table, f);
            }
            Err(e) => tracing::debug!(error = %e, %table, "left for the check after the restore"),
        }
    }
    tracing::debug!(
        tables = done.len(),
        ms = busy.as_millis() as u64,
        "fingerprinted tables while the restore went on"
    );
    (done, sums)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::time_share;

    #[test]
    fn a_step_of_unknown_length_moves_but_never_finishes() {
        let usual = Duration::from_secs(2);
        let shares: Vec<f64> = [0, 1, 2, 4, 60]
            .iter()
            .map(|s| time_share(Duration::from_secs(*s), usual))
            .collect();
        assert_eq!(shares[0], 0.0);
        assert!(shares.windows(2).all(|w| w[0] <= w[1]), "{shares:?}");
        assert!(shares[1] > 0.3, "moves at once: {shares:?}");
        assert!(shares[4] <= 0.95, "{shares:?}");
    }
}
