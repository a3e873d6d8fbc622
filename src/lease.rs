//! A held operation lock, kept alive by a heartbeat task. If a heartbeat
//! finds the lease gone (taken over after a stall, or force-released), the
//! operation is told to stop through [`Lease::lost`].

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::Engine;
use crate::lock;

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

    /// Stops the heartbeat and releases the lock (if it is still ours).
    pub async fn release(self) {
        self.stop.cancel();
        if let Err(err) = lock::release(
            &self.engine.dbs().control,
            self.engine.instance_id(),
            self.job_id,
        )
        .await
        {
            tracing::error!(error = %err, "could not release the operation lock; it will expire");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
