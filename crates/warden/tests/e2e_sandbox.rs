//! End to end: stdio servers in `sandbox = "strict"`. A hostile server of our own tries to read
//! credentials and the gateway's own files, write outside its temporary directory, reach the
//! network and trace the gateway; each is refused and the server keeps answering.
//!
//! No test here can send a packet off this machine: the probe only tries outside addresses when
//! it sees no network interface but its own loopback (a namespace of its own).

mod support;

use serde_json::{Value, json};
use support::*;

fn probe_server(extra: &str) -> String {
    format!(
        "[servers.probe]\ntrusted_content = true\ncommand = {:?}\nargs = [{:?}]\nsandbox = \"strict\"\nsandbox_read = [{:?}]\n{extra}\n",
        venv_bin("python"),
        peer_file("python/sandbox_probe.py"),
        peer_file("python"),
    )
}

fn probe(gw: &Warden, args: Value) -> Value {
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "probe__probe", "arguments": args },
        { "op": "callTool", "name": "probe__probe", "arguments": {} },
    ]}));
    let second = ok(&out, 1);
    assert_eq!(second["structuredContent"]["tmp_write"], "allowed", "still answering, and its temp dir works: {out}");
    ok(&out, 0)["structuredContent"].clone()
}

#[test]
fn a_hostile_server_is_refused_files_network_and_tracing_and_keeps_answering() {
    let home = TempDir::new("home");
    std::fs::create_dir_all(home.path(".ssh")).unwrap();
    std::fs::write(home.path(".ssh/id_rsa"), "not a real key").unwrap();
    let outside = TempDir::new("outside");
    let gw = Warden::serve("", &probe_server(""));
    let config = gw.dir.path("warden.toml").display().to_string();
    let db = gw.dir.path("warden-audit.db").display().to_string();
    let key = home.path(".ssh/id_rsa").display().to_string();
    let out = probe(
        &gw,
        json!({
            "read": [key, config, db, "/etc/shadow"],
            "write": [outside.path("pwned").display().to_string(), gw.dir.path("pwned").display().to_string()],
            "connect": [format!("127.0.0.1:{}", gw.port), "169.254.169.254:80", "93.184.216.34:443"],
            "ptrace_parent": true,
            "syscalls": true,
        }),
    );
    assert_eq!(out["interfaces"], json!(["lo"]), "a network namespace of its own: {out}");
    let attempts = out.as_object().unwrap().iter().filter(|(k, _)| k.contains(' '));
    let mut n = 0;
    for (what, said) in attempts {
        n += 1;
        assert!(said.as_str().unwrap().starts_with("refused"), "{what}: {said} ({out})");
    }
    assert_eq!(n, 12, "every attempt reported: {out}");
    assert!(!outside.path("pwned").exists() && !gw.dir.path("pwned").exists());
    assert!(gw.log().contains("sandbox: network none"), "the sandbox is described at start");
}

#[test]
fn granted_paths_are_readable_and_writable_as_granted() {
    let data = TempDir::new("granted");
    std::fs::write(data.path("notes.txt"), "granted").unwrap();
    let scratch = TempDir::new("scratch");
    let gw = Warden::serve(
        "",
        &probe_server(&format!("sandbox_write = [{:?}]\n", scratch.0.display().to_string())).replace(
            &format!("sandbox_read = [{:?}]", peer_file("python")),
            &format!("sandbox_read = [{:?}, {:?}]", peer_file("python"), data.0.display().to_string()),
        ),
    );
    let out = probe(
        &gw,
        json!({
            "read": [data.path("notes.txt").display().to_string()],
            "write": [scratch.path("out.txt").display().to_string(), data.path("changed.txt").display().to_string()],
        }),
    );
    let read_key = format!("read {}", data.path("notes.txt").display());
    assert_eq!(out[&read_key], "allowed", "{out}");
    assert_eq!(out[&format!("write {}", scratch.path("out.txt").display())], "allowed", "{out}");
    assert!(
        out[&format!("write {}", data.path("changed.txt").display())].as_str().unwrap().starts_with("refused"),
        "read-only: {out}"
    );
}

#[test]
fn a_grant_that_would_expose_credentials_keeps_the_server_from_starting() {
    let gw = Warden::serve(
        "",
        &probe_server("").replace(
            &format!("sandbox_read = [{:?}]", peer_file("python")),
            &format!("sandbox_read = [{:?}, \"/root\"]", peer_file("python")),
        ),
    );
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "probe__probe", "arguments": {} },
    ]}));
    err(&out, 0);
    assert!(gw.wait_log("would expose /root/", std::time::Duration::from_secs(5)), "{}", gw.log());
    let (code, said) = warden_cli(&gw, &["check"]);
    assert_ne!(code, 0, "warden check refuses the grant before the gateway starts: {said}");
    assert!(said.contains("server probe: sandbox grant /root would expose /root/"), "{said}");
}

