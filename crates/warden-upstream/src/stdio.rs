//! A server run as a child process, speaking newline-delimited JSON-RPC on stdin and stdout.
//!
//! The child starts with exactly the environment its spec names, in its own process group so that
//! the whole tree (for example `npx` and the `node` it starts) is stopped together. Its stderr goes
//! to the log, rate-limited. Garbage and oversized lines on stdout are dropped and logged; they never
//! end the connection. When the child exits, every request in flight is failed with a clear error.

use crate::core::{Core, Origin, ReplySink};
use crate::error::UpstreamError;
use crate::lines::{Line, LineReader};
use crate::sandbox;
use crate::spec::{TransportSpec, UpstreamSpec};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::Stdio as StdStdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::Message;

/// Writes frames to the child's stdin.
struct StdinSink {
    tx: mpsc::Sender<Vec<u8>>,
    server: String,
}

impl ReplySink for StdinSink {
    fn send(&self, msg: Message) {
        if self.tx.try_send(msg.to_vec()).is_err() {
            tracing::warn!(server = %self.server, "dropped a reply: the server is not reading its input");
        }
    }
}

/// Starts `cmd` from the one thread every server process is started from, which lives as long
/// as the gateway: a child's parent-death signal fires when the thread that forked it ends, not
/// the process, so forking from a runtime thread that may end (a blocking-pool thread) would kill
/// servers at random, and forking from none would leave them running after a crash.
fn spawn_child(cmd: Command) -> std::io::Result<tokio::process::Child> {
    type Job = (Command, tokio::runtime::Handle, std::sync::mpsc::SyncSender<std::io::Result<tokio::process::Child>>);
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let gone = || std::io::Error::other("the thread starting server processes is gone");
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name("warden-spawner".into()).spawn(move || {
            for (mut cmd, handle, reply) in rx {
                let _runtime = handle.enter();
                let _ = reply.send(cmd.spawn());
            }
        });
        if let Err(e) = started {
            tracing::error!("the thread starting server processes could not start: {e}");
        }
        Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tokio::runtime::Handle::current(), reply))
        .map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// The running child.
pub(crate) struct StdioTransport {
    writer: mpsc::Sender<Vec<u8>>,
    pgid: Option<i32>,
    pub(crate) exited: CancellationToken,
    close_stdin: CancellationToken,
    status: Arc<Mutex<Option<String>>>,
    grace: Duration,
}

const WRITE_QUEUE: usize = 1024;
const STDERR_LINE_MAX: usize = 8 * 1024;
const STDERR_LINES_PER_SECOND: u32 = 50;

