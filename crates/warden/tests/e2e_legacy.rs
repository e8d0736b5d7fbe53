//! Legacy-era clients (the TypeScript SDK 1.x, the Python SDK in legacy mode) through the HTTP
//! front to real servers: server-everything (stdio and Streamable HTTP), server-filesystem,
//! mcp-server-time and mcp-server-git, and the bundled demo server.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::*;

fn v1(url: &str, capabilities: Value, answers: Value, ops: Value) -> Value {
    let out = node_client(
        json!({ "sdk": "v1", "transport": { "type": "http", "url": url }, "capabilities": capabilities, "answers": answers, "ops": ops }),
    );
    assert_eq!(out["connected"], true, "{out}");
    out
}

fn sampling_answer() -> Value {
    json!({ "role": "assistant", "model": "e2e-model", "content": { "type": "text", "text": "sampled by the test client" } })
}

fn all_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": { "form": {} }, "roots": { "listChanged": true } })
}

fn all_answers() -> Value {
    json!({
        "sampling": sampling_answer(),
        "elicitation": { "action": "decline" },
        "roots": [{ "uri": "file:///e2e/root", "name": "e2e-root" }]
    })
}

#[test]
fn everything_over_stdio_tools_prompts_resources_and_completions() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let out = v1(
        &gw.url(),
        all_capabilities(),
        all_answers(),
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "everything__echo", "arguments": { "message": "hello through warden" } },
            { "op": "callTool", "name": "everything__get-sum", "arguments": { "a": 2, "b": 40 } },
            { "op": "callTool", "name": "everything__get-structured-content", "arguments": { "location": "Chicago" } },
            { "op": "listPrompts" },
            { "op": "getPrompt", "name": "everything__args-prompt", "arguments": { "city": "Lyon" } },
            { "op": "complete", "ref": { "type": "ref/prompt", "name": "everything__completable-prompt" }, "argument": { "name": "department", "value": "E" } },
            { "op": "listResources" },
            { "op": "readResource", "uri": "demo://resource/static/document/architecture.md" },
            { "op": "listResourceTemplates" },
            { "op": "readResource", "uri": "demo://resource/dynamic/text/7" },
            { "op": "ping" },
            { "op": "callTool", "name": "echo", "arguments": { "message": "unprefixed names are not exposed" } },
        ]),
    );
    assert_eq!(out["server"]["name"], "warden");
    let tools = names(ok(&out, 0), "tools");
    assert!(tools.contains(&"everything__echo".to_owned()), "{tools:?}");
    assert!(tools.iter().all(|t| t.starts_with("everything__")), "every tool is namespaced: {tools:?}");
    assert_eq!(text(ok(&out, 1)), "Echo: hello through warden");
    assert!(text(ok(&out, 2)).contains("42"), "{}", ok(&out, 2));
    assert!(ok(&out, 3)["structuredContent"].is_object(), "structured content passes through: {}", ok(&out, 3));
    assert!(names(ok(&out, 4), "prompts").contains(&"everything__args-prompt".to_owned()));
    assert!(ok(&out, 5).to_string().contains("Lyon"), "{}", ok(&out, 5));
    assert!(ok(&out, 6)["completion"]["values"].as_array().is_some_and(|v| !v.is_empty()), "{}", ok(&out, 6));
    let resources = ok(&out, 7)["resources"].as_array().cloned().unwrap_or_default();
    assert!(
        resources.iter().any(|r| r["uri"] == "demo://resource/static/document/architecture.md"),
        "URIs are kept as they are"
    );
    assert!(resources.iter().all(|r| r["name"].as_str().is_some_and(|n| n.starts_with("everything__"))));
    assert!(ok(&out, 8)["contents"][0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(ok(&out, 9)["resourceTemplates"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(ok(&out, 10)["contents"][0]["uri"].as_str().is_some_and(|u| u.ends_with("/7")), "{}", ok(&out, 10));
    assert_eq!(ok(&out, 11), &json!({}));
    assert_eq!(err(&out, 12)["code"], -32602, "a tool is only reachable by its exposed name");
}

#[test]
fn everything_over_stdio_progress_sampling_and_elicitation_in_a_call() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let out = v1(
        &gw.url(),
        all_capabilities(),
        all_answers(),
        json!([
            { "op": "callTool", "name": "everything__trigger-long-running-operation", "arguments": { "duration": 1, "steps": 3 }, "progress": true },
            { "op": "callTool", "name": "everything__trigger-sampling-request", "arguments": { "prompt": "say hi", "maxTokens": 20 } },
            { "op": "callTool", "name": "everything__trigger-elicitation-request", "arguments": {} },
        ]),
    );
    let progress = ok(&out, 0)["__progress"].as_array().cloned().unwrap_or_default();
    assert_eq!(progress.len(), 3, "three progress notifications reach the client: {}", ok(&out, 0));
    assert!(
        ok(&out, 1).to_string().contains("sampled by the test client"),
        "the sampling answer reached the server: {}",
        ok(&out, 1)
    );
    let methods: Vec<&str> =
        out["serverRequests"].as_array().unwrap().iter().filter_map(|r| r["method"].as_str()).collect();
    assert!(methods.contains(&"sampling/createMessage"), "{methods:?}");
    assert!(methods.contains(&"elicitation/create"), "{methods:?}");
    assert!(
        ok(&out, 2).to_string().to_lowercase().contains("decline"),
        "the elicitation answer reached the server: {}",
        ok(&out, 2)
    );
}

#[test]
fn session_isolation_passes_roots_logging_and_resource_updates_to_their_client() {
    let gw = Warden::serve("", &everything_stdio("everything", "isolation = \"session\""));
    let out = v1(
        &gw.url(),
        all_capabilities(),
        all_answers(),
        json!([
            { "op": "setLevel", "level": "debug" },
            { "op": "sleep", "ms": 800 },
            { "op": "callTool", "name": "everything__get-roots-list", "arguments": {} },
            { "op": "subscribe", "uri": "demo://resource/static/document/features.md" },
            { "op": "callTool", "name": "everything__toggle-subscriber-updates", "arguments": {} },
            { "op": "waitFor", "method": "notifications/resources/updated", "timeoutMs": 15000 },
            { "op": "unsubscribe", "uri": "demo://resource/static/document/features.md" },
            { "op": "callTool", "name": "everything__toggle-simulated-logging", "arguments": {} },
            { "op": "waitFor", "method": "notifications/message", "timeoutMs": 15000 },
        ]),
    );
    assert_eq!(ok(&out, 0), &json!({}));
    assert!(
        ok(&out, 2).to_string().contains("file:///e2e/root"),
        "the client's roots reached the server: {}",
        ok(&out, 2)
    );
    assert_eq!(ok(&out, 3), &json!({}));
    ok(&out, 5);
    ok(&out, 8);
    let updated: Vec<&Value> = out["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["method"] == "notifications/resources/updated")
        .collect();
    assert!(updated.iter().all(|n| n["params"]["uri"] == "demo://resource/static/document/features.md"), "{updated:?}");
}

#[test]
fn shared_connections_keep_unsolicited_messages_from_other_clients() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    // Simulated logging on a shared connection belongs to no single client: none may receive it.
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([
            { "op": "setLevel", "level": "debug" },
            { "op": "callTool", "name": "everything__toggle-simulated-logging", "arguments": {} },
            { "op": "sleep", "ms": 6000 },
        ]),
    );
    ok(&out, 1);
    let logs =
        out["notifications"].as_array().unwrap().iter().filter(|n| n["method"] == "notifications/message").count();
    assert_eq!(logs, 0, "no unsolicited log message crossed to a client: {}", out["notifications"]);
    assert!(gw.log().contains("server log"), "the messages went to the gateway's log instead");
}

#[test]
fn everything_over_streamable_http_upstream() {
    let port = free_port();
    let _everything = Process::listening(
        "node",
        &[&node_peer("server-everything/dist/index.js"), "streamableHttp"],
        &[("PORT", port.to_string())],
        port,
    );
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.remote]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://127.0.0.1:{port}/mcp\"\n"
        ),
    );
    let out = v1(
        &gw.url(),
        all_capabilities(),
        all_answers(),
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "remote__echo", "arguments": { "message": "over http" } },
            { "op": "callTool", "name": "remote__trigger-long-running-operation", "arguments": { "duration": 1, "steps": 2 }, "progress": true },
            { "op": "callTool", "name": "remote__trigger-sampling-request", "arguments": { "prompt": "x", "maxTokens": 5 } },
            { "op": "readResource", "uri": "demo://resource/dynamic/text/3" },
            { "op": "getPrompt", "name": "remote__simple-prompt" },
        ]),
    );
    assert!(names(ok(&out, 0), "tools").contains(&"remote__echo".to_owned()));
    assert_eq!(text(ok(&out, 1)), "Echo: over http");
    assert_eq!(ok(&out, 2)["__progress"].as_array().map(Vec::len), Some(2), "{}", ok(&out, 2));
    assert!(ok(&out, 3).to_string().contains("sampled by the test client"), "{}", ok(&out, 3));
    ok(&out, 4);
    ok(&out, 5);
}

