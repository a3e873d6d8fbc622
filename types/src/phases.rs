//! The phases of each long operation, in order, with the words the console
//! shows for them and the share of the progress bar each covers. The engine
//! walks these tables (a job's phase and progress come from them), the UI
//! reads the same tables for its words, so the three never disagree.

use crate::Operation;

text_enum! {
    /// A step of a long operation, as stored in its job.
    Phase {
        Starting => "starting",
        Checking => "checking",
        Dumping => "dumping",
        Verifying => "verifying",
        Saving => "saving",
        /// Copying a verified backup off-site and reading it back.
        Offsite => "offsite",
        Restoring => "restoring",
        Switching => "switching",
        Deleting => "deleting",
        /// The job succeeded.
        Done => "done",
    }
}

/// One phase of an operation: what it is called and which part of the
/// progress bar (`start..end`, within 0..=1) it fills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseSpec {
    pub phase: Phase,
    /// What an administrator reads while it runs.
    pub words: &'static str,
    pub start: f64,
    pub end: f64,
}

impl PhaseSpec {
    /// The overall progress when this phase is `fraction` (0..=1) done.
    pub fn at(&self, fraction: f64) -> f64 {
        self.start + (self.end - self.start) * fraction.clamp(0.0, 1.0)
    }
}

const fn spec(phase: Phase, words: &'static str, start: f64, end: f64) -> PhaseSpec {
    PhaseSpec {
        phase,
        words,
        start,
        end,
    }
}

const STARTING: PhaseSpec = spec(Phase::Starting, "Starting", 0.0, 0.0);

/// A backup's dump: the fingerprint beside it, and the archive read back in
/// full by pg_restore as it is written.
const DUMPING: &str = "Dumping the database and reading the archive back";
/// The archive lists every table (and, kept encrypted, opens).
const CHECKING_ARCHIVE: &str = "Checking the archive's contents";

/// A backup: gates, the dump (with the fingerprint and the full read beside
/// it), the archive's contents checked, then saving it under its name with
/// its manifest.
pub const BACKUP: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Checking, "Checking space and versions", 0.0, 0.02),
    spec(Phase::Dumping, DUMPING, 0.02, 0.94),
    spec(Phase::Verifying, CHECKING_ARCHIVE, 0.94, 0.97),
    spec(
        Phase::Saving,
        "Saving the archive and its manifest",
        0.97,
        1.0,
    ),
];

/// A backup with an off-site target: the same, then the copy sent and
/// read back.
pub const BACKUP_OFFSITE: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Checking, "Checking space and versions", 0.0, 0.02),
    spec(Phase::Dumping, DUMPING, 0.02, 0.70),
    spec(Phase::Verifying, CHECKING_ARCHIVE, 0.70, 0.73),
    spec(
        Phase::Saving,
        "Saving the archive and its manifest",
        0.73,
        0.75,
    ),
    spec(
        Phase::Offsite,
        "Copying off-site and reading the copy back",
        0.75,
        1.0,
    ),
];

/// A restore: gates on the archive, the restore into a copy beside the
/// live database, the comparison with the backup, then the switch.
pub const RESTORE: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Verifying, "Checking the archive", 0.0, 0.05),
    spec(
        Phase::Restoring,
        "Restoring into a copy beside the live database",
        0.05,
        0.80,
    ),
    spec(
        Phase::Checking,
        "Comparing the copy with the backup",
        0.80,
        0.95,
    ),
    spec(Phase::Switching, "Switching the copy in", 0.95, 1.0),
];

/// An undo: one switch back.
pub const UNDO: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Switching, "Switching the copy in", 0.5, 1.0),
];

/// Deleting a backup.
pub const DELETE: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Deleting, "Deleting the backup", 0.0, 1.0),
];

/// A retention pass on its own (`lms-admin backup prune`).
pub const CLEANUP: &[PhaseSpec] = &[
    STARTING,
    spec(
        Phase::Deleting,
        "Deleting the backups retention no longer keeps",
        0.0,
        1.0,
    ),
];

/// The phases of `operation`, in order (empty for recovery, which has no job).
/// A restore drill: the restore's first phases into a scratch database,
/// then its checks; nothing is switched.
pub const DRILL: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Verifying, "Checking the archive", 0.0, 0.05),
    spec(
        Phase::Restoring,
        "Restoring into a scratch database",
        0.05,
        0.85,
    ),
    spec(
        Phase::Checking,
        "Comparing with the backup, migrating, querying",
        0.85,
        1.0,
    ),
];

