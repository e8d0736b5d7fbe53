//! An OAuth token issuer made inside the test: RSA, P-256 and Ed25519 keys generated now, a JWKS
//! served over HTTP (counting its fetches), tokens minted on demand, good and bad, and a token
//! endpoint exchanging its own tokens for tokens bound to one server (RFC 8693).

// Each test binary uses part of it.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The signing algorithms the issuer has keys for.
#[derive(Debug, Clone, Copy)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

struct Key {
    alg: Algorithm,
    encoding: EncodingKey,
}

/// The client Warden is registered as for token exchange.
pub const EXCHANGE_CLIENT: (&str, &str) = ("warden-gw", "gw-secret-7f3a");

/// The client Warden is registered as for authorization code grants (its redirect URI is given
/// on each request and bound to the code).
pub const OAUTH_CLIENT: (&str, &str) = ("warden-oauth", "oauth-secret-19c2");

/// The client Warden signs browsers in with (its own sign-in, for consent links).
pub const SIGN_IN_CLIENT: (&str, &str) = ("warden-signin", "signin-secret-5e0b");

/// The client the operator console signs operators in with (OpenID Connect).
pub const CONSOLE_CLIENT: (&str, &str) = ("warden-console", "console-secret-8d21");

/// The clients registered for authorization code grants.
const CODE_CLIENTS: [(&str, &str); 3] = [OAUTH_CLIENT, SIGN_IN_CLIENT, CONSOLE_CLIENT];

/// A subject whose tokens the issuer refuses to exchange; its refusal's description quotes the
/// token sent, as a careless authorization server might.
pub const REFUSED_SUBJECT: &str = "mallory";

/// A running issuer: JWKS, and a token endpoint that exchanges its own tokens (RFC 8693).
pub struct Issuer {
    /// The `iss` of its tokens.
    pub issuer: String,
    /// Where its JWKS is served.
    pub jwks_url: String,
    /// Its token endpoint.
    pub token_url: String,
    keys: Vec<Key>,
    rsa_public_pem: String,
    fetches: Arc<AtomicUsize>,
    exchanges: Arc<Mutex<Vec<Value>>>,
    grants: Arc<Mutex<Vec<Value>>>,
    lifetime: Arc<AtomicU64>,
}

/// What the issuer's HTTP thread holds.
struct AsServer {
    issuer: String,
    jwks: String,
    fetches: Arc<AtomicUsize>,
    exchanges: Arc<Mutex<Vec<Value>>>,
    lifetime: Arc<AtomicU64>,
    signing: EncodingKey,
    verifying: DecodingKey,
    minted: AtomicUsize,
    grants: Arc<Mutex<Vec<Value>>>,
    codes: Mutex<std::collections::HashMap<String, Value>>,
    refreshes: Mutex<std::collections::HashMap<String, Value>>,
}

