//! An agent reads this repository's own source through `@modelcontextprotocol/server-filesystem`
//! behind Warden, with the TypeScript SDK client: every tracked text file must arrive unchanged,
//! except the fixtures listed below, which hold credential-shaped values or hidden characters on
//! purpose. Redaction that corrupts ordinary code is the first defect a developer would meet.
//!
//! Reading is a `read` call, so the session may go on reading once a fixture full of injected
//! text taints it. The server is `trusted_content` with quarantine off: this test is about what the response
//! guards *change* (secret and PII redaction, removal of escapes and invisible characters); the
//! injection corpora in `crates/warden-inspect/corpus` would otherwise be quarantined whole, which
//! `e2e_output.rs` covers.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::*;

/// Files that hold credential-shaped values, injected text or invisible characters on purpose;
/// each must still arrive, and may arrive changed.
const FIXTURES: &[&str] = &[
    // Corpora of credentials, attacks and hidden characters.
    "crates/warden-inspect/corpus/secrets/providers.jsonl",
    "crates/warden-inspect/corpus/secrets/README.md",
    "crates/warden-inspect/corpus/secrets/generate.py",
    "crates/warden-inspect/corpus/malicious.jsonl",
    "crates/warden-inspect/corpus/benign.jsonl",
    "crates/warden-inspect/corpus/heldout/definitions.jsonl",
    "crates/warden-inspect/corpus/heldout/results.jsonl",
    "crates/warden-inspect/corpus/heldout/results-2.jsonl",
    "crates/warden-inspect/corpus/results/injected.jsonl",
    "crates/warden-inspect/corpus/results/benign.jsonl",
    "crates/warden-inspect/corpus/train/definitions-a.jsonl",
    "crates/warden-inspect/corpus/train/definitions-b.jsonl",
    "crates/warden-inspect/corpus/train/definitions-c.jsonl",
    "crates/warden-inspect/corpus/train/definitions-d.jsonl",
    "crates/warden-inspect/corpus/train/results.jsonl",
    "crates/warden-inspect/corpus/train/results-e.jsonl",
    // Fuzz seeds: an environment line carrying AWS's documented example key, and text and an
    // event stream carrying escapes, bidirectional and tag characters for the cleaner.
    "fuzz/seeds/redactor/env.txt",
    "fuzz/seeds/cleaner/mixed.txt",
    "fuzz/seeds/sse/stream",
    // The redactor's own rules, examples, tests and benchmarks, and its documentation.
    "crates/warden-inspect/src/secrets/rules.rs",
    "crates/warden-inspect/src/secrets/mod.rs",
    "crates/warden-inspect/src/secrets/examples.rs",
    "crates/warden-inspect/src/secrets/tests.rs",
    "crates/warden-inspect/src/errors.rs",
    "crates/warden-inspect/benches/secrets.rs",
    "crates/warden-inspect/proptest-regressions/secrets/examples.txt",
    "crates/warden-inspect/proptest-regressions/secrets/tests.txt",
    "docs/secrets.md",
    // Definitions with hidden characters, for the poisoning scanner's tests.
    "crates/warden-inspect/src/poison/tests.rs",
    // Gateway, store and end-to-end tests that send fake credentials through on purpose
    // (GitHub tokens, AWS example keys, database URLs with passwords), and a server that leaks them.
    "crates/warden-gateway/src/guard/sanitize/messages.rs",
    "crates/warden-gateway/src/guard/sanitize/mod.rs",
    "crates/warden-gateway/src/stack.rs",
    "crates/warden-gateway/tests/stack.rs",
    "crates/warden-store/src/backend.rs",
    "crates/warden-store/tests/quarantine.rs",
    "crates/warden-store/tests/writer.rs",
    "crates/warden/tests/cli.rs",
    "crates/warden/tests/e2e_attacks.rs",
    "crates/warden/tests/e2e_audit.rs",
    "crates/warden/tests/e2e_authz.rs",
    "crates/warden/tests/e2e_output.rs",
    "tests/peers/python/leaky_server.py",
    // The deployment check's test values: a database URL with a password, a signing key.
    "deploy/check.sh",
    // The bundled demo's fake credentials, which show redaction working.
    "crates/warden/src/demo/mod.rs",
    // The server-entry checks' tests: credentials in env and headers, found by kind.
    "crates/warden-gateway/src/servers/entry.rs",
];

/// Files larger than this are not read: the model weights and the large corpora are data, and a
/// debug build of the gateway redacts half a megabyte of dense credentials slowly.
const MAX_BYTES: u64 = 256 * 1024;

#[test]
fn the_repository_source_arrives_unchanged() {
    let root = repo();
    let listed = std::process::Command::new("git").arg("ls-files").current_dir(&root).output().expect("git ls-files");
    assert!(listed.status.success(), "git ls-files: {listed:?}");
    let mut files: Vec<(String, String)> = Vec::new();
    for rel in String::from_utf8_lossy(&listed.stdout).lines() {
        let path = root.join(rel);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.len() > MAX_BYTES || meta.len() == 0 {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            files.push((rel.to_owned(), text));
        }
    }
    assert!(files.len() > 200, "only {} files found", files.len());

    let root_text = root.display().to_string();
    let config = format!(
        "[output]\nquarantine_at = \"off\"\n\n[servers.files]\ntrusted_content = true\ncommand = \"node\"\nargs = [{:?}, {root_text:?}]\nenv_inherit = [\"PATH\", \"HOME\"]\n\n[tools.\"files/read_text_file\"]\nclass = \"read\"\n",
        node_peer("server-filesystem/dist/index.js"),
    );
    let gw = Warden::serve("", &config);

    let mut changed: BTreeSet<String> = BTreeSet::new();
    // Batches keep each client's command line well under the kernel's argument limit.
    for batch in files.chunks(120) {
        let ops: Vec<Value> = batch
            .iter()
            .map(|(rel, _)| {
                json!({ "op": "callTool", "name": "files__read_text_file", "arguments": { "path": format!("{root_text}/{rel}") } })
            })
            .collect();
        let out = node_client(json!({
            "sdk": "v1", "transport": { "type": "http", "url": gw.url() },
            "capabilities": {}, "answers": {}, "ops": ops,
        }));
        assert_eq!(out["connected"], true, "{out}");
        for (i, (rel, original)) in batch.iter().enumerate() {
            let result = ok(&out, i);
            assert_ne!(result["isError"], true, "{rel}: {result}");
            if text(result) != *original {
                changed.insert(rel.clone());
            }
        }
    }
    let allowed: BTreeSet<String> = FIXTURES.iter().map(|f| (*f).to_owned()).collect();
    let unexpected: Vec<&String> = changed.difference(&allowed).collect();
    assert!(
        unexpected.is_empty(),
        "files changed on the way that hold no credential-shaped value on purpose: {unexpected:?}"
    );
    // The fixtures with credentials are redacted: the guards are on.
    assert!(changed.contains("crates/warden/src/demo/mod.rs"), "changed: {changed:?}");
}
