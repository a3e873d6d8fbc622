//! Room on the backup directory's disk, promised to the writers still
//! writing. A free-space check alone lets two uploads (or an upload and a
//! backup) that each fit on their own start together and fill the disk
//! between them: each writer therefore claims the bytes it may still write
//! ([`DiskBudget::claim`]), and the next one is measured against the free
//! space minus those claims. A claim shrinks as its bytes arrive (they are
//! then counted by the file system instead) and ends when its writer does,
//! however it ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::BackupDir;
use crate::jobs::messages::human;
use crate::{Error, Result};

/// Who is writing: uploads are counted against their own limit, and only
/// they must leave the configured margin free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Upload,
    Backup,
}

/// A request for room on the disk.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    pub writer: Writer,
    /// The most the writer may write.
    pub bytes: u64,
    /// Free space that must remain after this claim and all others.
    pub margin: u64,
    /// Uploads allowed at once (this one included); ignored for backups.
    pub max_uploads: usize,
}

/// The claims of this process's writers on the backup directory's disk.
#[derive(Debug, Default)]
pub struct DiskBudget {
    claims: Mutex<Vec<Arc<ClaimState>>>,
    /// Admissions one at a time: the free space read and the claims
    /// counted must describe the same moment.
    admission: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct ClaimState {
    writer: Writer,
    bytes: u64,
    written: AtomicU64,
}

impl ClaimState {
    /// Bytes the writer may still add to the disk.
    fn outstanding(&self) -> u64 {
        self.bytes
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }
}

/// Room held for one writer until it is dropped.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<DiskBudget>,
    state: Arc<ClaimState>,
}

impl Claim {
    /// Wraps the writer's source so the bytes it yields shrink the claim.
    pub fn meter<R: AsyncRead + Unpin>(&self, source: R) -> Metered<R> {
        Metered {
            source,
            state: self.state.clone(),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = self.budget.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.retain(|c| !Arc::ptr_eq(c, &self.state));
    }
}

impl DiskBudget {
    /// What the running writers may still write, and how many uploads run.
    fn outstanding(&self) -> (u64, usize, usize) {
        let claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = claims.iter().map(|c| c.outstanding()).sum();
        let uploads = claims.iter().filter(|c| c.writer == Writer::Upload).count();
        (bytes, uploads, claims.len() - uploads)
    }

    /// Claims room for a writer on `dir`'s disk, or refuses: a
    /// [`Error::Conflict`] when `max_uploads` uploads are running already,
    /// [`Error::InsufficientStorage`] (for uploads; [`Error::Invalid`] for a
    /// backup, whose job says so) when the free space, less what running
    /// writers may still write, would fall below the margin.
    pub async fn claim(self: &Arc<Self>, dir: &BackupDir, request: ClaimRequest) -> Result<Claim> {
        let _one_at_a_time = self.admission.lock().await;
        let (promised, uploads, backups) = self.outstanding();
        if request.writer == Writer::Upload && uploads >= request.max_uploads {
            return Err(Error::Conflict(format!(
                "{} already being received (MAX_CONCURRENT_UPLOADS is {}); try again when {} finished.",
                plural(uploads, "upload is", "uploads are"),
                request.max_uploads,
                if uploads == 1 { "it has" } else { "one has" },
            )));
        }
        // Read after the claims were counted: bytes written meanwhile are
        // then missing from both the free space and the claims, never
        // counted twice in the writers' favour.
        let free = dir.free_space().await?;
        let room = free.saturating_sub(promised);
        if room < request.bytes.saturating_add(request.margin) {
            let running = match (uploads, backups) {
                (0, 0) => String::new(),
                (u, 0) => format!(
                    ", {} of it promised to {} in progress",
                    human(promised),
                    plural(u, "upload", "uploads")
                ),
                (0, _) => format!(
                    ", {} of it promised to the backup in progress",
                    human(promised)
                ),
                (u, _) => format!(
                    ", {} of it promised to {} and a backup in progress",
                    human(promised),
                    plural(u, "upload", "uploads")
                ),
            };
            return Err(match request.writer {
                Writer::Upload => Error::InsufficientStorage(format!(
                    "Not enough room on the backup disk for this upload: it may take up to {}, \
                     the disk has {} free{running}, and {} must stay free (MIN_FREE_SPACE). \
                     Delete old backups or free space on that disk{}.",
                    human(request.bytes),
                    human(free),
                    human(request.margin),
                    if uploads + backups > 0 { ", or try again once the others have finished" } else { "" },
                )),
                Writer::Backup => Error::Invalid(format!(
                    "Not enough free space for the backup: {} free in the backup directory{running}, \
                     up to {} needed. Free some space or delete old backups.",
                    human(free),
                    human(request.bytes),
                )),
            });
        }
        let state = Arc::new(ClaimState {
            writer: request.writer,
            bytes: request.bytes,
            written: AtomicU64::new(0),
        });
        self.claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(state.clone());
        Ok(Claim {
            budget: self.clone(),
            state,
        })
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A source whose bytes are counted against a [`Claim`] as they are read.
pub struct Metered<R> {
    source: R,
    state: Arc<ClaimState>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.source).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.state.written.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn request(writer: Writer, bytes: u64) -> ClaimRequest {
        ClaimRequest {
            writer,
            bytes,
            margin: 0,
            max_uploads: 2,
        }
    }

    #[tokio::test]
    async fn claims_count_until_written_and_end_with_their_writer() {
        let root = std::env::temp_dir();
        let dir = BackupDir::new(&root);
        let free = dir.free_space().await.unwrap();
        let budget = Arc::new(DiskBudget::default());
        // Half the disk each: the third writer does not fit.
        let half = free / 2 - 1;
        let first = budget
            .claim(&dir, request(Writer::Upload, half))
            .await
            .unwrap();
        let second = budget
            .claim(&dir, request(Writer::Backup, half))
            .await
            .unwrap();
        let refused = budget.claim(&dir, request(Writer::Upload, half)).await;
        assert!(
            matches!(&refused, Err(Error::InsufficientStorage(m)) if m.contains("promised to 1 upload and a backup")),
            "{refused:?}"
        );
        assert_eq!(budget.outstanding(), (2 * half, 1, 1));

        // Bytes read through the meter no longer count as promised.
        let mut metered = first.meter(&[0u8; 1000][..]);
        let mut sink = Vec::new();
        metered.read_to_end(&mut sink).await.unwrap();
        assert_eq!(budget.outstanding().0, 2 * half - 1000);

        drop(second);
        assert_eq!(budget.outstanding(), (half - 1000, 1, 0));
        drop(first);
        assert_eq!(budget.outstanding(), (0, 0, 0));
    }

    #[tokio::test]
    async fn uploads_are_counted_against_their_limit() {
        let dir = BackupDir::new(std::env::temp_dir());
        let budget = Arc::new(DiskBudget::default());
        let _a = budget
            .claim(&dir, request(Writer::Upload, 1))
            .await
            .unwrap();
        let _b = budget
            .claim(&dir, request(Writer::Upload, 1))
            .await
            .unwrap();
        let refused = budget.claim(&dir, request(Writer::Upload, 1)).await;
        assert!(
            matches!(&refused, Err(Error::Conflict(m)) if m.contains("2 uploads are already")),
            "{refused:?}"
        );
        // A backup is not an upload.
        budget
            .claim(&dir, request(Writer::Backup, 1))
            .await
            .unwrap();
    }
}
