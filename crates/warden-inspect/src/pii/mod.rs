//! Personal data in text and JSON: e-mail addresses, phone numbers, payment cards,
//! IBANs, US Social Security numbers and IP addresses, found by shape and confirmed by
//! the checks each kind carries (Luhn, mod-97, issued ranges, valid octets).
//!
//! A [`PiiScanner`] finds and, for the kinds a caller names, redacts them with a marker
//! naming the kind (`[REDACTED:email]`), counted in the same [`Redactions`] the secret
//! scanner uses. Whether a kind is redacted, audited or ignored is policy, so every
//! redacting call takes the kinds to act on.

mod checks;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use serde_json::Value;

use crate::secrets::{DEPTH_LIMIT_KIND, MAX_JSON_DEPTH, Redactions};

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number, international (E.164) or in a common national format.
    Phone,
    /// A payment card number with a valid Luhn check digit and a known issuer prefix.
    PaymentCard,
    /// An IBAN of a registered country and length with a valid mod-97 check.
    Iban,
    /// A US Social Security number in the issued ranges.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 6] =
        [PiiKind::Email, PiiKind::Phone, PiiKind::PaymentCard, PiiKind::Iban, PiiKind::UsSsn, PiiKind::IpAddress];

    /// The name used in markers, configuration and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::PaymentCard => "payment_card",
            PiiKind::Iban => "iban",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`PiiKind::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPiiKind(pub String);

impl fmt::Display for UnknownPiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown PII kind {:?}; expected one of email, phone, payment_card, iban, us_ssn, ip_address", self.0)
    }
}

impl std::error::Error for UnknownPiiKind {}

impl FromStr for PiiKind {
    type Err = UnknownPiiKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PiiKind::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or_else(|| UnknownPiiKind(s.to_owned()))
    }
}

/// Where a piece of personal data is and what kind it is; never the data itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiMatch {
    /// What was found.
    pub kind: PiiKind,
    /// Its byte range in the scanned text.
    pub span: Range<usize>,
}

/// The candidate shapes, in priority order: where two match at the same place the first
/// that also passes its checks wins.
const PATTERNS: &[(PiiKind, &str)] = &[
    (
        PiiKind::Email,
        r"(?-u:\b)[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?-u:\b)",
    ),
    (PiiKind::Iban, r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
    (PiiKind::PaymentCard, r"(?-u:\b)[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)"),
    (PiiKind::UsSsn, r"(?-u:\b)[0-9]{3}(?:-[0-9]{2}-|[ ][0-9]{2}[ ])[0-9]{4}(?-u:\b)"),
    (PiiKind::IpAddress, r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"),
    (PiiKind::IpAddress, r"(?-u:\b)[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?-u:\b)"),
    (
        PiiKind::Phone,
        r"(?:\+[1-9][0-9]{0,3}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,6}|\(?[0-9]{1,5}\)?(?:[ .\-][0-9]{2,5}){1,4})(?-u:\b)",
    ),
];

/// Finds personal data in text and JSON, and redacts the kinds asked for.
///
/// Build one and share it; it is `Send + Sync`.
///
/// ```
/// use warden_inspect::{PiiKind, PiiScanner};
///
/// let scanner = PiiScanner::new();
/// let text = "mail jane@example.com, card 4111 1111 1111 1111, build 10.0.19045.1234";
/// let kinds: Vec<_> = scanner.find(text).into_iter().map(|m| m.kind).collect();
/// assert_eq!(kinds, [PiiKind::Email, PiiKind::PaymentCard]);
///
/// let (out, found) = scanner.redact_str(text, &[PiiKind::PaymentCard]);
/// assert_eq!(out, "mail jane@example.com, card [REDACTED:payment_card], build 10.0.19045.1234");
/// assert_eq!(found.total, 1);
/// ```
#[derive(Debug)]
pub struct PiiScanner {
    /// All shapes at once, to find the next candidate.
    all: Regex,
    /// Each shape alone, to try the others where a candidate fails its checks.
    each: Vec<Regex>,
}

impl Default for PiiScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiScanner {
    /// Compiles the builtin shapes.
    pub fn new() -> PiiScanner {
        let patterns: Vec<&str> = PATTERNS.iter().map(|(_, p)| *p).collect();
        // Constants, compiled by a test: failure is a bug here, never a consequence of input.
        let all = Regex::new_many(&patterns).expect("builtin PII patterns compile");
        let each = patterns.iter().map(|p| Regex::new(p).expect("builtin PII pattern compiles")).collect();
        PiiScanner { all, each }
    }