/// A configuration in `dir` run by `warden run` inside a network namespace the test makes
/// (`tests/peers/netns.sh`): stand-in hosts for a public and a metadata-class address, a name
/// server answering `*.test`, and no way off this machine. Returns the client's output, the
/// gateway's log and the stand-ins' record of connections.
fn run_in_netns(dir: &TempDir, config: &str, ops: Value) -> (Value, String, String) {
    std::fs::write(dir.path("permit-all.cedar"), PERMIT_ALL).unwrap();
    std::fs::write(
        dir.path("warden.toml"),
        grant_test_servers(&format!("{config}\n[policy]\nfiles = [\"permit-all.cedar\"]\n")),
    )
    .unwrap();
    let state = TempDir::new("netns");
    let out = node_client(json!({ "sdk": "v1", "transport": {
        "type": "stdio",
        "command": "unshare",
        "args": ["--net", "--mount", "--", "bash", peer_file("netns.sh"), state.0.display().to_string(),
            "bash", "-c", "cd \"$3\" && WARDEN_LOG=debug exec \"$0\" run --config \"$1\" 2>\"$2\"",
            warden_bin().display().to_string(), dir.path("warden.toml").display().to_string(),
            dir.path("warden.log").display().to_string(), dir.0.display().to_string()],
    }, "ops": ops }));
    let log = std::fs::read_to_string(dir.path("warden.log")).unwrap_or_default();
    let hits = std::fs::read_to_string(state.path("hits")).unwrap_or_default();
    (out, log, hits)
}

fn audit_rows(dir: &TempDir, sql: &str) -> Vec<Value> {
    let out = std::process::Command::new(warden_bin())
        .args(["audit", "--config"])
        .arg(dir.path("warden.toml"))
        .args(["query", "--json", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_sandboxed_server_reaches_only_its_listed_hosts_through_warden_and_each_refusal_is_audited() {
    let dir = TempDir::new("egress");
    let config = probe_server(
        "egress = [\"public.test:80\", \"metadata.test:80\", \"rebind.test:80\", \"mixed.test:80\", \"127.0.0.1:18080\"]",
    );
    let fetch = [
        "public.test:80",
        "127.0.0.1:18080",
        "93.184.216.34:80",
        "169.254.169.254:80",
        "[::ffff:169.254.169.254]:80",
        "metadata.test:80",
        "127.0.0.1:9",
        "unlisted.test:443",
        "public.test:443",
        "mixed.test:80",
        "rebind.test:80",
        "rebind.test:80",
    ];
    let (out, log, hits) = run_in_netns(
        &dir,
        &config,
        json!([
            { "op": "callTool", "name": "probe__probe", "arguments": {
                "fetch": fetch, "plain_http": "http://public.test/", "connect": ["93.184.216.34:80", "169.254.169.254:80"] } },
            { "op": "callTool", "name": "probe__probe", "arguments": {} },
        ]),
    );
    let got = &ok(&out, 0)["structuredContent"];
    assert_eq!(ok(&out, 1)["structuredContent"]["tmp_write"], "allowed", "still answering: {out}");
    let said = |k: &str| got[k].as_str().unwrap_or_else(|| panic!("{k} missing: {got}\n{log}")).to_owned();
    assert_eq!(said("fetch public.test:80"), "allowed: stand-in 93.184.216.34:80", "{got}\n{log}");
    assert_eq!(said("fetch 127.0.0.1:18080"), "allowed: stand-in 127.0.0.1:18080", "listed by address: {got}");
    assert_eq!(said("fetch mixed.test:80"), "allowed: stand-in 93.184.216.34:80", "the metadata answer dropped: {got}");
    assert_eq!(said("fetch rebind.test:80"), "allowed: stand-in 93.184.216.34:80", "{got}");
    assert!(said("fetch rebind.test:80 again").contains("403"), "rebound to the metadata address: {got}");
    for refused in [
        "93.184.216.34:80",
        "169.254.169.254:80",
        "[::ffff:169.254.169.254]:80",
        "metadata.test:80",
        "127.0.0.1:9",
        "unlisted.test:443",
        "public.test:443",
    ] {
        let s = said(&format!("fetch {refused}"));
        assert!(s.starts_with("refused: HTTP/1.1 403"), "{refused}: {s}");
    }
    assert!(said("plain http http://public.test/").contains("405"), "{got}");
    for direct in ["connect 93.184.216.34:80", "connect 169.254.169.254:80"] {
        assert!(said(direct).starts_with("refused"), "no way around the proxy: {got}");
    }
    assert!(!hits.contains("169.254.169.254"), "the metadata stand-in was never reached: {hits}");
    assert_eq!(hits.lines().filter(|h| h.starts_with("93.184.216.34")).count(), 3, "{hits}");
    assert!(log.contains("sandbox: network only through Warden's egress proxy to public.test:80"), "{log}");
    let rows =
        audit_rows(&dir, "SELECT decision, tool_name, reason FROM mcp_audit WHERE event = 'egress' ORDER BY seq");
    let denied: Vec<&Value> = rows.iter().filter(|r| r["decision"] == "DENY").collect();
    let allowed = rows.iter().filter(|r| r["decision"] == "ALLOW").count();
    assert_eq!((denied.len(), allowed), (9, 4), "every connection asked for is a row: {rows:?}");
    assert!(
        denied
            .iter()
            .any(|r| r["tool_name"] == "metadata.test:80"
                && r["reason"].as_str().unwrap_or_default().contains("metadata")),
        "{rows:?}"
    );
}

#[test]
fn warden_itself_never_connects_to_private_or_metadata_addresses_whatever_the_names_say() {
    let dir = TempDir::new("own-egress");
    let config = "[servers.meta]\nurl = \"https://metadata.test/mcp\"\n\n\
                  [servers.rebind]\nurl = \"https://rebind.test/mcp\"\n\n\
                  [telemetry]\notlp_endpoint = \"http://metadata.test:4318\"\n\n\
                  [gates]\nwebhook = \"https://metadata.test/hook\"\ninterval = \"300ms\"\n\
                  [[gates.custom]]\nname = \"always\"\ncount_where = \"1 = 1\"\nwindow = \"1h\"\nthreshold = -1.0\n";
    let (out, log, hits) = run_in_netns(
        &dir,
        config,
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "meta__anything", "arguments": {} },
            { "op": "callTool", "name": "rebind__anything", "arguments": {} },
            { "op": "sleep", "ms": 1500 },
        ]),
    );
    assert!(out["ops"][0]["ok"] == true, "{out}");
    assert!(log.contains("refused: the host \"metadata.test\" resolves to 169.254.169.254"), "the upstream: {log}");
    assert!(log.contains("gate alert NOT sent: the webhook was refused by the egress guard"), "the webhook: {log}");
    assert!(log.contains("the trace exporter's connection is refused"), "the trace exporter: {log}");
    assert!(!hits.contains("169.254.169.254"), "the metadata stand-in was never reached: {hits}\n{log}");
    assert!(
        hits.contains("93.184.216.34:443") && hits.lines().all(|h| h == "93.184.216.34:443"),
        "only the first (public) answer for rebind.test was ever dialled: {hits}"
    );
}

