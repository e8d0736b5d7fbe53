//! The first run with a real server that is not trusted: every tool is `write`, so once a
//! context has read one untrusted result, even its reads wait for approval. `warden tools review`
//! shows each tool's annotations and proposed class and adopts them in one step, bound to the
//! definition they were proposed for: a definition that changes loses its adopted class.

mod support;

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use support::*;

fn call(name: &str, arguments: Value) -> Value {
    json!({ "op": "callTool", "name": name, "arguments": arguments })
}

/// server-everything, untrusted (its results taint), under a policy that permits everything.
fn config(dir: &TempDir) -> String {
    std::fs::write(dir.path("permit-all.cedar"), PERMIT_ALL).unwrap();
    format!(
        "[servers.everything]\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\nenv_inherit = [\"PATH\", \"HOME\"]\n\n\
         [audit]\npath = {:?}\n\n[policy]\nfiles = [{:?}]\n",
        node_peer("server-everything/dist/index.js"),
        dir.path("audit.db").display().to_string(),
        dir.path("permit-all.cedar").display().to_string(),
    )
}

/// Two reads and a write in one session: what each got.
fn session(gw: &Warden) -> Value {
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        call("everything__echo", json!({ "message": "one" })),
        call("everything__echo", json!({ "message": "two" })),
        call("everything__toggle-simulated-logging", json!({})),
    ]}))
}

fn code(out: &Value, i: usize) -> i64 {
    err(out, i)["code"].as_i64().unwrap_or_default()
}

fn review(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    review_server(config, "everything", args)
}

#[test]
fn reads_stop_waiting_once_their_classes_are_adopted_and_only_for_the_definition_reviewed() {
    let state = TempDir::new("review");
    let text = config(&state);

    // The secure default, as a new user meets it: the second read is held.
    let mut gw = Warden::serve("", &text);
    let out = session(&gw);
    assert_eq!(text_of(ok(&out, 0)), "Echo: one", "{out}");
    assert_eq!(code(&out, 1), -32013, "a read after an untrusted result waits for approval: {out}");
    let path = gw.dir.path("warden.toml");
    gw.stop();

    // The review reads the definitions the gateway pinned and proposes what they claim.
    let (ok_, shown) = review(&path, &[]);
    assert!(ok_, "{shown}");
    assert!(shown.contains("tools (pinned definitions"), "{shown}");
    let echo = shown.lines().find(|l| l.trim_start().starts_with("echo ")).unwrap_or_default().to_owned();
    assert!(echo.contains("readOnly") && echo.contains("write") && echo.contains("read  <- adopt"), "{shown}");
    let toggle = shown.lines().find(|l| l.contains("toggle-simulated-logging")).unwrap_or_default().to_owned();
    assert!(!toggle.contains("<- adopt"), "a tool that does not claim to be read-only stays write: {shown}");
    assert!(shown.contains("warden tools review everything --adopt"), "{shown}");

    // Adopted in one step, into the configuration, bound to each definition.
    let before = std::fs::read_to_string(&path).unwrap();
    let (ok_, adopted) = review(&path, &["--adopt"]);
    assert!(ok_, "{adopted}");
    assert!(adopted.contains("adopted 9 classes"), "{adopted}");
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(before.trim_end()), "the configuration is extended, not rewritten:\n{after}");
    let doc: toml::Table = after.parse().unwrap();
    let entry = &doc["tools"]["everything/echo"];
    assert_eq!(entry["class"].as_str(), Some("read"));
    let hash = entry["definition"].as_str().unwrap_or_default().to_owned();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{after}");
    assert!(doc["tools"].get("everything/toggle-simulated-logging").is_none(), "{after}");

    // With the adopted classes, reads go through after an untrusted result; writes still wait.
    let mut gw = Warden::start(&after, 0);
    let out = session(&gw);
    assert_eq!(text_of(ok(&out, 1)), "Echo: two", "{out}");
    assert_eq!(code(&out, 2), -32013, "a write after an untrusted result still waits: {out}");
    gw.stop();

    // A class adopted for another definition (the server changed the tool, and the change was
    // accepted) does not carry over: the tool is write again until reviewed.
    let other = format!("sha256:{}", "0".repeat(64));
    let changed = after.replacen(&hash, &other, 1);
    let gw = Warden::start(&changed, 0);
    let out = session(&gw);
    assert_eq!(code(&out, 1), -32013, "the class was bound to another definition: {out}");
    assert!(gw.log().contains("adopted for this tool was for another definition"), "{}", gw.log());
    let (ok_, shown) = review(&gw.dir.path("warden.toml"), &[]);
    assert!(ok_, "{shown}");
    assert!(shown.contains("the class adopted earlier was for another definition"), "{shown}");
}

fn text_of(result: &Value) -> String {
    text(result)
}

