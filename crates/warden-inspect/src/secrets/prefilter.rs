//! The literal prefilter: one Aho-Corasick pass finds the places a secret could be, and
//! the rules' regex runs only in windows around them.
//!
//! Soundness rests on one invariant, checked by tests over every rule's examples: **every
//! text a rule matches contains one of the [`ANCHORS`], at most [`Anchor::back`] bytes
//! after the match starts, and the anchor's [`Gate`] accepts it.** Rules with no literal
//! of their own carry the provider's name in their pattern (see `rules.rs`), so that name
//! is their anchor; no rule needs an always-run regex.
//!
//! A window runs from `back` bytes before an accepted anchor to the end of the anchor's
//! line, but at most [`MAX_FORWARD`] bytes past the anchor. No rule's match crosses a
//! line break except the private key blocks, which begin with their anchor and match
//! any prefix of themselves: a match that reaches the window's end is re-run to its
//! natural end, so PEM blocks, data URIs and long tokens are found whole. What the
//! windows cannot see is a match on a line longer than [`MAX_FORWARD`] whose *closing*
//! delimiter lies more than [`MAX_FORWARD`] bytes past its anchor: a quoted value or a
//! URL user name of that length, or a GCP service-account key in one-line JSON (its PEM
//! block is still found, as `private_key`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// How far past an anchor a window reaches, at most, on a long line.
pub(super) const MAX_FORWARD: usize = 1024;

/// When an anchor hit is worth a regex run: a cheap look at the bytes around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Always.
    Any,
    /// Only when the hit has the anchor's exact case (the automaton ignores case).
    Exact,
    /// A name word: only when an assignment (`=` or `:`) follows within a few name
    /// characters, a quote and blanks: `password=`, `"api_key": `, `Token\":`.
    Assign,
    /// `://`: only when the authority before the first `/` holds an `@`.
    UrlUserinfo,
    /// As `Exact`, and the literal starts a word: the byte before it is not a letter, digit or
    /// `_` (`re_…` is a Resend key; `are_` is not).
    Word,
    /// As `Exact`, and the window runs on over line ends, up to [`MAX_BLOCK`]: for credentials
    /// that span lines (a PuTTY key file, a Terraform variable block).
    Block,
}

/// How far a [`Gate::Block`] window reaches forward.
pub(super) const MAX_BLOCK: usize = 8 * 1024;

pub(super) struct Anchor {
    pub(super) literal: &'static str,
    pub(super) gate: Gate,
    /// How far before the anchor a match may start.
    pub(super) back: usize,
}

const fn anchor(literal: &'static str, gate: Gate, back: usize) -> Anchor {
    Anchor { literal, gate, back }
}

