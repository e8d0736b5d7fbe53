//! Warden as an OAuth client of servers that require their own authorization, end to end: each
//! caller authorizes each server once through a link Warden gives (a URL elicitation the official
//! TypeScript SDK client receives), in a browser played by the test, at an authorization server
//! made inside the test; then the caller's calls carry the caller's token. Confused-deputy and
//! hostile-metadata attacks are each refused.

#[path = "support/issuer.rs"]
mod issuer;
mod support;

use issuer::{Alg, Issuer, OAUTH_CLIENT, SIGN_IN_CLIENT};
use serde_json::{Value, json};
use support::*;

struct Setup {
    issuer: Issuer,
    gw: Warden,
    upstream: u16,
    _upstream: Process,
    _dir: TempDir,
}

const SERVERS: &[(&str, &str, &str)] = &[
    // name, path at the upstream, pinned authorization server variant ("-": discovered)
    ("crm", "/mcp", "-"),
    ("js", "/js/mcp", "-"),
    ("meta", "/meta/mcp", "-"),
    ("redir", "/redirect/mcp", "-"),
    ("asjs", "/mcp", "/js"),
    ("asprivate", "/mcp", "/private"),
    ("asredirect", "/mcp", "/redirect"),
    ("nopkce", "/mcp", "/nopkce"),
];

impl Setup {
    fn start() -> Setup {
        let issuer = Issuer::start();
        let dir = TempDir::new("upstream-oauth");
        std::fs::write(dir.path("client.secret"), OAUTH_CLIENT.1).unwrap();
        std::fs::write(dir.path("credential.key"), "5f".repeat(32)).unwrap();
        std::fs::write(dir.path("sign-in.secret"), SIGN_IN_CLIENT.1).unwrap();
        let up = free_port();
        let upstream = Process::listening(
            &venv_bin("python"),
            &[&peer_file("python/hostile_http.py"), &up.to_string()],
            &[("HOSTILE_AUTH_SERVER", issuer.issuer.clone())],
            up,
        );
        let port = free_port();
        let mut servers = String::new();
        for (name, path, pinned) in SERVERS {
            let pin = if *pinned == "-" {
                String::new()
            } else {
                format!(", authorization_server = \"{}{pinned}\"", issuer.issuer)
            };
            servers.push_str(&format!(
                "[servers.{name}]\nurl = \"http://127.0.0.1:{up}{path}\"\nisolation = \"session\"\ntrusted_content = true\n\
                 credential = {{ oauth = {{ client_id = \"{id}\", client_secret_file = {secret:?}, scopes = [\"crm.read\"]{pin} }} }}\n\n",
                id = OAUTH_CLIENT.0,
                secret = dir.path("client.secret").display().to_string(),
            ));
        }
        let config = format!(
            r#"[gateway]
listen = "127.0.0.1:{port}"
resource = "http://127.0.0.1:{port}/mcp"

[auth.oauth]
issuer = "{iss}"
jwks_url = "{jwks}"
admin_subjects = ["root"]

[admin]
listen = "127.0.0.1:0"

[egress]
allow = ["127.0.0.1"]

[credentials]
key_file = {key:?}
sign_in = {{ client_id = "{sign_in}", client_secret_file = {sign_in_secret:?} }}

{servers}"#,
            iss = issuer.issuer,
            jwks = issuer.jwks_url,
            key = dir.path("credential.key").display().to_string(),
            sign_in = SIGN_IN_CLIENT.0,
            sign_in_secret = dir.path("sign-in.secret").display().to_string(),
        );
        let gw = Warden::start(&config, port);
        Setup { issuer, gw, upstream: up, _upstream: upstream, _dir: dir }
    }

    fn token(&self, sub: &str) -> String {
        self.issuer.token(Alg::Rs256, &self.issuer.claims(sub, &self.gw.url(), json!({})))
    }