/// `warden import --connect` starts each imported server in its sandbox and shows its tools'
/// proposed classes; `--adopt` writes them into the TOML, bound to each definition, and the
/// result loads.
#[test]
fn import_shows_and_adopts_proposed_classes() {
    let dir = TempDir::new("review");
    let json = dir.path("mcp.json");
    let doc = json!({ "mcpServers": { "everything": {
        "command": "node", "args": [node_peer("server-everything/dist/index.js"), "stdio"] } } });
    std::fs::write(&json, doc.to_string()).unwrap();
    let out = Command::new(warden_bin())
        .current_dir(&dir.0)
        .args(["import", "--connect", "--adopt", "--no-resolve"])
        .arg(&json)
        .output()
        .unwrap();
    let toml_text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(toml_text.contains("# server everything: 16 tools (listed just now)"), "{toml_text}");
    assert!(toml_text.contains("may read") && toml_text.contains("sandbox_read = ["), "{toml_text}");
    let doc: toml::Table = toml_text.parse().unwrap();
    assert_eq!(doc["tools"]["everything/echo"]["class"].as_str(), Some("read"), "{toml_text}");
    assert!(doc["tools"]["everything/echo"]["definition"].as_str().is_some_and(|d| d.starts_with("sha256:")));
    assert!(doc["tools"].get("everything/trigger-sampling-request").is_none(), "{toml_text}");
    let cfg = dir.path("warden.toml");
    std::fs::write(&cfg, &toml_text).unwrap();
    let check = Command::new(warden_bin()).current_dir(&dir.0).arg("check").output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

/// The rug pull the binding is for: a tool whose `read` class was adopted changes its annotations
/// (readOnlyHint true → false) while the gateway runs. The change is drift, held like any other;
/// once a person accepts it, the adopted class does not carry over to the new definition, and the
/// tool's calls after an untrusted result wait for approval again.
#[test]
fn an_adopted_class_does_not_survive_a_rug_pull() {
    let state = TempDir::new("review");
    std::fs::write(state.path("permit-all.cedar"), PERMIT_ALL).unwrap();
    let config_text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nlist_ttl = \"200ms\"\n\n\
         [servers.rug]\ncommand = {:?}\nargs = [{:?}]\nenv = {{ RUGPULL = \"annotation\", CLOSED = \"1\" }}\n\n\
         [audit]\npath = {:?}\n\n[policy]\nfiles = [{:?}]\n",
        venv_bin("python"),
        peer_file("python/rugpull_server.py"),
        state.path("audit.db").display().to_string(),
        state.path("permit-all.cedar").display().to_string(),
    );
    let weather = || call("rug__weather", json!({ "city": "Oslo" }));
    let session = |gw: &Warden, ops: Vec<Value>| {
        node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": ops }))
    };
    // First sight pins the definition.
    let mut gw = Warden::start(&config_text, 0);
    let out = session(&gw, vec![json!({ "op": "listTools" })]);
    assert_eq!(names(ok(&out, 0), "tools"), ["rug__weather"], "{out}");
    let path = gw.dir.path("warden.toml");
    gw.stop();
    let (ok_, adopted) = review_server(&path, "rug", &["--adopt"]);
    assert!(ok_ && adopted.contains("adopted 1 classes"), "{adopted}");
    let after = std::fs::read_to_string(&path).unwrap();

    // Adopted: a second read after an untrusted result goes through.
    let gw = Warden::start(&after, 0);
    let out = session(&gw, vec![weather(), weather()]);
    assert_eq!(text(ok(&out, 1)), "weather ran", "{out}");
    // The server changes the tool's annotations: held, as any drift.
    std::thread::sleep(Duration::from_millis(300));
    let out = session(&gw, vec![json!({ "op": "listTools" })]);
    assert!(names(ok(&out, 0), "tools").is_empty(), "the changed definition is held: {out}");
    let (status, accepted) = warden_cli(&gw, &["pins", "accept", "rug", "weather", "--by", "reviewer"]);
    assert_eq!(status, 0, "{accepted}");
    std::thread::sleep(Duration::from_millis(300));
    // Accepted, it is listed again, but the class adopted for the old definition is gone.
    let out = session(&gw, vec![json!({ "op": "listTools" }), weather(), weather()]);
    assert_eq!(names(ok(&out, 0), "tools"), ["rug__weather"], "{out}");
    assert_eq!(code(&out, 2), -32013, "write again: a read after an untrusted result waits: {out}");
    assert!(gw.log().contains("adopted for this tool was for another definition"), "{}", gw.log());
}

fn review_server(config: &std::path::Path, server: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(warden_bin())
        .args(["tools", "review", server])
        .args(args)
        .env("WARDEN_CONFIG", config)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// A read-only tool that reaches the open world (fetching a URL) is not proposed `read`: once a
/// context is tainted, it could carry out what the context read.
#[test]
fn a_read_only_tool_open_to_the_world_is_not_proposed_read() {
    let dir = TempDir::new("review");
    let cfg = dir.path("warden.toml");
    std::fs::write(
        &cfg,
        format!("[servers.demo]\ncommand = {:?}\nargs = [\"demo-server\"]\n", warden_bin().display().to_string()),
    )
    .unwrap();
    let (ok_, shown) = review_server(&cfg, "demo", &["--connect"]);
    assert!(ok_, "{shown}");
    let fetch = shown.lines().skip_while(|l| !l.contains("fetch_url")).take(2).collect::<Vec<_>>().join("\n");
    assert!(fetch.contains("readOnly") && fetch.contains("write          write"), "{shown}");
    assert!(fetch.contains("not read: it reaches the open world"), "{shown}");
    let (ok_, adopted) = review_server(&cfg, "demo", &["--adopt", "--connect"]);
    assert!(ok_, "{adopted}");
    let doc: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    let class = doc.get("tools").and_then(|t| t.get("demo/fetch_url")).and_then(|t| t.get("class"));
    assert!(class.is_none_or(|c| c.as_str() != Some("read")), "{doc:?}");
}
