//! Upstream servers that misbehave: garbage, floods, hangs, crashes, bombs, oversized frames;
//! and what a spawned server may see of the gateway's environment.

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

fn call(url: &str, ops: Value) -> Value {
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": url }, "ops": ops }));
    assert_eq!(out["connected"], true, "{out}");
    out
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_from_a_stdio_server_is_dropped_and_the_answer_still_arrives() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "bad__garbage", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": { "still": "working" } },
        ]),
    );
    assert_eq!(text(ok(&out, 0)), "after the garbage");
    assert!(text(ok(&out, 1)).contains("working"));
    let log = gw.log();
    assert!(log.contains("dropped an unreadable frame"), "{log}");
    assert!(log.contains("over the size limit"), "{log}");
    assert!(log.contains("not in flight"), "a response to an id never sent is dropped and logged");
}

#[test]
fn a_notification_flood_neither_blocks_nor_bloats_the_gateway() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let before = rss_kib(gw.pid());
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "bad__flood", "arguments": { "count": 200000 }, "timeoutMs": 60000 },
            { "op": "callTool", "name": "bad__echo", "arguments": {} },
        ]),
    );
    assert_eq!(text(ok(&out, 0)), "after the flood");
    ok(&out, 1);
    let after = rss_kib(gw.pid());
    assert!(
        after < before + 64 * 1024,
        "memory stayed bounded through ~30 MB of notifications: {before} KiB -> {after} KiB"
    );
}

#[test]
fn a_hanging_server_is_timed_out_and_a_crashing_one_restarted_with_backoff() {
    let gw = Warden::serve("", &hostile("bad", "timeout = \"1s\""));
    let started = Instant::now();
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "bad__hang", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": {} },
            { "op": "callTool", "name": "bad__crash", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": { "after": "restart" } },
            { "op": "callTool", "name": "bad__crash", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": {} },
            { "op": "callTool", "name": "bad__crash", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": {} },
        ]),
    );
    let e = err(&out, 0);
    assert_eq!(e["code"], -32001, "a hang becomes a timeout error: {e}");
    assert!(e["message"].as_str().unwrap().contains("did not answer within"), "{e}");
    ok(&out, 1);
    let crash = err(&out, 2);
    assert!(
        crash["message"].as_str().unwrap().contains("exited unexpectedly (exit status 3)"),
        "the crash is named: {crash}"
    );
    assert!(text(ok(&out, 3)).contains("restart"), "the server is restarted on next use");
    err(&out, 4);
    // Crashing again soon: restarts back off, and the wait is stated.
    let mut backed_off = false;
    for i in [5, 7] {
        if let Some(e) = out["ops"][i]["error"].as_object() {
            backed_off |= e["message"].as_str().unwrap_or_default().contains("restarting after a failure");
        }
    }
    assert!(backed_off, "repeated crashes back off: {out}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(gw.log().contains("crashing on purpose"), "the server's stderr is in the gateway's log");
}

#[test]
fn bombs_and_oversized_answers_fail_the_call_not_the_gateway() {
    let gw = Warden::serve("", &hostile("bad", "timeout = \"3s\""));
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "bad__deep", "arguments": {} },
            { "op": "callTool", "name": "bad__big", "arguments": {} },
            { "op": "callTool", "name": "bad__echo", "arguments": {} },
        ]),
    );
    let deep = err(&out, 0);
    assert!(
        deep["message"].as_str().unwrap().contains("refused"),
        "the unreadable answer fails its call at once: {deep}"
    );
    let big = err(&out, 1);
    assert_eq!(big["code"], -32001, "a frame over the limit is dropped; the call times out: {big}");
    ok(&out, 2);
}

