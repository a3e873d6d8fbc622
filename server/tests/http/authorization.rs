//! Every admin endpoint refuses anonymous (401) and non-admin (403) callers.
//! The endpoints come from the one table the router's gates read
//! (`server::api::endpoints`), so a new route or server function is covered
//! without touching this file.

use app::error::AppError;
use app::models::{BackupList, DatabaseOverview, OperationStatus, StartedBackup};
use app::ssr::Access;
use lms_backup::users::Role;
use lms_types::JobStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::ApiClient;
use crate::support::{spawn_app, TestApp, PASSWORD};

/// Every admin endpoint as (method, path template): the rows of the one
/// table the router's gates read that only administrators may call, REST
/// routes and server functions alike.
fn admin_endpoint_templates() -> Vec<(Method, &'static str)> {
    let endpoints: Vec<(Method, &'static str)> = server::api::endpoints()
        .all()
        .iter()
        .filter(|e| e.access == Access::Admins)
        .map(|e| (e.method.clone(), e.path))
        .collect();
    assert!(
        endpoints.iter().any(|(_, p)| p.starts_with("/api/fn/")),
        "server functions are registered"
    );
    endpoints
}

/// Every admin endpoint, with 1 for each id.
fn admin_endpoints() -> Vec<(Method, String)> {
    admin_endpoint_templates()
        .into_iter()
        .map(|(m, p)| (m, p.replace("{id}", "1")))
        .collect()
}

#[tokio::test]
async fn the_endpoint_table_is_complete() {
    let table = server::api::endpoints();
    let table = table.all();
    for expected in [
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/admin/backup/list",
    ] {
        assert!(
            table.iter().any(|e| e.path == expected),
            "{expected} not in the endpoint table"
        );
    }
    // Every registered server function is in the table, behind the admin
    // gate unless it is one of the few open to everyone.
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        assert!(path.starts_with("/api/fn/"), "{path}");
        assert!(
            table.iter().any(|e| e.path == path && e.method == method),
            "{method} {path} not in the endpoint table"
        );
    }
    let mut open: Vec<String> = table
        .iter()
        .filter(|e| e.access == Access::Anyone)
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    open.sort();
    assert_eq!(
        open,
        [
            "GET /api/auth/me",
            "GET /healthz",
            "GET /healthz/backups",
            "GET /metrics",
            "POST /api/auth/login",
            "POST /api/auth/logout",
            "POST /api/fn/login",
            "POST /api/fn/logout",
            "POST /api/fn/whoami",
        ],
        "only signing in and out, asking who is signed in, and what a monitor polls \
         (behind its own token for /metrics) are open to everyone"
    ); // What API tokens open: a backup, reading backups, reading what runs.
       // Nothing that restores, deletes, downloads or manages tokens.
    let mut scoped: Vec<String> = table
        .iter()
        .filter_map(|e| e.scope.map(|s| format!("{} {} {s}", e.method, e.path)))
        .collect();
    scoped.sort();
    assert_eq!(
        scoped,
        [
            "GET /api/admin/backup/compare backup:read",
            "GET /api/admin/backup/jobs/{id} status:read",
            "GET /api/admin/backup/list backup:read",
            "GET /api/admin/backup/status status:read",
            "GET /api/admin/backup/{id} backup:read",
            "POST /api/admin/backup/create backup:create",
        ]
    );
}

/// Every endpoint with its own method and with GET, POST and DELETE, each
/// plain and with forged forwarding headers claiming to come from the
/// server itself.
fn attempts() -> Vec<(Method, String, bool)> {
    let mut out = Vec::new();
    for (own, path) in admin_endpoints() {
        let mut methods = vec![own, Method::GET, Method::POST, Method::DELETE];
        methods.dedup();
        for method in methods {
            for forged in [false, true] {
                out.push((method.clone(), path.clone(), forged));
            }
        }
    }
    out
}

async fn attempt(client: &ApiClient, method: &Method, path: &str, forged: bool) -> u16 {
    let mut req = client.request(method.clone(), path);
    if method != Method::GET {
        req = req.json(&serde_json::json!({"confirm": true}));
    }
    if forged {
        req = req
            .header("x-forwarded-for", "127.0.0.1")
            .header("x-real-ip", "127.0.0.1")
            .header("forwarded", "for=127.0.0.1;host=localhost;proto=https");
    }
    req.send().await.unwrap().status().as_u16()
}

