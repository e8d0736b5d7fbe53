use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::json;

use super::*;

static SCANNER: LazyLock<SecretScanner> = LazyLock::new(SecretScanner::new);

/// Redacts `text` and asserts `secret` is gone and exactly one `kind` was counted.
fn assert_redacts(text: &str, secret: &str, kind: &str) -> String {
    let (out, found) = SCANNER.redact_str(text);
    assert!(!out.contains(secret), "{secret:?} survived in {out:?}");
    assert!(out.contains(&format!("[REDACTED:{kind}]")), "no {kind} marker in {out:?}");
    assert_eq!(found.total, 1, "{text:?} -> {out:?}: {found:?}");
    assert_eq!(found.by_kind.get(kind), Some(&1), "{text:?} -> {out:?}: {found:?}");
    assert_idempotent(&out);
    out.into_owned()
}

fn assert_untouched(text: &str) {
    let (out, found) = SCANNER.redact_str(text);
    assert!(matches!(out, Cow::Borrowed(_)), "{text:?} became {out:?}");
    assert!(found.is_empty(), "{text:?}: {found:?}");
}

fn assert_idempotent(redacted: &str) {
    let (again, found) = SCANNER.redact_str(redacted);
    assert_eq!(again, redacted);
    assert!(found.is_empty(), "second pass over {redacted:?} found {found:?}");
}

#[test]
fn scanner_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<SecretScanner>();
}

