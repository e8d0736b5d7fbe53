//! The file formats MCP clients write their servers in, read into one shape ([`Entry`]).
//!
//! Every format is first read into a `serde_json::Value` (JSON with comments through
//! [`super::jsonc`], YAML through `serde_norway`, TOML through `toml`), then the server entries
//! are picked out of it. Values of the wrong type are skipped rather than guessed at: a server
//! entry that is not an object, an argument that is not a string, an environment value that is
//! a number.

use super::jsonc;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How a file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `{"mcpServers": {NAME: {command, args, env, url | serverUrl, headers, type}}}`: Claude
    /// Desktop, Claude Code's `.mcp.json`, Cursor, Windsurf, Junie.
    McpServers,
    /// `~/.claude.json`: top-level `mcpServers` (user scope) and `projects.<dir>.mcpServers`
    /// (servers for one project, kept in the user's file).
    ClaudeCodeUser,
    /// VS Code's `mcp.json`: `{"servers": {...}, "inputs": [...]}`, with comments.
    VsCodeMcp,
    /// VS Code's user `settings.json`: `{"mcp": {"servers": {...}}}`, with comments.
    VsCodeSettings,
    /// Zed's `settings.json`: `{"context_servers": {NAME: {command, args, env} | {url, headers}}}`,
    /// with comments; older files nest `{"command": {"path", "args", "env"}}`.
    Zed,
    /// Continue's YAML: `mcpServers` as a list of `{name, command, args, env, type, url}`.
    ContinueYaml,
    /// Continue's older `config.json`: `experimental.modelContextProtocolServers`, a list of
    /// `{transport: {type, command, args, env, url}}`.
    ContinueJson,
    /// Gemini CLI's `settings.json`: `mcpServers`, where `httpUrl` is Streamable HTTP and `url`
    /// is the older HTTP+SSE transport.
    Gemini,
    /// Codex's `config.toml`: `[mcp_servers.NAME]` with `command`, `args`, `env`, `url`,
    /// `http_headers`.
    Codex,
}

impl Format {
    /// The format of a file of unknown origin, from its name and content.
    pub fn detect(file_name: &str, text: &str) -> Format {
        if file_name.ends_with(".toml") {
            return Format::Codex;
        }
        if file_name.ends_with(".yaml") || file_name.ends_with(".yml") {
            return Format::ContinueYaml;
        }
        let Ok(doc) = jsonc::parse(text) else { return Format::McpServers };
        if file_name == ".claude.json" || doc.get("projects").is_some_and(Value::is_object) {
            Format::ClaudeCodeUser
        } else if doc.get("context_servers").is_some() {
            Format::Zed
        } else if doc.get("mcp").and_then(|m| m.get("servers")).is_some() {
            Format::VsCodeSettings
        } else if doc.get("servers").is_some() {
            Format::VsCodeMcp
        } else if doc.pointer("/experimental/modelContextProtocolServers").is_some() {
            Format::ContinueJson
        } else if doc.get("mcpServers").is_some_and(Value::is_array) {
            Format::ContinueYaml
        } else if doc
            .get("mcpServers")
            .and_then(Value::as_object)
            .is_some_and(|m| m.values().any(|s| s.get("httpUrl").is_some()))
        {
            Format::Gemini
        } else {
            Format::McpServers
        }
    }
}

/// How a client reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A program the client starts.
    Stdio,
    /// Streamable HTTP.
    Http,
    /// The older HTTP+SSE transport.
    Sse,
}

impl Transport {
    /// `stdio`, `http` or `sse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::Sse => "sse",
        }
    }
}

/// One server as a client configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name in the client.
    pub name: String,
    /// For Claude Code servers kept per project in `~/.claude.json`: the project's directory.
    pub project: Option<String>,
    /// How it is reached.
    pub transport: Transport,
    /// The program (stdio).
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it (values may be secrets: never shown).
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// The URL (HTTP, SSE).
    pub url: Option<String>,
    /// Headers sent to the URL (values may be secrets: never shown).
    pub headers: BTreeMap<String, String>,
    /// How the client runs its tools without asking the user, if it does (Gemini CLI's
    /// `trust: true`; `autoApprove`/`alwaysAllow` lists).
    pub auto_approved: Option<String>,
}

