//! Several gateways, one set of limits: two `warden serve` processes sharing a Redis of the test's
//! own (a `redis-server` on a free port), reached alternately by the official TypeScript SDK
//! client. Rate limits hold across both; with Redis gone, calls are refused with a clear error
//! (or limited locally, where configured) and recover when it returns.

mod support;

use serde_json::{Value, json};
use support::*;

fn redis(port: u16) -> Process {
    Process::listening(
        "redis-server",
        &["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        &[],
        port,
    )
}

fn gateway(redis_port: u16, extra: &str) -> Warden {
    Warden::serve(
        "",
        &format!(
            "{demo}trusted = true\n\n[state]\nredis = \"redis://127.0.0.1:{redis_port}\"\ntimeout = \"300ms\"\n{extra}\n[limits]\nper_principal = {{ rate = \"5/m\", burst = 5 }}\n\n[approvals]\nstate_key = {{ env = \"WARDEN_E2E_STATE_KEY\" }}\n",
            demo = demo_server("demo"),
        ),
    )
}

/// One `echo` call through `gw`: the op's outcome.
fn echo(gw: &Warden) -> Value {
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": "hi" } },
    ]}));
    out["ops"][0].clone()
}

#[test]
fn a_rate_limit_holds_across_gateways_and_redis_going_away_fails_closed() {
    let port = free_port();
    let store = redis(port);
    let (a, b) = (gateway(port, ""), gateway(port, ""));
    for i in 0..5 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let op = echo(gw);
        assert_eq!(op["ok"], true, "call {i} within the limit: {op}");
    }
    for gw in [&a, &b] {
        let op = echo(gw);
        assert_eq!(op["error"]["code"], -32005, "the 6th call is refused whichever gateway: {op}");
        assert_eq!(op["error"]["data"]["limit"], "principal");
    }

    // Redis gone: refused, saying why; never unlimited.
    drop(store);
    let op = echo(&a);
    assert_eq!(op["error"]["code"], -32603, "{op}");
    assert!(op["error"]["message"].as_str().unwrap().contains("shared state is unreachable"), "{op}");
    assert!(a.log().contains("shared state (Redis) is unreachable"));

    // Back: a new, empty Redis on the same port; calls pass again.
    let _back = redis(port);
    let mut recovered = false;
    for _ in 0..10 {
        if echo(&b)["ok"] == true {
            recovered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(recovered, "calls recover when Redis returns");
}

#[test]
fn with_a_local_fallback_a_gateway_limits_alone_while_redis_is_away() {
    let port = free_port();
    // Nothing listens there: Redis is away from the start.
    let gw = gateway(port, "on_unavailable = \"local\"");
    // Taint has no local fallback: unable to know, the context counts as tainted, and a write
    // needs approval (the held call counts against the limit, as any call).
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
    ]}));
    let e = &out["ops"][0]["error"];
    assert_eq!(e["code"], -32013, "{out}");
    assert!(e["data"]["reasons"].to_string().contains("tainted"), "{e}");
    for i in 1..5 {
        let op = echo(&gw);
        assert_eq!(op["ok"], true, "call {i}: {op}");
    }
    let op = echo(&gw);
    assert_eq!(op["error"]["code"], -32005, "still limited, by this gateway's own counters: {op}");
    assert!(gw.log().contains("limiting by this gateway's own counters"));
}

/// A 2026-07-28 request of the local principal (the same context on every gateway).
fn modern(gw: &Warden, id: u64, method: &str, name: &str, params: Value) -> Value {
    modern_at(gw.port, id, method, name, params)
}

/// [`modern`], to the gateway listening on `port`.
fn modern_at(port: u16, id: u64, method: &str, name: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = envelope();
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    let h = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", method), ("mcp-name", name)];
    post_json(port, &h, &body.to_string()).json()
}

