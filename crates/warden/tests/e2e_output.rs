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
        "[servers.leaky]\ncommand = {:?}\nargs = [{:?}]\n{extra}\n",
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
