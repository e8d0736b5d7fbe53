//! A sandboxed server's process limit where the kernel's `RLIMIT_NPROC` gives none: for root,
//! which that limit exempts. The server runs in a `pids` control group of its own
//! (`warden-<server>-<pid>-<n>` beneath Warden's own group) whose `pids.max` is the limit; it
//! joins the group between fork and exec, so everything it starts is counted and, when it exits,
//! whatever is left in the group is killed and the group removed.
//!
//! Version 1 hierarchies (`/sys/fs/cgroup/pids`) and version 2 (where Warden's group delegates
//! the `pids` controller to its children) are both used; without either, a server that needs a
//! process limit is not started.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A server's pids group, made ready before the fork.
#[derive(Debug)]
pub(crate) struct PidsGroup {
    /// The group's directory.
    pub(crate) dir: PathBuf,
    /// Its `cgroup.procs`, open for writing: the child joins by writing `0` to it.
    procs: OwnedFd,
}

impl PidsGroup {
    /// Creates the group for `server` with at most `max` processes and threads.
    pub(crate) fn create(server: &str, max: u64) -> Result<PidsGroup, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let parent = own_pids_group().ok_or("no pids control group is writable")?;
        SWEPT.call_once(|| sweep(&parent));
        let safe: String = server.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
        let dir = parent.join(format!("warden-{safe}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&dir).map_err(|e| format!("the pids control group cannot be made ({e})"))?;
        let made = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("pids.max"))
            .and_then(|mut f| f.write_all(max.to_string().as_bytes()))
            .and_then(|()| std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs")));
        match made {
            Ok(procs) => Ok(PidsGroup { dir, procs: procs.into() }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("the pids control group cannot be set up ({e})"))
            }
        }
    }

    /// Moves the calling process into the group: runs between fork and exec, one system call.
    pub(crate) fn join(&self) -> std::io::Result<()> {
        // SAFETY: a write of a static buffer to a descriptor this struct owns.
        let n = unsafe { libc::write(self.procs.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n == 1 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    }
}

/// Kills whatever is left in the group at `dir` and removes it.
pub(crate) async fn remove(dir: &Path) {
    // Version 2 kills the whole group at once; version 1 has only the list of members.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..40 {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        if std::fs::remove_dir(dir).is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tracing::warn!(group = %dir.display(), "a sandbox's pids control group could not be removed");
}

/// Removes the groups a gateway that is gone left behind (`warden-<server>-<pid>-<n>` whose
/// `<pid>` no longer runs), killing what is still in them: a gateway that crashed leaves its
/// servers' groups, and whatever they had started, behind.
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("warden-") else { continue };
        let mut parts = rest.rsplitn(3, '-');
        let (Some(_n), Some(pid), Some(_server)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if pid == std::process::id() as i32 || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for member in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(member), nix::sys::signal::Signal::SIGKILL);
            }
        }
        for _ in 0..20 {
            if std::fs::remove_dir(&dir).is_ok() {
                tracing::info!(group = %dir.display(), "removed a sandbox control group a stopped gateway left");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }
}

/// The directory of Warden's own pids group, where a child group can be made.
fn own_pids_group() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            let dir = Path::new("/sys/fs/cgroup/pids").join(rel);
            if dir.join("cgroup.procs").exists() {
                return Some(dir);
            }
        }
        if id == "0" && controllers.is_empty() {
            let dir = Path::new("/sys/fs/cgroup").join(rel);
            let delegated = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"));
            if delegated {
                return Some(dir);
            }
        }
    }
    None
}
