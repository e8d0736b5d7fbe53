//! The builtin secret rules: one table, compiled once into a single multi-pattern regex.
//!
//! Order is priority: where two rules match at the same position the earlier one wins,
//! so specific formats come before the generic `key = value` rules and the benign
//! shapes (markers, data URIs) come first of all.
//!
//! A rule's pattern may name a `secret` group; only that span is replaced, so a URL
//! keeps its scheme, user and host and a `password=` assignment keeps its key. A
//! pattern without the group has its whole match replaced.
//!
//! Every rule must hold a literal from [`super::prefilter::ANCHORS`] in any text it
//! matches; the prefilter only runs the regex near those literals. Shapes with no literal
//! of their own (a Heroku key is a bare UUID, a Discord bot token three base64 runs) are
//! written with the provider's name in front (`HEROKU_API_KEY=`, `discord … token`), as
//! TruffleHog's keyword detectors are, and that name is the anchor.

/// What a match is reported as.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// Always this kind.
    Fixed(&'static str),
    /// Decided by the name in the pattern's `key` group (see [`super::keys::classify_key`]).
    FromKey,
}

/// What must also hold for a match to be a secret (see [`super::checks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// The pattern is specific enough.
    None,
    /// A key block must hold a key: a header alone, in documentation, is not one.
    KeyBody,
    /// The pattern is specific enough, and the value must not be a placeholder
    /// (`postgres://user:password@host` is documentation).
    NotPlaceholder,
    /// Not a secret: consume the match so nothing inside it is redacted.
    Benign,
    /// The secret must mix letters and digits (or be long and mixed-case), which prose
    /// and hyphenated words do not.
    LooksRandom,
    /// The key must name a secret and the value must not be a placeholder.
    NamedValue,
    /// As `NamedValue`, and an unquoted value must not be a short word.
    NamedBareValue,
    /// As `NamedValue`, and the value must also look random: `name: word` is often prose.
    NamedRandomValue,
}

pub(super) struct Rule {
    pub(super) kind: Kind,
    pub(super) check: Check,
    pub(super) pattern: &'static str,
}

const fn rule(kind: &'static str, check: Check, pattern: &'static str) -> Rule {
    Rule { kind: Kind::Fixed(kind), check, pattern }
}

const fn named(check: Check, pattern: &'static str) -> Rule {
    Rule { kind: Kind::FromKey, check, pattern }
}

/// A field name ending in a word that may name a secret, then the separator's left side.
/// Deliberately loose (`key` matches `monkey`): `classify_key` has the final say.
macro_rules! secret_name {
    () => {
        concat!(
            r#"(?-u:\b)(?P<key>(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,47})??"#,
            r#"(?i-u:pass(?:word|wd|phrase)|pwd|secret|token|key|credentials?|authorization|cookie|session(?:[_.\-]?id)?)"#,
            r#"(?:[_.\-]?(?i-u:value|val|str|string|b64|base64|hex|raw|plain|plaintext|encoded|confirm|confirmation|new|old|current|[0-9]{1,3}))?)"#,
            r#"\\?["']?[ \t]*"#,
        )
    };
}

/// The characters an unquoted value runs over: up to white space, quotes, list and
/// query separators, and brackets that close the surrounding structure. A value followed by
/// `(` is a call (`token = randomUUID()`), which the `call` group records and the scanner
/// rejects.
macro_rules! bare_value {
    () => {
        r#"(?P<secret>[^\s"'`,;&<>{}()\\]+)(?P<call>\()?"#
    };
}

/// A provider's name, up to 24 more name characters, an assignment, and a value of the
/// given shape: `TWILIO_AUTH_TOKEN="…"`, `heroku.api-key: …`.
macro_rules! provider_value {
    ($name:literal, $value:literal) => {
        concat!(
            r"(?-u:\b)(?i-u:",
            $name,
            r#")[A-Za-z0-9_.\-]{0,24}?\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?"#,
            r"(?P<secret>",
            $value,
            r")(?-u:\b)",
        )
    };
}

/// A token that begins with a fixed prefix and runs to a word boundary.
macro_rules! prefixed {
    ($body:literal) => {
        concat!(r"(?-u:\b)", $body, r"(?-u:\b)")
    };
}