/// The anchors. Matched ASCII-case-insensitively, in one automaton.
pub(super) const ANCHORS: &[Anchor] = &[
    anchor(";base64,", Gate::Any, 400),
    anchor("-----BEGIN", Gate::Exact, 32),
    anchor("AGE-SECRET-KEY-1", Gate::Exact, 0),
    anchor("AKIA", Gate::Exact, 0),
    anchor("ASIA", Gate::Exact, 0),
    anchor("ABIA", Gate::Exact, 0),
    anchor("ACCA", Gate::Exact, 0),
    anchor("GOCSPX-", Gate::Exact, 0),
    anchor("ya29.", Gate::Exact, 0),
    anchor("1//0", Gate::Exact, 0),
    anchor("AIza", Gate::Exact, 0),
    anchor("AccountKey", Gate::Any, 0),
    anchor("sig=", Gate::Exact, 1),
    anchor("Q~", Gate::Exact, 4),
    anchor("_v1_", Gate::Exact, 3),
    anchor("HRKU-", Gate::Exact, 0),
    anchor("hvs.", Gate::Exact, 0),
    anchor("hvb.", Gate::Exact, 0),
    anchor(".atlasv1.", Gate::Exact, 14),
    anchor("dapi", Gate::Exact, 0),
    anchor("dp.", Gate::Exact, 0),
    anchor("pscale_", Gate::Exact, 0),
    anchor("ghp_", Gate::Exact, 0),
    anchor("gho_", Gate::Exact, 0),
    anchor("ghu_", Gate::Exact, 0),
    anchor("ghs_", Gate::Exact, 0),
    anchor("ghr_", Gate::Exact, 0),
    anchor("github_pat_", Gate::Exact, 0),
    anchor("gldt-", Gate::Exact, 0),
    anchor("glrt-", Gate::Exact, 0),
    anchor("GR1348941", Gate::Exact, 0),
    anchor("glpat-", Gate::Exact, 0),
    anchor("glptt-", Gate::Exact, 0),
    anchor("glcbt-", Gate::Exact, 0),
    anchor("glft-", Gate::Exact, 0),
    anchor("glsoat-", Gate::Exact, 0),
    anchor("gloas-", Gate::Exact, 0),
    anchor("ATBB", Gate::Exact, 0),
    anchor("ATCTT3", Gate::Exact, 0),
    anchor("ATATT3", Gate::Exact, 0),
    anchor("npm_", Gate::Exact, 0),
    anchor("pypi-AgEI", Gate::Exact, 0),
    anchor("dckr_", Gate::Exact, 0),
    anchor("lin_api_", Gate::Exact, 0),
    anchor("ntn_", Gate::Exact, 0),
    anchor("PMAK-", Gate::Exact, 0),
    anchor("glsa_", Gate::Exact, 0),
    anchor("glc_", Gate::Exact, 0),
    anchor("xapp-", Gate::Exact, 0),
    anchor("xox", Gate::Exact, 5),
    anchor("hooks.slack.com", Gate::Exact, 0),
    anchor("/api/webhooks/", Gate::Any, 16),
    anchor("discord", Gate::Any, 0),
    anchor(":AA", Gate::Exact, 14),
    anchor("whsec_", Gate::Exact, 0),
    anchor("k_live_", Gate::Exact, 1),
    anchor("k_test_", Gate::Exact, 1),
    anchor("sq0", Gate::Exact, 0),
    anchor("SK", Gate::Exact, 0),
    anchor("twilio", Gate::Assign, 0),
    anchor("SG.", Gate::Exact, 0),
    anchor("key-", Gate::Exact, 0),
    anchor("-us", Gate::Exact, 32),
    anchor("datadog", Gate::Assign, 0),
    anchor("dd_a", Gate::Any, 0),
    anchor("dd-a", Gate::Any, 0),
    anchor("dd.a", Gate::Any, 0),
    anchor("ddapi", Gate::Any, 0),
    anchor("ddapp", Gate::Any, 0),
    anchor("NRAK-", Gate::Exact, 0),
    anchor("NRII-", Gate::Exact, 0),
    anchor("sntry", Gate::Exact, 0),
    anchor("sk-", Gate::Exact, 0),
    anchor("hf_", Gate::Exact, 0),
    anchor("api_org_", Gate::Exact, 0),
    anchor("gsk_", Gate::Exact, 0),
    anchor("r8_", Gate::Exact, 0),
    anchor("pplx-", Gate::Exact, 0),
    anchor("xai-", Gate::Exact, 0),
    anchor("cohere", Gate::Assign, 0),
    anchor("co_api", Gate::Assign, 0),
    anchor("co-api", Gate::Assign, 0),
    anchor("co.api", Gate::Assign, 0),
    anchor("mistral", Gate::Assign, 0),
    anchor("gemini", Gate::Assign, 0),
    anchor("heroku", Gate::Assign, 0),
    anchor("eyJ", Gate::Exact, 0),
    anchor("bearer", Gate::Any, 0),
    anchor("://", Gate::UrlUserinfo, 40),
    // The generic `name = value` rules' name words (see `secret_name!`), and the words
    // of the named provider rules above.
    anchor("pass", Gate::Assign, 64),
    anchor("pwd", Gate::Assign, 64),
    anchor("secret", Gate::Assign, 64),
    anchor("token", Gate::Assign, 64),
    anchor("key", Gate::Assign, 64),
    anchor("credential", Gate::Assign, 64),
    anchor("authorization", Gate::Assign, 64),
    anchor("cookie", Gate::Assign, 64),
    anchor("session", Gate::Assign, 64),
];

