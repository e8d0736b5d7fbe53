//! The policy engine against the shipped schema and example policies.

use serde_json::{Value, json};
use warden_policy::{
    Action, CallFacts, Item, PolicyEngine, PolicySource, Principal, PrincipalClass, Query, ServerFacts, ToolClass,
    ToolFacts, Verdict,
};

fn source(name: &str, text: &str) -> PolicySource {
    PolicySource { name: name.into(), text: text.into() }
}

fn example(name: &str) -> PolicySource {
    let path = format!("{}/../../examples/policies/{name}", env!("CARGO_MANIFEST_DIR"));
    source(name, &std::fs::read_to_string(&path).expect("example policy"))
}

fn user(subject: &str, tenant: Option<&str>) -> Principal {
    let mut p = Principal::new(subject, PrincipalClass::User);
    p.tenant = tenant.map(str::to_owned);
    p
}

fn tool(name: &str, class: ToolClass) -> ToolFacts {
    ToolFacts { name: name.into(), class, admin: false, annotations: None, scopes: vec![] }
}

struct Ask<'a> {
    engine: &'a PolicyEngine,
    server: ServerFacts,
}

impl Ask<'_> {
    fn call(&self, who: &Principal, t: &ToolFacts, args: Value) -> warden_policy::Decision {
        self.with(
            who,
            t,
            CallFacts {
                args: args.as_object(),
                call_depth: 1,
                era: "legacy",
                paths_confined: true,
                urls_public: true,
                ..Default::default()
            },
        )
    }

    fn with(&self, who: &Principal, t: &ToolFacts, call: CallFacts<'_>) -> warden_policy::Decision {
        self.engine.decide(&Query {
            principal: who,
            action: Action::CallTool,
            server: &self.server,
            item: Item::Tool(t),
            call: &call,
        })
    }
}

fn files(engine: &PolicyEngine) -> Ask<'_> {
    Ask { engine, server: ServerFacts { name: "files".into(), trusted: false } }
}

const PERMIT_FILES: &str =
    r#"@id("files") permit (principal, action == Action::"call_tool", resource in Server::"files");"#;

#[test]
fn nothing_is_allowed_without_a_permit() {
    let engine = PolicyEngine::deny_all();
    let d = files(&engine).call(&user("alice", None), &tool("read", ToolClass::Read), json!({}));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.is_default_deny());
    let engine = PolicyEngine::load(&[source(
        "p.cedar",
        r#"permit (principal, action == Action::"call_tool", resource in Server::"other");"#,
    )])
    .unwrap();
    assert!(files(&engine).call(&user("alice", None), &tool("read", ToolClass::Read), json!({})).is_default_deny());
}

#[test]
fn decisions_name_the_policies_behind_them() {
    let engine = PolicyEngine::load(&[source(
        "p.cedar",
        &format!(
            "{PERMIT_FILES}\n\
             permit (principal, action == Action::\"call_tool\", resource == Tool::\"files/read\");\n\
             @reason(\"no deletes on Fridays\")\n\
             forbid (principal, action == Action::\"call_tool\", resource) when {{ resource.class == \"irreversible\" && context.time.weekday == 5 }};"
        ),
    )])
    .unwrap();
    let ask = files(&engine);
    let d = ask.call(&user("alice", None), &tool("read", ToolClass::Read), json!({}));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.policies, vec!["files".to_owned(), "p.cedar#2".to_owned()]);
    let friday = 1_795_786_200; // 2026-11-27 (a Friday) 13:30 UTC
    let rm = tool("rm", ToolClass::Irreversible);
    let d = ask.with(
        &user("alice", None),
        &rm,
        CallFacts {
            call_depth: 1,
            now_unix: friday,
            era: "legacy",
            paths_confined: true,
            urls_public: true,
            ..Default::default()
        },
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.policies, vec!["p.cedar#3".to_owned()]);
    assert_eq!(d.reasons, vec!["no deletes on Fridays".to_owned()]);
    let saturday = friday + 86_400;
    let d = ask.with(
        &user("alice", None),
        &rm,
        CallFacts {
            call_depth: 1,
            now_unix: saturday,
            era: "legacy",
            paths_confined: true,
            urls_public: true,
            ..Default::default()
        },
    );
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn require_approval_on_the_deciding_permit() {
    let engine = PolicyEngine::load(&[source(
        "p.cedar",
        r#"
        @id("reads") permit (principal, action == Action::"call_tool", resource) when { resource.class == "read" };
        @id("deletes") @require_approval
        permit (principal, action == Action::"call_tool", resource) when { resource.class == "irreversible" };
        "#,
    )])
    .unwrap();
    let ask = files(&engine);
    assert_eq!(ask.call(&user("a", None), &tool("read", ToolClass::Read), json!({})).verdict, Verdict::Allow);
    let d = ask.call(&user("a", None), &tool("rm", ToolClass::Irreversible), json!({}));
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(d.policies, vec!["deletes".to_owned()]);
    assert!(d.verdict.permits(), "an item needing approval is still listed");
}

