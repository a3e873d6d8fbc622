//! A held operation lock, kept alive by a heartbeat task. If a heartbeat
//! finds the lease gone (taken over after a stall, or force-released), the
//! operation is told to stop through [`Lease::lost`].

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::Engine;
use crate::jobs::{self, lock};

/// The lock held for one job.
pub struct Lease {
    engine: Engine,
    job_id: Option<Uuid>,
    lost: CancellationToken,
    stop: CancellationToken,
}

impl Lease {
    /// Starts renewing the lease the caller just acquired.
    pub fn start(engine: Engine, job_id: Option<Uuid>) -> Self {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let (e, l, s) = (engine.clone(), lost.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(e.config().heartbeat_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = s.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match lock::heartbeat(&e.dbs().control, e.instance_id(), job_id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(
                            ?job_id,
                            "the operation lock was lost; stopping the operation"
                        );
                        l.cancel();
                        return;
                    }
                    // The control database is unreachable: keep trying; if
                    // it stays away long enough, another instance may take
                    // over and the next successful heartbeat says so.
                    Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                }
            }
        });
        Self {
            engine,
            job_id,
            lost,
            stop,
        }
    }

    /// Resolves when the lease is no longer ours.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Ends the job and releases the lock (if it is still ours) in one
    /// transaction, then stops the heartbeat. If the control database is
    /// away (PostgreSQL restarting), keeps trying for twice the lease
    /// timeout, so the job's outcome is recorded and the lock freed as soon
    /// as it is back; after that the lease simply expires.
    pub async fn finish(self, outcome: jobs::Outcome, message: Option<&str>) {
        self.stop.cancel();
        let deadline = std::time::Instant::now() + self.engine.config().lease_timeout * 2;
        let mut pause = std::time::Duration::from_millis(250);
        loop {
            let result = async {
                let mut tx = self.engine.dbs().control.begin().await?;
                if let Some(job) = self.job_id {
                    jobs::finish(&mut *tx, job, outcome, message).await?;
                }
                lock::release(&mut *tx, self.engine.instance_id(), self.job_id).await?;
                tx.commit().await?;
                Ok::<_, crate::Error>(())
            }
            .await;
            match result {
                Ok(()) => return,
                Err(err) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = %err, "could not end the job yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not end the job and release the lock; the lease will expire");
                    return;
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