/// The anchors of [`super::rules::PROVIDER_RULES`]: their windows run that table only.
pub(super) const PROVIDER_ANCHORS: &[Anchor] = &[
    // Providers with fixed prefixes, suffixes or markers.
    anchor("glagent-", Gate::Word, 0),
    anchor("glimt-", Gate::Word, 0),
    anchor("glffct-", Gate::Word, 0),
    anchor("AZDO", Gate::Exact, 76),
    anchor("AzFu", Gate::Exact, 76),
    anchor("AzSe", Gate::Exact, 76),
    anchor("+ASt", Gate::Exact, 76),
    anchor("+ASb", Gate::Exact, 76),
    anchor("+AEh", Gate::Exact, 76),
    anchor("AzCa", Gate::Exact, 76),
    anchor("ACDb", Gate::Exact, 76),
    anchor("APIM", Gate::Exact, 76),
    anchor("AzRl", Gate::Exact, 76),
    anchor("+ABa", Gate::Exact, 76),
    anchor("+ACR", Gate::Exact, 76),
    anchor("AIoT", Gate::Exact, 76),
    anchor("AzEv", Gate::Exact, 76),
    anchor("AzFr", Gate::Exact, 76),
    anchor("oy2", Gate::Word, 0),
    anchor("AKCp", Gate::Word, 0),
    anchor("cmVmdGtu", Gate::Word, 0),
    anchor("A3-", Gate::Word, 0),
    anchor("ops_eyJ", Gate::Word, 0),
    anchor("rdme_", Gate::Word, 0),
    anchor("NRJS-", Gate::Word, 0),
    anchor("NRAA-", Gate::Word, 0),
    anchor("NRAL", Gate::Exact, 36),
    anchor("dt0c01.", Gate::Word, 0),
    anchor("squ_", Gate::Word, 0),
    anchor("sqp_", Gate::Word, 0),
    anchor("sqa_", Gate::Word, 0),
    anchor("sgp_", Gate::Word, 0),
    anchor("CCIPAT_", Gate::Word, 0),
    anchor("pat.", Gate::Word, 0),
    anchor("API-", Gate::Word, 0),
    anchor("sha256~", Gate::Word, 0),
    anchor("tskey-", Gate::Word, 0),
    anchor("dnkey-", Gate::Word, 0),
    anchor("ico-", Gate::Word, 0),
    anchor("_mmk", Gate::Exact, 40),
    anchor("sc_", Gate::Word, 0),
    anchor("4b1d", Gate::Word, 0),
    anchor("lsv2_", Gate::Word, 0),
    anchor("sk_", Gate::Word, 0),
    anchor("tvly-", Gate::Word, 0),
    anchor("fc-", Gate::Word, 0),
    anchor("KEY", Gate::Word, 0),
    anchor("md-", Gate::Word, 0),
    anchor("re_", Gate::Word, 0),
    anchor("FLWSECK", Gate::Word, 0),
    anchor("FLWPUBK", Gate::Word, 0),
    anchor("live_", Gate::Word, 0),
    anchor("shpat_", Gate::Word, 0),
    anchor("shpca_", Gate::Word, 0),
    anchor("shppa_", Gate::Word, 0),
    anchor("shpss_", Gate::Word, 0),
    anchor("ck_", Gate::Word, 0),
    anchor("cs_", Gate::Word, 0),
    anchor("shippo_", Gate::Word, 0),
    anchor("EZAK", Gate::Word, 0),
    anchor("EZTK", Gate::Word, 0),
    anchor("duffel_", Gate::Word, 0),
    anchor("tfp_", Gate::Word, 0),
    anchor("access_token$", Gate::Word, 0),
    anchor("production_", Gate::Word, 0),
    anchor("k.eyJ", Gate::Exact, 1),
    anchor("EAA", Gate::Word, 0),
    anchor("AAAAAAAAAAAAAAAAAAAA", Gate::Exact, 4),
    anchor("00D", Gate::Word, 0),
    anchor(":APA91b", Gate::Exact, 12),
    anchor("fm1_", Gate::Word, 0),
    anchor("fm2_", Gate::Word, 0),
    anchor("sbp_", Gate::Word, 0),
    anchor("sb_secret_", Gate::Word, 0),
    anchor("napi_", Gate::Word, 0),
    anchor("v1.0-", Gate::Word, 0),
    anchor("K00", Gate::Word, 0),
    anchor("ABSK", Gate::Word, 0),
    anchor("LTAI", Gate::Word, 0),
    anchor("AKID", Gate::Word, 0),
    // Webhook hosts.
    anchor(".webhook.office.com/", Gate::Any, 64),
    anchor(".logic.azure.com", Gate::Any, 64),
    anchor("hooks.zapier.com/", Gate::Any, 8),
    anchor(".make.com/", Gate::Any, 24),
    anchor("maker.ifttt.com/", Gate::Any, 8),
    anchor("/open-apis/bot/v2/hook/", Gate::Any, 32),
    anchor("qyapi.weixin.qq.com/", Gate::Any, 8),
    anchor("chat.googleapis.com/", Gate::Any, 8),
    anchor("api_key=", Gate::Any, 1100),
    anchor("apikey=", Gate::Any, 1100),
    anchor("api-key=", Gate::Any, 1100),
    anchor("access_token=", Gate::Any, 1100),
    anchor("auth_token=", Gate::Any, 1100),
    anchor("-key:", Gate::Any, 110),
    anchor("-token:", Gate::Any, 110),
    anchor("-key\":", Gate::Any, 110),
    anchor("-key':", Gate::Any, 110),
    anchor("/hooks/", Gate::Exact, 150),
    // Password hashes.
    anchor("$2$", Gate::Exact, 0),
    anchor("$2a$", Gate::Exact, 0),
    anchor("$2b$", Gate::Exact, 0),
    anchor("$2x$", Gate::Exact, 0),
    anchor("$2y$", Gate::Exact, 0),
    anchor("$1$", Gate::Exact, 0),
    anchor("$5$", Gate::Exact, 0),
    anchor("$6$", Gate::Exact, 0),
    anchor("$7$", Gate::Exact, 0),
    anchor("$8$", Gate::Exact, 0),
    anchor("$9$", Gate::Exact, 0),
    anchor("$y$", Gate::Exact, 0),
    anchor("$gy$", Gate::Exact, 0),
    anchor("$apr1$", Gate::Exact, 0),
    anchor("$md5$", Gate::Exact, 0),
    anchor("$sha1$", Gate::Exact, 0),
    anchor("$argon2", Gate::Exact, 0),
    anchor("$scrypt$", Gate::Exact, 0),
    anchor("$pbkdf2", Gate::Exact, 0),
    anchor("pbkdf2_sha", Gate::Word, 0),
    anchor("pbkdf2:sha", Gate::Word, 0),
    anchor("scrypt:", Gate::Word, 0),
    anchor(":::", Gate::Exact, 66),
    anchor("$krb5", Gate::Exact, 0),
    anchor(":0101000000000000", Gate::Exact, 400),
    anchor("{SSHA", Gate::Exact, 0),
    anchor("{SHA", Gate::Exact, 0),
    anchor("{SMD5}", Gate::Exact, 0),
    anchor("{MD5}", Gate::Exact, 0),
    anchor("{CRYPT}", Gate::Exact, 0),
    anchor("{PBKDF2", Gate::Exact, 0),
    anchor("SCRAM-SHA-256$", Gate::Word, 0),
    anchor("md5", Gate::Word, 0),
    anchor("$P$", Gate::Exact, 0),
    anchor("$H$", Gate::Exact, 0),
    anchor("$S$", Gate::Exact, 0),
    anchor("grub.pbkdf2.", Gate::Word, 0),
    anchor("PuTTY-User-Key-File-", Gate::Block, 0),
    // Credentials by their context.
    anchor("variable \"", Gate::Block, 0),
    anchor("environ.get", Gate::Word, 0),
    anchor("getenv", Gate::Word, 0),
    anchor("env.get", Gate::Exact, 0),
    anchor("ENV.fetch", Gate::Exact, 0),
    anchor("process.env.", Gate::Word, 0),
    anchor("key=\"", Gate::Exact, 0),
    // Command-line flags: `--api-key VALUE`, `--password 'VALUE'`.
    anchor("-key ", Gate::Exact, 64),
    anchor("-key=", Gate::Exact, 64),
    anchor("-token ", Gate::Exact, 64),
    anchor("-token=", Gate::Exact, 64),
    anchor("-secret ", Gate::Exact, 64),
    anchor("-secret=", Gate::Exact, 64),
    anchor("-password ", Gate::Exact, 64),
    anchor("-password=", Gate::Exact, 64),
    anchor("--apikey", Gate::Exact, 1),
    anchor("--authkey", Gate::Exact, 1),
    anchor("--authtoken", Gate::Exact, 1),
    anchor("mysql", Gate::Word, 0),
    anchor("sqlcmd", Gate::Word, 0),
    anchor("ldap", Gate::Word, 0),
    anchor("-u ", Gate::Exact, 1),
    anchor("--user", Gate::Exact, 1),
    // A netrc entry runs over lines (`login u` then `password p`).
    anchor("login ", Gate::Block, 0),
    anchor("masterauth", Gate::Word, 0),
    anchor("requirepass", Gate::Word, 0),
    anchor(":5432:", Gate::Exact, 130),
    anchor(":*:", Gate::Exact, 130),
    anchor("sqlplus", Gate::Word, 0),
    anchor("oracle:thin:", Gate::Exact, 0),
    anchor("\"auth\"", Gate::Exact, 0),
];

