//! Authorization decision latency with 100 policies: `cargo bench -p warden-policy --bench decide`.
//!
//! Builds a set of 100 policies of the kinds a deployment writes (permits by server and class,
//! role grants, tool-specific forbids reading arguments, tenant binding, time windows), then
//! times single decisions for a mix of calls and listings, and prints p50, p99 and p99.9.

// The allocator the `warden` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use hdrhistogram::Histogram;
use serde_json::json;
use std::time::Instant;
use warden_policy::{
    Action, CallFacts, Item, PolicyEngine, PolicySource, Principal, PrincipalClass, Query, ServerFacts, ToolClass,
    ToolFacts,
};

fn policies() -> String {
    let mut p = String::new();
    for s in 0..20 {
        p += &format!(
            "@id(\"read-{s}\") permit (principal, action == Action::\"call_tool\", resource in Server::\"srv{s}\") when {{ resource.class == \"read\" }};\n"
        );
        p += &format!(
            "@id(\"write-{s}\") permit (principal in Role::\"writers-{s}\", action == Action::\"call_tool\", resource in Server::\"srv{s}\") when {{ resource.class == \"write\" }};\n"
        );
    }
    for t in 0..30 {
        p += &format!(
            "@id(\"arg-{t}\") forbid (principal, action == Action::\"call_tool\", resource == Tool::\"srv{}/tool{t}\") when {{ context.args.hasTag(\"mode\") && context.args.getTag(\"mode\") == \"force\" }};\n",
            t % 20
        );
    }
    for r in 0..20 {
        p += &format!(
            "@id(\"role-{r}\") @require_approval permit (principal in Role::\"ops-{r}\", action == Action::\"call_tool\", resource) when {{ resource.class == \"irreversible\" && context.call_depth <= 2 }};\n"
        );
    }
    p += "@id(\"tenant\") forbid (principal, action, resource) when { context.args.hasTag(\"tenant_id\") && !(principal has tenant && context.args.getTag(\"tenant_id\") == principal.tenant) };\n";
    p += "@id(\"paths\") forbid (principal, action == Action::\"call_tool\", resource) unless { context.paths_confined };\n";
    p +=
        "@id(\"urls\") forbid (principal, action == Action::\"call_tool\", resource) unless { context.urls_public };\n";
    p += "@id(\"taint\") forbid (principal, action == Action::\"call_tool\", resource) when { context.tainted && resource.class != \"read\" };\n";
    for h in 0..6 {
        p += &format!(
            "@id(\"night-{h}\") forbid (principal is Service, action == Action::\"call_tool\", resource in Server::\"srv{h}\") when {{ context.time.hour == {h} }};\n"
        );
    }
    p
}

fn main() {
    let text = policies();
    let engine = PolicyEngine::load(&[PolicySource { name: "bench.cedar".into(), text }]).expect("policies load");
    assert_eq!(engine.len(), 100);
    let mut alice = Principal::new("alice", PrincipalClass::User);
    alice.tenant = Some("acme".into());
    alice.roles = vec!["writers-3".into(), "ops-7".into(), "dev".into()];
    alice.scopes = vec!["mcp".into()];
    let servers: Vec<ServerFacts> = (0..20).map(|s| ServerFacts { name: format!("srv{s}"), trusted: false }).collect();
    let classes = [ToolClass::Read, ToolClass::Write, ToolClass::Irreversible];
    let tools: Vec<ToolFacts> = (0..30)
        .map(|t| ToolFacts {
            name: format!("tool{t}"),
            class: classes[t % 3],
            admin: false,
            annotations: Some(json!({ "readOnlyHint": t % 3 == 0 })),
            scopes: vec![],
        })
        .collect();
    let args = json!({ "tenant_id": "acme", "path": "/srv/data/report.txt", "mode": "fast", "limit": 20 });
    let start_time = 1_795_267_800;
    let empty = PolicyEngine::deny_all();
    let rounds = 200_000;
    let runs = [
        ("no policies (request building only)", &empty, false),
        ("100 policies, a new second every decision (no context reuse)", &engine, true),
        ("100 policies, decisions within the same second", &engine, false),
    ];
    for (label, engine, new_second) in runs {
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut allowed = 0usize;
        for i in 0..rounds + 10_000 {
            let now = if new_second { start_time + i as i64 } else { start_time };
            let call = CallFacts {
                args: args.as_object(),
                call_depth: 1,
                now_unix: now,
                era: "modern",
                paths: vec!["/srv/data/report.txt".into()],
                paths_confined: true,
                urls_public: true,
                ..Default::default()
            };
            let listing = CallFacts::listing(now, "modern");
            let t = &tools[i % tools.len()];
            let server = &servers[i % 20];
            let facts = if i % 4 == 0 { &listing } else { &call };
            let q = Query { principal: &alice, action: Action::CallTool, server, item: Item::Tool(t), call: facts };
            let start = Instant::now();
            let d = engine.decide(&q);
            let ns = start.elapsed().as_nanos() as u64;
            allowed += d.verdict.permits() as usize;
            if i >= 10_000 {
                h.record(ns.max(1)).unwrap();
            }
        }
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{label}: {rounds} decisions ({allowed} permitted): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            us(0.5),
            us(0.99),
            us(0.999),
        );
    }
}
