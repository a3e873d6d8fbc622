//! SIGKILL of the real binary at a random moment of a backup or a restore,
//! a few dozen times in a row on the same databases, each followed by a
//! restart and a check of everything a crash must not leave behind. The
//! seed is printed; `CRASH_SEED=<seed>` replays a run, `CRASH_RUNS=<n>`
//! changes how many kills there are (24 by default).

use std::time::Duration;

use lms_backup::postgres::fingerprint::Fingerprint;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

use crate::client::ApiClient;
use crate::crash::{create_admin, sign_in, start};

async fn live(url: &str) -> Fingerprint {
    lms_backup::testing::fingerprint_of(&url.parse().unwrap()).await
}

/// A complete backup through the API; its catalog id.
async fn full_backup(client: &ApiClient) -> i64 {
    client.backup_now().await.backup.id
}

#[tokio::test]
async fn random_kills_during_backups_and_restores_leave_a_known_state() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let runs: usize = std::env::var("CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    println!("random kills: seed {seed}, {runs} runs (replay with CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = lms_backup::testing::scratch_dir("chaos");
    let backups = crate::support::backup_dir_in(&dir);
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    let env = vec![
        ("DATABASE_URL", url.clone()),
        ("BACKUP_DIR", backups.display().to_string()),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
        ("MAX_BACKUPS_TO_KEEP", "1000".to_string()),
    ];
    create_admin(&env);
    let lms = PgPool::connect(&url).await.unwrap();
    lms_backup::demo::seed(&lms, 1).await.unwrap();
    lms.close().await;
    let control = PgPool::connect(&format!("{url}_control")).await.unwrap();

    let mut server = start(&env).await;
    let mut client = sign_in(&server).await;
    let base = full_backup(&client).await;
    let detail = lms_backup::catalog::get(&control, base).await.unwrap();
    let manifest = detail.manifest.unwrap();
    let at_base = Fingerprint {
        tables: manifest.tables.unwrap(),
        sequences: manifest.sequences.unwrap(),
    };

    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for run in 0..runs {
        let restore = rng.gen_bool(0.5);
        // Spread over how long each takes here (scale 1: a backup about
        // 0.7 s, a restore about 1 s), so most kills land mid-operation.
        let delay = Duration::from_millis(rng.gen_range(0..if restore { 1200 } else { 800 }));
        // Each run starts from a state of its own, told apart from the backup's.
        let lms = PgPool::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO courses (code, title) VALUES ($1, 'before a kill')")
            .bind(format!("RUN-{seed}-{run}"))
            .execute(&lms)
            .await
            .unwrap();
        lms.close().await;
        let before = live(&url).await;

        let job = if restore {
            client.restore(base).await.map(|job| job.id)
        } else {
            client
                .create_backup(None)
                .await
                .map(|started| started.job.id)
        };
        let job: uuid::Uuid = job
            .unwrap_or_else(|e| panic!("run {run}: {e:?}"))
            .parse()
            .unwrap();
        // The kill's moment is this test's input, not a wait: whatever
        // it hits, the state afterwards must be one of the two allowed.
        tokio::time::sleep(delay).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();

        server = start(&env).await;
        let (status, phase): (String, String) =
            sqlx::query_as("SELECT status, phase FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_one(&control)
                .await
                .unwrap();
        let what = if restore { "restore" } else { "backup" };
        println!("run {run}: {what} killed after {delay:?} in phase {phase:?}: {status}");
        *outcomes.entry(format!("{what} {status}")).or_default() += 1;
        let context = format!("seed {seed}, run {run}: {what} after {delay:?}, {phase}, {status}");

        assert_ne!(status, "running", "{context}");
        let locked: i64 = sqlx::query_scalar("SELECT count(*) FROM operation_lock")
            .fetch_one(&control)
            .await
            .unwrap();
        assert_eq!(locked, 0, "no lock: {context}");
        let maintenance: i64 =
            sqlx::query_scalar("SELECT count(*) FROM settings WHERE key = 'maintenance'")
                .fetch_one(&control)
                .await
                .unwrap();
        assert_eq!(maintenance, 0, "no maintenance mode: {context}");
        let running_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM backup_history WHERE status = 'running'")
                .fetch_one(&control)
                .await
                .unwrap();
        assert_eq!(running_rows, 0, "{context}");
        let partials: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        assert!(partials.is_empty(), "{partials:?}: {context}");
        let copies: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '\\_restore\\_%'",
        )
        .bind(&db)
        .fetch_all(&control)
        .await
        .unwrap();
        assert!(copies.is_empty(), "{copies:?}: {context}");

        // One live database, in one of the two states it may be in.
        let now = live(&url).await;
        let unchanged = before.differences(&now).is_empty();
        let restored = restore && at_base.differences(&now).is_empty();
        assert!(
            unchanged || restored,
            "live database in neither state: {context}"
        );
        if status == "succeeded" && restore {
            assert!(restored, "{context}");
        }
        if status == "failed" {
            assert!(unchanged, "a failed job changes nothing: {context}");
        }

        // And the next operation works.
        client = sign_in(&server).await;
        full_backup(&client).await;
    }
    println!("outcomes: {outcomes:?}");
    drop(server);
    control.close().await;
    std::fs::remove_dir_all(dir).ok();
}