#[test]
fn spawned_servers_see_only_the_environment_the_config_names() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = call(&gw.url(), json!([{ "op": "callTool", "name": "bad__env", "arguments": {} }]));
    let env: Value = serde_json::from_str(&text(ok(&out, 0))).unwrap();
    let keys: Vec<&String> = env.as_object().unwrap().keys().collect();
    assert_eq!(env["HOSTILE_ALLOWED"], "yes", "configured variables are set");
    assert!(env.get("WARDEN_E2E_SECRET").is_none(), "the gateway's own environment is not inherited: {keys:?}");
    assert!(env.get("PATH").is_none() && env.get("HOME").is_none(), "nothing is inherited unless named: {keys:?}");
    assert!(
        env["TMPDIR"].as_str().is_some_and(|t| t.contains("warden-sandbox-bad-")),
        "the sandbox's private temporary directory: {keys:?}"
    );
    assert!(keys.len() <= 3, "only the named variables and TMPDIR (Python may add LC_CTYPE): {keys:?}");
    assert!(gw.log().contains("stderr marker 7f3a"), "stderr is captured to the log");

    // server-everything reports its environment too; named inheritance works.
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let out = call(&gw.url(), json!([{ "op": "callTool", "name": "everything__get-env", "arguments": {} }]));
    let env = text(ok(&out, 0));
    assert!(env.contains("\"PATH\""), "PATH was named in env_inherit");
    assert!(!env.contains("must-not-leak-7c1d"), "an unnamed secret never reaches the server");
}

/// The same for a header whose value Warden reads from a file (`headers = { Authorization = {
/// file = … } }`): a server echoing it in a result (text, structured content, a base64 payload),
/// in an error, or in a listed tool's description never hands it on.
#[test]
fn a_header_read_from_a_file_never_comes_back_on_any_path() {
    let dir = TempDir::new("hostile");
    let secret = ["hdr", "secret", "9c4e", "71aa"].join("-");
    std::fs::write(dir.path("authorization"), format!("Bearer {secret}\n")).unwrap();
    let port = free_port();
    let _upstream =
        Process::listening(&venv_bin("python"), &[&peer_file("python/hostile_http.py"), &port.to_string()], &[], port);
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.upstream]\ntrusted_content = true\nurl = \"http://127.0.0.1:{port}/mcp\"\nheaders = {{ Authorization = {{ file = {:?} }} }}\n",
            dir.path("authorization").display().to_string()
        ),
    );
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "upstream__echo_credential", "arguments": {} },
            { "op": "callTool", "name": "upstream__echo_credential_error", "arguments": {} },
            { "op": "listTools" },
        ]),
    );
    let whole = out.to_string();
    assert!(!whole.contains(&secret), "the header's value reached the client: {whole}");
    let result = ok(&out, 0);
    assert!(
        result["content"][0]["text"].as_str().unwrap_or_default().contains("[REDACTED:injected_credential]"),
        "{result}"
    );
    assert!(err(&out, 1)["message"].as_str().is_some(), "{out}");
    let lookup = ok(&out, 2)["tools"].as_array().unwrap().iter().find(|t| t["name"] == "upstream__lookup").cloned();
    assert!(
        lookup
            .is_some_and(|t| t["description"].as_str().unwrap_or_default().contains("[REDACTED:injected_credential]")),
        "{out}"
    );
}

/// A credential a server's `env` takes from Warden's environment (`{ env = "VAR" }`, as `warden
/// import` writes it) reaches the server, and the server cannot hand it on: echoed in a result,
/// it is replaced before any client sees it. A referenced variable that is not set stops the
/// gateway at start, naming it.
#[test]
fn a_credential_taken_from_wardens_environment_reaches_the_server_and_never_comes_back() {
    let extra = "env = { SERVICE_API_KEY = { env = \"WARDEN_E2E_SECRET\" }, LOG_TAG = \"plain-setting\" }";
    let gw = Warden::serve("", &everything_stdio("everything", extra));
    let out = call(&gw.url(), json!([{ "op": "callTool", "name": "everything__get-env", "arguments": {} }]));
    let env = text(ok(&out, 0));
    assert!(env.contains("SERVICE_API_KEY") && env.contains("[REDACTED:injected_credential]"), "{env}");
    assert!(!env.contains("must-not-leak-7c1d"), "the server had it, the client does not: {env}");
    assert!(env.contains("plain-setting"), "a setting written in the file is not a credential: {env}");

    let dir = TempDir::new("hostile");
    let cfg = dir.path("warden.toml");
    let missing = "env = { SERVICE_API_KEY = { env = \"WARDEN_E2E_NOT_SET\" } }";
    std::fs::write(&cfg, format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{}", everything_stdio("everything", missing)))
        .unwrap();
    let out = std::process::Command::new(warden_bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("server everything: env SERVICE_API_KEY: the environment variable WARDEN_E2E_NOT_SET is not set"),
        "{err}"
    );
}

#[test]
fn cancellation_reaches_the_server() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = call(
        &gw.url(),
        // The list first, so that the abort's clock starts when the call can be forwarded (a
        // debug build takes a few hundred milliseconds to review a new server's tools).
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "bad__hang", "arguments": {}, "abortAfterMs": 300 },
            { "op": "sleep", "ms": 300 },
            { "op": "callTool", "name": "bad__seen", "arguments": {} },
        ]),
    );
    err(&out, 1);
    let seen = text(ok(&out, 3));
    assert_eq!(seen_count(&seen, "notifications/cancelled"), 1, "the server was told the call was cancelled: {seen}");
    let parsed: Value = serde_json::from_str(&seen).unwrap();
    let request_id = parsed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["method"] == "notifications/cancelled")
        .map(|n| n["params"]["requestId"].clone());
    assert!(
        request_id.is_some_and(|id| id.is_u64()),
        "with the gateway's own (numeric) request id, not the client's: {seen}"
    );
}

