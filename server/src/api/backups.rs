//! `/api/admin/backup/*`: the backup catalog, downloads, the operation lock
//! and jobs. Administrators only ([`AdminUser`] answers 401/403 first). Each
//! handler reads its inputs and calls one operation of [`app::ops`]; only
//! the streaming of uploads and downloads is HTTP work of its own.

use app::error::AppError;
use app::models::{
    BackupAdministrators, BackupComparison, BackupDetail, BackupList, BackupSummary, FileCheck,
    JobInfo, OperationStatus, ReleasedLock, RetentionProposal, RetentionReport, StartedBackup,
};
use app::ops::{
    self, Confirmation, DownloadRequest, NewBackup, Paging, Part, PinReason, ServedDownload,
    UploadName,
};
use app::ssr::{AdminUser, AppState};
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lms_types::TokenScope;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.post("/api/admin/backup/create", create)
        .scoped(TokenScope::BackupCreate)
        .get_in_maintenance("/api/admin/backup/list", list)
        .scoped(TokenScope::BackupRead)
        .get_in_maintenance("/api/admin/backup/status", status)
        .scoped(TokenScope::StatusRead)
        .get("/api/admin/backup/download/{id}", download)
        .get_in_maintenance("/api/admin/backup/jobs/{id}", job)
        .scoped(TokenScope::StatusRead)
        .post("/api/admin/backup/lock/release", release_lock)
        .post("/api/admin/backup/restore/undo", undo)
        .post("/api/admin/backup/upload", upload)
        .post("/api/admin/backup/recheck", recheck)
        .post("/api/admin/backup/restore/{id}", restore)
        .post("/api/admin/backup/drill", drill)
        .get_in_maintenance("/api/admin/backup/compare", compare)
        .scoped(TokenScope::BackupRead)
        .get_in_maintenance("/api/admin/backup/{id}", get)
        .scoped(TokenScope::BackupRead)
        .get("/api/admin/backup/{id}/administrators", administrators)
        .delete("/api/admin/backup/{id}", delete)
        .post("/api/admin/backup/{id}/pin", pin)
        .delete("/api/admin/backup/{id}/pin", unpin)
        .post("/api/admin/backup/retention/preview", retention_preview)
        .post("/api/admin/backup/prune", prune)
}

