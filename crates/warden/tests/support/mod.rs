//! End-to-end test support: the real `warden` binary, the real MCP peers installed under
//! `tests/peers` (`scripts/install-peers.sh`), and a raw HTTP client for what SDKs will not send.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The `warden` binary under test.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

fn require(path: &Path, what: &str) -> PathBuf {
    assert!(path.exists(), "{what} is not installed ({} is missing): run scripts/install-peers.sh", path.display());
    path.to_owned()
}

/// The installed npm peers.
pub fn node_modules() -> PathBuf {
    require(&repo().join("tests/peers/node/node_modules/@modelcontextprotocol"), "the npm test peers")
}

/// A file of an npm peer package.
pub fn node_peer(package_path: &str) -> String {
    require(&node_modules().join(package_path), package_path).display().to_string()
}

/// A program in the Python peers' virtualenv.
pub fn venv_bin(name: &str) -> String {
    require(&repo().join("tests/peers/.venv/bin").join(name), "the Python test peers").display().to_string()
}

/// A file under `tests/peers`.
pub fn peer_file(rel: &str) -> String {
    repo().join("tests/peers").join(rel).display().to_string()
}

/// A fresh git repository holding one untracked file.
pub fn git_repo(file: &str) -> TempDir {
    let repo = TempDir::new("git");
    let out = Command::new("git").args(["init", "-q"]).current_dir(&repo.0).output().expect("git");
    assert!(out.status.success(), "git init: {out:?}");
    std::fs::write(repo.path(file), file).expect("write");
    repo
}

