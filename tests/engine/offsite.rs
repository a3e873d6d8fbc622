//! Off-site copies against a real S3-compatible server on the loopback
//! (started by `scripts/test.sh`): each backup sent in parts, read back and
//! checked; a target that cannot be used fails loud and the copy is made
//! later; an object deleted behind the product's back is found; a deleted
//! backup's copy goes with it.

use lms_backup::offsite::OFFSITE_ACTOR;
use lms_backup::testing::{
    actor, fresh_bucket, incomplete_uploads, live_fingerprint, s3_request, s3_target,
    spawn_engine_with, start_manual_backup, wait_for_job, CuttableProxy,
};
use lms_backup::{catalog, Engine};
use lms_types::{BackupStatus, JobStatus, OffsiteState};

async fn backup(engine: &Engine) -> (lms_backup::jobs::Job, catalog::Backup) {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let row = catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    (job, row)
}

/// The audit entries of `action` for `target`: (actor, outcome, detail).
async fn audited(
    engine: &Engine,
    action: &str,
    target: &str,
) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT actor_name, outcome, detail FROM audit_log WHERE action = $1 AND target = $2 ORDER BY id",
    )
    .bind(action)
    .bind(target)
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_backup_is_sent_in_parts_read_back_and_verified() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| {
        let mut target = s3_target(&bucket, "lms/prod");
        // A part limit this low makes the parts larger than the smallest
        // the server takes: the archive (about 2.6 MB) goes in 8 parts.
        target.max_parts = 8;
        c.offsite = Some(target);
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    assert!(engine.check_offsite().await.unwrap().is_ok());

    let (job, row) = backup(&engine).await;
    assert!(job.notes.is_empty(), "{:?}", job.notes);
    assert_eq!(row.offsite_state, Some(OffsiteState::Verified), "{row:?}");
    assert!(row.offsite_verified_at.is_some());
    let size = row.size_bytes.unwrap() as u64;
    assert!(size > 8 * (64 << 10), "an archive worth 8 parts: {size}");

    // The object is the archive, sent in 8 parts (S3's multipart ETag ends
    // in the number of parts), and the manifest sits beside it, readable.
    let key = format!("/{bucket}/lms/prod/{}", row.filename);
    let (status, head, body) = s3_request("GET", &key, b"").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("-8\""), "8 parts: {head}");
    let local = std::fs::read(engine.config().backup_dir.join(&row.filename)).unwrap();
    assert!(body == local, "the object is the archive");
    let manifest = engine
        .offsite()
        .unwrap()
        .read_manifest(&row.filename)
        .await
        .unwrap();
    assert_eq!(Some(manifest.sha256), row.sha256);
    assert_eq!(manifest.tables.unwrap().len(), 7, "the whole manifest");
    assert_eq!(incomplete_uploads(&bucket).await, 0);
    let entries = audited(&engine, "offsite.copy", &row.filename).await;
    assert_eq!(entries, [("alice".to_owned(), "success".to_owned(), None)]);
}