/// `POST /api/admin/backup/create {notes?}` → 202 `{job, backup}`; 409 while
/// another operation runs; 429 past the rate limit; 422 for bad notes.
async fn create(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<StartedBackup>), AppError> {
    // The body is optional: no body means no notes.
    let input: NewBackup = if body.iter().all(u8::is_ascii_whitespace) {
        NewBackup::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?
    };
    let started = ops::create_backup(&state, &admin, input).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// `GET /api/admin/backup/list?skip=&limit=` → `{backups, total}`, newest first.
async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<BackupList>, AppError> {
    let Query(paging) =
        paging.map_err(|_| AppError::BadRequest("skip and limit must be whole numbers".into()))?;
    Ok(Json(ops::list_backups(&state, &admin, paging).await?))
}

/// `GET /api/admin/backup/{id}` → the backup and its manifest.
async fn get(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BackupDetail>, AppError> {
    Ok(Json(ops::get_backup(&state, &admin, id.parse()?).await?))
}

/// `GET /api/admin/backup/compare?a=ID&b=ID` → the two backups (older
/// first) and every table of either with its rows in each and how it
/// changed, from their manifests alone; 400 for a bad id, 404 unknown, 422
/// when one has no record of its tables yet.
async fn compare(
    admin: AdminUser,
    State(state): State<AppState>,
    pair: Result<Query<ComparePair>, QueryRejection>,
) -> Result<Json<BackupComparison>, AppError> {
    let Query(pair) = pair
        .map_err(|_| AppError::BadRequest("Name the two backups to compare: ?a=ID&b=ID.".into()))?;
    Ok(Json(
        ops::compare_backups(&state, &admin, pair.a.parse()?, pair.b.parse()?).await?,
    ))
}

#[derive(serde::Deserialize)]
struct ComparePair {
    a: String,
    b: String,
}

/// `GET /api/admin/backup/{id}/administrators` → the administrators the
/// backup holds and who could sign in after restoring it; 404 unknown; 422
/// when its accounts cannot be read.
async fn administrators(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BackupAdministrators>, AppError> {
    Ok(Json(
        ops::backup_administrators(&state, &admin, id.parse()?).await?,
    ))
}

/// `DELETE /api/admin/backup/{id}` → 204; 404 unknown; 409 while in use.
async fn delete(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    ops::delete_backup(&state, &admin, id.parse()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/backup/{id}/pin {"reason": "…"}` → 200 the backup, now
/// pinned: retention keeps it until it is unpinned; 422 without a reason;
/// 409 unless it is verified; 404 unknown.
async fn pin(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<PinReason>, JsonRejection>,
) -> Result<Json<BackupSummary>, AppError> {
    let reason = super::json_body(body)?;
    Ok(Json(
        ops::pin_backup(&state, &admin, id.parse()?, reason).await?,
    ))
}

/// `DELETE /api/admin/backup/{id}/pin` → 200 the backup, no longer pinned.
async fn unpin(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BackupSummary>, AppError> {
    Ok(Json(ops::unpin_backup(&state, &admin, id.parse()?).await?))
}

/// `POST /api/admin/backup/retention/preview` with an optional
/// `{schedule?, timezone?, keep_last, keep_hourly, keep_daily, keep_weekly,
/// keep_monthly, keep_yearly}` → 200 what retention would delete and keep,
/// and by which rule, with the policies in force (no body) or with that
/// schedule's policy replaced. Changes nothing.
async fn retention_preview(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<RetentionReport>, AppError> {
    let proposal: Option<RetentionProposal> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?,
        )
    };
    Ok(Json(
        ops::retention_preview(&state, &admin, proposal).await?,
    ))
}

/// `POST /api/admin/backup/prune` → 200 what a retention pass deleted (each
/// deletion audited with its rule); 409 while another operation runs.
async fn prune(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<RetentionReport>, AppError> {
    Ok(Json(ops::prune_backups(&state, &admin).await?))
}

/// The `{"confirm": true}` of a destructive request; any other body (none,
/// not JSON) confirms nothing, and the operation answers 400.
fn confirmation(body: &[u8]) -> Confirmation {
    serde_json::from_slice(body).unwrap_or_default()
}

/// `POST /api/admin/backup/restore/{id} {"confirm": true}` → 202 job; 400
/// without confirmation; 404 unknown; 409 busy; 422 when a gate refuses.
async fn restore(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    let job = ops::restore_backup(&state, &admin, id.parse()?, confirmation(&body)).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `POST /api/admin/backup/drill {"backup_id"?}` → 202 job: a restore drill
/// of that backup (the newest verified one without it); 409 busy; 422 when
/// there is nothing to drill.
async fn drill(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    #[derive(serde::Deserialize, Default)]
    struct DrillBody {
        backup_id: Option<i64>,
    }
    let asked: DrillBody = if body.is_empty() {
        DrillBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::Invalid(format!("The body is not the JSON expected: {e}")))?
    };
    let id = asked.backup_id.map(TryInto::try_into).transpose()?;
    let job = ops::drill_backup(&state, &admin, id).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `POST /api/admin/backup/restore/undo {"confirm": true}` → 202 job.
async fn undo(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    let job = ops::undo_restore(&state, &admin, confirmation(&body)).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `POST /api/admin/backup/upload?name=FILE` with the archive as the body
/// (`application/octet-stream`) → 201 with the new backup (kind `uploaded`),
/// `name` (optional) being the file's name on the uploader's machine;
/// 413 over `MAX_BACKUP_SIZE`; 422 for anything but a whole custom-format
/// archive this server can read. Streamed to disk in constant memory.
async fn upload(
    admin: AdminUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    source: Result<Query<UploadSource>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<BackupSummary>), AppError> {
    use futures::TryStreamExt;
    let Query(source) =
        source.map_err(|_| AppError::BadRequest("name must be a file name".into()))?;
    let original_name = UploadName::new(source.name.as_deref())?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let backup = ops::upload_backup(&state, &admin, reader, declared, original_name).await?;
    Ok((StatusCode::CREATED, Json(backup)))
}

/// `POST /api/admin/backup/recheck` → 200 with what the check of the backup
/// files found (missing backups whose file is back intact are completed
/// again); 503 while the backup directory cannot be used.
async fn recheck(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<FileCheck>, AppError> {
    Ok(Json(ops::recheck_backups(&state, &admin).await?))
}

/// The upload's query: the file's name where it came from.
#[derive(serde::Deserialize)]
struct UploadSource {
    name: Option<String>,
}

/// `GET /api/admin/backup/status` → `{is_locked, operation_type, locked_by, locked_at, job}`.
async fn status(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<OperationStatus>, AppError> {
    Ok(Json(ops::operation_status(&state, &admin).await?))
}

/// `GET /api/admin/backup/jobs/{id}` → the job with phase, progress, message.
async fn job(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobInfo>, AppError> {
    Ok(Json(ops::job(&state, &admin, id.parse()?).await?))
}

/// `POST /api/admin/backup/lock/release` → 200 with what was released (audited).
async fn release_lock(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<ReleasedLock>, AppError> {
    Ok(Json(ops::release_lock(&state, &admin).await?))
}

/// `GET /api/admin/backup/download/{id}` → the archive, streamed in constant
/// memory, after checking it against its manifest. Supports one `Range`;
/// `HEAD` answers the same headers.
async fn download(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let request = DownloadRequest {
        range: headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        head: method == Method::HEAD,
    };
    let ServedDownload { download: dl, part } =
        ops::open_download(&state, &admin, id.parse()?, request).await?;
    let (status, start, len) = match part {
        Part::Whole => (StatusCode::OK, 0, dl.size),
        Part::Range(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Part::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{}", dl.size))],
            )
                .into_response())
        }
    };
    let attachment = dl.attachment_name();
    let mut file = tokio::fs::File::from_std(dl.file);
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "seek failed");
            AppError::internal()
        })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        256 * 1024,
    ));
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{attachment}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&dl.sha256) {
        h.insert("x-backup-sha256", v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{}", start, start + len - 1, dl.size))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}
