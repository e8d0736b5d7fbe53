//! Notifications: telling people, where they already are (a chat channel, an incident tool),
//! that something waits for them — a call waiting for approval, a tool definition held for
//! review, a quarantined result, a tripped detection gate, a contained or released server.
//!
//! One catalogue: every notice but a gate's is derived from the audit row the event already
//! writes ([`Notice::of_row`]), so whatever creates a pending approval, holds a definition,
//! quarantines a result or contains a server is announced by the same row that records it. The
//! auditor hands each row it writes to the [`Notifier`]; the gate loop (the `gates` module) hands
//! it each gate that newly trips ([`Notice::gate`]).
//!
//! ```text
//! audit row ─▶ Notice::of_row ─┐
//!                              ├─▶ Notifier (bounded queue) ─▶ delivery task ─▶ each subscribed webhook
//! gate loop ─▶ Notice::gate ───┘                                (egress guard, 10 s, one retry)
//! ```
//!
//! What a notice carries is chosen, not filtered: the event, the server, the tool (or prompt,
//! resource, gate) name, the caller's subject and tenant, why, the time and a link to the
//! console. Never an argument value, a result, a token or a webhook's URL. Every text someone
//! else chose (names, reasons quoting names) is [`clean`]ed: controls and invisible characters
//! written out as `\u{..}`, at most [`MAX_FIELD_CHARS`] characters. Each format then escapes
//! what its renderer would read as markup ([`format`]).

mod deliver;
pub mod format;

pub use crate::config::{NotifyEvent, WebhookFormat};
pub use deliver::Notifier;

use crate::config::CONSOLE_PATH;
use chrono::{DateTime, Utc};
use warden_store::AuditEvent;
use warden_store::gates::GateResult;

/// Longest text of one field of a notice, in characters (before a format's escapes).
pub const MAX_FIELD_CHARS: usize = 200;

/// What a person is told of one event: facts only, already [`clean`]ed.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The subscription it belongs to.
    pub event: NotifyEvent,
    /// Exactly what happened: the audit event (`approval_requested`, `drift`, `definition_held`,
    /// `quarantine`, `containment`, `containment_released`) or `gate_tripped`.
    pub kind: &'static str,
    /// The server it concerns.
    pub server: Option<String>,
    /// The tool, prompt or resource (or gate) it concerns.
    pub item: Option<String>,
    /// What `item` is: `tool`, `prompt`, `resource`, `resource template`, `instructions`, `gate`.
    pub item_kind: Option<String>,
    /// The caller whose call it is, or the operator who acted (containment).
    pub subject: Option<String>,
    /// The caller's tenant.
    pub tenant: Option<String>,
    /// Why: the reasons, rules or policies, or a gate's reading.
    pub why: Option<String>,
    /// The pending approval.
    pub approval_id: Option<String>,
    /// A gate's value and threshold.
    pub reading: Option<(f64, f64)>,
    /// When it happened.
    pub time: DateTime<Utc>,
}

impl Notice {
    /// The notice an audit row announces, if it announces one. This is the catalogue: a row of
    /// another event is not told to anyone. Only the row's facts are read — never its
    /// `arguments`, `findings` or `result_hash`.
    pub fn of_row(row: &AuditEvent) -> Option<Notice> {
        let (event, kind) = match row.event.as_str() {
            "approval_requested" => (NotifyEvent::Approval, "approval_requested"),
            "drift" => (NotifyEvent::Drift, "drift"),
            "definition_held" => (NotifyEvent::Drift, "definition_held"),
            "quarantine" => (NotifyEvent::Quarantine, "quarantine"),
            "containment" => (NotifyEvent::Containment, "containment"),
            "containment_released" => (NotifyEvent::Containment, "containment_released"),
            _ => return None,
        };
        let text = |v: &Option<String>| v.as_deref().map(clean).filter(|s| !s.is_empty());
        let item_kind = match event {
            // Integrity rows name the definition's kind: `tool definition`, `prompt definition`.
            NotifyEvent::Drift => row.method.as_deref().and_then(|m| m.strip_suffix(" definition")).map(str::to_owned),
            NotifyEvent::Approval | NotifyEvent::Quarantine => row.method.as_deref().and_then(item_kind_of_method),
            _ => None,
        };
        let approval_id = if event == NotifyEvent::Approval { text(&row.approval_id) } else { None };
        // An approval row's reason starts with the approval's id, which is shown on its own.
        let why = text(&row.reason).map(|why| match &approval_id {
            Some(id) => why.strip_prefix(id.as_str()).map(str::trim_start).unwrap_or(&why).to_owned(),
            None => why,
        });
        Some(Notice {
            event,
            kind,
            server: text(&row.server_name),
            item: text(&row.tool_name),
            item_kind: item_kind.map(|k| clean(&k.replace('_', " "))),
            subject: text(&row.actor_id),
            tenant: text(&row.tenant),
            why,
            approval_id,
            reading: None,
            time: row.event_time,
        })
    }

