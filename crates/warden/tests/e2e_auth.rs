//! Identity end to end: bearer tokens from an issuer made inside the test, API keys, sessions bound
//! to their principal, per-tool authorization and limits, through the official SDK clients and the
//! real `warden` binary.

#[path = "support/issuer.rs"]
mod issuer;
mod support;

use issuer::{Alg, Issuer, now};
use serde_json::{Value, json};
use support::*;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// Policies of these tests, beside the shipped tenant-binding and SSRF examples.
const POLICIES: &str = r#"
@id("everyone-reads-demo")
permit (principal, action == Action::"call_tool", resource in Server::"demo") when { resource.class == "read" };
@id("writers")
permit (principal, action == Action::"call_tool", resource in Server::"demo") when { resource.class == "write" };
@id("deletes-need-approval") @require_approval
permit (principal, action == Action::"call_tool", resource == Tool::"demo/delete_note");
@id("upstream")
permit (principal, action == Action::"call_tool", resource in Server::"upstream");
@id("deploy-config-for-ops")
forbid (principal, action == Action::"call_tool", resource == Tool::"demo/get_deploy_config")
unless { principal in Role::"ops" };
@id("admin-tools")
permit (principal is Admin, action == Action::"call_tool", resource) when { resource.admin };
"#;

const UPSTREAM_SECRET: &str = "upstream-secret-4d2f";

struct Setup {
    issuer: Issuer,
    gw: Warden,
    api_key: String,
    _upstream: Option<Process>,
    _dir: TempDir,
}

impl Setup {
    fn start(with_upstream: bool) -> Setup {
        Setup::start_with(with_upstream, "1h")
    }

    fn start_with(with_upstream: bool, refetch_interval: &str) -> Setup {
        let issuer = Issuer::start();
        let dir = TempDir::new("auth");
        std::fs::write(dir.path("test.cedar"), POLICIES).unwrap();
        std::fs::write(dir.path("upstream.secret"), format!("{UPSTREAM_SECRET}\n")).unwrap();
        let example = |f: &str| repo().join("examples/policies").join(f).display().to_string();
        let (api_key, hash) = api_key();
        let (upstream, upstream_config) = if with_upstream {
            let port = free_port();
            let p = Process::listening(
                &venv_bin("python"),
                &[&peer_file("python/hostile_http.py"), &port.to_string()],
                &[],
                port,
            );
            let secret = dir.path("upstream.secret").display().to_string();
            (
                Some(p),
                format!(
                    "[servers.upstream]\ntrusted_content = true\ntrusted_resources = true\nurl = \"http://127.0.0.1:{port}/mcp\"\ncredential = {{ file = {secret:?} }}\n"
                ),
            )
        } else {
            (None, String::new())
        };
        let port = free_port();
        let config = format!(
            r#"[gateway]
listen = "127.0.0.1:{port}"
resource = "http://127.0.0.1:{port}/mcp"

[auth.oauth]
issuer = "{iss}"
jwks_url = "{jwks}"
required_scopes = ["mcp"]
scopes_supported = ["mcp", "notes:write"]
jwks_refetch_interval = "{refetch_interval}"
admin_subjects = ["root"]

[auth.api_keys.ci-bot]
hash = "{hash}"
tenant = "acme"
scopes = ["mcp"]

{demo}trusted = true

{upstream_config}
[tools."demo/add"]
admin = true

[tools."demo/write_note"]
scopes = ["notes:write"]

[tools."demo/fetch_url"]
url_arguments = ["url"]

[tools."demo/echo"]
rate = {{ rate = "5/h", burst = 5 }}

[policy]
files = [{test:?}, {tenant:?}, {ssrf:?}]
"#,
            iss = issuer.issuer,
            jwks = issuer.jwks_url,
            demo = demo_server("demo"),
            test = dir.path("test.cedar").display().to_string(),
            tenant = example("tenant-binding.cedar"),
            ssrf = example("ssrf.cedar"),
        );
        let gw = Warden::start(&config, port);
        Setup { issuer, gw, api_key, _upstream: upstream, _dir: dir }
    }

