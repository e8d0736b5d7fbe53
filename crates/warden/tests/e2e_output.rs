//! Output safety end to end: secrets planted in a real server's environment and in every kind of
//! output of a hostile server (text, structuredContent, errors, resources, prompts) never reach
//! the client; results that break their tool's outputSchema, or carry fields a configured
//! response schema does not declare, are refused or narrowed. Through the official SDK clients.

mod support;

use serde_json::{Value, json};
use support::*;

const GH: &str = "ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const AWS: &str = "AKIAIOSFODNN7EXAMPLE";

fn leaky(extra: &str) -> String {
    format!(
        "[servers.leaky]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [{:?}]\n{extra}\n",
        venv_bin("python"),
        peer_file("python/leaky_server.py")
    )
}

fn run(gw: &Warden, ops: Value) -> Value {
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() }, "ops": ops }))
}

fn call(name: &str) -> Value {
    json!({ "op": "callTool", "name": name, "arguments": {} })
}

#[test]
fn secrets_never_reach_the_client_from_any_output() {
    let gw = Warden::serve("", &leaky(""));
    let out = run(
        &gw,
        json!([
            call("leaky__leak_text"),
            call("leaky__leak_structured"),
            call("leaky__leak_error"),
            { "op": "readResource", "uri": "leak://config" },
            { "op": "getPrompt", "name": "leaky__leaky", "arguments": {} },
            { "op": "readResource", "uri": "leak://blob" },
        ]),
    );
    let everything = out.to_string();
    assert!(!everything.contains(GH), "no GitHub token anywhere: {everything}");
    assert!(!everything.contains(AWS), "no AWS key anywhere: {everything}");
    assert!(!everything.contains("S3cretPassw0rd"), "no database password: {everything}");
    assert!(text(ok(&out, 0)).contains("[REDACTED:github_token]"), "{out}");
    assert!(ok(&out, 1)["structuredContent"]["city"].as_str().unwrap().contains("[REDACTED:"), "{out}");
    assert!(
        err(&out, 2)["message"].as_str().unwrap().contains("connection failed"),
        "the error still says what failed: {out}"
    );
    assert!(ok(&out, 3).to_string().contains("[REDACTED:"), "{out}");
    assert!(ok(&out, 4).to_string().contains("[REDACTED:"), "{out}");
    assert_eq!(ok(&out, 5)["contents"][0]["text"], "API_KEY=[REDACTED:github_token]", "text sent as a blob: {out}");

    // The audit log says what was redacted and where, never the value. Rows are written in
    // batches: the last ones may land just after the client is answered.
    let sql = "SELECT tool_name, redactions, findings FROM mcp_audit WHERE event = 'call'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rows = loop {
        let (code, rows) = warden_cli(&gw, &["audit", "query", "--json", sql]);
        assert_eq!(code, 0, "{rows}");
        if rows.lines().count() >= 6 || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(!rows.contains("ghp_") && !rows.contains(AWS), "no secret in the audit log: {rows}");
    let rows: Vec<Value> = rows.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let findings = |tool: &str| -> Value {
        let row = rows.iter().find(|r| r["tool_name"] == tool).unwrap_or_else(|| panic!("{tool}: {rows:?}"));
        serde_json::from_str(row["findings"].as_str().unwrap_or("null")).unwrap()
    };
    let text_findings = findings("leak_text");
    assert!(
        text_findings.as_array().unwrap().contains(&json!({ "kind": "github_token", "at": "/content/0/text" })),
        "{text_findings}"
    );
    assert!(findings("leak_structured").to_string().contains("/structuredContent/city"), "{rows:?}");
    assert!(findings("leak://config").to_string().contains("/contents/0/text"), "{rows:?}");
}

#[test]
fn a_secret_in_a_real_servers_environment_is_redacted() {
    // server-everything's environment tool prints the server's environment.
    let gw = Warden::serve("", &everything_stdio("everything", &format!("env = {{ DEPLOY_TOKEN = {GH:?} }}")));
    let out = run(&gw, json!([{ "op": "listTools" }]));
    let tools = names(ok(&out, 0), "tools");
    let env_tool = tools.iter().find(|t| t.contains("env")).cloned().unwrap_or_else(|| panic!("{tools:?}"));
    let out = run(&gw, json!([{ "op": "callTool", "name": env_tool, "arguments": {} }]));
    let shown = out.to_string();
    assert!(shown.contains("DEPLOY_TOKEN"), "the tool ran and printed its environment: {shown}");
    assert!(!shown.contains(GH), "but not the token: {shown}");
}