    /// The notice of a gate that newly tripped.
    pub fn gate(gate: &GateResult, time: DateTime<Utc>) -> Notice {
        Notice {
            event: NotifyEvent::Gate,
            kind: "gate_tripped",
            server: None,
            item: Some(clean(&gate.name)),
            item_kind: Some("gate".to_owned()),
            subject: None,
            tenant: None,
            why: Some(clean(&gate.detail)).filter(|s| !s.is_empty()),
            approval_id: None,
            reading: Some((gate.value, gate.threshold)),
            time,
        }
    }

    /// A short title, Warden's own words only.
    pub fn title(&self) -> &'static str {
        match self.kind {
            "approval_requested" => "Approval needed",
            "drift" => "Definition changed: held for review",
            "definition_held" => "Definition held for review",
            "quarantine" => "Result quarantined",
            "gate_tripped" => "Detection gate tripped",
            "containment" => "Server contained",
            "containment_released" => "Server released",
            _ => "Warden notice",
        }
    }

    /// One sentence saying what happened, as plain text (a format escapes it).
    pub fn summary(&self) -> String {
        let server = self.server.as_deref().unwrap_or("?");
        let item = self.item.as_deref().unwrap_or("?");
        let kind = self.item_kind.as_deref().unwrap_or("tool");
        let whom = self.subject.as_deref().unwrap_or("an unknown caller");
        match self.kind {
            "approval_requested" => format!("A call to {server}/{item} by {whom} waits for a person's approval."),
            "drift" => format!("The {kind} {server}/{item} changed since it was pinned; it is held until reviewed."),
            "definition_held" => format!("The {kind} {server}/{item} is held until someone reviews it."),
            "quarantine" => format!("A result of {server}/{item} for {whom} was withheld and quarantined."),
            "gate_tripped" => match self.reading {
                Some((value, threshold)) => {
                    format!("The gate {item} reads {} (threshold {}).", number(value), number(threshold))
                }
                None => format!("The gate {item} tripped."),
            },
            "containment" => {
                format!("{server} was contained by {whom}: unlisted and uncallable; emergency mode is on.")
            }
            "containment_released" => format!("{server} was released by {whom}."),
            _ => String::new(),
        }
    }

    /// The facts, in order, each labelled; `ours` when Warden wrote the value itself (fixed
    /// words, times, numbers), so that a format may show it with less care.
    pub fn facts(&self) -> Vec<Fact> {
        let mut facts = vec![Fact { label: "Event", value: self.title().to_owned(), ours: true }];
        let theirs = |label: &'static str, v: &Option<String>| {
            v.as_ref().map(|value| Fact { label, value: value.clone(), ours: false })
        };
        facts.extend(theirs("Server", &self.server));
        let item_label = match self.item_kind.as_deref() {
            Some("gate") => "Gate",
            Some("prompt") => "Prompt",
            Some("resource") => "Resource",
            Some("resource template") => "Resource template",
            Some("instructions") => "Instructions",
            _ => "Tool",
        };
        facts.extend(theirs(item_label, &self.item));
        let subject_label = if self.event == NotifyEvent::Containment { "By" } else { "Caller" };
        facts.extend(theirs(subject_label, &self.subject));
        facts.extend(theirs("Tenant", &self.tenant));
        facts.extend(theirs("Why", &self.why));
        facts.extend(theirs("Approval", &self.approval_id));
        if let Some((value, threshold)) = self.reading {
            facts.push(Fact { label: "Value", value: number(value), ours: true });
            facts.push(Fact { label: "Threshold", value: number(threshold), ours: true });
        }
        facts.push(Fact {
            label: "Time",
            value: self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ours: true,
        });
        facts
    }

    /// Where the item is in the operator console at `origin` (`None`: the console is not
    /// served, so there is no link).
    pub fn link(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?;
        let page = match self.event {
            NotifyEvent::Approval => match &self.approval_id {
                Some(id) => format!("approvals/{}", url_component(id)),
                None => "approvals".to_owned(),
            },
            NotifyEvent::Drift | NotifyEvent::Quarantine => "reviews".to_owned(),
            NotifyEvent::Gate => "gates".to_owned(),
            NotifyEvent::Containment => "inventory".to_owned(),
        };
        Some(format!("{origin}{CONSOLE_PATH}/#/{page}"))
    }
}

