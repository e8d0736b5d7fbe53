//! The HTTP front at the wire: what SDK clients would never send. Origin and Host checks, modern
//! header validation with the specification's status and error codes, legacy sessions, and
//! malformed, oversized, nested and duplicate input.

mod support;

use serde_json::{Value, json};
use support::*;

fn modern_headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    h
}

fn modern_body(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = envelope();
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn gateway() -> Warden {
    Warden::serve("max_frame_bytes = 65536\nmax_json_depth = 32", &demo_server("demo"))
}

#[test]
fn foreign_origins_and_hosts_are_refused() {
    let gw = gateway();
    let body = modern_body(1, "server/discover", json!({}));
    let r = post_json(
        gw.port,
        &[
            ("origin", "http://evil.example.com"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
        ],
        &body,
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = post_json(
        gw.port,
        &[("host", "evil.example.com"), ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "server/discover")],
        &body,
    );
    assert_eq!(r.status, 403, "DNS rebinding: a foreign Host is refused");
    let origin = format!("http://localhost:{}", gw.port);
    let r = post_json(
        gw.port,
        &[("origin", &origin), ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "server/discover")],
        &body,
    );
    assert_eq!(r.status, 200, "the gateway's own origin is allowed: {r:?}");
}

#[test]
fn modern_requests_are_validated_header_against_body() {
    let gw = gateway();
    let p = gw.port;
    // Discover: the gateway's own answer, with the modern result fields.
    let r = post_json(p, &modern_headers("server/discover", None), &modern_body(1, "server/discover", json!({})));
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(d["result"]["supportedVersions"][0], "2026-07-28");
    assert_eq!(d["result"]["resultType"], "complete");
    assert!(d["result"]["ttlMs"].is_u64() && d["result"]["cacheScope"] == "private");
    assert_eq!(d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "warden");

    let expect = |r: RawResponse, status: u16, code: i64| {
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.json()["error"]["code"], code, "{r:?}");
        r.json()
    };
    // Header and body disagree on the method, the name, the version.
    expect(post_json(p, &modern_headers("tools/list", None), &modern_body(2, "prompts/list", json!({}))), 400, -32020);
    expect(
        post_json(
            p,
            &modern_headers("tools/call", Some("demo__add")),
            &modern_body(3, "tools/call", json!({ "name": "demo__echo", "arguments": { "text": "x" } })),
        ),
        400,
        -32020,
    );
    expect(
        post_json(
            p,
            &modern_headers("tools/call", None),
            &modern_body(4, "tools/call", json!({ "name": "demo__echo", "arguments": { "text": "x" } })),
        ),
        400,
        -32020,
    );
    let mut wrong_version = serde_json::from_str::<Value>(&modern_body(5, "tools/list", json!({}))).unwrap();
    wrong_version["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let e = expect(post_json(p, &modern_headers("tools/list", None), &wrong_version.to_string()), 400, -32020);
    assert_eq!(e["id"], 5, "errors echo the request id");
    expect(post_json(p, &[("mcp-method", "tools/list")], &modern_body(6, "tools/list", json!({}))), 400, -32020);
    // Envelope problems and versions.
    expect(
        post_json(
            p,
            &modern_headers("server/discover", None),
            r#"{"jsonrpc":"2.0","id":7,"method":"server/discover","params":{}}"#,
        ),
        400,
        -32602,
    );
    let unsupported = json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": { "_meta": {
        "io.modelcontextprotocol/protocolVersion": "v999.0.0", "io.modelcontextprotocol/clientCapabilities": {} } } });
    let e = expect(
        post_json(p, &[("mcp-protocol-version", "v999.0.0"), ("mcp-method", "tools/list")], &unsupported.to_string()),
        400,
        -32022,
    );
    assert_eq!(e["error"]["data"]["requested"], "v999.0.0");
    assert!(e["error"]["data"]["supported"].as_array().unwrap().contains(&json!("2026-07-28")));
    // Methods that do not exist in the modern era.
    for m in ["initialize", "ping", "logging/setLevel", "resources/subscribe", "unknown/method"] {
        expect(post_json(p, &modern_headers(m, None), &modern_body(9, m, json!({}))), 404, -32601);
    }
    // A name sent base64-encoded in the header is decoded before comparing.
    let r = post_json(
        p,
        &modern_headers("tools/call", Some("=?base64?ZGVtb19fZWNobw==?=")),
        &modern_body(10, "tools/call", json!({ "name": "demo__echo", "arguments": { "text": "b64" } })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"]["content"][0]["text"], "b64");
    assert_eq!(r.json()["result"]["resultType"], "complete");
    // An unknown tool is an ordinary error (200), not a transport one.
    expect(
        post_json(
            p,
            &modern_headers("tools/call", Some("demo__nope")),
            &modern_body(11, "tools/call", json!({ "name": "demo__nope" })),
        ),
        200,
        -32602,
    );
    // A header sent twice could be read either way by whatever sits in front.
    let twice = http(
        "POST",
        p,
        &[
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
            ("mcp-method", "tools/call"),
        ],
        modern_body(12, "tools/list", json!({})).as_bytes(),
    );
    expect(twice, 400, -32020);
    // GET and DELETE have no meaning without a session.
    assert_eq!(http("GET", p, &[("accept", "text/event-stream")], b"").status, 405);
    assert_eq!(http("DELETE", p, &[], b"").status, 405);
}

#[test]
fn legacy_sessions_are_required_long_random_bound_and_ended() {
    let gw = gateway();
    let p = gw.port;
    let sid = raw_initialize(p);
    assert_eq!(sid.len(), 64, "256-bit session ids");
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(sid, raw_initialize(p), "every session gets its own id");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let r = post_json(p, &[], list);
    assert_eq!(r.status, 400, "a request without a session is refused: {r:?}");
    let r =
        post_json(p, &[("mcp-session-id", "0000000000000000000000000000000000000000000000000000000000000000")], list);
    assert_eq!(r.status, 404, "an unknown session is not found");
    let ok_headers = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let r = post_json(p, &ok_headers, list);
    assert_eq!(r.status, 200);
    assert!(r.json()["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()));
    let r = post_json(p, &[("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-06-18")], list);
    assert_eq!(r.status, 400, "a version header that contradicts the session is refused");
    // Notifications and answers to requests never sent are accepted and dropped.
    assert_eq!(post_json(p, &ok_headers, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).status, 202);
    assert_eq!(post_json(p, &ok_headers, r#"{"jsonrpc":"2.0","id":"warden-99","result":{}}"#).status, 202);
    // A GET stream needs text/event-stream.
    assert_eq!(http("GET", p, &[("mcp-session-id", sid.as_str()), ("accept", "application/json")], b"").status, 406);
    // DELETE ends the session.
    assert_eq!(http("DELETE", p, &[("mcp-session-id", sid.as_str())], b"").status, 200);
    assert_eq!(post_json(p, &ok_headers, list).status, 404, "an ended session is gone");
    // Content types.
    let r = http("POST", p, &[("content-type", "text/plain"), ("mcp-session-id", sid.as_str())], list.as_bytes());
    assert_eq!(r.status, 415);
}

#[test]
fn malformed_oversized_nested_and_duplicate_input_is_refused_cleanly() {
    let gw = gateway();
    let p = gw.port;
    let sid = raw_initialize(p);
    let s = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let code = |r: &RawResponse| r.json()["error"]["code"].as_i64().unwrap_or(0);

    let r = post_json(p, &s, "{this is not json");
    assert_eq!((r.status, code(&r)), (400, -32700), "{r:?}");
    let r = post_json(p, &s, r#"{"jsonrpc":"1.0","id":5,"method":"tools/list"}"#);
    assert_eq!((r.status, code(&r)), (400, -32600));
    assert_eq!(r.json()["id"], 5, "the error is correlated when the id is readable");
    let r = post_json(p, &s, r#"{"jsonrpc":"2.0","id":6,"id":7,"method":"tools/list"}"#);
    assert_eq!(code(&r), -32600, "a duplicate id member is refused: {r:?}");
    let r = post_json(
        p,
        &s,
        r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"demo__echo","name":"demo__delete_note","arguments":{}}}"#,
    );
    assert_eq!(code(&r), -32600, "duplicate keys that could be read two ways are refused: {r:?}");
    let r = post_json(p, &s, r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#);
    assert_eq!(code(&r), -32600);
    let r = post_json(p, &s, r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#);
    assert_eq!(code(&r), -32600, "batches are refused with a clear message");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("batch"));
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"text":"{}"}}}}}}"#,
        "a".repeat(70_000)
    );
    let r = post_json(p, &s, &big);
    assert_eq!((r.status, code(&r)), (413, -32012), "frames over the configured limit are refused");
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"text":"x","n":{}{}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let r = post_json(p, &s, &deep);
    assert_eq!((r.status, code(&r)), (400, -32600), "nesting bombs are refused: {r:?}");
    let r = post_json(p, &s, r#"{"jsonrpc":"2.0","id":11,"method":"no/such/method"}"#);
    assert_eq!(code(&r), -32601);
    let r = post_json(
        p,
        &s,
        r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"demo__echo","arguments":"not an object"}}"#,
    );
    assert_eq!(code(&r), -32602);

    // The same id twice while the first is still running.
    let slow = r#"{"jsonrpc":"2.0","id":"same","method":"tools/call","params":{"name":"demo__slow_count","arguments":{"steps":3,"delay_ms":300}}}"#;
    let port = p;
    let sid2 = sid.clone();
    let first = std::thread::spawn(move || {
        post_json(port, &[("mcp-session-id", sid2.as_str()), ("mcp-protocol-version", "2025-11-25")], slow)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = post_json(p, &s, slow);
    assert_eq!(code(&second), -32600, "a duplicate id in flight is refused: {second:?}");
    assert!(first.join().unwrap().json()["result"].is_object(), "the first call is unaffected");

    // After all that, the gateway still serves.
    let r = post_json(
        p,
        &s,
        r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"alive"}}}"#,
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "alive");
}