#[test]
fn a_context_tainted_on_one_gateway_is_tainted_on_the_other() {
    let port = free_port();
    let _store = redis(port);
    // `demo` is trusted (its results do not taint); `web` is not: what it returns taints.
    let web = format!("[servers.web]\ncommand = {:?}\nargs = [\"demo-server\"]\n", warden_bin().display().to_string());
    let config =
        format!("{demo}trusted = true\n\n{web}\n{state}", demo = demo_server("demo"), state = shared_state(port, ""));
    let (a, b) = (Warden::serve("", &config), Warden::serve("", &config));
    let call = |gw: &Warden, id: u64, name: &str, arguments: Value| {
        modern(gw, id, "tools/call", name, json!({ "name": name, "arguments": arguments }))
    };
    let write = |gw: &Warden, id: u64| call(gw, id, "demo__write_note", json!({ "title": "t", "body": "b" }));
    let clean = write(&b, 1);
    assert!(clean["result"]["content"].is_array(), "a clean context writes: {clean}\n{}", b.log());
    let read = call(&a, 2, "web__echo", json!({ "text": "from the web" }));
    assert!(read["result"]["content"].is_array(), "{read}\n{}", a.log());
    assert!(a.log().contains("the context is now tainted"), "{}", a.log());
    let held = write(&b, 3);
    assert_eq!(held["error"]["code"], -32013, "tainted on A, the write on B needs approval: {held}");
    assert!(held["error"]["data"]["reasons"].to_string().contains("tainted"), "{held}");
    assert!(!b.log().contains("the context is now tainted"), "B itself saw nothing untrusted: {}", b.log());
}

