//! The audit trail end to end: rows for every call under concurrent load through the official
//! SDK clients (SQLite and the machine's PostgreSQL), nothing answered lost to kill -9 in `sync`
//! durability, tampering found by `warden audit verify`, the threat model's unapproved-write query, the
//! detection gates, metrics on the admin listener, and trace context passed to servers.

mod support;

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use support::*;

const POLICIES: &str = r#"
@id("reads") permit (principal, action == Action::"call_tool", resource in Server::"demo") when { resource.class == "read" };
@id("notes") permit (principal, action == Action::"call_tool", resource == Tool::"demo/write_note");
@id("echo") permit (principal, action == Action::"call_tool", resource == Tool::"demo/echo");
"#;

/// Runs the `warden` binary; its exit status, stdout and stderr.
fn warden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(warden_bin()).args(args).output().expect("run warden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh Postgres schema for one test, dropped with it.
/// A gateway in front of the demo server with these audit settings (and policies).
fn gateway(audit: &str, extra: &str) -> (Warden, TempDir) {
    let dir = TempDir::new("audit-policy");
    std::fs::write(dir.path("p.cedar"), POLICIES).unwrap();
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n[audit]\n{audit}\n\n{extra}\n[policy]\nfiles = [{:?}]\n",
            demo_server("demo"),
            dir.path("p.cedar").display().to_string()
        ),
    );
    (gw, dir)
}

fn config_of(gw: &Warden) -> String {
    gw.dir.path("warden.toml").display().to_string()
}

fn query(gw: &Warden, sql: &str) -> Vec<Value> {
    let (code, out, err) = warden(&["audit", "--config", &config_of(gw), "query", "--json", sql]);
    assert_eq!(code, 0, "{sql}: {err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn count(gw: &Warden, condition: &str) -> i64 {
    let rows = query(gw, &format!("SELECT COUNT(*) AS n FROM mcp_audit WHERE {condition}"));
    rows[0]["n"].as_i64().unwrap_or_else(|| panic!("{rows:?}"))
}

fn echo(i: usize) -> Value {
    json!({ "op": "callTool", "name": "demo__echo", "arguments": { "text": format!("call {i}") } })
}

/// Drives 40 calls at once (and 8 refused ones) through the official client, stops the gateway
/// cleanly, and counts.
fn rows_equal_calls(audit: &str) {
    let (mut gw, _p) = gateway(audit, "");
    let mut ops: Vec<Value> = (0..40).map(echo).collect();
    ops.extend((0..8).map(|_| json!({ "op": "callTool", "name": "demo__delete_note", "arguments": { "title": "x" } })));
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "parallel", "ops": ops },
    ]}));
    let results = ok(&out, 0).as_array().unwrap().clone();
    assert_eq!(results.iter().filter(|r| r["ok"] == true).count(), 40, "{results:?}");
    gw.stop();
    assert_eq!(count(&gw, "event = 'call' AND decision = 'ALLOW' AND tool_name = 'echo'"), 40);
    assert_eq!(count(&gw, "event = 'call' AND decision = 'DENY'"), 8);
    let (code, out, err) = warden(&["audit", "--config", &config_of(&gw), "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("chain intact"), "{out}");
}

#[test]
fn every_call_is_a_row_under_concurrent_load_sqlite() {
    rows_equal_calls("durability = \"batched\"\nmax_delay = \"200ms\"");
    rows_equal_calls("durability = \"sync\"");
}

#[test]
fn every_call_is_a_row_under_concurrent_load_postgres() {
    let pg = PgSchema::new();
    rows_equal_calls(&format!("postgres_url = {:?}\ndurability = \"batched\"", pg.url()));
    let pg = PgSchema::new();
    rows_equal_calls(&format!("postgres_url = {:?}\ndurability = \"sync\"", pg.url()));
}

#[test]
fn sync_durability_loses_no_answered_call_to_kill_9() {
    let (mut gw, _p) = gateway("durability = \"sync\"", "");
    let out = node_client(
        json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": (0..25).map(echo).collect::<Vec<_>>() }),
    );
    let answered = out["ops"].as_array().unwrap().iter().filter(|o| o["ok"] == true).count();
    assert_eq!(answered, 25, "{out}");
    gw.kill9();
    assert_eq!(count(&gw, "event = 'call' AND decision = 'ALLOW'"), 25);
    let (code, out, _) = warden(&["audit", "--config", &config_of(&gw), "verify"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn arguments_are_redacted_and_results_only_hashed() {
    // A credential in arguments is held for approval by default; here it is let through, to show
    // that the audit log stores it redacted all the same.
    let (mut gw, _p) = gateway("durability = \"sync\"", "[tools.\"demo/echo\"]\nsecrets_in_arguments = \"allow\"\n");
    let secret = "AKIAIOSFODNN7EXAMPLE";
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": format!("my key is {secret}") } },
    ]}));
    let answer = text(ok(&out, 0));
    assert!(answer.contains("my key is") && !answer.contains(secret), "the echoed key is redacted too: {out}");
    gw.stop();
    let rows = query(&gw, "SELECT arguments, redactions, result_hash FROM mcp_audit WHERE event = 'call'");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let stored = rows[0].to_string();
    assert!(!stored.contains(secret), "the secret is not stored: {stored}");
    assert!(stored.contains("REDACTED"), "{stored}");
    assert!(rows[0]["redactions"].as_i64().unwrap() >= 1);
    assert_eq!(rows[0]["result_hash"].as_str().map(str::len), Some(64), "a SHA-256, not content: {stored}");
    for file in ["warden-audit.db", "warden-audit.db-wal"] {
        let db = std::fs::read(gw.dir.path(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&db).contains(secret), "nowhere in {file}");
    }
}

