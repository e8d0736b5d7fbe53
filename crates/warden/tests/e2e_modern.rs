//! Modern-era clients (the TypeScript SDK 2.x pinned to 2026-07-28, the Python SDK) through the
//! HTTP front: in front of legacy-only servers (bridged), dual-era servers (spoken to in the
//! modern era), and a modern Streamable HTTP server.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::*;

fn v2(url: &str, era: &str, capabilities: Value, answers: Value, ops: Value) -> Value {
    let out = node_client(
        json!({ "sdk": "v2", "era": era, "transport": { "type": "http", "url": url }, "capabilities": capabilities, "answers": answers, "ops": ops }),
    );
    assert_eq!(out["connected"], true, "{out}");
    out
}

fn answers() -> Value {
    json!({
        "sampling": { "role": "assistant", "model": "e2e-model", "content": { "type": "text", "text": "sampled by the modern client" } },
        "elicitation": { "action": "decline" },
        "roots": [{ "uri": "file:///modern/root", "name": "root" }]
    })
}

fn capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": { "form": {} }, "roots": {} })
}

#[test]
fn modern_client_in_front_of_legacy_everything_is_bridged() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let out = v2(
        &gw.url(),
        "modern",
        capabilities(),
        answers(),
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "everything__echo", "arguments": { "message": "modern hello" } },
            { "op": "callTool", "name": "everything__trigger-sampling-request", "arguments": { "prompt": "hi", "maxTokens": 5 } },
            { "op": "callTool", "name": "everything__trigger-elicitation-request", "arguments": {} },
            { "op": "callTool", "name": "everything__trigger-long-running-operation", "arguments": { "duration": 1, "steps": 3 }, "progress": true },
            { "op": "readResource", "uri": "demo://resource/dynamic/text/5" },
            { "op": "getPrompt", "name": "everything__args-prompt", "arguments": { "city": "Oslo" } },
            { "op": "complete", "ref": { "type": "ref/prompt", "name": "everything__completable-prompt" }, "argument": { "name": "department", "value": "S" } },
            { "op": "listResourceTemplates" },
        ]),
    );
    assert_eq!(out["era"], "modern");
    assert_eq!(out["version"], "2026-07-28");
    // The SDK refuses modern results without resultType or cache hints, so success shows they
    // were there; the raw protocol tests check the fields themselves.
    let list = ok(&out, 0);
    assert!(names(list, "tools").contains(&"everything__trigger-sampling-request".to_owned()));
    assert_eq!(text(ok(&out, 1)), "Echo: modern hello");
    assert!(
        ok(&out, 2).to_string().contains("sampled by the modern client"),
        "sampling bridged through input_required: {}",
        ok(&out, 2)
    );
    assert!(ok(&out, 3).to_string().to_lowercase().contains("decline"), "{}", ok(&out, 3));
    let methods: Vec<&str> =
        out["serverRequests"].as_array().unwrap().iter().filter_map(|r| r["method"].as_str()).collect();
    assert_eq!(methods, ["sampling/createMessage", "elicitation/create"], "the client answered input requests");
    assert_eq!(
        ok(&out, 4)["__progress"].as_array().map(Vec::len),
        Some(3),
        "progress arrives on the call's SSE stream"
    );
    let read = ok(&out, 5);
    assert_eq!(read["contents"][0]["uri"], "demo://resource/dynamic/text/5", "{read}");
    assert!(ok(&out, 6).to_string().contains("Oslo"));
    assert!(ok(&out, 7)["completion"]["values"].as_array().is_some_and(|v| !v.is_empty()));
    ok(&out, 8);
}

#[test]
fn modern_listen_streams_carry_resource_updates_from_a_legacy_server() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let uri = "demo://resource/static/document/features.md";
    let out = v2(
        &gw.url(),
        "modern",
        json!({}),
        json!({}),
        json!([
            { "op": "listen", "filter": { "toolsListChanged": true, "resourceSubscriptions": [uri] } },
            { "op": "callTool", "name": "everything__toggle-subscriber-updates", "arguments": {} },
            { "op": "waitFor", "method": "notifications/resources/updated", "uri": uri, "timeoutMs": 15000 },
            { "op": "closeListen" },
        ]),
    );
    let honoured = &ok(&out, 0)["honoredFilter"];
    assert_eq!(honoured["resourceSubscriptions"], json!([uri]), "{honoured}");
    ok(&out, 2);
}

