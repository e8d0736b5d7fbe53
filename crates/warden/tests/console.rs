//! The operator console, end to end: an operator signs in through an OpenID Connect provider made
//! inside the test (filling its login form in headless Chromium), sees a held call appear live,
//! approves it and the agent's retry (the official TypeScript SDK client) succeeds; denies
//! another; accepts a drifted definition from its diff; releases a quarantined result; contains a
//! server and its calls are refused; filters the audit log; looks at the gates; and every page
//! fits a phone. The attacks on the console itself (cross-site requests, non-admin principals,
//! a stolen sign-in, a foreign Host, self-approval, markup in arguments) are each refused.

#[path = "support/issuer.rs"]
mod issuer;
mod support;

use issuer::{Alg, CONSOLE_CLIENT, Issuer};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Everyone may call; irreversible tools need a person's approval.
const POLICY: &str = r#"
@id("calls")
permit (principal, action == Action::"call_tool", resource) when { resource.class != "irreversible" };

@id("irreversible")
@require_approval
permit (principal, action == Action::"call_tool", resource) when { resource.class == "irreversible" };

@id("content")
permit (principal, action in [Action::"get_prompt", Action::"read_resource"], resource);
"#;

/// Text that would run as script if the console ever parsed an argument as markup.
const MARKUP: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=1</script>plan";

struct Setup {
    issuer: Issuer,
    gw: Warden,
    admin: u16,
    alice: String,
    ops: String,
    ops2: String,
    svc: String,
    /// An `[admin.api_keys]` key: for the console and the operator API only.
    night: String,
    _dir: TempDir,
}

fn setup() -> Setup {
    let issuer = Issuer::start();
    let dir = TempDir::new("console");
    std::fs::write(dir.path("policy.cedar"), POLICY).unwrap();
    std::fs::write(dir.path("console.secret"), CONSOLE_CLIENT.1).unwrap();
    let (alice, alice_hash) = api_key();
    let (ops, ops_hash) = api_key();
    let (ops2, ops2_hash) = api_key();
    let (svc, svc_hash) = api_key();
    let (night, night_hash) = api_key();
    let (port, admin) = (free_port(), free_port());
    let config = format!(
        r#"[gateway]
listen = "127.0.0.1:{port}"
resource = "http://127.0.0.1:{port}/mcp"
list_ttl = "200ms"

[auth.oauth]
issuer = "{iss}"
jwks_url = "{jwks}"
admin_subjects = ["olivia", "oscar"]

[auth.api_keys.alice]
hash = "{alice_hash}"
class = "user"

[auth.api_keys.ops]
hash = "{ops_hash}"
class = "admin"

[auth.api_keys.ops2]
hash = "{ops2_hash}"
class = "admin"

[auth.api_keys.svc]
hash = "{svc_hash}"
class = "service"

[admin]
listen = "127.0.0.1:{admin}"

[admin.api_keys.night-shift]
hash = "{night_hash}"

[console]
sign_in = {{ client_id = "{client}", client_secret_file = {secret:?} }}

[egress]
allow = ["127.0.0.1"]

[audit]
path = {db:?}

[policy]
files = [{policy:?}]

{demo}trusted = true

[tools."demo/delete_note"]
class = "irreversible"

[servers.rug]
trusted_content = true
command = {python:?}
args = [{rug:?}]
env = {{ RUGPULL = "description" }}

[servers.leaky]
command = {python:?}
args = [{leaky:?}]

[tools."leaky/*"]
class = "read"
"#,
        iss = issuer.issuer,
        jwks = issuer.jwks_url,
        client = CONSOLE_CLIENT.0,
        secret = dir.path("console.secret").display().to_string(),
        db = dir.path("audit.db").display().to_string(),
        policy = dir.path("policy.cedar").display().to_string(),
        demo = demo_server("demo"),
        python = venv_bin("python"),
        rug = peer_file("python/rugpull_server.py"),
        leaky = peer_file("python/leaky_server.py"),
    );
    let gw = Warden::start(&config, port);
    Setup { issuer, gw, admin, alice, ops, ops2, svc, night, _dir: dir }
}