/// Preview changes: the restore's first phases into a prepared copy that
/// is kept, then the copy checked and compared with the live database.
pub const PREVIEW: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Verifying, "Checking the archive", 0.0, 0.05),
    spec(
        Phase::Restoring,
        "Restoring into a prepared copy",
        0.05,
        0.75,
    ),
    spec(
        Phase::Checking,
        "Checking the copy and comparing it with the live database",
        0.75,
        1.0,
    ),
];

/// Bringing records back from the prepared copy.
pub const RECOVER: &[PhaseSpec] = &[
    STARTING,
    spec(
        Phase::Checking,
        "Working out what belongs to the record and what is missing",
        0.0,
        0.5,
    ),
    spec(
        Phase::Saving,
        "Inserting the records in one transaction",
        0.5,
        1.0,
    ),
];

/// Working out a recovery's plan (nothing changes).
pub const RECOVER_PLAN: &[PhaseSpec] = &[
    STARTING,
    spec(
        Phase::Checking,
        "Working out what belongs to the record and what is missing",
        0.0,
        1.0,
    ),
];

/// Deleting the records a recovery inserted.
pub const RECOVER_UNDO: &[PhaseSpec] = &[
    STARTING,
    spec(
        Phase::Checking,
        "Checking nothing changed the recovered records since",
        0.0,
        0.5,
    ),
    spec(
        Phase::Deleting,
        "Deleting the recovered records in one transaction",
        0.5,
        1.0,
    ),
];

/// Dropping the prepared copy.
pub const DISCARD: &[PhaseSpec] = &[
    STARTING,
    spec(Phase::Deleting, "Dropping the prepared copy", 0.0, 1.0),
];

pub fn of(operation: Operation) -> &'static [PhaseSpec] {
    match operation {
        Operation::Drill => DRILL,
        Operation::Backup => BACKUP,
        Operation::Restore => RESTORE,
        Operation::Undo => UNDO,
        Operation::Delete => DELETE,
        Operation::Cleanup => CLEANUP,
        Operation::Recovery => &[],
        Operation::Preview => PREVIEW,
        Operation::Recover => RECOVER,
        Operation::RecoverUndo => RECOVER_UNDO,
        Operation::RecoverPlan => RECOVER_PLAN,
        Operation::Discard => DISCARD,
    }
}

/// The table entry for `phase` of `operation` (a backup's from the longer
/// table, with the off-site copy: its other words are the same).
pub fn find(operation: Operation, phase: Phase) -> Option<&'static PhaseSpec> {
    let table = match operation {
        Operation::Backup => BACKUP_OFFSITE,
        other => of(other),
    };
    table.iter().find(|s| s.phase == phase)
}

/// What the console says while `operation` is in `phase`.
pub fn words(operation: Operation, phase: Phase) -> &'static str {
    match phase {
        Phase::Done => "Done",
        _ => find(operation, phase).map_or("Working", |s| s.words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_runs_forward_from_zero_to_one() {
        let tables = Operation::ALL
            .iter()
            .map(|&operation| (operation, of(operation)))
            .chain([(Operation::Backup, BACKUP_OFFSITE)]);
        for (operation, table) in tables {
            if table.is_empty() {
                continue;
            }
            assert_eq!(table[0].phase, Phase::Starting, "{operation}");
            let mut last = 0.0;
            for s in table {
                assert!(
                    s.start >= last - 1e-9 || s.phase == Phase::Starting,
                    "{operation} {}",
                    s.phase
                );
                assert!(s.end >= s.start && s.end <= 1.0, "{operation} {}", s.phase);
                last = s.end;
            }
            assert!((last - 1.0).abs() < 1e-9, "{operation} ends at {last}");
        }
    }

    #[test]
    fn words_come_from_the_tables() {
        assert_eq!(
            words(Operation::Backup, Phase::Verifying),
            "Checking the archive's contents"
        );
        assert_eq!(
            words(Operation::Restore, Phase::Verifying),
            "Checking the archive"
        );
        assert_eq!(
            words(Operation::Backup, Phase::Offsite),
            "Copying off-site and reading the copy back"
        );
        // The words of the phases both backup tables have are the same.
        for s in BACKUP {
            assert_eq!(find(Operation::Backup, s.phase).unwrap().words, s.words);
        }
        assert_eq!(
            find(Operation::Restore, Phase::Restoring).unwrap().at(0.5),
            0.425
        );
    }
}