/// Python's sqlite3, to tamper with a copy of the database as an attacker with file access would.
/// The copy is taken with SQLite's backup API, so it holds whatever the write-ahead log still holds.
fn tamper(original: &std::path::Path, db: &std::path::Path, sql: &str) {
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); sqlite3.connect({:?}).backup(c); \
         c.executescript({sql:?}); c.commit()",
        db.display().to_string(),
        original.display().to_string()
    );
    let out = Command::new(venv_bin("python")).args(["-c", &script]).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_kind_of_tampering_is_found() {
    let (mut gw, _p) = gateway("durability = \"sync\"", "");
    node_client(
        json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": (0..6).map(echo).collect::<Vec<_>>() }),
    );
    gw.stop();
    let original = gw.dir.path("warden-audit.db");
    let rows = query(&gw, "SELECT seq FROM mcp_audit ORDER BY seq");
    let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.len() >= 6, "{seqs:?}");
    let third = seqs[2];
    let cases = [
        ("edited", format!("UPDATE mcp_audit SET decision = 'DENY' WHERE seq = {third};")),
        ("deleted", format!("DELETE FROM mcp_audit WHERE seq = {third};")),
        (
            "inserted",
            format!(
                "UPDATE mcp_audit SET seq = seq + 100000, link = link + 100000 WHERE seq >= {third}; \
                 UPDATE mcp_audit SET seq = seq - 99999, link = link - 99999 WHERE seq >= 100000; \
                 CREATE TEMP TABLE forged AS SELECT * FROM mcp_audit WHERE seq = {next}; \
                 UPDATE forged SET seq = {third}, link = {third}, tool_name = 'forged'; \
                 INSERT INTO mcp_audit SELECT * FROM forged;",
                next = third + 1
            ),
        ),
        (
            "reordered",
            format!(
                "UPDATE mcp_audit SET seq = -1, link = -1 WHERE seq = {third}; UPDATE mcp_audit SET seq = {third}, link = {third} WHERE seq = {}; UPDATE mcp_audit SET seq = {}, link = {} WHERE seq = -1;",
                third + 1,
                third + 1,
                third + 1
            ),
        ),
    ];
    for (kind, sql) in cases {
        let dir = TempDir::new("tamper");
        let copy = dir.path("audit.db");
        tamper(&original, &copy, &sql);
        let url = format!("sqlite://{}", copy.display());
        let (code, out, err) = warden(&["audit", "--database", &url, "verify"]);
        assert_eq!(code, 1, "{kind} must be found: {out}{err}");
        assert!(out.contains("TAMPERED"), "{kind}: {out}");
        assert!(out.contains(&format!("row {third}")), "{kind} names the first bad row ({third}): {out}");
    }
    let (code, out, _) = warden(&["audit", "--config", &config_of(&gw), "verify"]);
    assert_eq!(code, 0, "the original is intact: {out}");
}

/// The threat model's unapproved-writes query, as written for Postgres and in its SQLite form.
const SEED_PG: &str = "SELECT tool_name FROM mcp_audit WHERE action_class = 'write' AND decision = 'ALLOW' AND approval_id IS NULL AND event_time > now() - interval '10 minutes'";
const SEED_SQLITE: &str = "SELECT tool_name FROM mcp_audit WHERE action_class = 'write' AND decision = 'ALLOW' AND approval_id IS NULL AND event_time > strftime('%Y-%m-%d %H:%M:%f', 'now', '-10 minutes')";