/// One HTTP request, as the issuer reads it.
struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn read(s: &mut std::net::TcpStream) -> Option<HttpRequest> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&got[..end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = got[end + 4..].to_vec();
        while body.len() < len {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        Some(HttpRequest { method, path, headers, body })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn form(&self) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

fn respond(s: &mut std::net::TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl AsServer {
    fn serve(&self, mut s: std::net::TcpStream) {
        let Some(req) = HttpRequest::read(&mut s) else { return };
        let path = req.path.split('?').next().unwrap_or_default().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("POST", "/token") => {
                let (status, body) = match req.form().get("grant_type").map(String::as_str) {
                    Some("authorization_code" | "refresh_token") => self.grant(&req),
                    _ => self.token(&req),
                };
                respond(&mut s, status, &body.to_string());
            }
            // A browser without the test header signs in by filling the login form.
            ("GET", "/authorize") if req.header("x-test-user").is_none() => {
                let query = req.path.split_once('?').map(|x| x.1).unwrap_or_default().to_owned();
                let params: Vec<(String, String)> =
                    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
                let hidden: String = params
                    .iter()
                    .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
                    .collect();
                let page = format!(
                    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Test identity provider</title></head><body>\
                     <h1>Sign in</h1><form method=\"post\" action=\"/authorize\">{hidden}\
                     <label>User <input id=\"user\" name=\"user\"></label> <button id=\"signin\" type=\"submit\">Sign in</button>\
                     </form></body></html>"
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
            }
            ("POST", "/authorize") => {
                let form = req.form();
                let user = form.get("user").cloned().unwrap_or_default();
                let (status, location) = self.issue_code(&form, &user);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            ("GET", "/authorize") => {
                let (status, location) = self.authorize(&req);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            ("GET", p) if p.starts_with("/.well-known/oauth-authorization-server") => {
                let variant = p.trim_start_matches("/.well-known/oauth-authorization-server");
                if variant == "/redirect" {
                    let _ = write!(
                        s,
                        "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    return;
                }
                respond(&mut s, "200 OK", &self.metadata(variant).to_string());
            }
            ("GET", "/jwks.json") => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                respond(&mut s, "200 OK", &self.jwks);
            }
            _ => respond(&mut s, "404 Not Found", "{}"),
        }
    }

    /// RFC 8414 metadata; the variants (`/js`, `/private`, `/nopkce`) are hostile.
    fn metadata(&self, variant: &str) -> Value {
        let issuer = format!("{}{variant}", self.issuer);
        let mut m = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
        });
        match variant {
            "/js" => m["authorization_endpoint"] = json!("javascript:alert(document.cookie)//"),
            "/private" => m["token_endpoint"] = json!("http://169.254.169.254/token"),
            "/nopkce" => m["code_challenge_methods_supported"] = json!(["plain"]),
            _ => {}
        }
        m
    }

    /// The authorization endpoint: the browser's user is named by `x-test-user` (its sign-in
    /// here); the code is bound to the client, redirect URI, PKCE challenge and resource.
    fn authorize(&self, req: &HttpRequest) -> (&'static str, String) {
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(req.path.split_once('?').map(|x| x.1).unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let user = req.header("x-test-user").unwrap_or_default().to_owned();
        self.issue_code(&q, &user)
    }

    /// A code for `user`, bound to the request's client, redirect URI, PKCE challenge, resource
    /// and (OpenID Connect) nonce; the redirect back to the client.
    fn issue_code(&self, q: &std::collections::HashMap<String, String>, user: &str) -> (&'static str, String) {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        if !CODE_CLIENTS.iter().any(|c| c.0 == get("client_id")) || get("response_type") != "code" || user.is_empty() {
            return ("400 Bad Request", String::new());
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
            return ("400 Bad Request", String::new());
        }
        let code = format!("c-{}", self.minted.fetch_add(1, Ordering::SeqCst));
        self.codes.lock().unwrap().insert(
            code.clone(),
            json!({ "client_id": get("client_id"), "redirect_uri": get("redirect_uri"), "challenge": get("code_challenge"), "sub": user,
                    "resource": get("resource"), "scope": get("scope"), "nonce": get("nonce"), "used": false }),
        );
        let redirect = get("redirect_uri");
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        (
            "302 Found",
            format!("{redirect}{sep}code={}&state={}&iss={}", enc(&code), enc(&get("state")), enc(&self.issuer)),
        )
    }

    fn grant_refused(&self, error: &str) -> (&'static str, Value) {
        self.grants.lock().unwrap().push(json!({ "refused": error }));
        ("400 Bad Request", json!({ "error": error }))
    }

    /// Authorization code (with PKCE) and refresh token grants for the registered OAuth client.
    fn grant(&self, req: &HttpRequest) -> (&'static str, Value) {
        let client = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let Some(client_id) =
            CODE_CLIENTS.iter().find(|c| client.as_deref() == Some(&format!("{}:{}", c.0, c.1))).map(|c| c.0)
        else {
            return self.grant_refused("invalid_client");
        };
        let form = req.form();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let mut nonce = None;
        let (sub, resource, scope, kind) = if get("grant_type") == "authorization_code" {
            let mut codes = self.codes.lock().unwrap();
            let Some(c) = codes.get_mut(&get("code")) else { return self.grant_refused("invalid_grant") };
            if c["used"] == true {
                drop(codes);
                return self.grant_refused("invalid_grant: code replayed");
            }
            c["used"] = json!(true);
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(<sha2::Sha256 as sha2::Digest>::digest(get("code_verifier").as_bytes()));
            if c["client_id"] != client_id {
                drop(codes);
                return self.grant_refused("invalid_grant: another client's code");
            }
            let (bad_redirect, bad_pkce, bad_resource) = (
                c["redirect_uri"] != get("redirect_uri"),
                c["challenge"] != challenge,
                c["resource"] != get("resource"),
            );
            let c = c.clone();
            drop(codes);
            nonce = c["nonce"].as_str().map(str::to_owned);
            if bad_redirect {
                return self.grant_refused("invalid_grant: redirect_uri");
            }
            if bad_pkce {
                return self.grant_refused("invalid_grant: code_verifier");
            }
            if bad_resource {
                return self.grant_refused("invalid_target");
            }
            (
                c["sub"].as_str().unwrap().to_owned(),
                get("resource"),
                c["scope"].as_str().unwrap().to_owned(),
                "authorization_code",
            )
        } else {
            let Some(r) = self.refreshes.lock().unwrap().get(&get("refresh_token")).cloned() else {
                return self.grant_refused("invalid_grant");
            };
            (
                r["sub"].as_str().unwrap().to_owned(),
                r["resource"].as_str().unwrap().to_owned(),
                r["scope"].as_str().unwrap().to_owned(),
                "refresh_token",
            )
        };
        let n = self.minted.fetch_add(1, Ordering::SeqCst);
        let jti = format!("g-{n}");
        let lifetime = self.lifetime.load(Ordering::SeqCst);
        let claims = json!({ "iss": self.issuer, "sub": sub, "aud": resource, "scope": scope, "jti": jti,
                             "iat": now(), "exp": now() + lifetime as i64, "client_id": client_id });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).expect("sign");
        let refresh = format!("r-{n}");
        self.refreshes
            .lock()
            .unwrap()
            .insert(refresh.clone(), json!({ "sub": sub, "resource": resource, "scope": scope }));
        self.grants
            .lock()
            .unwrap()
            .push(json!({ "grant": kind, "client": client_id, "sub": sub, "jti": jti, "resource": resource }));
        let mut answer = json!({ "access_token": token, "token_type": "Bearer", "expires_in": lifetime,
                                 "refresh_token": refresh, "scope": scope });
        // OpenID Connect: an ID token for the client, carrying the sign-in's nonce. A user named
        // `NAME#VARIANT` gets a hostile one: `bad-nonce`, `other-aud`, `other-azp`, `expired`,
        // `other-iss`, `alg-none`, or none at all (`no-id-token`).
        if scope.split(' ').any(|s| s == "openid") {
            let (who, variant) = sub.split_once('#').unwrap_or((&sub, ""));
            let mut id = json!({ "iss": self.issuer, "sub": who, "aud": client_id, "azp": client_id, "nonce": nonce,
                                 "iat": now(), "exp": now() + 300 });
            match variant {
                "bad-nonce" => id["nonce"] = json!("another-sign-in"),
                "other-aud" => {
                    id["aud"] = json!("another-client");
                    id["azp"] = json!("another-client");
                }
                "other-azp" => {
                    id["aud"] = json!([client_id, "another-client"]);
                    id["azp"] = json!("another-client");
                }
                "expired" => id["exp"] = json!(now() - 600),
                "other-iss" => id["iss"] = json!("https://issuer.evil.example"),
                _ => {}
            }
            let token = match variant {
                "no-id-token" => None,
                "alg-none" => Some(format!(
                    "{}.{}.",
                    B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
                    B64.encode(id.to_string().as_bytes())
                )),
                _ => Some(jsonwebtoken::encode(&header, &id, &self.signing).expect("sign")),
            };
            if let Some(t) = token {
                answer["id_token"] = json!(t);
            }
        }
        ("200 OK", answer)
    }

    fn refuse(&self, status: &'static str, error: &str, description: String) -> (&'static str, Value) {
        self.exchanges.lock().unwrap().push(json!({ "refused": error }));
        (status, json!({ "error": error, "error_description": description }))
    }

    /// The token endpoint: RFC 8693 token exchange for the registered client.
    fn token(&self, req: &HttpRequest) -> (&'static str, Value) {
        let client = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        if client.as_deref() != Some(&format!("{}:{}", EXCHANGE_CLIENT.0, EXCHANGE_CLIENT.1)) {
            return self.refuse("401 Unauthorized", "invalid_client", "client authentication failed".into());
        }
        let form = req.form();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        if get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
            return self.refuse("400 Bad Request", "unsupported_grant_type", get("grant_type"));
        }
        if get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
            return self.refuse("400 Bad Request", "invalid_request", "subject_token_type".into());
        }
        let subject = get("subject_token");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        let Ok(data) = jsonwebtoken::decode::<Value>(&subject, &self.verifying, &validation) else {
            return self.refuse("400 Bad Request", "invalid_grant", "the subject token is not valid".into());
        };
        let sub = data.claims["sub"].as_str().unwrap_or_default().to_owned();
        if sub == REFUSED_SUBJECT {
            return self.refuse(
                "400 Bad Request",
                "invalid_grant",
                format!("subject may not act here (token {subject})"),
            );
        }
        let resource = get("resource");
        let audience = form.get("audience").cloned();
        let scope = get("scope");
        let n = self.minted.fetch_add(1, Ordering::SeqCst);
        let jti = format!("x-{n}");
        let lifetime = self.lifetime.load(Ordering::SeqCst);
        let claims = json!({
            "iss": self.issuer, "sub": sub, "aud": audience.clone().unwrap_or_else(|| resource.clone()),
            "scope": scope, "jti": jti, "iat": now(), "exp": now() + lifetime as i64,
            "act": { "sub": EXCHANGE_CLIENT.0 }, "client_id": EXCHANGE_CLIENT.0,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).expect("sign");
        self.exchanges.lock().unwrap().push(json!({
            "sub": sub, "resource": resource, "audience": audience, "scope": scope, "jti": jti,
        }));
        (
            "200 OK",
            json!({
                "access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer", "expires_in": lifetime, "scope": scope,
            }),
        )
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

impl Issuer {
    /// Generates keys and starts serving the JWKS.
    pub fn start() -> Issuer {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        use rsa::traits::PublicKeyParts;
        let mut rng = rand_core::OsRng;

        let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        let rsa_pub = rsa::RsaPublicKey::from(&rsa_key);
        let rsa_pem = rsa_key.to_pkcs8_pem(LineEnding::LF).expect("rsa pem");
        let rsa_public_pem = rsa_pub.to_public_key_pem(LineEnding::LF).expect("rsa public pem");

        let ec_key = p256::SecretKey::random(&mut rng);
        let ec_pem = ec_key.to_pkcs8_pem(LineEnding::LF).expect("ec pem");
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&ec_key.public_key(), false);

        let ed_key = ed25519_dalek::SigningKey::generate(&mut rng);
        let ed_pem = ed_key.to_pkcs8_pem(LineEnding::LF).expect("ed pem");

        let jwks = json!({ "keys": [
            { "kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
              "n": B64.encode(rsa_pub.n().to_bytes_be()), "e": B64.encode(rsa_pub.e().to_bytes_be()) },
            { "kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256",
              "x": B64.encode(point.x().expect("x")), "y": B64.encode(point.y().expect("y")) },
            { "kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": B64.encode(ed_key.verifying_key().to_bytes()) },
        ]})
        .to_string();

        let keys = vec![
            Key { alg: Algorithm::RS256, encoding: EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap() },
            Key { alg: Algorithm::ES256, encoding: EncodingKey::from_ec_pem(ec_pem.as_bytes()).unwrap() },
            Key { alg: Algorithm::EdDSA, encoding: EncodingKey::from_ed_pem(ed_pem.as_bytes()).unwrap() },
        ];

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the issuer");
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let fetches = Arc::new(AtomicUsize::new(0));
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let lifetime = Arc::new(AtomicU64::new(300));
        let grants = Arc::new(Mutex::new(Vec::new()));
        let server = AsServer {
            issuer: issuer.clone(),
            jwks,
            fetches: fetches.clone(),
            exchanges: exchanges.clone(),
            lifetime: lifetime.clone(),
            signing: EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
            verifying: DecodingKey::from_rsa_pem(rsa_public_pem.as_bytes()).unwrap(),
            minted: AtomicUsize::new(0),
            grants: grants.clone(),
            codes: Mutex::default(),
            refreshes: Mutex::default(),
        };
        // A connection each: a browser keeps idle connections open (preconnects, keep-alive),
        // which must not stop Warden's own requests from being answered.
        let server = Arc::new(server);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(s) = stream else { continue };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let server = server.clone();
                std::thread::spawn(move || server.serve(s));
            }
        });
        Issuer {
            jwks_url: format!("{issuer}/jwks.json"),
            token_url: format!("{issuer}/token"),
            issuer,
            keys,
            rsa_public_pem,
            fetches,
            exchanges,
            grants,
            lifetime,
        }
    }

    /// Every authorization code and refresh grant asked of the issuer: `{grant, sub, jti,
    /// resource}` for those granted, `{refused: why}` for the others.
    pub fn grants(&self) -> Vec<Value> {
        self.grants.lock().unwrap().clone()
    }

    /// Every token exchange asked of the issuer, in order: `{sub, resource, audience, scope,
    /// jti}` for those granted, `{refused: why}` for the others.
    pub fn exchanges(&self) -> Vec<Value> {
        self.exchanges.lock().unwrap().clone()
    }

    /// How long exchanged tokens are valid, in seconds (300 unless set).
    pub fn set_exchange_lifetime(&self, secs: u64) {
        self.lifetime.store(secs, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Claims for `sub` with audience `aud`, valid for an hour, plus `extra`.
    pub fn claims(&self, sub: &str, aud: &str, extra: Value) -> Value {
        let mut c = json!({ "iss": self.issuer, "sub": sub, "aud": aud, "iat": now(), "exp": now() + 3600 });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    /// A token signed with the issuer's key for `alg`.
    pub fn token(&self, alg: Alg, claims: &Value) -> String {
        let (kid, a) = match alg {
            Alg::Rs256 => ("rsa-1", Algorithm::RS256),
            Alg::Es256 => ("ec-1", Algorithm::ES256),
            Alg::EdDsa => ("ed-1", Algorithm::EdDSA),
        };
        self.signed(kid, a, claims)
    }

    fn signed(&self, kid: &str, alg: Algorithm, claims: &Value) -> String {
        let key = self.keys.iter().find(|k| k.alg == alg).expect("a key for the algorithm");
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
    }

    /// A token signed with the issuer's RSA key but naming a key id the JWKS does not have.
    pub fn unknown_kid(&self, claims: &Value) -> String {
        self.signed("rsa-rotated-away", Algorithm::RS256, claims)
    }

    /// Algorithm confusion: HS256 with the RSA public key (PEM) as the HMAC secret, naming the
    /// RSA key's id.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(self.rsa_public_pem.as_bytes())).expect("sign")
    }

    /// An unsigned token: `alg: none`, empty signature.
    pub fn alg_none(&self, claims: &Value) -> String {
        let header = json!({ "alg": "none", "typ": "JWT", "kid": "rsa-1" });
        format!("{}.{}.", B64.encode(header.to_string()), B64.encode(claims.to_string()))
    }
}
