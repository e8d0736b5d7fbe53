//! An OAuth token issuer made inside the test: RSA, P-256 and Ed25519 keys generated now, a JWKS
//! served over HTTP (counting its fetches), and tokens minted on demand, good and bad.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A running issuer.
pub struct Issuer {
    /// The `iss` of its tokens.
    pub issuer: String,
    /// Where its JWKS is served.
    pub jwks_url: String,
    keys: Vec<Key>,
    rsa_public_pem: String,
    fetches: Arc<AtomicUsize>,
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
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
            }
        });
        Issuer {
            issuer: format!("http://127.0.0.1:{port}"),
            jwks_url: format!("http://127.0.0.1:{port}/jwks.json"),
            keys,
            rsa_public_pem,
            fetches,
        }
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