/// The compiled anchors.
#[derive(Debug)]
pub(super) struct Prefilter {
    automaton: AhoCorasick,
}

impl Prefilter {
    pub(super) fn new() -> Prefilter {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(ANCHORS.iter().chain(PROVIDER_ANCHORS).map(|a| a.literal))
            // Constant literals: failure is a bug here, never a consequence of input.
            .expect("builtin anchors compile");
        Prefilter { automaton }
    }

    /// The windows of `text` the core rules must be run over, and those the provider rules
    /// must be run over, each in order and disjoint; both empty when `text` holds no accepted
    /// anchor.
    pub(super) fn windows(&self, text: &str, out: &mut Windows) {
        out.core.clear();
        out.providers.clear();
        let bytes = text.as_bytes();
        for hit in self.automaton.find_overlapping_iter(text) {
            let index = hit.pattern().as_usize();
            let (anchor, list) = match ANCHORS.get(index) {
                Some(anchor) => (anchor, &mut out.core),
                None => (&PROVIDER_ANCHORS[index - ANCHORS.len()], &mut out.providers),
            };
            if !accepts(anchor, bytes, hit.start(), hit.end()) {
                continue;
            }
            let start = floor_char_boundary(text, hit.start().saturating_sub(anchor.back));
            // A hit inside the window pushed last adds nothing (a run of `A` or `:` matches an
            // anchor at every byte): skip it before looking for its line end.
            // Only when that window ends at a line end (or the text's): a hit on the same line
            // would end its window there too.
            let covered = list.last().is_some_and(|last| {
                last.start <= start
                    && hit.end() < last.end
                    && (last.end == text.len() || bytes.get(last.end - 1) == Some(&b'\n'))
            });
            if covered && anchor.gate != Gate::Block {
                continue;
            }
            let end = if anchor.gate == Gate::Block {
                ceil_char_boundary(text, hit.end().saturating_add(MAX_BLOCK).min(text.len()))
            } else {
                let limit = hit.end().saturating_add(MAX_FORWARD).min(text.len());
                let line_end = bytes[hit.end()..limit].iter().position(|&b| b == b'\n').map(|i| hit.end() + i + 1);
                ceil_char_boundary(text, line_end.unwrap_or(limit))
            };
            list.push(start..end);
        }
        merge_windows(&mut out.core);
        merge_windows(&mut out.providers);
    }
}