/// One labelled fact of a notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Warden's label: `Server`, `Tool`, `Caller`, ...
    pub label: &'static str,
    /// The value, [`clean`]ed.
    pub value: String,
    /// Whether Warden wrote the value itself.
    pub ours: bool,
}

/// The kind of item a request's method concerns.
fn item_kind_of_method(method: &str) -> Option<String> {
    let kind = match method.split('/').next()? {
        "tools" => "tool",
        "prompts" => "prompt",
        "resources" => "resource",
        _ => return None,
    };
    Some(kind.to_owned())
}

/// A count as a whole number, a ratio with four decimals.
fn number(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.4}") }
}

/// `text` percent-encoded for a URL path segment or fragment.
fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text someone else chose, fit for a notice: line breaks and tabs become spaces; control,
/// format (bidi overrides and isolates, zero-width characters, tag characters) and other
/// invisible characters are written out as `\u{hex}`, so a reader sees that they were there;
/// at most [`MAX_FIELD_CHARS`] characters, then `…`.
///
/// ```
/// use warden_gateway::notify::clean;
///
/// assert_eq!(clean("evil\u{202E}txt.exe\n"), "evil\\u{202e}txt.exe");
/// assert_eq!(clean(&"x".repeat(300)).chars().count(), 201);
/// ```
pub fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in text.trim().chars() {
        let piece = match c {
            '\n' | '\r' | '\t' => " ".to_owned(),
            c if invisible(c) => format!("\\u{{{:x}}}", u32::from(c)),
            c => c.to_string(),
        };
        let n = piece.chars().count();
        if count + n > MAX_FIELD_CHARS {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        count += n;
    }
    out
}

