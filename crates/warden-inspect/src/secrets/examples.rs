//! One positive and one negative example for every kind of secret, and the checks that
//! run over all of them: each kind is found in its positive and nowhere in its
//! negative, and the prefilter changes no result.

use std::sync::LazyLock;

use regex_automata::Input;

use super::*;

static SCANNER: LazyLock<SecretScanner> = LazyLock::new(SecretScanner::new);

/// `n` characters of a fixed mixed-case alphanumeric run; deterministic, not a real key.
fn alnum(n: usize) -> String {
    "Xq7Lm2Rt9Vb4Nz8Kd3Wp6Hj5Fs1Gc0Ye".chars().cycle().take(n).collect()
}

fn hex(n: usize) -> String {
    "3f9a1c7e5b2d8046".chars().cycle().take(n).collect()
}

/// `(kind, text holding one secret of that kind, the secret, a look-alike that is none)`.
fn examples() -> Vec<(&'static str, String, String, String)> {
    let pem_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7";
    let mut e: Vec<(&'static str, String, String, String)> = Vec::new();
    let mut add = |kind: &'static str, text: String, secret: String, negative: &str| {
        e.push((kind, text, secret, negative.to_owned()));
    };
    let s = format!("-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n", alnum(40));
    add(
        "gcp_service_account_key",
        format!(r#"{{"type": "service_account", "private_key": "{s}"}}"#),
        s,
        r#"{"private_key": ""}"#,
    );
    let s = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE{}\n-----END OPENSSH PRIVATE KEY-----",
        alnum(30)
    );
    add("openssh_private_key", format!("id_ed25519:\n{s}\n"), s, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI jane@host");
    let s =
        format!("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF{}\n-----END PGP PRIVATE KEY BLOCK-----", alnum(30));
    add(
        "pgp_private_key",
        s.clone(),
        s,
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----",
    );
    let s = format!("-----BEGIN EC PRIVATE KEY-----\n{pem_body}\n-----END EC PRIVATE KEY-----");
    add("private_key", format!("key:\n{s}"), s, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    let s = format!("AGE-SECRET-KEY-1{}", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2).get(..58).unwrap_or_default());
    add("age_secret_key", format!("# key\n{s}\n"), s, "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p");
    add("aws_access_key_id", "id AKIAIOSFODNN7EXAMPLE".into(), "AKIAIOSFODNN7EXAMPLE".into(), "AKIAIOSFODNN7 is short");
    let s = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned();
    add("aws_secret_access_key", format!("aws_secret_access_key = {s}"), s, "aws_secret_access_key = ${AWS_SECRET}");
    let s = format!("FwoGZXIvYXdzE{}", alnum(140));
    add("aws_session_token", format!("AWS_SESSION_TOKEN={s}"), s, "aws_session_token: <set me>");
    let s = hex(40);
    add("gcp_private_key_id", format!(r#"{{"private_key_id": "{s}"}}"#), s, r#"{"private_key_id": "abc"}"#);
    let s = format!("GOCSPX-{}", alnum(28));
    add("gcp_oauth_client_secret", format!("secret {s} here"), s, "GOCSPX-short");
    let s = format!("ya29.a0Af{}", alnum(60));
    add("google_oauth_access_token", format!("token {s}"), s, "ya29.short");
    let s = format!("1//0g{}", alnum(60));
    add("google_oauth_refresh_token", format!("refresh {s}"), s, "see 1//0 for details");
    let s = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".to_owned();
    add("google_api_key", format!("key {s}&q"), s, "AIzaSyD-too-short");
    let s = format!("{}==", alnum(86));
    add(
        "azure_storage_account_key",
        format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={s};EndpointSuffix=core.windows.net"),
        s,
        "AccountKey=<key>",
    );
    let s = format!("{}%3D", alnum(43));
    add(
        "azure_sas_signature",
        format!("https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026&sig={s}"),
        s,
        "?sig=abc",
    );
    let s = format!("abc8Q~{}", alnum(34));
    add("azure_client_secret", format!("client secret {s}"), s, "Q~ alone");
    let s = format!("dop_v1_{}", hex(64));
    add("digitalocean_token", format!("DO {s}"), s, "dop_v1_short");
    let s = format!("HRKU-{}", alnum(60));
    add("heroku_api_key", format!("use {s}"), s, "heroku api key: see the dashboard");
    let s = format!("hvs.{}", alnum(95));
    add("hashicorp_vault_token", format!("VAULT {s}"), s, "hvs.short");
    let s = format!("{}.atlasv1.{}", alnum(14), alnum(65));
    add("terraform_cloud_token", format!("credentials {s}"), s, "x.atlasv1.y");
    let s = format!("dapi{}", hex(32));
    add("databricks_token", format!("DATABRICKS {s}"), s, "dapi is an API");
    let s = format!("dp.pt.{}", alnum(43));
    add("doppler_token", format!("DOPPLER {s}"), s, "dp.pt.short");
    let s = format!("pscale_tkn_{}", alnum(43));
    add("planetscale_token", format!("PS {s}"), s, "pscale_tkn_");
    let s = format!("ghp_{}", alnum(36));
    add("github_token", format!("clone with {s}"), s, "ghp_short");
    let s = format!("gldt-{}", alnum(20));
    add("gitlab_deploy_token", format!("deploy {s}"), s, "gldt-x");
    let s = format!("glrt-{}", alnum(20));
    add("gitlab_runner_token", format!("runner {s}"), s, "glrt-x");
    let s = format!("GR1348941{}", alnum(20));
    add("gitlab_runner_registration_token", format!("register {s}"), s, "GR1348941");
    let s = format!("glpat-{}", alnum(20));
    add("gitlab_token", format!("token {s} used"), s, "glpat-short");
    let s = format!("ATBB{}", alnum(32));
    add("bitbucket_app_password", format!("bb {s}"), s, "ATBB short");
    let s = format!("ATCTT3xFfGN0{}", alnum(60));
    add("bitbucket_access_token", format!("bb {s}"), s, "ATCTT3xFfGN0");
    let s = format!("ATATT3xFfGF0{}", alnum(180));
    add("atlassian_api_token", format!("jira {s}"), s, "ATATT3");
    let s = format!("npm_{}", alnum(36));
    add("npm_token", format!("//registry.npmjs.org/:_authToken={s}"), s, "npm_config_cache");
    let s = format!("pypi-AgEIcHlwaS5vcmc{}", alnum(60));
    add("pypi_token", format!("password = {s}"), s, "pypi-AgEI");
    let s = format!("dckr_pat_{}", alnum(27));
    add("dockerhub_token", format!("docker login -p {s}"), s, "dckr_pat_x");
    let s = format!("lin_api_{}", alnum(40));
    add("linear_api_key", format!("LINEAR {s}"), s, "lin_api_docs");
    let s = format!("ntn_{}{}", "12345678901", alnum(35));
    add("notion_token", format!("NOTION {s}"), s, "ntn_123");
    let s = format!("PMAK-{}-{}", hex(24), hex(34));
    add("postman_api_key", format!("postman {s}"), s, "PMAK-123");
    let s = format!("glsa_{}_{}", alnum(32), hex(8));
    add("grafana_token", format!("grafana {s}"), s, "glsa_x");
    let s = "xapp-1-A0123BCDEF-1234567890-abcdef0123456789".to_owned();
    add("slack_app_token", format!("app {s}"), s, "xapp-x");
    let s = format!("xoxe.xoxp-1-{}", alnum(120));
    add("slack_config_token", format!("config {s}"), s, "xoxe.xoxp-");
    let s = "xoxb-1234567890-abcdefghij".to_owned();
    add("slack_token", format!("SLACK {s} ok"), s, "xoxb-short");
    let s = format!("services/T0ABCDEFG/B0ABCDEFG/{}", alnum(24));
    add("slack_webhook", format!("post to https://hooks.slack.com/{s}"), s, "https://hooks.slack.com/services/");
    let s = format!("123456789012345678/{}", alnum(68));
    add("discord_webhook", format!("https://discord.com/api/webhooks/{s}"), s, "https://discord.com/api/webhooks/");
    let s = format!("https://hooks.zapier.com/hooks/catch/1234567/{}/", alnum(6));
    add("webhook_url", format!("notify: {s}"), s, "https://hooks.zapier.com/hooks/catch/");
    let s = format!("tvly-dev-{}", alnum(32));
    add("api_token", format!("TAVILY={s}"), s, "tvly-dev-short");
    let s = format!("{}AzFu{}==", alnum(40), alnum(6));
    add("azure_key", format!("curl -H 'x-functions-key: {s}'"), s, "AzFu");
    let s = format!("$2b$12${}", alnum(53));
    add("password_hash", format!("admin:{s}"), s, "$2b$12$short");
    let s = format!(
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\n{}\nPrivate-Lines: 1\n{}\nPrivate-MAC: {}",
        alnum(64),
        alnum(44),
        hex(64)
    );
    add("putty_private_key", format!("key.ppk: {s}"), s, "PuTTY-User-Key-File-3: ssh-ed25519");
    let s = format!("MTA{}.{}.{}", alnum(23), alnum(6), alnum(38));
    add("discord_bot_token", format!("DISCORD_BOT_TOKEN={s}"), s, "discord bot token: see the portal");
    let s = format!("123456789:AA{}", alnum(33));
    add("telegram_bot_token", format!("bot {s}"), s, "at 12:AA meeting");
    let s = format!("whsec_{}", alnum(32));
    add("stripe_webhook_secret", format!("STRIPE {s}"), s, "whsec_");
    let s = format!("sk_live_{}", alnum(24));
    add("stripe_key", format!("stripe {s}"), s, "sk_live_");
    let s = format!("sq0atp-{}", alnum(22));
    add("square_token", format!("square {s}"), s, "sq0atp-");
    let s = format!("SK{}", hex(32));
    add("twilio_api_key", format!("twilio {s}"), s, "TASK0123");
    let s = hex(32);
    add("twilio_auth_token", format!("TWILIO_AUTH_TOKEN={s}"), s, "twilio auth token: see console");
    let s = format!("SG.{}.{}", alnum(22), alnum(43));
    add("sendgrid_api_key", format!("SENDGRID {s}"), s, "SG.short");
    let s = format!("key-{}", hex(32));
    add("mailgun_api_key", format!("mailgun {s}"), s, "key-value store");
    let s = format!("{}-us21", hex(32));
    add("mailchimp_api_key", format!("mailchimp {s}"), s, "en-us locale");
    let s = hex(32);
    add("datadog_api_key", format!("DD_API_KEY={s}"), s, "DD_API_KEY=");
    let s = format!("NRAK-{}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0");
    add("newrelic_api_key", format!("newrelic {s}"), s, "NRAK-");
    let s = format!("NRII-{}", alnum(32));
    add("newrelic_insert_key", format!("insert {s}"), s, "NRII-");
    let s = format!("sntrys_{}", alnum(80));
    add("sentry_auth_token", format!("SENTRY {s}"), s, "sntrys_");
    let s = hex(32);
    add("sentry_dsn", format!("dsn https://{s}@o123.ingest.sentry.io/4567"), s, "https://o123.ingest.sentry.io/4567");
    let s = format!("sk-ant-api03-{}", alnum(40));
    add("anthropic_api_key", format!("ANTHROPIC {s}"), s, "sk-ant-");
    let s = format!("sk-proj-{}", alnum(40));
    add("openai_api_key", format!("using {s} now"), s, "sk-this-is-not-a-key-at-all-really");
    let s = format!("hf_{}", alnum(34));
    add("huggingface_token", format!("HF {s}"), s, "hf_hub_download");
    let s = format!("gsk_{}", alnum(52));
    add("groq_api_key", format!("GROQ {s}"), s, "gsk_");
    let s = format!("r8_{}", alnum(37));
    add("replicate_api_token", format!("replicate {s}"), s, "r8_");
    let s = format!("pplx-{}", alnum(48));
    add("perplexity_api_key", format!("pplx {s}"), s, "pplx-api");
    let s = format!("xai-{}", alnum(80));
    add("xai_api_key", format!("grok {s}"), s, "xai-sdk");
    let s = alnum(40);
    add("cohere_api_key", format!("COHERE_API_KEY={s}"), s, "cohere api key: ask admin");
    let s = alnum(32);
    add("mistral_api_key", format!("MISTRAL_API_KEY=\"{s}\""), s, "mistral api key: ask admin");
    let s = alnum(39);
    add("gemini_api_key", format!("GEMINI_API_KEY={s}"), s, "gemini api key: ask admin");
    let s = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.{}", alnum(43));
    add("jwt", format!("id_jwt was {s}."), s, "eyJhbGciOiJIUzI1NiJ9 alone is a header");
    add(
        "bearer_token",
        "Authorization: Bearer abc.def-ghi".into(),
        "abc.def-ghi".into(),
        "the bearer certificates expire",
    );
    add(
        "basic_auth",
        "curl -H 'Authorization: Basic dXNlcjpwYXNz'".into(),
        "dXNlcjpwYXNz".into(),
        "basic authorization: see docs",
    );
    add(
        "url_password",
        "mongodb+srv://app:s3cr3t@cluster0.mongodb.net/db".into(),
        "s3cr3t".into(),
        "https://example.com:8443/path@v2",
    );
    add(
        "connection_string_password",
        "Server=db;User Id=app;Password=my s3cret pw;Database=x".into(),
        "my s3cret pw".into(),
        "Server=db;Integrated Security=true",
    );
    add("password", "DB_PASSWORD=c0rrect-h0rse".into(), "c0rrect-h0rse".into(), "password=changeme");
    add("secret", "api_key: 9f8e7d6c5b4a".into(), "9f8e7d6c5b4a".into(), "api_key: required");
    e
}

#[test]
fn every_kind_has_examples() {
    let examples = examples();
    let mut kinds: Vec<&str> = examples.iter().map(|(kind, ..)| *kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), examples.len(), "one example per kind");
    assert_eq!(kinds, SecretScanner::kinds(), "every kind, and only kinds, have examples");
    assert!(SecretScanner::detector_count() >= 60, "{}", SecretScanner::detector_count());
}

#[test]
fn positives_are_found_and_negatives_are_not() {
    for (kind, text, secret, negative) in examples() {
        let found = SCANNER.find(&text);
        assert_eq!(found.len(), 1, "{kind}: {text:?} -> {found:?}");
        assert_eq!(found[0].kind, kind, "{text:?}");
        assert_eq!(&text[found[0].span.clone()], secret, "{kind}");
        let (out, redactions) = SCANNER.redact_str(&text);
        assert!(!out.contains(&secret), "{kind}: {out}");
        assert_eq!(redactions.by_kind.get(kind), Some(&1), "{kind}");
        let (again, second) = SCANNER.redact_str(&out);
        assert_eq!(again, out);
        assert!(second.is_empty(), "{kind}: second pass over {out:?} found {second:?}");
        let found = SCANNER.find(&negative);
        assert!(found.is_empty(), "{kind}: negative {negative:?} -> {found:?}");
    }
}

/// Every match, as if there were no prefilter: the rules run over the whole text.
fn find_unfiltered(text: &str) -> Vec<(&'static str, Span)> {
    let mut caps = SCANNER.create_caps();
    let mut found = Vec::new();
    SCANNER.find_secrets(text, &mut caps, 0, &mut found);
    found.into_iter().map(|(span, kind)| (kind, span)).collect()
}

fn find_filtered(text: &str) -> Vec<(&'static str, Span)> {
    let mut caps = SCANNER.create_caps();
    let mut found = Vec::new();
    SCANNER.find_secrets_windowed(text, &mut caps, &mut Windows::default(), &mut found);
    found.into_iter().map(|(span, kind)| (kind, span)).collect()
}

#[test]
fn the_prefilter_changes_no_result() {
    let filler = "Some prose about deployments, then a log line: status=200 path=/v1/x.\n".repeat(12);
    let long_quoted = format!(r#"config: {{"db_password": "{}"}}"#, alnum(900));
    let long_lines =
        format!("{}{}", "x".repeat(3000), examples().iter().map(|e| e.1.as_str()).collect::<Vec<_>>().join(" "));
    for text in [long_quoted, long_lines] {
        assert_eq!(find_filtered(&text), find_unfiltered(&text), "{text:?}");
    }
    for (kind, text, _, negative) in examples() {
        for text in [text.clone(), negative, format!("{filler}{text}{filler}"), format!("{text}\n{text}")] {
            assert_eq!(find_filtered(&text), find_unfiltered(&text), "{kind}: {text:?}");
        }
    }
}

#[test]
fn text_without_anchors_is_not_searched() {
    let mut windows = Windows::default();
    SCANNER.prefilter.windows("plain prose, no credentials here at all; 1 2 3 = 4", &mut windows);
    assert!(windows.is_empty(), "{windows:?}");
    // A name word opens a window only when an assignment follows.
    SCANNER.prefilter.windows("the token count and the password below", &mut windows);
    assert!(windows.is_empty(), "{windows:?}");
    SCANNER.prefilter.windows("password = x", &mut windows);
    assert_eq!(windows.core.len(), 1);
}

#[test]
fn every_rule_compiles_alone() {
    for rule in RULES.iter().chain(PROVIDER_RULES) {
        let regex = Regex::new(rule.pattern);
        assert!(regex.is_ok(), "{}", rule.pattern);
        // And a rule is not a match for the empty string.
        assert!(regex.is_ok_and(|r| r.search(&Input::new("")).is_none()), "{}", rule.pattern);
    }
}

/// Pieces that put anchors, separators and secret shapes next to one another.
fn piece() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let examples: Vec<String> = examples().into_iter().flat_map(|(_, text, _, negative)| [text, negative]).collect();
    prop_oneof![
        proptest::sample::select(examples),
        "[ -~]{0,16}",
        "[ \t\n;:=\"'@/.]{1,3}",
        "[A-Za-z0-9_\\-]{1,40}",
        Just("password=".to_owned()),
        Just("\"token\": \"".to_owned()),
        Just("://u:".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----\n".to_owned()),
        Just("data:image/png;base64,".to_owned()),
        Just("\n".to_owned()),
    ]
}

proptest::proptest! {
    #[test]
    fn the_prefilter_changes_no_result_on_mixtures(parts in proptest::collection::vec(piece(), 0..10)) {
        let text = parts.concat();
        proptest::prop_assert_eq!(find_filtered(&text), find_unfiltered(&text), "{:?}", text);
    }
}