    fn audience(&self) -> String {
        self.gw.url()
    }

    /// A good RS256 token for `sub` with the `mcp` scope and `extra` claims.
    fn token(&self, sub: &str, extra: Value) -> String {
        let mut extra = extra;
        if extra.get("scope").is_none() {
            extra["scope"] = json!("mcp");
        }
        self.issuer.token(Alg::Rs256, &self.issuer.claims(sub, &self.audience(), extra))
    }

    fn transport(&self, token: &str) -> Value {
        json!({ "type": "http", "url": self.gw.url(), "headers": { "Authorization": format!("Bearer {token}") } })
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn forged_and_misdirected_tokens_are_refused() {
    let s = Setup::start(false);
    let port = s.gw.port;
    let aud = s.audience();
    let iss = &s.issuer;
    let with = |mut c: Value, k: &str, v: Value| {
        c[k] = v;
        c
    };
    let base = iss.claims("alice", &aud, json!({ "scope": "mcp" }));
    let metadata = format!("resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\"");

    for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
        let r = post_json(port, &[("authorization", &bearer(&iss.token(alg, &base)))], INIT);
        assert_eq!(r.status, 200, "{alg:?} is accepted: {r:?}");
    }

    let fetches_before = iss.fetches();
    let refused = [
        ("another audience", iss.token(Alg::Rs256, &with(base.clone(), "aud", json!("https://other.example/mcp")))),
        ("another issuer", iss.token(Alg::Rs256, &with(base.clone(), "iss", json!("https://evil.example")))),
        ("expired", iss.token(Alg::Es256, &with(base.clone(), "exp", json!(now() - 600)))),
        ("not yet valid", iss.token(Alg::EdDsa, &with(base.clone(), "nbf", json!(now() + 600)))),
        ("alg none", iss.alg_none(&base)),
        ("an unknown key id", iss.unknown_kid(&base)),
        ("HS256 signed with the public key", iss.hs256_with_public_key(&base)),
        (
            "no subject",
            iss.token(Alg::Rs256, &{
                let mut c = base.clone();
                c.as_object_mut().unwrap().remove("sub");
                c
            }),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("a tampered payload", {
            let t = iss.token(Alg::Rs256, &base);
            let parts: Vec<&str> = t.split('.').collect();
            let other = iss.token(Alg::Rs256, &with(base.clone(), "sub", json!("root")));
            format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2])
        }),
    ];
    for (what, token) in &refused {
        let r = post_json(port, &[("authorization", &bearer(token))], INIT);
        assert_eq!(r.status, 401, "a token with {what} is refused: {r:?}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer ") && challenge.contains(&metadata), "{what}: {challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert_eq!(r.json()["error"]["code"], -32008, "{what}: {}", r.body);
        assert!(!r.body.contains(token.as_str()), "the token is not echoed");
    }
    assert!(
        iss.fetches() <= fetches_before + 1,
        "an unknown kid refetches the keys at most once per interval ({} fetches)",
        iss.fetches() - fetches_before
    );

