//! `warden run`: the gateway launched by a desktop-style client in place of a server, speaking MCP
//! on stdin/stdout, for legacy and modern clients, and robust to garbage on its input.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use support::*;

fn config(dir: &TempDir, servers: &str) -> String {
    let path = dir.path("warden.toml");
    std::fs::write(dir.path("permit-all.cedar"), PERMIT_ALL).unwrap();
    let text = grant_test_servers(&format!("{servers}\n[policy]\nfiles = [\"permit-all.cedar\"]\n"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stdio_transport(config: &str) -> Value {
    json!({ "type": "stdio", "command": warden_bin().display().to_string(), "args": ["run", "--config", config], "env": { "WARDEN_LOG": "warn" } })
}

#[test]
fn legacy_stdio_client_with_server_requests_and_progress() {
    let dir = TempDir::new("stdio");
    let cfg = config(&dir, &format!("{}\n{}", demo_server("demo"), everything_stdio("everything", "")));
    let out = node_client(json!({
        "sdk": "v1",
        "transport": stdio_transport(&cfg),
        "capabilities": { "sampling": {}, "elicitation": { "form": {} } },
        "answers": {
            "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "stdio sampled" } },
            "elicitation": { "action": "accept", "content": { "confirm": true } }
        },
        "ops": [
            { "op": "listTools" },
            { "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "stdio" } },
            { "op": "callTool", "name": "everything__trigger-sampling-request", "arguments": { "prompt": "p", "maxTokens": 5 } },
            { "op": "callTool", "name": "demo__slow_count", "arguments": { "steps": 2, "delay_ms": 20 }, "progress": true },
            { "op": "ping" },
        ]
    }));
    assert_eq!(out["connected"], true, "{out}");
    assert_eq!(out["server"]["name"], "warden");
    let tools = names(ok(&out, 0), "tools");
    assert!(tools.contains(&"demo__echo".to_owned()) && tools.contains(&"everything__echo".to_owned()));
    assert_eq!(text(ok(&out, 1)), "Confirmed: stdio.");
    assert!(ok(&out, 2).to_string().contains("stdio sampled"));
    // The gateway writes both progress messages before the result (shown byte for byte in
    // `garbage_on_stdin_gets_errors_and_the_client_is_still_served`); this SDK drops a progress
    // message it reads in the same chunk as the response (typescript-sdk issue 2580).
    let progress = ok(&out, 3)["__progress"].as_array().map_or(0, Vec::len);
    assert!((1..=2).contains(&progress), "{out}");
    assert_eq!(ok(&out, 4), &json!({}));
}

#[test]
fn modern_stdio_clients_typescript_and_python() {
    let dir = TempDir::new("stdio");
    let cfg = config(&dir, &format!("{}\n{}", demo_server("demo"), everything_stdio("everything", "")));
    let out = node_client(json!({
        "sdk": "v2", "era": "modern",
        "transport": stdio_transport(&cfg),
        "capabilities": { "sampling": {}, "elicitation": { "form": {} } },
        "answers": {
            "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "modern stdio sampled" } },
            "elicitation": { "action": "accept", "content": { "confirm": true } }
        },
        "ops": [
            { "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "go" } },
            { "op": "callTool", "name": "everything__trigger-sampling-request", "arguments": { "prompt": "p", "maxTokens": 5 } },
            { "op": "listen", "filter": { "resourcesListChanged": true } },
            { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
            { "op": "waitFor", "method": "notifications/resources/list_changed", "timeoutMs": 10000 },
        ]
    }));
    assert_eq!(out["era"], "modern", "{out}");
    assert_eq!(text(ok(&out, 0)), "Confirmed: go.");
    assert!(ok(&out, 1).to_string().contains("modern stdio sampled"), "a legacy server's request bridged over stdio");
    ok(&out, 4);

    let py = python_client(
        json!({ "era": "auto", "transport": { "type": "stdio", "command": warden_bin().display().to_string(), "args": ["run", "--config", cfg] },
        "answers": { "elicitation": { "action": "accept", "content": { "confirm": true } } },
        "ops": [{ "op": "callTool", "name": "demo__confirm_action", "arguments": { "action": "py" } }] }),
    );
    assert_eq!(py["version"], "2026-07-28", "{py}");
    assert_eq!(text(ok(&py, 0)), "Confirmed: py.");
}

#[test]
fn garbage_on_stdin_gets_errors_and_the_client_is_still_served() {
    let dir = TempDir::new("stdio");
    let cfg = config(&dir, &demo_server("demo"));
    let mut child = Command::new(warden_bin())
        .args(["run", "--config", &cfg])
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = move |line: &str| {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    let mut next = move || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    send("this is not json");
    assert_eq!(next()["error"]["code"], -32700);
    send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(next()["error"]["code"], -32600, "requests before initialize (without an envelope) are refused");
    send(&format!(r#"{{"jsonrpc":"2.0","id":2,"method":"x","params":{{"a":"{}"}}}}"#, "x".repeat(5 * 1024 * 1024)));
    assert_eq!(next()["error"]["code"], -32012, "an oversized line is skipped with an error");
    send(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"x","params":{{"a":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    ));
    let e = next();
    assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(3), json!(-32600)));
    send(
        r#"{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
    );
    let init = next();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "a supported legacy version is kept");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send(r#"{"jsonrpc":"2.0","id":5,"result":{"answer":"to nothing"}}"#);
    send(
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"still here"}}}"#,
    );
    let r = next();
    assert_eq!(r["id"], 6, "{r}");
    assert_eq!(r["result"]["content"][0]["text"], "still here");
    // What a server says while serving a call goes out before the call's answer, in order.
    send(
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__slow_count","arguments":{"steps":3,"delay_ms":5},"_meta":{"progressToken":"p7"}}}"#,
    );
    for step in 1..=3 {
        let n = next();
        assert_eq!(
            (n["method"].as_str(), n["params"]["progress"].as_u64()),
            (Some("notifications/progress"), Some(step)),
            "{n}"
        );
        assert_eq!(n["params"]["progressToken"], "p7", "the client's own token comes back");
    }
    let r = next();
    assert_eq!((r["id"].clone(), r["result"]["content"][0]["text"].clone()), (json!(7), json!("Counted to 3.")), "{r}");
    drop(send);
    let status = child.wait().unwrap();
    assert!(status.success(), "EOF on stdin ends warden run cleanly: {status}");
}