#[test]
fn dual_era_python_servers_are_spoken_to_in_the_clients_era() {
    let config = format!(
        "[servers.time]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"--local-timezone\", \"UTC\"]\n",
        venv_bin("mcp-server-time")
    );
    let gw = Warden::serve("", &config);
    let out = v2(
        &gw.url(),
        "modern",
        json!({}),
        json!({}),
        json!([{ "op": "callTool", "name": "time__get_current_time", "arguments": { "timezone": "UTC" } }]),
    );
    assert!(text(ok(&out, 0)).contains("UTC"));
    assert!(ok(&out, 0)["structuredContent"].is_object());
    let legacy = node_client(
        json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [{ "op": "callTool", "name": "time__get_current_time", "arguments": { "timezone": "UTC" } }] }),
    );
    assert!(text(ok(&legacy, 0)).contains("UTC"));
    let log = gw.log();
    assert!(log.contains("version=2026-07-28 era=modern"), "a modern lane served the modern client:\n{log}");
    assert!(log.contains("version=2025-11-25 era=legacy"), "a legacy lane served the legacy client:\n{log}");

    let py = python_client(json!({ "era": "modern", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "time__convert_time", "arguments": { "source_timezone": "UTC", "time": "09:30", "target_timezone": "America/New_York" } },
    ]}));
    assert_eq!(py["version"], "2026-07-28", "{py}");
    assert!(names(ok(&py, 0), "tools").contains(&"time__get_current_time".to_owned()));
    assert!(text(ok(&py, 1)).contains("America/New_York"));
}

#[test]
fn input_required_passes_through_between_modern_peers() {
    let gw = Warden::serve("", &demo_server("demo"));
    let out = v2(
        &gw.url(),
        "auto",
        json!({ "elicitation": { "form": {} } }),
        json!({ "elicitation": { "action": "accept", "content": { "confirm": true } } }),
        json!([{ "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "release" } }]),
    );
    assert_eq!(out["era"], "modern", "the v2 client negotiated the modern era with the gateway");
    assert_eq!(text(ok(&out, 0)), "Confirmed: release.");
    assert_eq!(out["serverRequests"][0]["method"], "elicitation/create");

    let py = python_client(json!({ "era": "auto", "transport": { "type": "http", "url": gw.url() },
        "answers": { "elicitation": { "action": "accept", "content": { "confirm": false } } },
        "ops": [{ "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "release" } }] }));
    assert_eq!(py["version"], "2026-07-28");
    assert_eq!(text(ok(&py, 0)), "Not confirmed: release.");
}

#[test]
fn modern_http_server_input_required_headers_and_errors() {
    let port = free_port();
    let _server =
        Process::listening("node", &[&peer_file("node/conformance_server.mjs")], &[("PORT", port.to_string())], port);
    // This server sends 2025-era sampling requests on the session's stream rather than the call's,
    // so only a connection owned by one client can route them: isolation = "session".
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.ref]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://localhost:{port}/mcp\"\nisolation = \"session\"\n"
        ),
    );
    let out = v2(
        &gw.url(),
        "modern",
        capabilities(),
        json!({
            "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "Paris" } },
            "elicitation": { "action": "accept", "content": { "name": "Ada", "color": "blue" } },
            "roots": [{ "uri": "file:///r" }]
        }),
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "ref__test_input_required_result_multi_round", "arguments": {} },
            { "op": "callTool", "name": "ref__test_input_required_result_multiple_inputs", "arguments": {} },
            { "op": "callTool", "name": "ref__test_custom_header", "arguments": { "region": "Zürich", "query": "q" } },
            { "op": "callTool", "name": "ref__test_tool_with_progress", "arguments": {}, "progress": true },
            { "op": "readResource", "uri": "test://nonexistent-resource-for-conformance-testing" },
            { "op": "getPrompt", "name": "ref__test_input_required_result_prompt", "arguments": {} },
        ]),
    );
    assert_eq!(text(ok(&out, 1)), "multi-round complete", "two rounds of input_required passed through");
    assert_eq!(text(ok(&out, 2)), "all inputs received");
    assert_eq!(
        text(ok(&out, 3)),
        "region=Zürich",
        "Mcp-Param headers were re-derived for the upstream name and validated by the server"
    );
    assert_eq!(ok(&out, 4)["__progress"].as_array().map(Vec::len), Some(3));
    assert_eq!(err(&out, 5)["code"], -32602, "resource not found is -32602 in the modern era");
    assert!(ok(&out, 6).to_string().contains("Context: "), "{}", ok(&out, 6));

    // A legacy client in front of the same (dual-era) server is served on a legacy session.
    let legacy = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() },
        "capabilities": { "sampling": {} },
        "answers": { "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "legacy sampled" } } },
        "ops": [
            { "op": "callTool", "name": "ref__test_sampling", "arguments": { "prompt": "p" } },
            { "op": "setLevel", "level": "info" },
            { "op": "callTool", "name": "ref__test_tool_with_logging", "arguments": {} },
            { "op": "readResource", "uri": "test://nonexistent-resource-for-conformance-testing" },
        ] }));
    assert_eq!(text(ok(&legacy, 0)), "LLM response: legacy sampled");
    ok(&legacy, 2);
    let logs =
        legacy["notifications"].as_array().unwrap().iter().filter(|n| n["method"] == "notifications/message").count();
    assert_eq!(logs, 3, "request-scoped logs reach the calling client: {}", legacy["notifications"]);
    let e = err(&legacy, 3);
    assert!(e["code"] == -32602 || e["code"] == -32002, "{e}");
}