    let r = post_json(port, &[], INIT);
    assert_eq!(r.status, 401, "no token: {r:?}");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains(&metadata) && challenge.contains("scope=\"mcp\""), "{challenge}");

    let good = iss.token(Alg::Rs256, &base);
    let r = http_at(
        "POST",
        port,
        &format!("/mcp?access_token={good}"),
        &[("content-type", "application/json"), ("accept", "application/json, text/event-stream")],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 400, "tokens in the query string are refused: {r:?}");
    assert!(r.header("www-authenticate").unwrap_or_default().contains("invalid_request"));

    let r = post_json(port, &[("authorization", &format!("Basic {}", "YWxpY2U6cHc="))], INIT);
    assert_eq!(r.status, 401, "only bearer tokens: {r:?}");

    // The SDKs see the refusal too, and connect with a good token.
    let bad =
        node_client(json!({ "sdk": "v1", "transport": s.transport(&refused[0].1), "ops": [{ "op": "listTools" }] }));
    assert_eq!(bad["connected"], false, "{bad}");
    assert_eq!(bad["connectError"]["code"], 401, "{bad}");
    let v2 = node_client(
        json!({ "sdk": "v2", "era": "modern", "transport": s.transport(&good), "ops": [{ "op": "listTools" }] }),
    );
    assert!(names(ok(&v2, 0), "tools").contains(&"demo__echo".to_owned()), "{v2}");
    let py = python_client(json!({ "era": "legacy", "transport": s.transport(&good), "ops": [{ "op": "listTools" }] }));
    assert!(names(ok(&py, 0), "tools").contains(&"demo__echo".to_owned()), "{py}");

    // Each refusal is an audit row with its reason; no token is in the log.
    let out = std::process::Command::new(warden_bin())
        .args(["audit", "--config"])
        .arg(s.gw.dir.path("warden.toml"))
        .args(["query", "--json", "SELECT reason FROM mcp_audit WHERE decision = 'AUTH_FAILED'"])
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(rows.lines().count() > refused.len(), "{rows}");
    for reason in ["audience:", "issuer:", "expired:", "missing:", "query_token:"] {
        assert!(rows.contains(reason), "{reason} {rows}");
    }
    let read = |f: &str| std::fs::read(s.gw.dir.path(f)).unwrap_or_default();
    let db = String::from_utf8_lossy(&[read("warden-audit.db"), read("warden-audit.db-wal")].concat()).into_owned();
    assert!(refused.iter().all(|(_, t)| !db.contains(t.as_str())) && !db.contains(&good), "no token stored");
}

#[test]
fn an_unknown_key_id_refetches_the_keys_at_most_once_per_interval() {
    let s = Setup::start_with(false, "2s");
    let base = s.issuer.claims("alice", &s.audience(), json!({ "scope": "mcp" }));
    // The keys were loaded at start; wait out the interval so the first unknown kid may refetch.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let before = s.issuer.fetches();
    for _ in 0..5 {
        let r = post_json(s.gw.port, &[("authorization", &bearer(&s.issuer.unknown_kid(&base)))], INIT);
        assert_eq!(r.status, 401);
    }
    assert_eq!(s.issuer.fetches() - before, 1, "five unknown kids, one refetch");
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let r = post_json(s.gw.port, &[("authorization", &bearer(&s.issuer.unknown_kid(&base)))], INIT);
    assert_eq!(r.status, 401);
    assert_eq!(s.issuer.fetches() - before, 2, "and another once the interval has passed");
    let good = s.issuer.token(Alg::EdDsa, &base);
    assert_eq!(post_json(s.gw.port, &[("authorization", &bearer(&good))], INIT).status, 200);
}

#[test]
fn protected_resource_metadata_names_the_issuer() {
    let s = Setup::start(false);
    let port = s.gw.port;
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let r = http_at("GET", port, path, &[], b"");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let doc = r.json();
        assert_eq!(doc["resource"], s.audience());
        assert_eq!(doc["authorization_servers"], json!([s.issuer.issuer]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp", "notes:write"]));
    }
}

#[test]
fn scopes_are_required_and_stepped_up() {
    let s = Setup::start(false);
    let port = s.gw.port;
    let no_scope = s.token("alice", json!({ "scope": "" }));
    let r = post_json(port, &[("authorization", &bearer(&no_scope))], INIT);
    assert_eq!(r.status, 403, "{r:?}");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp\""), "{challenge}");

    // write_note needs notes:write: a 403 naming it, so the client can ask for more.
    let alice = s.token("alice", json!({}));
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "demo__write_note", "arguments": { "title": "t", "body": "b" }, "_meta": envelope() } });
    let modern = [
        ("authorization", bearer(&alice)),
        ("mcp-protocol-version", "2026-07-28".into()),
        ("mcp-method", "tools/call".into()),
        ("mcp-name", "demo__write_note".into()),
    ];
    let h: Vec<(&str, &str)> = modern.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_json(port, &h, &call.to_string());
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("www-authenticate").unwrap().contains("scope=\"notes:write\""), "{r:?}");
    assert_eq!(r.json()["error"]["code"], -32006);

    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
    ]}));
    assert_eq!(err(&out, 0)["code"], 403, "{out}");
    let writer = s.token("alice", json!({ "scope": "mcp notes:write" }));
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&writer), "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
    ]}));
    assert!(text(ok(&out, 0)).contains("Saved"), "{out}");
}