/// Nothing a refused caller could have started or changed.
async fn nothing_changed(app: &TestApp) {
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    let backups: i64 = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!((jobs, backups), (0, 0), "no job and no backup");
    let dirs = [
        app.engine.config().backup_dir.clone(),
        app.engine
            .config()
            .backup_dir
            .join(lms_backup::storage::MANIFEST_DIR),
    ];
    let files: Vec<_> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| !e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    assert!(
        files.is_empty(),
        "nothing written to the backup directory: {files:?}"
    );
}

#[tokio::test]
async fn anonymous_callers_get_401_everywhere() {
    let app = spawn_app().await;
    let client = app.client();
    let tried = attempts();
    for (method, path, forged) in &tried {
        assert_eq!(
            attempt(&client, method, path, *forged).await,
            401,
            "{method} {path} (forged forwarding headers: {forged})"
        );
    }
    assert!(tried.len() > 50, "{} attempts", tried.len());
    println!("{} anonymous attempts, all 401", tried.len());
    nothing_changed(&app).await;
}

#[tokio::test]
async fn instructors_and_students_get_403_everywhere() {
    let app = spawn_app().await;
    for (name, role) in [("ingrid", Role::Instructor), ("sam", Role::Student)] {
        let client = app.signed_in(name, role).await;
        for (method, path, forged) in attempts() {
            assert_eq!(
                attempt(&client, &method, &path, forged).await,
                403,
                "{name}: {method} {path} (forged forwarding headers: {forged})"
            );
        }
    }
    nothing_changed(&app).await;
    // Refusals are audited with who and from where, counted per user and
    // window: a script under a student's session cannot flood the log.
    let refused: Vec<(String, Option<String>, i32)> = sqlx::query_as(
        "SELECT actor_name, target, tally_count FROM audit_log
         WHERE action = 'admin.refused' AND outcome = 'denied' AND client_ip = '127.0.0.1'",
    )
    .fetch_all(&app.dbs.control)
    .await
    .unwrap();
    let tried: Vec<String> = attempts()
        .iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    for name in ["ingrid", "sam"] {
        let rows: Vec<_> = refused.iter().filter(|(n, _, _)| n == name).collect();
        // A window boundary may split them in two.
        assert!(matches!(rows.len(), 1 | 2), "{name}: {rows:?}");
        let counted: i32 = rows.iter().map(|(_, _, count)| count).sum();
        assert_eq!(counted as usize, tried.len(), "{name}");
        for (_, target, _) in rows {
            assert!(tried.contains(target.as_ref().unwrap()), "{target:?}");
        }
    }
}

/// A request an administrator sends to an admin endpoint when all is
/// well, and the status the endpoint documents for it.
struct WellFormed {
    path: String,
    body: Option<Body>,
    status: u16,
}

enum Body {
    Json(Value),
    Archive(Vec<u8>),
}

impl WellFormed {
    fn new(path: impl Into<String>, body: Option<Body>, status: u16) -> Self {
        WellFormed {
            path: path.into(),
            body,
            status,
        }
    }
}

/// An administrator at the console, through the restores that end every
/// session: each time the session has ended they sign in again, as the
/// next of a few administrators (a name may only sign in a few times in a
/// row), all of whom are in every backup.
struct Console<'a> {
    app: &'a TestApp,
    admin: ApiClient,
    sign_ins: std::cell::Cell<usize>,
}

const ADMINS: usize = 12;

impl<'a> Console<'a> {
    async fn open(app: &'a TestApp) -> Self {
        for n in 1..ADMINS {
            app.create_user(&format!("admin{n}"), Role::Admin).await;
        }
        Console {
            app,
            admin: app.signed_in("admin0", Role::Admin).await,
            sign_ins: std::cell::Cell::new(1),
        }
    }

    /// Waits until no operation runs, then signs in again if a restore
    /// ended the session.
    async fn settle(&self) {
        lms_backup::testing::wait_until("the operation to end", async || {
            let lock = self.app.engine.lock_status().await.unwrap();
            lock.is_none().then_some(())
        })
        .await;
        if self.admin.me().await.is_err() {
            let n = self.sign_ins.replace(self.sign_ins.get() + 1);
            assert!(n < ADMINS, "more sign-ins than administrators");
            self.admin
                .sign_in(&format!("admin{n}"), PASSWORD)
                .await
                .unwrap();
        }
    }