fn unapproved_writes(audit: &str, seed: &str) {
    let (mut gw, _p) = gateway(audit, "[tools.\"demo/echo\"]\nclass = \"read\"\n");
    let write =
        |t: &str| json!({ "op": "callTool", "name": "demo__write_note", "arguments": { "title": t, "body": "x" } });
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        write("a"), echo(1), write("b"),
        { "op": "callTool", "name": "demo__delete_note", "arguments": { "title": "a" } },
        { "op": "callTool", "name": "demo__daily_tip", "arguments": {} },
        write("c"),
    ]}));
    for i in [0, 2, 5] {
        ok(&out, i);
    }
    gw.stop();
    let rows = query(&gw, seed);
    assert_eq!(rows.len(), 3, "exactly the three writes: {rows:?}");
    assert!(rows.iter().all(|r| r["tool_name"] == "write_note"), "{rows:?}");
    let (code, out, _) = warden(&["gates", "--config", &config_of(&gw)]);
    assert_eq!(code, 1, "the unapproved-writes gate trips: {out}");
    assert!(out.lines().any(|l| l.starts_with("TRIPPED") && l.contains("unapproved")), "{out}");
}

#[test]
fn the_seed_query_finds_exactly_the_unapproved_writes() {
    unapproved_writes("durability = \"sync\"", SEED_SQLITE);
    let pg = PgSchema::new();
    unapproved_writes(&format!("postgres_url = {:?}\ndurability = \"sync\"", pg.url()), SEED_PG);
}

#[test]
fn gates_pass_on_a_quiet_log_and_alert_a_webhook_when_tripped() {
    let hook_port = free_port();
    let _hook = Process::listening(
        &venv_bin("python"),
        &[&peer_file("python/collector.py"), &hook_port.to_string()],
        &[],
        hook_port,
    );
    let (mut gw, _p) = gateway(
        "durability = \"sync\"",
        &format!(
            "[gates]\nwebhook = \"http://127.0.0.1:{hook_port}/alert\"\nwebhook_allow_private = true\ninterval = \"300ms\"\n"
        ),
    );
    let (code, out, _) = warden(&["gates", "--config", &config_of(&gw)]);
    assert_eq!(code, 0, "nothing trips on a quiet log: {out}");
    assert!(out.contains("unapproved"), "each gate is printed: {out}");
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "x" } },
    ]}));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let received = loop {
        let got = http_at("GET", hook_port, "/received", &[], b"").body;
        if got.contains("unapproved") || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(received.contains("unapproved"), "the webhook got the alert: {received}\n{}", gw.log());
    gw.stop();
}

#[test]
fn a_webhook_on_a_private_address_is_refused_by_default() {
    let (gw, _p) = gateway(
        "durability = \"sync\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[gates]\nwebhook = \"https://localhost:9/alert\"\ninterval = \"300ms\"\n",
    );
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "x" } },
    ]}));
    // The name passes the configuration's checks; its address is refused when connecting.
    assert!(gw.wait_log("gate alert NOT sent", Duration::from_secs(10)), "{}", gw.log());
    assert!(gw.log().contains("refused by the egress guard") && gw.log().contains("loopback"), "{}", gw.log());
    let refused = metric(&scrape(gw.admin_port()), "warden_egress_own_refused_total");
    assert!(refused >= 1.0, "the refusal is counted: {refused}");
}

fn scrape(port: u16) -> String {
    http_at("GET", port, "/metrics", &[], b"").body
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[test]
fn metrics_move_as_calls_are_made() {
    let (gw, _p) = gateway("", "[admin]\nlisten = \"127.0.0.1:0\"\n\n[tools.\"demo/echo\"]\nclass = \"read\"\n");
    let admin = gw.admin_port();
    let before = scrape(admin);
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        echo(1), echo(2),
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "x" } },
        { "op": "callTool", "name": "demo__delete_note", "arguments": { "title": "t" } },
        { "op": "callTool", "name": "nosuchserver__tool", "arguments": {} },
    ]}));
    let after = scrape(admin);
    let delta = |p: &str| metric(&after, p) - metric(&before, p);
    assert_eq!(
        delta("warden_tool_calls_total{decision=\"ALLOW\",server=\"demo\",tool=\"echo\",class=\"read\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(delta("warden_tool_calls_total{decision=\"DENY\""), 2.0, "{after}");
    assert_eq!(delta("warden_unapproved_write_calls_total"), 1.0, "{after}");
    assert_eq!(delta("warden_unknown_server_attempts_total"), 1.0, "{after}");
    assert!(delta("warden_tool_call_duration_seconds_count") >= 3.0, "{after}");
    assert!(after.contains("warden_upstream_up{server=\"demo\"} 1"), "{after}");
    assert!(delta("warden_audit_rows_total") >= 5.0, "{after}");
    // The MCP listener does not serve them.
    assert_eq!(http_at("GET", gw.port, "/metrics", &[], b"").status, 404);
}

