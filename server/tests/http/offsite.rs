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