#[test]
fn a_containment_on_one_gateway_reaches_the_other_at_once() {
    let port = free_port();
    let _store = redis(port);
    let pg = PgSchema::new();
    // Polling alone would take a minute: only the published news can be this quick.
    let config = |pg: &PgSchema| {
        format!(
            "{demo}trusted = true\n\n[state]\nredis = \"redis://127.0.0.1:{port}\"\n\n[audit]\npostgres_url = {url:?}\n\n[approvals]\ncontainment_poll = \"60s\"\nstate_key = {{ env = \"WARDEN_E2E_STATE_KEY\" }}\n",
            demo = demo_server("demo"),
            url = pg.url(),
        )
    };
    let (a, b) = (Warden::serve("", &config(&pg)), Warden::serve("", &config(&pg)));
    assert_eq!(echo(&b)["ok"], true);
    let (code, out) = warden_cli(&a, &["contain", "demo", "--by", "ops"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("told every gateway"), "{out}");
    let mut refused = Value::Null;
    for _ in 0..20 {
        refused = echo(&b);
        if refused["error"]["code"] == -32015 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(refused["error"]["code"], -32015, "contained on B within two seconds: {refused}");
    assert!(b.log().contains("news from another gateway"));
    let (code, _) = warden_cli(&b, &["release", "demo", "--by", "ops"]);
    assert_eq!(code, 0);
    let mut back = Value::Null;
    for _ in 0..20 {
        back = echo(&a);
        if back["ok"] == true {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(back["ok"], true, "released on A at once: {back}");
}

/// Two gateways sharing a Redis and a Postgres, with API keys for alice, mallory and an operator;
/// `mine` is a demo server each session gets a connection of its own to; `web` is untrusted (what
/// it returns taints); deleting a note is irreversible (approved out of band).
struct Pair {
    a: Warden,
    b: Warden,
    alice: String,
    mallory: String,
    _redis: Process,
    pg: PgSchema,
}

fn pair() -> Pair {
    let port = free_port();
    let redis = redis(port);
    let pg = PgSchema::new();
    let (alice, alice_hash) = api_key();
    let (mallory, mallory_hash) = api_key();
    let web = format!("[servers.web]\ncommand = {:?}\nargs = [\"demo-server\"]\n", warden_bin().display().to_string());
    let config = format!(
        "[auth.api_keys.alice]\nhash = \"{alice_hash}\"\nclass = \"user\"\n\n[auth.api_keys.mallory]\nhash = \"{mallory_hash}\"\nclass = \"user\"\n\n{demo}trusted = true\n\n{mine}trusted = true\nisolation = \"session\"\n\n{web}\n[tools.\"demo/delete_note\"]\nclass = \"irreversible\"\n\n[audit]\npostgres_url = {url:?}\n{state}",
        demo = demo_server("demo"),
        mine = demo_server("mine"),
        url = pg.url(),
        state = shared_state(port, ""),
    );
    let (a, b) = (Warden::serve("", &config), Warden::serve("", &config));
    Pair { a, b, alice, mallory, _redis: redis, pg }
}

/// A raw legacy request on a session.
fn on_session(gw: &Warden, key: &str, session: &str, id: u64, method: &str, params: Value) -> RawResponse {
    let auth = format!("Bearer {key}");
    let h = [("authorization", auth.as_str()), ("mcp-session-id", session), ("mcp-protocol-version", "2025-11-25")];
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    post_json(gw.port, &h, &body.to_string())
}

#[test]
fn a_legacy_session_is_served_by_either_gateway_and_only_to_its_caller() {
    let p = pair();
    let auth = json!({ "Authorization": format!("Bearer {}", p.alice) });
    // A load balancer without stickiness: each request to the next gateway.
    let out = node_client(json!({ "sdk": "v1", "transport": {
        "type": "http", "url": p.a.url(), "headers": auth, "balance": [p.a.url(), p.b.url()] }, "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": "one" } },
        { "op": "callTool", "name": "mine__echo", "arguments": { "text": "two" } },
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": "three" } },
        { "op": "callTool", "name": "mine__echo", "arguments": { "text": "four" } },
        { "op": "setLevel", "level": "info" },
    ]}));
    for i in 0..6 {
        ok(&out, i);
    }
    assert_eq!(text(ok(&out, 4)), "four");
    let served: Vec<&str> = out["balanced"].as_array().unwrap().iter().filter_map(|r| r["to"].as_str()).collect();
    assert!(served.contains(&p.a.url().as_str()) && served.contains(&p.b.url().as_str()), "{out}");
    assert!(p.b.log().contains("session adopted from another gateway"), "{}", p.b.log());
    // Its own upstream connection on each gateway: `mine` was started for the session on both.
    for gw in [&p.a, &p.b] {
        assert!(gw.log().matches("started server process server=mine").count() >= 1, "{}", gw.log());
    }
    let session = out["sessionId"].as_str().expect("a session").to_owned();

    // Another caller presenting the id is told it does not exist, on either gateway.
    for gw in [&p.b, &p.a] {
        let r = on_session(gw, &p.mallory, &session, 7, "tools/list", json!({}));
        assert_eq!(r.status, 404, "{r:?}");
        assert!(r.body.contains("Session not found"), "{r:?}");
    }
    let r = on_session(
        &p.b,
        &p.alice,
        &session,
        8,
        "tools/call",
        json!({ "name": "demo__echo", "arguments": { "text": "still" } }),
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "still", "{r:?}");

    // Ended by its client on A: gone on B too.
    let auth = format!("Bearer {}", p.alice);
    let h = [("authorization", auth.as_str()), ("mcp-session-id", session.as_str())];
    assert_eq!(http("DELETE", p.a.port, &h, b"").status, 200);
    let mut gone = false;
    for _ in 0..20 {
        if on_session(&p.b, &p.alice, &session, 9, "tools/list", json!({})).status == 404 {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "the session ended on every gateway: {}", p.b.log());
}

#[test]
fn a_session_outlives_a_killed_gateway_and_its_stream_reconnects_on_the_other() {
    let p = pair();
    let auth = json!({ "Authorization": format!("Bearer {}", p.alice) });
    let (a_url, b_url) = (p.a.url(), p.b.url());
    let client = std::thread::spawn(move || {
        node_client(json!({ "sdk": "v1", "transport": {
            "type": "http", "url": a_url, "headers": auth, "balance": [a_url, b_url] }, "ops": [
            { "op": "callTool", "name": "demo__echo", "arguments": { "text": "before" } },
            { "op": "callTool", "name": "mine__echo", "arguments": { "text": "before" } },
            { "op": "sleep", "ms": 4000 },
            { "op": "callTool", "name": "demo__echo", "arguments": { "text": "after" } },
            { "op": "callTool", "name": "mine__echo", "arguments": { "text": "after" } },
            { "op": "callTool", "name": "demo__echo", "arguments": { "text": "after" } },
            { "op": "listTools" },
        ]}))
    });
    // While the client waits, A dies without a chance to say anything.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let Pair { mut a, b, pg: _pg, .. } = p;
    a.kill9();
    let out = client.join().unwrap();
    for i in [0, 1, 3, 4, 5, 6] {
        ok(&out, i);
    }
    let after: Vec<&Value> =
        out["balanced"].as_array().unwrap().iter().filter(|r| r["unreachable"].is_string()).collect();
    assert!(!after.is_empty(), "some requests found A gone: {out}");
    // The SDK's event stream (GET) ended with A and was opened again on B.
    let gets: Vec<&Value> = out["balanced"].as_array().unwrap().iter().filter(|r| r["method"] == "GET").collect();
    assert!(gets.iter().any(|r| r["to"] == b.url().as_str() && r["status"] == 200), "{out}");
    assert!(b.log().contains("session adopted from another gateway"), "{}", b.log());
}

/// A 2026-07-28 tools/call by the holder of `key`, with `extra` params (a continuation).
fn modern_call(gw: &Warden, key: &str, name: &str, arguments: Value, extra: Value) -> Value {
    let mut meta = envelope();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({ "elicitation": { "form": {} } });
    let mut params = json!({ "name": name, "arguments": arguments, "_meta": meta });
    for (k, v) in extra.as_object().into_iter().flatten() {
        params[k] = v.clone();
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
    let auth = format!("Bearer {key}");
    let h = [
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    post_json(gw.port, &h, &body.to_string()).json()
}

#[test]
fn an_approval_is_used_once_whichever_gateway_and_a_continuation_cannot_be_replayed_on_the_other() {
    let p = pair();
    // The context is tainted on A (web is untrusted): writes need approval, on every gateway.
    let read = modern_call(&p.a, &p.alice, "web__echo", json!({ "text": "from the web" }), json!({}));
    assert!(read["result"]["content"].is_array(), "{read}");
    // Held on A, approved by an operator, used on B: and then not again on A.
    let args = json!({ "title": "plan" });
    let held = modern_call(&p.a, &p.alice, "demo__delete_note", args.clone(), json!({}));
    assert_eq!(held["error"]["code"], -32013, "{held}");
    let id = held["error"]["data"]["approvalId"].as_str().expect("an approval id").to_owned();
    let (code, said) = warden_cli(&p.a, &["approvals", "approve", &id, "--by", "secops"]);
    assert_eq!(code, 0, "{said}");
    let used = modern_call(&p.b, &p.alice, "demo__delete_note", args.clone(), json!({}));
    assert!(used["result"]["content"].is_array(), "the approval is used on B: {used}");
    let again = modern_call(&p.a, &p.alice, "demo__delete_note", args.clone(), json!({}));
    assert_eq!(again["error"]["code"], -32013, "not again on A: {again}");
    assert_ne!(again["error"]["data"]["approvalId"], id.as_str(), "a new approval is asked: {again}");
    // Audit rows are written in batches: wait for the row, then check it is the only one.
    let sql = format!("SELECT COUNT(*) FROM mcp_audit WHERE event = 'approval_used' AND approval_id = '{id}'");
    for _ in 0..50 {
        if p.pg.query(&sql) != "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(p.pg.query(&sql), "1", "used once across both gateways");

    // In band: a write asks the user (who can answer); the answer continues on B, and the same
    // continuation replayed on A is refused.
    let write = json!({ "title": "t", "body": "approved in the client" });
    let asked = modern_call(&p.a, &p.alice, "demo__write_note", write.clone(), json!({}));
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"].as_str().unwrap().to_owned();
    let yes = json!({ "requestState": state,
        "inputResponses": { "warden-approval": { "action": "accept", "content": { "approve": true } } } });
    // Mallory's context is tainted too (so her write needs approval): she presents alice's.
    let hers = modern_call(&p.b, &p.mallory, "web__echo", json!({ "text": "from the web" }), json!({}));
    assert!(hers["result"]["content"].is_array(), "{hers}");
    let theirs = modern_call(&p.b, &p.mallory, "demo__write_note", write.clone(), yes.clone());
    assert_eq!(theirs["error"]["code"], -32004, "another caller presenting it on B: {theirs}");
    let done = modern_call(&p.b, &p.alice, "demo__write_note", write.clone(), yes.clone());
    assert_eq!(done["result"]["content"][0]["text"], "Saved note \"t\".", "continued on B: {done}");
    let replay = modern_call(&p.a, &p.alice, "demo__write_note", write, yes);
    assert_eq!(replay["error"]["code"], -32004, "replayed on A: {replay}");
}

#[test]
fn definitions_accepted_on_one_gateway_are_listed_by_the_other_at_once() {
    let port = free_port();
    let _store = redis(port);
    let pg = PgSchema::new();
    // Strict pinning: nothing is shown before a person accepts it. Lists are kept 30 s, so only
    // the published news can make the other gateway list again this soon.
    let config = format!(
        "{demo}trusted = true\npinning = \"strict\"\n\n[audit]\npostgres_url = {url:?}\n{state}",
        demo = demo_server("demo"),
        url = pg.url(),
        state = shared_state(port, ""),
    );
    let (a, b) = (Warden::serve("", &config), Warden::serve("", &config));
    let names = |gw: &Warden| -> Vec<String> {
        let listed = modern(gw, 1, "tools/list", "", json!({}));
        listed["result"]["tools"].as_array().expect("a list").iter().map(|t| t["name"].to_string()).collect()
    };
    assert!(names(&b).is_empty(), "nothing is shown before review");
    let (code, out) = warden_cli(&a, &["pins", "accept", "demo", "--by", "reviewer"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every gateway sharing state lists it again now"), "{out}");
    let mut shown = Vec::new();
    for _ in 0..20 {
        shown = names(&b);
        if !shown.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(shown.contains(&"\"demo__echo\"".to_owned()), "listed on B at once: {shown:?}\n{}", b.log());
}

#[test]
fn a_gateway_killed_mid_load_loses_no_committed_row_and_every_chain_verifies() {
    let port = free_port();
    let _store = redis(port);
    let pg = PgSchema::new();
    let keys = TempDir::new("keys");
    // Rows committed before the answer (sync), a chain per gateway, statements of heads signed
    // with the key both gateways share.
    let config = format!(
        "{demo}trusted = true\n\n[audit]\npostgres_url = {url:?}\ndurability = \"sync\"\nsigning_key = {key:?}\n{state}",
        demo = demo_server("demo"),
        url = pg.url(),
        key = keys.path("audit.key").display().to_string(),
        state = shared_state(port, ""),
    );
    let (a, b) = (Warden::serve("", &config), Warden::serve("", &config));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (a_url, b_url) = (a.url(), b.url());
            let mut ops = Vec::new();
            for i in 0..30 {
                ops.push(
                    json!({ "op": "callTool", "name": "demo__echo", "arguments": { "text": format!("load-{c}-{i}") } }),
                );
                ops.push(json!({ "op": "sleep", "ms": 60 }));
            }
            std::thread::spawn(move || {
                node_client(json!({ "sdk": "v1", "transport": {
                    "type": "http", "url": a_url, "balance": [a_url, b_url] }, "ops": ops }))
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (mut a, mut b) = (a, b);
    a.kill9();
    let outs: Vec<Value> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    b.stop();
    let mut answered = Vec::new();
    for out in &outs {
        for op in out["ops"].as_array().unwrap().iter().filter(|o| o["op"] == "callTool") {
            assert_eq!(op["ok"], true, "the clients went on on B: {out}");
            answered.push(op["result"]["content"][0]["text"].as_str().unwrap().to_owned());
        }
        assert!(out["balanced"].to_string().contains("unreachable"), "A died under this client: {out}");
    }
    assert_eq!(answered.len(), 60);
    // Every answered call has its row, in one chain or the other.
    let stored = pg.query("SELECT arguments FROM mcp_audit WHERE event = 'call' AND tool_name = 'echo'");
    for text in &answered {
        assert!(stored.contains(&format!("\"{text}\"")), "{text} was answered but has no row:\n{stored}");
    }
    assert!(pg.query("SELECT COUNT(DISTINCT chain) FROM mcp_audit").parse::<i64>().unwrap() >= 2);
    let (code, out) = warden_cli(&b, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every chain intact") && out.contains("every head named by the signed statements"), "{out}");
}

#[test]
fn calls_in_flight_are_counted_across_gateways() {
    let port = free_port();
    let _store = redis(port);
    let config = format!(
        "{demo}trusted = true\n\n[limits]\nmax_concurrent_calls = 1\n{state}",
        demo = demo_server("demo"),
        state = shared_state(port, ""),
    );
    let (a, b) = (Warden::serve("", &config), Warden::serve("", &config));
    let call = |gw: &Warden, name: &str, arguments: Value| {
        modern(gw, 1, "tools/call", name, json!({ "name": name, "arguments": arguments }))
    };
    assert!(call(&b, "demo__echo", json!({ "text": "warm" }))["result"].is_object());
    // The same context (the local principal) has a slow call in flight on A...
    let a_port = a.port;
    let slow = std::thread::spawn(move || {
        let args = json!({ "name": "demo__slow_count", "arguments": { "steps": 4, "delay_ms": 500 } });
        modern_at(a_port, 2, "tools/call", "demo__slow_count", args)
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    // ...so B refuses a second one.
    let refused = call(&b, "demo__echo", json!({ "text": "second" }));
    assert_eq!(refused["error"]["code"], -32007, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("in flight"), "{refused}");
    assert!(slow.join().unwrap()["result"].is_object());
    let mut back = Value::Null;
    for _ in 0..20 {
        back = call(&b, "demo__echo", json!({ "text": "after" }));
        if back["result"].is_object() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(back["result"].is_object(), "the place is given back: {back}");
}
