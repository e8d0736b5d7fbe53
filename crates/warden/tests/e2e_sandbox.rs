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