/// A fork bomb stops at the server's process limit (for a gateway running as root, a pids
/// control group of the server's own; otherwise the kernel's per-user limit), and the server
/// keeps answering. If the limit failed, the probe's 120 sleeping processes are killed anyway.
#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    let gw = Warden::serve("", &probe_server("sandbox_limits = { processes = 40 }"));
    let out = probe(&gw, json!({ "forks": 120 }));
    let said = out["fork 120"].as_str().unwrap_or_default().to_owned();
    let started: usize = said
        .strip_prefix("refused after ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the bomb was not stopped: {said} ({out})"));
    assert!(started < 40, "{said}");
}

/// A server process does not outlive the gateway, however the gateway ends: killed without
/// warning (SIGKILL, as a crash or an OOM kill would), its server goes with it. The server here
/// is a shell that would wait five minutes after its MCP server's input closes, so only the
/// parent-death signal ends it in time.
#[test]
fn a_server_dies_with_the_gateway() {
    let config = format!(
        "[servers.probe]\ntrusted_content = true\ncommand = \"sh\"\nargs = [\"-c\", {:?}]\nsandbox = \"off\"\n",
        format!("{} {}; sleep 300", venv_bin("python"), peer_file("python/sandbox_probe.py")),
    );
    let mut gw = Warden::serve("", &config);
    probe(&gw, json!({}));
    let log = gw.log();
    // The last start: the first probes for the modern era and is stopped.
    let line = log.lines().rfind(|l| l.contains("started server process")).unwrap_or_else(|| panic!("{log}"));
    let pid: u32 = line
        .split("pid=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    assert!(alive(pid), "the server runs: {line}");
    let unconfined = audit_rows(&gw.dir, "SELECT server_name FROM mcp_audit WHERE event = 'sandbox_off'");
    assert_eq!(unconfined, vec![json!({ "server_name": "probe" })], "sandbox = \"off\" is audited");
    gw.kill9();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!alive(pid), "server process {pid} outlived the gateway");
}

/// A gateway that was killed leaves its servers' control groups behind; the next gateway to start
/// a sandboxed server removes them (and anything still in them). Runs where Warden is root and has
/// a pids hierarchy, as on CI.
#[test]
fn control_groups_a_killed_gateway_left_are_removed() {
    let parent = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, controllers, path) = (p.next()?, p.next()?, p.next()?);
            controllers.split(',').any(|c| c == "pids").then(|| format!("/sys/fs/cgroup/pids{path}"))
        })
        .expect("a pids hierarchy");
    // A process id no process has: the gateway that made this group is gone.
    let stale = std::path::Path::new(&parent).join("warden-probe-4194303-0");
    if let Err(e) = std::fs::create_dir(&stale) {
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "made a stale group: {e}");
    }
    let gw = Warden::serve("", &probe_server(""));
    probe(&gw, json!({}));
    assert!(!stale.exists(), "the stale group is gone: {}", gw.log());
    assert!(gw.log().contains("removed a sandbox control group a stopped gateway left"), "{}", gw.log());
}