#[test]
fn misbehaving_http_servers_get_clear_errors() {
    let port = free_port();
    let _server =
        Process::listening(&venv_bin("python"), &[&peer_file("python/hostile_http.py"), &port.to_string()], &[], port);
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.web]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://127.0.0.1:{port}/mcp\"\ntimeout = \"2s\"\n"
        ),
    );
    let out = call(
        &gw.url(),
        json!([
            { "op": "callTool", "name": "web__garbage", "arguments": {} },
            { "op": "callTool", "name": "web__html", "arguments": {} },
            { "op": "callTool", "name": "web__huge", "arguments": {} },
            { "op": "callTool", "name": "web__hang", "arguments": {} },
            { "op": "callTool", "name": "web__wrong_id", "arguments": {} },
            { "op": "callTool", "name": "web__sse_flood", "arguments": {}, "timeoutMs": 60000 },
            { "op": "callTool", "name": "web__echo", "arguments": {} },
        ]),
    );
    assert!(err(&out, 0)["message"].as_str().unwrap().contains("invalid response"), "{}", out["ops"][0]);
    let html = err(&out, 1);
    assert!(!html["message"].as_str().unwrap().contains("/srv/app"), "an upstream error page is not passed on: {html}");
    assert!(err(&out, 2)["message"].as_str().unwrap().contains("larger than"), "{}", out["ops"][2]);
    assert_eq!(err(&out, 3)["code"], -32001);
    err(&out, 4);
    assert_eq!(text(ok(&out, 5)), "after the flood");
    assert_eq!(text(ok(&out, 6)), "echo");
}

#[test]
fn answers_no_server_may_send_are_refused() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = node_client(json!({ "sdk": "v2", "era": "modern", "transport": { "type": "http", "url": gw.url() },
        "capabilities": { "sampling": {} },
        "answers": { "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "should never be asked" } } },
        "ops": [
            { "op": "callTool", "name": "bad__fake_input_required", "arguments": {} },
            { "op": "callTool", "name": "bad__not_object", "arguments": {} },
        ] }));
    assert_eq!(
        err(&out, 0)["code"],
        -32011,
        "a 2025-era server's input_required is not passed to the client: {}",
        out["ops"][0]
    );
    assert!(out["serverRequests"].as_array().unwrap().is_empty(), "the client was never asked");
    assert_eq!(err(&out, 1)["code"], -32011, "a result that is not an object is refused");
}

#[test]
fn results_are_parsed_as_their_method_result_and_unknown_blocks_still_cleaned() {
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "bad__misshapen", "arguments": {} },
    ] }));
    let refused = err(&out, 0);
    assert_eq!(refused["code"], -32011, "{out}");
    assert!(refused["message"].as_str().unwrap().contains("not a valid tools/call result"), "{out}");
    assert!(!out.to_string().contains("raw frame"), "the frame is not passed on: {out}");
    let log = gw.log();
    assert!(log.contains("refused a malformed result"), "the parser's detail goes to the log");
    assert!(!log.contains("ghp_BBBB"), "with secrets redacted");

    // A block of a type no MCP version defines passes (the SDK clients refuse it themselves, so
    // by raw HTTP), but cleaned like any other.
    let sid = raw_initialize(gw.port);
    let session = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"bad__future_block","arguments":{}}}"#;
    let answer = post_json(gw.port, &session, call).json();
    let block = &answer["result"]["content"][0];
    assert_eq!(block["type"], "hologram", "{answer}");
    let caption = block["caption"].as_str().unwrap();
    assert!(caption.contains("[REDACTED:github_token]") && !caption.contains('\u{1b}'), "{caption:?}");
}
