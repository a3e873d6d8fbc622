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
            } else if connecting(stderr_tail) && stderr_tail.contains("no encryption") {
                format!("{tool} was refused a connection without TLS: the database server takes this role only over TLS. Set sslmode in DATABASE_URL (verify-full, with sslrootcert).")
            } else if connecting(stderr_tail)
                && ["SSL error", "certificate", "SSL was required", "private key"]
                    .iter()
                    .any(|sign| stderr_tail.contains(sign))
            {
                format!("{tool} could not set up a verified TLS connection to the database server: check sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL against the server's certificate.")
            } else if let Some(signal) = status.signal() {
                format!("{tool} was stopped by signal {signal} before it finished; nothing was kept. Try again.")
            } else if stderr_tail.contains("could not connect") || stderr_tail.contains("Connection refused") {
                format!("{tool} could not connect to the database server. Check that PostgreSQL is running.")
            } else if let Some(table) = forced_row_security(stderr_tail) {
                format!("{tool} could not read every row of table {table}: row-level security is forced on it even for its owner, and a backup must hold every row. Nothing was kept. Have its owner run ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY, or give the application role BYPASSRLS.")
            } else if stderr_tail.contains("could not open input file") {
                format!("{tool} could not open the backup file: it disappeared (was the backup directory removed or unmounted?); nothing was kept.")
            } else if ["server closed the connection", "terminating connection", "connection to server was lost", "could not receive data from server", "SSL SYSCALL error", "SSL connection has been closed unexpectedly"]
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

/// The table pg_dump names when row-level security would hide rows from
/// it (`query would be affected by row-level security policy for table
/// "x"`), as the quoted name it gives.
fn forced_row_security(stderr: &str) -> Option<&str> {
    let rest = stderr
        .split("query would be affected by row-level security policy for table ")
        .nth(1)?;
    let name = rest.lines().next()?.trim();
    (name.starts_with('"') && name.ends_with('"') && name.len() > 2).then_some(name)
}

/// True when a tool's stderr says it failed to connect (rather than losing
/// a connection it had): libpq's "connection to server at … failed".
fn connecting(stderr_tail: &str) -> bool {
    stderr_tail.contains("connection to server at") || stderr_tail.contains("could not connect")
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
    fn a_table_hidden_by_forced_row_security_is_named_with_the_fix() {
        use std::os::unix::process::ExitStatusExt;
        let err = Error::ToolFailed {
            tool: "pg_dump",
            status: std::process::ExitStatus::from_raw(256),
            stderr_tail: "pg_dump: dumping contents of table \"public.policed\"\n\
                pg_dump: error: query failed: ERROR:  query would be affected by row-level security policy for table \"policed\"\n\
                HINT:  To disable the policy for the table's owner, use ALTER TABLE NO FORCE ROW LEVEL SECURITY."
                .into(),
        };
        let message = failure_message(&err);
        assert!(
            message.contains("table \"policed\"")
                && message.contains("ALTER TABLE \"policed\" NO FORCE ROW LEVEL SECURITY"),
            "{message}"
        );
    }

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

    #[test]
    fn tls_failures_point_at_the_url_settings() {
        use std::os::unix::process::ExitStatusExt;
        let failed = |stderr: &str| {
            failure_message(&Error::ToolFailed {
                tool: "pg_dump",
                status: std::process::ExitStatus::from_raw(256),
                stderr_tail: stderr.into(),
            })
        };
        let plain = failed("pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"lms\", database \"lms\", no encryption");
        assert!(
            plain.contains("without TLS") && plain.contains("sslmode"),
            "{plain}"
        );
        for stderr in [
            "pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify failed",
            "pg_dump: error: connection to server at \"db\", port 5432 failed: server certificate for \"x\" does not match host name \"db\"",
            "pg_dump: error: connection to server at \"db\", port 5432 failed: root certificate file \"/nope\" does not exist",
            "pg_dump: error: connection to server at \"db\", port 5432 failed: FATAL:  connection requires a valid client certificate",
            "pg_dump: error: connection to server at \"db\", port 5432 failed: server does not support SSL, but SSL was required",
        ] {
            let message = failed(stderr);
            assert!(message.contains("sslrootcert"), "{stderr}: {message}");
            assert!(!message.contains("/nope") && !message.contains("127.0.0.1"), "{message}");
        }
        // A TLS connection lost mid-dump is a lost connection, not a setup problem.
        for stderr in [
            "pg_dump: error: Dumping the contents of table \"users\" failed: PQgetCopyData() failed.\npg_dump: detail: Error message from server: SSL SYSCALL error: EOF detected",
            "pg_dump: error: query failed: SSL connection has been closed unexpectedly",
        ] {
            assert!(failed(stderr).contains("lost its connection"), "{stderr}");
        }
    }
}
