//! Server-rendered pages (before any JavaScript runs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lms_backup::users::Role;

use crate::client::ApiClient;
use crate::support::spawn_app;

#[tokio::test]
async fn admin_page_sends_strangers_to_sign_in() {
    let app = spawn_app().await;
    let res = app.client().get("/admin").send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
}

#[tokio::test]
async fn admin_page_renders_the_overview_and_empty_backup_list() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let res = client.get("/admin").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    for text in [
        "Database overview",
        "activity_events",
        "20000",
        "Database Backup &amp; Restore",
        "No backups yet",
    ] {
        assert!(html.contains(text), "{text} missing from /admin");
    }
}

#[tokio::test]
async fn non_admins_see_administrators_only() {
    let app = spawn_app().await;
    let client = app.signed_in("ingrid", Role::Instructor).await;
    let res = client.get("/admin").send().await.unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("Administrators only"));
    assert!(
        !html.contains("Database overview"),
        "no admin data for non-admins"
    );
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let app = spawn_app().await;
    let res = app.client().get("/no/such/page").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app.client().get("/api/nothing-here").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = spawn_app().await;
    let res = app.client().get("/login").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn pages_are_compressed_for_browsers_that_ask() {
    let app = spawn_app().await;
    let res = app
        .client()
        .get("/login")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
}

/// How long no byte of a page may arrive before it counts as stalled:
/// generous, so that a busy machine is not mistaken for a stall.
const STALL: std::time::Duration = std::time::Duration::from_secs(120);

/// `/admin` as `client` gets it, read to its end; a page that stops streaming
/// fails the test, naming the boundaries sent (the one missing is the one
/// whose data never came) and where the page stopped.
async fn whole_admin_page(client: ApiClient) -> String {
    let mut res = tokio::time::timeout(STALL, client.get("/admin").send())
        .await
        .expect("the page started")
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(STALL, res.chunk()).await {
            Ok(chunk) => match chunk.unwrap() {
                Some(bytes) => body.extend_from_slice(&bytes),
                None => break,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let from = (text.len().saturating_sub(400)..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                let tail = &text[from..];
                let sent: Vec<&str> = text
                    .split("<template id=\"")
                    .skip(1)
                    .filter_map(|rest| rest.split('"').next())
                    .collect();
                panic!(
                    "the page stalled after {} bytes, with the boundaries {sent:?} \
                     sent; it ended with: {tail}",
                    body.len()
                )
            }
        }
    }
    let html = String::from_utf8(body).unwrap();
    // A stream cut short is an error in `chunk()` above; the document is whole.
    assert!(html.contains("</html>"), "the document is whole");
    html
}

/// Pages rendered side by side all finish, each with thaw's CSS in its head,
/// on a runtime with several threads as the server's. thaw's server-side
/// CSS collector used to be shared by the whole page and panicked when two
/// parts of it were rendered on two threads at once; the page then stopped
/// streaming half way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_rendered_at_once_are_whole_and_styled() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let pages = (0..24).map(|_| whole_admin_page(client.clone()));
    for html in futures::future::join_all(pages).await {
        let head = &html[..html.find("</head>").expect("a head")];
        for id in ["thaw-id-button", "thaw-id-card", "thaw-id-lms-admin"] {
            assert!(
                head.contains(&format!("<style id=\"{id}\">")),
                "{id} CSS missing from the head"
            );
        }
        let charset = head.find("<meta charset").expect("a charset");
        assert!(
            charset < 1024,
            "the charset is declared in the first 1024 bytes"
        );
    }
}

/// Pages stream to their end while another router is built in the same
/// process. Building a router finds the pages' routes by drawing the app,
/// and while Leptos draws it, it holds back the loading of every resource in
/// the process: a page streaming at that moment waited forever for data that
/// never started loading. This is what the concurrent tests of this binary
/// do all the time, each starting its own app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_finish_while_another_router_is_built() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let store = server::sessions::store(&app.dbs.control).await.unwrap();
    let building = Arc::new(AtomicBool::new(true));
    let builder = tokio::task::spawn_blocking({
        let (state, building) = (app.state.clone(), building.clone());
        move || {
            let mut built = 0u32;
            while building.load(Ordering::Relaxed) {
                drop(server::router(
                    state.clone(),
                    server::sessions::layer(store.clone(), false),
                ));
                built += 1;
            }
            built
        }
    });
    let pages = (0..24).map(|_| whole_admin_page(client.clone()));
    let pages = futures::future::join_all(pages).await;
    building.store(false, Ordering::Relaxed);
    let built = builder.await.unwrap();
    assert!(built > 0, "routers were built while the pages streamed");
    assert_eq!(pages.len(), 24);
}
