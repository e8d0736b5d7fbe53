//! Notifications end to end: a call waiting for approval, a rug pull and a definition held for
//! review, a quarantined result, a containment and its release through the admin API, and a
//! detection gate tripping are each POSTed to three webhooks (generic JSON, Slack, Teams) with a
//! link into the console; no argument value, result text or webhook URL leaks; a hostile tool
//! name arrives escaped. Through the real `warden` binary, the official TypeScript SDK client,
//! and a local receiver.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    status: u16,
    body: Value,
}

/// A local webhook receiver: records every POST; the first one to `/json` is answered 503 (the
/// notifier retries once), every other 200.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let status = {
                        let mut got = record.lock().unwrap();
                        let first_json = path == "/json" && !got.iter().any(|r| r.path == "/json");
                        let status = if first_json { 503 } else { 200 };
                        got.push(Received { path, status, body });
                        status
                    };
                    let reason = if status == 200 { "OK" } else { "Service Unavailable" };
                    let _ = (&stream).write_all(
                        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                            .as_bytes(),
                    );
                });
            }
        });
        Receiver { port, got }
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies answered 200 on `path`.
    fn delivered(&self, path: &str) -> Vec<Value> {
        self.all().into_iter().filter(|r| r.path == path && r.status == 200).map(|r| r.body).collect()
    }
}

/// Irreversible tools need a human's approval; everything else is allowed.
const POLICY: &str = r#"
@id("calls")
permit (principal, action == Action::"call_tool", resource) when { resource.class != "irreversible" };

@id("irreversible")
@require_approval
permit (principal, action == Action::"call_tool", resource) when { resource.class == "irreversible" };

@id("content")
permit (principal, action in [Action::"get_prompt", Action::"read_resource"], resource);
"#;

const ORIGIN: &str = "https://warden-admin.example.com";
/// In the approval's arguments: neither may reach a webhook.
const MARKER: &str = "zebra-marker-5821";
/// A GitHub token's shape, made at run time so the repository holds no credential-shaped text.
fn secret() -> String {
    format!("ghp_{}AB12", "R2d2C3po".repeat(4))
}
/// A tool name a hostile server chooses: a Slack broadcast, a link, and a bidi override.
const HOSTILE: &str = "pwn<!channel><https://evil.example/x>\u{202E}gnp.exe";
/// The Slack webhook's path, given through the environment: a secret the log must not show.
const SLACK_PATH: &str = "/slack/T0001/B0002/hook-secret-9f3e";

fn rugpull(name: &str, env: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [{:?}]\nenv = {{ {env} }}\n{extra}\n",
        venv_bin("python"),
        peer_file("python/rugpull_server.py"),
    )
}