#[test]
fn aws_keys() {
    let out =
        assert_redacts("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws_access_key_id");
    assert_eq!(out, "export AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]");
    assert_redacts("temp creds ASIAY34FZKBOKMUTVV7A in use", "ASIAY34FZKBOKMUTVV7A", "aws_access_key_id");
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let out = assert_redacts(
        &format!("aws_secret_access_key = {secret}\nregion = us-east-1"),
        secret,
        "aws_secret_access_key",
    );
    assert_eq!(out, "aws_secret_access_key = [REDACTED:aws_secret_access_key]\nregion = us-east-1");
    assert_redacts(
        &format!(r#"{{"SecretAccessKey": "{secret}", "Expiration": "x"}}"#),
        secret,
        "aws_secret_access_key",
    );
}

#[test]
fn source_host_tokens() {
    let ghp = format!("ghp_{}", "a1B2c3D4e5".repeat(4).get(..36).unwrap_or_default());
    assert_redacts(&format!("git clone with {ghp} please"), &ghp, "github_token");
    let pat = format!("github_pat_11ABCDEFG0{}", "x9".repeat(30));
    assert_redacts(&format!("GH_TOKEN {pat}"), &pat, "github_token");
    for prefix in ["gho_", "ghu_", "ghs_", "ghr_"] {
        let token = format!("{prefix}{}", "Z".repeat(36));
        assert_redacts(&token, &token, "github_token");
    }
    assert_redacts("token glpat-xY12abCD34efGH56ijKL used", "glpat-xY12abCD34efGH56ijKL", "gitlab_token");
}

#[test]
fn chat_and_payment_tokens() {
    assert_redacts("SLACK xoxb-1234567890-abcdefghij ok", "xoxb-1234567890-abcdefghij", "slack_token");
    assert_redacts(
        "post to https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/abcdefghijklmnopqrstuvwx",
        "services/T0ABCDEFG/B0ABCDEFG/abcdefghijklmnopqrstuvwx",
        "slack_webhook",
    );
    assert_redacts("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key");
    assert_redacts("rk_live_51H8abcdefghijklmnop", "rk_live_51H8abcdefghijklmnop", "stripe_key");
}

#[test]
fn cloud_and_model_api_keys() {
    let google = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY";
    assert_redacts(&format!("key={google}&q=1"), google, "google_api_key");
    assert_redacts(&format!("\"{google}\""), google, "google_api_key");
    let ant = "sk-ant-api03-AbCdEf0123456789_gHiJkLmNoPqRsTuV-wxyz";
    assert_redacts(&format!("ANTHROPIC {ant}"), ant, "anthropic_api_key");
    let openai = "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34";
    assert_redacts(&format!("using {openai} now"), openai, "openai_api_key");
    let legacy = "sk-T3BlbkFJ0123456789abcdefghijklmnopqrstuvwx";
    assert_redacts(legacy, legacy, "openai_api_key");
}

#[test]
fn jwts() {
    let jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    assert_redacts(&format!("id_jwt was {jwt}."), jwt, "jwt");
}

#[test]
fn private_key_blocks() {
    let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nProc-Type: 4,ENCRYPTED\nabc+/=\n-----END RSA PRIVATE KEY-----";
    let out = assert_redacts(&format!("key:\n{block}\nafter"), "MIIEowIBAAKCAQEA7bq", "private_key");
    assert_eq!(out, "key:\n[REDACTED:private_key]\nafter");
    // Inside JSON-escaped text, and cut off before its END line.
    assert_redacts(
        r#"{"k": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"}"#,
        "MIIEvQIBADANBg",
        "private_key",
    );
    assert_redacts(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n[truncated",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "openssh_private_key",
    );
    assert_untouched(
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    );
}

#[test]
fn authorization_values() {
    let out = assert_redacts("Authorization: Bearer abc.def-ghi", "abc.def-ghi", "bearer_token");
    assert_eq!(out, "Authorization: Bearer [REDACTED:bearer_token]");
    assert_redacts(r#"{"authorization":"Bearer tok3nValue"}"#, "tok3nValue", "bearer_token");
    assert_redacts("curl -H 'Authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz", "basic_auth");
    assert_redacts("use bearer 0123456789abcdefABCDEF", "0123456789abcdefABCDEF", "bearer_token");
}

#[test]
fn url_credentials() {
    let out = assert_redacts("postgres://app:s3cr%40t@db.internal:5432/main", "s3cr%40t", "url_password");
    assert_eq!(out, "postgres://app:[REDACTED:url_password]@db.internal:5432/main");
    assert_redacts("redis://:hunter2@cache:6379", "hunter2", "url_password");
    assert_untouched("https://example.com:8443/path@v2?x=1");
    assert_untouched("see http://[::1]:8080/ and mailto:user@example.com");
}

#[test]
fn connection_strings() {
    let out = assert_redacts(
        "Server=db;User Id=app;Password=my s3cret pw;Database=x",
        "my s3cret pw",
        "connection_string_password",
    );
    assert_eq!(out, "Server=db;User Id=app;Password=[REDACTED:connection_string_password];Database=x");
    assert_redacts("host=db user=app password=hunter2 dbname=x", "hunter2", "password");
}

#[test]
fn named_values_in_free_text() {
    let out = assert_redacts("password=hunter2", "hunter2", "password");
    assert_eq!(out, "password=[REDACTED:password]");
    assert_redacts("API_KEY: abc123", "abc123", "secret");
    assert_redacts(r#"config {"db_password": "correct horse"}"#, "correct horse", "password");
    assert_redacts("client_secret='a1b2 c3d4'", "a1b2 c3d4", "secret");
    assert_redacts("GET /v1?api_key=Zm9vYmFy&page=2", "Zm9vYmFy", "secret");
    assert_redacts("X-Api-Key: 9f8e7d6c5b4a", "9f8e7d6c5b4a", "secret");
    assert_redacts("--db-password=hunter", "hunter", "password");
    assert_redacts(r#"{\"token\":\"t0ken\"}"#, "t0ken", "secret");
    // A named value in a known format reports the format.
    let ghp = format!("ghp_{}", "q".repeat(36));
    assert_redacts(&format!("GITHUB_TOKEN={ghp}"), &ghp, "github_token");
}

#[test]
fn benign_text_is_untouched() {
    for text in [
        "the token count is 1234",
        "Enter your password below.",
        "Your password: must be at least 8 characters",
        "token: required",
        "max_tokens=512 and token_count: 17",
        "nextPageToken: CAoQAA",
        "key=value, primary_key: id42",
        "PWD=/home/user",
        "password=${DB_PASSWORD} password=<your password> password=****",
        "request 123e4567-e89b-12d3-a456-426614174000 done",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main)",
        "the bearer certificates expire",
        "sk-this-is-not-a-key-at-all-really",
        "ASIAN markets and AKIA are words",
        "AIzaSyD-too-short",
        "eyJhbGciOiJIUzI1NiJ9 alone is a header",
        "mailto:someone@example.com",
        "",
    ] {
        assert_untouched(text);
    }
}

#[test]
fn data_uris_are_untouched() {
    // Long base64 runs can contain anything, including key-like prefixes.
    let image = format!("![x](data:image/png;base64,iVBORw0KGgo+AKIAIOSFODNN7EXAMPLE/{}==)", "A".repeat(3000));
    assert_untouched(&image);
}

#[test]
fn several_secrets_in_one_text() {
    let text = "a=AKIAIOSFODNN7EXAMPLE b=AKIAIOSFODNN7EXAMPLF password=x9 url=https://u:p@h/";
    let (out, found) = SCANNER.redact_str(text);
    assert_eq!(
        out,
        "a=[REDACTED:aws_access_key_id] b=[REDACTED:aws_access_key_id] password=[REDACTED:password] url=https://u:[REDACTED:url_password]@h/"
    );
    assert_eq!(found.total, 4);
    assert_eq!(found.by_kind["aws_access_key_id"], 2);
}

#[test]
fn markers_are_boundaries() {
    // Text either side of a marker is scanned as if the marker ended it, so a second
    // pass cannot join a key to a marker and redact again. The cost: a value that
    // someone wrote next to a marker on purpose is not redacted.
    assert_untouched("API_KEY: [REDACTED:jwt]");
    assert_untouched("password=[REDACTED:x]plain");
    assert_untouched("[REDACTED:not a marker");
    let (out, found) = SCANNER.redact_str("[REDACTED:jwt] AKIAIOSFODNN7EXAMPLE [REDACTED:x]");
    assert_eq!(out, "[REDACTED:jwt] [REDACTED:aws_access_key_id] [REDACTED:x]");
    assert_eq!(found.total, 1);
}

#[test]
fn what_a_marker_leaves_of_a_value_is_judged_in_the_same_redaction() {
    // The named value `A0x9=ghp_aaa…` is too regular to be a secret, but the token in it is;
    // what is left of the value, `A0x9=`, is judged alone at once rather than by a later pass.
    let (out, found) = SCANNER.redact_str("API_KEY: A0x9z=ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(out, "API_KEY: [REDACTED:secret][REDACTED:github_token]");
    assert_eq!(found.total, 2);
    assert_untouched(&out);
}

#[test]
fn secrets_in_what_a_match_keeps_are_found() {
    // The URL rule keeps the user, the named-value rule keeps the key: neither may hide
    // a secret there.
    let (out, found) = SCANNER.redact_str("https://AKIAIOSFODNN7EXAMPLE:pw@host/");
    assert_eq!(out, "https://[REDACTED:aws_access_key_id]:[REDACTED:url_password]@host/");
    assert_eq!(found.total, 2);
    let (out, found) = SCANNER.redact_str("my.AKIAIOSFODNN7EXAMPLE.password=x1");
    assert_eq!(out, "my.[REDACTED:aws_access_key_id].password=[REDACTED:password]");
    assert_eq!(found.total, 2);
    assert_idempotent(&out);
}

#[test]
fn crafted_input_is_scanned_in_linear_time() {
    // Each of these makes a long match that is rejected, with another candidate inside
    // it; re-scanning each from the next character would be quadratic. A regression here
    // shows as a test that does not finish.
    let size = 256 * 1024;
    for unit in ["token=$", "token:", "sk-aaaa-", "bearer aaaa", "-----BEGIN PRIVATE KEY-----!"] {
        let text = unit.repeat(size / unit.len());
        let started = std::time::Instant::now();
        let (out, _) = SCANNER.redact_str(&text);
        assert!(out.len() <= text.len() * 2);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{unit:?}");
    }
}

#[test]
fn json_strings_are_redacted_at_any_depth() {
    let mut value = json!({
        "content": [
            {"type": "text", "text": "key AKIAIOSFODNN7EXAMPLE"},
            {"type": "text", "text": ["nested", {"deep": "postgres://a:b@c/d"}]}
        ],
        "isError": false,
        "count": 3
    });
    let found = SCANNER.redact_json(&mut value);
    assert_eq!(value["content"][0]["text"], "key [REDACTED:aws_access_key_id]");
    assert_eq!(value["content"][1]["text"][1]["deep"], "postgres://a:[REDACTED:url_password]@c/d");
    assert_eq!(value["isError"], false);
    assert_eq!(value["count"], 3);
    assert_eq!(found.total, 2);
}

#[test]
fn json_values_under_secret_keys_are_replaced_whole() {
    let mut value = json!({
        "password": "hunter2",
        "githubToken": "anything at all",
        "headers": {"x-api-key": "k", "Authorization": "Bearer abc", "Accept": "text/plain"},
        "pin_password": 123456,
        "token_count": 42,
        "max_tokens": 100,
        "next_token": "CAoQAA",
        "credentials": {"user": "me", "secret": "s"},
        "session": null,
        "api_key": "",
        "password_ok": true
    });
    let found = SCANNER.redact_json(&mut value);
    assert_eq!(value["password"], "[REDACTED:password]");
    assert_eq!(value["githubToken"], "[REDACTED:secret]");
    assert_eq!(value["headers"]["x-api-key"], "[REDACTED:secret]");
    assert_eq!(value["headers"]["Authorization"], "[REDACTED:secret]");
    assert_eq!(value["headers"]["Accept"], "text/plain");
    assert_eq!(value["pin_password"], "[REDACTED:password]");
    assert_eq!(value["token_count"], 42);
    assert_eq!(value["max_tokens"], 100);
    assert_eq!(value["next_token"], "CAoQAA");
    assert_eq!(value["credentials"]["user"], "me");
    assert_eq!(value["credentials"]["secret"], "[REDACTED:secret]");
    assert_eq!(value["session"], Value::Null);
    assert_eq!(value["api_key"], "");
    assert_eq!(value["password_ok"], true);
    assert_eq!(found.total, 6);
    assert_eq!(found.by_kind["password"], 2);
    assert_eq!(found.by_kind["secret"], 4);
}

#[test]
fn json_keys_holding_secrets_are_redacted() {
    let mut value = json!({
        "AKIAIOSFODNN7EXAMPLE": 1,
        "AKIAIOSFODNN7EXAMPLF": 2,
        "plain": "x"
    });
    let found = SCANNER.redact_json(&mut value);
    let text = value.to_string();
    assert!(!text.contains("AKIA"), "{text}");
    assert_eq!(found.by_kind["aws_access_key_id"], 2);
    let map = value.as_object().cloned().unwrap_or_default();
    assert_eq!(map.len(), 3, "colliding redacted keys must not overwrite: {text}");
}

#[test]
fn json_redaction_is_idempotent() {
    let mut value = json!({
        "password": "hunter2",
        "notes": ["ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", {"auth_token": 7}],
        "AKIAIOSFODNN7EXAMPLE": "k"
    });
    let first = SCANNER.redact_json(&mut value);
    assert_eq!(first.total, 4);
    let snapshot = value.clone();
    let second = SCANNER.redact_json(&mut value);
    assert!(second.is_empty(), "{second:?}");
    assert_eq!(value, snapshot);
}

#[test]
fn json_depth_is_bounded() {
    fn nested(depth: usize) -> Value {
        let mut value = json!("AKIAIOSFODNN7EXAMPLE");
        for i in 0..depth {
            value = if i % 2 == 0 { json!([value]) } else { json!({"k": value}) };
        }
        value
    }
    // The innermost string sits at depth 128: still inspected.
    let mut shallow = nested(MAX_JSON_DEPTH);
    let found = SCANNER.redact_json(&mut shallow);
    assert_eq!(found.by_kind.get("aws_access_key_id"), Some(&1));
    assert!(!found.by_kind.contains_key(DEPTH_LIMIT_KIND));
    // One level deeper is cut off, not passed on.
    let mut deep = nested(MAX_JSON_DEPTH + 1);
    let found = SCANNER.redact_json(&mut deep);
    assert_eq!(found.by_kind.get(DEPTH_LIMIT_KIND), Some(&1));
    assert!(!deep.to_string().contains("AKIA"));
    let mut deeper = nested(300);
    let found = SCANNER.redact_json(&mut deeper);
    assert_eq!(found.total, 1);
    assert!(deeper.to_string().contains("[REDACTED:depth_limit]"));
}

#[test]
fn unchanged_text_is_borrowed() {
    let text = "nothing to see here";
    assert!(matches!(SCANNER.redact_str(text).0, Cow::Borrowed(_)));
}

fn longest_marker() -> usize {
    SecretScanner::kinds().iter().map(|kind| kind.len() + "[REDACTED:]".len()).max().unwrap_or_default()
}

/// Fragments that put secret shapes next to each other and to markers, where rule
/// boundaries interact.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        Just("password=".to_owned()),
        Just("API_KEY: ".to_owned()),
        Just("\"token\": \"".to_owned()),
        Just("Authorization: Bearer ".to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
        Just("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
        Just("https://u:p@".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----\n".to_owned()),
        Just("-----END PRIVATE KEY-----".to_owned()),
        Just("[REDACTED:jwt]".to_owned()),
        Just(";Pwd=".to_owned()),
        Just("eyJabcdefgh.eyJabcdefgh.".to_owned()),
        Just("data:image/png;base64,".to_owned()),
        Just("sk-".to_owned()),
        "[A-Za-z0-9/+_=-]{1,48}",
        "[ \t\n;:=\"'@]{1,3}",
    ]
}

proptest! {
    #[test]
    fn redact_str_never_panics_and_stays_bounded(text in any::<String>()) {
        let (out, found) = SCANNER.redact_str(&text);
        let longest_marker = longest_marker();
        prop_assert!(out.len() <= text.len() + found.total as usize * longest_marker);
    }

    #[test]
    fn redaction_is_idempotent(parts in prop::collection::vec(fragment(), 0..8)) {
        let text = parts.concat();
        let (out, found) = SCANNER.redact_str(&text);
        let longest_marker = longest_marker();
        prop_assert!(out.len() <= text.len() + found.total as usize * longest_marker);
        let (again, second) = SCANNER.redact_str(&out);
        prop_assert_eq!(&again, &out, "second pass changed output");
        prop_assert!(second.is_empty(), "second pass over {:?} found {:?}", out, second);
    }
}

#[test]
fn code_after_a_secret_sounding_name_is_not_a_secret() {
    // Met in real source trees: a name that sounds like a secret followed by code.
    for code in [
        "for_token: Default::default()",
        "I: Stream<Token = Input::Token>",
        "session_id: SessionId::default(),",
        "YAML_NO_TOKEN = 0",
        "pub rq_area_token: __u64,",
        "Token::U8(0),",
        "pub const DEVCONF_STABLE_SECRET: _bindgen_ty_3 = _bindgen_ty_3::DEVCONF_STABLE_SECRET;",
        "let token = CancellationToken::new();",
        "let start_token = input.checkpoint();",
        "if token == other { return; }",
        "let empty_brace_token = braced!(content in input);",
        "let key: [u8; 32] = rng.gen();",
        "pub token: ProgressToken,",
        "self.dot2_token.clone()",
        "let token = encode(&header, &claims, &key)?;",
        "NEW_TOKEN = 0x07,",
        "pub(crate) type TickToken = Option<Instant>;",
        "let takes_ownership = move |token: CancellationToken| {",
        "let alice_secret = decapsulation_key.decapsulate(ciphertext)?;",
        "let progress_token = self.progress_token_provider.next_progress_token();",
        r#"client_secret: "test-secret".to_string(),"#,
        r#""refresh_token": "refreshed-refresh-token","#,
        "fn contains_token(&self, token: C1) -> bool {",
        "const session = sessionId ? sessions.get(sessionId) : undefined;",
        "const sessionId = req?.query?.sessionId;",
        "const parsedCookie = Object.create(null);",
        "this._verifyAccessToken = options.verifyAccessToken;",
        "fn stored(client_id: &str, token: OAuthTokenResponse) -> StoredCredentials {",
        "postgres://user:password@localhost:5432/db",
    ] {
        assert_untouched(code);
    }
    // Values with a credential's shape still are.
    for (text, kind) in [
        ("token: 9f8e7d6c5b4a39281706f5e4", "secret"),
        ("DB_PASSWORD=s3cr3t-Pa55", "password"),
        ("session_id: a8F3kQ9zL2mN7pR4", "secret"),
        ("--db-password=hunter", "password"),
        ("API_KEY: abc123", "secret"),
        (r#"DB_PASSWORD="correct-horse-battery-staple""#, "password"),
        (r#"{"password": "admin"}"#, "password"),
    ] {
        let (out, _) = SCANNER.redact_str(text);
        assert!(out.contains(&format!("[REDACTED:{kind}]")), "{text} -> {out}");
    }
}

#[test]
fn overlapping_finds_of_the_two_tables_leave_nothing_of_either() {
    // The URL rule stops at the JWT's first `.`; the JWT rule starts later: both are covered.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let text = format!("GET https://api.example.com/v1/items?access_token={jwt} HTTP/1.1");
    let (out, _) = SCANNER.redact_str(&text);
    for part in jwt.split('.') {
        assert!(!out.contains(part), "{out}");
    }
    assert_idempotent(&out);
}

#[test]
fn a_value_then_a_parenthesis_after_a_space_is_still_a_password() {
    assert_redacts("password=Xy7!kq2z (rotated monthly)", "Xy7!kq2z", "password");
    assert_untouched("token = randomUUID();");
}

#[test]
fn a_type_path_names_no_secret_but_a_namespaced_constant_may_hold_one() {
    assert_untouched(r#""AWS::MSK::BatchScramSecret": "ff2b807a577495b0","#);
    assert_redacts(r#"Config::API_TOKEN = "q8Zt2Lw9Xv4Rk7Pm""#, "q8Zt2Lw9Xv4Rk7Pm", "secret");
}