#[test]
fn filesystem_server_reads_and_writes_through_the_gateway() {
    let data = TempDir::new("fs");
    std::fs::write(data.path("hello.txt"), "hello from disk").unwrap();
    let root = data.0.canonicalize().unwrap().display().to_string();
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.files]\ntrusted_content = true\ntrusted_resources = true\ncommand = \"node\"\nargs = [{:?}, {root:?}]\nenv_inherit = [\"PATH\", \"HOME\"]\n",
            node_peer("server-filesystem/dist/index.js")
        ),
    );
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([
            { "op": "callTool", "name": "files__read_text_file", "arguments": { "path": format!("{root}/hello.txt") } },
            { "op": "callTool", "name": "files__write_file", "arguments": { "path": format!("{root}/new.txt"), "content": "written through warden" } },
            { "op": "callTool", "name": "files__list_directory", "arguments": { "path": root } },
            { "op": "callTool", "name": "files__read_text_file", "arguments": { "path": "/etc/passwd" } },
        ]),
    );
    assert!(text(ok(&out, 0)).contains("hello from disk"), "{}", ok(&out, 0));
    ok(&out, 1);
    assert_eq!(std::fs::read_to_string(data.path("new.txt")).unwrap(), "written through warden");
    assert!(text(ok(&out, 2)).contains("new.txt"));
    let outside = ok(&out, 3);
    assert_eq!(outside["isError"], true, "the server's own confinement still applies: {outside}");
}

