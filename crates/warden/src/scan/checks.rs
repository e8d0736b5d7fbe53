//! What is wrong with each configured server, without starting it: whether it goes through
//! Warden at all (R10, shadow servers), what its command does, the credentials written into its
//! environment, headers or arguments, where its URL leads, and names that collide or imitate one
//! another across every client's files.

use super::formats::{Entry, Transport};
use super::{Finding, Server};
use std::collections::BTreeMap;
use std::net::IpAddr;
use warden_gateway::config::Config;
use warden_gateway::servers::entry::{argument_flags, credential_flags, url_flags};
use warden_gateway::servers::{Flag, SELF_COMMAND, Severity, command_flags, program_name as base};
use warden_inspect::poison::skeleton;
use warden_inspect::secrets::SecretScanner;

/// Where Warden gateways listen: from the configuration's `gateway.listen` and `--gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    host: String,
    port: u16,
}

impl Gateway {
    /// A gateway at `url` (`http://127.0.0.1:8787/mcp`), or at a listen address (`127.0.0.1:8787`).
    pub fn parse(url_or_addr: &str) -> Option<Gateway> {
        if let Ok(addr) = url_or_addr.parse::<std::net::SocketAddr>() {
            return Some(Gateway { host: addr.ip().to_string(), port: addr.port() });
        }
        let u = reqwest::Url::parse(url_or_addr).ok()?;
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        Some(Gateway { host, port: u.port_or_known_default()? })
    }

    /// Whether `url` reaches this gateway: the same port, and the same host, or both this
    /// machine, or a gateway listening on every address.
    fn serves(&self, url: &str) -> bool {
        let Some(other) = Gateway::parse(url) else { return false };
        let local = |h: &str| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        // A gateway listening on every address is reached here through this machine's own
        // names: a URL to another host on the same port is not it.
        let any = self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        other.port == self.port && (other.host == self.host || ((any || local(&self.host)) && local(&other.host)))
    }
}

/// What the per-server checks need to know.
pub struct Context<'a> {
    /// The Warden configuration in use, if one was found: its servers are compared with the
    /// clients' entries.
    pub config: Option<&'a Config>,
    /// Look up URL host names.
    pub resolve: bool,
    /// The credential scanner (compiled once).
    pub secrets: &'a SecretScanner,
}

/// Whether the entry starts `warden run` (any path ending in `warden`, or `@self`), whose
/// `run` is a subcommand rather than the value of `--config`.
pub fn runs_warden(e: &Entry) -> bool {
    let Some(command) = e.command.as_deref() else { return false };
    if command != SELF_COMMAND && base(command) != "warden" {
        return false;
    }
    let mut previous = "";
    e.args.iter().any(|a| {
        let hit = a == "run" && !matches!(previous, "-c" | "--config");
        previous = a;
        hit
    })
}

/// Why the `warden` an entry runs may not be Warden: it is not on this machine, its path is
/// relative (what runs depends on the client's working directory), or it is another file than
/// the Warden running this scan (a program may be named `warden` and be anything).
fn unverified_warden(command: &str) -> Option<String> {
    if command == SELF_COMMAND {
        return None;
    }
    let path = std::path::Path::new(command);
    let found = if path.is_absolute() {
        path.is_file().then(|| path.to_path_buf())
    } else if command.contains(['/', '\\']) {
        return Some(format!(
            "runs {command:?}, a relative path: which program that is depends on the client's working directory"
        ));
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(command)).find(|f| f.is_file()))
    };
    let Some(found) = found else {
        return Some(format!("runs {command:?}, which is not on this machine"));
    };
    let this = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let that = std::fs::canonicalize(&found).ok();
    (this.is_none() || this != that).then(|| {
        format!("runs {}, which is not the Warden running this scan: check that it is Warden", found.display())
    })
}

/// Whether the entry goes through Warden: it runs `warden run`, or its URL is a known gateway.
pub fn through_warden(e: &Entry, gateways: &[Gateway]) -> bool {
    runs_warden(e) || e.url.as_deref().is_some_and(|u| gateways.iter().any(|g| g.serves(u)))
}

