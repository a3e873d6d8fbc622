//! The switch: the copy takes the live database's name in a moment, the
//! live database is kept under another name for undo.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::SwapReport;
use crate::engine::Engine;
use crate::jobs::lock;
use crate::postgres::databases::quote_ident;
use crate::postgres::names;
use crate::{settings, Error, Result};

/// How long each try of the renames may take. A session told to end can
/// be gone from `pg_stat_activity` a moment before PostgreSQL stops
/// counting it; a rename that meets one looks again only a tenth of a
/// second later. So the first tries are cut short and made again at once;
/// the last ones wait as long as PostgreSQL does ("0": no limit), so a slow
/// server still switches.
const RENAME_TIMEOUTS: [&str; 4] = ["20ms", "100ms", "0", "0"];

/// The client sessions on the databases `$1` (a text array) this role may
/// end: everyone's but a superuser's and its own.
const ENDABLE_SESSIONS: &str = "FROM pg_stat_activity a
     LEFT JOIN pg_roles r ON r.oid = a.usesysid
     WHERE a.datname = ANY($1) AND a.pid <> pg_backend_pid()
       AND a.backend_type = 'client backend' AND NOT coalesce(r.rolsuper, false)";

impl Engine {
    /// Puts `incoming` in place of the LMS database, keeping the current one
    /// as `<db>_pre_restore_<timestamp>`. Seconds at most.
    pub(super) async fn swap_in(&self, incoming: &str, job: Uuid) -> Result<SwapReport> {
        let dbs = self.dbs();
        let live = dbs.lms_name().to_owned();
        let previous = names::previous_name(&live, Utc::now());
        let mut admin = PgConnection::connect_with(&dbs.maintenance_options()).await?;
        let started = Instant::now();
        // A superuser's session cannot be ended by this role, and with one
        // connected PostgreSQL refuses the rename (after waiting): say so now,
        // before the site goes into maintenance.
        let unendable: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
             WHERE a.datname = ANY($1) AND a.pid <> pg_backend_pid()
               AND a.backend_type = 'client backend' AND r.rolsuper",
        )
        .bind([live.clone(), incoming.to_owned()])
        .fetch_one(&mut admin)
        .await?;
        if unendable > 0 {
            return Err(sessions_in_the_way());
        }
        // Fencing: the lease is renewed (and so proven still ours) right
        // before the site goes down. A lease taken over while this job
        // stalled, or after a jump of the database server's clock, stops the
        // job here instead of letting two operations switch databases.
        if !lock::heartbeat(&dbs.control, self.instance_id(), Some(job)).await? {
            return Err(Error::Cancelled(
                "The operation was stopped before the switch: its lock was released or taken over. Nothing was changed.".into(),
            ));
        }
        settings::maintenance_on(&dbs.control, "The database is being restored.").await?;
        let swapped = async {
            sqlx::query(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", quote_ident(incoming)))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", quote_ident(&live)))
                .execute(&mut admin)
                .await?;
            let mut attempt = 0;
            loop {
                // Client sessions only: autovacuum workers (which run as a
                // superuser, so ending them is refused) are stopped by the
                // rename itself, and a superuser's own session cannot be
                // ended by this role (the rename then refuses, below).
                let both = [live.clone(), incoming.to_owned()];
                sqlx::query(&format!("SELECT pg_terminate_backend(a.pid) {ENDABLE_SESSIONS}"))
                    .bind(&both)
                    .execute(&mut admin)
                    .await?;
                // A session told to end takes a moment to exit, and a rename
                // meeting one waits a tenth of a second before it looks
                // again: wait (a second at most) until they are gone.
                let deadline = Instant::now() + Duration::from_secs(1);
                loop {
                    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) {ENDABLE_SESSIONS}"))
                        .bind(&both)
                        .fetch_one(&mut admin)
                        .await?;
                    if left == 0 || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let renamed = async {
                    let mut tx = admin.begin().await?;
                    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                        .bind(RENAME_TIMEOUTS[attempt])
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(&live), quote_ident(&previous)))
                        .execute(&mut *tx)
                        .await?;
                    #[cfg(feature = "testing")]
                    crate::testing::pause_point("swap:between-renames").await;
                    sqlx::query(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(incoming), quote_ident(&live)))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await;
                match renamed {
                    Ok(()) => break,
                    // A session still exiting: tried again at once.
                    Err(sqlx::Error::Database(e))
                        if e.code().as_deref() == Some("57014") && attempt + 1 < RENAME_TIMEOUTS.len() =>
                    {
                        tracing::debug!(attempt, "rename met a session still exiting; trying again");
                        attempt += 1;
                    }
                    // "being accessed by other users": a connection slipped in.
                    Err(e) if attempt + 1 < RENAME_TIMEOUTS.len() => {
                        tracing::warn!(error = %e, attempt, "rename refused; ending connections again");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") => {
                        return Err(sessions_in_the_way())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        #[cfg(feature = "testing")]
        if swapped.is_ok() {
            crate::testing::pause_point("swap:after-renames").await;
        }
        if swapped.is_err() {
            // Still the old database under the live name: let it serve again.
            let _ = sqlx::query(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                quote_ident(&live)
            ))
            .execute(&mut admin)
            .await;
        }
        settings::maintenance_off(&dbs.control).await?;
        let window = started.elapsed();
        swapped?;
        // The previous database stays closed to connections until an undo.
        admin.close().await?;
        tracing::info!(previous = %previous, window_ms = window.as_millis() as u64, "database swapped");
        Ok(SwapReport {
            previous,
            maintenance_window: window,
        })
    }
}

/// Why a switch cannot happen while a session this role may not end (a
/// superuser's) is connected.
fn sessions_in_the_way() -> Error {
    Error::Conflict(
        "Other sessions stayed connected to the LMS database (a superuser's, which this console \
         cannot end) and PostgreSQL would not switch it; nothing was changed. End them and try again."
            .into(),
    )
}