#[test]
fn tenants_are_bound_to_their_own_data() {
    let s = Setup::start(false);
    let alice = s.token("alice", json!({ "tenant": "acme" }));
    let invoice = |tenant: &str| json!({ "op": "callTool", "name": "demo__get_invoice", "arguments": { "tenant_id": tenant, "number": "INV-2001" } });
    for (sdk, era) in [("v1", "legacy"), ("v2", "modern")] {
        let out = node_client(json!({ "sdk": sdk, "era": era, "transport": s.transport(&alice), "ops": [
            { "op": "callTool", "name": "demo__get_invoice", "arguments": { "tenant_id": "acme", "number": "INV-1001" } },
            invoice("globex"),
        ]}));
        assert!(text(ok(&out, 0)).contains("Anvils"), "{sdk}: {out}");
        let e = err(&out, 1);
        assert_eq!(e["code"], -32003, "{sdk}: a cross-tenant call is refused by policy: {out}");
        assert!(e["message"].as_str().unwrap().contains("tenant_id argument must be your own tenant"), "{e}");
        assert_eq!(e["data"]["policies"], json!(["tenant-binding"]));
        assert!(!out.to_string().contains("Hammock"), "globex's invoice never reaches alice");
    }
    // A service account's tenant comes from its key's configuration.
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&s.api_key), "ops": [
        { "op": "callTool", "name": "demo__get_invoice", "arguments": { "tenant_id": "acme", "number": "INV-1002" } },
        invoice("globex"),
    ]}));
    assert!(text(ok(&out, 0)).contains("Rocket skates"), "{out}");
    assert_eq!(err(&out, 1)["code"], -32003);
    let r = post_json(s.gw.port, &[("authorization", &bearer(&format!("{}x", s.api_key)))], INIT);
    assert_eq!(r.status, 401, "a wrong key is refused: {r:?}");
}

#[test]
fn hidden_and_admin_tools_are_neither_listed_nor_callable() {
    let s = Setup::start(false);
    // A role called "admin" in the token is only a role: the admin class comes from configuration.
    let alice = s.token("alice", json!({ "roles": ["admin", "dev"] }));
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__get_deploy_config", "arguments": { "environment": "prod" } },
        { "op": "callTool", "name": "demo__no_such_tool", "arguments": {} },
        { "op": "callTool", "name": "demo__add", "arguments": { "a": 1, "b": 2 } },
    ]}));
    let tools = names(ok(&out, 0), "tools");
    assert!(tools.contains(&"demo__echo".to_owned()), "{tools:?}");
    assert!(!tools.contains(&"demo__get_deploy_config".to_owned()), "hidden by policy: {tools:?}");
    assert!(!tools.contains(&"demo__add".to_owned()), "admin only: {tools:?}");
    let hidden = err(&out, 1);
    let unknown = err(&out, 2);
    let admin = err(&out, 3);
    assert_eq!(hidden["code"], unknown["code"]);
    assert_eq!(admin["code"], unknown["code"]);
    let strip = |e: &Value, name: &str| e["message"].as_str().unwrap().replace(name, "NAME");
    assert_eq!(
        strip(hidden, "demo__get_deploy_config"),
        strip(unknown, "demo__no_such_tool"),
        "a hidden tool looks unknown"
    );
    assert_eq!(strip(admin, "demo__add"), strip(unknown, "demo__no_such_tool"));
    assert!(!out.to_string().contains("AKIA"), "the hidden tool did not run");

    let ops = s.token("olga", json!({ "roles": ["ops"] }));
    let root = s.token("root", json!({}));
    let out = node_client(
        json!({ "sdk": "v2", "era": "modern", "transport": s.transport(&ops), "ops": [{ "op": "listTools" }] }),
    );
    assert!(names(ok(&out, 0), "tools").contains(&"demo__get_deploy_config".to_owned()));
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&root), "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__add", "arguments": { "a": 1, "b": 2 } },
    ]}));
    assert!(names(ok(&out, 0), "tools").contains(&"demo__add".to_owned()));
    assert_eq!(ok(&out, 1)["structuredContent"]["sum"], 3.0);
}

