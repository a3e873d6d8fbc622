//! `ApiClient`: the REST API as a test calls it, one method per route,
//! answering with the DTOs the console itself uses. A success is the status
//! the route documents (anything else that looks like success fails the
//! test on the spot); a refusal is an [`ApiError`] with the status and the
//! API's `{"error": {"code", "message"}}` body.

use app::error::AppError;
use app::models::{
    ActivityEntry, BackupAdministrators, BackupDetail, BackupList, BackupSummary, CurrentUser,
    DatabaseOverview, JobInfo, OperationStatus, StartedBackup,
};
use lms_types::JobStatus;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// A refused request: the HTTP status and the API's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// The error body's `code` (`not_found`, `conflict`, …); empty when the
    /// answer had no error body (a bare 416, say).
    pub code: String,
    pub message: String,
    /// `Retry-After`, in seconds, when the answer carries one.
    pub retry_after: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

/// A refused server function call: its status and the error in the server
/// functions' own encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct FnError {
    pub status: u16,
    pub error: AppError,
}

/// What `POST /api/admin/backup/lock/release` says it released.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReleasedLock {
    pub released: bool,
    pub operation_type: Option<String>,
    pub locked_by: Option<String>,
}

/// A downloaded archive (or part of one) with the headers it came with.
#[derive(Debug)]
pub struct Download {
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Download {
    /// A header's value as text; panics when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

/// A client of one server, with its own cookie jar (signed in or not).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
}

impl ApiClient {
    /// A client of the server at `base` (`http://host:port`) with an empty
    /// cookie jar that does not follow redirects.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        ApiClient {
            http,
            base: base.to_owned(),
        }
    }

    /// A client with an empty cookie jar whose connections come from
    /// `local` (a loopback address such as 127.0.0.2): to the server, a
    /// different machine.
    pub fn from_address(base: &str, local: std::net::IpAddr) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(local)
            .build()
            .unwrap();
        ApiClient {
            http,
            base: base.to_owned(),
        }
    }

    /// The same cookie jar talking to another server (cookies are per host,
    /// not per port).
    pub fn at(&self, base: &str) -> Self {
        ApiClient {
            http: self.http.clone(),
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A raw request with this client's cookies, for tests whose point is
    /// the request itself (forged headers, odd methods, malformed bodies).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    // Signing in and out.

    /// `POST /api/auth/login` → 200 with the user.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<CurrentUser, ApiError> {
        let request = self
            .post("/api/auth/login")
            .json(&json!({ "username": username, "password": password }));
        answer(request, 200).await
    }

    /// `GET /api/auth/me` → 200 with the signed-in user.
    pub async fn me(&self) -> Result<CurrentUser, ApiError> {
        answer(self.get("/api/auth/me"), 200).await
    }

    /// `POST /api/auth/logout` → 204.
    pub async fn sign_out(&self) -> Result<(), ApiError> {
        no_content(self.post("/api/auth/logout"), 204).await
    }

    // Backups.

    /// `POST /api/admin/backup/create` → 202; without notes the request has
    /// no body at all.
    pub async fn create_backup(&self, notes: Option<&str>) -> Result<StartedBackup, ApiError> {
        let mut request = self.post("/api/admin/backup/create");
        if let Some(notes) = notes {
            request = request.json(&json!({ "notes": notes }));
        }
        answer(request, 202).await
    }

    /// A backup without notes, followed until it has succeeded.
    pub async fn backup_now(&self) -> StartedBackup {
        let started = self.create_backup(None).await.unwrap();
        let job = self.wait_for_job(&started.job.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        started
    }

    /// `GET /api/admin/backup/list` → 200, the first page.
    pub async fn list_backups(&self) -> Result<BackupList, ApiError> {
        answer(self.get("/api/admin/backup/list"), 200).await
    }

    /// `GET /api/admin/backup/list?skip=&limit=` → 200.
    pub async fn list_backups_page(&self, skip: i64, limit: i64) -> Result<BackupList, ApiError> {
        let path = format!("/api/admin/backup/list?skip={skip}&limit={limit}");
        answer(self.get(&path), 200).await
    }

    /// `GET /api/admin/backup/{id}` → 200 with the manifest.
    pub async fn backup(&self, id: i64) -> Result<BackupDetail, ApiError> {
        answer(self.get(&format!("/api/admin/backup/{id}")), 200).await
    }

    /// `DELETE /api/admin/backup/{id}` → 204.
    pub async fn delete_backup(&self, id: i64) -> Result<(), ApiError> {
        let request = self.request(Method::DELETE, &format!("/api/admin/backup/{id}"));
        no_content(request, 204).await
    }

    /// `GET /api/admin/backup/download/{id}` → 200 with the whole archive.
    pub async fn download(&self, id: i64) -> Result<Download, ApiError> {
        download(self.get(&format!("/api/admin/backup/download/{id}")), 200).await
    }

    /// The same with a `Range` header (`bytes=100-`) → 206 with that part.
    pub async fn download_range(&self, id: i64, range: &str) -> Result<Download, ApiError> {
        let request = self
            .get(&format!("/api/admin/backup/download/{id}"))
            .header("range", range);
        download(request, 206).await
    }

    /// `POST /api/admin/backup/upload` with the archive as the body → 201.
    pub async fn upload(&self, archive: Vec<u8>) -> Result<BackupSummary, ApiError> {
        self.upload_body(archive).await
    }

    /// An upload sent as a stream (chunked, no declared length) → 201.
    pub async fn upload_stream<S>(&self, chunks: S) -> Result<BackupSummary, ApiError>
    where
        S: futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static,
    {
        self.upload_body(reqwest::Body::wrap_stream(chunks)).await
    }

    /// The same, naming the file it came from (`?name=`).
    pub async fn upload_named(
        &self,
        archive: Vec<u8>,
        name: &str,
    ) -> Result<BackupSummary, ApiError> {
        let request = self
            .post("/api/admin/backup/upload")
            .query(&[("name", name)])
            .header("content-type", "application/octet-stream")
            .body(archive);
        answer(request, 201).await
    }

    async fn upload_body(&self, body: impl Into<reqwest::Body>) -> Result<BackupSummary, ApiError> {
        let request = self
            .post("/api/admin/backup/upload")
            .header("content-type", "application/octet-stream")
            .body(body);
        answer(request, 201).await
    }

    // Restoring.

    /// `POST /api/admin/backup/restore/{id}` with `{"confirm": true}` → 202.
    pub async fn restore(&self, id: i64) -> Result<JobInfo, ApiError> {
        let request = self
            .post(&format!("/api/admin/backup/restore/{id}"))
            .json(&json!({ "confirm": true }));
        answer(request, 202).await
    }

    /// `GET /api/admin/backup/{id}/administrators` → 200: who could sign
    /// in after restoring it.
    pub async fn administrators(&self, id: i64) -> Result<BackupAdministrators, ApiError> {
        answer(
            self.get(&format!("/api/admin/backup/{id}/administrators")),
            200,
        )
        .await
    }

    /// The same without the confirmation (no body): refused.
    pub async fn restore_unconfirmed(&self, id: i64) -> Result<JobInfo, ApiError> {
        answer(self.post(&format!("/api/admin/backup/restore/{id}")), 202).await
    }

    /// `POST /api/admin/backup/restore/undo` with `{"confirm": true}` → 202.
    pub async fn undo(&self) -> Result<JobInfo, ApiError> {
        let request = self
            .post("/api/admin/backup/restore/undo")
            .json(&json!({ "confirm": true }));
        answer(request, 202).await
    }

    // Operations.

    /// `GET /api/admin/backup/status` → 200.
    pub async fn status(&self) -> Result<OperationStatus, ApiError> {
        answer(self.get("/api/admin/backup/status"), 200).await
    }

    /// `GET /api/admin/backup/jobs/{id}` → 200.
    pub async fn job(&self, id: &str) -> Result<JobInfo, ApiError> {
        answer(self.get(&format!("/api/admin/backup/jobs/{id}")), 200).await
    }

    /// Follows a job through the API until it has ended.
    pub async fn wait_for_job(&self, id: &str) -> JobInfo {
        lms_backup::testing::wait_until(format_args!("job {id} to end"), async || {
            let job = self
                .job(id)
                .await
                .unwrap_or_else(|e| panic!("reading job {id}: {e:?}"));
            (!lms_backup::testing::is_unfinished(job.status)).then_some(job)
        })
        .await
    }

    /// `POST /api/admin/backup/recheck` → 200 with what the check found.
    pub async fn recheck(&self) -> Result<app::models::FileCheck, ApiError> {
        answer(self.post("/api/admin/backup/recheck"), 200).await
    }

    /// `POST /api/admin/backup/lock/release` → 200.
    pub async fn release_lock(&self) -> Result<ReleasedLock, ApiError> {
        answer(self.post("/api/admin/backup/lock/release"), 200).await
    }

    /// `GET /api/admin/database/overview` → 200.
    pub async fn overview(&self) -> Result<DatabaseOverview, ApiError> {
        answer(self.get("/api/admin/database/overview"), 200).await
    }

    // Server functions (the console's own calls), which answer in their own
    // encoding.

    /// `POST /api/fn/<name>` with `args` → 200 with its value.
    pub async fn server_fn<T: DeserializeOwned>(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<T, FnError> {
        let response = self
            .post(&format!("/api/fn/{name}"))
            .json(&args)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 200 {
            Ok(response.json().await.unwrap())
        } else {
            let error = response.json().await.unwrap_or_else(|e| {
                panic!("/api/fn/{name} answered {status} without an error: {e}")
            });
            Err(FnError { status, error })
        }
    }

    /// The audited actions of `kind` by `person` (`recent_activity`).
    pub async fn activity_of(
        &self,
        kind: Option<&str>,
        person: Option<&str>,
    ) -> Result<Vec<ActivityEntry>, FnError> {
        self.server_fn(
            "recent_activity",
            json!({ "limit": 100, "kind": kind, "person": person }),
        )
        .await
    }

    /// The most recent audited actions (`recent_activity`, at most 100).
    pub async fn activity(&self) -> Vec<ActivityEntry> {
        self.server_fn("recent_activity", json!({ "limit": 100 }))
            .await
            .unwrap()
    }
}

/// Sends `request`; the body as `T` when the answer has the documented
/// status `expected`.
async fn answer<T: DeserializeOwned>(
    request: RequestBuilder,
    expected: u16,
) -> Result<T, ApiError> {
    let response = checked(request, expected).await?;
    let text = response.text().await.unwrap();
    Ok(serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the answer does not decode ({e}): {text}")))
}

async fn no_content(request: RequestBuilder, expected: u16) -> Result<(), ApiError> {
    checked(request, expected).await.map(drop)
}

async fn download(request: RequestBuilder, expected: u16) -> Result<Download, ApiError> {
    let response = checked(request, expected).await?;
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap().to_vec();
    Ok(Download { headers, bytes })
}

/// Sends `request`: the response when its status is `expected`, the error
/// when it is a refusal. Another success status is a broken contract and
/// fails the test here.
async fn checked(request: RequestBuilder, expected: u16) -> Result<Response, ApiError> {
    let (client, request) = request.build_split();
    let request = request.unwrap();
    let what = format!("{} {}", request.method(), request.url().path());
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    if status.as_u16() == expected {
        return Ok(response);
    }
    assert!(
        !status.is_success(),
        "{what} answered {status}; the API documents {expected}"
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.unwrap();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (String::new(), text),
    };
    Err(ApiError {
        status: status.as_u16(),
        code,
        message,
        retry_after,
    })
}
