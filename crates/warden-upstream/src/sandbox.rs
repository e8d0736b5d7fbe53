//! The sandbox a stdio server runs in (`sandbox = "strict"`).
//!
//! Everything that can fail is prepared in the gateway before the fork: the Landlock ruleset (its
//! rules opened and added), the seccomp programs, the private temporary directory. Between fork and
//! exec the child only makes system calls, in this order:
//!
//! 1. resource limits (open files, processes, CPU time, address space, no core dumps);
//! 2. a new user and network namespace: the server has no network at all (its loopback is down
//!    and nothing else exists, so no packet leaves it), and whatever capabilities it holds are
//!    held only in its own namespace. A server with an egress list gets its loopback up and a
//!    listening socket on it, which it hands to the gateway before anything else runs: the
//!    gateway's egress proxy ([`crate::egress::proxy`]) accepts on it, so the server's only way
//!    out is a `CONNECT` that Warden decides;
//! 3. Landlock: reads, writes and executions only beneath the granted paths — the system's
//!    libraries and runtimes read-only, the program and its installation read-only, the private
//!    temporary directory read-write, and what the configuration grants; signals and abstract
//!    Unix sockets only within the sandbox (no new privileges is set with it);
//! 4. seccomp: the calls an MCP server never needs (tracing other processes, mounts, kernel
//!    modules and keyrings, namespaces, raw and packet sockets, BPF, …) fail with `EPERM`, so a
//!    server that tries one keeps running and answering.
//!
//! A grant that contains, or lies inside, a protected path (SSH and cloud credentials, browser
//! profiles, the gateway's own configuration, database and keys) is refused before the server is
//! started: Landlock can only allow, so such a grant would expose it. A kernel without the
//! features this needs refuses to start the server, naming the feature; there is no silent
//! downgrade.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a stdio server is confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Paths the server may read (and execute) beneath, besides the system's and its own program.
    pub read: Vec<PathBuf>,
    /// Paths the server may read and write beneath.
    pub write: Vec<PathBuf>,
    /// Paths never granted, whatever the configuration says (see [`protected_paths`]).
    pub protected: Vec<PathBuf>,
    /// Resource limits.
    pub limits: ResourceLimits,
    /// The hosts and addresses it may reach through Warden's egress proxy; empty: no network.
    pub egress: crate::egress::Rules,
}

/// Resource limits applied to the server's process (and inherited by what it starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Open files (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes and threads (`RLIMIT_NPROC` of the server's user; for a gateway running as root,
    /// which that limit exempts, a `pids` control group of the server's own). 0: no limit.
    pub processes: u64,
    /// CPU seconds (`RLIMIT_CPU`), if limited.
    pub cpu_seconds: Option<u64>,
    /// Address space in bytes (`RLIMIT_AS`), if limited. JavaScript runtimes reserve far more
    /// address space than they use: give Node servers several GiB.
    pub memory_bytes: Option<u64>,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits { open_files: 1024, processes: 512, cpu_seconds: None, memory_bytes: None }
    }
}

/// What a sandboxed server may read beneath, always: libraries, runtimes, certificates, time zones,
/// name service files, and `/proc` (whose other processes' secrets the kernel guards by ptrace
/// rules, which the server cannot meet from its own user namespace).
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/alternatives",
    "/etc/gitconfig",
    "/proc",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    "/dev/random",
];

/// What a sandboxed server may write, always.
const SYSTEM_WRITE: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

/// Paths under the home directory that hold credentials or browser data.
const HOME_SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".password-store",
    ".local/share/keyrings",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    ".config/microsoft-edge",
];

/// Paths no sandbox may be granted: credentials and browser data under `home` (and under root's
/// home), the system's password and SSH files, and `own` (the gateway's own files).
pub fn protected_paths(home: Option<&Path>, own: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/sudoers"].map(PathBuf::from).into();
    let homes: Vec<&Path> = home.into_iter().chain([Path::new("/root")]).collect();
    for h in homes {
        out.extend(HOME_SECRETS.iter().map(|s| h.join(s)));
    }
    out.extend(own.iter().cloned());
    out.sort();
    out.dedup();
    out
}

/// Whether one of `a`, `b` lies beneath (or is) the other.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Why the grants of `spec` cannot be given, if they cannot: a relative path, or one that contains
/// or lies inside a protected path. Checked again at every start; `warden check` reports it too.
pub fn check_grants(spec: &SandboxSpec) -> Result<(), String> {
    for grant in spec.read.iter().chain(&spec.write) {
        if !grant.is_absolute() {
            return Err(format!("sandbox grant {} is not an absolute path", grant.display()));
        }
        if let Some(p) = spec.protected.iter().find(|p| overlaps(grant, p)) {
            return Err(format!(
                "sandbox grant {} would expose {}, which no server may see; grant a narrower directory",
                grant.display(),
                p.display()
            ));
        }
    }
    Ok(())
}

