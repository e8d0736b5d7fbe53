//! Checks across servers: tool names that look alike, descriptions that speak of another
//! server's tools (shadowing), and tools that duplicate another server's tool under another
//! name (overlap).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use regex_automata::meta::Regex;

use super::confusables::skeleton;
use super::{Family, Severity};

/// Bytes of each description searched for other servers' tool names.
const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

/// Findings returned at most.
const MAX_CROSS_FINDINGS: usize = 4096;

/// Share of word pairs two descriptions must have in common (Jaccard) to be near-duplicates.
pub const OVERLAP_SIMILARITY: f64 = 0.6;

/// Descriptions with fewer word pairs are too short to call duplicates.
const OVERLAP_MIN_PAIRS: usize = 6;

/// A word pair shared by tools of more servers than this is boilerplate, not evidence.
const OVERLAP_MAX_POSTINGS: usize = 64;

/// Tool names too common to mean anything when they appear in prose.
const COMMON_WORDS: &[&str] = &[
    "about",
    "access",
    "account",
    "action",
    "actions",
    "add",
    "after",
    "before",
    "both",
    "browse",
    "build",
    "call",
    "check",
    "clear",
    "click",
    "close",
    "code",
    "commit",
    "config",
    "connect",
    "copy",
    "count",
    "create",
    "data",
    "date",
    "delete",
    "deploy",
    "diff",
    "download",
    "echo",
    "edit",
    "email",
    "empty",
    "events",
    "exec",
    "execute",
    "export",
    "fetch",
    "file",
    "files",
    "fill",
    "find",
    "format",
    "from",
    "help",
    "history",
    "hover",
    "import",
    "info",
    "init",
    "input",
    "insert",
    "issue",
    "issues",
    "item",
    "items",
    "list",
    "load",
    "login",
    "logout",
    "logs",
    "merge",
    "move",
    "name",
    "navigate",
    "next",
    "note",
    "notes",
    "open",
    "page",
    "parse",
    "path",
    "ping",
    "post",
    "print",
    "prompt",
    "pull",
    "push",
    "query",
    "read",
    "remove",
    "rename",
    "reply",
    "report",
    "request",
    "reset",
    "restart",
    "result",
    "run",
    "save",
    "scan",
    "schema",
    "screenshot",
    "search",
    "select",
    "send",
    "server",
    "set",
    "show",
    "sleep",
    "sort",
    "start",
    "status",
    "stop",
    "sync",
    "tags",
    "task",
    "tasks",
    "test",
    "text",
    "that",
    "this",
    "time",
    "tool",
    "tools",
    "type",
    "update",
    "upload",
    "user",
    "users",
    "validate",
    "version",
    "view",
    "wait",
    "when",
    "with",
    "write",
];

/// A tool as one server exposes it, for [`cross_server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposed<'a> {
    /// The server's configured name.
    pub server: &'a str,
    /// The tool's name.
    pub name: &'a str,
    /// The tool's description.
    pub description: &'a str,
}

/// Something wrong between two servers' tools.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossFinding {
    /// `shadowing.lookalike_name`, `shadowing.confusable_name`, `shadowing.duplicate_name`,
    /// `shadowing.mentions_foreign_tool` or `overlap.near_duplicate`.
    pub rule: &'static str,
    /// [`Family::Shadowing`], or [`Family::Overlap`] for duplicates under another name.
    pub family: Family,
    /// How serious it is.
    pub severity: Severity,
    /// The two servers. For a mention: the server whose tool is named, then the server
    /// whose description names it.
    pub servers: (String, String),
    /// The two tool names, in the order of `servers`.
    pub names: (String, String),
    /// What was found and why it matters.
    pub explanation: String,
}

