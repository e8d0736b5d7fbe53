//! Secret redaction: find credentials in text and JSON and replace them with a marker
//! that names their kind, `[REDACTED:<kind>]`.
//!
//! The rules are a table (`rules::RULES`) compiled once into one multi-pattern regex.
//! A text is first scanned once for the rules' literal anchors with Aho-Corasick
//! (`prefilter`); text with none is returned untouched, and otherwise the regex runs only
//! in windows around the anchors, so the cost does not grow with the number of rules.
//! Redaction is idempotent: a marker is never itself redacted. The kinds and what each
//! matches are listed in `docs/secrets.md`.

mod checks;
mod keys;
mod prefilter;
mod rules;

#[cfg(test)]
mod examples;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, Span};
use serde_json::Value;

use self::checks::{is_marker, judge};
use self::keys::classify_key;
use self::prefilter::Prefilter;
use self::prefilter::Windows;
use self::rules::{Check, KEY_KINDS, Kind, PROVIDER_RULES, RULES, Rule};

/// How deep [`SecretScanner::redact_json`] descends. A value nested deeper is replaced by
/// `[REDACTED:depth_limit]`: it is not inspected, so it is not passed on either.
pub const MAX_JSON_DEPTH: usize = 128;

/// The kind counted for a value cut off at [`MAX_JSON_DEPTH`].
pub const DEPTH_LIMIT_KIND: &str = "depth_limit";

/// What a redaction pass replaced: how many secrets, and how many of each kind.
///
/// Kinds are the rule names in the marker (`aws_access_key_id`, `jwt`, `password`, …),
/// so a count can go to the audit log without the secret.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Redactions {
    /// Secrets replaced in all.
    pub total: u32,
    /// Secrets replaced, by kind.
    pub by_kind: BTreeMap<&'static str, u32>,
}

impl Redactions {
    /// Nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub(crate) fn record(&mut self, kind: &'static str) {
        self.total = self.total.saturating_add(1);
        let count = self.by_kind.entry(kind).or_insert(0);
        *count = count.saturating_add(1);
    }

    pub(crate) fn merge(&mut self, other: Redactions) {
        self.total = self.total.saturating_add(other.total);
        for (kind, n) in other.by_kind {
            let count = self.by_kind.entry(kind).or_insert(0);
            *count = count.saturating_add(n);
        }
    }
}

/// Finds secrets in text and JSON and replaces them with a marker naming their kind.
///
/// Build one per process and share it: construction compiles every rule, while
/// scanning is a single linear pass. It is `Send + Sync`.
///
/// ```
/// use warden_inspect::SecretScanner;
///
/// let scanner = SecretScanner::new();
/// let (text, found) = scanner.redact_str("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE");
/// assert_eq!(text, "export AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]");
/// assert_eq!(found.by_kind["aws_access_key_id"], 1);
///
/// let mut args = serde_json::json!({"query": "status", "auth_token": "s3cr3t", "max_tokens": 512});
/// let found = scanner.redact_json(&mut args);
/// assert_eq!(args["auth_token"], "[REDACTED:secret]");
/// assert_eq!(args["max_tokens"], 512);
/// assert_eq!(found.total, 1);
/// ```
#[derive(Debug)]
pub struct SecretScanner {
    /// The core rules ([`RULES`]).
    regex: Regex,
    /// The provider rules ([`PROVIDER_RULES`]), run only in their own anchors' windows.
    providers: Regex,
    prefilter: Prefilter,
}

/// Which rule table a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Core,
    Providers,
}

/// Capture slots for both tables' regexes.
struct Caps {
    core: Captures,
    providers: Captures,
}

impl Caps {
    fn of(&mut self, table: Table) -> &mut Captures {
        match table {
            Table::Core => &mut self.core,
            Table::Providers => &mut self.providers,
        }
    }
}