#[test]
fn lists_are_paginated_with_the_gateways_own_cursors_and_upstream_cursors_followed() {
    // Server "two" lists its tools three per page: the gateway follows its cursors.
    let paged = format!(
        "[servers.two]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [\"demo-server\", \"--page-size\", \"3\"]\n",
        warden_bin().display().to_string()
    );
    let gw = Warden::serve("list_page_size = 3\nseparator = \".\"", &format!("{}\n{paged}", demo_server("one")));
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "listAllTools" },
        { "op": "listTools", "cursor": "forged" },
        { "op": "callTool", "name": "two.confirm_action", "arguments": { "action": "x" } },
    ]}));
    let all = ok(&out, 0);
    let names = names(all, "tools");
    // Ten tools each, less the poisoned daily_tip the integrity guard holds.
    assert_eq!(names.len(), 18, "two servers' nine shown tools each, all pages of both: {names:?}");
    assert!(all["pages"].as_u64().unwrap() >= 6, "three per page: {all}");
    assert!(
        names.contains(&"one.echo".to_owned()) && names.contains(&"two.echo".to_owned()),
        "the configured separator is used"
    );
    assert_eq!(err(&out, 1)["code"], -32602, "a cursor the gateway did not issue is refused");
    assert!(
        text(ok(&out, 2)).contains("could not ask the user"),
        "a tool from the server's last page is reached: {}",
        ok(&out, 2)
    );
}