pub(super) const RULES: &[Rule] = &[
    // Inline images and files are long base64 runs; keep them whole and untouched.
    rule(
        "",
        Check::Benign,
        r"(?-u:\b)data:[A-Za-z]{1,20}/[A-Za-z0-9.+\-]{1,64}(?:;[A-Za-z0-9.=\-]{1,64}){0,4};base64,[A-Za-z0-9+/=]+",
    ),
    // ---- Private key blocks. A block cut off before its END line loses its body too.
    // Both branches run over the same alphabet, so looking for the END line never scans
    // past where the block would end anyway (no quadratic scans of repeated BEGIN lines).
    rule(
        "gcp_service_account_key",
        Check::None,
        concat!(
            r#""private_key"[ \t]*:[ \t]*"(?P<secret>-----BEGIN PRIVATE KEY-----"#,
            r#"[A-Za-z0-9+/=\s\\]*?-----END PRIVATE KEY-----(?:\\n)?)""#,
        ),
    ),
    rule(
        "openssh_private_key",
        Check::KeyBody,
        concat!(
            r"-----BEGIN OPENSSH PRIVATE KEY-----",
            r"(?:[A-Za-z0-9+/=\s\\]*?-----END OPENSSH PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*)",
        ),
    ),
    rule(
        "pgp_private_key",
        Check::KeyBody,
        concat!(
            r"-----BEGIN PGP PRIVATE KEY BLOCK-----",
            r"(?:[A-Za-z0-9+/=\s\\:,.\-_()@<>]*?-----END PGP PRIVATE KEY BLOCK-----|[A-Za-z0-9+/=\s\\:,.\-_()@<>]*)",
        ),
    ),
    rule(
        "private_key",
        Check::KeyBody,
        concat!(
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            r"(?:[A-Za-z0-9+/=\s\\:,.\-_()@<>]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            r"|[A-Za-z0-9+/=\s\\:,.\-_()@<>]*)",
        ),
    ),
    rule("age_secret_key", Check::None, prefixed!(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}")),
    // ---- Cloud providers.
    rule("aws_access_key_id", Check::None, prefixed!(r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}")),
    rule(
        "aws_secret_access_key",
        Check::None,
        concat!(
            r#"(?-u:\b)(?i-u:aws[_.\-]?secret(?:[_.\-]?access)?[_.\-]?key|secret[_.\-]?access[_.\-]?key)"#,
            r#"\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?"#,
            r#"(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"#,
        ),
    ),
    rule(
        "aws_session_token",
        Check::None,
        concat!(
            r#"(?-u:\b)(?i-u:aws[_.\-]?session[_.\-]?token|session[_.\-]?token)"#,
            r#"\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?"#,
            r#"(?P<secret>[A-Za-z0-9/+]{100,}={0,2})"#,
        ),
    ),
    rule("gcp_private_key_id", Check::None, r#""private_key_id"[ \t]*:[ \t]*"(?P<secret>[a-f0-9]{40})""#),
    rule("gcp_oauth_client_secret", Check::None, prefixed!(r"GOCSPX-[A-Za-z0-9_\-]{28}")),
    rule("google_oauth_access_token", Check::None, prefixed!(r"ya29\.[A-Za-z0-9_\-]{30,}")),
    rule("google_oauth_refresh_token", Check::None, prefixed!(r"1//0[A-Za-z0-9_\-]{40,}")),
    rule("google_api_key", Check::None, r"(?-u:\b)(?P<secret>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|\z)"),
    rule("azure_storage_account_key", Check::None, r"(?i-u:AccountKey)[ \t]*=[ \t]*(?P<secret>[A-Za-z0-9+/]{86}==)"),
    rule("azure_sas_signature", Check::None, r"[?&;]sig=(?P<secret>[A-Za-z0-9%+/]{30,}(?:%3[Dd]|=){0,2})"),
    rule("azure_client_secret", Check::None, prefixed!(r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}")),
    rule("digitalocean_token", Check::None, prefixed!(r"do[por]_v1_[a-f0-9]{64}")),
    rule("heroku_api_key", Check::None, prefixed!(r"HRKU-[A-Za-z0-9_\-]{60}")),
    rule(
        "heroku_api_key",
        Check::None,
        provider_value!("heroku", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ),
    rule("hashicorp_vault_token", Check::None, prefixed!(r"hv[sb]\.[A-Za-z0-9_\-]{90,}")),
    rule("terraform_cloud_token", Check::None, prefixed!(r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}")),
    rule("databricks_token", Check::None, prefixed!(r"dapi[a-f0-9]{32}(?:-[0-9])?")),
    rule("doppler_token", Check::None, prefixed!(r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9_]{40,44}")),
    rule("planetscale_token", Check::None, prefixed!(r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.\-]{32,64}")),
    // ---- Source hosts and package registries.
    rule("github_token", Check::None, prefixed!(r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    rule("gitlab_deploy_token", Check::None, r"(?-u:\b)gldt-[A-Za-z0-9_\-]{20,}"),
    rule("gitlab_runner_token", Check::None, r"(?-u:\b)glrt-[A-Za-z0-9_\-]{20,}"),
    rule("gitlab_runner_registration_token", Check::None, r"(?-u:\b)GR1348941[A-Za-z0-9_\-]{20,}"),
    rule("gitlab_token", Check::None, r"(?-u:\b)gl(?:pat|ptt|cbt|ft|soat|oas)-[A-Za-z0-9_\-]{20,}"),
    rule("bitbucket_app_password", Check::None, prefixed!(r"ATBB[A-Za-z0-9_=.\-]{28,}")),
    rule("bitbucket_access_token", Check::None, prefixed!(r"ATCTT3xFfGN0[A-Za-z0-9_=\-]{50,}")),
    rule("atlassian_api_token", Check::None, prefixed!(r"ATATT3[A-Za-z0-9_=\-]{150,}")),
    rule("npm_token", Check::None, prefixed!(r"npm_[A-Za-z0-9]{36}")),
    rule("pypi_token", Check::None, r"(?-u:\b)pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    rule("dockerhub_token", Check::None, r"(?-u:\b)dckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,}"),
    rule("linear_api_key", Check::None, prefixed!(r"lin_api_[A-Za-z0-9]{40}")),
    rule("notion_token", Check::None, prefixed!(r"ntn_[0-9]{11}[A-Za-z0-9]{35}")),
    rule("postman_api_key", Check::None, prefixed!(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}")),
    rule(
        "grafana_token",
        Check::None,
        prefixed!(r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})"),
    ),
    // ---- Chat, mail and payments.
    rule("slack_app_token", Check::None, prefixed!(r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+")),
    rule("slack_config_token", Check::None, prefixed!(r"xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{100,}")),
    rule("slack_token", Check::None, r"(?-u:\b)xox[abposr]-[A-Za-z0-9\-]{10,}"),
    rule(
        "slack_webhook",
        Check::None,
        r"hooks\.slack\.com/(?P<secret>(?:services|workflows|triggers)/T[A-Za-z0-9]{4,}/[A-Za-z0-9]{4,}/[A-Za-z0-9]{16,})",
    ),
    rule(
        "discord_webhook",
        Check::None,
        r"discord(?:app)?\.com/api/webhooks/(?P<secret>[0-9]{17,20}/[A-Za-z0-9_\-]{60,68})",
    ),
    rule(
        "discord_bot_token",
        Check::None,
        concat!(
            r"(?-u:\b)(?i-u:discord)[^\r\n]{0,64}?",
            r"(?P<secret>[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?-u:\b)",
        ),
    ),
    rule("telegram_bot_token", Check::None, r"(?:(?-u:\b)|/bot)(?P<secret>[0-9]{8,10}:AA[A-Za-z0-9_\-]{33})(?-u:\b)"),
    rule("stripe_webhook_secret", Check::None, prefixed!(r"whsec_[A-Za-z0-9]{24,}")),
    rule("stripe_key", Check::None, r"(?-u:\b)[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    rule("square_token", Check::None, prefixed!(r"(?:sq0atp-[A-Za-z0-9_\-]{22}|sq0csp-[A-Za-z0-9_\-]{43})")),
    rule("twilio_api_key", Check::None, prefixed!(r"SK[0-9a-f]{32}")),
    rule("twilio_auth_token", Check::None, provider_value!("twilio", "[a-f0-9]{32}")),
    rule("sendgrid_api_key", Check::None, prefixed!(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}")),
    rule("mailgun_api_key", Check::None, prefixed!(r"key-[0-9a-f]{32}")),
    rule("mailchimp_api_key", Check::None, prefixed!(r"[0-9a-f]{32}-us[0-9]{1,2}")),
    // ---- Observability.
    rule("datadog_api_key", Check::None, provider_value!("datadog|dd[_.\\-]?(?:api|app)", "[a-f0-9]{32,40}")),
    rule("newrelic_api_key", Check::None, prefixed!(r"NRAK-[A-Z0-9]{27}")),
    rule("newrelic_insert_key", Check::None, prefixed!(r"NRII-[A-Za-z0-9_\-]{32}")),
    rule("sentry_auth_token", Check::None, prefixed!(r"(?:sntrys_[A-Za-z0-9+/=_]{60,}|sntryu_[a-f0-9]{64})")),
    rule(
        "sentry_dsn",
        Check::None,
        r"(?-u:\b)https?://(?P<secret>[0-9a-f]{32})(?::[0-9a-f]{32})?@[A-Za-z0-9.\-]+(?::[0-9]+)?/[0-9]+",
    ),
    // ---- Model providers.
    rule("anthropic_api_key", Check::None, r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}"),
    rule("openai_api_key", Check::LooksRandom, r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    rule("huggingface_token", Check::None, prefixed!(r"(?:hf_[A-Za-z0-9]{34}|api_org_[A-Za-z0-9]{34})")),
    rule("groq_api_key", Check::None, prefixed!(r"gsk_[A-Za-z0-9]{52}")),
    rule("replicate_api_token", Check::None, prefixed!(r"r8_[A-Za-z0-9]{37}")),
    rule("perplexity_api_key", Check::None, prefixed!(r"pplx-[A-Za-z0-9]{48}")),
    rule("xai_api_key", Check::None, prefixed!(r"xai-[A-Za-z0-9]{80}")),
    rule("cohere_api_key", Check::None, provider_value!("cohere|co[_.\\-]api", "[A-Za-z0-9]{40}")),
    rule("mistral_api_key", Check::None, provider_value!("mistral", "[A-Za-z0-9]{32}")),
    rule("gemini_api_key", Check::None, provider_value!("gemini", "[A-Za-z0-9_\\-]{39}")),
    // ---- Tokens and credentials in protocols.
    rule("jwt", Check::None, r"(?-u:\b)eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    rule(
        "bearer_token",
        Check::NotPlaceholder,
        concat!(
            r#"(?-u:\b)(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:bearer|token|bot)[ \t]+(?:token=)?"#,
            r#"(?P<secret>[A-Za-z0-9\-._~+/%]+=*)"#,
        ),
    ),
    rule(
        "basic_auth",
        Check::NotPlaceholder,
        concat!(
            r#"(?-u:\b)(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:basic)[ \t]+"#,
            r#"(?P<secret>[A-Za-z0-9+/_.\-]+=*)"#,
        ),
    ),
    // "Bearer" outside a header is also a word ("the bearer certificates").
    rule("bearer_token", Check::LooksRandom, r"(?-u:\b)(?i-u:bearer)[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)"),
    // Any URL with a password in it: postgres, mysql, mongodb(+srv), redis, amqp, http.
    rule(
        "url_password",
        Check::NotPlaceholder,
        concat!(r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s:@/?#\[\]"'<>]*:"#, r#"(?P<secret>[^\s@/?#"'<>]+)@"#,),
    ),
    // ADO.NET / JDBC / ODBC style: `Server=db;User Id=app;Password=a b c;`.
    rule(
        "connection_string_password",
        Check::NotPlaceholder,
        r#";[ \t]*(?i-u:password|pwd)[ \t]*=[ \t]*(?P<secret>[^;\r\n"']+)"#,
    ),
    // ---- Generic `name = value`: the kind comes from the name (`password` or `secret`).
    named(Check::NamedValue, concat!(secret_name!(), r#"(?:=>|:=|[:=])[ \t]*\\?"(?P<secret>[^"\r\n]+?)\\?""#)),
    named(Check::NamedValue, concat!(secret_name!(), r#"(?:=>|:=|[:=])[ \t]*'(?P<secret>[^'\r\n]+)'"#)),
    named(Check::NamedBareValue, concat!(secret_name!(), r#"(?:=>|:=|=)[ \t]*"#, bare_value!())),
    named(Check::NamedRandomValue, concat!(secret_name!(), r#":[ \t]*"#, bare_value!())),
];

/// Provider formats and credentials by their context, added after the core table: a second
/// multi-pattern regex that runs only in the windows of its own anchors
/// ([`super::prefilter::PROVIDER_ANCHORS`]), so the core rules keep their speed on text where
/// none of these literals occurs. Where a core and a provider rule match at the same place,
/// the core rule wins.
pub(super) const PROVIDER_RULES: &[Rule] = &[
    // ---- More providers with fixed prefixes, suffixes or markers.
    rule("gitlab_token", Check::None, r"(?-u:\b)gl(?:agent|imt|ffct)-[A-Za-z0-9_\-]{20,}"),
    rule("azure_key", Check::None, prefixed!(r"[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}")),
    rule(
        "azure_key",
        Check::None,
        concat!(
            r"(?-u:\b)[A-Za-z0-9+/_\-]{30,76}(?:AzFu|AzSe|\+ASt|\+ASb|\+AEh|AzCa|ACDb|APIM|AzRl|\+ABa|\+ACR|AIoT|AzEv|AzFr)",
            r"[A-Za-z0-9+/_\-]{4,8}={0,2}",
        ),
    ),
    rule("api_token", Check::None, prefixed!(r"oy2[a-z0-9]{43}")),
    rule("api_token", Check::None, prefixed!(r"(?:AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56})")),
    rule("api_token", Check::None, prefixed!(r"A3-[A-Z0-9]{5,6}(?:-[A-Z0-9]{5,6}){5,6}")),
    rule("api_token", Check::None, prefixed!(r"ops_eyJ[A-Za-z0-9+/=_\-]{100,}")),
    rule("api_token", Check::None, prefixed!(r"rdme_[a-z0-9]{70}")),
    rule("newrelic_api_key", Check::None, prefixed!(r"(?:NRJS-[a-f0-9]{19}|NRAA-[a-f0-9]{27}|[a-f0-9]{36}NRAL)")),
    rule("api_token", Check::None, prefixed!(r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}")),
    rule("api_token", Check::None, prefixed!(r"sq[upa]_[a-f0-9]{40}")),
    rule("api_token", Check::None, prefixed!(r"sgp_(?:[a-f0-9]{16}_)?[a-f0-9]{40}")),
    rule("api_token", Check::None, prefixed!(r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}")),
    rule("api_token", Check::None, prefixed!(r"pat\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}")),
    rule("api_token", Check::LooksRandom, prefixed!(r"API-[A-Z0-9]{26,32}")),
    rule("api_token", Check::None, prefixed!(r"sha256~[A-Za-z0-9_\-]{43}")),
    rule("api_token", Check::None, prefixed!(r"tskey-[a-z]+-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,}")),
    rule("api_token", Check::None, prefixed!(r"dnkey-[A-Z0-9]{26}-[A-Z0-9]{52}")),
    rule("api_token", Check::None, prefixed!(r"ico-[A-Za-z0-9]{32}")),
    rule("api_token", Check::None, prefixed!(r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk")),
    rule(
        "api_token",
        Check::None,
        prefixed!(r"sc_[a-z0-9]{16,}\.[a-z0-9]{4,}\.acc_[a-z0-9]{16,}\.[A-Za-z0-9+/=]{30,}"),
    ),
    rule("api_token", Check::None, prefixed!(r"4b1d[A-Za-z0-9]{38}")),
    rule("api_token", Check::None, prefixed!(r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}")),
    rule("api_token", Check::None, prefixed!(r"sk_[a-f0-9]{48}")),
    rule("api_token", Check::None, prefixed!(r"tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}")),
    rule("api_token", Check::None, prefixed!(r"fc-[a-f0-9]{32}")),
    rule("api_token", Check::None, prefixed!(r"KEY[0-9A-F]{32}_[A-Za-z0-9]{22}")),
    rule("api_token", Check::LooksRandom, prefixed!(r"md-[A-Za-z0-9_\-]{22}")),
    rule("api_token", Check::None, prefixed!(r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}")),
    rule("api_token", Check::None, prefixed!(r"FLW(?:SECK|PUBK)(?:_TEST)?-[a-h0-9]{32}-X")),
    rule("api_token", Check::LooksRandom, prefixed!(r"live_[A-Za-z0-9]{30,}")),
    rule("api_token", Check::None, prefixed!(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}")),
    rule("api_token", Check::None, prefixed!(r"c[ks]_[a-f0-9]{40}")),
    rule("api_token", Check::None, prefixed!(r"shippo_(?:live|test)_[a-f0-9]{40}")),
    rule("api_token", Check::None, prefixed!(r"EZ[AT]K[a-z0-9]{54}")),
    rule("api_token", Check::None, prefixed!(r"duffel_(?:live|test)_[A-Za-z0-9_\-=]{43}")),
    rule("api_token", Check::None, prefixed!(r"tfp_[A-Za-z0-9_\-.=]{59}")),
    rule("api_token", Check::None, r"(?-u:\b)access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32}"),
    rule("api_token", Check::None, prefixed!(r"production_[a-z0-9]{8}_[a-z0-9]{16}")),
    rule("api_token", Check::None, prefixed!(r"[ps]k\.eyJ[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}")),
    rule("api_token", Check::None, prefixed!(r"EAA[A-Za-z0-9]{90,}")),
    rule("api_token", Check::LooksRandom, r"(?-u:\b)A{20,24}[A-Za-z0-9%]{60,}"),
    rule("api_token", Check::None, prefixed!(r"00D[A-Za-z0-9]{12}![A-Za-z0-9._]{80,}")),
    rule("api_token", Check::None, prefixed!(r"AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{120,}")),
    rule("api_token", Check::None, r"(?-u:\b)fm[12]_[A-Za-z0-9+/=]{100,}"),
    rule("api_token", Check::None, prefixed!(r"(?:sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_\-]{31,})")),
    rule("api_token", Check::None, prefixed!(r"napi_[a-z0-9]{64}")),
    rule("api_token", Check::None, prefixed!(r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}")),
    rule("api_token", Check::LooksRandom, prefixed!(r"K00[A-Za-z0-9+/]{27,32}")),
    rule("api_token", Check::None, r"(?-u:\b)ABSK[A-Za-z0-9+/]{100,}={0,2}"),
    rule("api_token", Check::None, prefixed!(r"(?:LTAI[A-Za-z0-9]{20}|AKID[A-Za-z0-9]{32})")),
    // ---- Webhook URLs: the path (or key) after the host is the credential.
    rule(
        "webhook_url",
        Check::None,
        r"(?P<secret>(?:https?://)?[A-Za-z0-9\-]{1,63}\.webhook\.office\.com/webhookb2/[A-Za-z0-9@\-]{36,}(?:/[A-Za-z0-9@\-]+){1,4})",
    ),
    rule(
        "webhook_url",
        Check::None,
        r"(?P<secret>(?:https?://)?[A-Za-z0-9\-]{1,63}\.[A-Za-z0-9\-]{1,63}\.logic\.azure\.com(?::443)?/workflows/[a-f0-9]{32}/triggers/[^\s'\x22<>]+)",
    ),
    rule("webhook_url", Check::None, r"(?P<secret>(?:https?://)?hooks\.zapier\.com/hooks/catch/[0-9]+/[A-Za-z0-9]+/?)"),
    rule("webhook_url", Check::None, r"(?P<secret>(?:https?://)?hook\.[a-z0-9]{1,8}\.make\.com/[a-z0-9]{32})"),
    rule(
        "webhook_url",
        Check::None,
        r"(?P<secret>(?:https?://)?maker\.ifttt\.com/trigger/[^/\s]+/with/key/[A-Za-z0-9_\-]{20,})",
    ),
    rule(
        "webhook_url",
        Check::None,
        r"(?P<secret>(?:https?://)?open\.(?:feishu\.cn|larksuite\.com)/open-apis/bot/v2/hook/[A-Za-z0-9\-]{20,})",
    ),
    rule(
        "webhook_url",
        Check::None,
        r"(?P<secret>(?:https?://)?qyapi\.weixin\.qq\.com/cgi-bin/webhook/send\?key=[A-Za-z0-9\-]{20,})",
    ),
    rule("webhook_url", Check::None, r"(?P<secret>(?:https?://)?chat\.googleapis\.com/v1/spaces/[^\s'\x22<>]+)"),
    rule(
        "webhook_url",
        Check::LooksRandom,
        r"(?P<secret>https?://[A-Za-z0-9.\-]{1,128}(?::[0-9]{1,5})?/hooks/[A-Za-z0-9]{24,}(?:/[A-Za-z0-9]{24,})?)(?:[^A-Za-z0-9/]|\z)",
    ),
    rule(
        "api_token",
        Check::LooksRandom,
        concat!(
            r"(?P<secret>https?://[^\s?'\x22<>]{1,256}\?(?:[^\s'\x22<>#]{0,256}&)?",
            r"(?i-u:api_key|apikey|api-key|hapikey|access_token|auth_token)=[A-Za-z0-9_\-]{16,})",
        ),
    ),
    // ---- Password hashes: a hash is as good as the password to an offline attacker.
    rule("password_hash", Check::None, r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}"),
    rule(
        "password_hash",
        Check::None,
        r"\$(?:1|5|6|apr1|y|gy|7|8|9|md5|sha1)\$(?:[./A-Za-z0-9=,]{1,64}\$){1,3}[./A-Za-z0-9]{22,}",
    ),
    rule("password_hash", Check::None, r"\$(?:argon2(?:id|i|d)|scrypt|pbkdf2[a-z0-9\-]*)\$[A-Za-z0-9=,$./+]{20,}"),
    rule("password_hash", Check::None, r"(?-u:\b)pbkdf2_sha(?:1|256|512)\$[0-9]+\$[A-Za-z0-9./]+\$[A-Za-z0-9+/=]{20,}"),
    rule(
        "password_hash",
        Check::None,
        r"(?-u:\b)(?:pbkdf2:sha(?:1|256|512):[0-9]+|scrypt:[0-9]+:[0-9]+:[0-9]+)\$[A-Za-z0-9./]+\$[a-f0-9]{40,}",
    ),
    rule("password_hash", Check::None, r"(?-u:\b)(?P<secret>[a-fA-F0-9]{32}:[a-fA-F0-9]{32}):::"),
    rule("password_hash", Check::None, r"\$krb5(?:asrep|tgs|pa)\$[0-9]+\$[^\s'\x22]{20,}"),
    rule(
        "password_hash",
        Check::None,
        r"::[^\s:]{1,64}:[a-fA-F0-9]{16}:[a-fA-F0-9]{32}:0101000000000000[a-fA-F0-9]{16,}",
    ),
    rule(
        "password_hash",
        Check::None,
        r"\{(?:SSHA|SSHA256|SSHA512|SHA|SHA256|SHA512|SMD5|MD5|CRYPT|PBKDF2[A-Z0-9\-]*)\}[A-Za-z0-9+/=.$]{20,}",
    ),
    rule(
        "password_hash",
        Check::None,
        r"(?-u:\b)SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+",
    ),
    rule("password_hash", Check::None, prefixed!(r"md5[a-f0-9]{32}")),
    rule("password_hash", Check::None, r"\$[PHS]\$[./A-Za-z0-9]{31,52}"),
    rule("password_hash", Check::None, r"(?-u:\b)grub\.pbkdf2\.sha512\.[0-9]+\.[A-Fa-f0-9]+\.[A-Fa-f0-9]+"),
    // ---- PuTTY keys: the whole file, through its MAC.
    rule(
        "putty_private_key",
        Check::None,
        r"PuTTY-User-Key-File-[23]:(?:[^\n\\]|\\[nr]|\r?\n)*?Private-MAC:[ \t]*[a-fA-F0-9]{40,64}",
    ),
    // ---- Credentials by their context: command lines, configuration formats, code.
    named(
        Check::NamedValue,
        concat!(
            r#"(?-u:\b)variable[ \t]+"(?P<key>[A-Za-z0-9_\-]{0,48}(?i-u:token|key|secret|password|pat|credentials?)[A-Za-z0-9_\-]{0,16})"[ \t]*\{"#,
            r#"[^}]*?default[ \t]*=[ \t]*"(?P<secret>[^"\r\n]+)""#,
        ),
    ),
    named(
        Check::NamedValue,
        concat!(
            r#"(?-u:\b)(?:environ\.get|getenv|env\.get|ENV\.fetch)\(?[ \t]*["'](?P<key>[A-Za-z0-9_]{1,64})["'][ \t]*,[ \t]*"#,
            r#"["'](?P<secret>[^"'\r\n]+)["']"#,
        ),
    ),
    named(
        Check::NamedValue,
        r#"process\.env\.(?P<key>[A-Za-z0-9_]{1,64})[ \t]*(?:\|\||\?\?)[ \t]*["'](?P<secret>[^"'\r\n]+)["']"#,
    ),
    named(Check::NamedValue, r#"(?-u:\b)key="(?P<key>[A-Za-z0-9_.:\-]{1,64})"[ \t]+value="(?P<secret>[^"\r\n]+)""#),
    named(
        Check::NamedBareValue,
        concat!(
            r#"[ \t]--(?P<key>(?:[a-z]+-){0,2}(?:key|token|secret|password|apikey|authkey|authtoken)(?:-secret)?)"#,
            r#"(?:[ \t]+|=)["']?(?P<secret>[^\s"'`]{8,})"#,
        ),
    ),
    rule(
        "password",
        Check::NotPlaceholder,
        r#"(?-u:\b)mysql(?:dump|admin)?[ \t][^\n]*?[ \t]-p'?(?P<secret>[^\s'`]{4,})"#,
    ),
    rule("password", Check::NotPlaceholder, r#"(?-u:\b)sqlcmd[ \t][^\n]*?[ \t]-P[ \t]+'?(?P<secret>[^\s'`]+)"#),
    rule("password", Check::NotPlaceholder, r#"(?-u:\b)ldap[a-z]{3,8}[ \t][^\n]*?[ \t]-w[ \t]+'?(?P<secret>[^\s'`]+)"#),
    rule(
        "password",
        Check::NotPlaceholder,
        r#"(?:^|[ \t])(?:-u|--user)[ \t=]+["']?[^\s:'"@`]{1,128}:(?P<secret>[^\s'"@`]{4,})"#,
    ),
    rule(
        "api_token",
        Check::LooksRandom,
        r#"(?:^|[ \t])(?:-u|--user)[ \t=]+["']?(?P<secret>[A-Za-z0-9_\-]{16,}):(?:[\s'"]|X[\s'"]|\z)"#,
    ),
    rule(
        "password",
        Check::NotPlaceholder,
        r"(?-u:\b)login[ \t]+[^\s]{1,128}[ \t\r\n]+password[ \t]+(?P<secret>[^\s`]+)",
    ),
    rule("password", Check::NotPlaceholder, r"(?-u:\b)(?:masterauth|requirepass)[ \t]+(?P<secret>[^\s`]+)"),
    rule(
        "password",
        Check::NotPlaceholder,
        r"(?m:^)[^\s:#]{1,128}:(?:5432|\*):[^\s:]{1,64}:[^\s:]{1,64}:(?P<secret>[^\s`]+)",
    ),
    rule(
        "password",
        Check::NotPlaceholder,
        r"(?-u:\b)(?:sqlplus|oracle:thin:)[ \t]*[A-Za-z0-9_$#]{1,30}/(?P<secret>[^\s@/`]+)@",
    ),
    rule(
        "secret",
        Check::NamedRandomValue,
        r#"(?m:^)[ \t]*["']?[A-Za-z][A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,4}-(?i-u:key|token)["']?[ \t]*:[ \t]*["']?(?P<secret>[A-Za-z0-9_\-+/=.]{16,})"#,
    ),
    rule("password", Check::None, r#""auth"[ \t]*:[ \t]*"(?P<secret>[A-Za-z0-9+/]{12,}={0,2})""#),
];

/// The kinds the generic `name = value` rules report, decided by the name.
pub(super) const KEY_KINDS: &[&str] = &["password", "secret"];
