//! Off-site copies from the outside: the command line configured by the
//! environment (secrets from files), the console's card and list, and the
//! secrets nowhere they could be read.

use lms_backup::testing::{fresh_bucket, s3_endpoint, s3_request, s3_target, scratch_dir};
use lms_backup::users::Role;

use crate::cli::{lms_admin, text};
use crate::support::spawn_app_with;

const ACCESS_KEY: &str = "AKIAOFFSITETEST0001";
const SECRET_KEY: &str = "offsite-secret-do-not-print-7f3a";

#[tokio::test]
async fn the_command_line_copies_off_site_with_secrets_from_files() {
    let dir = scratch_dir("cli-offsite");
    let url = lms_backup::testing::fresh_database_url().await;
    let bucket = fresh_bucket().await;
    std::fs::write(dir.join("key-id"), format!("{ACCESS_KEY}\n")).unwrap();
    std::fs::write(dir.join("secret"), format!("{SECRET_KEY}\n")).unwrap();
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        ("S3_ENDPOINT", s3_endpoint()),
        ("S3_BUCKET", bucket.clone()),
        ("S3_PREFIX", "/site-a/".to_owned()),
        ("S3_FORCE_PATH_STYLE", "true".to_owned()),
        (
            "AWS_ACCESS_KEY_ID_FILE",
            dir.join("key-id").display().to_string(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY_FILE",
            dir.join("secret").display().to_string(),
        ),
        ("RUST_LOG", "debug".to_owned()),
    ];
    assert!(lms_admin(&env, &["demo", "seed"]).await.status.success());
    let out = lms_admin(&env, &["backup", "create"]).await;
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(!printed.contains("note:"), "{printed}");
    let out = lms_admin(&env, &["backup", "list"]).await;
    let listing = text(&out);
    assert!(listing.contains("off-site: verified"), "{listing}");
    let name = listing
        .split_whitespace()
        .find(|w| w.starts_with("backup_"))
        .unwrap()
        .to_owned();
    let key = format!("/{bucket}/site-a/{name}");
    assert_eq!(s3_request("HEAD", &key, b"").await.0, 200);
    for secret in [ACCESS_KEY, SECRET_KEY] {
        assert!(!printed.contains(secret) && !listing.contains(secret));
    }

    // Settings that contradict each other are refused, naming them, and
    // the secret is not repeated.
    let mut both = env.to_vec();
    both.push(("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()));
    let out = lms_admin(&both, &["backup", "list"]).await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("AWS_SECRET_ACCESS_KEY and AWS_SECRET_ACCESS_KEY_FILE are both set"),
        "{said}"
    );
    assert!(!said.contains(SECRET_KEY));
    let no_bucket: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "S3_BUCKET")
        .cloned()
        .collect();
    let out = lms_admin(&no_bucket, &["backup", "list"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("S3_BUCKET is not"), "{}", text(&out));
    // Files kept encrypted need something to encrypt them to.
    let mut keyless = env.to_vec();
    keyless.push(("ENCRYPT_LOCAL", "true".to_owned()));
    let out = lms_admin(&keyless, &["backup", "list"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("ENCRYPT_LOCAL=true needs the keys to encrypt to"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_console_shows_the_target_and_each_copy_but_never_the_secrets() {
    let bucket = fresh_bucket().await;
    let app = spawn_app_with(|c| {
        let mut target = s3_target(&bucket, "lms");
        let lms_backup::storage::offsite::TargetConfig::S3(s3) = &mut target.target;
        s3.secret_access_key = Some(lms_backup::storage::offsite::Secret::new(SECRET_KEY));
        s3.access_key_id = Some(lms_backup::storage::offsite::Secret::new(ACCESS_KEY));
        c.offsite = Some(target);
    })
    .await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.backup_now().await;
    let job = client.wait_for_job(&started.job.id).await;
    assert_eq!(job.status, lms_types::JobStatus::Succeeded, "{job:?}");

    let list = client.list_backups().await.unwrap();
    let copy = list.backups[0].offsite.clone().unwrap();
    assert_eq!(copy.state, lms_types::OffsiteState::Verified);
    let html = client
        .get("/admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-testid=\"offsite-target\""),
        "the card shows the target"
    );
    assert!(html.contains(&bucket));
    assert!(html.contains("off-site: verified"));
    for secret in [ACCESS_KEY, SECRET_KEY] {
        assert!(!html.contains(secret), "{secret} on the page");
        let listed = serde_json::to_string(&list).unwrap();
        assert!(!listed.contains(secret));
    }
}

/// An age key pair made by the standard tool: the identity file and its
/// public key.
fn age_keygen(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("age-key.txt");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen is installed (scripts/test.sh installs age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let public = said
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .unwrap_or_else(|| panic!("a public key in {said:?}"))
        .to_owned();
    (key, public)
}

/// The disaster: the host is lost with its catalog and backup directory.
/// A new host with only a database server, the target's settings, the
/// bucket and the private key imports the catalog from the bucket and
/// restores the newest backup: the data is what was backed up. The copies
/// are encrypted to a key made by the standard `age-keygen`; without it the
/// restore is refused, naming the key it needs.
#[tokio::test]
async fn a_new_host_rebuilds_the_catalog_from_the_bucket_and_restores() {
    let bucket = fresh_bucket().await;
    let keys = scratch_dir("dr-keys");
    let (identity, public) = age_keygen(&keys);
    let target = |dir: &std::path::Path| {
        vec![
            (
                "BACKUP_DIR",
                crate::support::backup_dir_in(dir).display().to_string(),
            ),
            ("S3_ENDPOINT", s3_endpoint()),
            ("S3_BUCKET", bucket.clone()),
            ("S3_PREFIX", "lms".to_owned()),
            ("S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AGE_RECIPIENTS", public.clone()),
        ]
    };
    // The old host: two backups, copied off-site.
    let old_dir = scratch_dir("dr-old");
    let old_url = lms_backup::testing::fresh_database_url().await;
    let mut old = target(&old_dir);
    old.push(("DATABASE_URL", old_url.clone()));
    assert!(lms_admin(&old, &["demo", "seed"]).await.status.success());
    let out = lms_admin(&old, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pool = sqlx::PgPool::connect(&old_url).await.unwrap();
    sqlx::query("DELETE FROM courses WHERE id > 12")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = lms_admin(&old, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let at_backup = lms_backup::testing::fingerprint_of(&old_url.parse().unwrap()).await;
    std::fs::remove_dir_all(&old_dir).unwrap();

    // The new host: another database server's worth of empty databases,
    // an empty backup directory, the same target.
    let new_dir = scratch_dir("dr-new");
    let new_url = lms_backup::testing::fresh_database_url().await;
    let mut new = target(&new_dir);
    new.push(("DATABASE_URL", new_url.clone()));
    let out = lms_admin(&new, &["backup", "list"]).await;
    assert!(text(&out).contains("0 of 0 backups"), "{}", text(&out));
    let out = lms_admin(&new, &["backup", "import", "--from-offsite"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 backup(s) imported"), "{said}");
    let out = lms_admin(&new, &["backup", "list"]).await;
    let listing = text(&out);
    assert!(listing.contains("2 of 2 backups"), "{listing}");
    assert_eq!(
        listing.matches("off-site: verified").count(),
        2,
        "{listing}"
    );
    // Importing again lists nothing twice.
    let out = lms_admin(&new, &["backup", "import", "--from-offsite"]).await;
    assert!(
        text(&out).contains("0 backup(s) imported, 2 listed already"),
        "{}",
        text(&out)
    );

    // The newest is listed first, with id 2 (imported in name order).
    // Without the private key: refused, naming the key it needs.
    let out = lms_admin(&new, &["backup", "restore", "2", "--yes"]).await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(&public) && said.contains("AGE_IDENTITY_FILE"),
        "{said}"
    );
    new.push(("AGE_IDENTITY_FILE", identity.display().to_string()));
    let out = lms_admin(&new, &["backup", "restore", "2", "--yes"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let secret = std::fs::read_to_string(&identity).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    assert!(!said.contains(secret));
    let restored = lms_backup::testing::fingerprint_of(&new_url.parse().unwrap()).await;
    assert!(
        at_backup.differences(&restored).is_empty(),
        "{:?}",
        at_backup.differences(&restored)
    );
    std::fs::remove_dir_all(new_dir).ok();
    std::fs::remove_dir_all(keys).ok();
}

/// A console whose catalog is empty while its bucket holds backups (a new
/// host) offers to import them, and imports them when asked: never on its
/// own.
#[tokio::test]
async fn a_console_on_a_new_host_offers_the_bucket_s_backups_and_imports_them_when_asked() {
    let bucket = fresh_bucket().await;
    let old =
        lms_backup::testing::spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&old.dbs().lms, 1).await.unwrap();
    for _ in 0..2 {
        let started =
            lms_backup::testing::start_manual_backup(&old, &lms_backup::testing::actor("alice"))
                .await
                .unwrap();
        lms_backup::testing::wait_for_job(&old, started.job.id).await;
    }

    let app = spawn_app_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    app.engine.check_offsite().await.unwrap().unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let html = client
        .get("/admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-testid=\"offsite-importable\""),
        "offered"
    );
    assert!(html.contains("holds 2 backups"));
    assert_eq!(
        client.list_backups().await.unwrap().total,
        0,
        "not on its own"
    );

    let done: app::models::OffsiteImport = client
        .server_fn("import_from_offsite", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!((done.imported, done.already_listed), (2, 0));
    let list = client.list_backups().await.unwrap();
    assert_eq!(list.total, 2);
    assert!(list
        .backups
        .iter()
        .all(|b| b.offsite.as_ref().unwrap().state == lms_types::OffsiteState::Verified));
    let html = client
        .get("/admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("offsite-importable"), "offered no more");
    // Nothing is wrong: the files are off-site (said as such, not as lost
    // files), and the card counts them.
    let now = app.engine.operation_status().await.unwrap();
    assert_eq!((now.missing_backups, now.missing_kept_offsite), (2, 2));
    let status = app.engine.offsite_status().await.unwrap().unwrap();
    assert_eq!((status.verified, status.unverified), (2, 0));
}