    /// A schedule named `name`, so that there is one to remove.
    async fn schedule_to_remove(&self, name: &str) {
        self.app
            .engine
            .create_schedule(
                lms_backup::schedule::NewSchedule {
                    name: name.into(),
                    cron: "@daily".into(),
                    enabled: false,
                    ..Default::default()
                },
                &lms_backup::testing::actor("admin0"),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }

    /// A webhook channel named `name` (its receiver is not there: a test
    /// sent to it answers 200 saying so).
    async fn channel(&self, name: &str) {
        self.app
            .engine
            .create_channel(&channel_settings(name))
            .await
            .unwrap();
    }

    async fn token_to_revoke(&self, name: &str) {
        self.app
            .engine
            .create_token(
                lms_backup::tokens::NewToken {
                    name: name.into(),
                    scopes: vec![lms_types::TokenScope::StatusRead],
                    expires_days: None,
                },
                &lms_backup::testing::actor("admin0"),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }

    /// A prepared copy of backup `id` (Preview changes done).
    async fn prepared(&self, id: i64) {
        let engine = &self.app.engine;
        let job = engine
            .start_preview(id, &lms_backup::testing::actor("admin0"))
            .await
            .unwrap();
        let job = lms_backup::testing::wait_for_job(engine, job.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }

    /// A record recovery, so that there is one to undo: a course only the
    /// backup made for it holds, brought back from its prepared copy.
    async fn recovery_to_undo(&self, code: &str) {
        let engine = &self.app.engine;
        let lms = &engine.dbs().lms;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO courses (code, title) VALUES ($1, 'to recover') RETURNING id",
        )
        .bind(code)
        .fetch_one(lms)
        .await
        .unwrap();
        let backup = self.admin.backup_now().await.backup.id;
        sqlx::query("DELETE FROM courses WHERE id = $1")
            .bind(id)
            .execute(lms)
            .await
            .unwrap();
        self.prepared(backup).await;
        let request = lms_backup::records::RecordRequest {
            table: "courses".into(),
            key: lms_backup::records::RecordKey::Value(id.to_string()),
        };
        let job = engine
            .start_recover(request, None, &lms_backup::testing::actor("admin0"))
            .await
            .unwrap();
        let job = lms_backup::testing::wait_for_job(engine, job.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }

    /// A restore of backup `id`, so that there is one to undo.
    async fn restore_to_undo(&self, id: i64) {
        let job = self.admin.restore(id).await.unwrap();
        self.settle().await;
        let job = self.admin.job(&job.id).await.unwrap();
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }

    /// How an administrator calls `method path` (a template from the
    /// tables) when all is well, with `backup` for the ids it needs. What
    /// else the call needs is made first: a backup of its own to delete, a
    /// restore to undo. A new endpoint fails here until it is described.
    async fn well_formed(&self, backup: &StartedBackup, method: &Method, path: &str) -> WellFormed {
        let json = |v: Value| Some(Body::Json(v));
        let (id, job) = (backup.backup.id, backup.job.id.clone());
        let with_id = path.replace("{id}", &id.to_string());
        match (method.as_str(), path) {
            ("GET", "/api/admin/backup/jobs/{id}") => {
                WellFormed::new(path.replace("{id}", &job), None, 200)
            }
            ("GET", "/api/admin/backup/compare") => {
                let other = self.admin.backup_now().await.backup.id;
                WellFormed::new(format!("{path}?a={id}&b={other}"), None, 200)
            }
            ("GET", "/api/admin/backup/preview") => {
                self.prepared(id).await;
                WellFormed::new(path, None, 200)
            }
            ("GET", _) => WellFormed::new(with_id, None, 200),
            ("DELETE", "/api/admin/backup/preview") => {
                self.prepared(id).await;
                WellFormed::new(path, None, 204)
            }
            ("POST", "/api/admin/backup/{id}/preview") => WellFormed::new(with_id, None, 202),
            ("POST", "/api/admin/backup/preview/switch") => {
                self.prepared(id).await;
                WellFormed::new(path, json(json!({ "confirm": true })), 202)
            }
            ("POST", "/api/admin/backup/recover/plan") => {
                self.prepared(id).await;
                WellFormed::new(path, json(json!({ "table": "users", "key": "1" })), 200)
            }
            ("POST", "/api/admin/backup/recover") => {
                self.prepared(id).await;
                WellFormed::new(
                    path,
                    json(json!({ "table": "public.users", "key": "id=1", "confirm": true })),
                    202,
                )
            }
            ("POST", "/api/admin/backup/recover/undo") => {
                self.recovery_to_undo("REST-UNDO").await;
                WellFormed::new(path, json(json!({ "confirm": true })), 202)
            }
            ("POST", "/api/fn/preview_backup") => {
                WellFormed::new(path, json(json!({ "id": id })), 200)
            }
            ("POST", "/api/fn/get_preview" | "/api/fn/list_recoveries") => {
                WellFormed::new(path, json(json!({})), 200)
            }
            ("POST", "/api/fn/discard_preview") => {
                self.prepared(id).await;
                WellFormed::new(path, json(json!({})), 200)
            }
            ("POST", "/api/fn/switch_to_prepared") => {
                self.prepared(id).await;
                WellFormed::new(path, json(json!({ "confirm": true })), 200)
            }
            ("POST", "/api/fn/plan_recovery") => {
                self.prepared(id).await;
                WellFormed::new(path, json(json!({ "table": "users", "key": "1" })), 200)
            }
            ("POST", "/api/fn/recover_records") => {
                self.prepared(id).await;
                WellFormed::new(
                    path,
                    json(
                        json!({ "table": "users", "key": "1", "confirm": true, "expect_rows": null }),
                    ),
                    200,
                )
            }
            ("POST", "/api/fn/undo_recovery") => {
                self.recovery_to_undo("FN-UNDO").await;
                WellFormed::new(path, json(json!({ "job_id": null, "confirm": true })), 200)
            }
            ("DELETE", "/api/admin/backup/{id}") => {
                let own = self.admin.backup_now().await.backup.id;
                WellFormed::new(path.replace("{id}", &own.to_string()), None, 204)
            }
            ("POST", "/api/admin/backup/create") => WellFormed::new(path, None, 202),
            ("POST", "/api/admin/backup/lock/release" | "/api/admin/backup/recheck") => {
                WellFormed::new(path, None, 200)
            }
            ("POST", "/api/admin/backup/upload") => {
                // An archive made here and no longer listed: a copy of a
                // listed backup is refused (409).
                let started = self.admin.create_backup(None).await.unwrap();
                self.admin.wait_for_job(&started.job.id).await;
                let archive = self.admin.download(started.backup.id).await.unwrap().bytes;
                self.admin.delete_backup(started.backup.id).await.unwrap();
                WellFormed::new(path, Some(Body::Archive(archive)), 201)
            }
            ("POST", "/api/admin/backup/restore/{id}") => {
                WellFormed::new(with_id, json(json!({ "confirm": true })), 202)
            }
            ("POST", "/api/admin/backup/restore/undo") => {
                self.restore_to_undo(id).await;
                WellFormed::new(path, json(json!({ "confirm": true })), 202)
            }
            ("POST", "/api/fn/undo_restore") => {
                self.restore_to_undo(id).await;
                WellFormed::new(path, json(json!({ "confirm": true })), 200)
            }
            ("POST", "/api/admin/backup/drill") => {
                WellFormed::new(path, json(json!({ "backup_id": id })), 202)
            }
            ("POST", "/api/fn/compare_backups") => {
                let other = self.admin.backup_now().await.backup.id;
                WellFormed::new(path, json(json!({ "a": id, "b": other })), 200)
            }
            ("POST", "/api/fn/drill_backup") => {
                WellFormed::new(path, json(json!({ "id": id })), 200)
            }
            ("POST", "/api/fn/restore_backup") => {
                WellFormed::new(path, json(json!({ "id": id, "confirm": true })), 200)
            }
            ("POST", "/api/fn/get_backup" | "/api/fn/backup_administrators") => {
                WellFormed::new(path, json(json!({ "id": id })), 200)
            }
            ("POST", "/api/fn/delete_backup") => {
                let own = self.admin.backup_now().await.backup.id;
                WellFormed::new(path, json(json!({ "id": own })), 200)
            }
            ("POST", "/api/fn/get_job") => WellFormed::new(path, json(json!({ "id": job })), 200),
            ("POST", "/api/fn/list_backups") => {
                WellFormed::new(path, json(json!({ "skip": 0, "limit": 5 })), 200)
            }
            ("POST", "/api/fn/recent_activity") => {
                WellFormed::new(path, json(json!({ "limit": 10 })), 200)
            }
            ("POST", "/api/fn/create_backup") => {
                WellFormed::new(path, json(json!({ "notes": null })), 200)
            }
            (
                "POST",
                "/api/fn/database_overview"
                | "/api/fn/storage_summary"
                | "/api/fn/operation_status"
                | "/api/fn/last_restore"
                | "/api/fn/recheck_backups"
                | "/api/fn/release_lock"
                | "/api/fn/backup_health"
                | "/api/fn/list_schedules"
                | "/api/fn/list_tokens",
            ) => WellFormed::new(path, json(json!({})), 200),
            // No off-site target here: 503, saying which to set.
            ("POST", "/api/fn/import_from_offsite") => WellFormed::new(path, json(json!({})), 503),
            ("POST", "/api/admin/tokens") => WellFormed::new(
                path,
                json(json!({ "name": "rest-token", "scopes": ["status:read"] })),
                201,
            ),
            ("DELETE", "/api/admin/tokens/{name}") => {
                self.token_to_revoke("rest-revoke").await;
                WellFormed::new(path.replace("{name}", "rest-revoke"), None, 200)
            }
            ("POST", "/api/fn/create_token") => WellFormed::new(
                path,
                json(
                    json!({ "form": { "name": "fn-token", "scopes": ["backup:read"], "expires_days": 30 } }),
                ),
                200,
            ),
            ("POST", "/api/fn/revoke_token") => {
                self.token_to_revoke("fn-revoke").await;
                WellFormed::new(path, json(json!({ "name": "fn-revoke" })), 200)
            }
            ("POST", "/api/admin/backup/{id}/pin") => WellFormed::new(
                with_id,
                json(json!({ "reason": "before the term upgrade" })),
                200,
            ),
            ("DELETE", "/api/admin/backup/{id}/pin") => WellFormed::new(with_id, None, 200),
            ("POST", "/api/admin/backup/retention/preview" | "/api/admin/backup/prune") => {
                WellFormed::new(path, None, 200)
            }
            ("POST", "/api/admin/schedules") => {
                WellFormed::new(path, json(schedule_form("nightly")), 200)
            }
            ("POST", "/api/admin/schedules/preview") => WellFormed::new(
                path,
                json(json!({ "cron": "30 2 * * *", "timezone": "Europe/Berlin" })),
                200,
            ),
            ("DELETE", "/api/admin/schedules/{name}") => {
                self.schedule_to_remove("rest-remove").await;
                WellFormed::new(path.replace("{name}", "rest-remove"), None, 204)
            }
            ("POST", "/api/fn/pin_backup") => WellFormed::new(
                path,
                json(json!({ "id": id, "reason": "kept for a check" })),
                200,
            ),
            ("POST", "/api/fn/unpin_backup") => {
                WellFormed::new(path, json(json!({ "id": id })), 200)
            }
            ("POST", "/api/fn/retention_preview") => {
                WellFormed::new(path, json(json!({ "proposal": null })), 200)
            }
            ("POST", "/api/fn/preview_schedule") => WellFormed::new(
                path,
                json(json!({ "cron": "@hourly", "timezone": null })),
                200,
            ),
            ("POST", "/api/fn/save_schedule") => {
                WellFormed::new(path, json(json!({ "form": schedule_form("weekly") })), 200)
            }
            ("POST", "/api/admin/channels") => {
                WellFormed::new(path, json(channel_form("rest-made")), 201)
            }
            ("PUT", "/api/admin/channels/{name}") => {
                self.channel("rest-change").await;
                WellFormed::new(
                    path.replace("{name}", "rest-change"),
                    json(channel_form("rest-changed")),
                    200,
                )
            }
            ("DELETE", "/api/admin/channels/{name}") => {
                self.channel("rest-remove").await;
                WellFormed::new(path.replace("{name}", "rest-remove"), None, 204)
            }
            ("POST", "/api/admin/channels/{name}/test") => {
                self.channel("rest-test").await;
                WellFormed::new(path.replace("{name}", "rest-test"), None, 200)
            }
            ("POST", "/api/fn/list_channels") => WellFormed::new(path, json(json!({})), 200),
            ("POST", "/api/fn/save_channel") => WellFormed::new(
                path,
                json(json!({ "name": "", "form": channel_form("fn-made") })),
                200,
            ),
            ("POST", "/api/fn/remove_channel") => {
                self.channel("fn-remove").await;
                WellFormed::new(path, json(json!({ "name": "fn-remove" })), 200)
            }
            ("POST", "/api/fn/test_channel") => {
                self.channel("fn-test").await;
                WellFormed::new(path, json(json!({ "name": "fn-test" })), 200)
            }
            ("POST", "/api/fn/remove_schedule") => {
                self.schedule_to_remove("fn-remove").await;
                WellFormed::new(path, json(json!({ "name": "fn-remove" })), 200)
            }
            _ => panic!("{method} {path}: describe here how an administrator calls it"),
        }
    }
}

/// Every admin endpoint, called by an administrator as it is meant to be
/// called, answers with its documented success status.
#[tokio::test]
async fn admins_get_through() {
    let app = spawn_app().await;
    let console = Console::open(&app).await;
    let backup = console.admin.backup_now().await;
    for (method, template) in admin_endpoint_templates() {
        let call = console.well_formed(&backup, &method, template).await;
        let request = console.admin.request(method.clone(), &call.path);
        let request = match call.body {
            Some(Body::Json(value)) => request.json(&value),
            Some(Body::Archive(bytes)) => request
                .header("content-type", "application/octet-stream")
                .body(bytes),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, call.status, "{method} {}: {body}", call.path);
        console.settle().await;
    }
}

#[tokio::test]
async fn a_disabled_admin_loses_access_at_once() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    client.list_backups().await.unwrap();
    sqlx::query("UPDATE users SET is_active = false WHERE username = 'alice'")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(client.list_backups().await.unwrap_err().status, 401);
}

#[tokio::test]
async fn admin_api_answers_with_real_data() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let overview = client.overview().await.unwrap();
    let users = overview.tables.iter().find(|t| t.name == "users").unwrap();
    assert_eq!(users.rows, 211, "210 demo users and alice");

    let list = client.list_backups_page(0, 5).await.unwrap();
    assert_eq!(
        list,
        BackupList {
            backups: vec![],
            total: 0
        }
    );
    let bad = client
        .get("/api/admin/backup/list?skip=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let via_fn: DatabaseOverview = client
        .server_fn("database_overview", json!({}))
        .await
        .unwrap();
    assert_eq!(
        via_fn, overview,
        "server function and REST route share one engine call"
    );
}

/// A server function refused before it runs answers in its own encoding, so
/// the browser can tell "signed out" (and go to the sign-in page) from other
/// failures.
#[tokio::test]
async fn refused_server_functions_answer_in_their_own_encoding() {
    let app = spawn_app().await;
    let refused = app
        .client()
        .server_fn::<OperationStatus>("operation_status", json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 401);
    assert!(
        matches!(refused.error, AppError::Unauthorized(_)),
        "{refused:?}"
    );
}

/// A schedule as the console's form sends it.
fn schedule_form(name: &str) -> Value {
    json!({
        "name": name,
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "enabled": true,
        "policy": {
            "keep_last": 7, "keep_hourly": 0, "keep_daily": 14,
            "keep_weekly": 8, "keep_monthly": 12, "keep_yearly": 0
        }
    })
}

/// A webhook channel's settings, pointing at a port nothing listens on.
fn channel_settings(name: &str) -> lms_backup::notify::ChannelSettings {
    use lms_backup::storage::offsite::Secret;
    lms_backup::notify::ChannelSettings {
        name: name.into(),
        kind: lms_types::ChannelKind::Webhook,
        format: lms_types::WebhookFormat::Generic,
        webhook_url: Some(Secret::new("http://127.0.0.1:9/hook")),
        webhook_secret: Some(Secret::new("s")),
        smtp_url: None,
        email_from: None,
        email_to: vec![],
        events: vec![lms_types::NotifyEvent::BackupFailed],
        enabled: true,
    }
}

/// The same as the console's form sends it.
fn channel_form(name: &str) -> Value {
    json!({
        "name": name,
        "kind": "webhook",
        "format": "slack",
        "webhook_url": "http://127.0.0.1:9/hook",
        "events": ["backup_failed", "rpo_breached"],
    })
}
