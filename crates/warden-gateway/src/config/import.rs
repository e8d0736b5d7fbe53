//! Importing servers from the `mcpServers` JSON block that MCP clients use.
//!
//! ```json
//! { "mcpServers": { "files": { "command": "npx", "args": ["-y", "..."], "env": {"K": "v"} },
//!                   "remote": { "type": "http", "url": "https://example.com/mcp", "headers": {} } } }
//! ```
//!
//! The result is `[servers.NAME]` TOML. Literal `env` values are carried over as they are (they may
//! be secrets: review them); `PATH` and `HOME` are inherited so `npx`/`uvx` launchers keep working.
//! A package runner's package without an exact version is pinned to the version installed here,
//! when there is exactly one ([`super::pinning`]); each rewrite is noted for the reviewer.

use super::pinning::{Caches, Pinned, pin};
use super::{Config, ServerSection};
use serde_json::Value;
use std::collections::BTreeMap;

/// What `warden import` made of an `mcpServers` document.
#[derive(Debug)]
pub struct Imported {
    /// The `[servers]` TOML.
    pub toml: String,
    /// What was rewritten, one line per change, for the reviewer.
    pub notes: Vec<String>,
}

/// Converts an `mcpServers` document to Warden `[servers]` TOML, pinning runner packages from
/// `caches`. Fails on entries Warden cannot serve (for example the deprecated HTTP+SSE
/// transport), naming them.
pub fn import_mcp_servers(json: &str, caches: &Caches) -> Result<Imported, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let servers = doc
        .get("mcpServers")
        .or_else(|| doc.get("servers"))
        .and_then(Value::as_object)
        .ok_or("no \"mcpServers\" object found")?;
    let mut out: BTreeMap<String, ServerSection> = BTreeMap::new();
    let mut notes = Vec::new();
    for (raw_name, entry) in servers {
        let name: String =
            raw_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let name = name.replace("__", "_");
        let strs = |key: &str| -> Vec<String> {
            entry
                .get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let map = |key: &str| -> BTreeMap<String, String> {
            entry
                .get(key)
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default()
        };
        let kind = entry.get("type").or_else(|| entry.get("transport")).and_then(Value::as_str).unwrap_or("");
        let section = if let Some(command) = entry.get("command").and_then(Value::as_str) {
            let mut args = strs("args");
            if let Pinned::Rewritten(note) = pin(command, &mut args, caches) {
                notes.push(format!("server {name}: {note}"));
            }
            ServerSection {
                command: Some(command.to_owned()),
                args,
                env: map("env"),
                env_inherit: vec!["PATH".into(), "HOME".into()],
                cwd: entry.get("cwd").and_then(Value::as_str).map(Into::into),
                ..Default::default()
            }
        } else if let Some(url) = entry.get("url").or_else(|| entry.get("serverUrl")).and_then(Value::as_str) {
            if kind == "sse" {
                return Err(format!(
                    "server {raw_name:?} uses the deprecated HTTP+SSE transport, which Warden does not serve"
                ));
            }
            ServerSection { url: Some(url.to_owned()), headers: map("headers"), ..Default::default() }
        } else {
            return Err(format!("server {raw_name:?} has neither a command nor a url"));
        };
        if out.insert(name.clone(), section).is_some() {
            return Err(format!("two servers map to the name {name:?}; rename one"));
        }
    }
    let config = Config { servers: out, ..Default::default() };
    #[derive(serde::Serialize)]
    struct Servers<'a> {
        servers: &'a BTreeMap<String, ServerSection>,
    }
    let text = toml::to_string(&Servers { servers: &config.servers }).map_err(|e| e.to_string())?;
    Config::parse(&text, "(imported)").map_err(|e| e.to_string())?;
    Ok(Imported { toml: text, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_stdio_and_http_entries() {
        let json = r#"{"mcpServers":{
            "filesystem":{"command":"npx","args":["-y","@modelcontextprotocol/server-filesystem","/tmp"],"env":{"DEBUG":"1"}},
            "remote.api":{"type":"http","url":"https://example.com/mcp","headers":{"X-Team":"a"}}}}"#;
        let none = Caches { npm: None, home: None };
        let toml_text = import_mcp_servers(json, &none).unwrap().toml;
        let c = Config::parse(&toml_text, "x").unwrap();
        assert_eq!(c.servers["filesystem"].command.as_deref(), Some("npx"));
        assert_eq!(c.servers["filesystem"].env["DEBUG"], "1");
        assert_eq!(c.servers["remote_api"].url.as_deref(), Some("https://example.com/mcp"));
        assert_eq!(c.servers["remote_api"].headers["X-Team"], "a");
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let none = Caches { npm: None, home: None };
        assert!(import_mcp_servers(r#"{"mcpServers":{"x":{"type":"sse","url":"http://h/sse"}}}"#, &none).is_err());
        assert!(import_mcp_servers(r#"{"mcpServers":{"x":{}}}"#, &none).is_err());
        assert!(import_mcp_servers("[]", &none).is_err());
    }
}
