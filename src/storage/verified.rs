//! Archives proven to match their manifest, remembered by the identity of
//! the file that was read, so that the requests of one download (a resumed
//! `Range`, a `HEAD`) do not read the whole archive again. Any change to the
//! file changes its identity (its change time cannot be set back), and the
//! next request reads it in full again.

use std::collections::HashMap;
use std::sync::Mutex;

use std::os::unix::fs::MetadataExt;

/// What tells whether a file is still the one that was read, without
/// reading it: which file it is and its length, modification and change
/// times. Writing to it or replacing it changes the change time, which
/// cannot be set back (short of changing the system clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The file last changed (content or metadata) before `at`.
    pub(super) fn changed_before(&self, at: std::time::SystemTime) -> bool {
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(self.ctime.0.max(0) as u64, self.ctime.1 as u32);
        changed < at
    }
}

/// How long a file must have been left alone before its identity is
/// trusted to say it has not changed since.
pub(super) const SETTLED_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// How many archives are remembered; past it the memory starts over (an
/// archive forgotten is only read in full once more).
const CAPACITY: usize = 1024;

/// Archive name → the identity it had when it hashed to its manifest's
/// SHA-256, and that SHA-256.
#[derive(Default)]
pub struct VerifiedArchives {
    known: Mutex<HashMap<String, (FileIdentity, String)>>,
}

impl VerifiedArchives {
    /// The identity `name` had when it was last proven to hash to `sha256`.
    pub fn identity(&self, name: &str, sha256: &str) -> Option<FileIdentity> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(name)
            .filter(|(_, proven)| proven == sha256)
            .map(|(identity, _)| *identity)
    }

    /// Remembers that `name`, as `identity`, hashes to `sha256`.
    pub fn remember(&self, name: &str, identity: FileIdentity, sha256: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= CAPACITY && !known.contains_key(name) {
            known.clear();
        }
        known.insert(name.to_owned(), (identity, sha256.to_owned()));
    }

    /// Forgets `name` (it did not match, or it is being deleted).
    pub fn forget(&self, name: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.remove(name);
    }
}