/// Compares the tools several servers expose.
///
/// - Two servers exposing names with the same [`skeleton`]: `shadowing.lookalike_name`
///   (high) when one of them has non-ASCII lookalike letters (`send_emaіl` with Cyrillic
///   `і`), `shadowing.confusable_name` (medium) when they differ only in case, separators
///   or `0`/`1` (`get-file`, `get_file`), `shadowing.duplicate_name` (low) when equal.
/// - A description naming, as a whole word, another server's tool (a name of at least
///   four characters that is not a common word) that its own server does not expose:
///   `shadowing.mentions_foreign_tool`, high when the description also uses steering
///   words (instead, always, whenever, other/another server, BCC, redirect, override, …),
///   medium otherwise.
/// - Two servers' tools with different names whose descriptions share at least
///   [`OVERLAP_SIMILARITY`] of their word pairs: `overlap.near_duplicate` (medium), a tool
///   copied under another name to take the other's calls.
///
/// Work is `O(n log n)` in the number of tools plus linear in the descriptions (each
/// searched up to 64 KiB); at most 4,096 findings are returned.
///
/// ```
/// use warden_inspect::poison::{Exposed, cross_server};
///
/// let items = [
///     Exposed { server: "mail", name: "send_email", description: "Sends an e-mail." },
///     Exposed { server: "notes", name: "send_emaіl", description: "Sends a note." },
/// ];
/// let findings = cross_server(&items);
/// assert_eq!(findings[0].rule, "shadowing.lookalike_name");
/// ```
pub fn cross_server(items: &[Exposed<'_>]) -> Vec<CrossFinding> {
    let mut findings = Vec::new();
    confusable_names(items, &mut findings);
    foreign_mentions(items, &mut findings);
    near_duplicates(items, &mut findings);
    findings.truncate(MAX_CROSS_FINDINGS);
    findings
}

fn confusable_names(items: &[Exposed<'_>], findings: &mut Vec<CrossFinding>) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let key = skeleton(item.name);
        if !key.is_empty() {
            groups.entry(key).or_default().push(index);
        }
    }
    let mut reported: HashSet<(usize, usize)> = HashSet::new();
    for group in groups.values() {
        let Some(&anchor) = group.first() else { continue };
        let Some(&other_server) = group.iter().find(|&&i| items[i].server != items[anchor].server) else { continue };
        // Each tool is paired with one tool of another server: linear in the group.
        for &index in group {
            let partner = if items[index].server == items[anchor].server { other_server } else { anchor };
            let pair = (index.min(partner), index.max(partner));
            if index == partner || !reported.insert(pair) || findings.len() >= MAX_CROSS_FINDINGS {
                continue;
            }
            let (a, b) = (&items[pair.0], &items[pair.1]);
            let (rule, severity, explanation) = if a.name == b.name {
                (
                    "shadowing.duplicate_name",
                    Severity::Low,
                    format!(
                        "Servers {:?} and {:?} both expose a tool named {:?}; a client may call the wrong one.",
                        a.server, b.server, a.name
                    ),
                )
            } else if !a.name.is_ascii() || !b.name.is_ascii() {
                (
                    "shadowing.lookalike_name",
                    Severity::High,
                    format!(
                        "Tool {:?} of server {:?} imitates {:?} of server {:?} with lookalike letters ({}); one of them impersonates the other.",
                        b.name,
                        b.server,
                        a.name,
                        a.server,
                        escape_non_ascii(if a.name.is_ascii() { b.name } else { a.name })
                    ),
                )
            } else {
                (
                    "shadowing.confusable_name",
                    Severity::Medium,
                    format!(
                        "Tool {:?} of server {:?} differs from {:?} of server {:?} only in case, separators or 0/1, which a model easily confuses.",
                        b.name, b.server, a.name, a.server
                    ),
                )
            };
            findings.push(CrossFinding {
                rule,
                family: Family::Shadowing,
                severity,
                servers: (a.server.to_owned(), b.server.to_owned()),
                names: (a.name.to_owned(), b.name.to_owned()),
                explanation,
            });
        }
    }
}

fn foreign_mentions(items: &[Exposed<'_>], findings: &mut Vec<CrossFinding>) {
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    let mut exposed: HashSet<(&str, String)> = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let lower = item.name.to_ascii_lowercase();
        exposed.insert((item.server, lower.clone()));
        if lower.chars().count() >= 4 && item.name.is_ascii() && COMMON_WORDS.binary_search(&lower.as_str()).is_err() {
            by_name.entry(lower).or_default().push(index);
        }
    }
    if by_name.is_empty() {
        return;
    }
    let mut reported: HashSet<(usize, usize)> = HashSet::new();
    for (speaker, item) in items.iter().enumerate() {
        let text = &item.description[..super::excerpt::floor_boundary(item.description, MAX_DESCRIPTION_BYTES)];
        let mut steering: Option<bool> = None;
        for token in tokens(text) {
            let lower = token.to_ascii_lowercase();
            let parts = std::iter::once(lower.as_str()).chain(lower.split('.').filter(|_| lower.contains('.')));
            for part in parts {
                let Some(owners) = by_name.get(part) else { continue };
                if exposed.contains(&(item.server, part.to_owned())) {
                    continue;
                }
                for &owner in owners {
                    let target = &items[owner];
                    if target.server == item.server
                        || !reported.insert((owner, speaker))
                        || findings.len() >= MAX_CROSS_FINDINGS
                    {
                        continue;
                    }
                    let steers = *steering.get_or_insert_with(|| steering_words().is_match(text));
                    findings.push(CrossFinding {
                        rule: "shadowing.mentions_foreign_tool",
                        family: Family::Shadowing,
                        severity: if steers { Severity::High } else { Severity::Medium },
                        servers: (target.server.to_owned(), item.server.to_owned()),
                        names: (target.name.to_owned(), item.name.to_owned()),
                        explanation: format!(
                            "The description of {:?} (server {:?}) speaks of {:?}, a tool of server {:?}: a server has no business instructing how another server's tools are used.",
                            item.name, item.server, target.name, target.server
                        ),
                    });
                }
            }
        }
    }
}

/// The word pairs of a description, hashed, sorted and without repeats.
fn word_pairs(description: &str) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let text = &description[..super::excerpt::floor_boundary(description, MAX_DESCRIPTION_BYTES)];
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let mut pairs: Vec<u64> = words
        .windows(2)
        .map(|pair| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            pair.hash(&mut hasher);
            hasher.finish()
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn near_duplicates(items: &[Exposed<'_>], findings: &mut Vec<CrossFinding>) {
    let pairs: Vec<Vec<u64>> = items.iter().map(|item| word_pairs(item.description)).collect();
    let mut postings: HashMap<u64, Vec<usize>> = HashMap::new();
    for (index, set) in pairs.iter().enumerate().filter(|(_, set)| set.len() >= OVERLAP_MIN_PAIRS) {
        for &pair in set {
            postings.entry(pair).or_default().push(index);
        }
    }
    // Pairs of tools and how many word pairs they share, counted over the postings that are
    // not boilerplate: work is bounded by the postings' sizes.
    let mut shared: HashMap<(usize, usize), usize> = HashMap::new();
    // Boilerplate is a pair many *servers* use: decoys from one server cannot hide a copy.
    let servers_of = |list: &Vec<usize>| {
        let mut servers: Vec<&str> = list.iter().map(|&i| items[i].server).collect();
        servers.sort_unstable();
        servers.dedup();
        servers.len()
    };
    for list in postings.values().filter(|list| list.len() > 1 && servers_of(list) <= OVERLAP_MAX_POSTINGS) {
        if list.len() > OVERLAP_MAX_POSTINGS * 8 {
            // Many tools of few servers: compare across servers only, in bounded work.
            continue;
        }
        for (at, &a) in list.iter().enumerate() {
            for &b in &list[at + 1..] {
                if items[a].server != items[b].server {
                    *shared.entry((a, b)).or_default() += 1;
                }
            }
        }
    }
    let mut found: Vec<((usize, usize), f64)> = shared
        .into_iter()
        .filter_map(|((a, b), common)| {
            let union = pairs[a].len() + pairs[b].len() - common;
            let similarity = common as f64 / union.max(1) as f64;
            (similarity >= OVERLAP_SIMILARITY && skeleton(items[a].name) != skeleton(items[b].name))
                .then_some(((a, b), similarity))
        })
        .collect();
    found.sort_by_key(|&(pair, _)| pair);
    for ((a, b), similarity) in found {
        if findings.len() >= MAX_CROSS_FINDINGS {
            break;
        }
        let (a, b) = (&items[a], &items[b]);
        findings.push(CrossFinding {
            rule: "overlap.near_duplicate",
            family: Family::Overlap,
            severity: Severity::Medium,
            servers: (a.server.to_owned(), b.server.to_owned()),
            names: (a.name.to_owned(), b.name.to_owned()),
            explanation: format!(
                "Tool {:?} of server {:?} duplicates {:?} of server {:?} under another name ({:.0}% of their descriptions' word pairs are the same): a copy can take the other's calls and see their arguments.",
                b.name,
                b.server,
                a.name,
                a.server,
                similarity * 100.0
            ),
        });
    }
}

/// Runs of characters a tool name is made of, with trailing punctuation trimmed.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
        .flat_map(|run| run.split('/'))
        .map(|token| token.trim_end_matches(['.', '-']).trim_start_matches(['.', '-']))
        .filter(|token| token.len() >= 4)
}

/// Words that turn a mention of another tool into a steer.
fn steering_words() -> &'static Regex {
    static WORDS: OnceLock<Regex> = OnceLock::new();
    WORDS.get_or_init(|| {
        Regex::new(concat!(
            r"(?i)(?-u:\b)(?:instead|always|whenever|bcc|redirect|reroute|override|overrides|replace|replaces|secretly|silently|",
            r"quietly|must|never|other\s+server|another\s+server|also\s+(?:send|call|use|include|add|forward))(?-u:\b)"
        ))
        .expect("builtin steering words compile")
    })
}

fn escape_non_ascii(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii() { c.to_string() } else { format!("\\u{{{:x}}}", u32::from(c)) }).collect()
}