    /// Every piece of personal data in `text`, in order and non-overlapping.
    pub fn find(&self, text: &str) -> Vec<PiiMatch> {
        let mut found = Vec::new();
        let mut at = 0;
        // Retrying from inside a rejected candidate finds shapes that start there; bound
        // it so crafted digit runs stay linear.
        let mut retry_budget = text.len().saturating_mul(4).saturating_add(4096);
        while at < text.len() {
            let Some(candidate) = self.all.search(&Input::new(text).range(at..)) else { break };
            let first = candidate.pattern().as_usize();
            let start = candidate.start();
            let confirmed = std::iter::once((first, candidate.end()))
                .chain((first + 1..PATTERNS.len()).filter_map(|i| {
                    let input = Input::new(text).range(start..).anchored(Anchored::Yes);
                    self.each[i].search(&input).map(|m| (i, m.end()))
                }))
                .find_map(|(i, end)| confirm(text, i, start, end).map(|end| (PATTERNS[i].0, end)));
            match confirmed {
                Some((kind, end)) => {
                    found.push(PiiMatch { kind, span: start..end });
                    at = end;
                }
                None if candidate.len() <= retry_budget => {
                    retry_budget -= candidate.len();
                    at = next_char_boundary(text, start);
                }
                None => at = candidate.end(),
            }
        }
        found
    }

    /// Replaces every piece of personal data of the given `kinds` with its marker
    /// (`[REDACTED:email]`). An empty `kinds` redacts nothing. Borrows `text` back when
    /// nothing was replaced.
    pub fn redact_str<'a>(&self, text: &'a str, kinds: &[PiiKind]) -> (Cow<'a, str>, Redactions) {
        let mut redactions = Redactions::default();
        if kinds.is_empty() {
            return (Cow::Borrowed(text), redactions);
        }
        let mut out = String::new();
        let mut copied = 0;
        for found in self.find(text).into_iter().filter(|m| kinds.contains(&m.kind)) {
            out.push_str(&text[copied..found.span.start]);
            out.push_str("[REDACTED:");
            out.push_str(found.kind.as_str());
            out.push(']');
            copied = found.span.end;
            redactions.record(found.kind.as_str());
        }
        if redactions.is_empty() {
            return (Cow::Borrowed(text), redactions);
        }
        out.push_str(&text[copied..]);
        (Cow::Owned(out), redactions)
    }

    /// Redacts the given `kinds` in every string of `value` (object keys included),
    /// recursively. Values nested deeper than [`MAX_JSON_DEPTH`] are replaced by
    /// `[REDACTED:depth_limit]` and counted, as the secret scanner does.
    pub fn redact_json(&self, value: &mut Value, kinds: &[PiiKind]) -> Redactions {
        let mut redactions = Redactions::default();
        if !kinds.is_empty() {
            self.redact_value(value, 0, kinds, &mut redactions);
        }
        redactions
    }

    fn redact_value(&self, value: &mut Value, depth: usize, kinds: &[PiiKind], redactions: &mut Redactions) {
        if depth > MAX_JSON_DEPTH {
            *value = Value::String(format!("[REDACTED:{DEPTH_LIMIT_KIND}]"));
            redactions.record(DEPTH_LIMIT_KIND);
            return;
        }
        match value {
            Value::String(text) => {
                let (redacted, found) = self.redact_str(text, kinds);
                if let Cow::Owned(redacted) = redacted {
                    *text = redacted;
                }
                redactions.merge(found);
            }
            Value::Array(items) => {
                for item in items {
                    self.redact_value(item, depth + 1, kinds, redactions);
                }
            }
            Value::Object(map) => {
                if map.keys().any(|key| matches!(self.redact_str(key, kinds).0, Cow::Owned(_))) {
                    for (key, item) in std::mem::take(map) {
                        let (redacted, found) = self.redact_str(&key, kinds);
                        redactions.merge(found);
                        let base = redacted.into_owned();
                        let mut new_key = base.clone();
                        let mut n = 2;
                        while map.contains_key(&new_key) {
                            new_key = format!("{base}#{n}");
                            n += 1;
                        }
                        map.insert(new_key, item);
                    }
                }
                for item in map.values_mut() {
                    self.redact_value(item, depth + 1, kinds, redactions);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The end of the confirmed match of pattern `index` at `start..end`, if it passes its
/// kind's checks.
fn confirm(text: &str, index: usize, start: usize, end: usize) -> Option<usize> {
    let candidate = text.get(start..end)?;
    let before = start.checked_sub(1).and_then(|i| text.as_bytes().get(i)).copied();
    let after = text.as_bytes().get(end..).unwrap_or_default();
    let valid = match PATTERNS[index].0 {
        PiiKind::Email => true,
        PiiKind::Iban => return checks::iban_end(candidate).map(|n| start + n),
        PiiKind::PaymentCard => checks::is_payment_card(candidate),
        PiiKind::UsSsn => checks::is_us_ssn(candidate) && !matches!(before, Some(b'-' | b'.')),
        PiiKind::IpAddress if candidate.contains(':') => checks::is_ipv6(candidate, before, after),
        PiiKind::IpAddress => checks::is_ipv4(candidate, before, after),
        PiiKind::Phone => checks::is_phone(candidate, before, after),
    };
    valid.then_some(end)
}

fn next_char_boundary(text: &str, from: usize) -> usize {
    let mut next = from + 1;
    while next < text.len() && !text.is_char_boundary(next) {
        next += 1;
    }
    next
}
