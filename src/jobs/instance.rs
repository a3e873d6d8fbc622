//! Who holds the operation lock: an instance identity that says where a
//! process runs precisely enough to tell, from another process, whether the
//! holder is certainly dead.
//!
//! An identity is `host:pid:random:boot:pidns`. A process id means something
//! only on the same machine since the same boot and in the same PID
//! namespace (containers often share a host name but not a namespace), so a
//! holder is checked locally only when all three match; any other holder
//! (another machine, another container, an identity of an older version)
//! keeps its lease until the lease expires.

use std::sync::OnceLock;

use uuid::Uuid;

/// Where this process runs: host name, boot id and PID namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    host: String,
    boot: String,
    pid_namespace: String,
}

/// Read once per process (procfs; the first caller is start-up).
fn here() -> &'static Place {
    static HERE: OnceLock<Place> = OnceLock::new();
    HERE.get_or_init(|| Place {
        host: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.replace(':', "-"))
            .unwrap_or_else(|| "unknown-host".into()),
        boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().to_owned())
            .unwrap_or_default(),
        // "pid:[4026531836]": the namespace's inode number.
        pid_namespace: std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .and_then(|l| {
                l.to_string_lossy()
                    .trim_start_matches("pid:[")
                    .trim_end_matches(']')
                    .parse::<u64>()
                    .ok()
            })
            .map(|n| n.to_string())
            .unwrap_or_default(),
    })
}

/// This process's identity in the lock; a restarted process never reuses
/// one (the random part).
pub fn new_instance_id() -> String {
    let place = here();
    format!(
        "{}:{}:{}:{}:{}",
        place.host,
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8],
        place.boot,
        place.pid_namespace
    )
}

/// An identity taken apart: where, and which process.
struct Holder<'a> {
    host: &'a str,
    pid: &'a str,
    boot: &'a str,
    pid_namespace: &'a str,
}

fn parse(id: &str) -> Option<Holder<'_>> {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        [host, pid, _, boot, ns] if !boot.is_empty() && !ns.is_empty() => Some(Holder {
            host,
            pid,
            boot,
            pid_namespace: ns,
        }),
        _ => None,
    }
}

/// A holder on this same machine, boot and PID namespace whose process no
/// longer exists is dead for sure: its lease can be taken over at once
/// instead of after the timeout (this is what lets a restarted server work
/// immediately). Any holder that cannot be checked here is not dead.
pub(crate) fn holder_is_dead(holder: &str, ours: &str) -> bool {
    if holder == ours {
        return false;
    }
    let (Some(theirs), Some(mine)) = (parse(holder), parse(ours)) else {
        return false;
    };
    if (theirs.host, theirs.boot, theirs.pid_namespace)
        != (mine.host, mine.boot, mine.pid_namespace)
    {
        return false;
    }
    if theirs.pid == mine.pid {
        // Same place and pid, different identity: an earlier process that
        // died and whose pid we were given.
        return true;
    }
    theirs.pid.parse::<i32>().is_ok_and(|pid| {
        // Signal 0 checks that the process exists without touching it
        // (EPERM: it exists but is not ours to signal).
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    })
}

/// An identity of a process that is certainly dead here (same machine, boot
/// and namespace, a pid no process has): what a killed server leaves.
#[cfg(any(test, feature = "testing"))]
pub fn dead_local_holder() -> String {
    let place = here();
    format!(
        "{}:2147483646:dead:{}:{}",
        place.host, place.boot, place.pid_namespace
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_name_host_process_boot_and_namespace() {
        let id = new_instance_id();
        let parts: Vec<_> = id.split(':').collect();
        assert_eq!(parts.len(), 5, "{id}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert!(!parts[3].is_empty() && !parts[4].is_empty(), "{id}");
        assert_ne!(id, new_instance_id());
    }

    #[test]
    fn only_holders_checkable_here_are_declared_dead() {
        let ours = new_instance_id();
        let p = here();
        let at = |pid: &str, boot: &str, ns: &str| format!("{}:{pid}:abcd:{boot}:{ns}", p.host);
        assert!(!holder_is_dead(&ours, &ours));
        assert!(holder_is_dead(&dead_local_holder(), &ours));
        assert!(
            holder_is_dead(
                &at(&std::process::id().to_string(), &p.boot, &p.pid_namespace),
                &ours
            ),
            "our pid, earlier life"
        );
        assert!(
            !holder_is_dead(&at("1", &p.boot, &p.pid_namespace), &ours),
            "pid 1 is alive"
        );
        // The same host name elsewhere: another PID namespace (a container)
        // or another boot. Its pid means nothing here.
        assert!(!holder_is_dead(&at("2147483646", &p.boot, "1"), &ours));
        assert!(!holder_is_dead(
            &at("2147483646", "another-boot", &p.pid_namespace),
            &ours
        ));
        assert!(!holder_is_dead(
            &format!("other-host:2147483646:x:{}:{}", p.boot, p.pid_namespace),
            &ours
        ));
        // An identity of an older version (no boot, no namespace): wait for
        // its lease to expire.
        assert!(!holder_is_dead(
            &format!("{}:2147483646:dead", p.host),
            &ours
        ));
    }
}