#[test]
fn results_that_break_their_output_schema_are_refused() {
    let gw = Warden::serve("", &leaky(""));
    let out = run(&gw, json!([call("leaky__wrong_type")]));
    let e = err(&out, 0);
    assert_eq!(e["code"], -32011, "{out}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("leaky__wrong_type") && message.contains("/temp"),
        "names the tool and the path: {message}"
    );
    assert!(!out.to_string().contains("warm"), "the raw result is not passed on: {out}");
}

#[test]
fn a_configured_response_schema_removes_or_refuses_undeclared_fields() {
    let schema = r#"{ type = "object", properties = { city = { type = "string" }, temp = { type = "number" } } }"#;
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n[tools.\"leaky/extra_fields\"]\nresponse_schema = {schema}\n\n[tools.\"leaky/leak_structured\"]\nresponse_schema = {{ type = \"object\", properties = {{ temp = {{ type = \"number\" }} }} }}\nextra_fields = \"refuse\"\n",
            leaky("")
        ),
    );
    let out = run(&gw, json!([call("leaky__extra_fields"), call("leaky__leak_structured")]));
    let narrowed = ok(&out, 0);
    assert_eq!(narrowed["structuredContent"], json!({ "city": "Oslo", "temp": 3.5 }), "{out}");
    assert!(!out.to_string().contains("owes"), "the undeclared field is gone, text form included: {out}");
    let refused = err(&out, 1);
    assert_eq!(refused["code"], -32011, "{out}");
    assert!(refused["message"].as_str().unwrap().contains("/city"), "{out}");
}

#[test]
fn terminal_escapes_invisible_text_and_error_internals_are_removed() {
    let gw = Warden::serve("", &leaky(""));
    let out = run(&gw, json!([call("leaky__ansi"), call("leaky__leak_error")]));
    let shown = text(ok(&out, 0));
    assert!(shown.starts_with("Report ") && shown.contains("done."), "{shown:?}");
    assert!(!shown.contains('\u{1b}'), "no escape sequences: {shown:?}");
    assert!(!shown.chars().any(|c| ('\u{E0000}'..='\u{E007F}').contains(&c)), "no tag characters: {shown:?}");
    let message = err(&out, 1)["message"].as_str().unwrap().to_owned();
    for internal in ["/srv/app/handlers", "Traceback", "10.0.3.7", "S3cretPassw0rd", GH] {
        assert!(!message.contains(internal), "{internal} removed: {message}");
    }
}

#[test]
fn a_result_that_instructs_the_model_taints_its_context() {
    let dir = TempDir::new("taint-policy");
    std::fs::write(
        dir.path("p.cedar"),
        "@id(\"all\") permit (principal, action, resource);\n\
         @id(\"no-writes-when-tainted\") @reason(\"this context has read content that tried to instruct the model\")\n\
         forbid (principal, action == Action::\"call_tool\", resource) when { context.tainted && resource.class != \"read\" };\n",
    )
    .unwrap();
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n[tools.\"leaky/inject\"]\nclass = \"read\"\n\n[policy]\nfiles = [{:?}]\n",
            leaky(""),
            dir.path("p.cedar").display().to_string()
        ),
    );
    let out = run(&gw, json!([call("leaky__leak_text"), call("leaky__inject"), call("leaky__leak_text")]));
    ok(&out, 0);
    ok(&out, 1);
    let refused = err(&out, 2);
    assert_eq!(refused["code"], -32003, "{out}");
    assert!(refused["message"].as_str().unwrap().contains("tried to instruct the model"), "{out}");
    assert_eq!(refused["data"]["policies"], json!(["no-writes-when-tainted"]));
    // Another session has read nothing: it is not tainted.
    let other = run(&gw, json!([call("leaky__leak_text")]));
    ok(&other, 0);
}