/// Everything made ready in the gateway for one start of the server.
pub(crate) struct Prepared {
    ruleset: Option<RulesetCreated>,
    filters: Vec<BpfProgram>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    limits: ResourceLimits,
    /// The child's end of the channel it hands its proxy socket over (with an egress list).
    proxy_child: Option<std::os::fd::OwnedFd>,
    /// The gateway's end of that channel, taken before the fork.
    pub(crate) proxy_parent: Option<std::os::fd::OwnedFd>,
    /// The server's pids control group (a gateway running as root).
    pids: Option<crate::pids::PidsGroup>,
    /// That group's directory, removed when the server exits.
    pub(crate) pids_dir: Option<PathBuf>,
    /// The server's private temporary directory (also its `TMPDIR`), removed when it exits.
    pub(crate) tmp: PathBuf,
    /// A line for the log: what the server may reach.
    pub(crate) summary: String,
}

/// Makes the sandbox ready for `program` (as it will be executed) of server `server`.
pub(crate) fn prepare(spec: &SandboxSpec, program: &Path, server: &str) -> Result<Prepared, String> {
    check_grants(spec)?;
    let tmp = private_tmp(server).map_err(|e| format!("could not create the sandbox's temporary directory ({e})"))?;
    let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
    read.extend(program_paths(program, &spec.protected));
    read.extend(spec.read.iter().cloned());
    let mut write: Vec<PathBuf> = SYSTEM_WRITE.iter().map(PathBuf::from).collect();
    write.push(tmp.clone());
    write.extend(spec.write.iter().cloned());
    let ruleset = match ruleset(&read, &write) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let filters = filters().inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let limits = spec.limits;
    let pids = if spec.limits.processes > 0 && nix::unistd::geteuid().is_root() {
        let group = crate::pids::PidsGroup::create(server, spec.limits.processes).map_err(|why| {
            let _ = std::fs::remove_dir_all(&tmp);
            format!(
                "the sandbox cannot limit this server's processes: Warden runs as root, which the kernel's \
                 process limit exempts, and {why}; run Warden as an unprivileged user, or set \
                 sandbox_limits.processes = 0 to run this server without a process limit"
            )
        })?;
        Some(group)
    } else {
        None
    };
    let (proxy_parent, proxy_child) = if spec.egress.is_empty() {
        (None, None)
    } else {
        // Close-on-exec: the server never holds either end.
        let (a, b) = std::os::unix::net::UnixDatagram::pair().map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            if let Some(g) = &pids {
                let _ = std::fs::remove_dir(&g.dir);
            }
            format!("could not make the sandbox's proxy channel ({e})")
        })?;
        let (a, b) = (std::os::fd::OwnedFd::from(a), std::os::fd::OwnedFd::from(b));
        (Some(a), Some(b))
    };
    let network = if spec.egress.is_empty() {
        "network none".to_owned()
    } else {
        format!(
            "network only through Warden's egress proxy to {}",
            spec.egress.entries().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        )
    };
    let summary = format!(
        "{network}; read {}; write {}; open files {}, processes {}{}{}",
        spec.read.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        std::iter::once(tmp.display().to_string())
            .chain(spec.write.iter().map(|p| p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        limits.open_files,
        limits.processes,
        limits.cpu_seconds.map(|s| format!(", CPU {s}s")).unwrap_or_default(),
        limits.memory_bytes.map(|b| format!(", address space {} MiB", b >> 20)).unwrap_or_default(),
    );
    Ok(Prepared {
        ruleset: Some(ruleset),
        filters,
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        limits,
        proxy_child,
        proxy_parent,
        pids_dir: pids.as_ref().map(|g| g.dir.clone()),
        pids,
        tmp,
        summary,
    })
}

/// A fresh directory only the gateway's user can enter.
fn private_tmp(server: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let safe: String = server.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
    let dir = std::env::temp_dir().join(format!(
        "warden-sandbox-{safe}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// The program itself and, when it is installed as `PREFIX/bin/NAME`, its installation `PREFIX`
/// (a virtual environment, a language runtime), both as named and as its links resolve — unless
/// that would reach a protected path or the whole file system.
fn program_paths(program: &Path, protected: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![];
    // A script's interpreter (`#!/path/to/python`) is executed too: the same for it, once.
    if let Some(interpreter) = shebang(program)
        && interpreter != program
    {
        out.extend(program_paths_of(&interpreter, protected));
    }
    out.extend(program_paths_of(program, protected));
    out
}

/// The interpreter a script names on its first line, if it is one.
fn shebang(program: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n')?];
    let first = std::str::from_utf8(line).ok()?.split_whitespace().next()?;
    Some(PathBuf::from(first)).filter(|p| p.is_absolute())
}

fn program_paths_of(program: &Path, protected: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![];
    let named = program.to_path_buf();
    let resolved = std::fs::canonicalize(program).unwrap_or_else(|_| named.clone());
    for p in [named, resolved] {
        out.push(p.clone());
        if let Some(bin) = p.parent()
            && bin.file_name().is_some_and(|n| n == "bin")
            && let Some(prefix) = bin.parent()
            && prefix.parent().is_some()
            && !protected.iter().any(|x| overlaps(prefix, x))
        {
            out.push(prefix.to_path_buf());
        } else if let Some(dir) = p.parent()
            && dir.parent().is_some()
            && !protected.iter().any(|x| overlaps(dir, x))
        {
            out.push(dir.to_path_buf());
        }
    }
    out
}

/// The Landlock ruleset: `read` read-only (with execution), `write` read-write; paths that do not
/// exist are skipped. Needs Landlock ABI 6 (file truncation, signal and abstract-socket scoping).
fn ruleset(read: &[PathBuf], write: &[PathBuf]) -> Result<RulesetCreated, String> {
    let abi = ABI::V6;
    let missing = |e: &dyn std::fmt::Display| {
        format!(
            "the kernel cannot apply the sandbox: Landlock ABI 6 (Linux 6.12) is needed ({e}); \
             set sandbox = \"off\" for this server to run it unconfined"
        )
    };
    let mut rs = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .map_err(|e| missing(&e))?
        .no_new_privs(true);
    let read_access = AccessFs::from_read(abi);
    let write_access = AccessFs::from_all(abi);
    for (paths, access) in [(read, read_access), (write, write_access)] {
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else { continue };
            let access = if meta.is_dir() { access } else { access & AccessFs::from_file(abi) };
            let fd = PathFd::new(path).map_err(|e| format!("sandbox path {}: {e}", path.display()))?;
            rs = rs
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| format!("sandbox path {}: {e}", path.display()))?;
        }
    }
    Ok(rs)
}

/// System calls refused with `EPERM`.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_kexec_file_load,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// The seccomp programs: one refusing [`DENIED`], raw and packet sockets and `clone` into new
/// namespaces with `EPERM`; one answering `clone3` (whose flags a filter cannot read) with
/// `ENOSYS`, so the C library falls back to `clone`, which the first filter can read.
fn filters() -> Result<Vec<BpfProgram>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("the sandbox has no system-call filter for {}", std::env::consts::ARCH))?;
    let cond = |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, len, op, value).map_err(|e| e.to_string())
    };
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|s| (*s, vec![])).collect();
    let raw = libc::SOCK_RAW as u64;
    rules.insert(
        libc::SYS_socket,
        vec![
            rule(vec![cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_PACKET as u64)?])?,
            // Raw IP sockets; netlink's are raw too, and the C library needs them for interfaces.
            rule(vec![
                cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_INET as u64)?,
                cond(1, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(0xf), raw)?,
            ])?,
            rule(vec![
                cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_INET6 as u64)?,
                cond(1, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(0xf), raw)?,
            ])?,
        ],
    );
    let namespaces = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let clone_rules = namespaces
        .iter()
        .map(|f| {
            let f = *f as u64;
            rule(vec![cond(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f), f)?])
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let denied = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    Ok(vec![
        denied.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?,
        clone3.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?,
    ])
}