#[tokio::test]
async fn a_missing_bucket_fails_loud_leaves_the_backup_completed_and_is_copied_later() {
    let bucket = format!("t-missing-{}", uuid::Uuid::new_v4().simple());
    let engine = spawn_engine_with(|c| {
        c.offsite = Some(s3_target(&bucket, ""));
        c.offsite_retry_after = std::time::Duration::ZERO;
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let problem = engine
        .check_offsite()
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        problem.contains(&format!("bucket {bucket} does not exist")),
        "{problem}"
    );

    let (job, row) = backup(&engine).await;
    assert_eq!(row.status, BackupStatus::Completed);
    assert_eq!(row.offsite_state, Some(OffsiteState::Failed));
    let reason = row.offsite_error.unwrap();
    assert!(reason.contains("does not exist"), "{reason}");
    assert!(
        job.notes
            .iter()
            .any(|n| n.contains("does not exist") && n.contains("tried again")),
        "{:?}",
        job.notes
    );
    let status = engine.offsite_status().await.unwrap().unwrap();
    assert!(status.problem.unwrap().contains("does not exist"));
    assert_eq!((status.verified, status.unverified), (0, 1));

    // The bucket is made: the next pass copies the backup.
    s3_request("PUT", &format!("/{bucket}"), b"").await;
    let report = engine.offsite_pass().await.unwrap();
    assert_eq!(report.verified, std::slice::from_ref(&row.filename));
    let row = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(row.offsite_state, Some(OffsiteState::Verified));
    assert_eq!(row.offsite_error, None);
    let status = engine.offsite_status().await.unwrap().unwrap();
    assert_eq!(
        (status.problem, status.verified, status.unverified),
        (None, 1, 0)
    );
    let entries = audited(&engine, "offsite.copy", &row.filename).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].1, "failure");
    assert_eq!(
        (entries[1].0.as_str(), entries[1].1.as_str()),
        (OFFSITE_ACTOR, "success")
    );
}

#[tokio::test]
async fn an_unreachable_target_is_said_in_words() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = spawn_engine_with(|c| {
        let mut target = s3_target("nowhere", "");
        let lms_backup::storage::offsite::TargetConfig::S3(s3) = &mut target.target;
        s3.endpoint = Some(format!("http://127.0.0.1:{port}"));
        c.offsite = Some(target);
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let problem = engine
        .check_offsite()
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(problem.contains("cannot be reached"), "{problem}");
    assert!(!problem.contains("test-secret-key") && !problem.contains("test-access-key"));
    let (_, row) = backup(&engine).await;
    assert_eq!(row.status, BackupStatus::Completed);
    assert_eq!(row.offsite_state, Some(OffsiteState::Failed));
    assert!(row.offsite_error.unwrap().contains("cannot be reached"));
}

#[tokio::test]
async fn a_copy_deleted_out_of_band_is_found_missing_and_copied_again() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, "p"))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (_, row) = backup(&engine).await;
    assert_eq!(row.offsite_state, Some(OffsiteState::Verified));
    assert_eq!(
        engine.offsite_pass().await.unwrap(),
        Default::default(),
        "nothing to do"
    );

    let key = format!("/{bucket}/p/{}", row.filename);
    let (status, _, _) = s3_request("DELETE", &key, b"").await;
    assert_eq!(status, 204);
    let report = engine.offsite_pass().await.unwrap();
    assert_eq!(report.found_missing, std::slice::from_ref(&row.filename));
    assert_eq!(
        report.verified,
        std::slice::from_ref(&row.filename),
        "copied again"
    );
    let missing = audited(&engine, "offsite.missing", &row.filename).await;
    assert_eq!(missing.len(), 1);
    assert!(missing[0]
        .2
        .as_deref()
        .unwrap()
        .contains("deleted out of band"));
    let (status, _, _) = s3_request("HEAD", &key, b"").await;
    assert_eq!(status, 200);
}

/// A local file changed since it was verified is never completed
/// off-site: its bytes are hashed as they are sent, and the upload is
/// aborted when they are not the manifest's.
#[tokio::test]
async fn a_local_file_changed_since_it_was_verified_is_not_copied() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| {
        c.offsite = Some(s3_target(&bucket, ""));
        c.offsite_retry_after = std::time::Duration::ZERO;
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (_, row) = backup(&engine).await;
    let key = format!("/{bucket}/{}", row.filename);
    assert_eq!(s3_request("DELETE", &key, b"").await.0, 204);
    let path = engine.config().backup_dir.join(&row.filename);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let report = engine.offsite_pass().await.unwrap();
    assert_eq!(report.failed, std::slice::from_ref(&row.filename));
    let row = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(row.offsite_state, Some(OffsiteState::Failed));
    let reason = row.offsite_error.unwrap();
    assert!(
        reason.contains("no longer matches its checksum"),
        "{reason}"
    );
    assert_eq!(
        s3_request("HEAD", &key, b"").await.0,
        404,
        "never completed"
    );
    assert_eq!(incomplete_uploads(&bucket).await, 0, "aborted");
}