#[test]
fn a_result_too_large_to_scan_whole_taints_its_context() {
    // An instruction hidden past what the scanner reads (4 MiB of text) is not found, so the
    // context is tainted as if it were.
    let dir = TempDir::new("taint-policy");
    std::fs::write(
        dir.path("p.cedar"),
        "@id(\"all\") permit (principal, action, resource);\n\
         @id(\"no-writes-when-tainted\") forbid (principal, action == Action::\"call_tool\", resource) when { context.tainted && resource.class != \"read\" };\n",
    )
    .unwrap();
    let big = 16 * 1024 * 1024;
    let gw = Warden::serve(
        &format!("max_frame_bytes = {big}"),
        &format!(
            "{}\n[tools.\"leaky/padded\"]\nclass = \"read\"\nmax_text_bytes = {big}\nmax_result_bytes = {big}\n\n[policy]\nfiles = [{:?}]\n",
            leaky(""),
            dir.path("p.cedar").display().to_string()
        ),
    );
    let out = run(&gw, json!([call("leaky__leak_text"), call("leaky__padded"), call("leaky__leak_text")]));
    ok(&out, 0);
    assert!(text(ok(&out, 1)).len() > 4 * 1024 * 1024, "the big result passed");
    assert_eq!(err(&out, 2)["data"]["policies"], json!(["no-writes-when-tainted"]), "{}", err(&out, 2));
}

#[test]
fn over_long_texts_are_cut_and_over_large_results_refused() {
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n[tools.\"leaky/long\"]\nmax_text_bytes = 10000\n\n[tools.\"leaky/leak_text\"]\nmax_result_bytes = 50\n",
            leaky("")
        ),
    );
    let out = run(&gw, json!([call("leaky__long"), call("leaky__leak_text")]));
    let report = text(ok(&out, 0));
    assert!(report.len() < 10_200, "cut to the limit: {} bytes", report.len());
    assert!(report.contains("truncated by Warden"), "with a marker: {}", &report[report.len() - 80..]);
    let refused = err(&out, 1);
    assert_eq!(refused["code"], -32011, "{out}");
    assert!(refused["message"].as_str().unwrap().contains("bytes allowed"), "{out}");
}

#[test]
fn personal_data_is_allowed_redacted_or_refused_as_configured() {
    let gw = Warden::serve(
        "",
        &format!(
            "{}\n[tools.\"leaky/customer\"]\npii = {{ email = \"redact\", payment_card = \"redact\" }}\n\n[tools.\"leaky/*\"]\npii = {{ iban = \"refuse\" }}\n",
            leaky("")
        ),
    );
    let out = run(&gw, json!([call("leaky__customer")]));
    let shown = text(ok(&out, 0));
    assert!(!shown.contains("ada@example.com") && !shown.contains("4111 1111 1111 1111"), "{shown}");
    assert!(shown.contains("[REDACTED:email]") && shown.contains("[REDACTED:payment_card]"), "{shown}");
    assert!(shown.contains("GB82"), "this tool's own setting replaces the server's: {shown}");

    let strict = Warden::serve("", &format!("{}\n[tools.\"leaky/*\"]\npii = {{ iban = \"refuse\" }}\n", leaky("")));
    let out = run(&strict, json!([call("leaky__customer")]));
    let refused = err(&out, 0);
    assert_eq!(refused["code"], -32011, "{out}");
    assert!(refused["message"].as_str().unwrap().contains("iban"), "{out}");
    assert!(!out.to_string().contains("GB82"), "{out}");
}