/// The server entries of a file in `format`; an error names what did not parse.
pub fn parse(format: Format, text: &str) -> Result<Vec<Entry>, String> {
    let doc = match format {
        // Where, not what: a parser's message may quote the line, and the line may hold a secret.
        Format::ContinueYaml => serde_norway::from_str::<Value>(text).map_err(|e| match e.location() {
            Some(l) => format!("not valid YAML (line {}, column {})", l.line(), l.column()),
            None => "not valid YAML".to_owned(),
        })?,
        Format::Codex => toml::from_str::<Value>(text).map_err(|e| match e.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or("");
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("not valid TOML (line {line}, column {column})")
            }
            None => "not valid TOML".to_owned(),
        })?,
        _ => jsonc::parse(text).map_err(|e| format!("not valid JSON: {e}"))?,
    };
    let map = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = vec![];
    match format {
        Format::McpServers => out.extend(from_map(&map(doc.get("mcpServers")), Dialect::Common)),
        Format::ClaudeCodeUser => {
            out.extend(from_map(&map(doc.get("mcpServers")), Dialect::Common));
            for (dir, project) in map(doc.get("projects")) {
                for mut e in from_map(&map(project.get("mcpServers")), Dialect::Common) {
                    e.project = Some(dir.clone());
                    out.push(e);
                }
            }
        }
        Format::VsCodeMcp => out.extend(from_map(&map(doc.get("servers")), Dialect::Common)),
        Format::VsCodeSettings => {
            out.extend(from_map(&map(doc.get("mcp").and_then(|m| m.get("servers"))), Dialect::Common))
        }
        Format::Zed => out.extend(from_map(&map(doc.get("context_servers")), Dialect::Zed)),
        Format::Gemini => out.extend(from_map(&map(doc.get("mcpServers")), Dialect::Gemini)),
        Format::Codex => out.extend(from_map(&map(doc.get("mcp_servers")), Dialect::Codex)),
        Format::ContinueYaml => match doc.get("mcpServers") {
            Some(Value::Array(list)) => {
                for (i, item) in list.iter().enumerate() {
                    let name = item.get("name").and_then(Value::as_str).map(str::to_owned);
                    out.extend(entry(&name.unwrap_or_else(|| format!("#{}", i + 1)), item, Dialect::Common));
                }
            }
            // Continue also reads files in the other clients' JSON format from its block directory.
            Some(Value::Object(m)) => out.extend(from_map(m, Dialect::Common)),
            _ => {}
        },
        Format::ContinueJson => {
            let list = doc.pointer("/experimental/modelContextProtocolServers").and_then(Value::as_array);
            for (i, item) in list.into_iter().flatten().enumerate() {
                let name = item.get("name").and_then(Value::as_str).map(str::to_owned);
                let name = name.unwrap_or_else(|| format!("#{}", i + 1));
                out.extend(entry(&name, item.get("transport").unwrap_or(item), Dialect::Common));
            }
        }
    }
    Ok(out)
}

/// Differences between clients in what an entry's keys mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Common,
    Zed,
    Gemini,
    Codex,
}