#[tokio::test]
async fn a_deleted_backup_takes_its_off_site_copy_with_it() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (_, row) = backup(&engine).await;
    let key = format!("/{bucket}/{}", row.filename);
    assert_eq!(s3_request("HEAD", &key, b"").await.0, 200);

    engine.delete_backup(row.id, &actor("alice")).await.unwrap();
    assert_eq!(s3_request("HEAD", &key, b"").await.0, 404);
    let manifest = format!("/{bucket}/metadata/{}.json", row.filename);
    assert_eq!(s3_request("HEAD", &manifest, b"").await.0, 404);
    let entries = audited(&engine, "offsite.delete", &row.filename).await;
    assert_eq!(entries, [("alice".to_owned(), "success".to_owned(), None)]);
}

/// The target goes away in the middle of an upload (a proxy in front of it
/// cuts every connection once 1 MB has gone through): the backup is
/// completed locally, its copy failed and said so; the incomplete upload
/// the target could not be told to abort is aborted once it is back, and
/// the next pass makes the copy.
#[tokio::test]
async fn a_target_lost_mid_upload_leaves_no_incomplete_upload_and_the_copy_is_made_later() {
    let bucket = fresh_bucket().await;
    let s3 = lms_backup::testing::s3_endpoint();
    let proxy = CuttableProxy::start(s3.trim_start_matches("http://")).await;
    let engine = spawn_engine_with(|c| {
        let mut target = s3_target(&bucket, "");
        let lms_backup::storage::offsite::TargetConfig::S3(s3) = &mut target.target;
        s3.endpoint = Some(format!("http://{}", proxy.addr));
        target.request_retry_timeout = std::time::Duration::from_millis(500);
        c.offsite = Some(target);
        c.offsite_retry_after = std::time::Duration::ZERO;
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    proxy.cut_after(1 << 20);

    let (job, row) = backup(&engine).await;
    assert!(proxy.is_cut(), "the target went away mid-upload");
    assert_eq!(row.status, BackupStatus::Completed);
    assert_eq!(row.offsite_state, Some(OffsiteState::Failed));
    assert!(
        job.notes.iter().any(|n| n.contains("off-site copy")),
        "{:?}",
        job.notes
    );
    assert_eq!(
        incomplete_uploads(&bucket).await,
        1,
        "the upload begun could not be aborted while the target was away"
    );

    proxy.heal();
    let report = engine.offsite_pass().await.unwrap();
    assert_eq!(report.verified, std::slice::from_ref(&row.filename));
    assert_eq!(incomplete_uploads(&bucket).await, 0, "aborted once back");
    let row = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(row.offsite_state, Some(OffsiteState::Verified));
}

/// The local file is deleted: a download and a restore fetch it back from
/// the off-site copy, checked, and the restore gives back the backup.
#[tokio::test]
async fn a_backup_gone_here_is_downloaded_and_restored_from_its_off_site_copy() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (_, row) = backup(&engine).await;
    let at_backup = live_fingerprint(&engine).await;
    let local = engine.config().backup_dir.join(&row.filename);
    let bytes = std::fs::read(&local).unwrap();

    std::fs::remove_file(&local).unwrap();
    let download = engine.open_download(row.id).await.unwrap();
    assert_eq!(download.size, bytes.len() as u64);
    assert_eq!(std::fs::read(&local).unwrap(), bytes, "fetched back whole");

    std::fs::remove_file(&local).unwrap();
    // The backup is noticed missing, as a start-up or a retention pass does.
    engine.check_backup_files(&actor("alice")).await.unwrap();
    let row = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Missing);
    run_sql(&engine, "DELETE FROM enrollments").await;
    let job = restore(&engine, row.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(at_backup
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    let row = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Completed, "its file is back");
    let found = audited(&engine, "backup.found", &row.filename).await;
    assert!(found
        .iter()
        .any(|(who, outcome, _)| who == OFFSITE_ACTOR && outcome == "success"));
}

/// The off-site copy was replaced by other bytes while the local file is
/// gone: the restore is refused before anything changes, and nothing of
/// the fetched copy stays.
#[tokio::test]
async fn a_changed_off_site_copy_is_refused_before_anything_changes() {
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (_, row) = backup(&engine).await;
    let local = engine.config().backup_dir.join(&row.filename);
    let mut bytes = std::fs::read(&local).unwrap();
    std::fs::remove_file(&local).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let (status, _, _) = s3_request("PUT", &format!("/{bucket}/{}", row.filename), &bytes).await;
    assert_eq!(status, 200);
    let before = live_fingerprint(&engine).await;

    let job = restore(&engine, row.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let message = job.message.unwrap();
    assert!(message.contains("does not match its manifest"), "{message}");
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    let left: Vec<_> = std::fs::read_dir(&engine.config().backup_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup_"))
        .collect();
    assert!(left.is_empty(), "nothing of the copy kept: {left:?}");
    assert!(engine.open_download(row.id).await.is_err());
}

/// Against a server that checks signatures: a wrong secret is said to be
/// the credentials (never repeated), at the check and on the backup, and
/// the right one copies.
#[tokio::test]
async fn wrong_credentials_are_said_to_be_the_credentials_and_the_right_ones_copy() {
    let prefix = format!("t-{}", uuid::Uuid::new_v4().simple());
    let wrong = lms_backup::testing::guarded_s3_target(false, &prefix);
    let secret = match &wrong.target {
        lms_backup::storage::offsite::TargetConfig::S3(s3) => {
            s3.secret_access_key.clone().unwrap().expose().to_owned()
        }
    };
    let engine = spawn_engine_with(|c| {
        c.offsite = Some(wrong);
        c.offsite_retry_after = std::time::Duration::ZERO;
    })
    .await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let problem = engine
        .check_offsite()
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        problem.contains("refused the credentials") && problem.contains("AWS_SECRET_ACCESS_KEY"),
        "{problem}"
    );
    let (job, row) = backup(&engine).await;
    assert_eq!(row.status, BackupStatus::Completed);
    assert_eq!(row.offsite_state, Some(OffsiteState::Failed));
    let reason = row.offsite_error.unwrap();
    assert!(reason.contains("refused the credentials"), "{reason}");
    let status = engine.offsite_status().await.unwrap().unwrap();
    let shown = status.problem.unwrap();
    assert!(shown.contains("refused the credentials"), "{shown}");
    for said in [&problem, &reason, &shown]
        .into_iter()
        .chain(job.notes.iter())
    {
        assert!(!said.contains(&secret), "the secret is never said: {said}");
    }

    // The right key: the next pass copies it.
    let mut config = engine.config().clone();
    config.offsite = Some(lms_backup::testing::guarded_s3_target(true, &prefix));
    let right = Engine::new(engine.dbs().clone(), engine.tools().clone(), config)
        .await
        .unwrap();
    assert!(right.check_offsite().await.unwrap().is_ok());
    let report = right.offsite_pass().await.unwrap();
    let after = catalog::get_row(&engine.dbs().control, row.id)
        .await
        .unwrap();
    assert_eq!(
        report.verified,
        std::slice::from_ref(&row.filename),
        "{:?}",
        after.offsite_error
    );
}

async fn restore(engine: &Engine, id: i64) -> lms_backup::jobs::Job {
    let job = engine
        .start_restore(id, true, &actor("alice"))
        .await
        .unwrap();
    wait_for_job(engine, job.id).await
}

async fn run_sql(engine: &Engine, sql: &str) {
    sqlx::raw_sql(sql).execute(&engine.dbs().lms).await.unwrap();
}

mod encrypted {
    //! Off-site copies encrypted in the age format: to recipients or to a
    //! passphrase; opened by the standard `age` tool; restored only with
    //! the key, which the error names by public key when it is missing or
    //! wrong; a new key for new backups leaves the old ones with theirs.

    use age::secrecy::ExposeSecret;
    use age::x25519::Identity;
    use lms_backup::storage::encryption::{DecryptionKeys, EncryptionConfig};
    use lms_backup::storage::offsite::Secret;

    use super::*;

    fn public(key: &Identity) -> String {
        key.to_public().to_string()
    }

    fn to(keys: &[&Identity]) -> Option<EncryptionConfig> {
        let keys: Vec<String> = keys.iter().map(|k| public(k)).collect();
        Some(EncryptionConfig::new(&keys, None).unwrap())
    }

    /// An identity file holding `keys`, one per line.
    fn opened_by(keys: &[&Identity]) -> DecryptionKeys {
        let text: String = keys
            .iter()
            .map(|k| format!("{}\n", k.to_string().expose_secret()))
            .collect();
        DecryptionKeys {
            identity_file: Some(Secret::new(text)),
            passphrase: None,
        }
    }

    /// Another engine on the same databases, backup directory and target,
    /// configured otherwise (another server, or the same after a restart).
    async fn same_place(
        engine: &Engine,
        adjust: impl FnOnce(&mut lms_backup::EngineConfig),
    ) -> Engine {
        let mut config = engine.config().clone();
        adjust(&mut config);
        Engine::new(engine.dbs().clone(), engine.tools().clone(), config)
            .await
            .unwrap()
    }

    fn encryption_of(
        detail: &catalog::BackupDetail,
    ) -> lms_backup::storage::encryption::Encryption {
        detail
            .manifest
            .clone()
            .unwrap()
            .encryption
            .expect("recorded as encrypted")
    }

    #[tokio::test]
    async fn an_encrypted_copy_opens_with_either_recipient_and_with_the_age_tool() {
        let bucket = fresh_bucket().await;
        let (first, second) = (Identity::generate(), Identity::generate());
        let engine = spawn_engine_with(|c| {
            c.offsite = Some(s3_target(&bucket, ""));
            c.encryption = to(&[&first, &second]);
        })
        .await;
        lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
        let (job, row) = backup(&engine).await;
        assert!(job.notes.is_empty(), "{:?}", job.notes);
        assert_eq!(row.offsite_state, Some(OffsiteState::Verified));
        let detail = catalog::get(&engine.dbs().control, row.id).await.unwrap();
        let encryption = encryption_of(&detail);
        assert_eq!(encryption.recipients, [public(&first), public(&second)]);
        assert!(!encryption.passphrase);
        // The manifest beside it says the same, readable without a key.
        let stored_manifest = engine
            .offsite()
            .unwrap()
            .read_manifest(&row.filename)
            .await
            .unwrap();
        assert_eq!(stored_manifest.encryption, Some(encryption.clone()));
        assert_eq!(
            Some(stored_manifest.sha256),
            row.sha256,
            "the archive's own SHA-256"
        );

        let (status, _, stored) =
            s3_request("GET", &format!("/{bucket}/{}", row.filename), b"").await;
        assert_eq!(status, 200);
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(stored.len() as u64, encryption.size_bytes);
        let local = std::fs::read(engine.config().backup_dir.join(&row.filename)).unwrap();
        assert!(local.starts_with(b"PGDMP"));
        assert!(
            !stored.windows(5).any(|w| w == b"PGDMP"),
            "not the archive in the clear"
        );

        // Break-glass: the standard age tool and the second key alone give
        // back the archive, which pg_restore reads.
        let plain = age_decrypt(&stored, &second);
        assert!(plain == local, "the archive, byte for byte");
        let dir = lms_backup::testing::scratch_dir("age-tool");
        let plain_file = dir.join("copy.dump");
        std::fs::write(&plain_file, &plain).unwrap();
        let listed = std::process::Command::new(&engine.tools().pg_restore)
            .arg("--list")
            .arg(&plain_file)
            .output()
            .unwrap();
        assert!(listed.status.success());
        assert!(String::from_utf8_lossy(&listed.stdout).contains("TABLE DATA public courses"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn an_encrypted_backup_restores_only_with_its_key_and_says_which() {
        let bucket = fresh_bucket().await;
        let key = Identity::generate();
        let engine = spawn_engine_with(|c| {
            c.offsite = Some(s3_target(&bucket, ""));
            c.encryption = to(&[&key]);
        })
        .await;
        lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
        let (_, row) = backup(&engine).await;
        let at_backup = live_fingerprint(&engine).await;
        std::fs::remove_file(engine.config().backup_dir.join(&row.filename)).unwrap();
        run_sql(&engine, "DELETE FROM enrollments").await;
        let changed = live_fingerprint(&engine).await;

        // No key set: refused, naming the key it needs.
        let job = restore(&engine, row.id).await;
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        let message = job.message.unwrap();
        assert!(
            message.contains("no key to open it is set") && message.contains(&public(&key)),
            "{message}"
        );
        // Another key: refused the same way.
        let wrong = same_place(&engine, |c| {
            c.decryption = opened_by(&[&Identity::generate()])
        })
        .await;
        let job = restore(&wrong, row.id).await;
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        let message = job.message.unwrap();
        assert!(
            message.contains("None of the keys set opens") && message.contains(&public(&key)),
            "{message}"
        );
        assert!(
            changed
                .differences(&live_fingerprint(&engine).await)
                .is_empty(),
            "nothing changed"
        );
        let left: Vec<_> = std::fs::read_dir(&engine.config().backup_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup_"))
            .collect();
        assert!(left.is_empty(), "nothing of the copy kept: {left:?}");

        // Its key: restored, the data as backed up.
        let right = same_place(&engine, |c| c.decryption = opened_by(&[&key])).await;
        let job = restore(&right, row.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        assert!(at_backup
            .differences(&live_fingerprint(&engine).await)
            .is_empty());
    }

    #[tokio::test]
    async fn a_new_key_applies_to_new_backups_and_the_old_ones_keep_theirs() {
        let bucket = fresh_bucket().await;
        let (old_key, new_key) = (Identity::generate(), Identity::generate());
        let before = spawn_engine_with(|c| {
            c.offsite = Some(s3_target(&bucket, ""));
            c.encryption = to(&[&old_key]);
        })
        .await;
        lms_backup::demo::seed(&before.dbs().lms, 1).await.unwrap();
        let (_, old) = backup(&before).await;
        let after = same_place(&before, |c| c.encryption = to(&[&new_key])).await;
        let (_, new) = backup(&after).await;
        let recipients = |id| {
            let engine = after.clone();
            async move {
                encryption_of(&catalog::get(&engine.dbs().control, id).await.unwrap()).recipients
            }
        };
        assert_eq!(recipients(old.id).await, [public(&old_key)]);
        assert_eq!(recipients(new.id).await, [public(&new_key)]);

        // With both keys, both restore from their copies.
        let both = same_place(&before, |c| c.decryption = opened_by(&[&old_key, &new_key])).await;
        for row in [&old, &new] {
            std::fs::remove_file(both.config().backup_dir.join(&row.filename)).unwrap();
            let job = restore(&both, row.id).await;
            assert_eq!(job.status, JobStatus::Succeeded, "{} {job:?}", row.filename);
        }
    }

    #[tokio::test]
    async fn a_passphrase_encrypts_alone_and_opens_its_backups() {
        let bucket = fresh_bucket().await;
        let passphrase = Secret::new("correct horse battery staple, off-site");
        let engine = spawn_engine_with(|c| {
            c.offsite = Some(s3_target(&bucket, ""));
            c.encryption = Some(EncryptionConfig::new(&[], Some(passphrase.clone())).unwrap());
            c.decryption = DecryptionKeys {
                identity_file: None,
                passphrase: Some(passphrase.clone()),
            };
        })
        .await;
        lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
        let (_, row) = backup(&engine).await;
        assert_eq!(row.offsite_state, Some(OffsiteState::Verified));
        let encryption = encryption_of(&catalog::get(&engine.dbs().control, row.id).await.unwrap());
        assert!(encryption.passphrase && encryption.recipients.is_empty());
        std::fs::remove_file(engine.config().backup_dir.join(&row.filename)).unwrap();
        let job = restore(&engine, row.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }

    /// Runs the standard `age` tool to decrypt `cipher` with `key`.
    fn age_decrypt(cipher: &[u8], key: &Identity) -> Vec<u8> {
        let dir = lms_backup::testing::scratch_dir("age-tool");
        let (cipher_file, key_file, plain_file) = (
            dir.join("in.age"),
            dir.join("key.txt"),
            dir.join("out.dump"),
        );
        std::fs::write(&cipher_file, cipher).unwrap();
        std::fs::write(&key_file, format!("{}\n", key.to_string().expose_secret())).unwrap();
        let out = std::process::Command::new("age")
            .arg("--decrypt")
            .arg("--identity")
            .arg(&key_file)
            .arg("--output")
            .arg(&plain_file)
            .arg(&cipher_file)
            .output()
            .expect("the age tool is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plain = std::fs::read(&plain_file).unwrap();
        std::fs::remove_dir_all(dir).ok();
        plain
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    }

    /// With ENCRYPT_LOCAL the backup directory holds only age files: made,
    /// proven by decrypting them into pg_restore, served as they are,
    /// restored only with the key (one pg_restore job, from the stream),
    /// and uploads are encrypted as they arrive.
    #[tokio::test]
    async fn backups_and_uploads_kept_encrypted_here_restore_only_with_the_key() {
        let key = Identity::generate();
        let engine = spawn_engine_with(|c| {
            c.encryption = to(&[&key]);
            c.encrypt_local = true;
        })
        .await;
        lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
        let (job, row) = backup(&engine).await;
        assert!(job.notes.is_empty(), "{:?}", job.notes);
        assert_eq!(row.offsite_state, None, "no target");
        let dir = engine.config().backup_dir.clone();
        let local = std::fs::read(dir.join(&row.filename)).unwrap();
        assert!(local.starts_with(b"age-encryption.org/v1\n"));
        assert!(!local.windows(5).any(|w| w == b"PGDMP"), "not in the clear");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup_"))
            .collect();
        assert_eq!(
            names,
            std::slice::from_ref(&row.filename),
            "no plain file left beside it"
        );

        // The catalog and the download are the file as kept; the manifest
        // also has the plain archive's SHA-256, which the age tool and the
        // key give back.
        assert_eq!(row.sha256.as_deref(), Some(sha256_hex(&local).as_str()));
        let manifest = catalog::get(&engine.dbs().control, row.id)
            .await
            .unwrap()
            .manifest
            .unwrap();
        let kept = manifest
            .kept_encrypted()
            .expect("recorded as kept encrypted");
        assert_eq!(kept.recipients, [public(&key)]);
        let sidecar: lms_backup::storage::Manifest = serde_json::from_slice(
            &std::fs::read(dir.join("metadata").join(format!("{}.json", row.filename))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            sidecar.encryption, manifest.encryption,
            "the sidecar says so too"
        );
        let plain = age_decrypt(&local, &key);
        assert!(plain.starts_with(b"PGDMP"));
        assert_eq!(
            (plain.len() as u64, sha256_hex(&plain)),
            (manifest.size_bytes, manifest.sha256.clone())
        );
        let download = engine.open_download(row.id).await.unwrap();
        assert!(download.encrypted);
        assert_eq!(download.attachment_name(), format!("{}.age", row.filename));
        assert_eq!(download.sha256, sha256_hex(&local));

        // Without the key a restore is refused before anything changes,
        // naming the key; with it, the data comes back.
        let at_backup = live_fingerprint(&engine).await;
        run_sql(&engine, "DELETE FROM enrollments").await;
        let changed = live_fingerprint(&engine).await;
        let job = restore(&engine, row.id).await;
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        let message = job.message.unwrap();
        assert!(
            message.contains("no key to open it is set") && message.contains(&public(&key)),
            "{message}"
        );
        assert!(changed
            .differences(&live_fingerprint(&engine).await)
            .is_empty());
        let keyed = same_place(&engine, |c| c.decryption = opened_by(&[&key])).await;
        let job = restore(&keyed, row.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        assert!(
            job.notes.iter().any(|n| n.contains("one job")),
            "{:?}",
            job.notes
        );
        assert!(at_backup
            .differences(&live_fingerprint(&engine).await)
            .is_empty());

        // An upload is encrypted as it arrives; the same archive in the
        // clear is known by its plain SHA-256.
        let refused = keyed
            .import_upload(
                std::io::Cursor::new(plain.clone()),
                Some(plain.len() as u64),
                None,
                &actor("alice"),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains(&row.filename), "{refused}");
        keyed.delete_backup(row.id, &actor("alice")).await.unwrap();
        let uploaded = keyed
            .import_upload(
                std::io::Cursor::new(plain.clone()),
                Some(plain.len() as u64),
                None,
                &actor("alice"),
            )
            .await
            .unwrap();
        let stored = std::fs::read(dir.join(&uploaded.filename)).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(age_decrypt(&stored, &key), plain);
        run_sql(&engine, "DELETE FROM enrollments").await;
        let job = restore(&keyed, uploaded.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        assert!(at_backup
            .differences(&live_fingerprint(&engine).await)
            .is_empty());
    }

    /// A file kept encrypted goes off-site as the same bytes and comes back
    /// as them; with ENCRYPT_LOCAL set, a backup made before it comes back
    /// encrypted too, never in the clear.
    #[tokio::test]
    async fn copies_of_files_kept_encrypted_leave_and_come_back_encrypted() {
        let bucket = fresh_bucket().await;
        let key = Identity::generate();
        let plain_here = spawn_engine_with(|c| {
            c.offsite = Some(s3_target(&bucket, ""));
            c.encryption = to(&[&key]);
            c.decryption = opened_by(&[&key]);
        })
        .await;
        lms_backup::demo::seed(&plain_here.dbs().lms, 1)
            .await
            .unwrap();
        let (_, before) = backup(&plain_here).await;
        let kept = same_place(&plain_here, |c| c.encrypt_local = true).await;
        let (_, after) = backup(&kept).await;
        assert_eq!(after.offsite_state, Some(OffsiteState::Verified));
        let dir = kept.config().backup_dir.clone();
        let local = std::fs::read(dir.join(&after.filename)).unwrap();
        let (status, _, stored) =
            s3_request("GET", &format!("/{bucket}/{}", after.filename), b"").await;
        assert_eq!(status, 200);
        assert!(stored == local, "the same bytes off-site");

        let at_backup = live_fingerprint(&kept).await;
        for row in [&before, &after] {
            std::fs::remove_file(dir.join(&row.filename)).unwrap();
            let job = restore(&kept, row.id).await;
            assert_eq!(job.status, JobStatus::Succeeded, "{} {job:?}", row.filename);
            let fetched = std::fs::read(dir.join(&row.filename)).unwrap();
            assert!(
                fetched.starts_with(b"age-encryption.org/v1\n"),
                "{} fetched back encrypted",
                row.filename
            );
            let now = catalog::get_row(&kept.dbs().control, row.id).await.unwrap();
            assert_eq!(now.sha256.as_deref(), Some(sha256_hex(&fetched).as_str()));
            assert!(at_backup
                .differences(&live_fingerprint(&kept).await)
                .is_empty());
        }
    }
}