#[test]
fn a_session_answers_only_to_its_principal() {
    let s = Setup::start(false);
    let port = s.gw.port;
    let alice = bearer(&s.token("alice", json!({ "tenant": "acme" })));
    let bob = bearer(&s.token("bob", json!({ "tenant": "acme" })));
    let alice_again = bearer(&s.token("alice", json!({ "tenant": "acme", "jti": "second-token" })));
    let r = post_json(port, &[("authorization", &alice)], INIT);
    let sid = r.header("mcp-session-id").unwrap().to_owned();
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let with = |auth: &str| post_json(port, &[("authorization", auth), ("mcp-session-id", &sid)], list);
    let r = with(&bob);
    assert_eq!(r.status, 404, "another principal presenting the session id gets nothing: {r:?}");
    assert!(!r.body.contains("demo__"));
    assert_eq!(
        http("GET", port, &[("authorization", &bob), ("mcp-session-id", &sid), ("accept", "text/event-stream")], b"")
            .status,
        404
    );
    assert_eq!(http("DELETE", port, &[("authorization", &bob), ("mcp-session-id", &sid)], b"").status, 404);
    assert_eq!(with(&s.api_key_bearer()).status, 404, "nor a service account");
    let r = with(&alice_again);
    assert_eq!(r.status, 200, "alice, with a fresh token, still owns it: {r:?}");
    assert!(r.body.contains("demo__echo"));
}

impl Setup {
    fn api_key_bearer(&self) -> String {
        bearer(&self.api_key)
    }
}

#[test]
fn client_tokens_never_reach_the_upstream() {
    let s = Setup::start(true);
    let alice = s.token("alice", json!({}));
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "upstream__echo", "arguments": {} },
        { "op": "callTool", "name": "upstream__seen_credentials", "arguments": {} },
    ]}));
    let seen: Vec<String> = serde_json::from_str(&text(ok(&out, 2))).unwrap();
    assert!(!seen.is_empty(), "the upstream saw requests");
    let digest = |v: &str| {
        use sha2::Digest;
        format!("authorization header sha256 {}", hex::encode(sha2::Sha256::digest(v.as_bytes())))
    };
    for h in &seen {
        assert_eq!(h, &digest(&format!("Bearer {UPSTREAM_SECRET}")), "only the gateway's own credential: {seen:?}");
        assert_ne!(h, &digest(&format!("Bearer {alice}")));
    }
    let log = s.gw.log();
    assert!(!log.contains(&alice) && !log.contains(UPSTREAM_SECRET), "neither token is logged");
}

