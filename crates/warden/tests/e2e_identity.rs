//! Upstream identity end to end: a server whose credential is exchanged per caller (RFC 8693)
//! at an authorization server made inside the test, reached through the real `warden` binary
//! with the official TypeScript SDK client. The server records what it receives.

#[path = "support/issuer.rs"]
mod issuer;
mod support;

use issuer::{Alg, EXCHANGE_CLIENT, Issuer, REFUSED_SUBJECT};
use serde_json::{Value, json};
use support::*;

const POLICIES: &str = r#"
@id("tickets")
permit (principal, action, resource in Server::"tickets");
@id("lists")
permit (principal, action, resource);
"#;

struct Setup {
    issuer: Issuer,
    gw: Warden,
    upstream_url: String,
    api_key: String,
    _upstream: Process,
    _dir: TempDir,
}

impl Setup {
    fn start() -> Setup {
        let issuer = Issuer::start();
        let dir = TempDir::new("identity");
        std::fs::write(dir.path("test.cedar"), POLICIES).unwrap();
        std::fs::write(dir.path("exchange.secret"), format!("{}\n", EXCHANGE_CLIENT.1)).unwrap();
        let up = free_port();
        let upstream =
            Process::listening(&venv_bin("python"), &[&peer_file("python/hostile_http.py"), &up.to_string()], &[], up);
        let upstream_url = format!("http://127.0.0.1:{up}/mcp");
        let (api_key, hash) = api_key();
        let port = free_port();
        let config = format!(
            r#"[gateway]
listen = "127.0.0.1:{port}"
resource = "http://127.0.0.1:{port}/mcp"

[auth.oauth]
issuer = "{iss}"
jwks_url = "{jwks}"

[auth.api_keys.ci-bot]
hash = "{hash}"

[egress]
allow = ["127.0.0.1"]

[servers.tickets]
url = "{upstream_url}"
isolation = "session"
trusted_content = true
credential = {{ token_exchange = {{ token_url = "{token_url}", client_id = "{client}", client_secret_file = {secret:?}, scopes = ["tickets.read"] }} }}

[tools."tickets/token_claims"]
scopes = ["tickets.write"]

[policy]
files = [{test:?}]
"#,
            iss = issuer.issuer,
            jwks = issuer.jwks_url,
            token_url = issuer.token_url,
            client = EXCHANGE_CLIENT.0,
            secret = dir.path("exchange.secret").display().to_string(),
            test = dir.path("test.cedar").display().to_string(),
        );
        let gw = Warden::start(&config, port);
        Setup { issuer, gw, upstream_url, api_key, _upstream: upstream, _dir: dir }
    }

    fn token(&self, sub: &str) -> String {
        let claims = self.issuer.claims(sub, &self.gw.url(), json!({ "scope": "tickets.write" }));
        self.issuer.token(Alg::Rs256, &claims)
    }

    fn run(&self, bearer: &str, ops: Value) -> Value {
        let transport =
            json!({ "type": "http", "url": self.gw.url(), "headers": { "Authorization": format!("Bearer {bearer}") } });
        node_client(json!({ "sdk": "v1", "transport": transport, "ops": ops }))
    }

    /// The claims the server saw on a call of `token_claims`, and the digest of the header.
    fn claims(&self, bearer: &str) -> (Value, String) {
        let out = self.run(bearer, json!([{ "op": "callTool", "name": "tickets__token_claims", "arguments": {} }]));
        let seen: Value = serde_json::from_str(&text(ok(&out, 0))).unwrap();
        (seen["claims"].clone(), seen["sha256"].as_str().unwrap().to_owned())
    }