/// A free TCP port on 127.0.0.1, for a process that must be told its port before it starts.
///
/// Ports are handed out in turn from below the system's ephemeral range, so two tests of one
/// binary never get the same port, and no listener bound to port 0 or outgoing connection takes
/// one between the handing out and the bind. (A gateway listens on port 0 and says where.)
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % 64 * 160;
    loop {
        let port = (20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "warden-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    /// A path inside it.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not listen on {port}:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// Waits until the gateway's own log says it listens, and returns the port of the listener whose
/// log line starts with `what` ("Warden listening on" or "admin listener"). A TCP connect alone
/// could reach another test's process that took the same port.
fn wait_listening(child: &mut Child, log: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = listened_port(&text, "Warden listening on http://") {
            return port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("warden exited ({status}) before listening:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("warden did not listen:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// The port in the first log line that announces `prefix` followed by `host:port`.
fn listened_port(log: &str, prefix: &str) -> Option<u16> {
    let rest = &log[log.find(prefix)? + prefix.len()..];
    let addr = rest.split(|c: char| c == '/' || c.is_whitespace()).next()?;
    addr.rsplit(':').next()?.parse().ok()
}

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Servers run sandboxed (the default): each stdio server a test configures without sandbox
/// settings of its own may read the peers' code (`tests/peers`) and read and write the
/// directories its arguments name (a file server's roots, a git server's repository), which is
/// what their documentation says to grant. A configuration naming plain-http loopback URLs (test
/// servers, issuers, collectors) lists loopback in `[egress] allow` unless it has `[egress]`.
pub fn grant_test_servers(config: &str) -> String {
    let Ok(mut doc) = config.parse::<toml_edit::DocumentMut>() else { return config.to_owned() };
    let peers = repo().join("tests/peers").display().to_string();
    if let Some(servers) = doc.get_mut("servers").and_then(|s| s.as_table_like_mut()) {
        for (_, server) in servers.iter_mut() {
            let Some(server) = server.as_table_like_mut() else { continue };
            if server.get("command").is_none() || server.iter().any(|(k, _)| k.starts_with("sandbox")) {
                continue;
            }
            let dirs: toml_edit::Array = server
                .get("args")
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .filter(|p| p.starts_with('/') && Path::new(p).is_dir())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            server.insert("sandbox_read", toml_edit::value(toml_edit::Array::from_iter([peers.clone()])));
            if !dirs.is_empty() {
                server.insert("sandbox_write", toml_edit::value(dirs));
            }
        }
    }
    // Test servers, issuers and collectors listen on loopback over plain http: list it for the
    // gateway's own connections, as an operator would, unless the test says what it allows.
    if (config.contains("http://127.0.0.1") || config.contains("http://localhost")) && !doc.contains_key("egress") {
        let mut egress = toml_edit::Table::new();
        egress.insert("allow", toml_edit::value(toml_edit::Array::from_iter(["127.0.0.1"])));
        doc.insert("egress", toml_edit::Item::Table(egress));
    }
    doc.to_string()
}

/// A running `warden serve`.
pub struct Warden {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its scratch directory (config and log).
    pub dir: TempDir,
}

/// The approvals key every test gateway sharing state is given (`$WARDEN_E2E_STATE_KEY`).
pub const SHARED_STATE_KEY: &str = "e2e-shared-approvals-key-0123456789abcdef";

/// `[state]` in the Redis at `port`, with the approvals key gateways sharing state must share
/// (`approvals` is the rest of `[approvals]`).
#[allow(dead_code)]
pub fn shared_state(port: u16, approvals: &str) -> String {
    format!(
        "\n[state]\nredis = \"redis://127.0.0.1:{port}\"\n\n[approvals]\nstate_key = {{ env = \"WARDEN_E2E_STATE_KEY\" }}\n{approvals}\n"
    )
}

/// A policy that permits every action, for tests of what lies beyond authorization.
pub const PERMIT_ALL: &str = "@id(\"test-permit-all\")\npermit (principal, action, resource);\n";

impl Warden {
    /// Starts `warden serve` with `[gateway]` settings `gateway` (listen is added) and the rest of
    /// the configuration `rest`.
    /// The gateway listens on a port the system chooses, read back from its log.
    pub fn serve(gateway: &str, rest: &str) -> Warden {
        Warden::start(&format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{gateway}\n\n{rest}\n"), 0)
    }

    /// Starts `warden serve` on a whole configuration that listens on `port` (0: any port, read
    /// back from the log).
    pub fn start(config: &str, port: u16) -> Warden {
        Warden::start_with_env(config, port, &[])
    }

    /// The same, with more variables in the gateway's environment.
    pub fn start_with_env(config: &str, port: u16, env: &[(&str, &str)]) -> Warden {
        let dir = TempDir::new("gw");
        // Tests of the proxy itself run under a policy that permits everything; tests of
        // authorization bring their own [policy].
        let config = if config.contains("[policy]") {
            config.to_owned()
        } else {
            std::fs::write(dir.path("permit-all.cedar"), PERMIT_ALL).expect("policy");
            format!("{config}\n[policy]\nfiles = [\"permit-all.cedar\"]\n")
        };
        std::fs::write(dir.path("warden.toml"), grant_test_servers(&config)).expect("config");
        let log = dir.path("warden.log");
        let mut child = Command::new(warden_bin())
            .current_dir(&dir.0)
            .args(["serve", "--config"])
            .arg(dir.path("warden.toml"))
            .env("WARDEN_LOG", "debug")
            .env("WARDEN_E2E_SECRET", "must-not-leak-7c1d")
            .env("WARDEN_E2E_STATE_KEY", SHARED_STATE_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn warden");
        let listened = wait_listening(&mut child, &log);
        assert!(port == 0 || listened == port, "warden listens on {listened}, not {port}");
        Warden { child, port: listened, dir }
    }

    /// The admin listener's port, read from the log (configure `[admin] listen = "127.0.0.1:0"`).
    pub fn admin_port(&self) -> u16 {
        listened_port(&self.log(), "admin listener (metrics, operator API) on http://").expect("an admin listener")
    }

    /// The MCP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("warden.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Warden {
    /// Stops it as an operator would (SIGTERM), and waits for it to exit.
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Kills it without warning (SIGKILL), as a crash or an OOM kill would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        terminate(&mut self.child);
        if std::thread::panicking() {
            eprintln!("--- warden log ---\n{}", self.log());
        }
    }
}

/// A background process (an HTTP MCP server), killed on drop.
pub struct Process {
    child: Child,
    /// Its port, if it listens.
    pub port: u16,
    _dir: TempDir,
}

impl Process {
    /// Starts `program args` with `env`, and waits for it to listen on `port`.
    pub fn listening(program: &str, args: &[&str], env: &[(&str, String)], port: u16) -> Process {
        let dir = TempDir::new("proc");
        let log = dir.path("out.log");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.path("err.log")).expect("log"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {program}: {e}"));
        wait_port(port, &mut child, program, &dir.path("err.log"));
        Process { child, port, _dir: dir }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn run_json(mut cmd: Command, what: &str) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        let clip = |s: &str| s.chars().take(3000).collect::<String>();
        panic!(
            "{what} printed no result ({e}):\nstdout:\n{}\nstderr:\n{}",
            clip(&stdout),
            clip(&String::from_utf8_lossy(&out.stderr))
        )
    })
}

/// Runs the TypeScript SDK client (`tests/peers/node/client.mjs`) with a spec.
pub fn node_client(spec: Value) -> Value {
    node_modules();
    let mut cmd = Command::new("node");
    cmd.current_dir(repo().join("tests/peers/node")).arg("client.mjs").arg(spec.to_string());
    run_json(cmd, "the TypeScript client")
}

/// Runs the Python SDK client (`tests/peers/python/client.py`) with a spec.
pub fn python_client(spec: Value) -> Value {
    let mut cmd = Command::new(venv_bin("python"));
    cmd.arg(peer_file("python/client.py")).arg(spec.to_string());
    run_json(cmd, "the Python client")
}

/// The result of op `i`, asserting it succeeded.
pub fn ok(out: &Value, i: usize) -> &Value {
    let o = &out["ops"][i];
    assert_eq!(
        o["ok"],
        true,
        "op {i} ({}) failed: {}\nwhole run: {}",
        o["op"],
        o["error"],
        out.to_string().chars().take(3000).collect::<String>()
    );
    &o["result"]
}

/// The error of op `i`, asserting it failed.
pub fn err(out: &Value, i: usize) -> &Value {
    let o = &out["ops"][i];
    assert_eq!(o["ok"], false, "op {i} ({}) should have failed: {}", o["op"], o["result"]);
    &o["error"]
}

/// The text of the first content block of a tool result.
pub fn text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

/// How many notifications a hostile server's `seen` tool reported with this method.
pub fn seen_count(seen_text: &str, method: &str) -> usize {
    let seen: Value =
        serde_json::from_str(seen_text).unwrap_or_else(|e| panic!("`seen` did not answer JSON ({e}): {seen_text}"));
    seen.as_array().map_or(0, |a| a.iter().filter(|n| n["method"] == method).count())
}

/// The names in a list result.
pub fn names(result: &Value, field: &str) -> Vec<String> {
    result[field]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body (chunked encoding removed).
    pub body: String,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as one JSON-RPC message (the last SSE event's data, for event streams).
    pub fn json(&self) -> Value {
        let text = if self.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) {
            self.body.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap_or_default().to_owned()
        } else {
            self.body.clone()
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one HTTP request to the MCP endpoint with a raw body and reads the whole response.
pub fn http(method: &str, port: u16, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    http_at(method, port, "/mcp", headers, body)
}

/// Sends one HTTP request to `path` (with any query) and reads the whole response.
pub fn http_at(method: &str, port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    RawResponse { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// JSON POST with the headers every client sends.
pub fn post_json(port: u16, extra: &[(&str, &str)], body: &str) -> RawResponse {
    let mut h = vec![("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    h.extend_from_slice(extra);
    http("POST", port, &h, body.as_bytes())
}

/// Opens a legacy session by raw HTTP, returning its id.
pub fn raw_initialize(port: u16) -> String {
    let r = post_json(
        port,
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.header("mcp-session-id").expect("session id").to_owned()
}

/// The `_meta` envelope of a modern request.
pub fn envelope() -> Value {
    serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" }
    })
}

/// Config for the demo server as a stdio upstream. Like the other helpers' servers, its results
/// do not taint (`trusted_content`, `trusted_resources`): tests of taint configure their own.
pub fn demo_server(name: &str) -> String {
    format!(
        "[servers.{name}]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        warden_bin().display().to_string()
    )
}

/// Config for server-everything as a stdio upstream.
pub fn everything_stdio(name: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ntrusted_content = true\ntrusted_resources = true\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\nenv_inherit = [\"PATH\", \"HOME\"]\n{extra}\n",
        node_peer("server-everything/dist/index.js")
    )
}

/// Config for the hostile server as a stdio upstream.
pub fn hostile(name: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [{:?}]\nenv = {{ HOSTILE_ALLOWED = \"yes\" }}\n{extra}\n",
        venv_bin("python"),
        peer_file("python/hostile_server.py")
    )
}

/// Runs a `warden` subcommand against a running gateway's configuration (`args[0]` is the
/// subcommand, the rest follow `--config`); its exit code and its output and errors together.
pub fn warden_cli(gw: &Warden, args: &[&str]) -> (i32, String) {
    let config = gw.dir.path("warden.toml").display().to_string();
    let out = Command::new(warden_bin()).arg(args[0]).args(["--config", &config]).args(&args[1..]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A new random API key and the `sha256:` hash that goes in `[auth.api_keys.NAME]`.
pub fn api_key() -> (String, String) {
    use sha2::Digest;
    let key = format!("wdn_test_{}", hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes()));
    let hash = format!("sha256:{}", hex::encode(sha2::Sha256::digest(key.as_bytes())));
    (key, hash)
}

/// A Postgres schema of the test's own in database `test`, dropped at the end.
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// A new, empty schema.
    pub fn new() -> PgSchema {
        let name = format!("warden_e2e_{}_{}", std::process::id(), rand_suffix());
        psql(&format!("CREATE SCHEMA {name}"));
        PgSchema { name }
    }

    /// The URL of the database with this schema first on the search path.
    pub fn url(&self) -> String {
        let base = std::env::var("WARDEN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        format!("{base}?options=-c%20search_path%3D{}", self.name)
    }
}

impl PgSchema {
    /// The rows `sql` returns in this schema, unaligned (`|` between fields, a line per row).
    #[allow(dead_code)]
    pub fn query(&self, sql: &str) -> String {
        let sql = format!("SET search_path TO {}; {sql}", self.name);
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-At", "-v", "ON_ERROR_STOP=1", "-c", &sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l != "SET").collect::<Vec<_>>().join("\n")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Runs `sql` in database `test` with psql.
pub fn psql(sql: &str) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}
