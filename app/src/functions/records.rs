use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{JobInfo, Preview, RecoveryPlan, RecoveryRecord};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// Starts Preview changes: backup `id` restored into a prepared copy and
/// compared with the live database.
#[server(prefix = "/api/fn", endpoint = "preview_backup", input = Json)]
pub async fn preview_backup(id: i64) -> Result<JobInfo, AppError> {
    as_admin(
        |state, admin| async move { ops::preview_backup(&state, &admin, id.try_into()?).await },
    )
    .await
}

/// The prepared copy and its comparison with the live database, if any.
#[server(prefix = "/api/fn", endpoint = "get_preview", input = Json)]
pub async fn get_preview() -> Result<Option<Preview>, AppError> {
    as_admin(|state, admin| async move { ops::preview(&state, &admin).await }).await
}

/// Drops the prepared copy.
#[server(prefix = "/api/fn", endpoint = "discard_preview", input = Json)]
pub async fn discard_preview() -> Result<(), AppError> {
    as_admin(|state, admin| async move { ops::discard_preview(&state, &admin).await }).await
}

/// Switches the prepared copy in for the live database. `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "switch_to_prepared", input = Json)]
pub async fn switch_to_prepared(confirm: bool) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        ops::switch_to_prepared(&state, &admin, ops::Confirmation { confirm }).await
    })
    .await
}

/// What recovering a record from the prepared copy would do; changes nothing.
#[server(prefix = "/api/fn", endpoint = "plan_recovery", input = Json)]
pub async fn plan_recovery(table: String, key: String) -> Result<RecoveryPlan, AppError> {
    as_admin(|state, admin| async move {
        let input = ops::RecordInput {
            table,
            key,
            confirm: false,
            expect_rows: None,
        };
        ops::plan_recovery(&state, &admin, input).await
    })
    .await
}

/// Starts recovering a record from the prepared copy. `confirm` must be
/// true; `expect_rows` is what the plan shown inserts.
#[server(prefix = "/api/fn", endpoint = "recover_records", input = Json)]
pub async fn recover_records(
    table: String,
    key: String,
    confirm: bool,
    expect_rows: Option<i64>,
) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        let input = ops::RecordInput {
            table,
            key,
            confirm,
            expect_rows,
        };
        ops::recover_records(&state, &admin, input).await
    })
    .await
}

/// Deletes again the rows a recovery inserted (the newest one without
/// `job_id`). `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "undo_recovery", input = Json)]
pub async fn undo_recovery(job_id: Option<String>, confirm: bool) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        let job = job_id.map(|j| j.parse()).transpose()?;
        ops::undo_recovery(&state, &admin, job, ops::Confirmation { confirm }).await
    })
    .await
}

/// The newest record recoveries.
#[server(prefix = "/api/fn", endpoint = "list_recoveries", input = Json)]
pub async fn list_recoveries() -> Result<Vec<RecoveryRecord>, AppError> {
    as_admin(|state, admin| async move { ops::list_recoveries(&state, &admin).await }).await
}