/// Where each rule table must run.
#[derive(Debug, Default)]
pub(super) struct Windows {
    pub(super) core: Vec<std::ops::Range<usize>>,
    pub(super) providers: Vec<std::ops::Range<usize>>,
}

impl Windows {
    pub(super) fn is_empty(&self) -> bool {
        self.core.is_empty() && self.providers.is_empty()
    }
}

/// Sorts windows and merges those that overlap or touch.
fn merge_windows(out: &mut Vec<std::ops::Range<usize>>) {
    // Hits arrive in order of where they end, and reach back by different amounts.
    out.sort_unstable_by_key(|w| w.start);
    let mut merged = 0;
    for i in 0..out.len() {
        if merged > 0 && out[i].start <= out[merged - 1].end {
            out[merged - 1].end = out[merged - 1].end.max(out[i].end);
        } else {
            out[merged] = out[i].clone();
            merged += 1;
        }
    }
    out.truncate(merged);
}

fn accepts(anchor: &Anchor, bytes: &[u8], start: usize, end: usize) -> bool {
    match anchor.gate {
        Gate::Any => true,
        Gate::Exact | Gate::Block => bytes.get(start..end) == Some(anchor.literal.as_bytes()),
        Gate::Word => {
            bytes.get(start..end) == Some(anchor.literal.as_bytes())
                && (start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_'))
        }
        Gate::Assign => assignment_follows(bytes, end),
        Gate::UrlUserinfo => {
            let authority = bytes.get(end..).unwrap_or_default();
            authority
                .iter()
                .take(1024)
                .take_while(|b| {
                    !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>') && !b.is_ascii_whitespace()
                })
                .any(|&b| b == b'@')
        }
    }
}

/// Does an assignment follow a name word ending at `at`: up to 32 more name characters,
/// an optional backslash and quote, blanks, then `=` or `:`?
fn assignment_follows(bytes: &[u8], at: usize) -> bool {
    let mut rest = bytes.get(at..).unwrap_or_default().iter().copied().take(160).peekable();
    let mut skipped = 0;
    while rest.peek().is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) && skipped < 32 {
        rest.next();
        skipped += 1;
    }
    if rest.peek() == Some(&b'\\') {
        rest.next();
    }
    if rest.peek().is_some_and(|b| matches!(b, b'"' | b'\'')) {
        rest.next();
    }
    while rest.peek().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        rest.next();
    }
    rest.next().is_some_and(|b| matches!(b, b'=' | b':'))
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}