/// Everything found about one entry on its own.
pub fn entry_flags(e: &Entry, through: bool, ctx: &Context<'_>) -> Vec<Flag> {
    let mut out = vec![];
    if runs_warden(e)
        && let Some(why) = e.command.as_deref().and_then(unverified_warden)
    {
        out.push(Flag::new("unverified-warden", Severity::Low, why));
    }
    if !through {
        out.push(Flag::new(
            "shadow-server",
            Severity::Medium,
            "does not go through Warden: its calls are not authorized, filtered or audited (R10)",
        ));
        if let Some(name) = ctx.config.and_then(|c| bypassed(e, c)) {
            out.push(Flag::new(
                "bypasses-warden",
                Severity::High,
                format!("runs the same server as Warden's server {name:?} directly, bypassing Warden's controls"),
            ));
        }
    }
    if let Some(command) = e.command.as_deref() {
        out.extend(command_flags(command, &e.args, false));
        out.extend(argument_flags(ctx.secrets, &e.args));
    }
    out.extend(credential_flags(ctx.secrets, "env", e.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    out.extend(credential_flags(ctx.secrets, "header", e.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    if let Some(how) = &e.auto_approved {
        out.push(Flag::new(
            "auto-approved",
            Severity::Medium,
            format!("the client calls its tools without asking the user ({how}): nothing stands between what the model reads and what it does"),
        ));
    }
    if let Some(url) = e.url.as_deref() {
        out.extend(url_flags(url, ctx.resolve));
        if e.transport == Transport::Sse {
            out.push(Flag::new(
                "deprecated-sse",
                Severity::Low,
                "uses the deprecated HTTP+SSE transport, which Warden does not serve; move it to Streamable HTTP",
            ));
        }
    }
    out
}

/// The Warden server that `e` starts or reaches directly, if any.
fn bypassed(e: &Entry, config: &Config) -> Option<String> {
    config.servers.iter().find_map(|(name, s)| {
        let same_command = match (e.command.as_deref(), s.command.as_deref()) {
            (Some(a), Some(b)) => b != SELF_COMMAND && base(a) == base(b) && e.args == s.args,
            _ => false,
        };
        let same_url = match (e.url.as_deref(), s.url.as_deref()) {
            (Some(a), Some(b)) => same_url(a, b),
            _ => false,
        };
        (same_command || same_url).then(|| name.clone())
    })
}

fn same_url(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        }
        _ => a == b,
    }
}

/// What starting or reaching `e` means, to compare two entries of the same name.
fn launch(e: &Entry) -> (Option<&str>, &[String], Option<&str>) {
    (e.command.as_deref(), &e.args, e.url.as_deref())
}

/// Names across every file: the same name configured differently in two places, and names
/// that look alike (equal once case, separators and confusable letters are set aside, or one
/// edit apart when at least five characters long).
pub fn name_findings(servers: &[Server]) -> Vec<Finding> {
    let mut out = vec![];
    let mut by_name: BTreeMap<&str, Vec<&Server>> = BTreeMap::new();
    for s in servers {
        by_name.entry(s.entry.name.as_str()).or_default().push(s);
    }
    for (name, group) in &by_name {
        let first = group[0];
        for other in group.iter().skip(1).filter(|o| launch(&o.entry) != launch(&first.entry)) {
            out.push(Finding::server(
                other,
                Flag::new(
                    "duplicate-name",
                    Severity::Medium,
                    format!(
                        "the name {name:?} also names a different server in {} ({}): a model or a user may take one for the other",
                        first.client.label(),
                        first.file.display()
                    ),
                ),
            ));
        }
    }
    let names: Vec<&str> = by_name.keys().copied().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let Some(flag) = lookalike(a, b) else { continue };
            let (first, second) = (by_name[a][0], by_name[b][0]);
            let (earlier, later) = if first.id <= second.id { (first, second) } else { (second, first) };
            out.push(Finding::server(
                later,
                Flag::new(
                    flag.rule,
                    flag.severity,
                    format!(
                        "the name {:?} looks like {:?} ({}, {}): {}",
                        later.entry.name,
                        earlier.entry.name,
                        earlier.client.label(),
                        earlier.file.display(),
                        flag.message
                    ),
                ),
            ));
        }
    }
    out
}

