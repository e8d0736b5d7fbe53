//! `warden report` end to end: the demo gateway records real calls from the SDK client, the
//! report is written from its configuration and database with no gateway running, and the HTML
//! is rendered in headless Chromium; the OAuth example shows the scopes recorded per call and
//! names a token whose write scope only ever read.

#[path = "support/issuer.rs"]
mod issuer;
mod support;

use issuer::{Alg, Issuer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use support::*;

/// The demo configuration as shipped, listening where the system chooses, with the shipped
/// policies named by absolute path (the gateway's config lives in a scratch directory).
fn demo_config() -> String {
    let text = std::fs::read_to_string(repo().join("examples/demo.toml")).expect("examples/demo.toml");
    let policies = repo().join("examples/policies");
    let text = text
        .replace("listen = \"127.0.0.1:8787\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("files = [") {
            let files = ["demo.cedar", "tenant-binding.cedar", "ssrf.cedar"]
                .map(|f| format!("{:?}", policies.join(f).display().to_string()))
                .join(", ");
            out.push_str(&format!("files = [{files}]\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `warden report` on `config`; the HTML and Markdown written.
fn report(config: &std::path::Path, dir: &TempDir) -> (String, String, PathBuf) {
    let html = dir.path("report.html");
    let md = dir.path("report.md");
    let out = Command::new(warden_bin())
        .args(["report", "--config"])
        .arg(config)
        .arg("--html")
        .arg(&html)
        .arg("--markdown")
        .arg(&md)
        .args(["--since", "1d"])
        .output()
        .expect("warden report");
    assert!(out.status.success(), "warden report failed: {}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read_to_string(&html).unwrap(), std::fs::read_to_string(&md).unwrap(), html)
}

/// Where test artifacts are kept (under the target directory).
fn artifacts() -> PathBuf {
    let target = warden_bin().parent().and_then(|p| p.parent()).expect("target dir").to_owned();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders the report in headless Chromium; what the page did.
fn render(html: &std::path::Path, shot: &std::path::Path) -> Value {
    let profile = TempDir::new("chromium-profile");
    node_modules();
    let out = Command::new("node")
        .current_dir(repo().join("tests/peers/node"))
        .arg("render_report.mjs")
        .arg(html)
        .arg(shot)
        .arg(&profile.0)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!("the renderer printed no result ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
fn the_demo_report_renders_and_names_who_may_call_each_tool() {
    let mut gw = Warden::start(&demo_config(), 0);
    let transport = json!({ "type": "http", "url": gw.url() });
    let out = node_client(json!({ "sdk": "v1", "transport": transport, "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": "hi" } },
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
        { "op": "callTool", "name": "demo__get_invoice", "arguments": { "tenant_id": "acme", "number": "INV-1001" } },
    ]}));
    let listed = ok(&out, 0)["tools"].as_array().expect("tools").clone();
    ok(&out, 1);
    ok(&out, 2);
    ok(&out, 3);
    gw.stop();

    let dir = TempDir::new("report");
    let (html, md, html_path) = report(&gw.dir.path("warden.toml"), &dir);
    assert!(!html.contains("<script"), "no script in the report");
    let shot = artifacts().join("report-demo.png");
    let page = render(&html_path, &shot);
    assert_eq!(page["consoleErrors"], json!([]), "{page}");
    assert_eq!(page["pageErrors"], json!([]), "{page}");
    assert_eq!(page["requests"], json!([]), "the report fetches nothing: {page}");
    assert_eq!(page["scriptElements"], 0);
    for id in ["architecture-diagram", "matrix"] {
        let b = &page["boxes"][id];
        assert_eq!(b["visible"], true, "{id}: {page}");
        assert!(b["width"].as_f64().unwrap() > 100.0 && b["height"].as_f64().unwrap() > 50.0, "{id}: {b}");
    }
    let painted = page["paintedPixels"].as_f64().unwrap() / page["totalPixels"].as_f64().unwrap();
    assert!(painted > 0.02, "the screenshot {} is blank ({painted})", shot.display());
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Every tool the demo lists is in the matrix, with what the shipped policies give each
    // principal: reads for everyone, writes for users (not admins), irreversible with approval.
    let matrix = page["matrix"].as_array().expect("matrix rows");
    let header: Vec<&str> = matrix[0].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let col =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}: {header:?}"));
    let (local, admin, class_col) = (col("local local may"), col("any admin may"), col("class"));
    assert!(listed.len() >= 9, "{listed:?}");
    for tool in &listed {
        let name = tool["name"].as_str().unwrap().strip_prefix("demo__").expect("demo__ prefix");
        let row = matrix
            .iter()
            .skip(1)
            .find(|r| r[0] == "demo" && r[1] == name)
            .unwrap_or_else(|| panic!("{name} is not in the matrix: {matrix:?}"));
        let class = row[class_col].as_str().unwrap();
        let (expect_local, expect_admin) = match class {
            "read" => ("allow (demo-read)", "allow (demo-read)"),
            "write" => ("allow (demo-write)", "deny (no policy permits)"),
            "irreversible" => ("approval (demo-irreversible)", "approval (demo-irreversible)"),
            other => panic!("{name}: class {other}"),
        };
        assert_eq!(row[local], expect_local, "{name} for the local principal: {row:?}");
        assert_eq!(row[admin], expect_admin, "{name} for an admin: {row:?}");
        let expected_class = match name {
            "write_note" => "write",
            "delete_note" => "irreversible",
            _ if tool["annotations"]["readOnlyHint"] == true => "read",
            _ if tool["annotations"]["destructiveHint"] == true => "irreversible",
            _ => "write",
        };
        assert_eq!(class, expected_class, "{name}: the class Warden decides");
    }
    let echo = matrix.iter().find(|r| r[1] == "echo").unwrap();
    assert_eq!(echo[col("calls in window")], "1", "{echo:?}");
    // The poisoned tool is held, not callable, and the plan says to review it.
    assert!(!listed.iter().any(|t| t["name"] == "demo__daily_tip"));
    let tip = matrix.iter().find(|r| r[1] == "daily_tip").expect("the held tool is in the matrix");
    assert!(tip[2].as_str().unwrap().starts_with("held (poisoned)"), "{tip:?}");
    assert!(md.contains("review the 1 definition(s) held for server demo"), "{md}");
    assert!(md.contains("mark tool demo/get_deploy_config admin"), "{md}");
    assert!(md.contains("```") || md.contains("The diagram itself is the SVG in the HTML report"));
    assert!(md.contains("| demo | echo |"), "{md}");
    assert!(md.contains("chain intact: "), "{md}");
    std::fs::copy(&html_path, artifacts().join("report-demo.html")).unwrap();
}

#[test]
fn a_token_whose_write_scope_only_read_is_named() {
    let issuer = Issuer::start();
    let port = free_port();
    let text = std::fs::read_to_string(repo().join("examples/oauth.toml")).expect("examples/oauth.toml");
    let policies = repo().join("examples/policies");
    let (_, hash) = api_key();
    let text = text
        .replace("listen = \"127.0.0.1:8787\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("resource = \"https://mcp.example.com/mcp\"", &format!("resource = \"http://127.0.0.1:{port}/mcp\""))
        .replace("allowed_hosts = [\"mcp.example.com\", \"127.0.0.1:8787\"]", "")
        .replace("issuer = \"https://auth.example.com\"", &format!("issuer = {:?}", issuer.issuer))
        .replace(
            "jwks_url = \"https://auth.example.com/.well-known/jwks.json\"",
            &format!("jwks_url = {:?}", issuer.jwks_url),
        )
        .replace("sha256:5b6fa94e0a68bde74a3b1f31cf2d2fc4826c8a1c5e1a8a5efc04d6a76ec3a0a1", &hash)
        .replace("\"policies/", &format!("\"{}/", policies.display()));
    let mut gw = Warden::start(&text, port);
    let token = |sub: &str, scope: &str| {
        issuer.token(Alg::Rs256, &issuer.claims(sub, &gw.url(), json!({ "scope": scope, "tenant": "acme" })))
    };
    let transport =
        |t: &str| json!({ "type": "http", "url": gw.url(), "headers": { "Authorization": format!("Bearer {t}") } });
    // alice's token may write notes; she only reads.
    let alice = token("alice", "mcp notes:write");
    let out = node_client(json!({ "sdk": "v1", "transport": transport(&alice), "ops": [
        { "op": "callTool", "name": "demo__echo", "arguments": { "text": "hi" } },
        { "op": "callTool", "name": "demo__add", "arguments": { "a": 1, "b": 2 } },
    ]}));
    ok(&out, 0);
    ok(&out, 1);
    // bob's writes.
    let bob = token("bob", "mcp notes:write");
    let out = node_client(json!({ "sdk": "v1", "transport": transport(&bob), "ops": [
        { "op": "callTool", "name": "demo__write_note", "arguments": { "title": "t", "body": "b" } },
    ]}));
    ok(&out, 0);
    gw.stop();

    // The export shows each call's scopes.
    let config = gw.dir.path("warden.toml");
    let export = Command::new(warden_bin()).args(["audit", "--config"]).arg(&config).args(["export"]).output().unwrap();
    let rows: Vec<Value> =
        String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let call = rows.iter().find(|r| r["actor_id"] == "alice" && r["event"] == "call").expect("alice's call row");
    assert_eq!(call["scopes"], json!(["mcp", "notes:write"]), "{call}");
    let verify = Command::new(warden_bin()).args(["audit", "--config"]).arg(&config).args(["verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    let dir = TempDir::new("report-oauth");
    let (html, md, _) = report(&config, &dir);
    assert!(md.contains("OVER-SCOPED: alice (user) presented notes:write but only read"), "{md}");
    assert!(!md.contains("OVER-SCOPED: bob"), "bob used his write scope: {md}");
    assert!(md.contains("drop scope notes:write from alice (user)"), "{md}");
    assert!(html.contains("OVER-SCOPED: alice (user)"));
    // The API key's scopes lack notes:write: write_note is refused to it before any policy.
    assert!(md.contains("refused (needs scope notes:write)"), "{md}");
}

/// A server names its tool to break out of the report: HTML that would load an image and run
/// script, and Markdown that would fetch an image. The HTML shows it as text (nothing fetched,
/// nothing run in Chromium), and the Markdown keeps it from being a link or an image.
#[test]
fn a_hostile_tool_name_stays_text_in_the_report() {
    let hostile = "x<img src=https://attacker.example/h.png onerror=alert(1)>![y](https://attacker.example/m.png)";
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[servers.rug]\ncommand = {:?}\nargs = [{:?}]\nenv = {{ EXTRA = {:?} }}\n",
        venv_bin("python"),
        peer_file("python/rugpull_server.py"),
        format!("{hostile}|Looks things up.")
    );
    let mut gw = Warden::start(&config, 0);
    let out = node_client(
        json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [{ "op": "listTools" }] }),
    );
    ok(&out, 0);
    gw.stop();
    let dir = TempDir::new("report-hostile");
    let (html, md, html_path) = report(&gw.dir.path("warden.toml"), &dir);
    assert!(html.contains("attacker.example"), "the tool is in the report: {html}");
    assert!(!html.contains("<img") && !html.contains("<script"), "{html}");
    let page = render(&html_path, &artifacts().join("report-hostile.png"));
    assert_eq!(page["requests"], json!([]), "nothing fetched: {page}");
    assert_eq!(page["pageErrors"], json!([]), "{page}");
    assert_eq!(page["scriptElements"], 0);
    assert!(md.contains("attacker.example") && !md.contains("![y]") && !md.contains("<img"), "{md}");
}