impl StdioTransport {
    pub(crate) fn spawn(spec: &UpstreamSpec, core: Arc<Core>) -> Result<StdioTransport, UpstreamError> {
        let TransportSpec::Stdio { command, args, env, cwd, sandbox } = &spec.transport else {
            unreachable!("spawn is only called for stdio specs");
        };
        let unavailable =
            |reason: String| UpstreamError::Unavailable { server: spec.name.clone(), reason, retry_after: None };
        let program = find_program(command, env.get("PATH").map(String::as_str));
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .env_clear()
            .envs(env)
            .stdin(StdStdio::piped())
            .stdout(StdStdio::piped())
            .stderr(StdStdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        // The child is killed with the gateway, however the gateway ends (see `spawn_child`).
        let gateway = std::process::id();
        // SAFETY: two system calls, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The gateway may have ended between the fork and the call above.
                if libc::getppid() as u32 != gateway {
                    return Err(std::io::Error::other("the gateway has ended"));
                }
                Ok(())
            });
        }
        let mut tmp = None;
        let mut pids_dir = None;
        let mut proxy_channel = None;
        if let Some(sandbox) = sandbox {
            let mut prepared = sandbox::prepare(sandbox, &program, &spec.name).map_err(&unavailable)?;
            tracing::info!(server = %spec.name, "sandbox: {}", prepared.summary);
            cmd.env("TMPDIR", &prepared.tmp);
            tmp = Some(prepared.tmp.clone());
            pids_dir = prepared.pids_dir.clone();
            proxy_channel = prepared.proxy_parent.take();
            if proxy_channel.is_some() {
                let proxy = format!("http://127.0.0.1:{}", crate::egress::proxy::PROXY_PORT);
                for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
                    cmd.env(var, &proxy);
                }
                // Node reads the variables above only when asked to (Node 24 and later).
                cmd.env("NODE_USE_ENV_PROXY", "1").env("NO_PROXY", "").env("no_proxy", "");
            }
            // SAFETY: `apply` makes only system calls on memory prepared before the fork.
            unsafe {
                cmd.pre_exec(move || sandbox::apply(&mut prepared));
            }
        }
        let mut child = spawn_child(cmd).map_err(|e| {
            if let Some(t) = &tmp {
                let _ = std::fs::remove_dir_all(t);
            }
            if let Some(d) = &pids_dir {
                let _ = std::fs::remove_dir(d);
            }
            let what =
                if sandbox.is_some() { "start the server process in its sandbox" } else { "start the server process" };
            unavailable(format!("could not {what} ({e})"))
        })?;
        // Arguments may carry credentials: only the program is logged at info.
        tracing::info!(server = %spec.name, pid = child.id(), %command, sandboxed = sandbox.is_some(), "started server process");
        tracing::debug!(server = %spec.name, ?args, "server process arguments");
        let exited = CancellationToken::new();
        if let (Some(channel), Some(sandbox)) = (proxy_channel, sandbox) {
            let served = sandbox::receive_proxy_socket(&channel).and_then(|listener| {
                crate::egress::proxy::serve(
                    listener,
                    spec.name.clone(),
                    sandbox.egress.clone(),
                    spec.egress_observer.clone(),
                    exited.clone(),
                )
            });
            if let Err(e) = served {
                if let Some(pg) = child.id().and_then(|p| i32::try_from(p).ok()) {
                    let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                }
                let _ = child.start_kill();
                if let Some(t) = &tmp {
                    let _ = std::fs::remove_dir_all(t);
                }
                if let Some(d) = pids_dir.clone() {
                    tokio::spawn(async move { crate::pids::remove(&d).await });
                }
                return Err(unavailable(format!("its egress proxy could not be started ({e})")));
            }
        }
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();

        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let sink: Arc<dyn ReplySink> = Arc::new(StdinSink { tx: tx.clone(), server: spec.name.clone() });
        let status = Arc::new(Mutex::new(None));

        let close_stdin = CancellationToken::new();
        if let Some(mut stdin) = stdin {
            let server = spec.name.clone();
            let close = close_stdin.clone();
            tokio::spawn(async move {
                loop {
                    let mut frame = tokio::select! {
                        f = rx.recv() => match f { Some(f) => f, None => break },
                        () = close.cancelled() => break,
                    };
                    frame.push(b'\n');
                    if let Err(e) = stdin.write_all(&frame).await {
                        tracing::debug!(%server, "stdin closed: {e}");
                        break;
                    }
                    if rx.is_empty() {
                        let _ = stdin.flush().await;
                    }
                }
            });
        }
        if let Some(stderr) = stderr {
            tokio::spawn(log_stderr(spec.name.clone(), stderr));
        }
        {
            let status = status.clone();
            let exited = exited.clone();
            let server = spec.name.clone();
            tokio::spawn(async move {
                let text = match child.wait().await {
                    Ok(s) => describe_exit(s),
                    Err(e) => format!("could not be waited on ({})", e.kind()),
                };
                // Whatever the server started in its group (npx's node, helpers) goes with it,
                // and with a pids control group also what left the process group.
                if let Some(pg) = pgid {
                    let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                }
                if let Some(d) = &pids_dir {
                    crate::pids::remove(d).await;
                }
                tracing::warn!(%server, "server process exited: {text}");
                if let Some(t) = &tmp {
                    let _ = std::fs::remove_dir_all(t);
                }
                *status.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
                exited.cancel();
            });
        }
        if let Some(stdout) = stdout {
            let max = spec.limits.max_frame_bytes;
            let limits = spec.limits;
            let sink = sink.clone();
            let status = status.clone();
            let exited = exited.clone();
            let pg = pgid;
            tokio::spawn(async move {
                let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, stdout), max);
                let mut garbage = 0u64;
                loop {
                    match reader.next().await {
                        Ok(Line::Frame(bytes)) => {
                            if bytes.iter().all(u8::is_ascii_whitespace) {
                                continue;
                            }
                            match Message::parse(&bytes, &limits) {
                                Ok(msg) => core.dispatch(msg, Origin::Shared, &sink),
                                Err(e) => {
                                    if let Some(id) = &e.id {
                                        core.fail_unreadable(id, &e.error.message);
                                    }
                                    garbage += 1;
                                    if garbage <= 10 || garbage.is_multiple_of(1000) {
                                        tracing::warn!(server = %core.server, count = garbage, "dropped an unreadable frame: {}", e.error.message);
                                    }
                                }
                            }
                        }
                        Ok(Line::Oversized(n)) => {
                            tracing::warn!(server = %core.server, bytes = n, limit = max, "dropped a frame over the size limit");
                        }
                        Ok(Line::Eof) | Err(_) => break,
                    }
                }
                // Stdout closed: the process is gone or no longer speaking MCP. Give it a moment to
                // report its exit status, then make sure it is gone.
                if tokio::time::timeout(Duration::from_secs(2), exited.cancelled()).await.is_err() {
                    if let Some(pg) = pg {
                        let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(2), exited.cancelled()).await;
                }
                let why = status
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "closed its output".to_owned());
                core.fail_all(&format!("server process exited unexpectedly ({why})"));
            });
        }
        Ok(StdioTransport { writer: tx, pgid, exited, close_stdin, status, grace: spec.shutdown_grace })
    }

    /// Queues a frame for the child's stdin.
    pub(crate) async fn send(&self, server: &str, msg: &Message) -> Result<(), UpstreamError> {
        self.writer.send(msg.to_vec()).await.map_err(|_| UpstreamError::Closed {
            server: server.to_owned(),
            reason: "the server process is not running".to_owned(),
        })
    }

    /// Queues a frame without waiting; dropped if the child is not reading its input.
    pub(crate) fn send_detached(&self, msg: &Message) {
        let _ = self.writer.try_send(msg.to_vec());
    }

    /// How the child ended, if it has.
    pub(crate) fn exit_status(&self) -> Option<String> {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Closes stdin and waits the grace period, then terminates and finally kills the process group,
    /// as the stdio transport's shutdown sequence asks.
    pub(crate) async fn shutdown(&self) {
        self.close_stdin.cancel();
        let Some(pg) = self.pgid else { return };
        if tokio::time::timeout(self.grace, self.exited.cancelled()).await.is_ok() {
            return;
        }
        let _ = killpg(Pid::from_raw(pg), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(1), self.exited.cancelled()).await.is_err() {
            let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
        }
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        if let (Some(pg), false) = (self.pgid, self.exited.is_cancelled()) {
            let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_owned(),
    }
}

async fn log_stderr(server: String, stderr: tokio::process::ChildStderr) {
    let mut reader = LineReader::new(BufReader::new(stderr), STDERR_LINE_MAX);
    let mut window = Instant::now();
    let mut in_window = 0u32;
    let mut suppressed = 0u64;
    loop {
        let line = match reader.next().await {
            Ok(Line::Frame(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Line::Oversized(n)) => format!("[a stderr line of {n} bytes was skipped]"),
            Ok(Line::Eof) | Err(_) => break,
        };
        if window.elapsed() >= Duration::from_secs(1) {
            if suppressed > 0 {
                tracing::warn!(%server, suppressed, "suppressed stderr lines from a noisy server");
            }
            window = Instant::now();
            in_window = 0;
            suppressed = 0;
        }
        in_window += 1;
        if in_window > STDERR_LINES_PER_SECOND {
            suppressed += 1;
            continue;
        }
        let clean: String = line.chars().map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c }).collect();
        tracing::info!(target: "warden::upstream::stderr", %server, "{clean}");
    }
}

/// The program `command` names: itself when it holds a `/`, otherwise the first executable of that
/// name on `path` (the server's `PATH`, else the gateway's). The sandbox grants what it finds.
fn find_program(command: &str, path: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if command.contains('/') {
        return command.into();
    }
    let path = path.map(str::to_owned).or_else(|| std::env::var("PATH").ok()).unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .unwrap_or_else(|| command.into())
}