/// Control characters (Cc), format characters (Cf: bidi embeddings, overrides and isolates,
/// zero-width characters, tag characters, ...), line and paragraph separators, and the other
/// characters that show as nothing (fillers, variation selectors, private use).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0xAD                       // soft hyphen (Cf)
            | 0x034F                   // combining grapheme joiner
            | 0x0600..=0x0605          // Arabic number signs (Cf)
            | 0x061C                   // Arabic letter mark (Cf)
            | 0x06DD | 0x070F          // Arabic end of ayah, Syriac abbreviation mark (Cf)
            | 0x0890 | 0x0891 | 0x08E2 // Arabic pound and piastre marks, disputed end of ayah (Cf)
            | 0x115F | 0x1160          // Hangul fillers
            | 0x17B4 | 0x17B5          // Khmer inherent vowels
            | 0x180B..=0x180F          // Mongolian variation selectors and vowel separator (Cf)
            | 0x200B..=0x200F          // zero-width space, joiners, LRM, RLM (Cf)
            | 0x2028..=0x202E          // line and paragraph separators, bidi embeddings and overrides
            | 0x2060..=0x206F          // word joiner, invisible operators, bidi isolates (Cf)
            | 0x3164 | 0xFFA0          // Hangul fillers
            | 0xFE00..=0xFE0F          // variation selectors
            | 0xFEFF                   // zero-width no-break space (Cf)
            | 0xFFF0..=0xFFFB          // specials, interlinear annotation (Cf)
            | 0x110BD | 0x110CD        // Kaithi number signs (Cf)
            | 0x13430..=0x1345F        // Egyptian hieroglyph format controls (Cf)
            | 0x1BCA0..=0x1BCA3        // shorthand format controls (Cf)
            | 0x1D173..=0x1D17A        // musical symbol formatting (Cf)
            | 0xE0000..=0xE007F        // tag characters (Cf)
            | 0xE0100..=0xE01EF        // variation selectors supplement
            | 0xF0000..=0x10FFFF       // private use planes
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn approval_row() -> AuditEvent {
        AuditEvent {
            method: Some("tools/call".into()),
            actor_id: Some("alice".into()),
            tenant: Some("acme".into()),
            server_name: Some("files".into()),
            tool_name: Some("write_file".into()),
            arguments: Some(json!({ "path": "/etc/passwd", "token": "ghp_marker_never_sent" })),
            approval_id: Some("apr_1".into()),
            reason: Some("apr_1 (caller alice, out_of_band flow): out_of_band: policy writes".into()),
            findings: Some(json!([{ "excerpt": "finding-marker" }])),
            result_hash: Some("hash-marker".into()),
            ..AuditEvent::new(Utc::now(), "approval_requested", "REQUIRE_APPROVAL")
        }
    }

    #[test]
    fn the_catalogue_names_the_rows_that_are_told() {
        let told = |event: &str| Notice::of_row(&AuditEvent::new(Utc::now(), event, "X")).map(|n| (n.event, n.kind));
        assert_eq!(told("approval_requested"), Some((NotifyEvent::Approval, "approval_requested")));
        assert_eq!(told("drift"), Some((NotifyEvent::Drift, "drift")));
        assert_eq!(told("definition_held"), Some((NotifyEvent::Drift, "definition_held")));
        assert_eq!(told("quarantine"), Some((NotifyEvent::Quarantine, "quarantine")));
        assert_eq!(told("containment"), Some((NotifyEvent::Containment, "containment")));
        assert_eq!(told("containment_released"), Some((NotifyEvent::Containment, "containment_released")));
        for quiet in [
            "call",
            "list",
            "approval_granted",
            "approval_used",
            "definition_pinned",
            "definition_removed",
            "taint",
            "egress",
        ] {
            assert_eq!(told(quiet), None, "{quiet}");
        }
    }

    #[test]
    fn a_notice_carries_facts_and_never_arguments_findings_or_results() {
        let n = Notice::of_row(&approval_row()).unwrap();
        assert_eq!(n.server.as_deref(), Some("files"));
        assert_eq!(n.item.as_deref(), Some("write_file"));
        assert_eq!(n.item_kind.as_deref(), Some("tool"));
        assert_eq!((n.subject.as_deref(), n.tenant.as_deref()), (Some("alice"), Some("acme")));
        assert_eq!(n.approval_id.as_deref(), Some("apr_1"));
        assert_eq!(n.why.as_deref(), Some("(caller alice, out_of_band flow): out_of_band: policy writes"));
        let all = format!("{n:?} {:?} {}", n.facts(), n.summary());
        for marker in ["/etc/passwd", "ghp_marker_never_sent", "finding-marker", "hash-marker"] {
            assert!(!all.contains(marker), "{marker} in {all}");
        }
    }

    #[test]
    fn links_point_at_the_item_in_the_console_and_only_when_it_is_served() {
        let n = Notice::of_row(&approval_row()).unwrap();
        assert_eq!(n.link(Some("https://w.example")).as_deref(), Some("https://w.example/console/#/approvals/apr_1"));
        assert_eq!(n.link(None), None);
        let mut odd = n.clone();
        odd.approval_id = Some("a/../b c".into());
        assert_eq!(odd.link(Some("https://w")).as_deref(), Some("https://w/console/#/approvals/a%2F..%2Fb%20c"));
        let page = |event: &str| Notice::of_row(&AuditEvent::new(Utc::now(), event, "X")).unwrap().link(Some("o"));
        assert_eq!(page("drift").as_deref(), Some("o/console/#/reviews"));
        assert_eq!(page("quarantine").as_deref(), Some("o/console/#/reviews"));
        assert_eq!(page("containment").as_deref(), Some("o/console/#/inventory"));
        let gate = GateResult {
            name: "g".into(),
            value: 3.0,
            threshold: 0.0,
            tripped: true,
            detail: "3 matching rows in the last 1h".into(),
        };
        let g = Notice::gate(&gate, Utc::now());
        assert_eq!(g.link(Some("o")).as_deref(), Some("o/console/#/gates"));
        assert_eq!(g.summary(), "The gate g reads 3 (threshold 0).");
    }

    #[test]
    fn text_someone_else_chose_is_cleaned_and_bounded() {
        assert_eq!(clean("a\u{202E}b\u{2066}c\u{200B}d"), "a\\u{202e}b\\u{2066}c\\u{200b}d");
        assert_eq!(clean("x\u{E0041}\u{E0042}"), "x\\u{e0041}\\u{e0042}");
        assert_eq!(clean("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(clean("two\nlines\tand\r"), "two lines and");
        assert_eq!(clean("\u{0600}\u{FEFF}\u{00AD}"), "\\u{600}\\u{feff}\\u{ad}");
        let long = clean(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(long.ends_with('…'));
        // An escape is not cut in half.
        let escapes = clean(&"\u{202E}".repeat(100));
        assert!(escapes.trim_end_matches('…').ends_with("202e}"), "{escapes}");
    }
}