#[test]
fn an_injected_result_is_quarantined_until_a_person_releases_it_to_its_caller() {
    let (alice, alice_hash) = api_key();
    let (bob, bob_hash) = api_key();
    let gw = Warden::serve(
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[auth.api_keys.alice]\nhash = {alice_hash:?}\n\n[auth.api_keys.bob]\nhash = {bob_hash:?}\n\n{}\n\
             [tools.\"leaky/*\"]\nclass = \"read\"\n\n[tools.\"leaky/ansi\"]\nquarantine_at = \"off\"\n",
            leaky("")
        ),
    );
    let as_key = |key: &str, ops: Value| {
        node_client(json!({
            "sdk": "v1",
            "transport": { "type": "http", "url": gw.url(), "headers": { "Authorization": format!("Bearer {key}") } },
            "ops": ops,
        }))
    };
    let out = as_key(&alice, json!([call("leaky__inject"), call("leaky__leak_text")]));
    let notice = ok(&out, 0);
    assert_eq!(notice["isError"], true, "{out}");
    let shown = text(notice);
    assert!(shown.contains("Warden withheld this result"), "{shown}");
    assert!(!out.to_string().contains("id_rsa"), "the payload never reaches the client: {out}");
    let id = notice["_meta"]["warden/quarantine"]["id"].as_str().expect("the notice names the item").to_owned();
    assert!(shown.contains(&id), "{shown}");
    assert!(text(ok(&out, 1)).contains("Deployed."), "other results pass: {out}");

    // A person reviews it.
    let (code, listed) = warden_cli(&gw, &["quarantine", "list"]);
    assert_eq!(code, 0, "{listed}");
    assert!(listed.contains(&id) && listed.contains("leaky__inject") && listed.contains("alice"), "{listed}");
    let (code, shown) = warden_cli(&gw, &["quarantine", "show", &id]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("IGNORE ALL PREVIOUS INSTRUCTIONS") && shown.contains("instruction."), "{shown}");

    // Nobody can read it before it is released, and after, only alice.
    let uri = format!("warden://quarantine/{id}");
    let read = json!([{ "op": "readResource", "uri": uri }]);
    let before = as_key(&alice, read.clone());
    assert!(err(&before, 0)["message"].as_str().unwrap().contains("not found"), "{before}");
    let (code, released) = warden_cli(&gw, &["quarantine", "release", &id, "--by", "reviewer-carol"]);
    assert_eq!(code, 0, "{released}");
    let (code, again) = warden_cli(&gw, &["quarantine", "discard", &id]);
    assert_eq!(code, 1, "reviewed once: {again}");
    let stolen = as_key(&bob, read.clone());
    assert!(err(&stolen, 0)["message"].as_str().unwrap().contains("not found"), "{stolen}");
    let after = as_key(&alice, read);
    assert!(ok(&after, 0)["contents"][0]["text"].as_str().unwrap().contains("IGNORE ALL PREVIOUS"), "{after}");

    // Each step is on record, with the reviewer's name.
    let (code, rows) = warden_cli(
        &gw,
        &["audit", "query", "--json", "SELECT event, decision, actor_id, outcome, reason FROM mcp_audit ORDER BY seq"],
    );
    assert_eq!(code, 0, "{rows}");
    let rows: Vec<Value> = rows.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let find = |event: &str| rows.iter().find(|r| r["event"] == event).unwrap_or_else(|| panic!("{event}: {rows:?}"));
    assert_eq!(find("quarantine")["decision"], "QUARANTINED");
    assert!(find("quarantine")["reason"].as_str().unwrap().contains(&id));
    assert_eq!(find("quarantine_released")["actor_id"], "reviewer-carol");
    assert!(rows.iter().any(|r| r["event"] == "call" && r["outcome"] == "quarantined"), "{rows:?}");
    assert!(!rows.iter().any(|r| r["event"] == "quarantine_discarded"), "{rows:?}");
    let metrics = http_at("GET", gw.admin_port(), "/metrics", &[], b"").body;
    assert!(metrics.lines().any(|l| l == "warden_quarantined_results_total 1"), "{metrics}");
}

#[test]
fn injected_prompts_and_resources_are_quarantined_too() {
    let gw = Warden::serve("", &leaky(""));
    let out = run(
        &gw,
        json!([
            { "op": "readResource", "uri": "leak://page" },
            { "op": "getPrompt", "name": "leaky__poisoned", "arguments": {} },
        ]),
    );
    assert!(!out.to_string().contains("IGNORE ALL PREVIOUS"), "neither payload reaches the client: {out}");
    let resource = ok(&out, 0);
    assert!(resource["contents"][0]["text"].as_str().unwrap().contains("Warden withheld"), "{out}");
    assert_eq!(resource["contents"][0]["uri"], "leak://page");
    let prompt = ok(&out, 1);
    assert!(prompt["messages"][0]["content"]["text"].as_str().unwrap().contains("Warden withheld"), "{out}");
    let (_, listed) = warden_cli(&gw, &["quarantine", "list"]);
    assert!(listed.contains("resources/read") && listed.contains("prompts/get"), "{listed}");
}

