//! Whether backups can be made, uploaded and restored right now. The backup
//! directory must be there, readable, and be the directory the catalog's
//! backups are in. When it is not (an unmounted disk, a failed one, a
//! mistyped `BACKUP_DIR`), those operations are refused with a message
//! naming the directory and what to do, the console says so, and nothing is
//! created in its place or marked missing: that is a storage outage, not a
//! loss of files. It is looked at again on every operation and every few
//! seconds ([`Engine::watch_backup_dir`]), so the console works again as
//! soon as it is back, without a restart.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lms_types::Operation;
use serde::Serialize;

use crate::engine::Engine;
use crate::storage::DirProblem;
use crate::{catalog, Error, Result};

/// Why the backup directory cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirUnavailable {
    pub problem: DirProblem,
    /// For an administrator: which directory, what is wrong, what to do.
    pub message: String,
}

/// What this process last saw of the backup directory, so that a change
/// is logged once and a return acted on once.
#[derive(Debug, Default)]
pub(crate) struct DirWatch {
    /// `None` until the first look; then the problem seen, if any.
    last: Mutex<Option<Option<DirProblem>>>,
    /// A look at the files (after the directory came back) is running.
    checking_files: AtomicBool,
}

impl Engine {
    /// Looks at the backup directory now: `None` when it can be used. A
    /// directory without its `metadata/` folder while the catalog lists no
    /// stored backup is a new one an operator made: it is given the folder.
    pub async fn backup_dir_unavailable(&self) -> Result<Option<DirUnavailable>> {
        let dir = self.backup_dir();
        let mut problem = dir.problem().await;
        let mut stored = 0;
        if problem == Some(DirProblem::WithoutMetadata) {
            stored = catalog::count_stored(&self.dbs().control).await?;
            if stored == 0 {
                if let Err(e) = dir.create_metadata_dir().await {
                    tracing::error!(error = %e, dir = %dir.path().display(), "could not create the backup directory's metadata folder");
                }
                problem = dir.problem().await;
            }
        }
        self.note_backup_dir(problem);
        Ok(problem.map(|problem| DirUnavailable {
            problem,
            message: unavailable_message(dir.path(), problem, stored),
        }))
    }

    /// Fails with [`Error::StorageUnavailable`] while the backup directory
    /// cannot be used.
    pub async fn require_backup_dir(&self) -> Result<()> {
        match self.backup_dir_unavailable().await? {
            None => Ok(()),
            Some(unavailable) => Err(Error::StorageUnavailable(unavailable.message)),
        }
    }

    /// Refuses, before its job begins, an operation that needs the backup
    /// directory while it cannot be used (undo only swaps databases).
    pub(crate) async fn require_backup_dir_for(&self, operation: Operation) -> Result<()> {
        match operation {
            Operation::Backup
            | Operation::Restore
            | Operation::Delete
            | Operation::Cleanup
            | Operation::Drill
            | Operation::Preview => self.require_backup_dir().await,
            // Prepared copies and the live database only.
            Operation::Undo
            | Operation::Recovery
            | Operation::Recover
            | Operation::RecoverUndo
            | Operation::RecoverPlan
            | Operation::Discard => Ok(()),
        }
    }

    /// Looks at the backup directory every heartbeat for as long as the
    /// process runs, so a directory that goes is logged at once and one that
    /// comes back is put to use (and its files checked) without a restart,
    /// even while nobody has the console open.
    pub fn watch_backup_dir(&self) {
        self.every_heartbeat(
            "could not check the backup directory",
            |engine| async move { engine.backup_dir_unavailable().await.map(|_| ()) },
        );
    }

    /// Logs a change of the directory's state; when it has come back, checks
    /// the catalog's files against it (in the background: whoever noticed
    /// does not wait for archives to be hashed).
    fn note_backup_dir(&self, now: Option<DirProblem>) {
        let watch = self.dir_watch();
        let before = {
            let mut last = watch.last.lock().unwrap_or_else(|p| p.into_inner());
            last.replace(now)
        };
        let path = self.backup_dir().path().display().to_string();
        match (before, now) {
            (before, Some(problem)) if before != Some(Some(problem)) => {
                tracing::error!(dir = %path, ?problem, "backups are disabled: the backup directory cannot be used; nothing is marked missing while it is so");
            }
            (Some(Some(_)), None) => {
                tracing::info!(dir = %path, "the backup directory is back; backups are enabled again");
                if watch.checking_files.swap(true, Ordering::AcqRel) {
                    return;
                }
                let engine = self.clone();
                tokio::spawn(async move {
                    let actor = crate::audit::Actor::system("system");
                    if let Err(e) = engine.check_backup_files(&actor).await {
                        tracing::warn!(error = ?e, "could not check the backup files after the directory came back");
                    }
                    engine
                        .dir_watch()
                        .checking_files
                        .store(false, Ordering::Release);
                });
            }
            _ => {}
        }
    }
}

/// What an administrator reads: the directory, what is wrong, what to do.
fn unavailable_message(path: &Path, problem: DirProblem, stored: i64) -> String {
    let path = path.display();
    let back = "The console notices when it is back; no backup is marked missing meanwhile.";
    match problem {
        DirProblem::Missing => format!(
            "Backups are unavailable: the backup directory {path} does not exist. If it is on a disk \
             that is not mounted, mount it; if this is a new installation, create it \
             (mkdir -m 750 {path}). {back}"
        ),
        DirProblem::NotADirectory => format!(
            "Backups are unavailable: {path} (BACKUP_DIR) is not a directory. Point BACKUP_DIR at the \
             backup directory, or move what is at that path aside. {back}"
        ),
        DirProblem::Unreadable => format!(
            "Backups are unavailable: the backup directory {path} cannot be read. Check its \
             permissions and its disk. {back}"
        ),
        DirProblem::WithoutMetadata => format!(
            "Backups are unavailable: the backup directory {path} holds none of the {stored} backup{s} \
             the catalog lists (it has no metadata folder), so it is probably the mount point of a \
             disk that is not mounted: mount it. If those backups are gone for good and this \
             directory is to be used from now on, create {path}/metadata. {back}",
            s = if stored == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_names_the_directory_and_what_to_do() {
        let path = Path::new("/srv/lms-backups");
        for (problem, advice) in [
            (DirProblem::Missing, "mount it"),
            (DirProblem::NotADirectory, "Point BACKUP_DIR"),
            (DirProblem::Unreadable, "permissions"),
            (DirProblem::WithoutMetadata, "mount it"),
        ] {
            let message = unavailable_message(path, problem, 3);
            assert!(message.contains("/srv/lms-backups"), "{message}");
            assert!(message.contains(advice), "{message}");
            assert!(message.contains("no backup is marked missing"), "{message}");
        }
    }
}
