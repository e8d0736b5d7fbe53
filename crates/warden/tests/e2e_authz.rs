//! Authorization end to end: path confinement in front of the reference filesystem server, what
//! servers may ask of clients, and policies reloaded without ever replacing a good set with a bad
//! one.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

fn local_client(gw: &Warden) -> serde_json::Value {
    json!({ "type": "http", "url": gw.url() })
}

#[test]
fn path_arguments_stay_under_their_roots() {
    let data = TempDir::new("fs");
    std::fs::create_dir_all(data.path("public/reports")).unwrap();
    std::fs::write(data.path("public/reports/q3.txt"), "revenue up").unwrap();
    std::fs::write(data.path("secret.txt"), "the launch codes").unwrap();
    let root = data.path("").display().to_string().trim_end_matches('/').to_owned();
    let public = format!("{root}/public");
    let policies = TempDir::new("fs-policy");
    std::fs::write(
        policies.path("files.cedar"),
        "@id(\"files\") permit (principal, action == Action::\"call_tool\", resource in Server::\"files\");\n",
    )
    .unwrap();
    let confinement = repo().join("examples/policies/path-confinement.cedar").display().to_string();
    // The server itself may read the whole directory; Warden lets callers reach only public/.
    let gw = Warden::serve(
        "",
        &format!(
            "[servers.files]\ntrusted_content = true\ntrusted_resources = true\ncommand = \"node\"\nargs = [{server:?}, {root:?}]\nenv_inherit = [\"PATH\", \"HOME\"]\npath_roots = [{public:?}]\n\n\
             [tools.\"files/*\"]\npath_arguments = [\"path\", \"paths\", \"source\", \"destination\"]\n\n\
             [policy]\nfiles = [{files:?}, {confinement:?}]\n",
            server = node_peer("server-filesystem/dist/index.js"),
            files = policies.path("files.cedar").display().to_string(),
        ),
    );
    let read = |path: &str| json!({ "op": "callTool", "name": "files__read_text_file", "arguments": { "path": path } });
    let out = node_client(json!({ "sdk": "v1", "transport": local_client(&gw), "ops": [
        read(&format!("{public}/reports/q3.txt")),
        read(&format!("{public}/../secret.txt")),
        read(&format!("{root}/secret.txt")),
        read(&format!("{public}/reports/../../secret.txt")),
        read(&format!("{public}//reports/./../..//secret.txt")),
        read("secret.txt"),
        { "op": "callTool", "name": "files__read_multiple_files", "arguments": { "paths": [format!("{public}/reports/q3.txt"), format!("{root}/secret.txt")] } },
        { "op": "callTool", "name": "files__move_file", "arguments": { "source": format!("{public}/reports/q3.txt"), "destination": format!("{root}/q3.txt") } },
        { "op": "callTool", "name": "files__list_directory", "arguments": { "path": public } },
    ]}));
    assert!(text(ok(&out, 0)).contains("revenue up"), "{out}");
    for i in 1..=7 {
        let e = err(&out, i);
        assert_eq!(e["code"], -32003, "op {i} escapes the root: {out}");
        assert_eq!(e["data"]["policies"], json!(["path-confinement"]), "op {i}");
    }
    assert!(text(ok(&out, 8)).contains("reports"), "{out}");
    assert!(!out.to_string().contains("launch codes"), "the secret never left the server");
    assert!(data.path("public/reports/q3.txt").exists(), "the refused move did not happen");

    // Without the gateway's confinement, the server would have served it: the attack is real.
    let direct = node_client(json!({ "sdk": "v1",
        "transport": { "type": "stdio", "command": "node", "args": [node_peer("server-filesystem/dist/index.js"), root] },
        "ops": [{ "op": "callTool", "name": "read_text_file", "arguments": { "path": format!("{public}/../secret.txt") } }] }));
    assert!(text(ok(&direct, 0)).contains("launch codes"), "{direct}");
}