/// Applies the prepared sandbox to the calling process: runs in the child between fork and exec,
/// so it only makes system calls and touches memory prepared before the fork.
pub(crate) fn apply(p: &mut Prepared) -> std::io::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    let errno = |e: nix::errno::Errno| std::io::Error::from_raw_os_error(e as i32);
    setrlimit(Resource::RLIMIT_NOFILE, p.limits.open_files, p.limits.open_files).map_err(errno)?;
    if let Some(group) = &p.pids {
        group.join()?;
    }
    if p.limits.processes > 0 {
        setrlimit(Resource::RLIMIT_NPROC, p.limits.processes, p.limits.processes).map_err(errno)?;
    }
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(errno)?;
    if let Some(s) = p.limits.cpu_seconds {
        setrlimit(Resource::RLIMIT_CPU, s, s).map_err(errno)?;
    }
    if let Some(b) = p.limits.memory_bytes {
        setrlimit(Resource::RLIMIT_AS, b, b).map_err(errno)?;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNET).map_err(errno)?;
    write_proc("/proc/self/setgroups", b"deny")?;
    write_proc("/proc/self/uid_map", &p.uid_map)?;
    write_proc("/proc/self/gid_map", &p.gid_map)?;
    if let Some(channel) = p.proxy_child.take() {
        hand_over_proxy_socket(&channel)?;
    }
    let ruleset = p.ruleset.take().ok_or_else(|| std::io::Error::other("sandbox applied twice"))?;
    ruleset.restrict_self().map_err(std::io::Error::other)?;
    for f in &p.filters {
        seccompiler::apply_filter(f).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// In the server's new network namespace: brings its loopback up, listens on
/// `127.0.0.1:PROXY_PORT` and sends the listening socket down `channel` to the gateway, keeping no
/// copy. Raw system calls on stack memory only: this runs between fork and exec.
fn hand_over_proxy_socket(channel: &std::os::fd::OwnedFd) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let last = std::io::Error::last_os_error;
    // SAFETY: plain system calls on zeroed or stack-owned structures of the right types and sizes;
    // every descriptor opened here is closed here.
    unsafe {
        let ctl = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if ctl < 0 {
            return Err(last());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let up = libc::ioctl(ctl, libc::SIOCSIFFLAGS as _, &req);
        let e = last();
        libc::close(ctl);
        if up < 0 {
            return Err(e);
        }
        let listener = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if listener < 0 {
            return Err(last());
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = crate::egress::proxy::PROXY_PORT.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(listener, (&raw const addr).cast(), len) < 0 || libc::listen(listener, 128) < 0 {
            let e = last();
            libc::close(listener);
            return Err(e);
        }
        // One byte of data carrying the descriptor as SCM_RIGHTS.
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), listener);
        let sent = libc::sendmsg(channel.as_raw_fd(), &raw const msg, libc::MSG_NOSIGNAL);
        let e = last();
        libc::close(listener);
        if sent < 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// In the gateway, after the server started: the listening socket it handed over.
pub(crate) fn receive_proxy_socket(channel: &std::os::fd::OwnedFd) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut byte = [0u8; 1];
    let mut control = [0u64; 4];
    // SAFETY: recvmsg into stack buffers of the sizes given; the descriptor received is owned
    // by the listener made from it.
    unsafe {
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(channel.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(std::io::Error::other("the server's sandbox sent no proxy socket"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
        Ok(std::net::TcpListener::from_raw_fd(fd))
    }
}

fn write_proc(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let errno = |e: nix::errno::Errno| std::io::Error::from_raw_os_error(e as i32);
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(errno)?;
    let n = nix::unistd::write(&fd, bytes).map_err(errno)?;
    if n != bytes.len() {
        return Err(std::io::Error::other("short write"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_overlapping_protected_paths_are_refused() {
        let protected = protected_paths(Some(Path::new("/home/u")), &[PathBuf::from("/srv/warden/warden.toml")]);
        let spec = |read: &str| SandboxSpec {
            read: vec![PathBuf::from(read)],
            write: vec![],
            protected: protected.clone(),
            limits: ResourceLimits::default(),
            egress: Default::default(),
        };
        for bad in ["/home/u", "/home/u/.ssh", "/home/u/.ssh/id_rsa", "/", "/srv/warden", "/root", "/etc"] {
            let e = prepare(&spec(bad), Path::new("/usr/bin/true"), "t").err().unwrap_or_default();
            assert!(e.contains("would expose"), "{bad}: {e}");
        }
        let e = prepare(&spec("relative/dir"), Path::new("/usr/bin/true"), "t").err().unwrap_or_default();
        assert!(e.contains("not an absolute path"), "{e}");
    }

    #[test]
    fn the_program_and_its_installation_are_readable_but_never_a_protected_place() {
        let protected = protected_paths(Some(Path::new("/home/u")), &[]);
        let got = program_paths(Path::new("/opt/python3.11/bin/python3"), &protected);
        assert!(got.contains(&PathBuf::from("/opt/python3.11")), "{got:?}");
        let got = program_paths(Path::new("/home/u/bin/tool"), &protected);
        assert!(!got.iter().any(|p| p == Path::new("/home/u")), "the home directory holds .ssh: {got:?}");
        assert!(got.contains(&PathBuf::from("/home/u/bin/tool")), "{got:?}");
    }
}
