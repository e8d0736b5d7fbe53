//! End to end: the rule file operators write (`version: v1`, YAML) loads next to Cedar policies
//! and decides as its rule ids say; its constraints bound the calls it allows.

mod support;

use serde_json::{Value, json};
use support::*;

/// A gateway with `rules` and a permit-all Cedar file, and the directory holding them.
fn gateway(rules: &str, extra: &str) -> (Warden, TempDir) {
    let dir = TempDir::new("rules");
    std::fs::write(dir.path("rules.yaml"), rules).unwrap();
    std::fs::write(dir.path("base.cedar"), PERMIT_ALL).unwrap();
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n{}\n{extra}\n[policy]\nfiles = [{:?}, {:?}]\n",
            demo_server("github"),
            demo_server("other"),
            dir.path("rules.yaml").display().to_string(),
            dir.path("base.cedar").display().to_string(),
        ),
    );
    (gw, dir)
}

fn names(listed: &Value) -> Vec<String> {
    listed["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

/// The threat model's file, verbatim, beside a policy that permits everything: unregistered
/// servers are denied, writes need approval, and a tool whose scopes the caller lacks is denied
/// (and so not even listed). Through the gateway with the official client, and case by case with
/// `warden policy test`, which names the rule that decided.
#[test]
fn the_threat_models_rule_file_decides_as_its_rule_ids_say() {
    let rules = std::fs::read_to_string(repo().join("examples/policies/threat-model.yaml")).unwrap();
    let tools = "[tools.\"github/echo\"]\nclass = \"read\"\n\n[tools.\"github/add\"]\nclass = \"read\"\nscopes = [\"math\"]\n\n\
                 [tools.\"github/write_note\"]\nclass = \"write\"\n\n[tools.\"other/echo\"]\nclass = \"read\"\n";
    let (gw, _rules) = gateway(&rules, tools);
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "listTools" },
        { "op": "callTool", "name": "other__echo", "arguments": { "text": "hi" } },
        { "op": "callTool", "name": "github__echo", "arguments": { "text": "hi" } },
        { "op": "callTool", "name": "github__write_note", "arguments": { "title": "t", "body": "b" } },
    ]}));
    let listed = names(ok(&out, 0));
    assert!(listed.contains(&"github__echo".to_owned()), "{listed:?}");
    assert!(!listed.iter().any(|n| n.starts_with("other__")), "an unregistered server lists nothing: {listed:?}");
    assert!(!listed.contains(&"github__add".to_owned()), "deny-scope-mismatch hides it: {listed:?}");
    // What a caller may not list it may not call, and it learns no more than that it is unknown.
    assert!(err(&out, 1)["message"].as_str().unwrap_or_default().contains("Unknown tool"), "{out}");
    assert_eq!(ok(&out, 2)["content"][0]["text"], "hi");
    let held = err(&out, 3);
    assert!(held["message"].as_str().unwrap_or_default().contains("warden approvals approve"), "{held}");
    assert!(held["data"]["reasons"].to_string().contains("require-approval-for-write"), "{held}");

    let cases = gw.dir.path("cases.toml");
    std::fs::write(
        &cases,
        "[[case]]\nname = \"unregistered\"\nprincipal = { subject = \"alice\" }\ntool = \"other/echo\"\nexpect = \"deny\"\n\n\
         [[case]]\nname = \"write\"\nprincipal = { subject = \"alice\" }\ntool = \"github/write_note\"\nexpect = \"require_approval\"\n\n\
         [[case]]\nname = \"scope missing\"\nprincipal = { subject = \"alice\", scopes = [\"mcp\"] }\ntool = \"github/add\"\nexpect = \"deny\"\n\n\
         [[case]]\nname = \"scope held\"\nprincipal = { subject = \"alice\", scopes = [\"math\"] }\ntool = \"github/add\"\nexpect = \"allow\"\n\n\
         [[case]]\nname = \"read\"\nprincipal = { subject = \"alice\" }\ntool = \"github/echo\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let run = std::process::Command::new(warden_bin())
        .args(["policy", "test"])
        .arg(&cases)
        .arg("--config")
        .arg(gw.dir.path("warden.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    for (case, rule) in [
        ("unregistered", "deny-unregistered-server"),
        ("write", "require-approval-for-write"),
        ("scope missing", "deny-scope-mismatch"),
    ] {
        let line = said.lines().find(|l| l.starts_with(&format!("ok    {case}:"))).unwrap_or_else(|| panic!("{said}"));
        assert!(line.contains(rule), "{line}");
    }
}

/// `max_runtime_sec` cancels a call that runs longer; `max_retries` refuses a call that has
/// failed more often than it allows, until it succeeds again.
#[test]
fn constraints_bound_the_calls_a_rule_allows() {
    let rules = "version: v1\nrules:\n\
                 \x20 - id: bounded-count\n    match:\n      labels:\n        mcp.tool: slow_count\n    decision: ALLOW\n    constraints:\n      max_runtime_sec: 1\n\
                 \x20 - id: bounded-delete\n    match:\n      labels:\n        mcp.tool: delete_note\n    decision: ALLOW\n    constraints:\n      max_retries: 1\n";
    let (gw, _rules) = gateway(rules, "");
    let delete = json!({ "op": "callTool", "name": "github__delete_note", "arguments": { "title": "nope" } });
    let out = node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": [
        { "op": "callTool", "name": "github__slow_count", "arguments": { "steps": 2, "delay_ms": 100 } },
        { "op": "callTool", "name": "github__slow_count", "arguments": { "steps": 4, "delay_ms": 1000 } },
        delete, delete, delete,
        { "op": "callTool", "name": "github__delete_note", "arguments": { "title": "other" } },
    ]}));
    ok(&out, 0);
    let slow = err(&out, 1)["message"].as_str().unwrap_or_default().to_owned();
    assert!(slow.contains("ran past the 1 s"), "{slow}");
    assert_eq!(ok(&out, 2)["isError"], true, "the first failure");
    assert_eq!(ok(&out, 3)["isError"], true, "the one retry allowed");
    let limited = err(&out, 4)["message"].as_str().unwrap_or_default().to_owned();
    assert!(limited.contains("failed 2 times") && limited.contains("1 retry"), "{limited}");
    assert_eq!(ok(&out, 5)["isError"], true, "other arguments are another call");
}
