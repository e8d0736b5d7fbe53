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
            "{demo}\n[state]\nredis = \"redis://127.0.0.1:{redis_port}\"\ntimeout = \"300ms\"\n{extra}\n[limits]\nper_principal = {{ rate = \"5/m\", burst = 5 }}\n",
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
    for i in 0..5 {
        assert_eq!(echo(&gw)["ok"], true, "call {i}");
    }
    let op = echo(&gw);
    assert_eq!(op["error"]["code"], -32005, "still limited, by this gateway's own counters: {op}");
    assert!(gw.log().contains("limiting by this gateway's own counters"));
}