#[test]
fn modern_client_missing_capability_and_parked_call_state() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    // Raw modern request: a legacy server's sampling request becomes input_required with Warden's state.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "everything__trigger-sampling-request", "arguments": { "prompt": "p", "maxTokens": 5 },
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { "sampling": {} } } } });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "everything__trigger-sampling-request"),
    ];
    let r = post_json(gw.port, &headers, &body.to_string()).json();
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    let (key, request) =
        result["inputRequests"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    let state = result["requestState"].as_str().unwrap().to_owned();

    let retry = |state: &str, id: u64| {
        let mut b = body.clone();
        b["id"] = json!(id);
        b["params"]["requestState"] = json!(state);
        b["params"]["inputResponses"] = json!({ key.clone(): { "role": "assistant", "model": "m", "content": { "type": "text", "text": "answered" } } });
        post_json(gw.port, &headers, &b.to_string()).json()
    };
    let forged = retry(&format!("{state}00"), 2);
    assert_eq!(forged["error"]["code"], -32602, "a forged requestState is refused: {forged}");
    let done = retry(&state, 3);
    assert!(done["result"].to_string().contains("answered"), "{done}");
    assert_eq!(done["result"]["resultType"], "complete");
    let replay = retry(&state, 4);
    assert_eq!(replay["error"]["code"], -32602, "a requestState works once: {replay}");

    // A client that did not declare sampling: the server's request is refused, not relayed.
    let mut no_caps = body.clone();
    no_caps["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
    let r = post_json(gw.port, &headers, &no_caps.to_string()).json();
    assert_ne!(r["result"]["resultType"], "input_required", "{r}");
    assert!(gw.wait_log("", Duration::from_millis(1)));
}

#[test]
fn modern_clients_reach_everything_over_http_filesystem_and_git() {
    let port = free_port();
    let _everything = Process::listening(
        "node",
        &[&node_peer("server-everything/dist/index.js"), "streamableHttp"],
        &[("PORT", port.to_string())],
        port,
    );
    let data = TempDir::new("fs");
    std::fs::write(data.path("notes.txt"), "modern read").unwrap();
    let root = data.0.canonicalize().unwrap().display().to_string();
    let repo = git_repo("b.txt");
    let config = format!(
        "[servers.remote]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://127.0.0.1:{port}/mcp\"\n\n[servers.files]\ntrusted_content = true\ntrusted_resources = true\ncommand = \"node\"\nargs = [{:?}, {root:?}]\nenv_inherit = [\"PATH\", \"HOME\"]\n\n[servers.git]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"--repository\", {:?}]\n",
        node_peer("server-filesystem/dist/index.js"),
        venv_bin("mcp-server-git"),
        repo.0.display().to_string()
    );
    let gw = Warden::serve("", &config);
    let out = v2(
        &gw.url(),
        "modern",
        capabilities(),
        answers(),
        json!([
            { "op": "callTool", "name": "remote__echo", "arguments": { "message": "modern over http" } },
            { "op": "callTool", "name": "remote__trigger-sampling-request", "arguments": { "prompt": "p", "maxTokens": 5 } },
            { "op": "callTool", "name": "remote__trigger-long-running-operation", "arguments": { "duration": 1, "steps": 2 }, "progress": true },
            { "op": "getPrompt", "name": "remote__simple-prompt" },
            { "op": "callTool", "name": "files__read_text_file", "arguments": { "path": format!("{root}/notes.txt") } },
            { "op": "callTool", "name": "git__git_status", "arguments": { "repo_path": repo.0.display().to_string() } },
        ]),
    );
    assert_eq!(text(ok(&out, 0)), "Echo: modern over http");
    assert!(
        ok(&out, 1).to_string().contains("sampled by the modern client"),
        "a legacy HTTP server's sampling, bridged: {}",
        ok(&out, 1)
    );
    assert_eq!(ok(&out, 2)["__progress"].as_array().map(Vec::len), Some(2));
    ok(&out, 3);
    assert!(text(ok(&out, 4)).contains("modern read"));
    assert!(text(ok(&out, 5)).contains("b.txt"));
}

#[test]
fn a_modern_client_that_gives_up_cancels_the_call_upstream() {
    // Closing a 2026-07-28 response stream is the cancellation: Warden drops the call and tells
    // the (legacy, stdio) server with notifications/cancelled.
    let gw = Warden::serve("", &hostile("bad", ""));
    let out = v2(
        &gw.url(),
        "modern",
        json!({}),
        json!({}),
        json!([
            { "op": "callTool", "name": "bad__hang", "arguments": {}, "abortAfterMs": 300 },
            { "op": "sleep", "ms": 300 },
            { "op": "callTool", "name": "bad__seen", "arguments": {} },
        ]),
    );
    err(&out, 0);
    assert_eq!(seen_count(&text(ok(&out, 2)), "notifications/cancelled"), 1, "the server was told");
}
