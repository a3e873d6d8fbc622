//! Server functions (what the UI calls) and REST routes (the documented API)
//! are two doors to the same operations: for the same request they give the
//! same answer, refusals included.

use app::error::AppError;
use lms_backup::users::Role;
use serde_json::{json, Value};

use crate::client::ApiClient;
use crate::support::{spawn_app, TestApp};

/// A server function's answer: its status and body.
async fn call_fn(client: &ApiClient, name: &str, args: Value) -> (u16, Value) {
    let res = client
        .post(&format!("/api/fn/{name}"))
        .json(&args)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// A REST route's answer: its status and body.
async fn call_rest(
    client: &ApiClient,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Both refusals carry the same status and message.
fn same_refusal(via_fn: &(u16, Value), via_rest: &(u16, Value)) -> AppError {
    assert_eq!(via_fn.0, via_rest.0, "{via_fn:?} / {via_rest:?}");
    let error: AppError = serde_json::from_value(via_fn.1.clone()).unwrap();
    assert_eq!(
        via_rest.1["error"]["message"],
        error.to_string(),
        "{via_fn:?} / {via_rest:?}"
    );
    assert_eq!(via_rest.1["error"]["code"], error.code());
    error
}

async fn jobs(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unconfirmed_restore_or_undo_is_400_through_either_door() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let post = reqwest::Method::POST;

    let via_fn = call_fn(
        &client,
        "restore_backup",
        json!({ "id": 1, "confirm": false }),
    )
    .await;
    let via_rest = call_rest(
        &client,
        post.clone(),
        "/api/admin/backup/restore/1",
        Some(json!({ "confirm": false })),
    )
    .await;
    let error = same_refusal(&via_fn, &via_rest);
    assert!(matches!(error, AppError::BadRequest(_)), "{error:?}");
    assert!(error.to_string().contains("confirm"), "{error}");

    let via_fn = call_fn(&client, "undo_restore", json!({ "confirm": false })).await;
    let via_rest = call_rest(
        &client,
        post,
        "/api/admin/backup/restore/undo",
        Some(json!({})),
    )
    .await;
    let error = same_refusal(&via_fn, &via_rest);
    assert!(matches!(error, AppError::BadRequest(_)), "{error:?}");
    assert_eq!(jobs(&app).await, 0, "nothing was started");
}

#[tokio::test]
async fn ids_are_checked_the_same_way_through_either_door() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    for id in [0, -1] {
        let via_fn = call_fn(&client, "get_backup", json!({ "id": id })).await;
        let via_rest = call_rest(
            &client,
            reqwest::Method::GET,
            &format!("/api/admin/backup/{id}"),
            None,
        )
        .await;
        let error = same_refusal(&via_fn, &via_rest);
        assert_eq!(error.status(), 400, "{id}");

        let via_fn = call_fn(&client, "delete_backup", json!({ "id": id })).await;
        let via_rest = call_rest(
            &client,
            reqwest::Method::DELETE,
            &format!("/api/admin/backup/{id}"),
            None,
        )
        .await;
        assert_eq!(same_refusal(&via_fn, &via_rest).status(), 400, "{id}");

        let via_fn = call_fn(
            &client,
            "restore_backup",
            json!({ "id": id, "confirm": true }),
        )
        .await;
        let via_rest = call_rest(
            &client,
            reqwest::Method::POST,
            &format!("/api/admin/backup/restore/{id}"),
            Some(json!({ "confirm": true })),
        )
        .await;
        assert_eq!(same_refusal(&via_fn, &via_rest).status(), 400, "{id}");
    }
    let via_fn = call_fn(&client, "get_job", json!({ "id": "not-a-job" })).await;
    let via_rest = call_rest(
        &client,
        reqwest::Method::GET,
        "/api/admin/backup/jobs/not-a-job",
        None,
    )
    .await;
    assert_eq!(same_refusal(&via_fn, &via_rest).status(), 404);
    assert_eq!(jobs(&app).await, 0, "nothing was started");
}

#[tokio::test]
async fn paging_is_brought_into_range_the_same_way_through_either_door() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    for (skip, limit) in [(-5, 0), (0, 1_000_000), (3, -1)] {
        let via_fn = call_fn(
            &client,
            "list_backups",
            json!({ "skip": skip, "limit": limit }),
        )
        .await;
        let via_rest = call_rest(
            &client,
            reqwest::Method::GET,
            &format!("/api/admin/backup/list?skip={skip}&limit={limit}"),
            None,
        )
        .await;
        assert_eq!(via_fn, via_rest, "skip {skip}, limit {limit}");
        assert_eq!(via_fn.0, 200);
    }
}

#[tokio::test]
async fn releasing_the_lock_says_what_was_released_through_either_door() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let stuck = || async {
        sqlx::query(
            "INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name) \
             VALUES (1, 'gone-host:1:x', 'backup', 'bob')",
        )
        .execute(&app.dbs.control)
        .await
        .unwrap();
    };
    stuck().await;
    let via_fn = call_fn(&client, "release_lock", json!({})).await;
    stuck().await;
    let via_rest = call_rest(
        &client,
        reqwest::Method::POST,
        "/api/admin/backup/lock/release",
        None,
    )
    .await;
    assert_eq!(via_fn, via_rest);
    assert_eq!(
        via_fn.1,
        json!({ "released": true, "operation_type": "backup", "locked_by": "bob" })
    );
    // With nothing to release, both say so.
    let via_fn = call_fn(&client, "release_lock", json!({})).await;
    assert_eq!(
        via_fn,
        (
            200,
            json!({ "released": false, "operation_type": null, "locked_by": null })
        )
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'lock.force_release' AND actor_name = 'alice'",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap();
    assert_eq!(audited, 3, "every release is audited, whichever door");
}