#[test]
fn quarantine_thresholds_are_configurable_per_tool() {
    // Off for this tool: the result passes (the context is still tainted).
    let gw = Warden::serve("", &format!("{}\n[tools.\"leaky/inject\"]\nquarantine_at = \"off\"\n", leaky("")));
    let out = run(&gw, json!([call("leaky__inject")]));
    assert!(text(ok(&out, 0)).contains("IGNORE ALL PREVIOUS"), "{out}");
    let (_, listed) = warden_cli(&gw, &["quarantine", "list"]);
    assert!(listed.contains("nothing is waiting"), "{listed}");
}

/// Config with the leaky server and a policy that permits every call and lets it sample.
fn sampling_gateway(server_extra: &str) -> Warden {
    let dir = TempDir::new("sample-policy");
    let policy = "@id(\"all\") permit (principal, action, resource);\n";
    std::fs::write(dir.path("p.cedar"), policy).unwrap();
    let config =
        format!("{}\n[policy]\nfiles = [{:?}]\n", leaky(server_extra), dir.path("p.cedar").display().to_string());
    let gw = Warden::serve("", &config);
    std::mem::forget(dir);
    gw
}

fn ask_model(gw: &Warden) -> Value {
    node_client(json!({ "sdk": "v1", "transport": { "type": "http", "url": gw.url() },
        "capabilities": { "sampling": {} },
        "answers": { "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "sampled" } } },
        "ops": [call("leaky__ask_model")] }))
}

#[test]
fn sampling_context_and_tokens_are_narrowed_unless_the_server_is_permitted_more() {
    let gw = sampling_gateway("");
    let out = ask_model(&gw);
    assert!(text(ok(&out, 0)).contains("model said: sampled"), "{out}");
    let asked = &out["serverRequests"][0]["params"];
    assert_eq!(asked["includeContext"], "none", "{out}");
    assert_eq!(asked["maxTokens"], 4096, "{out}");
    assert!(!asked.to_string().contains(GH) && asked["systemPrompt"].as_str().unwrap().contains("[REDACTED:"), "{out}");

    let gw = sampling_gateway("sampling_context = \"this_server\"\nsampling_max_tokens = 20000\n");
    let out = ask_model(&gw);
    let asked = &out["serverRequests"][0]["params"];
    assert_eq!(asked["includeContext"], "thisServer", "allServers is wider than permitted: {out}");
    assert_eq!(asked["maxTokens"], 20000, "{out}");
}

#[test]
fn sampling_is_guarded_when_bridged_from_a_legacy_server_to_a_modern_client() {
    // The legacy server's request reaches the modern client inside the gateway's input_required.
    let gw = sampling_gateway("");
    let out = node_client(json!({ "sdk": "v2", "era": "modern", "transport": { "type": "http", "url": gw.url() },
        "capabilities": { "sampling": {} },
        "answers": { "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "sampled" } } },
        "ops": [call("leaky__ask_model")] }));
    assert_eq!(out["version"], "2026-07-28", "{out}");
    assert!(text(ok(&out, 0)).contains("model said: sampled"), "{out}");
    let asked = &out["serverRequests"][0]["params"];
    assert_eq!(asked["includeContext"], "none", "{out}");
    assert_eq!(asked["maxTokens"], 4096, "{out}");
    assert!(!asked.to_string().contains(GH) && asked.to_string().contains("[REDACTED:github_token]"), "{out}");
}

#[test]
fn server_log_messages_lose_secrets_and_terminal_escapes() {
    // A connection of its own per session: the server's log messages go to that session's client.
    let gw = Warden::serve("", &leaky("isolation = \"session\""));
    let out = run(
        &gw,
        json!([
            { "op": "setLevel", "level": "debug" },
            { "op": "sleep", "ms": 800 },
            call("leaky__noisy"),
            { "op": "waitFor", "method": "notifications/message", "timeoutMs": 10000 },
        ]),
    );
    assert_eq!(text(ok(&out, 2)), "done", "{out}");
    let logs: Vec<&Value> =
        out["notifications"].as_array().unwrap().iter().filter(|n| n["method"] == "notifications/message").collect();
    assert_eq!(logs.len(), 1, "the log message is relayed: {out}");
    let data = logs[0]["params"]["data"].as_str().unwrap();
    assert!(data.contains("retrying with token=[REDACTED:github_token]"), "{data:?}");
    assert!(!data.contains('\u{1b}') && !data.contains('\u{7}') && !data.contains("pwned"), "{data:?}");
    assert_eq!(logs[0]["params"]["level"], "error");

    // A shared connection: the message belongs to no client and goes to the gateway's own log.
    let gw = Warden::serve("", &leaky(""));
    let out = run(&gw, json!([call("leaky__noisy")]));
    assert_eq!(text(ok(&out, 0)), "done", "{out}");
    assert!(gw.wait_log("server log:", std::time::Duration::from_secs(5)), "{}", gw.log());
    let log = gw.log();
    let line = log.lines().find(|l| l.contains("server log:")).unwrap();
    assert!(line.contains("[REDACTED:github_token]") && !line.contains("ghp_"), "{line}");
    assert!(!line.contains('\u{1b}') && !line.contains("pwned"), "{line:?}");
}

#[test]
fn original_server_errors_are_dropped_or_kept_apart_as_configured() {
    // Default: the client sees the scrubbed error and nothing else is kept.
    let gw = Warden::serve("", &leaky(""));
    let out = run(&gw, json!([call("leaky__leak_error")]));
    assert!(!err(&out, 0).to_string().contains("S3cretPassw0rd"), "{out}");
    let (code, kept) = warden_cli(&gw, &["audit", "server-errors"]);
    assert_eq!((code, kept.trim()), (0, ""), "nothing kept by default");

    // keep: the original, as sent, goes to its own table, and still not to the client.
    let gw = Warden::serve("", &format!("{}\n[output]\nserver_errors = \"keep\"\n", leaky("")));
    let out = run(&gw, json!([call("leaky__leak_error")]));
    let shown = err(&out, 0).to_string();
    assert!(!shown.contains("S3cretPassw0rd") && !shown.contains("/srv/app"), "{out}");
    let mut kept = String::new();
    for _ in 0..50 {
        kept = warden_cli(&gw, &["audit", "server-errors"]).1;
        if !kept.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let row: Value = serde_json::from_str(kept.lines().next().unwrap_or("null")).unwrap();
    assert!(row["message"].as_str().unwrap_or_default().contains("S3cretPassw0rd@10.0.3.7"), "kept as sent: {kept}");
    assert_eq!((row["server"].as_str(), row["item"].as_str()), (Some("leaky"), Some("leaky__leak_error")), "{row}");
    assert!(row["request_id"].is_string(), "{row}");
    let (_, audit) = warden_cli(&gw, &["audit", "query", "--json", "SELECT reason, findings FROM mcp_audit"]);
    assert!(!audit.contains("S3cretPassw0rd"), "the audit log itself never holds it: {audit}");
}

#[test]
fn a_hostile_modern_servers_input_required_is_guarded_end_to_end() {
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.modern]\ntrusted_content = true\ntrusted_resources = true\ncommand = {:?}\nargs = [{:?}]\n",
            venv_bin("python"),
            peer_file("python/modern_leaky_server.py")
        ),
    );
    let out = node_client(json!({ "sdk": "v2", "era": "modern",
        "transport": { "type": "http", "url": gw.url() },
        "capabilities": { "sampling": {}, "elicitation": { "form": {} } },
        "answers": {
            "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "summary" } },
            "elicitation": { "action": "accept", "content": { "ok": true } },
        },
        "ops": [call("modern__deploy")] }));
    assert_eq!(out["version"], "2026-07-28", "{out}");
    let done = text(ok(&out, 0));
    assert!(done.contains("deployed with [REDACTED:github_token]"), "the final result is redacted: {done}");
    assert!(done.contains("state-7f3a"), "requestState reached the server byte for byte: {done}");
    let asked = &out["serverRequests"];
    let elicit = asked.as_array().unwrap().iter().find(|r| r["method"] == "elicitation/create").expect("elicited");
    let message = elicit["params"]["message"].as_str().unwrap();
    assert!(message.contains("[REDACTED:github_token]"), "{message:?}");
    assert!(
        !message.contains('\u{1b}') && !message.chars().any(|c| ('\u{E0000}'..='\u{E007F}').contains(&c)),
        "{message:?}"
    );
    let sample = asked.as_array().unwrap().iter().find(|r| r["method"] == "sampling/createMessage").expect("sampled");
    assert_eq!(sample["params"]["includeContext"], "none", "{sample}");
    assert_eq!(sample["params"]["maxTokens"], 4096, "{sample}");
    assert!(!out.to_string().contains("ghp_DDDD") && !out.to_string().contains(AWS), "no secret anywhere: {out}");
}