#[test]
fn a_server_cannot_pose_as_the_gateway() {
    let s = Setup::start(true);
    let alice = s.token("alice", json!({}));
    let out = node_client(
        json!({ "sdk": "v1", "transport": s.transport(&alice), "capabilities": { "elicitation": { "url": {} } }, "ops": [
            { "op": "callTool", "name": "upstream__fake_refusal", "arguments": {} },
            { "op": "callTool", "name": "upstream__url_elicitation", "arguments": {} },
        ]}),
    );
    // The server's "insufficient scope" is its own error, not a 403 challenge from Warden.
    let fake = err(&out, 0);
    assert_eq!(fake["code"], -32603, "{out}");
    assert_eq!(fake["data"]["serverCode"], -32006, "{out}");
    // Sending the user to a URL is an elicitation, and no policy lets this server elicit.
    let url = err(&out, 1);
    assert_eq!(url["code"], -32003, "{out}");
    assert!(!out.to_string().contains("evil.example"), "the URL never reached the client: {out}");

    // Over raw HTTP: 200 with the remapped error, and no challenge header from the server's data.
    let auth = bearer(&alice);
    let sid = post_json(s.gw.port, &[("authorization", &auth)], INIT).header("mcp-session-id").unwrap().to_owned();
    let call =
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"upstream__fake_refusal","arguments":{}}}"#;
    let r = post_json(s.gw.port, &[("authorization", &auth), ("mcp-session-id", &sid)], call);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("www-authenticate").is_none(), "{r:?}");
    assert_eq!(r.json()["error"]["data"]["serverCode"], -32006, "{r:?}");
}

#[test]
fn rate_limits_hold_under_concurrent_calls() {
    let s = Setup::start(false);
    let alice = s.token("alice", json!({}));
    let echo = |i: usize| json!({ "op": "callTool", "name": "demo__echo", "arguments": { "text": format!("{i}") } });
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        { "op": "parallel", "ops": (0..16).map(echo).collect::<Vec<_>>() },
    ]}));
    let results = ok(&out, 0).as_array().unwrap().clone();
    let allowed = results.iter().filter(|r| r["ok"] == true).count();
    assert_eq!(allowed, 5, "the burst of 5 and no more: {results:?}");
    for r in results.iter().filter(|r| r["ok"] == false) {
        assert_eq!(r["error"]["code"], -32005, "{r}");
        assert!(r["error"]["data"]["retryAfterMs"].as_u64().unwrap() > 0, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("retry after"), "{r}");
    }
    let bob = s.token("bob", json!({}));
    let out = node_client(json!({ "sdk": "v2", "era": "modern", "transport": s.transport(&bob), "ops": [echo(0)] }));
    assert_eq!(text(ok(&out, 0)), "0", "bob has his own bucket: {out}");
}

#[test]
fn urls_to_private_addresses_and_deletes_without_approval_are_refused() {
    let s = Setup::start(false);
    let alice = s.token("alice", json!({}));
    let fetch = |url: &str| json!({ "op": "callTool", "name": "demo__fetch_url", "arguments": { "url": url } });
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        fetch("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        fetch("https://169.254.169.254/"),
        fetch(&format!("https://127.0.0.1:{}/mcp", s.gw.port)),
        fetch("https://[::ffff:10.0.0.1]/"),
        fetch("https://localhost/"),
        fetch("https://2130706433/"),
        fetch("https://1.1.1.1/"),
        { "op": "callTool", "name": "demo__delete_note", "arguments": { "title": "x" } },
    ]}));
    for i in 0..6 {
        let e = err(&out, i);
        assert_eq!(e["code"], -32003, "op {i}: {out}");
        assert_eq!(e["data"]["policies"], json!(["ssrf-guard"]));
    }
    // A public https URL passes the guard (whether this machine can reach it or not).
    let o = &out["ops"][6];
    assert!(o["ok"] == true || o["error"]["code"] != -32003, "{o}");
    let e = err(&out, 7);
    assert_eq!(e["code"], -32013, "held for an operator's approval: {out}");
    assert!(e["message"].as_str().unwrap().contains("approval"), "{e}");
    assert_eq!(e["data"]["reasons"], json!(["policy deletes-need-approval"]));
}

