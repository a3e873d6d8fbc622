//! Preview changes and record recovery: a backup restored into a prepared
//! copy and compared with the live database; switching to that copy; and
//! deleted records brought back from it (plan first, then the job), undoable.

use serde::Deserialize;

use super::{BackupId, Confirmation, JobId};
use crate::error::AppError;
use crate::models::{JobInfo, Preview, RecoveryPlan, RecoveryRecord};
use crate::ssr::{AdminUser, AppState};
use lms_backup::records::{RecordKey, RecordRequest};

/// A record named by table and key, as the console, the REST API and the
/// CLI take it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordInput {
    /// `schema.table`, or a table of `public`.
    pub table: String,
    /// `42`, or `course_id=3,user_id=7`.
    pub key: String,
    /// To recover: the confirmation.
    #[serde(default)]
    pub confirm: bool,
    /// To recover: the rows the plan shown inserts; the job refuses when
    /// the live database changed since so that it now differs.
    #[serde(default)]
    pub expect_rows: Option<i64>,
}

impl RecordInput {
    fn request(&self) -> Result<RecordRequest, AppError> {
        let table = self.table.trim();
        if table.is_empty() || table.len() > 130 {
            return Err(AppError::Invalid(
                "Name the table, as schema.table or a table of public.".into(),
            ));
        }
        if self.key.len() > 1000 {
            return Err(AppError::Invalid("The key is too long.".into()));
        }
        Ok(RecordRequest {
            table: table.to_owned(),
            key: self.key.parse::<RecordKey>()?,
        })
    }
}

/// Starts Preview changes of backup `id`: 404 unknown, 409 busy, 422 when a
/// gate refuses.
pub async fn preview_backup(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
) -> Result<JobInfo, AppError> {
    let job = state.engine.start_preview(id.get(), &admin.actor()).await?;
    Ok(job.into())
}

/// The prepared copy and how the live database differs from it; `None`
/// when there is none (or its comparison is not done yet).
pub async fn preview(state: &AppState, _admin: &AdminUser) -> Result<Option<Preview>, AppError> {
    Ok(state.engine.preview().await?)
}

/// Drops the prepared copy: 409 busy, 422 when there is none.
pub async fn discard_preview(state: &AppState, admin: &AdminUser) -> Result<(), AppError> {
    state.engine.discard_prepared(&admin.actor()).await?;
    Ok(())
}

/// Starts switching the prepared copy in for the live database (the
/// restore's switch, undoable): 400 without confirmation, 409 busy, 422
/// when there is no prepared copy.
pub async fn switch_to_prepared(
    state: &AppState,
    admin: &AdminUser,
    confirmation: Confirmation,
) -> Result<JobInfo, AppError> {
    confirmation.require()?;
    let job = state
        .engine
        .start_switch_to_prepared(true, &admin.actor())
        .await?;
    Ok(job.into())
}

/// What recovering the record would insert, leave alone and be blocked by;
/// changes nothing. 409 busy, 422 for an unknown table or key.
pub async fn plan_recovery(
    state: &AppState,
    admin: &AdminUser,
    input: RecordInput,
) -> Result<RecoveryPlan, AppError> {
    let request = input.request()?;
    Ok(state.engine.plan_recovery(&request, &admin.actor()).await?)
}

/// Starts recovering the record: 400 without confirmation, 409 busy, 422
/// for an unknown table or key (a blocked plan fails the job, saying why).
pub async fn recover_records(
    state: &AppState,
    admin: &AdminUser,
    input: RecordInput,
) -> Result<JobInfo, AppError> {
    let request = input.request()?;
    if !input.confirm {
        return Err(AppError::BadRequest(
            "Send {\"confirm\": true}: this inserts rows into the live database.".into(),
        ));
    }
    let job = state
        .engine
        .start_recover(request, input.expect_rows, &admin.actor())
        .await?;
    Ok(job.into())
}

/// Starts deleting again the rows recovery `job` inserted (the newest
/// recovery without it): 400 without confirmation, 409 busy, 422 when there
/// is nothing to undo.
pub async fn undo_recovery(
    state: &AppState,
    admin: &AdminUser,
    job: Option<JobId>,
    confirmation: Confirmation,
) -> Result<JobInfo, AppError> {
    if !confirmation.confirm {
        return Err(AppError::BadRequest(
            "Send {\"confirm\": true}: this deletes the recovered rows again.".into(),
        ));
    }
    let job = state
        .engine
        .start_recover_undo(job.map(JobId::get), &admin.actor())
        .await?;
    Ok(job.into())
}

/// The newest record recoveries, newest first.
pub async fn list_recoveries(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<Vec<RecoveryRecord>, AppError> {
    Ok(state.engine.recoveries(20).await?)
}