#[test]
fn people_are_told_where_they_are_and_told_nothing_secret() {
    let hook = Receiver::start();
    let state = TempDir::new("notify");
    std::fs::write(state.path("policy.cedar"), POLICY).unwrap();
    std::fs::write(state.path("teams-hook.url"), format!("http://127.0.0.1:{}/teams\n", hook.port)).unwrap();
    let (alice, alice_hash) = api_key();
    let (ops, ops_hash) = api_key();
    let config = format!(
        r#"[auth.api_keys.alice]
hash = "{alice_hash}"
class = "user"
tenant = "acme"

[auth.api_keys.ops]
hash = "{ops_hash}"
class = "admin"

[admin]
listen = "127.0.0.1:0"

[console]
public_url = "{ORIGIN}"

{demo}
[tools."demo/delete_note"]
class = "irreversible"

{rug}
{odd}
[servers.leaky]
trusted_content = true
trusted_resources = true
command = {python:?}
args = [{leaky:?}]

[tools."leaky/*"]
class = "read"

[policy]
files = [{policy:?}]

[gates]
defaults = false
interval = "300ms"

[[gates.custom]]
name = "approvals-asked"
count_where = "event = 'approval_requested'"
threshold = 0.0
window = "1h"

[[notifications.webhooks]]
url = "http://127.0.0.1:{port}/json"
format = "json"
allow_private = true

[[notifications.webhooks]]
url = {{ env = "WARDEN_TEST_SLACK_HOOK" }}
format = "slack"
allow_private = true

[[notifications.webhooks]]
url = {{ file = {teams:?} }}
format = "teams"
allow_private = true
"#,
        demo = demo_server("demo"),
        rug = rugpull("rug", "RUGPULL = \"description\"", ""),
        odd = rugpull(
            "odd",
            // Written as it is: TOML has no `\u{..}` escapes.
            &format!("EXTRA = \"{HOSTILE}|Does nothing.\", ONLY_EXTRA = \"1\""),
            "pinning = \"strict\"",
        ),
        python = venv_bin("python"),
        leaky = peer_file("python/leaky_server.py"),
        policy = state.path("policy.cedar").display().to_string(),
        port = hook.port,
        teams = state.path("teams-hook.url").display().to_string(),
    );
    let slack_url = format!("http://127.0.0.1:{}{SLACK_PATH}", hook.port);
    let gw = Warden::start_with_env(
        &format!("[gateway]\nlisten = \"127.0.0.1:0\"\nlist_ttl = \"200ms\"\n\n{config}"),
        0,
        &[("WARDEN_TEST_SLACK_HOOK", &slack_url)],
    );
    let admin_port = gw.admin_port();
    let as_alice = |ops: Value| {
        node_client(json!({
            "sdk": "v1",
            "transport": { "type": "http", "url": gw.url(), "headers": { "Authorization": format!("Bearer {alice}") } },
            "ops": ops,
        }))
    };

    // First sight pins rug's tools and holds odd's (strict); a second listing finds rug's
    // changed; a call waits for approval; a result is quarantined.
    ok(&as_alice(json!([{ "op": "listTools" }])), 0);
    std::thread::sleep(Duration::from_millis(400));
    let out = as_alice(json!([
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__delete_note", "arguments": { "title": format!("{MARKER} {}", secret()) } },
        { "op": "callTool", "name": "leaky__inject", "arguments": {} },
    ]));
    let held = err(&out, 1);
    assert_eq!(held["code"], -32013, "held for approval: {out}");
    assert!(text(ok(&out, 2)).contains("Warden withheld this result"), "{out}");

    // The operator finds the pending approval, then contains and releases a server.
    let admin = |method: &str, path: &str, body: &[u8]| {
        let auth = format!("Bearer {ops}");
        http_at(method, admin_port, path, &[("Authorization", &auth), ("Content-Type", "application/json")], body)
    };
    let pending = admin("GET", "/v1/approvals?status=pending", b"").json();
    let approval = pending["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tool"] == "delete_note")
        .unwrap_or_else(|| panic!("{pending}"));
    let approval_id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(held["data"]["approvalId"], approval_id.as_str());
    let r = admin("POST", "/v1/servers/leaky/contain", br#"{"reason":"it tried to exfiltrate a key"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin("POST", "/v1/servers/leaky/release", b"{}");
    assert_eq!(r.status, 200, "{}", r.body);

    // Every webhook hears of every event.
    let kinds = [
        "approval_requested",
        "drift",
        "definition_held",
        "quarantine",
        "containment",
        "containment_released",
        "gate_tripped",
    ];
    let has = |path: &str, bodies: &[Value], kind: &str| -> bool {
        bodies.iter().any(|b| match path {
            "/json" => b["kind"] == kind,
            // The other formats say it in Warden's words: find the title.
            _ => b.to_string().contains(title_of(kind)),
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for path in ["/json", SLACK_PATH, "/teams"] {
        loop {
            let bodies = hook.delivered(path);
            let missing: Vec<&str> = kinds.iter().copied().filter(|k| !has(path, &bodies, k)).collect();
            if missing.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{path} never heard of {missing:?}: {bodies:#?}\n{}", gw.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Generic JSON: the facts, and links to the item in the console.
    let json_bodies = hook.delivered("/json");
    let find = |kind: &str, item: Option<&str>| -> Value {
        json_bodies
            .iter()
            .find(|b| b["kind"] == kind && item.is_none_or(|i| b["item"] == i))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {item:?}: {json_bodies:#?}"))
    };
    let asked = find("approval_requested", None);
    assert_eq!(asked["source"], "warden");
    assert_eq!(asked["event"], "approval");
    assert_eq!((&asked["server"], &asked["item"]), (&json!("demo"), &json!("delete_note")), "{asked}");
    assert_eq!((&asked["subject"], &asked["tenant"]), (&json!("alice"), &json!("acme")), "{asked}");
    assert_eq!(asked["approval_id"], approval_id.as_str());
    assert_eq!(asked["link"], format!("{ORIGIN}/console/#/approvals/{approval_id}"));
    let why = asked["why"].as_str().unwrap();
    assert!(why.contains("irreversible") && why.contains("credential in the arguments"), "why: {why}");
    let drift = find("drift", Some("weather"));
    assert_eq!((&drift["server"], &drift["event"]), (&json!("rug"), &json!("drift")), "{drift}");
    assert_eq!(drift["link"], format!("{ORIGIN}/console/#/reviews"));
    // The row names the tool as the client called it.
    let quarantined = find("quarantine", Some("leaky__inject"));
    assert_eq!((&quarantined["server"], &quarantined["subject"]), (&json!("leaky"), &json!("alice")));
    assert_eq!(quarantined["link"], format!("{ORIGIN}/console/#/reviews"));
    let contained = find("containment", None);
    assert_eq!((&contained["server"], &contained["subject"]), (&json!("leaky"), &json!("ops")), "{contained}");
    assert!(contained["why"].as_str().unwrap().contains("exfiltrate"), "{contained}");
    assert_eq!(contained["link"], format!("{ORIGIN}/console/#/inventory"));
    assert_eq!(find("containment_released", None)["server"], "leaky");
    let gate = find("gate_tripped", Some("approvals-asked"));
    assert_eq!(gate["link"], format!("{ORIGIN}/console/#/gates"));
    assert!(gate["value"].as_f64().unwrap() >= 1.0 && gate["threshold"] == 0.0, "{gate}");
    let hostile = json_bodies
        .iter()
        .find(|b| b["kind"] == "definition_held" && b["server"] == "odd")
        .unwrap_or_else(|| panic!("{json_bodies:#?}"));
    assert!(hostile["item"].as_str().unwrap().contains("\\u{202e}gnp.exe"), "written out: {hostile}");

    // The first POST was answered 503 and sent again.
    let json_requests: Vec<Received> = hook.all().into_iter().filter(|r| r.path == "/json").collect();
    assert_eq!(json_requests[0].status, 503);
    assert_eq!(json_requests[1].body, json_requests[0].body, "the same notice, retried");

    // Slack: text and blocks; a button to the approval; the hostile name escaped, verbatim.
    let slack = hook.delivered(SLACK_PATH);
    for b in &slack {
        assert!(b["text"].is_string() && b["blocks"].is_array(), "{b}");
    }
    let slack_approval = slack.iter().find(|b| b.to_string().contains("Approval needed")).unwrap();
    let button = &slack_approval["blocks"].as_array().unwrap().last().unwrap()["elements"][0];
    assert_eq!(button["url"], format!("{ORIGIN}/console/#/approvals/{approval_id}"));
    let slack_hostile = slack.iter().find(|b| b.to_string().contains("pwn")).expect("the held tool, in Slack");
    let shown = slack_hostile.to_string();
    assert!(shown.contains("pwn&lt;!channel&gt;&lt;https://evil.example/x&gt;\\\\u{202e}gnp.exe"), "{shown}");
    for b in &slack {
        let mut texts = Vec::new();
        strings(b, &mut texts);
        for t in texts.iter().filter(|t| !t.starts_with(ORIGIN)) {
            assert!(!t.contains('<') && !t.contains('>'), "no Slack markup from a name: {t}");
        }
    }

    // Teams: a message with an Adaptive Card; the hostile name only as plain text runs.
    let teams = hook.delivered("/teams");
    for b in &teams {
        assert_eq!(b["type"], "message", "{b}");
        let attachment = &b["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(attachment["content"]["type"], "AdaptiveCard");
        assert_eq!(attachment["content"]["version"], "1.4");
        for element in attachment["content"]["body"].as_array().unwrap() {
            if element["type"] == "TextBlock" || element["type"] == "FactSet" {
                assert!(!element.to_string().contains("pwn"), "a name in markdown: {element}");
            }
        }
    }
    let teams_approval = teams.iter().find(|b| b.to_string().contains("Approval needed")).unwrap();
    let action = &teams_approval["attachments"][0]["content"]["actions"][0];
    assert_eq!(action["type"], "Action.OpenUrl");
    assert_eq!(action["url"], format!("{ORIGIN}/console/#/approvals/{approval_id}"));
    let teams_hostile = teams.iter().find(|b| b.to_string().contains("pwn")).expect("the held tool, in Teams");
    let runs: Vec<&Value> = teams_hostile["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "RichTextBlock")
        .flat_map(|e| e["inlines"].as_array().unwrap())
        .collect();
    assert!(runs.iter().any(|r| r["text"].as_str().unwrap().contains("\\u{202e}gnp.exe")), "{teams_hostile}");

    // Nothing anyone sent or got back reaches a webhook; no URL of a webhook reaches the log.
    let token = secret();
    for r in hook.all() {
        let body = r.body.to_string();
        for leak in [MARKER, token.as_str(), "ghp_", "IGNORE ALL PREVIOUS", "evil.example/upload", "\u{202E}"] {
            assert!(!body.contains(leak), "{leak} reached {}: {body}", r.path);
        }
    }
    let log = gw.log();
    assert!(!log.contains("hook-secret-9f3e") && !log.contains("teams-hook"), "a webhook URL in the log");
    assert!(log.contains("notification sent"), "{log}");
    let metrics = http_at("GET", admin_port, "/metrics", &[], b"").body;
    assert!(
        metrics.lines().any(|l| l.starts_with("warden_notifications_total{event=\"approval\",outcome=\"sent\"} 3")),
        "one approval, three webhooks: {metrics}"
    );

    // `warden contain` from a shell tells the webhooks too: those whose URL it can read.
    let (code, said) = warden_cli(&gw, &["contain", "rug", "--reason", "drifted", "--by", "carol"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("not notified from this command") && said.contains("WARDEN_TEST_SLACK_HOOK"), "{said}");
    assert!(!said.contains("hook-secret-9f3e"), "{said}");
    for path in ["/json", "/teams"] {
        assert!(
            hook.delivered(path).iter().any(|b| b.to_string().contains("carol")),
            "{path} heard of carol's containment before the command returned"
        );
    }
    assert!(!hook.delivered(SLACK_PATH).iter().any(|b| b.to_string().contains("carol")));
}

fn title_of(kind: &str) -> &'static str {
    match kind {
        "approval_requested" => "Approval needed",
        "drift" => "Definition changed: held for review",
        "definition_held" => "Definition held for review",
        "quarantine" => "Result quarantined",
        "containment" => "Server contained",
        "containment_released" => "Server released",
        "gate_tripped" => "Detection gate tripped",
        _ => unreachable!(),
    }
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Runs `warden serve` on `config` with `env`, which must refuse to start; what it said.
fn refused_at_start(config: &str, env: &[(&str, &str)]) -> String {
    let dir = TempDir::new("notify-refused");
    std::fs::write(dir.path("warden.toml"), format!("[gateway]\nlisten = \"127.0.0.1:0\"\n\n{config}")).unwrap();
    let mut child = std::process::Command::new(warden_bin())
        .current_dir(&dir.0)
        .args(["serve", "--config"])
        .arg(dir.path("warden.toml"))
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path("err.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("warden started: {}", std::fs::read_to_string(dir.path("err.log")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(dir.path("err.log")).unwrap_or_default();
    assert!(!status.success(), "{said}");
    said
}

#[test]
fn a_webhook_on_a_private_address_is_refused_at_start_without_allow_private() {
    let hook = |url: &str| format!("[[notifications.webhooks]]\nurl = {url}\nformat = \"slack\"\n");
    let written = refused_at_start(&hook("\"https://10.1.2.3/hook\""), &[]);
    assert!(written.contains("notifications.webhooks.0.url"), "{written}");
    assert!(written.contains("private") && written.contains("allow_private"), "{written}");
    let plain = refused_at_start(&hook("\"http://hooks.example.com/x\""), &[]);
    assert!(plain.contains("notifications.webhooks.0.url") && plain.contains("https"), "{plain}");

    // From the environment: checked when read, and the message names the variable, not the URL.
    let from_env = hook("{ env = \"WARDEN_TEST_HOOK\" }");
    let private_hook = "https://127.0.0.1:9/hook-secret-4242";
    let said = refused_at_start(&from_env, &[("WARDEN_TEST_HOOK", private_hook)]);
    assert!(said.contains("notifications.webhooks.0.url") && said.contains("WARDEN_TEST_HOOK"), "{said}");
    assert!(said.contains("loopback") && said.contains("allow_private"), "{said}");
    assert!(!said.contains("hook-secret-4242"), "the URL is not shown: {said}");
    let unset = refused_at_start(&from_env, &[]);
    assert!(unset.contains("WARDEN_TEST_HOOK") && unset.contains("not set"), "{unset}");
}