/// The JWKS is fetched through the egress guard: a URL whose name resolves to a loopback address
/// (never listed here) is refused when Warden would connect, and the token with it. `localhost`
/// cannot lead off this machine whatever happens.
#[test]
fn a_jwks_url_leading_to_a_private_address_is_refused_by_the_egress_guard() {
    let issuer = Issuer::start();
    let jwks_port = issuer.jwks_url.rsplit(':').next().and_then(|p| p.split('/').next()).unwrap().to_owned();
    let port = free_port();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\nresource = \"http://127.0.0.1:{port}/mcp\"\n\n\
         [auth.oauth]\nissuer = \"{iss}\"\njwks_url = \"https://localhost:{jwks_port}/jwks.json\"\n\n\
         [egress]\nallow = []\n\n{demo}\n",
        iss = issuer.issuer,
        demo = demo_server("demo"),
    );
    let gw = Warden::start(&config, port);
    let token = issuer.token(Alg::Rs256, &issuer.claims("alice", &gw.url(), json!({ "scope": "mcp" })));
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let auth = format!("Bearer {token}");
    let r = http_at(
        "POST",
        port,
        "/mcp",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ],
        body,
    );
    assert_eq!(r.status, 401, "no keys, no token: {}", r.body);
    assert!(
        gw.wait_log("JWKS request was refused by the egress guard", std::time::Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert!(gw.log().contains("loopback"), "{}", gw.log());
    assert_eq!(issuer.fetches(), 0, "the issuer was never reached");
}

/// The gateway's credential for a server is bound to that server: a server that echoes it back,
/// in a result (text, structured content, a link, a base64 blob), an error or a listed tool's
/// description, has it redacted before any client sees it, and the audit row records where.
#[test]
fn a_server_echoing_the_gateways_credential_never_hands_it_on() {
    let s = Setup::start(true);
    let alice = s.token("alice", json!({}));
    let out = node_client(json!({ "sdk": "v1", "transport": s.transport(&alice), "ops": [
        { "op": "callTool", "name": "upstream__echo_credential", "arguments": {} },
        { "op": "callTool", "name": "upstream__echo_credential_error", "arguments": {} },
        { "op": "listTools" },
    ]}));
    let whole = out.to_string();
    assert!(!whole.contains(UPSTREAM_SECRET), "the credential reached the client: {whole}");
    let result = ok(&out, 0);
    assert!(
        result["content"][0]["text"].as_str().unwrap_or_default().contains("[REDACTED:injected_credential]"),
        "{result}"
    );
    assert_eq!(result["structuredContent"]["token"], "[REDACTED:injected_credential]", "{result}");
    // Sent as a base64 blob; the output guard hands textual payloads on as text.
    assert_eq!(
        result["content"][2]["resource"]["text"], "token=[REDACTED:injected_credential]\n",
        "inside the payload too: {result}"
    );
    let e = err(&out, 1);
    assert!(!e.to_string().contains(UPSTREAM_SECRET), "{e}");
    let listed = ok(&out, 2)["tools"].as_array().unwrap().iter().find(|t| t["name"] == "upstream__lookup").cloned();
    let listed = listed.unwrap_or_else(|| panic!("the lookup tool is listed: {}", ok(&out, 2)));
    assert_eq!(listed["description"], "Looks up a record (listed for [REDACTED:injected_credential])", "{listed}");
    let (code, rows) = warden_cli(
        &s.gw,
        &["audit", "query", "--json", "SELECT findings FROM mcp_audit WHERE tool_name = 'echo_credential'"],
    );
    assert_eq!(code, 0, "{rows}");
    assert!(rows.contains("credential.echoed") && rows.contains("/structuredContent/token"), "{rows}");
    assert!(rows.contains("/content/2/resource/blob"), "the payload's place: {rows}");
    assert!(!rows.contains(UPSTREAM_SECRET), "{rows}");
}