/// Whether two different names look alike, and how badly.
pub fn lookalike(a: &str, b: &str) -> Option<Flag> {
    if a == b {
        return None;
    }
    let (sa, sb) = (skeleton(a), skeleton(b));
    if !sa.is_empty() && sa == sb {
        return Some(if a.is_ascii() && b.is_ascii() {
            Flag::new("lookalike-name", Severity::Medium, "they differ only in case, separators or 0/1")
        } else {
            Flag::new("lookalike-name", Severity::High, "one imitates the other with lookalike letters")
        });
    }
    let (la, lb) = (a.to_lowercase(), b.to_lowercase());
    let long = la.chars().count() >= 5 && lb.chars().count() >= 5;
    (long && within_one_edit(&la, &lb))
        .then(|| Flag::new("lookalike-name", Severity::Medium, "they are one letter apart"))
}

/// Whether `a` and `b` differ by exactly one insertion, deletion or substitution.
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short.iter().zip(long.iter()).take_while(|(x, y)| x == y).count();
    if short.len() == long.len() {
        prefix < short.len() && short[prefix + 1..] == long[prefix + 1..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_names() {
        let rule = |a: &str, b: &str| lookalike(a, b).map(|f| (f.rule, f.severity));
        assert_eq!(rule("github", "git-hub"), Some(("lookalike-name", Severity::Medium)));
        assert_eq!(rule("GitHub", "github"), Some(("lookalike-name", Severity::Medium)));
        assert_eq!(rule("github", "gіthub"), Some(("lookalike-name", Severity::High)), "Cyrillic і");
        assert_eq!(rule("github", "githab"), Some(("lookalike-name", Severity::Medium)));
        assert_eq!(rule("postgres", "postgress"), Some(("lookalike-name", Severity::Medium)));
        assert_eq!(rule("fs", "gs"), None, "too short for one edit to mean anything");
        assert_eq!(rule("github", "gitlab"), None, "two edits");
        assert_eq!(rule("github", "github"), None);
        assert_eq!(rule("memory", "filesystem"), None);
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("abcde", "abxde"));
        assert!(within_one_edit("abcde", "abde"));
        assert!(within_one_edit("abcde", "abcdef"));
        assert!(!within_one_edit("abcde", "abcde"));
        assert!(!within_one_edit("abcde", "axcdy"));
        assert!(!within_one_edit("abcde", "abc"));
    }

    fn entry(command: &str, args: &[&str], url: Option<&str>) -> Entry {
        Entry {
            name: "x".into(),
            project: None,
            transport: if url.is_some() { Transport::Http } else { Transport::Stdio },
            command: (!command.is_empty()).then(|| command.to_owned()),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Default::default(),
            cwd: None,
            url: url.map(str::to_owned),
            headers: Default::default(),
            auto_approved: None,
        }
    }

    #[test]
    fn a_program_named_warden_is_checked_against_the_one_running() {
        assert_eq!(unverified_warden("@self"), None);
        let this = std::env::current_exe().unwrap();
        assert_eq!(unverified_warden(&this.display().to_string()), None);
        assert!(unverified_warden("/nonexistent/bin/warden").is_some_and(|w| w.contains("not on this machine")));
        assert!(unverified_warden("./tools/warden").is_some_and(|w| w.contains("relative path")));
        assert!(unverified_warden("/bin/sh").is_some_and(|w| w.contains("not the Warden running this scan")));
    }

    #[test]
    fn what_goes_through_warden() {
        let gw = [Gateway::parse("127.0.0.1:8787").unwrap(), Gateway::parse("https://mcp.example.com/mcp").unwrap()];
        assert!(through_warden(&entry("/usr/local/bin/warden", &["--config", "/etc/w.toml", "run"], None), &gw));
        assert!(through_warden(&entry("@self", &["run"], None), &gw));
        assert!(!through_warden(&entry("warden", &["demo-server"], None), &gw));
        assert!(!through_warden(&entry("warden", &["-c", "run"], None), &gw), "run is the config file's name");
        assert!(!through_warden(&entry("not-warden", &["run"], None), &gw));
        assert!(through_warden(&entry("", &[], Some("http://localhost:8787/mcp")), &gw));
        assert!(through_warden(&entry("", &[], Some("https://mcp.example.com/other")), &gw));
        assert!(!through_warden(&entry("", &[], Some("http://127.0.0.1:9999/mcp")), &gw));
        let any = [Gateway::parse("0.0.0.0:8787").unwrap()];
        assert!(through_warden(&entry("", &[], Some("http://127.0.0.1:8787/mcp")), &any));
        assert!(
            !through_warden(&entry("", &[], Some("http://evil.example:8787/mcp")), &any),
            "another host on the port of a gateway listening everywhere is not the gateway"
        );
    }
}
