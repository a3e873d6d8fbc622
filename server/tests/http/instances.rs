//! Two `lms-admin` processes against the same databases and backup
//! directory, as behind a load balancer: one operation at a time across
//! both, each shows what the other runs, both honour maintenance mode, and
//! when the instance that is switching dies, the survivor brings the site
//! back without a restart.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{create_admin, json, sign_in, slow_tools, start, Server};

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{}{path}", server.base))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_instances_share_one_lock_and_one_maintenance_mode() {
    let dir = lms_backup::testing::scratch_dir("instances");
    let url = lms_backup::testing::fresh_database_url().await;
    let paused = dir.join("paused");
    let env = vec![
        ("DATABASE_URL", url.clone()),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
        (
            "POSTGRES_BIN_PATH",
            slow_tools().await.display().to_string(),
        ),
        ("OPERATION_LEASE_TIMEOUT", "3".to_string()),
    ];
    create_admin(&env);
    let mut env_a = env.clone();
    env_a.push(("LMS_TEST_PAUSE_AT", "swap:between-renames".into()));
    env_a.push(("LMS_TEST_PAUSE_FILE", paused.display().to_string()));
    let mut a = start(&env_a).await;
    let b = start(&env).await;
    // Sessions live in the shared control database, and cookies are per
    // host, not per port: one signed-in client talks to both.
    let mut client = sign_in(&a).await;

    // A backup started on A: B refuses a second operation, naming it, and
    // shows it as running.
    let started = json(
        post(
            &client,
            &a,
            "/api/admin/backup/create",
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    let job = started["job"]["id"].as_str().unwrap().to_owned();
    let refused = post(
        &client,
        &b,
        "/api/admin/backup/create",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let refused = json(refused).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice"),
        "{refused}"
    );
    let seen = b.get_json(&client, "/api/admin/backup/status").await;
    assert_eq!(seen["is_locked"], true, "{seen}");
    assert_eq!(seen["operation_type"], "backup", "{seen}");
    assert_eq!(seen["locked_by"], "alice", "{seen}");
    assert_eq!(seen["job"]["id"], job.as_str(), "{seen}");
    let via_fn = json(
        post(
            &client,
            &b,
            "/api/fn/operation_status",
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        via_fn["job"]["id"],
        job.as_str(),
        "the console on B shows it: {via_fn}"
    );
    let backup_id = started["backup"]["id"].as_i64().unwrap();
    let restore_on_b = post(
        &client,
        &b,
        &format!("/api/admin/backup/restore/{backup_id}"),
        serde_json::json!({ "confirm": true }),
    )
    .await;
    assert_eq!(
        restore_on_b.status(),
        422,
        "the backup is still being written"
    );
    let message = json(restore_on_b).await["error"]["message"].to_string();
    assert!(message.contains("running"), "{message}");
    assert_eq!(b.wait_for_job(&client, &job).await["status"], "succeeded");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&sqlx::PgPool::connect(&control_url(&url)).await.unwrap())
        .await
        .unwrap();
    assert_eq!(jobs, 1, "exactly one job across both instances");

    // A restore on A, held in the middle of its switch: both instances
    // answer the site's pages with the maintenance page, and B's console
    // still follows the job.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let res = post(
        &client,
        &a,
        &format!("/api/admin/backup/restore/{backup_id}"),
        serde_json::json!({ "confirm": true }),
    )
    .await;
    assert_eq!(res.status(), 202);
    let restore_job = json(res).await["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !paused.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(paused.exists(), "A reached the switch");
    for server in [&b, &a] {
        let page = get(&client, server, "/admin").await;
        assert_eq!(page.status(), 503, "{}", server.base);
        assert!(page.text().await.unwrap().contains("Back in a moment"));
        let overview = get(&client, server, "/api/admin/database/overview").await;
        assert_eq!(overview.status(), 503, "{}", server.base);
    }
    // Held between the renames, the live database takes no connections, so
    // not even an administrator can be checked: a 503 saying to retry
    // (in a real switch this lasts milliseconds and the console retries).
    let seen = get(&client, &b, "/api/admin/backup/status").await;
    assert_eq!(seen.status(), 503);
    let seen = json(seen).await;
    assert!(
        seen["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Try again"),
        "{seen}"
    );
    let control = sqlx::PgPool::connect(&control_url(&url)).await.unwrap();
    let (maintenance, phase): (bool, String) = sqlx::query_as(
        "SELECT (SELECT count(*) > 0 FROM settings WHERE key = 'maintenance'), phase FROM jobs WHERE id = $1::uuid",
    )
    .bind(&restore_job)
    .fetch_one(&control)
    .await
    .unwrap();
    control.close().await;
    assert!(maintenance);
    assert_eq!(phase, "switching");

    // A dies there. B notices once A's lease has expired (3 s here), and
    // brings the old database back without anyone restarting anything.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    let mut status = Value::Null;
    let mut signed_out = false;
    while killed.elapsed() < Duration::from_secs(60) {
        let res = get(&client, &b, "/api/admin/backup/status").await;
        if res.status() == 401 {
            // The switch may have happened: everyone signs in again.
            signed_out = true;
            client = sign_in(&b).await;
            continue;
        }
        status = json(res).await;
        if status["maintenance"] == false && status["is_locked"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let repaired_after = killed.elapsed();
    assert!(signed_out, "the repair of a switch signs everyone out");
    assert_eq!(status["maintenance"], false, "{status}");
    assert_eq!(status["is_locked"], false, "{status}");
    println!(
        "the surviving instance repaired the abandoned switch {:.1} s after the kill",
        repaired_after.as_secs_f64()
    );
    let job = json(
        get(
            &client,
            &b,
            &format!("/api/admin/backup/jobs/{restore_job}"),
        )
        .await,
    )
    .await;
    assert_eq!(job["status"], "interrupted", "{job}");
    assert_eq!(get(&client, &b, "/admin").await.status(), 200);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM courses WHERE code = 'AFTER'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        after, 1,
        "the live database is the one from before the restore"
    );
    let db = url.rsplit_once('/').unwrap().1;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' AND datname <> $1 || '_control'",
    )
    .bind(db)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(databases, [db.to_owned()], "no copy left");
    pool.close().await;

    // And the next operation works, on B.
    let next = json(
        post(
            &client,
            &b,
            "/api/admin/backup/create",
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    let next = b
        .wait_for_job(&client, next["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(next["status"], "succeeded", "{next}");
    drop(b);
    std::fs::remove_dir_all(dir).ok();
}

fn control_url(url: &str) -> String {
    format!("{url}_control")
}
