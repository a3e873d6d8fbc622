//! What a person reads when a job fails: words that say what happened and
//! what to do. Details (stderr, SQL, paths) go to the log, never here.

use crate::Error;

/// What an interrupted restore or undo says (`{operation}` stands for which):
/// it may have stopped after its switch took effect (the two renames are
/// one transaction, so all or nothing), so it tells how to see which.
pub const SWITCH_INTERRUPTED: &str = "Interrupted: the server stopped during this {operation}. \
    If it stopped while switching, the switch either fully happened (the database overview shows \
    the restored data and Undo last restore is offered) or did not happen at all; nothing is half-done.";

/// The message a person sees when a job fails. Details go to the log.
pub fn failure_message(err: &Error) -> String {
    match err {
        Error::ToolFailed { tool, status, stderr_tail } => {
            use std::os::unix::process::ExitStatusExt;
            if stderr_tail.contains("password authentication failed") || stderr_tail.contains("no password supplied") {
                format!("{tool} could not sign in to the database: check the password in DATABASE_URL.")
            } else if let Some(signal) = status.signal() {
                format!("{tool} was stopped by signal {signal} before it finished; nothing was kept. Try again.")
            } else if stderr_tail.contains("could not connect") || stderr_tail.contains("Connection refused") {
                format!("{tool} could not connect to the database server. Check that PostgreSQL is running.")
            } else if stderr_tail.contains("could not open input file") {
                format!("{tool} could not open the backup file: it disappeared (was the backup directory removed or unmounted?); nothing was kept.")
            } else if ["server closed the connection", "terminating connection", "connection to server was lost", "could not receive data from server"]
                .iter()
                .any(|sign| stderr_tail.contains(sign))
            {
                format!("{tool} lost its connection to the database server (PostgreSQL stopped or restarted); nothing was changed. Check that PostgreSQL is running, then try again.")
            } else {
                format!("{tool} failed ({status}). Nothing was kept; the server log has the details.")
            }
        }
        Error::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
            "The backup directory ran out of space while writing; nothing was kept. Free some space and try again."
                .into()
        }
        Error::Io(e) if matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)) => {
            "The backup directory is not writable; nothing was kept. Check BACKUP_DIR's permissions.".into()
        }
        Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "The backup directory disappeared while writing; nothing was kept. Check BACKUP_DIR.".into()
        }
        Error::Database(_) => "The database could not be read. Check that PostgreSQL is running; the server log has the details.".into(),
        Error::Invalid(m) | Error::Tool(m) | Error::Cancelled(m) | Error::Config(m) | Error::Conflict(m) | Error::TooLarge(m) | Error::TimedOut(m)
        | Error::StorageUnavailable(m) | Error::InsufficientStorage(m) => m.clone(),
        other => format!("The operation failed ({other}); the server log has the details."),
    }
}

/// A size in the units people read (MB, GB).
pub fn human(bytes: u64) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_messages_hide_internals() {
        let err = Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(failure_message(&err).contains("ran out of space"));
        use std::os::unix::process::ExitStatusExt;
        let killed = Error::ToolFailed {
            tool: "pg_dump",
            status: std::process::ExitStatus::from_raw(9),
            stderr_tail: "x".into(),
        };
        assert!(failure_message(&killed).contains("signal 9"));
        let auth = Error::ToolFailed {
            tool: "pg_dump",
            status: std::process::ExitStatus::from_raw(256),
            stderr_tail: "FATAL:  password authentication failed for user \"lms\"".into(),
        };
        assert!(failure_message(&auth).contains("DATABASE_URL"));
    }
}