    fn call(&self, bearer: &str, tool: &str) -> Value {
        let transport =
            json!({ "type": "http", "url": self.gw.url(), "headers": { "Authorization": format!("Bearer {bearer}") } });
        let out = node_client(json!({ "sdk": "v1", "transport": transport, "ops": [
            { "op": "callTool", "name": tool, "arguments": {} },
        ]}));
        out["ops"][0].clone()
    }

    /// The link a caller is given for `server`: the URL elicitation of a refused call.
    fn link(&self, bearer: &str, server: &str) -> String {
        let op = self.call(bearer, &format!("{server}__token_claims"));
        let e = &op["error"];
        assert_eq!(e["code"], -32042, "a URL elicitation: {op}");
        let url = e["data"]["elicitations"][0]["url"].as_str().unwrap_or_else(|| panic!("{op}")).to_owned();
        assert!(url.starts_with(&format!("http://127.0.0.1:{}/oauth/start/", self.gw.port)), "{url}");
        url
    }

    /// The claims of the token `server` received on a call of `bearer`'s.
    fn claims(&self, bearer: &str, server: &str) -> Value {
        let op = self.call(bearer, &format!("{server}__token_claims"));
        let text = op["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{op}"));
        serde_json::from_str::<Value>(text).unwrap()["claims"].clone()
    }

    fn audit(&self, sql: &str) -> Vec<Value> {
        let (code, out) = warden_cli(&self.gw, &["audit", "query", "--json", sql]);
        assert_eq!(code, 0, "{out}");
        out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

/// A browser: its cookies for the gateway, and the user signed in at the authorization server
/// (which here is both the gateway's issuer and the servers').
struct Browser {
    user: &'static str,
    cookies: Vec<(String, String)>,
}

fn split(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("a loopback URL: {url}"));
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

impl Browser {
    fn new(user: &'static str) -> Browser {
        Browser { user, cookies: vec![] }
    }

    fn get(&mut self, url: &str) -> RawResponse {
        let (port, path) = split(url);
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut headers = vec![("x-test-user", self.user)];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        let r = http_at("GET", port, &path, &headers, b"");
        if let Some(c) = r.header("set-cookie") {
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
            let (k, v) = c.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            self.cookies.push((k.to_owned(), v.to_owned()));
        }
        r
    }

    /// Follows redirects from `url` until the next one would be `path` on the gateway (not
    /// visited: returned), or a page answers (returned as `Err`).
    fn until(&mut self, url: &str, path: &str) -> Result<String, RawResponse> {
        let mut next = url.to_owned();
        for _ in 0..8 {
            let r = self.get(&next);
            if r.status != 302 {
                return Err(r);
            }
            next = r.header("location").unwrap().to_owned();
            if split(&next).1.starts_with(path) {
                return Ok(next);
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Opens the link and signs in: the server's authorization URL, not yet visited.
    fn signed_in(&mut self, link: &str) -> String {
        let back = self.until(link, "/oauth/signed-in").unwrap_or_else(|r| panic!("sign-in: {r:?}"));
        let r = self.get(&back);
        assert_eq!(r.status, 302, "{r:?}");
        r.header("location").unwrap().to_owned()
    }

    /// Signs in at the authorization endpoint: the callback URL it sends the browser to.
    fn consent(&mut self, authorize: &str) -> String {
        let r = self.get(authorize);
        assert_eq!(r.status, 302, "{r:?}");
        r.header("location").unwrap().to_owned()
    }

    /// Opens the link, signs in and consents: the callback URL, not yet visited.
    fn callback_of(&mut self, link: &str) -> String {
        let authorize = self.signed_in(link);
        self.consent(&authorize)
    }

    /// The whole flow from a link; the callback's answer.
    fn authorize(&mut self, link: &str) -> RawResponse {
        let callback = self.callback_of(link);
        self.get(&callback)
    }
}

#[test]
fn each_caller_authorizes_each_server_once_and_calls_carry_that_callers_token() {
    let s = Setup::start();
    let (alice, bob) = (s.token("alice"), s.token("bob"));
    let link = s.link(&alice, "crm");

    // A link may be opened again (a preview bot does not use it up) until someone signs in on it.
    let mut bot = Browser::new("");
    assert_eq!(bot.get(&link).status, 302);
    let mut browser = Browser::new("alice");
    let authorize = browser.signed_in(&link);
    for part in [
        "http://127.0.0.1:",
        "/authorize?response_type=code",
        &format!("client_id={}", OAUTH_CLIENT.0),
        "code_challenge_method=S256",
        &format!("redirect_uri=http%3A%2F%2F127.0.0.1%3A{}%2Foauth%2Fcallback", s.gw.port),
        &format!("resource=http%3A%2F%2F127.0.0.1%3A{}%2Fmcp", s.upstream),
        "state=",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    let again = Browser::new("alice").get(&link);
    assert_eq!(again.status, 400, "once signed in on, a link is used: {again:?}");
    let callback = browser.consent(&authorize);
    let done = browser.get(&callback);
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("Warden is authorized"));
    assert_eq!(done.header("referrer-policy"), Some("no-referrer"));

    let claims = s.claims(&alice, "crm");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["aud"], format!("http://127.0.0.1:{}/mcp", s.upstream));
    assert_eq!(claims["client_id"], OAUTH_CLIENT.0);
    // A server echoing the granted token hands nothing on, in a result or an error.
    for tool in ["crm__echo_credential", "crm__echo_credential_error"] {
        let echoed = s.call(&alice, tool).to_string();
        assert!(echoed.contains("[REDACTED:") && !echoed.contains("eyJ"), "{tool}: {echoed}");
    }

    // Bob never gets alice's grant: he is asked for his own.
    let bob_link = s.link(&bob, "crm");
    assert_ne!(bob_link, link);
    assert_eq!(Browser::new("bob").authorize(&bob_link).status, 200);
    let bob_claims = s.claims(&bob, "crm");
    assert_eq!(bob_claims["sub"], "bob");
    assert_ne!(bob_claims["jti"], claims["jti"]);

    // Stored sealed: the database does not hold the token.
    let rows = s.audit("SELECT event, actor_id, decision, reason FROM mcp_audit WHERE event = 'upstream_authorized'");
    assert_eq!(rows.iter().filter(|r| r["decision"] == "ALLOW").count(), 2, "{rows:?}");
    let mut db = std::fs::read(s.gw.dir.path("warden-audit.db")).unwrap();
    db.extend(std::fs::read(s.gw.dir.path("warden-audit.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    assert!(db.contains("mcp_upstream_tokens"), "the grant table is in this file");
    for needle in ["eyJ", "r-0", "r-1", "\"refresh_token\""] {
        let at = db.find(needle).map(|i| db[i.saturating_sub(150)..(i + 60).min(db.len())].to_owned());
        assert!(at.is_none(), "no clear token at rest ({needle}): {at:?}");
    }

    // An expired access token is refreshed with the refresh token, not a new consent.
    s.issuer.set_exchange_lifetime(3);
    let mut carol = Browser::new("carol");
    let carol_token = s.token("carol");
    assert_eq!(carol.authorize(&s.link(&carol_token, "crm")).status, 200);
    let first = s.claims(&carol_token, "crm");
    std::thread::sleep(std::time::Duration::from_millis(3300));
    let second = s.claims(&carol_token, "crm");
    assert_ne!(first["jti"], second["jti"]);
    assert!(
        s.issuer.grants().iter().any(|g| g["grant"] == "refresh_token" && g["sub"] == "carol"),
        "{:?}",
        s.issuer.grants()
    );

    // Containment revokes the server's grants: after release, alice must authorize again.
    assert_eq!(warden_cli(&s.gw, &["contain", "crm", "--by", "ops"]).0, 0);
    assert_eq!(warden_cli(&s.gw, &["release", "crm", "--by", "ops"]).0, 0);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(s.call(&alice, "crm__token_claims")["error"]["code"], -32042, "a new authorization is needed");
    // And revoking one user's credentials leaves the others'.
    assert_eq!(Browser::new("bob").authorize(&s.link(&bob, "crm")).status, 200);
    let (code, out) = warden_cli(&s.gw, &["credentials", "revoke", "crm", "--user", "carol"]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(s.claims(&bob, "crm")["sub"], "bob");
    assert_eq!(s.call(&carol_token, "crm__token_claims")["error"]["code"], -32042);
}

#[test]
fn another_browser_a_replayed_code_an_altered_redirect_or_a_wrong_issuer_is_refused() {
    let s = Setup::start();
    let (alice, bob) = (s.token("alice"), s.token("bob"));

    // State swapped: bob's browser brings alice's callback (code and state) with its own cookie.
    let alice_link = s.link(&alice, "crm");
    let mut a = Browser::new("alice");
    let alice_callback = a.callback_of(&alice_link);
    let mut b = Browser::new("bob");
    let bob_link = s.link(&bob, "crm");
    b.signed_in(&bob_link);
    let swapped = b.get(&alice_callback);
    assert_eq!(swapped.status, 400, "{swapped:?}");
    assert!(swapped.body.contains("another browser"), "{}", swapped.body);
    // A browser with no cookie at all fares no better.
    assert_eq!(Browser::new("bob").get(&alice_callback).status, 400);
    assert_eq!(s.call(&bob, "crm__token_claims")["error"]["code"], -32042, "bob got no grant");

    // Alice's own browser completes; replaying the same callback is refused.
    assert_eq!(a.get(&alice_callback).status, 200);
    let replayed = a.get(&alice_callback);
    assert_eq!(replayed.status, 400);
    assert!(replayed.body.contains("unknown or already used state"), "{}", replayed.body);
    assert_eq!(s.claims(&alice, "crm")["sub"], "alice");

    // Redirect URI altered on the way to the authorization server: the code is bound to it, and
    // Warden redeems it with its own exact redirect URI, which the server refuses.
    let carol_token = s.token("carol");
    let mut c = Browser::new("carol");
    let authorize = c.signed_in(&s.link(&carol_token, "crm"));
    let altered = authorize.replace("%2Foauth%2Fcallback", "%2Foauth%2Fcallback%3Fnext%3D1");
    assert_ne!(altered, authorize);
    let callback = c.consent(&altered);
    let refused = c.get(&callback);
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("not redeemed"), "{}", refused.body);
    assert!(s.issuer.grants().iter().any(|g| g["refused"] == "invalid_grant: redirect_uri"));

    // Issuer mismatched (RFC 9207): a response claiming another issuer is refused.
    let mut c = Browser::new("carol");
    let callback = c.callback_of(&s.link(&carol_token, "crm"));
    let forged = callback.split("&iss=").next().unwrap().to_owned() + "&iss=https%3A%2F%2Fevil.example";
    let refused = c.get(&forged);
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("iss"), "{}", refused.body);
    // ... and so is one without iss, which this issuer always sends.
    let mut c = Browser::new("carol");
    let callback = c.callback_of(&s.link(&carol_token, "crm"));
    assert_eq!(c.get(callback.split("&iss=").next().unwrap()).status, 400);
    assert_eq!(s.call(&carol_token, "crm__token_claims")["error"]["code"], -32042, "carol got no grant");

    std::thread::sleep(std::time::Duration::from_millis(300));
    let refusals =
        s.audit("SELECT actor_id, reason FROM mcp_audit WHERE event = 'upstream_authorized' AND decision = 'DENY'");
    assert!(refusals.len() >= 6, "every refusal is audited: {refusals:?}");
}

#[test]
fn hostile_metadata_never_sends_a_browser_or_a_request_anywhere_unsafe() {
    let s = Setup::start();
    let alice = s.token("alice");
    for (server, expect) in [
        ("js", "scheme"),
        ("meta", "loopback"),
        ("redir", "redirect"),
        ("asjs", "authorization_endpoint"),
        ("asprivate", "token_endpoint"),
        ("asredirect", "metadata"),
        ("nopkce", "S256"),
    ] {
        let link = s.link(&alice, server);
        let mut browser = Browser::new("alice");
        let back = browser.until(&link, "/oauth/signed-in").unwrap_or_else(|r| panic!("{server}: {r:?}"));
        let r = browser.get(&back);
        assert_eq!(r.status, 400, "{server}: {r:?}");
        assert!(r.header("location").is_none(), "{server}: the browser is sent nowhere");
        assert!(r.body.contains(expect), "{server}: {}", r.body);
        assert!(!r.body.contains("javascript:") && !r.body.contains("169.254"), "{server}: {}", r.body);
    }
    let sql = "SELECT server_name FROM mcp_audit WHERE event = 'upstream_authorized' AND decision = 'DENY' AND actor_id = 'alice'";
    // Rows are committed in batches: the last may take a moment.
    let mut refused = s.audit(sql);
    for _ in 0..20 {
        if refused.len() == 7 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        refused = s.audit(sql);
    }
    assert_eq!(refused.len(), 7, "each refusal is audited: {refused:?}");
}

#[test]
fn the_admin_api_gives_a_caller_its_own_link_and_revokes_grants() {
    let s = Setup::start();
    let (dave, root) = (s.token("dave"), s.token("root"));
    let admin = |path: &str, bearer: &str, body: &str| {
        let auth = format!("Bearer {bearer}");
        let r = http_at(
            "POST",
            s.gw.admin_port(),
            path,
            &[("authorization", &auth), ("content-type", "application/json")],
            body.as_bytes(),
        );
        (r.status, serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null))
    };
    let (status, body) = admin("/v1/servers/crm/authorize", &dave, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorized"], false);
    let link = body["url"].as_str().unwrap().to_owned();
    assert_eq!(Browser::new("dave").authorize(&link).status, 200);
    let (_, body) = admin("/v1/servers/crm/authorize", &dave, "");
    assert_eq!(body["authorized"], true, "{body}");
    assert_eq!(s.claims(&dave, "crm")["sub"], "dave");

    // Revoking is for operators only; then dave must authorize again.
    let (status, _) = admin("/v1/servers/crm/credentials/revoke", &dave, r#"{"user":"dave"}"#);
    assert_eq!(status, 403);
    let (status, body) = admin("/v1/servers/crm/credentials/revoke", &root, r#"{"user":"dave"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grantsDeleted"], 1);
    assert_eq!(s.call(&dave, "crm__token_claims")["error"]["code"], -32042);
    let rows = s.audit("SELECT actor_id, reason FROM mcp_audit WHERE event = 'credentials_revoked'");
    assert!(rows.iter().any(|r| r["actor_id"] == "root" && r["reason"].as_str().unwrap().contains("dave")), "{rows:?}");
}

#[test]
fn a_link_sent_to_another_user_is_useless_to_them() {
    let s = Setup::start();
    let (mallory, alice) = (s.token("mallory"), s.token("alice"));
    // Mallory asks for her own link and gets alice to open it: alice signs in as alice.
    let link = s.link(&mallory, "crm");
    let mut alices_browser = Browser::new("alice");
    let back = alices_browser.until(&link, "/oauth/signed-in").unwrap();
    let refused = alices_browser.get(&back);
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("made for another user"), "{}", refused.body);
    assert!(refused.header("location").is_none(), "alice is never sent to consent for mallory");
    assert_eq!(s.call(&mallory, "crm__token_claims")["error"]["code"], -32042, "mallory got nothing");
    assert!(
        s.issuer.grants().iter().all(|g| g["client"] != OAUTH_CLIENT.0),
        "no code of the server's was even asked for: {:?}",
        s.issuer.grants()
    );
    // The link is spent; alice's own works.
    assert_eq!(Browser::new("mallory").get(&link).status, 400);
    assert_eq!(Browser::new("alice").authorize(&s.link(&alice, "crm")).status, 200);
    assert_eq!(s.claims(&alice, "crm")["sub"], "alice");
}
