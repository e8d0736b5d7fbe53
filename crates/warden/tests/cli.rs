//! The command line: `check`, `config schema`, `import`, and the shipped examples.

mod support;

use serde_json::json;
use std::process::Command;
use support::*;

fn warden(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(warden_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_examples_and_locates_errors() {
    let (ok, out, err) = warden(&["check", "--config", &repo().join("examples/demo.toml").display().to_string()]);
    assert!(ok, "{out}{err}");
    let dir = TempDir::new("cli");
    let bad = dir.path("bad.toml");
    std::fs::write(&bad, "[gateway]\nlisten = \"127.0.0.1:1\"\n\n[servers.files]\ncommand = \"npx\"\nenvv = {}\n")
        .unwrap();
    let (ok, _, err) = warden(&["check", "--config", &bad.display().to_string()]);
    assert!(!ok);
    assert!(err.contains(&format!("{}:6:", bad.display())), "the error names file and line: {err}");
    assert!(err.contains("servers.files") && err.contains("envv"), "and the key: {err}");
}

#[test]
fn the_shipped_json_schema_is_the_generated_one() {
    let (ok, generated, err) = warden(&["config", "schema"]);
    assert!(ok, "{err}");
    let shipped =
        std::fs::read_to_string(repo().join("docs/warden.schema.json")).expect("docs/warden.schema.json is shipped");
    let a: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let b: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    assert_eq!(
        a, b,
        "docs/warden.schema.json is stale: regenerate it with `warden config schema > docs/warden.schema.json`"
    );
}

#[test]
fn mcp_servers_json_imports_to_a_valid_config() {
    let dir = TempDir::new("cli");
    let json = dir.path("claude_desktop_config.json");
    std::fs::write(
        &json,
        r#"{"mcpServers":{"filesystem":{"command":"npx","args":["-y","@modelcontextprotocol/server-filesystem","/tmp"]},"remote":{"type":"http","url":"https://mcp.example.com/mcp"}}}"#,
    )
    .unwrap();
    let (ok, toml, err) = warden(&["import", &json.display().to_string()]);
    assert!(ok, "{err}");
    let cfg = dir.path("imported.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let (ok, out, err) = warden(&["check", "--config", &cfg.display().to_string()]);
    assert!(ok, "{toml}\n{out}{err}");
    assert!(out.contains("2 servers"));
}

#[test]
fn the_demo_example_runs_as_shipped() {
    // The quick start's configuration, unchanged but for its port, from another directory.
    let port = free_port();
    let example = std::fs::read_to_string(repo().join("examples/demo.toml")).unwrap();
    assert!(example.contains("listen = \"127.0.0.1:8787\""));
    let policies = repo().join("examples/policies/demo.cedar").display().to_string();
    let example = example
        .replace("127.0.0.1:8787", &format!("127.0.0.1:{port}"))
        .replace("\"policies/demo.cedar\"", &format!("{policies:?}"));
    let gw = Warden::start(&example, port);
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__get_deploy_config", "arguments": { "environment": "prod" } },
    ]}));
    let tools = names(ok(&out, 0), "tools");
    assert!(
        tools.contains(&"demo__daily_tip".to_owned()) && tools.contains(&"demo__get_deploy_config".to_owned()),
        "{tools:?}"
    );
    // What the demo is for: an unguarded proxy passes the (fake) credential through.
    assert!(text(ok(&out, 1)).contains("AKIAIOSFODNN7EXAMPLE"));
}