#[test]
fn python_servers_time_and_git_serve_legacy_clients() {
    let repo = git_repo("a.txt");
    let config = format!(
        "[servers.time]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"--local-timezone\", \"UTC\"]\n\n[servers.git]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"--repository\", {:?}]\n",
        venv_bin("mcp-server-time"),
        venv_bin("mcp-server-git"),
        repo.0.display().to_string()
    );
    let gw = Warden::serve("", &config);
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "time__get_current_time", "arguments": { "timezone": "Europe/Paris" } },
            { "op": "callTool", "name": "git__git_status", "arguments": { "repo_path": repo.0.display().to_string() } },
        ]),
    );
    let tools = names(ok(&out, 0), "tools");
    assert!(
        tools.contains(&"time__convert_time".to_owned()) && tools.contains(&"git__git_log".to_owned()),
        "lists are merged: {tools:?}"
    );
    assert!(text(ok(&out, 1)).contains("Europe/Paris"), "{}", ok(&out, 1));
    assert!(text(ok(&out, 2)).contains("a.txt"), "{}", ok(&out, 2));

    // The Python SDK as a legacy client, against the same gateway.
    let py = python_client(json!({ "era": "legacy", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "time__convert_time", "arguments": { "source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo" } },
    ]}));
    assert_eq!(py["version"], "2025-11-25", "{py}");
    assert!(text(ok(&py, 0)).contains("Asia/Tokyo"), "{py}");
}

#[test]
fn legacy_client_in_front_of_a_modern_only_server_is_bridged() {
    // protocol = "modern" makes the gateway speak only 2026-07-28 to the demo server, so its
    // input_required answer must be turned into an elicitation/create request to this client.
    let gw = Warden::serve("", &format!("{}protocol = \"modern\"\n", demo_server("demo")));
    let out = v1(
        &gw.url(),
        json!({ "elicitation": { "form": {} } }),
        json!({ "elicitation": { "action": "accept", "content": { "confirm": true } } }),
        json!([
            { "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "ship it" } },
            { "op": "callTool", "name": "demo__echo", "arguments": { "text": "plain call" } },
        ]),
    );
    assert_eq!(text(ok(&out, 0)), "Confirmed: ship it.");
    assert_eq!(out["serverRequests"][0]["method"], "elicitation/create");
    assert_eq!(text(ok(&out, 1)), "plain call");
    assert!(gw.wait_log("era=modern", Duration::from_secs(1)), "the upstream lane is modern");

    // A legacy client without the capability gets a clear error instead.
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([{ "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "x" } }]),
    );
    let e = err(&out, 0);
    assert_eq!(e["code"], -32021, "{e}");
}

#[test]
fn list_changed_from_the_server_reaches_legacy_sessions() {
    let gw = Warden::serve("", &demo_server("demo"));
    // The GET stream is opened by the SDK after initialize; writing a note changes the resource list.
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([
            { "op": "sleep", "ms": 300 },
            { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "plan", "body": "ship" } },
            { "op": "waitFor", "method": "notifications/resources/list_changed", "timeoutMs": 10000 },
            { "op": "listResources" },
            { "op": "readResource", "uri": "demo://notes/plan" },
        ]),
    );
    ok(&out, 2);
    assert!(ok(&out, 3).to_string().contains("demo://notes/plan"));
    assert_eq!(ok(&out, 4)["contents"][0]["text"], "ship");
}

#[test]
fn a_client_taking_its_time_to_answer_is_not_cut_off_by_the_server_timeout() {
    // The server is silent while the client answers its elicitation; that is not a hang.
    let gw = Warden::serve("", &everything_stdio("everything", "timeout = \"1s\""));
    let out = v1(
        &gw.url(),
        json!({ "elicitation": { "form": {} } }),
        json!({ "elicitation": { "action": "decline" }, "delayMs": 2500 }),
        json!([{ "op": "callTool", "name": "everything__trigger-elicitation-request", "arguments": {} }]),
    );
    assert!(ok(&out, 0).to_string().to_lowercase().contains("decline"), "{}", ok(&out, 0));
}

#[test]
fn resources_no_server_listed_are_not_found() {
    let gw = Warden::serve("", &everything_stdio("everything", ""));
    let out = v1(
        &gw.url(),
        json!({}),
        json!({}),
        json!([
            { "op": "readResource", "uri": "demo://resource/unlisted/thing" },
            { "op": "readResource", "uri": "file:///etc/passwd" },
        ]),
    );
    for i in 0..2 {
        let e = err(&out, i);
        assert_eq!(e["code"], -32002, "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("Resource not found"),
            "refused by the gateway's resolver: {e}"
        );
    }
}