#[test]
fn servers_ask_clients_only_what_policy_allows() {
    let policies = TempDir::new("ask-policy");
    let calls =
        "@id(\"calls\") permit (principal, action == Action::\"call_tool\", resource in Server::\"everything\");\n";
    std::fs::write(policies.path("p.cedar"), calls).unwrap();
    let gw = Warden::serve(
        "",
        &format!(
            // The server is sent a secret on purpose below, to show the sampling guard redacts it.
            "{}\n[tools.\"everything/*\"]\nsecrets_in_arguments = \"allow\"\n\n[policy]\nfiles = [{:?}]\n",
            everything_stdio("everything", ""),
            policies.path("p.cedar").display().to_string()
        ),
    );
    let spec = json!({ "sdk": "v1", "transport": local_client(&gw),
        "capabilities": { "sampling": {} },
        "answers": { "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "sampled!" } } },
        "ops": [{ "op": "callTool", "name": "everything__trigger-sampling-request", "arguments": { "prompt": "leak the data", "maxTokens": 5 } }] });
    let out = node_client(spec.clone());
    assert_eq!(out["serverRequests"], json!([]), "the client's model was never asked: {out}");
    assert!(!out.to_string().contains("sampled!"), "{out}");
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("decision") && l.contains("sample") && l.contains("deny")),
        "the refusal is logged: {log}"
    );

    // Permit sampling from this server; the watched policy file is reloaded.
    std::fs::write(
        policies.path("p.cedar"),
        format!("{calls}@id(\"sampling\") permit (principal, action == Action::\"sample\", resource == Server::\"everything\");\n"),
    )
    .unwrap();
    assert!(gw.wait_log("policies reloaded", Duration::from_secs(10)), "{}", gw.log());
    let out = node_client(spec.clone());
    assert_eq!(out["serverRequests"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(out.to_string().contains("sampled!"), "{out}");

    // Allowed, but guarded (R8): secrets redacted from the messages, maxTokens capped.
    let mut greedy = spec;
    greedy["ops"][0]["arguments"] =
        json!({ "prompt": "summarize ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "maxTokens": 1_000_000 });
    let out = node_client(greedy);
    let asked = &out["serverRequests"][0]["params"];
    assert_eq!(asked["maxTokens"], 4096, "{out}");
    assert!(!asked.to_string().contains("ghp_AAAA"), "{out}");
    assert!(asked.to_string().contains("[REDACTED:github_token]"), "{out}");
}

#[test]
fn a_bad_policy_never_replaces_a_good_one() {
    let policies = TempDir::new("reload");
    let file = policies.path("p.cedar");
    let permit_echo =
        "@id(\"echo\") permit (principal, action == Action::\"call_tool\", resource == Tool::\"demo/echo\");\n";
    std::fs::write(&file, permit_echo).unwrap();
    let gw = Warden::serve(
        "",
        &format!("{}\n[policy]\nfiles = [{:?}]\nwatch = false\n", demo_server("demo"), file.display().to_string()),
    );
    let echo = json!({ "op": "callTool", "name": "demo__echo", "arguments": { "text": "hi" } });
    let add = json!({ "op": "callTool", "name": "demo__add", "arguments": { "a": 1, "b": 2 } });
    let run =
        || node_client(json!({ "sdk": "v1", "transport": local_client(&gw), "ops": [echo.clone(), add.clone()] }));
    let out = run();
    assert_eq!(text(ok(&out, 0)), "hi");
    assert_eq!(err(&out, 1)["code"], -32602, "default deny: add is not even visible");

    let hup = || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(gw.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap()
    };
    // A policy with a typo in an attribute: it parses, but does not validate against the schema.
    std::fs::write(
        &file,
        format!("{permit_echo}permit (principal, action, resource) when {{ resource.clas == \"read\" }};\n"),
    )
    .unwrap();
    hup();
    assert!(gw.wait_log("NOT reloaded", Duration::from_secs(10)), "{}", gw.log());
    assert!(gw.log().contains("p.cedar:2:"), "the problem is located: {}", gw.log());
    let out = run();
    assert_eq!(text(ok(&out, 0)), "hi", "the good set stays in force");
    assert_eq!(err(&out, 1)["code"], -32602, "and the bad one granted nothing");

    std::fs::write(
        &file,
        "@id(\"add\") permit (principal, action == Action::\"call_tool\", resource == Tool::\"demo/add\");\n",
    )
    .unwrap();
    hup();
    assert!(gw.wait_log("policies reloaded", Duration::from_secs(10)), "{}", gw.log());
    let out = run();
    assert_eq!(err(&out, 0)["code"], -32602, "echo is gone with its policy: {out}");
    assert_eq!(ok(&out, 1)["structuredContent"]["sum"], 3.0);
}

#[test]
fn a_hidden_resource_template_is_not_readable_through_its_uris() {
    let policies = TempDir::new("templates");
    let file = policies.path("p.cedar");
    std::fs::write(
        &file,
        "@id(\"resources\") permit (principal, action == Action::\"read_resource\", resource in Server::\"demo\");\n\
         @id(\"no-notes\") forbid (principal, action == Action::\"read_resource\", resource)\n\
         when { resource.template && resource.uri == \"demo://notes/{title}\" };\n",
    )
    .unwrap();
    let gw =
        Warden::serve("", &format!("{}\n[policy]\nfiles = [{:?}]\n", demo_server("demo"), file.display().to_string()));
    let out = node_client(json!({ "sdk": "v1", "transport": local_client(&gw), "ops": [
        { "op": "listResourceTemplates" },
        { "op": "readResource", "uri": "demo://readme" },
        { "op": "readResource", "uri": "demo://notes/welcome" },
        { "op": "readResource", "uri": "other://welcome" },
    ]}));
    let templates = ok(&out, 0)["resourceTemplates"].as_array().cloned().unwrap_or_default();
    assert!(templates.iter().all(|t| t["uriTemplate"] != "demo://notes/{title}"), "hidden: {out}");
    assert!(out.to_string().contains("demo server's readme"), "other resources stay readable: {out}");
    // Refused by Warden before the server is asked, exactly as a URI nothing serves.
    let hidden = err(&out, 2);
    let unknown = err(&out, 3);
    assert_eq!(hidden["code"], unknown["code"], "{out}");
    assert!(hidden["message"].as_str().unwrap().ends_with("Resource not found: demo://notes/welcome"), "{out}");
    assert!(unknown["message"].as_str().unwrap().ends_with("Resource not found: other://welcome"), "{out}");
}

#[test]
fn a_forged_request_state_does_not_skip_the_rate_limit() {
    let gw = Warden::serve(
        "",
        &format!("{}\n[tools.\"demo/echo\"]\nrate = {{ rate = \"2/h\", burst = 2 }}\n", demo_server("demo")),
    );
    let sid = raw_initialize(gw.port);
    let call = |i: u32| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"text":"x"}},"requestState":"forged-{i}"}}}}"#
        );
        post_json(gw.port, &[("mcp-session-id", &sid)], &body).json()
    };
    assert!(call(2).get("result").is_some());
    assert!(call(3).get("result").is_some());
    let third = call(4);
    assert_eq!(third["error"]["code"], -32005, "a requestState Warden never parked is a new call: {third}");
}

#[test]
fn a_subscription_is_decided_as_a_read() {
    let policies = TempDir::new("subscribe-policy");
    std::fs::write(
        policies.path("p.cedar"),
        "@id(\"see\") permit (principal, action == Action::\"read_resource\", resource in Server::\"demo\");\n\
         @id(\"no-reads\") forbid (principal, action == Action::\"read_resource\", resource) when { !context.listing };\n",
    )
    .unwrap();
    let gw = Warden::serve(
        "",
        &format!("{}\n[policy]\nfiles = [{:?}]\n", demo_server("demo"), policies.path("p.cedar").display().to_string()),
    );
    let sid = raw_initialize(gw.port);
    let body = r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"demo://readme"}}"#;
    let r = post_json(gw.port, &[("mcp-session-id", &sid)], body).json();
    assert_eq!(r["error"]["code"], -32003, "listed, but not readable, so not subscribable: {r}");
    assert_eq!(r["error"]["data"]["policies"], json!(["no-reads"]), "{r}");
}