impl Setup {
    fn agent(&self, key: &str, ops: Value) -> Value {
        let transport =
            json!({ "type": "http", "url": self.gw.url(), "headers": { "Authorization": format!("Bearer {key}") } });
        node_client(json!({ "sdk": "v1", "transport": transport, "ops": ops }))
    }

    /// Pending approvals, from the admin API.
    fn pending(&self) -> Vec<Value> {
        let auth = format!("Bearer {}", self.ops);
        let r = http_at("GET", self.admin, "/v1/approvals?status=pending", &[("Authorization", &auth)], b"");
        serde_json::from_str::<Value>(&r.body).unwrap()["approvals"].as_array().cloned().unwrap_or_default()
    }

    fn wait_pending(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.pending();
            if p.len() >= n {
                return p;
            }
            assert!(Instant::now() < deadline, "no pending approval appeared: {p:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Rows of an audit query, waiting a moment for rows still being written.
    fn audit(&self, sql: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (code, out) = warden_cli(&self.gw, &["audit", "query", "--json", sql]);
            assert_eq!(code, 0, "{out}");
            let rows: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            if !rows.is_empty() || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One request to the console; `session` is (cookie, csrf).
    fn console(
        &self,
        method: &str,
        path: &str,
        session: Option<&(String, String)>,
        extra: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let cookie = session.map(|s| format!("warden-console={}", s.0));
        let origin = format!("http://127.0.0.1:{}", self.admin);
        let mut headers: Vec<(&str, &str)> = vec![];
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        if method == "POST" && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type", "application/json"));
        }
        if method == "POST" && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin")) {
            headers.push(("Origin", &origin));
        }
        if let Some(s) = session
            && method == "POST"
            && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-warden-csrf"))
        {
            headers.push(("X-Warden-CSRF", &s.1));
        }
        headers.extend_from_slice(extra);
        http_at(method, self.admin, path, &headers, body.as_bytes())
    }

    /// Opens a live stream for a session and reads its response head: the stream, still open.
    fn open_stream(&self, session: &(String, String)) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        write!(
            stream,
            "GET /console/api/events HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncookie: warden-console={}\r\n\r\n",
            self.admin, session.0
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
        stream
    }

    /// Signs in with an API key: the session cookie and CSRF token.
    fn sign_in_with(&self, key: &str) -> Result<(String, String), RawResponse> {
        let r = self.console("POST", "/console/auth/key", None, &[], &json!({ "key": key }).to_string());
        if r.status != 200 {
            return Err(r);
        }
        let cookie = set_cookie(&r, "warden-console").expect("a session cookie");
        let csrf = serde_json::from_str::<Value>(&r.body).unwrap()["csrf"].as_str().unwrap().to_owned();
        Ok((cookie, csrf))
    }
}

fn header<'a>(r: &'a RawResponse, name: &str) -> Vec<&'a str> {
    r.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// The value a `Set-Cookie` gives cookie `name`, if any, with its attributes checked.
fn set_cookie(r: &RawResponse, name: &str) -> Option<String> {
    let c = header(r, "set-cookie").into_iter().find(|c| c.starts_with(&format!("{name}=")))?;
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
    let value = c.split(';').next()?.split_once('=')?.1.to_owned();
    (!value.is_empty()).then_some(value)
}

fn location(r: &RawResponse) -> String {
    header(r, "location").first().map(|s| s.to_string()).unwrap_or_default()
}

fn call(name: &str, arguments: Value) -> Value {
    json!({ "op": "callTool", "name": name, "arguments": arguments })
}