fn from_map(servers: &Map<String, Value>, dialect: Dialect) -> Vec<Entry> {
    servers.iter().filter_map(|(name, v)| entry(name, v, dialect)).collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// Whether the entry lets the client call its tools without asking: Gemini CLI's `trust: true`,
/// or a non-empty `autoApprove` / `alwaysAllow` list.
fn auto_approved(v: &Map<String, Value>) -> Option<String> {
    if v.get("trust").and_then(Value::as_bool) == Some(true) {
        return Some("trust: true".to_owned());
    }
    ["autoApprove", "alwaysAllow"].iter().find_map(|k| {
        let n = v.get(*k).and_then(Value::as_array).map_or(0, Vec::len);
        (n > 0).then(|| format!("{k} lists {n} tool(s)"))
    })
}

fn entry(name: &str, v: &Value, dialect: Dialect) -> Option<Entry> {
    let v = v.as_object()?;
    let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut e = Entry {
        name: name.to_owned(),
        project: None,
        transport: Transport::Stdio,
        command: s("command"),
        args: strings(v.get("args")),
        env: string_map(v.get("env")),
        cwd: s("cwd").or_else(|| s("workingDirectory")),
        url: None,
        headers: string_map(v.get("headers")),
        auto_approved: auto_approved(v),
    };
    // Zed's older form: "command": {"path", "args", "env"}.
    if dialect == Dialect::Zed
        && let Some(c) = v.get("command").and_then(Value::as_object)
    {
        e.command = c.get("path").and_then(Value::as_str).map(str::to_owned);
        e.args = strings(c.get("args"));
        e.env = string_map(c.get("env"));
    }
    if dialect == Dialect::Codex {
        e.headers.extend(string_map(v.get("http_headers")));
    }
    let kind = s("type").or_else(|| s("transport")).unwrap_or_default().to_ascii_lowercase();
    if e.command.is_some() {
        return Some(e);
    }
    let (url, transport) = if let Some(u) = s("httpUrl") {
        (u, Transport::Http)
    } else if let Some(u) = s("url").or_else(|| s("serverUrl")) {
        let sse = kind == "sse" || (dialect == Dialect::Gemini && kind.is_empty());
        (u, if sse { Transport::Sse } else { Transport::Http })
    } else {
        return None;
    };
    e.url = Some(url);
    e.transport = transport;
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(format: Format, text: &str) -> Entry {
        let mut all = parse(format, text).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn mcp_servers_json_stdio_and_remote() {
        let all = parse(
            Format::McpServers,
            r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","pkg@1.0.0",3],"env":{"A":"1","N":2}},
                "remote":{"serverUrl":"https://r.example/mcp","headers":{"X":"y"}},
                "old":{"type":"sse","url":"https://o.example/sse"},"broken":"x","empty":{}}}"#,
        )
        .unwrap();
        assert_eq!(all.len(), 3);
        let fs = all.iter().find(|e| e.name == "fs").unwrap();
        assert_eq!((fs.command.as_deref(), fs.args.len(), fs.env.len()), (Some("npx"), 2, 1));
        let remote = all.iter().find(|e| e.name == "remote").unwrap();
        assert_eq!((remote.transport, remote.url.as_deref()), (Transport::Http, Some("https://r.example/mcp")));
        assert_eq!(all.iter().find(|e| e.name == "old").unwrap().transport, Transport::Sse);
    }

    #[test]
    fn claude_code_user_file_has_user_and_per_project_servers() {
        let all = parse(
            Format::ClaudeCodeUser,
            r#"{"numStartups":3,"mcpServers":{"u":{"command":"a"}},
                "projects":{"/work/p":{"mcpServers":{"l":{"type":"http","url":"https://l.example/mcp"}}}}}"#,
        )
        .unwrap();
        assert_eq!(all[0].name, "u");
        assert_eq!((all[1].name.as_str(), all[1].project.as_deref()), ("l", Some("/work/p")));
    }

    #[test]
    fn vscode_files_with_comments() {
        let e = one(
            Format::VsCodeMcp,
            "{// c\n\"inputs\":[{\"type\":\"promptString\",\"id\":\"k\",\"password\":true}],\n\"servers\":{\"gh\":{\"type\":\"http\",\"url\":\"https://g.example/mcp\",\"headers\":{\"Authorization\":\"Bearer ${input:k}\"},},},}",
        );
        assert_eq!((e.name.as_str(), e.transport), ("gh", Transport::Http));
        let e = one(
            Format::VsCodeSettings,
            "{\"editor.tabSize\": 2, \"mcp\": {\"servers\": {\"m\": {\"command\": \"node\"}}}}",
        );
        assert_eq!(e.command.as_deref(), Some("node"));
    }

    #[test]
    fn zed_new_and_old_forms() {
        let all = parse(
            Format::Zed,
            r#"{/* z */ "context_servers": {"new": {"command": "n", "args": ["a"]},
                "old": {"command": {"path": "o", "args": ["b"], "env": {"K": "v"}}, "settings": {}},
                "web": {"url": "https://w.example/mcp"}}}"#,
        )
        .unwrap();
        let get = |n: &str| all.iter().find(|e| e.name == n).unwrap();
        assert_eq!((get("new").command.as_deref(), get("new").args.clone()), (Some("n"), vec!["a".to_owned()]));
        assert_eq!((get("old").command.as_deref(), get("old").env.len()), (Some("o"), 1));
        assert_eq!(get("web").transport, Transport::Http);
    }

    #[test]
    fn continue_yaml_json_and_block_files() {
        let all = parse(
            Format::ContinueYaml,
            "name: cfg\nversion: 0.0.1\nschema: v1\nmcpServers:\n  - name: pw\n    command: npx\n    args: [\"@playwright/mcp@1.2.3\"]\n  - name: remote\n    type: streamable-http\n    url: https://c.example/mcp\n",
        )
        .unwrap();
        assert_eq!(all[0].command.as_deref(), Some("npx"));
        assert_eq!((all[1].name.as_str(), all[1].transport), ("remote", Transport::Http));
        let e = one(
            Format::ContinueJson,
            r#"{"experimental":{"modelContextProtocolServers":[{"transport":{"type":"stdio","command":"uvx","args":["x"]}}]}}"#,
        );
        assert_eq!((e.name.as_str(), e.command.as_deref()), ("#1", Some("uvx")));
        assert!(parse(Format::ContinueYaml, "mcpServers: [unclosed").is_err());
    }

    #[test]
    fn gemini_url_is_sse_and_http_url_is_streamable() {
        let all = parse(
            Format::Gemini,
            r#"{"theme":"x","mcpServers":{"a":{"httpUrl":"https://a.example/mcp","trust":true},"b":{"url":"https://b.example/sse"},"c":{"command":"python","cwd":"./s","alwaysAllow":["run"]}}}"#,
        )
        .unwrap();
        let t: Vec<Transport> = all.iter().map(|e| e.transport).collect();
        assert_eq!(t, [Transport::Http, Transport::Sse, Transport::Stdio]);
        assert_eq!(all[2].cwd.as_deref(), Some("./s"));
        let approved: Vec<Option<&str>> = all.iter().map(|e| e.auto_approved.as_deref()).collect();
        assert_eq!(approved, [Some("trust: true"), None, Some("alwaysAllow lists 1 tool(s)")]);
    }

    #[test]
    fn codex_toml_tables() {
        let all = parse(
            Format::Codex,
            "model = \"o\"\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\"-y\", \"d@1.0.0\"]\nenv = { K = \"v\" }\n\n[mcp_servers.remote]\nurl = \"https://x.example/mcp\"\nhttp_headers = { \"X-Team\" = \"a\" }\n",
        )
        .unwrap();
        assert_eq!((all[0].name.as_str(), all[0].env.len()), ("docs", 1));
        assert_eq!((all[1].transport, all[1].headers.len()), (Transport::Http, 1));
        assert!(parse(Format::Codex, "[mcp_servers.x\n").is_err());
    }
}
