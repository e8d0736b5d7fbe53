//! The HTTP listener's bounds, attacked through the real binary: half-sent requests, oversized
//! heads, bodies that never finish, and more connections than one client may hold.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

fn gateway(settings: &str) -> Warden {
    Warden::serve(settings, &demo_server("demo"))
}

/// Whether the gateway closed `s` (or answered and closed) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn half_sent(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: appl").as_bytes()).unwrap();
    s
}

#[test]
fn half_sent_requests_do_not_hold_sockets() {
    let gw = gateway("header_read_timeout = \"1s\"\n");
    let started = Instant::now();
    let mut held: Vec<TcpStream> = (0..100).map(|_| half_sent(gw.port)).collect();
    // While they dangle, the gateway serves others.
    let id = raw_initialize(gw.port);
    assert!(!id.is_empty());
    for s in &mut held {
        assert!(closed_within(s, Duration::from_secs(5)), "a half-sent request was still held open");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "closed by the header timeout: {:?}", started.elapsed());
}

#[test]
fn one_client_cannot_take_every_connection() {
    let gw = gateway("max_connections_per_client = 20\nheader_read_timeout = \"60s\"\n");
    // The readiness probe's connection is closed and counted out before the attack starts.
    raw_initialize(gw.port);
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<TcpStream> = (0..30).map(|_| half_sent(gw.port)).collect();
    let refused = held.iter_mut().map(|s| closed_within(s, Duration::from_millis(100))).filter(|c| *c).count();
    assert_eq!(refused, 10, "past its 20 connections a client's new ones are closed at once");
    assert!(gw.wait_log("this client has 20 open already", Duration::from_secs(5)), "{}", gw.log());
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!raw_initialize(gw.port).is_empty(), "closed connections give their places back");
}

#[test]
fn oversized_heads_and_slow_bodies_are_refused() {
    let gw = gateway("max_header_bytes = 8192\nbody_read_timeout = \"1s\"\n");
    let big = "a".repeat(64 * 1024);
    let r = http("POST", gw.port, &[("content-type", "application/json"), ("x-padding", &big)], b"{}");
    assert!(r.status == 431 || r.status == 0, "an oversized head is refused: {}", r.status);

    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n{{\"jsonrpc\"",
        gw.port
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a body that never arrives is refused: {answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // A large body sent promptly is still served.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"raw","version":"1"}},"padding":"{}"}}}}"#,
        "p".repeat(2 * 1024 * 1024)
    );
    let r = post_json(gw.port, &[], &body);
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
}