    fn audit(&self, sql: &str) -> Vec<Value> {
        let (code, out) = warden_cli(&self.gw, &["audit", "query", "--json", sql]);
        assert_eq!(code, 0, "{out}");
        out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

fn digest(v: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(v.as_bytes()))
}

#[test]
fn each_caller_reaches_the_server_with_its_own_exchanged_token_never_the_client_token() {
    let s = Setup::start();
    let (alice, bob) = (s.token("alice"), s.token("bob"));

    let (a, a_header) = s.claims(&alice);
    assert_eq!(a["sub"], "alice", "the server sees who acted: {a}");
    assert_eq!(a["aud"], s.upstream_url.as_str(), "audience-bound to the server (RFC 8707): {a}");
    assert_eq!(a["scope"], "tickets.write", "the scopes the tool needs: {a}");
    assert_eq!(a["act"]["sub"], EXCHANGE_CLIENT.0, "Warden is the actor: {a}");
    assert_ne!(a_header, digest(&format!("Bearer {alice}")), "the client's own token is not sent");

    let (b, b_header) = s.claims(&bob);
    assert_eq!(b["sub"], "bob");
    assert_ne!(a["jti"], b["jti"], "two users never share a token");
    assert_ne!(a_header, b_header);

    // A second call of alice's reuses her token while it is fresh.
    let (again, _) = s.claims(&alice);
    assert_eq!(again["jti"], a["jti"], "cached per caller, server and scopes");

    // Every request the server received carried an exchanged token: never a client's.
    let out = s.run(&alice, json!([{ "op": "callTool", "name": "tickets__seen_credentials", "arguments": {} }]));
    let seen: Vec<String> = serde_json::from_str(&text(ok(&out, 0))).unwrap();
    assert!(!seen.is_empty());
    for client in [&alice, &bob] {
        let theirs = format!("authorization header sha256 {}", digest(&format!("Bearer {client}")));
        assert!(!seen.contains(&theirs), "a client token reached the server: {seen:?}");
    }

    // A server echoing the token it was given hands nothing on: every token held is searched for.
    // In a result, in an error (message and data), and in a listed description.
    let out = s.run(
        &alice,
        json!([
            { "op": "callTool", "name": "tickets__echo_credential", "arguments": {} },
            { "op": "callTool", "name": "tickets__echo_credential_error", "arguments": {} },
            { "op": "listTools" },
        ]),
    );
    let echoed = ok(&out, 0).to_string();
    assert!(echoed.contains("[REDACTED:injected_credential]") && !echoed.contains("eyJ"), "{echoed}");
    // (An error's message is scrubbed first: the bearer value is gone by then, under that name.)
    let error = out["ops"][1].to_string();
    assert!(error.contains("[REDACTED:") && !error.contains("eyJ"), "{error}");
    let listed = ok(&out, 2)["tools"].as_array().unwrap().iter().find(|t| t["name"] == "tickets__lookup").cloned();
    let listed = listed.unwrap_or_else(|| panic!("the lookup tool is listed: {}", ok(&out, 2))).to_string();
    assert!(listed.contains("[REDACTED:injected_credential]") && !listed.contains("eyJ"), "{listed}");

    // The issuer saw exchanges for the server's own scopes (initialize, lists) and the tool's.
    let exchanges = s.issuer.exchanges();
    let of = |sub: &str, scope: &str| exchanges.iter().filter(|e| e["sub"] == sub && e["scope"] == scope).count();
    assert!(of("alice", "tickets.read") >= 1 && of("alice", "tickets.write") == 1, "{exchanges:?}");
    assert!(exchanges.iter().all(|e| e["resource"] == s.upstream_url.as_str()), "{exchanges:?}");

    // The audit log names each exchanged token by its jti, never the token itself.
    let issued = s.audit("SELECT actor_id, decision, reason FROM mcp_audit WHERE event = 'token_exchange'");
    let jti = a["jti"].as_str().unwrap();
    assert!(
        issued
            .iter()
            .any(|r| r["actor_id"] == "alice" && r["reason"].as_str().unwrap().contains(&format!("jti:{jti}"))),
        "{issued:?}"
    );
    let calls = s.audit("SELECT actor_id, findings FROM mcp_audit WHERE event = 'call' AND tool_name = 'token_claims'");
    assert!(
        calls.iter().any(|r| r["actor_id"] == "alice" && r["findings"].to_string().contains(&format!("jti:{jti}"))),
        "each call row names the token it used: {calls:?}"
    );
    let log = s.gw.log();
    assert!(!log.contains(&alice) && !log.contains(&bob) && !log.contains(EXCHANGE_CLIENT.1), "no token is logged");
}

#[test]
fn an_expired_exchanged_token_is_replaced() {
    let s = Setup::start();
    s.issuer.set_exchange_lifetime(3);
    let alice = s.token("alice");
    let (first, _) = s.claims(&alice);
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let (second, _) = s.claims(&alice);
    assert_eq!(second["sub"], "alice");
    assert_ne!(first["jti"], second["jti"], "a token near its expiry is exchanged again");
    assert!(second["exp"].as_i64() > first["exp"].as_i64());
}

#[test]
fn a_caller_whose_token_cannot_be_exchanged_is_refused_and_the_server_reached_by_no_one() {
    let s = Setup::start();
    let mallory = s.token(REFUSED_SUBJECT);
    let out = s.run(&mallory, json!([{ "op": "callTool", "name": "tickets__token_claims", "arguments": {} }]));
    let e = err(&out, 0);
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("token exchange") && message.contains("invalid_grant"), "{e}");
    assert!(!e.to_string().contains(&mallory), "the authorization server's text (quoting the token) is not relayed");

    // An API key is no OAuth token: nothing to exchange, nothing sent.
    let out = s.run(&s.api_key, json!([{ "op": "callTool", "name": "tickets__token_claims", "arguments": {} }]));
    assert!(err(&out, 0)["message"].as_str().unwrap_or_default().contains("OAuth access token"), "{out}");

    let alice = s.token("alice");
    let out = s.run(&alice, json!([{ "op": "callTool", "name": "tickets__seen_credentials", "arguments": {} }]));
    let seen: Vec<String> = serde_json::from_str(&text(ok(&out, 0))).unwrap();
    for h in &seen {
        assert_ne!(h, &format!("authorization header sha256 {}", digest(&format!("Bearer {mallory}"))));
    }
    let denied = s.audit("SELECT actor_id FROM mcp_audit WHERE event = 'token_exchange' AND decision = 'DENY'");
    assert!(denied.iter().any(|r| r["actor_id"] == REFUSED_SUBJECT), "{denied:?}");
}

#[test]
fn revocation_and_containment_drop_exchanged_tokens() {
    let s = Setup::start();
    let (alice, bob) = (s.token("alice"), s.token("bob"));
    let (a1, _) = s.claims(&alice);
    let (b1, _) = s.claims(&bob);

    let (code, out) = warden_cli(&s.gw, &["credentials", "revoke", "tickets", "--user", "alice", "--by", "ops"]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (a2, _) = s.claims(&alice);
    let (b2, _) = s.claims(&bob);
    assert_ne!(a1["jti"], a2["jti"], "alice's token was revoked: a new exchange");
    assert_eq!(b1["jti"], b2["jti"], "bob's was not");

    let (code, out) = warden_cli(&s.gw, &["contain", "tickets", "--by", "ops"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = warden_cli(&s.gw, &["release", "tickets", "--by", "ops"]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (b3, _) = s.claims(&bob);
    assert_ne!(b2["jti"], b3["jti"], "containment revoked every caller's token for the server");

    let rows = s.audit("SELECT actor_id, server_name, reason FROM mcp_audit WHERE event = 'credentials_revoked'");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["actor_id"] == "ops" && r["server_name"] == "tickets"), "{rows:?}");
}
