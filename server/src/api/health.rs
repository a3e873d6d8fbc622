//! What a monitor polls, without a session: `/healthz` (the process
//! answers), `/healthz/backups` (whether backups still happen: 503 when a
//! recovery point objective is breached, no schedule is enabled or the lock
//! is stuck) and `/metrics` (Prometheus/OpenMetrics text, behind
//! `METRICS_TOKEN` when it is set). They answer in maintenance mode too,
//! read only the control database, and tell nothing beyond states, ages,
//! sizes and schedule names.

use app::error::AppError;
use app::ssr::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use lms_backup::health::{BackupHealth, MetricsFacts};
use lms_types::HealthState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::AtomicU64;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get_in_maintenance("/healthz", liveness)
        .get_in_maintenance("/healthz/backups", backups)
        .get_in_maintenance("/metrics", metrics)
}

/// `GET /healthz` → 200 `ok` while the process serves.
async fn liveness() -> &'static str {
    "ok"
}

/// The answer of `/healthz/backups`: states and ages only.
#[derive(Serialize)]
struct BackupsAnswer {
    state: HealthState,
    reason: String,
    newest_verified_age_seconds: Option<i64>,
    schedules: Vec<ScheduleAnswer>,
    lock_stuck: bool,
}

#[derive(Serialize)]
struct ScheduleAnswer {
    name: String,
    state: HealthState,
    age_seconds: i64,
    rpo_seconds: i64,
}

impl From<BackupHealth> for BackupsAnswer {
    fn from(h: BackupHealth) -> Self {
        BackupsAnswer {
            state: h.state,
            reason: h.reason,
            newest_verified_age_seconds: h.newest_age_seconds,
            schedules: h
                .schedules
                .into_iter()
                .map(|s| ScheduleAnswer {
                    name: s.name,
                    state: s.state,
                    age_seconds: s.age_seconds,
                    rpo_seconds: s.rpo_seconds,
                })
                .collect(),
            lock_stuck: h.lock_stuck,
        }
    }
}

/// `GET /healthz/backups` → 200 green or amber, 503 red, with which
/// schedule and why.
async fn backups(State(state): State<AppState>) -> Result<Response, AppError> {
    let health = state.engine.backup_health(Utc::now()).await?;
    let status = match health.state {
        HealthState::Red => StatusCode::SERVICE_UNAVAILABLE,
        HealthState::Green | HealthState::Amber => StatusCode::OK,
    };
    Ok((
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(BackupsAnswer::from(health)),
    )
        .into_response())
}

/// `GET /metrics` → the OpenMetrics text format; 401 without the bearer
/// token when `METRICS_TOKEN` is set.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(token) = &state.config.metrics_token {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token.admits(authorization) {
            return Ok((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Send Authorization: Bearer <METRICS_TOKEN>.\n",
            )
                .into_response());
        }
    }
    let facts = state.engine.metrics_facts(Utc::now()).await?;
    let text = render(&facts).map_err(|e| {
        tracing::error!(error = %e, "could not encode the metrics");
        AppError::internal()
    })?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

type Labels = Vec<(&'static str, String)>;
type IntFamily = Family<Labels, Gauge>;
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// One scrape's registry, filled from the control database.
fn render(facts: &MetricsFacts) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("lms_backup");
    let health = &facts.health;

    let last_success = FloatFamily::default();
    let last_size = IntFamily::default();
    let next_run = FloatFamily::default();
    let age = IntFamily::default();
    let rpo = IntFamily::default();
    let state = IntFamily::default();
    for s in &health.schedules {
        let labels = vec![("schedule", s.name.clone())];
        if let Some(at) = s.newest_verified_at {
            last_success
                .get_or_create(&labels)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
        if let Some(bytes) = s.newest_verified_bytes {
            last_size.get_or_create(&labels).set(bytes);
        }
        if let Some(at) = s.next_run_at {
            next_run
                .get_or_create(&labels)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
        age.get_or_create(&labels).set(s.age_seconds);
        rpo.get_or_create(&labels).set(s.rpo_seconds);
        state.get_or_create(&labels).set(state_number(s.state));
    }
    registry.register(
        "last_success_timestamp_seconds",
        "When each schedule's newest verified backup was taken (Unix time)",
        last_success,
    );
    registry.register(
        "last_verified_size_bytes",
        "Size of each schedule's newest verified backup",
        last_size,
    );
    registry.register(
        "next_run_timestamp_seconds",
        "When each enabled schedule is next due (Unix time)",
        next_run,
    );
    registry.register(
        "newest_verified_age_seconds",
        "Age of each schedule's newest verified backup (or, with none, time since it was set up)",
        age,
    );
    registry.register(
        "rpo_seconds",
        "Each schedule's recovery point objective",
        rpo,
    );
    registry.register(
        "schedule_health",
        "Each enabled schedule: 0 green, 1 amber (last run failed), 2 red (RPO breached)",
        state,
    );
    let overall = Gauge::<i64>::default();
    overall.set(state_number(health.state));
    registry.register(
        "health",
        "All in all: 0 green, 1 amber, 2 red (an RPO breached, no schedule enabled, or the lock stuck)",
        overall,
    );

    let durations = FloatFamily::default();
    for (kind, seconds) in &facts.last_durations {
        durations
            .get_or_create(&vec![("operation", kind.clone())])
            .set(*seconds);
    }
    registry.register(
        "last_duration_seconds",
        "How long the newest succeeded job of each operation took",
        durations,
    );
    let failures = IntFamily::default();
    for (kind, n) in &facts.failures {
        failures
            .get_or_create(&vec![("operation", kind.clone())])
            .set(*n);
    }
    registry.register(
        "failed_jobs",
        "Jobs on record that failed or were interrupted, by operation",
        failures,
    );
    let deletions = Gauge::<i64>::default();
    deletions.set(facts.retention_deletions);
    registry.register(
        "retention_deletions",
        "Backups deleted by retention, on record in the audit log",
        deletions,
    );
    let lock_held = Gauge::<i64>::default();
    lock_held.set(i64::from(health.lock_held_seconds.is_some()));
    registry.register(
        "lock_held",
        "1 while an operation holds the operation lock",
        lock_held,
    );
    let lock_seconds = Gauge::<i64>::default();
    lock_seconds.set(health.lock_held_seconds.unwrap_or(0));
    registry.register(
        "lock_held_seconds",
        "How long the operation lock has been held (0 while free)",
        lock_seconds,
    );
    let catalog = IntFamily::default();
    for (status, n) in &facts.catalog {
        catalog
            .get_or_create(&vec![("status", status.clone())])
            .set(*n);
    }
    registry.register("catalog_backups", "Catalog entries by status", catalog);
    let stored = Gauge::<i64>::default();
    stored.set(facts.stored_bytes);
    registry.register(
        "stored_bytes",
        "Bytes of the verified archives in the backup directory",
        stored,
    );

    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

fn state_number(state: HealthState) -> i64 {
    match state {
        HealthState::Green => 0,
        HealthState::Amber => 1,
        HealthState::Red => 2,
    }
}