#[test]
fn a_forbid_that_fails_to_evaluate_denies() {
    // Multiplying the depth overflows at depth 2: Cedar alone would skip the forbid and allow.
    let engine = PolicyEngine::load(&[source(
        "p.cedar",
        &format!("{PERMIT_FILES}\n@id(\"deep\") forbid (principal, action, resource) when {{ context.call_depth * 9223372036854775807 > 100 }};"),
    )])
    .unwrap();
    let ask = files(&engine);
    let t = tool("read", ToolClass::Read);
    let base = CallFacts { era: "legacy", paths_confined: true, urls_public: true, ..Default::default() };
    let d = ask.with(&user("a", None), &t, CallFacts { call_depth: 2, ..base.clone() });
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.policies, vec!["deep".to_owned()]);
    assert!(!d.errors.is_empty());
    assert_eq!(ask.with(&user("a", None), &t, CallFacts { call_depth: 0, ..base }).verdict, Verdict::Allow);
}

#[test]
fn bad_policies_are_refused_with_their_place() {
    let e = PolicyEngine::load(&[
        source("ok.cedar", PERMIT_FILES),
        source("bad.cedar", "permit (principal, action, resource)\nwhen { resource.clas == \"read\" };"),
    ])
    .unwrap_err();
    let p = &e.problems[0];
    assert_eq!((p.file.as_str(), p.line), ("bad.cedar", 2), "{e}");
    assert!(p.message.contains("clas"), "{e}");

    let e = PolicyEngine::load(&[source("syntax.cedar", "permit (principal, action, resource)\n  when { true }\n")])
        .unwrap_err();
    assert_eq!(e.problems[0].file, "syntax.cedar");
    assert!(e.problems[0].line >= 1, "{e}");

    let e =
        PolicyEngine::load(&[source("a.cedar", "permit (principal == Uzer::\"x\", action, resource);")]).unwrap_err();
    assert!(e.to_string().contains("Uzer"), "unknown entity types are caught: {e}");

    let e = PolicyEngine::load(&[source("a.cedar", PERMIT_FILES), source("b.cedar", PERMIT_FILES)]).unwrap_err();
    assert!(e.to_string().contains("already used in a.cedar"), "{e}");
    assert_eq!(e.problems[0].line, 1);

    let e =
        PolicyEngine::load(&[source("t.cedar", "permit (principal == ?principal, action, resource);")]).unwrap_err();
    assert!(e.to_string().contains("templates"), "{e}");

    let e = PolicyEngine::load(&[source(
        "untagged.cedar",
        "permit (principal, action, resource) when { context.args.getTag(\"x\") == \"y\" };",
    )])
    .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("tag"), "getTag without hasTag is caught: {e}");
}

#[test]
fn tenant_binding() {
    let engine = PolicyEngine::load(&[source("p.cedar", PERMIT_FILES), example("tenant-binding.cedar")]).unwrap();
    let ask = files(&engine);
    let t = tool("invoices", ToolClass::Read);
    let acme = user("alice", Some("acme"));
    assert_eq!(ask.call(&acme, &t, json!({ "tenant_id": "acme" })).verdict, Verdict::Allow);
    let d = ask.call(&acme, &t, json!({ "tenant_id": "globex" }));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.policies, vec!["tenant-binding".to_owned()]);
    assert_eq!(d.reasons, vec!["the tenant_id argument must be your own tenant".to_owned()]);
    assert_eq!(
        ask.call(&acme, &t, json!({ "tenant_id": ["acme"] })).verdict,
        Verdict::Deny,
        "not a string: not the tenant"
    );
    assert_eq!(
        ask.call(&user("bob", None), &t, json!({ "tenant_id": "acme" })).verdict,
        Verdict::Deny,
        "no tenant, no tenant_id"
    );
    assert_eq!(
        ask.call(&acme, &t, json!({ "other": 1 })).verdict,
        Verdict::Allow,
        "tools without the argument are unaffected"
    );
}