#[test]
fn jsonl_export_and_sink_carry_the_same_rows() {
    let (mut gw, _p) = gateway("durability = \"sync\"\njsonl = \"audit.jsonl\"", "");
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [echo(1), echo(2)] }));
    gw.stop();
    let (code, exported, _) = warden(&["audit", "--config", &config_of(&gw), "export", "--format", "jsonl"]);
    assert_eq!(code, 0);
    let sink = std::fs::read_to_string(gw.dir.path("audit.jsonl")).unwrap();
    let parse = |t: &str| t.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>();
    assert_eq!(parse(&exported), parse(&sink));
    assert!(parse(&exported).iter().any(|r| r["tool_name"] == "echo" && r["decision"] == "ALLOW"), "{exported}");
}

#[test]
fn trace_context_reaches_the_server_and_the_collector() {
    let collector = free_port();
    let _c = Process::listening(
        &venv_bin("python"),
        &[&peer_file("python/collector.py"), &collector.to_string()],
        &[],
        collector,
    );
    let upstream = free_port();
    let _u = Process::listening(
        &venv_bin("python"),
        &[&peer_file("python/hostile_http.py"), &upstream.to_string()],
        &[],
        upstream,
    );
    let dir = TempDir::new("otel-policy");
    std::fs::write(dir.path("p.cedar"), "permit (principal, action, resource);").unwrap();
    let mut gw = Warden::serve(
        "",
        &format!(
            "[servers.up]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://127.0.0.1:{upstream}/mcp\"\n\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{collector}\"\n\n[policy]\nfiles = [{:?}]\n",
            dir.path("p.cedar").display().to_string()
        ),
    );
    let client_trace = "0af7651916cd43dd8448eb211c80319c";
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "up__seen_meta", "arguments": {}, "meta": { "traceparent": format!("00-{client_trace}-b7ad6b7169203331-01") } },
    ]}));
    let meta: Value = serde_json::from_str(&text(ok(&out, 0))).unwrap();
    let parent = meta["traceparent"].as_str().unwrap_or_else(|| panic!("no trace context reached the server: {meta}"));
    assert!(parent.starts_with(&format!("00-{client_trace}-")), "the client's trace continues: {parent}");
    assert!(!parent.contains("b7ad6b7169203331"), "the server's parent is the gateway's span: {parent}");
    gw.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = http_at("GET", collector, "/received", &[], b"").body;
        if got.contains(client_trace) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no span exported: {got}\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_call_abandoned_by_its_client_still_leaves_a_row() {
    use std::io::Write;
    let dir = TempDir::new("abandon-policy");
    std::fs::write(dir.path("p.cedar"), "permit (principal, action, resource);").unwrap();
    let mut gw = Warden::serve(
        "",
        &format!("{}\n[policy]\nfiles = [{:?}]\n", demo_server("demo"), dir.path("p.cedar").display().to_string()),
    );
    let sid = raw_initialize(gw.port);
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__slow_count","arguments":{"steps":50,"delay_ms":100}}}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\ncontent-length: {}\r\n\r\n{body}",
        gw.port,
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    gw.stop();
    let rows = query(&gw, "SELECT decision, outcome FROM mcp_audit WHERE event = 'call' AND tool_name = 'slow_count'");
    assert_eq!(rows, vec![json!({ "decision": "ALLOW", "outcome": "abandoned" })], "{}", gw.log());
}

#[test]
fn tail_follows_new_rows() {
    use std::io::{BufRead, BufReader};
    let (gw, _p) = gateway("durability = \"sync\"", "");
    let mut tail = Command::new(warden_bin())
        .args(["audit", "--config", &config_of(&gw), "tail"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // If the row never shows, the tail is stopped rather than the test hanging.
    let pid = nix::unistd::Pid::from_raw(tail.id() as i32);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    });
    std::thread::sleep(Duration::from_millis(500));
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [echo(1)] }));
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let row: Value = serde_json::from_str(&line).unwrap();
        let done = row["tool_name"] == "echo" && row["event"] == "call";
        seen.push(row);
        if done {
            break;
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(seen.iter().any(|r| r["tool_name"] == "echo" && r["decision"] == "ALLOW"), "{seen:?}");
}