/// Where screenshots are kept (under the target directory).
fn artifacts() -> PathBuf {
    let target = warden_bin().parent().and_then(|p| p.parent()).expect("target dir").to_owned();
    let dir = target.join("test-artifacts").join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser script, run as a conversation: its events in order, answering each `wait`.
struct Browser {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stdin: std::process::ChildStdin,
}

impl Browser {
    fn start(plan: &Value, dir: &TempDir) -> Browser {
        let file = dir.path("plan.json");
        std::fs::write(&file, plan.to_string()).unwrap();
        node_modules();
        let mut child = Command::new("node")
            .current_dir(repo().join("tests/peers/node"))
            .arg("console_browser.mjs")
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Browser { child, lines, stdin }
    }

    /// The next event, which must be `at`.
    fn expect(&mut self, at: &str) -> Value {
        let line = self.lines.next().unwrap_or_else(|| panic!("the browser stopped before {at}")).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(v["at"], at, "expected {at}, got {v}");
        v
    }

    fn go(&mut self) {
        writeln!(self.stdin, "go").unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_operator_decides_in_the_browser_and_the_agent_sees_it() {
    let s = setup();
    let profile = TempDir::new("chromium-profile");
    let out = artifacts();
    let plan = json!({
        "console": format!("http://127.0.0.1:{}/console/", s.admin),
        "user": "olivia",
        "principal": "alice",
        "out": out,
        "profile": profile.0,
    });
    // The definitions are first seen (and pinned) before anything changes.
    let first = s.agent(&s.alice, json!([{ "op": "listTools" }]));
    assert!(names(ok(&first, 0), "tools").contains(&"rug__weather".to_owned()), "{first}");

    let mut b = Browser::start(&plan, &profile);
    let signed = b.expect("signed-in");
    assert_eq!(signed["operator"].as_str().map(str::trim), Some("olivia"), "{signed}");

    // The agent's irreversible call is held while the inbox is open.
    b.expect("inbox-open");
    let held = s.agent(
        &s.alice,
        json!([
            call("demo__write_note", json!({ "title": MARKUP, "body": "Quarterly plan." })),
            call("demo__delete_note", json!({ "title": MARKUP })),
        ]),
    );
    assert_eq!(err(&held, 1)["code"], -32013, "held for approval: {held}");
    let approve_at = err(&held, 1)["data"]["approve"].as_str().unwrap_or_default().to_owned();
    assert!(
        approve_at.contains(&format!("http://127.0.0.1:{}/console/#/approvals/apr-", s.admin)),
        "the agent is told where a person approves: {approve_at}"
    );
    b.go();
    let shown = b.expect("held-call-shown");
    assert_eq!(shown["reloaded"], false, "it appeared without a reload: {shown}");
    assert!(shown["tool"].as_str().unwrap().contains("delete_note"), "{shown}");
    assert!(shown["caller"].as_str().unwrap().contains("alice"), "{shown}");
    assert!(shown["reasons"].as_str().unwrap().contains("irreversible"), "{shown}");
    assert!(shown["args"].as_str().unwrap().contains("<img src=x onerror="), "markup is shown as text: {shown}");
    assert_eq!(shown["imagesInCard"], 0, "and never becomes an element: {shown}");
    assert_eq!(shown["scriptRan"], false, "{shown}");
    assert_eq!(shown["pendingBadge"].as_str().map(str::trim), Some("1"), "{shown}");
    b.expect("approved");
    let retried = s.agent(&s.alice, json!([call("demo__delete_note", json!({ "title": MARKUP }))]));
    assert!(text(ok(&retried, 0)).to_lowercase().contains("deleted"), "the retry runs once approved: {retried}");
    let granted = s.audit("SELECT actor_id, reason FROM mcp_audit WHERE event = 'approval_granted'");
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["actor_id"], "olivia", "the decision names the operator: {granted:?}");
    assert!(granted[0]["reason"].as_str().unwrap().contains("checked with the note owner"), "{granted:?}");

    // Another is denied.
    b.expect("deny-ready");
    let second = s.agent(&s.alice, json!([call("demo__delete_note", json!({ "title": "budget" }))]));
    assert_eq!(err(&second, 0)["code"], -32013, "{second}");
    b.go();
    let denied = b.expect("denied");
    assert_eq!(denied["status"], "denied", "{denied}");
    let history = denied["history"].as_str().unwrap();
    assert!(history.contains("olivia") && history.contains("not during the freeze"), "{denied}");
    let again = s.agent(&s.alice, json!([call("demo__delete_note", json!({ "title": "budget" }))]));
    assert!(again["ops"][0]["error"].is_object(), "a denied call does not run: {again}");
    let rows = s.audit("SELECT approval_id, reason FROM mcp_audit WHERE event = 'approval_denied'");
    assert_eq!(rows[0]["approval_id"], denied["id"], "{rows:?}");
    assert!(rows[0]["reason"].as_str().unwrap().contains("not during the freeze"), "{rows:?}");

    // The server changes a definition; a result instructs the model.
    b.expect("reviews-ready");
    std::thread::sleep(Duration::from_millis(300));
    let listed = s.agent(&s.alice, json!([{ "op": "listTools" }, call("leaky__inject", json!({}))]));
    assert!(!names(ok(&listed, 0), "tools").contains(&"rug__weather".to_owned()), "the drifted tool is held: {listed}");
    let quarantine_id =
        ok(&listed, 1)["_meta"]["warden/quarantine"]["id"].as_str().unwrap_or_else(|| panic!("{listed}")).to_owned();
    b.go();
    let reviews = b.expect("reviews-shown");
    assert_eq!(reviews["name"], "weather", "{reviews}");
    assert!(!reviews["oldSide"].as_str().unwrap().contains("aws/credentials"), "{reviews}");
    assert!(reviews["newSide"].as_str().unwrap().contains("aws/credentials"), "the diff shows the change: {reviews}");
    assert_eq!(reviews["quarantineId"], quarantine_id.as_str(), "{reviews}");
    b.expect("reviewed");
    std::thread::sleep(Duration::from_millis(300));
    let after = s.agent(
        &s.alice,
        json!([{ "op": "listTools" }, { "op": "readResource", "uri": format!("warden://quarantine/{quarantine_id}") }]),
    );
    assert!(names(ok(&after, 0), "tools").contains(&"rug__weather".to_owned()), "accepted, it is back: {after}");
    assert!(ok(&after, 1)["contents"].is_array(), "released to its caller: {after}");
    let accepted = s.audit("SELECT actor_id, server_name, reason FROM mcp_audit WHERE event = 'pins_accepted'");
    assert_eq!(accepted[0]["actor_id"], "olivia", "{accepted:?}");
    assert!(accepted[0]["reason"].as_str().unwrap().contains("weather"), "{accepted:?}");

    // The operator contains the demo server from the inventory.
    b.expect("inventory-ready");
    b.go();
    let contained = b.expect("contained");
    assert!(contained["tools"].as_u64().unwrap() >= 5, "{contained}");
    let confirmation = contained["confirmation"].as_str().unwrap();
    assert!(
        confirmation.contains("demo") && confirmation.contains("delete_note"),
        "it names what stops: {confirmation}"
    );
    let refused = s.agent(&s.alice, json!([call("demo__echo", json!({ "text": "hi" }))]));
    let e = &refused["ops"][0]["error"];
    assert!(e["message"].as_str().unwrap_or_default().contains("contained"), "calls are refused at once: {refused}");

    b.expect("audit-ready");
    b.go();
    let audit = b.expect("audit-filtered");
    let filtered = audit["filtered"].as_array().unwrap();
    assert!(!filtered.is_empty() && filtered.iter().all(|r| r.as_str().unwrap().contains("alice")), "{audit}");
    assert!(filtered.iter().all(|r| r.as_str().unwrap().contains("DENY")), "{audit}");
    assert!(audit["detail"].as_str().unwrap().contains("row_hash"), "a row's full record: {audit}");
    assert!(audit["exportHref"].as_str().unwrap().contains("principal=alice"), "{audit}");
    assert!(audit["chain"].as_str().unwrap().contains("verified"), "{audit}");

    let gates = b.expect("gates");
    let gates = gates["gates"].as_array().unwrap();
    assert!(gates.len() >= 4 && gates.iter().all(|g| g["chart"] == true), "{gates:?}");

    let phone = b.expect("phone");
    for (page, width) in phone["widths"].as_object().unwrap() {
        assert!(width.as_u64().unwrap() <= 376, "{page} is wider than a phone: {phone}");
    }
    let seen = b.expect("observed");
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    assert_eq!(seen["cspViolations"], json!([]), "{seen}");
    assert_eq!(seen["foreignRequests"], json!([]), "the console loads nothing from elsewhere: {seen}");
    assert_eq!(seen["dialogs"], json!([]), "{seen}");
    assert_eq!(seen["scriptElements"], json!(["/console/assets/console.js"]), "{seen}");
    // What failed is only the first look for a session, before signing in, and what the identity
    // provider does not have (an icon).
    let console_origin = format!("http://127.0.0.1:{}/", s.admin);
    let failed: Vec<&str> = seen["failedResponses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .filter(|r| r.contains(&console_origin) && *r != format!("401 {console_origin}console/api/session"))
        .collect();
    assert!(failed.is_empty(), "{seen}");
    // Chromium logs each failed load, the identity provider's missing icon among them; nothing else.
    let errors = seen["consoleErrors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e.as_str().unwrap().starts_with("Failed to load resource")), "{seen}");
    for shot in ["signin", "approvals", "reviews", "inventory", "audit", "gates", "approvals-phone", "audit-phone"] {
        assert!(out.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
    let signed_in =
        s.audit("SELECT actor_id, reason FROM mcp_audit WHERE event = 'console_sign_in' AND decision = 'ALLOW'");
    assert_eq!(signed_in[0]["actor_id"], "olivia", "{signed_in:?}");
    assert_eq!(signed_in[0]["reason"], "oidc", "{signed_in:?}");
}

#[test]
fn the_console_refuses_what_an_attacker_can_send_it() {
    let s = setup();
    // The page: a strict policy, and no script or style of its own inline.
    let page = s.console("GET", "/console/", None, &[], "");
    assert_eq!(page.status, 200);
    let csp = header(&page, "content-security-policy").join("");
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&page, "x-frame-options"), vec!["DENY"]);
    for script in page.body.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        assert!(tag.contains("src=") && script.split('>').nth(1).unwrap().starts_with("</script"), "inline: {script}");
    }
    assert!(!page.body.contains(" style=") && !page.body.contains(" onclick="), "{}", page.body);
    let js = s.console("GET", "/console/assets/console.js", None, &[], "");
    assert!(!js.body.contains("innerHTML") && !js.body.contains("eval("), "the script builds text, not markup");

    // Nothing is served without a session; a foreign Host is refused (DNS rebinding).
    for path in ["/console/api/session", "/console/api/events", "/console/api/approvals", "/console/api/audit"] {
        let refused = s.console("GET", path, None, &[], "");
        assert_eq!(refused.status, 401, "{path}");
        assert_eq!(header(&refused, "content-security-policy"), header(&page, "content-security-policy"), "{path}");
        assert_eq!(header(&refused, "cache-control"), vec!["no-store"], "{path}");
    }
    let rebound = s.console("GET", "/console/", None, &[("Host", "evil.example.com")], "");
    assert_eq!(rebound.status, 403);

    // Only an admin key opens a session; a JWT is not a key; guesses are limited.
    assert_eq!(s.sign_in_with(&s.alice).unwrap_err().status, 403, "a user key is not an operator");
    assert_eq!(s.sign_in_with(&s.svc).unwrap_err().status, 403, "a service key is not an operator");
    let token = s.issuer.token(Alg::Rs256, &s.issuer.claims("olivia", &s.gw.url(), json!({})));
    assert_eq!(s.sign_in_with(&token).unwrap_err().status, 401, "a bearer token is not a break-glass key");
    let ops = s.sign_in_with(&s.ops).expect("an admin key signs in");
    // An operator's own key opens the console and the operator API, and never calls a tool.
    let night = s.sign_in_with(&s.night).expect("an operator key signs in");
    let me: Value =
        serde_json::from_str(&s.console("GET", "/console/api/session", Some(&night), &[], "").body).unwrap();
    assert_eq!(me["subject"], "night-shift");
    let auth = format!("Bearer {}", s.night);
    assert_eq!(http_at("GET", s.admin, "/v1/approvals", &[("Authorization", &auth)], b"").status, 200);
    let as_agent = s.agent(&s.night, json!([{ "op": "listTools" }]));
    assert!(as_agent.to_string().contains("401"), "an operator key is no caller's key: {as_agent}");
    // Both names of a loopback console are its own origin.
    let other_name = format!("http://localhost:{}", s.admin);
    let logout_check =
        s.console("POST", "/console/api/approvals/none/deny", Some(&night), &[("Origin", &other_name)], "{}");
    assert_eq!(logout_check.status, 404, "{}", logout_check.body);
    // Sign-in happens on the console's own origin: another name is sent there first.
    let moved = s.console("GET", "/console/auth/start", None, &[("Host", &format!("localhost:{}", s.admin))], "");
    assert_eq!(location(&moved), format!("http://127.0.0.1:{}/console/auth/start", s.admin));
    // A definition is accepted only as seen: by kind, name and hash.
    let stale = json!({ "kind": "tool", "name": "weather", "hash": "sha256:00" }).to_string();
    assert_eq!(s.console("POST", "/console/api/pins/rug/accept", Some(&night), &[], &stale).status, 409);
    assert_eq!(s.console("POST", "/console/api/pins/rug/accept", Some(&night), &[], "{}").status, 422);
    // Wrong keys are limited; a right key still signs in while they are.
    let wrong: Vec<u16> = (0..11).map(|_| s.sign_in_with("wdn_guess").unwrap_err().status).collect();
    assert_eq!(wrong.last(), Some(&429), "{wrong:?}");
    assert!(s.sign_in_with(&s.ops).is_ok(), "a flood of wrong keys locks nobody out");
    // The API answers only the console's own page.
    let sibling = s.console("GET", "/console/api/events", Some(&ops), &[("Sec-Fetch-Site", "same-site")], "");
    assert_eq!(sibling.status, 403);
    let cross = s.console(
        "POST",
        "/console/auth/key",
        None,
        &[("Origin", "http://evil.example.com")],
        &json!({ "key": s.ops }).to_string(),
    );
    assert_eq!(cross.status, 403, "a sign-in posted from another site is refused");

    // Every state change needs the CSRF token, JSON, and this origin.
    let held = s.agent(&s.alice, json!([call("demo__delete_note", json!({ "title": "plan" }))]));
    assert_eq!(err(&held, 0)["code"], -32013, "{held}");
    let id = s.wait_pending(1)[0]["id"].as_str().unwrap().to_owned();
    let approve = format!("/console/api/approvals/{id}/approve");
    let no_csrf = (ops.0.clone(), String::new());
    assert_eq!(s.console("POST", &approve, Some(&no_csrf), &[("X-Warden-CSRF", "")], "{}").status, 403);
    let wrong = (ops.0.clone(), "forged".to_owned());
    assert_eq!(s.console("POST", &approve, Some(&wrong), &[], "{}").status, 403);
    assert_eq!(s.console("POST", &approve, Some(&ops), &[("Origin", "https://evil.example.com")], "{}").status, 403);
    assert_eq!(s.console("POST", &approve, Some(&ops), &[("Sec-Fetch-Site", "cross-site")], "{}").status, 403);
    assert_eq!(s.console("POST", &approve, Some(&ops), &[("Content-Type", "text/plain")], "{}").status, 415);
    assert_eq!(s.pending().len(), 1, "none of those decided anything");

    // The inventory says what each connected server agreed to speak.
    let inventory: Value =
        serde_json::from_str(&s.console("GET", "/console/api/inventory", Some(&ops), &[], "").body).unwrap();
    let demo = inventory["servers"].as_array().unwrap().iter().find(|x| x["name"] == "demo").unwrap().clone();
    assert_eq!(demo["state"], "connected", "{demo}");
    let era = demo["era"].as_str().unwrap();
    assert!(era.ends_with("(legacy)") || era.ends_with("(modern)"), "{demo}");
    let delete = inventory["tools"].as_array().unwrap().iter().find(|t| t["name"] == "delete_note").unwrap().clone();
    assert_eq!(delete["class"], "irreversible", "{delete}");
    assert_eq!(delete["outOfBand"], true, "{delete}");

    // Two operators at once: one wins, the other is told who did.
    let ops2 = s.sign_in_with(&s.ops2).unwrap();
    let (a, b) = std::thread::scope(|t| {
        let x = t.spawn(|| s.console("POST", &approve, Some(&ops), &[], r#"{"reason":"fine"}"#));
        let y = t.spawn(|| s.console("POST", &approve, Some(&ops2), &[], r#"{"reason":null}"#));
        (x.join().unwrap(), y.join().unwrap())
    });
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", a.body, b.body);
    let lost = if a.status == 409 { &a } else { &b };
    assert!(lost.body.contains("already approved by ops"), "{}", lost.body);

    // An operator never decides on their own call, whichever way they signed in.
    let own = s.agent(&s.ops, json!([call("demo__delete_note", json!({ "title": "mine" }))]));
    assert_eq!(err(&own, 0)["code"], -32013, "{own}");
    let mine = s.pending().into_iter().find(|p| p["actor_id"] == "ops").unwrap();
    let listed = s.console("GET", "/console/api/approvals?status=pending", Some(&ops), &[], "");
    assert!(listed.body.contains("\"mine\":true"), "{}", listed.body);
    assert!(!listed.body.contains("principal_key"), "{}", listed.body);
    let path = format!("/console/api/approvals/{}/approve", mine["id"].as_str().unwrap());
    let refused = s.console("POST", &path, Some(&ops), &[], "{}");
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Nor does anyone release a result withheld from their own call.
    let withheld = s.agent(&s.ops, json!([call("leaky__inject", json!({}))]));
    let qid = ok(&withheld, 0)["_meta"]["warden/quarantine"]["id"].as_str().unwrap().to_owned();
    let release = s.console("POST", &format!("/console/api/quarantine/{qid}/release"), Some(&ops), &[], "{}");
    assert_eq!(release.status, 403, "{}", release.body);

    // The export is the filtered rows, as JSON lines, and is itself audited.
    let lured = s.console(
        "GET",
        "/console/api/audit/export?principal=alice",
        Some(&ops),
        &[("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(lured.status, 403, "a link on another site cannot start an export");
    let export = s.console(
        "GET",
        "/console/api/audit/export?principal=alice",
        Some(&ops),
        &[("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!(export.status, 200);
    assert!(header(&export, "content-disposition")[0].contains("attachment"));
    let rows: Vec<Value> = export.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["actor_id"] == "alice"), "{rows:?}");
    assert_eq!(s.audit("SELECT reason FROM mcp_audit WHERE event = 'audit_exported'")[0]["reason"], "principal=alice");

    // A session holds a few live streams, not any number.
    let streams: Vec<TcpStream> = (0..4).map(|_| s.open_stream(&ops)).collect();
    let fifth = s.console("GET", "/console/api/events", Some(&ops), &[], "");
    assert_eq!(fifth.status, 429, "{}", fifth.body);

    // Sign-out ends the session, and its live streams with it.
    assert_eq!(s.console("POST", "/console/auth/logout", Some(&ops), &[], "{}").status, 204);
    assert_eq!(s.console("GET", "/console/api/session", Some(&ops), &[], "").status, 401);
    for mut stream in streams {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let ended = stream.read_to_end(&mut rest);
        assert!(ended.is_ok(), "the stream ended with the session: {ended:?}");
    }
}

/// The sign-in round trip as a browser makes it, played over HTTP: the identity provider knows
/// the user from `x-test-user`.
fn oidc_round_trip(s: &Setup, user: &str) -> (RawResponse, String, String) {
    let start = s.console("GET", "/console/auth/start", None, &[], "");
    assert_eq!(start.status, 302, "{}", start.body);
    let browser = set_cookie(&start, "warden-console-signin").expect("the sign-in is bound to this browser");
    let to_idp = location(&start);
    assert!(to_idp.contains("code_challenge_method=S256") && to_idp.contains("nonce="), "{to_idp}");
    let path = to_idp.split_once("127.0.0.1").unwrap().1.split_once('/').unwrap().1;
    let port: u16 = to_idp.split("127.0.0.1:").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    let idp = http_at("GET", port, &format!("/{path}"), &[("x-test-user", user)], b"");
    let back = location(&idp);
    let callback = back.split_once(&format!("127.0.0.1:{}", s.admin)).unwrap().1.to_owned();
    let cookie = format!("warden-console-signin={browser}");
    let done = s.console("GET", &callback, None, &[("Cookie", &cookie)], "");
    (done, callback, cookie)
}

#[test]
fn single_sign_on_admits_admins_only_and_binds_the_sign_in_to_its_browser() {
    let s = setup();
    let (done, callback, cookie) = oidc_round_trip(&s, "olivia");
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(location(&done), "/console/");
    let session = set_cookie(&done, "warden-console").expect("a session");
    let me = s.console("GET", "/console/api/session", Some(&(session, String::new())), &[], "");
    let me: Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["subject"], "olivia");
    assert_eq!(me["via"], "oidc");

    // The same code and state, again: refused.
    let replay = s.console("GET", &callback, None, &[("Cookie", &cookie)], "");
    assert!(location(&replay).ends_with("error=unknown-flow"), "a replayed sign-in is refused: {replay:?}");
    assert!(set_cookie(&replay, "warden-console").is_none());

    // The attacker's own sign-in, finished in the victim's browser (login CSRF): the victim's
    // browser holds its own sign-in, or none, and the attacker's is refused there.
    let attacker = s.console("GET", "/console/auth/start", None, &[], "");
    let victim = s.console("GET", "/console/auth/start", None, &[], "");
    let to_idp = location(&attacker);
    let port: u16 = to_idp.split("127.0.0.1:").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    let path = to_idp.split_once(&format!("127.0.0.1:{port}")).unwrap().1;
    let back = location(&http_at("GET", port, path, &[("x-test-user", "oscar")], b""));
    let callback = back.split_once(&format!("127.0.0.1:{}", s.admin)).unwrap().1.to_owned();
    for cookie in [
        format!("warden-console-signin={}", set_cookie(&victim, "warden-console-signin").unwrap()),
        "warden-console-signin=forged.cookie".to_owned(),
        String::new(),
    ] {
        let stolen = s.console("GET", &callback, None, &[("Cookie", &cookie)], "");
        assert!(location(&stolen).ends_with("error=other-browser"), "{stolen:?}");
        assert!(set_cookie(&stolen, "warden-console").is_none());
    }

    // A user who is not an admin signs in at the provider, and is refused by the console.
    let (mallory, _, _) = oidc_round_trip(&s, "mallory");
    assert!(location(&mallory).ends_with("error=not-admin"), "{mallory:?}");
    assert!(set_cookie(&mallory, "warden-console").is_none(), "no session for a non-admin");
    let denied = s.audit("SELECT actor_id FROM mcp_audit WHERE event = 'console_sign_in' AND decision = 'DENY'");
    assert_eq!(denied[0]["actor_id"], "mallory", "{denied:?}");

    // A hostile or careless provider: every ID token that is not for this sign-in, this client,
    // this issuer, now, and signed, is refused; so is a sign-in without one.
    for (variant, code) in [
        ("bad-nonce", "token-refused"),
        ("other-aud", "token-refused"),
        ("other-azp", "token-refused"),
        ("expired", "token-refused"),
        ("other-iss", "token-refused"),
        ("alg-none", "token-refused"),
        ("no-id-token", "no-id-token"),
    ] {
        let (done, _, _) = oidc_round_trip(&s, &format!("olivia#{variant}"));
        assert!(location(&done).ends_with(&format!("error={code}")), "{variant}: {done:?}");
        assert!(set_cookie(&done, "warden-console").is_none(), "{variant}: no session");
    }
}