#[test]
fn path_confinement_reads_the_normalized_facts() {
    use warden_policy::paths;
    let engine = PolicyEngine::load(&[source("p.cedar", PERMIT_FILES), example("path-confinement.cedar")]).unwrap();
    let ask = files(&engine);
    let t = tool("read_file", ToolClass::Read);
    let roots = vec!["/srv/data".to_owned()];
    let decide = |raw: &str| {
        let normal = paths::normalize(raw, None);
        let confined = normal.as_deref().is_some_and(|p| paths::within(p, &roots));
        let call = CallFacts {
            call_depth: 1,
            era: "legacy",
            paths: normal.into_iter().collect(),
            paths_confined: confined,
            urls_public: true,
            ..Default::default()
        };
        ask.with(&user("a", None), &t, call).verdict
    };
    assert_eq!(decide("/srv/data/report.txt"), Verdict::Allow);
    assert_eq!(decide("/srv/data/../../etc/passwd"), Verdict::Deny);
    assert_eq!(decide("/srv/data\\..\\secret"), Verdict::Deny);
    assert_eq!(decide("file:///srv/data/%2e%2e/x"), Verdict::Deny);
    assert_eq!(decide("/srv/database/x"), Verdict::Deny);
    assert_eq!(decide("relative.txt"), Verdict::Deny);
    assert_eq!(decide("/srv/data/sub/../.env"), Verdict::Deny, "inside the root, but key material");
}

#[test]
fn ssrf_guard_reads_the_resolved_facts() {
    let engine = PolicyEngine::load(&[source("p.cedar", PERMIT_FILES), example("ssrf.cedar")]).unwrap();
    let ask = files(&engine);
    let t = tool("fetch", ToolClass::Read);
    let call = |public: bool| CallFacts {
        call_depth: 1,
        era: "legacy",
        paths_confined: true,
        urls_public: public,
        urls: vec!["https://x/".into()],
        ..Default::default()
    };
    assert_eq!(ask.with(&user("a", None), &t, call(true)).verdict, Verdict::Allow);
    let d = ask.with(&user("a", None), &t, call(false));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.policies, vec!["ssrf-guard".to_owned()]);
}

#[test]
fn the_demo_policies_load_and_decide() {
    let engine = PolicyEngine::load(&[example("demo.cedar")]).unwrap();
    let ask = Ask { engine: &engine, server: ServerFacts { name: "demo".into(), trusted: true } };
    let alice = user("alice", None);
    assert_eq!(ask.call(&alice, &tool("echo", ToolClass::Read), json!({})).verdict, Verdict::Allow);
    assert_eq!(ask.call(&alice, &tool("write_note", ToolClass::Write), json!({})).verdict, Verdict::Allow);
    assert_eq!(
        ask.call(&alice, &tool("delete_note", ToolClass::Irreversible), json!({})).verdict,
        Verdict::RequireApproval
    );
    let admin_tool = ToolFacts { admin: true, ..tool("reset", ToolClass::Write) };
    assert_eq!(
        ask.call(&alice, &admin_tool, json!({})).verdict,
        Verdict::Allow,
        "the class rule, not policy, keeps users out"
    );
    let root = Principal::new("root", PrincipalClass::Admin);
    assert_eq!(ask.call(&root, &admin_tool, json!({})).verdict, Verdict::Allow);
    assert_eq!(ask.call(&root, &tool("write_note", ToolClass::Write), json!({})).verdict, Verdict::Deny);
    let sample = engine.decide(&Query {
        principal: &alice,
        action: Action::Sample,
        server: &ask.server,
        item: Item::Server,
        call: &CallFacts::listing(0, "legacy"),
    });
    assert_eq!(sample.verdict, Verdict::Allow);
}
