//! A held operation lock, kept alive by a heartbeat task. If a heartbeat
//! finds the lease gone (taken over after a stall, or force-released), the
//! operation is told to stop through [`Lease::lost`].

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::lock;
use crate::engine::Engine;

/// The lock held for one job, renewed until [`stop`](Lease::stop)ped or
/// dropped.
pub struct Lease {
    lost: CancellationToken,
    stop: CancellationToken,
}

impl Lease {
    /// Starts renewing the lease the caller just acquired.
    pub fn start(engine: Engine, job_id: Option<Uuid>) -> Self {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let (l, s) = (lost.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(engine.config().heartbeat_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = s.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match lock::heartbeat(&engine.dbs().control, engine.instance_id(), job_id).await {
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
        Self { lost, stop }
    }

    /// Resolves when the lease is no longer ours.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Stops renewing (the lock has been released).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