/// Where a secret is and what kind it is; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMatch {
    /// The marker kind, as in [`Redactions::by_kind`] (`github_token`, `password`, …).
    pub kind: &'static str,
    /// Byte range of the secret in the scanned text: what [`SecretScanner::redact_str`]
    /// would replace.
    pub span: Range<usize>,
}

/// Every kind a scanner can report, sorted and without duplicates; computed once.
static KINDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut kinds: Vec<&'static str> = RULES
        .iter()
        .chain(PROVIDER_RULES)
        .filter_map(|rule| match rule.kind {
            Kind::Fixed(kind) if rule.check != Check::Benign => Some(kind),
            _ => None,
        })
        .chain(KEY_KINDS.iter().copied())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
});

impl Default for SecretScanner {
    fn default() -> Self {
        Self::new()
    }
}

/// Upper bound of the rules' lazy-DFA cache, per thread.
const DFA_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl SecretScanner {
    /// Compiles the builtin rules.
    pub fn new() -> SecretScanner {
        let build = |rules: &[Rule]| {
            let patterns: Vec<&str> = rules.iter().map(|rule| rule.pattern).collect();
            // Near a hundred patterns make a large lazy DFA: with the default 2 MiB cache,
            // adversarial text (a repeated anchor) evicts states faster than they pay off and
            // the search falls back to a far slower engine. The capacity is a per-thread upper
            // bound, not an allocation.
            // The patterns are constants, and a test compiles them: failure here is a bug in
            // this crate, never a consequence of input.
            Regex::builder()
                .configure(Regex::config().hybrid_cache_capacity(DFA_CACHE_BYTES))
                .build_many(&patterns)
                .expect("builtin secret rules compile")
        };
        SecretScanner { regex: build(RULES), providers: build(PROVIDER_RULES), prefilter: Prefilter::new() }
    }

    /// The kinds of secret the builtin rules report, sorted: the names that appear in
    /// markers and in [`Redactions::by_kind`]. [`DEPTH_LIMIT_KIND`] is not among them.
    pub fn kinds() -> &'static [&'static str] {
        KINDS.as_slice()
    }

    /// The rules' patterns, in priority order (for measuring them one by one).
    #[doc(hidden)]
    pub fn patterns() -> Vec<&'static str> {
        RULES.iter().chain(PROVIDER_RULES).map(|rule| rule.pattern).collect()
    }

    /// How many distinct kinds of secret the builtin rules detect.
    pub fn detector_count() -> usize {
        KINDS.len()
    }

    /// Where the secrets in `text` are and of what kind, in order and non-overlapping:
    /// the spans the first scan of [`SecretScanner::redact_str`] replaces.
    ///
    /// ```
    /// use warden_inspect::SecretScanner;
    ///
    /// let scanner = SecretScanner::new();
    /// let found = scanner.find("deploy with ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 now");
    /// assert_eq!(found[0].kind, "github_token");
    /// assert_eq!(found[0].span, 12..52);
    /// ```
    pub fn find(&self, text: &str) -> Vec<SecretMatch> {
        let mut windows = Windows::default();
        if text.len() <= QUICK_CHECK_BYTES && !self.may_hold_secret(text, &mut windows) {
            return Vec::new();
        }
        let mut caps = self.create_caps();
        let mut matches = Vec::new();
        let mut found = Vec::new();
        let mut segment_start = 0;
        while segment_start <= text.len() {
            let (segment_end, next) =
                next_marker(text, segment_start).map_or((text.len(), text.len() + 1), |m| (m.start, m.end));
            found.clear();
            self.find_secrets_windowed(&text[segment_start..segment_end], &mut caps, &mut windows, &mut found);
            matches.extend(
                found.iter().map(|&(span, kind)| SecretMatch {
                    kind,
                    span: segment_start + span.start..segment_start + span.end,
                }),
            );
            segment_start = next;
        }
        matches
    }

    /// Replaces every secret in `text` with its marker. Borrows `text` back unchanged
    /// when there is nothing to redact.
    ///
    /// Markers already in `text` are boundaries: the text on either side is scanned as
    /// if it ended there. The text is scanned again after a change, until a scan finds
    /// nothing, which is what makes a second redaction find nothing.
    pub fn redact_str<'a>(&self, text: &'a str) -> (Cow<'a, str>, Redactions) {
        if text.len() <= QUICK_CHECK_BYTES && !self.may_hold_secret(text, &mut Windows::default()) {
            return (Cow::Borrowed(text), Redactions::default());
        }
        self.redact_str_with(text, &mut self.create_caps())
    }

    /// Whether any rule could match in `text`: the prefilter picks a window of it. The text
    /// between markers holds no window the whole text does not (a marker only ends what an
    /// anchor looks at), so a text without one is done without running any rule.
    fn may_hold_secret(&self, text: &str, windows: &mut Windows) -> bool {
        self.prefilter.windows(text, windows);
        !windows.is_empty()
    }

    fn create_caps(&self) -> Caps {
        Caps { core: self.regex.create_captures(), providers: self.providers.create_captures() }
    }

    fn table(&self, table: Table) -> (&Regex, &'static [Rule]) {
        match table {
            Table::Core => (&self.regex, RULES),
            Table::Providers => (&self.providers, PROVIDER_RULES),
        }
    }

    fn redact_str_with<'a>(&self, text: &'a str, caps: &mut Caps) -> (Cow<'a, str>, Redactions) {
        let (mut out, mut redactions, mut glued) = self.redact_pass(text, caps);
        // A marker glued to what is left of a value splits it in two (`API_KEY: A0x9z=ghp_…`
        // keeps `A0x9z=`, which alone is a value), so the lines around such markers are
        // scanned again until nothing changes: a second redaction then finds nothing. Each
        // changing pass replaces unmarked text, so this ends.
        for _ in 1..MAX_PASSES {
            let Cow::Owned(current) = &out else { break };
            if glued.is_empty() {
                break;
            }
            let mut rebuilt = String::with_capacity(current.len());
            let (mut copied, mut next_glued) = (0, Vec::new());
            for line in lines_around(current, &glued) {
                let (again, found, again_glued) = self.redact_pass(&current[line.clone()], caps);
                let Cow::Owned(again) = again else { continue };
                rebuilt.push_str(&current[copied..line.start]);
                let offset = rebuilt.len();
                next_glued.extend(again_glued.into_iter().map(|m| m.start + offset..m.end + offset));
                rebuilt.push_str(&again);
                copied = line.end;
                redactions.merge(found);
            }
            if copied == 0 {
                break;
            }
            rebuilt.push_str(&current[copied..]);
            (out, glued) = (Cow::Owned(rebuilt), next_glued);
        }
        (out, redactions)
    }

    /// One scan of `text`, replacing what it finds; and where in the result the markers are
    /// that touch text that could be part of a value (a letter, a digit, `=`, `:`, …).
    fn redact_pass<'a>(&self, text: &'a str, caps: &mut Caps) -> (Cow<'a, str>, Redactions, Vec<Range<usize>>) {
        let value_char = |c: Option<char>| {
            c.is_some_and(|c| {
                c.is_alphanumeric() || matches!(c, '=' | ':' | '+' | '/' | '_' | '-' | '.' | '@' | '%' | '$')
            })
        };
        let mut glued = Vec::new();
        let mut redactions = Redactions::default();
        let mut out = String::new();
        let mut found = Vec::new();
        let mut copied = 0;
        let mut windows = Windows::default();
        let mut segment_start = 0;
        while segment_start <= text.len() {
            let (segment_end, next) =
                next_marker(text, segment_start).map_or((text.len(), text.len() + 1), |m| (m.start, m.end));
            found.clear();
            self.find_secrets_windowed(&text[segment_start..segment_end], caps, &mut windows, &mut found);
            for &(span, kind) in &found {
                let (start, end) = (segment_start + span.start, segment_start + span.end);
                out.push_str(&text[copied..segment_start + span.start]);
                let at = out.len();
                push_marker(&mut out, kind);
                if value_char(text[..start].chars().next_back()) || value_char(text[end..].chars().next()) {
                    glued.push(at..out.len());
                }
                copied = segment_start + span.end;
                redactions.record(kind);
            }
            segment_start = next;
        }
        if redactions.is_empty() {
            return (Cow::Borrowed(text), redactions, Vec::new());
        }
        out.push_str(&text[copied..]);
        (Cow::Owned(out), redactions, glued)
    }

    /// Appends the spans to replace in `text`, in order, and their kinds, running the
    /// rules only in the windows the prefilter picks (see [`prefilter`]).
    fn find_secrets_windowed(
        &self,
        text: &str,
        caps: &mut Caps,
        windows: &mut Windows,
        secrets: &mut Vec<(Span, &'static str)>,
    ) {
        self.prefilter.windows(text, windows);
        let before = secrets.len();
        let mut at = 0;
        for window in &windows.core {
            let start = window.start.max(at);
            if start < window.end {
                at = self.find_secrets_in(Table::Core, text, start..window.end, caps, 0, secrets);
            }
        }
        if windows.providers.is_empty() {
            return;
        }
        let mut more = Vec::new();
        let mut at = 0;
        for window in &windows.providers {
            let start = window.start.max(at);
            if start < window.end {
                at = self.find_secrets_in(Table::Providers, text, start..window.end, caps, 0, &mut more);
            }
        }
        merge_found(secrets, before, more);
    }

    /// Appends the spans to replace in `text`, in order, and their kinds.
    fn find_secrets(&self, text: &str, caps: &mut Caps, nesting: usize, secrets: &mut Vec<(Span, &'static str)>) {
        let before = secrets.len();
        self.find_secrets_in(Table::Core, text, 0..text.len(), caps, nesting, secrets);
        let mut more = Vec::new();
        self.find_secrets_in(Table::Providers, text, 0..text.len(), caps, nesting, &mut more);
        merge_found(secrets, before, more);
    }

    /// As [`Self::find_secrets`] for matches that start in `range`; a match may run past
    /// its end. Returns where scanning stopped, past the last match consumed.
    fn find_secrets_in(
        &self,
        table: Table,
        text: &str,
        range: Range<usize>,
        caps: &mut Caps,
        nesting: usize,
        secrets: &mut Vec<(Span, &'static str)>,
    ) -> usize {
        let mut at = range.start;
        // Re-scanning from just after a rejected match is what lets a rule that starts
        // inside it be found; bound that work so crafted input (`token=$token=$…`) stays
        // linear, at the price of skipping whole rejected matches once it is spent.
        let mut rescan_budget = range.len().saturating_mul(4).saturating_add(4096);
        let (regex, rules) = self.table(table);
        while at < range.end {
            let slots = caps.of(table);
            regex.search_captures(&Input::new(text).range(at..range.end), slots);
            let Some(mut found) = slots.get_match() else { return at.max(range.end) };
            if found.end() == range.end && range.end < text.len() {
                // The window cut the match short (a PEM body, a long value): run the
                // same match to its natural end.
                let from = found.start();
                regex.search_captures(&Input::new(text).range(from..).anchored(Anchored::Yes), slots);
                match slots.get_match() {
                    Some(longer) => found = longer,
                    // Cannot happen (the match is still there); keep the short one.
                    None => regex.search_captures(&Input::new(text).range(at..range.end), slots),
                }
            }
            let rule = &rules[found.pattern().as_usize()];
            let secret = slots.get_group_by_name("secret").unwrap_or(found.span());
            let key_span = slots.get_group_by_name("key");
            let key = key_span.map(|span| &text[span]);
            // A quoted name behind a path (`"AWS::MSK::BatchScramSecret": …`) is a type's; an
            // unquoted one (`Config::API_TOKEN = …`) is a constant and may hold a secret.
            let typed = key_span.is_some_and(|span| {
                let before = &text[..span.start];
                let path = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                before.ends_with("::") && path.ends_with(['"', '\''])
            });
            // A bare value followed by `(` is a function call, not a credential.
            let call = slots.get_group_by_name("call").is_some();
            let kind = judge(rule, key, &text[secret]).filter(|_| !call && !typed).map(|kind| match rule.kind {
                // A named value in a known format reports the format's kind.
                Kind::FromKey => self.format_kind(&text[secret]).unwrap_or(kind),
                Kind::Fixed(_) => kind,
            });
            match kind {
                Some(kind) => {
                    // What the match keeps (a key, a URL's user) may hold a secret of
                    // its own, which this match would otherwise hide from the scan.
                    let kept = Span { start: found.start(), end: secret.start };
                    if nesting < MAX_NESTING && !kept.is_empty() {
                        let before = secrets.len();
                        self.find_secrets(&text[kept], caps, nesting + 1, secrets);
                        for (span, _) in &mut secrets[before..] {
                            *span = Span { start: span.start + kept.start, end: span.end + kept.start };
                        }
                    }
                    secrets.push((secret, kind));
                    at = found.end();
                }
                None if rule.check == Check::Benign => at = found.end(),
                // Rejected: a later rule may still match from the next character.
                None if found.len() <= rescan_budget => {
                    rescan_budget -= found.len();
                    at = next_char_boundary(text, found.start());
                }
                None => at = found.end(),
            }
        }
        at
    }

    /// Redacts every string in `value`, recursively, and object keys that contain a
    /// secret. A string or number held under a key that names a secret (`password`,
    /// `auth_token`, `x-api-key`, … but not `max_tokens`) is replaced whole. Values nested
    /// deeper than [`MAX_JSON_DEPTH`] are replaced by a marker and counted.
    pub fn redact_json(&self, value: &mut Value) -> Redactions {
        let mut redactions = Redactions::default();
        let mut caps = self.create_caps();
        self.redact_value(value, 0, &mut caps, &mut redactions);
        redactions
    }

    fn redact_value(&self, value: &mut Value, depth: usize, caps: &mut Caps, redactions: &mut Redactions) {
        if depth > MAX_JSON_DEPTH {
            *value = Value::String(marker(DEPTH_LIMIT_KIND));
            redactions.record(DEPTH_LIMIT_KIND);
            return;
        }
        match value {
            Value::String(text) => {
                let (redacted, found) = self.redact_str_with(text, caps);
                if let Cow::Owned(redacted) = redacted {
                    *text = redacted;
                }
                redactions.merge(found);
            }
            Value::Array(items) => {
                for item in items {
                    self.redact_value(item, depth + 1, caps, redactions);
                }
            }
            Value::Object(map) => {
                self.redact_keys(map, caps, redactions);
                for (key, item) in map.iter_mut() {
                    match (classify_key(key), &*item) {
                        (Some(kind), Value::String(s)) if !s.is_empty() && !is_marker(s) => {
                            *item = Value::String(marker(kind));
                            redactions.record(kind);
                        }
                        (Some(kind), Value::Number(_)) => {
                            *item = Value::String(marker(kind));
                            redactions.record(kind);
                        }
                        _ => self.redact_value(item, depth + 1, caps, redactions),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Rewrites keys that themselves contain a secret; rare, so the map is rebuilt only
    /// when one does.
    fn redact_keys(&self, map: &mut serde_json::Map<String, Value>, caps: &mut Caps, redactions: &mut Redactions) {
        if !map.keys().any(|key| !self.redact_str_with(key, caps).1.is_empty()) {
            return;
        }
        for (key, item) in std::mem::take(map) {
            let (redacted, found) = self.redact_str_with(&key, caps);
            redactions.merge(found);
            let base = redacted.into_owned();
            let mut new_key = base.clone();
            // Two keys redacted alike must not overwrite one another.
            let mut n = 2;
            while map.contains_key(&new_key) {
                new_key = format!("{base}#{n}");
                n += 1;
            }
            map.insert(new_key, item);
        }
    }

    /// The kind of the format-specific rule that matches all of `value`, if any.
    fn format_kind(&self, value: &str) -> Option<&'static str> {
        [Table::Core, Table::Providers].into_iter().find_map(|table| {
            let (regex, rules) = self.table(table);
            let mut caps: Captures = regex.create_captures();
            regex.search_captures(&Input::new(value).anchored(Anchored::Yes), &mut caps);
            let found = caps.get_match()?;
            let rule = &rules[found.pattern().as_usize()];
            let secret = caps.get_group_by_name("secret").unwrap_or(found.span());
            match rule.kind {
                Kind::Fixed(_) if secret.start == 0 && secret.end == value.len() => judge(rule, None, value),
                _ => None,
            }
        })
    }
}

/// How many times the kept part of a match is itself scanned; keys and URL users are
/// short, so one level finds what they hold.
/// Merges the provider table's finds (`more`) into the core table's (`secrets[before..]`):
/// both in order and disjoint; where two overlap, the one that starts first stays (the core
/// one at the same start) and is extended to cover the other.
fn merge_found(secrets: &mut Vec<(Span, &'static str)>, before: usize, more: Vec<(Span, &'static str)>) {
    if more.is_empty() {
        return;
    }
    let core: Vec<(Span, &'static str)> = secrets.drain(before..).collect();
    let (mut a, mut b) = (core.into_iter().peekable(), more.into_iter().peekable());
    let mut end = 0;
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if y.0.start < x.0.start {
                    b.next()
                } else {
                    a.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        let Some((span, kind)) = next else { break };
        if secrets.len() > before && span.start < end {
            // Overlapping finds: the first stays and reaches as far as either, so no part of
            // the later one (a JWT after a URL rule stopped at its first `.`) survives.
            if span.end > end
                && let Some(last) = secrets.last_mut()
            {
                last.0.end = span.end;
                end = span.end;
            }
            continue;
        }
        end = span.end;
        secrets.push((span, kind));
    }
}

/// The lines of `text` that hold the `markers`, merged and in order.
fn lines_around(text: &str, markers: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut lines: Vec<Range<usize>> = Vec::new();
    for m in markers {
        let start = text[..m.start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[m.end..].find('\n').map_or(text.len(), |i| m.end + i);
        match lines.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => lines.push(start..end),
        }
    }
    lines
}

const MAX_NESTING: usize = 2;
/// Texts up to this size are first checked for any prefilter window, which spares setting up
/// a scan of the many short strings that hold none; a longer text is scanned at once (its
/// scan costs far more than the setup, and a second pass would not pay).
const QUICK_CHECK_BYTES: usize = 4096;
/// Most scans one redaction makes of a text (see [`SecretScanner::redact_str`]).
const MAX_PASSES: usize = 4;

const MARKER_PREFIX: &str = "[REDACTED:";
const MAX_KIND_LEN: usize = 40;

fn marker(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 11);
    push_marker(&mut out, kind);
    out
}

fn push_marker(out: &mut String, kind: &str) {
    out.push_str(MARKER_PREFIX);
    out.push_str(kind);
    out.push(']');
}

/// The next well-formed marker in `text` at or after `from`.
fn next_marker(text: &str, from: usize) -> Option<Span> {
    let mut search = from;
    while let Some(offset) = text.get(search..).and_then(|rest| rest.find(MARKER_PREFIX)) {
        let start = search + offset;
        let after_prefix = start + MARKER_PREFIX.len();
        let close = text[after_prefix..].bytes().take(MAX_KIND_LEN + 1).position(|b| b == b']');
        if let Some(close) = close {
            let end = after_prefix + close + 1;
            if is_marker(&text[start..end]) {
                return Some(Span { start, end });
            }
        }
        search = after_prefix;
    }
    None
}

fn next_char_boundary(text: &str, from: usize) -> usize {
    let mut next = from + 1;
    while next < text.len() && !text.is_char_boundary(next) {
        next += 1;
    }
    next
}
