//! Secret redaction on the two shapes the gateway sees on every call: a tool call's
//! arguments (JSON, a few KiB, occasionally holding a secret) and a tool result's text
//! (tens of KiB, usually holding none).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_inspect::SecretScanner;

/// About 4 KiB of arguments for a deploy-ish tool, with two secrets: a GitHub token in a
/// header map and an AWS key id inside free text.
fn tool_arguments() -> Value {
    let files: Vec<Value> = (0..29)
        .map(|i| {
            json!({
                "path": format!("services/api/src/handlers/route_{i:02}.rs"),
                "mode": "100644",
                "sha": format!("{:040x}", 0x3f78_6850_e387_550f_u64.wrapping_mul(i + 1)),
                "size": 1024 + i * 37,
            })
        })
        .collect();
    json!({
        "repository": "acme/payments",
        "ref": "refs/heads/main",
        "max_tokens": 2048,
        "headers": {
            "Accept": "application/vnd.github+json",
            "Authorization": "token ghp_R4nd0mT0k3nV4lu3F0rB3nchm4rk1ngXYZ",
            "User-Agent": "warden-bench/0.1"
        },
        "message": "Rotate the deploy credentials; the old key AKIAIOSFODNN7EXAMPLE was left in the CI log by mistake and must be revoked before the release on Friday.",
        "files": files,
        "labels": ["security", "ci", "release-blocker"],
    })
}

/// 64 KiB of a tool result with no secrets: log lines, paths, ids and prose.
fn tool_result_text() -> String {
    let lines = [
        "2025-06-01T12:00:00Z INFO request_id=123e4567-e89b-12d3-a456-426614174000 method=GET path=/v1/orders status=200 duration_ms=12\n",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b Author: Jane Doe <jane@example.com> Date: Mon Jun 2 10:00:00 2025\n",
        "The token count for this request was 1532; enter your password below to continue with the session setup.\n",
        "{\"id\": 42, \"name\": \"widget\", \"price\": 9.99, \"tags\": [\"blue\", \"small\"], \"next_token\": \"CAoQAA\"}\n",
        "See https://docs.example.com/guide/install#configure for details, or run `cargo build --release`.\n",
    ];
    let mut text = String::with_capacity(64 * 1024);
    for line in lines.iter().cycle() {
        if text.len() + line.len() > 64 * 1024 {
            break;
        }
        text.push_str(line);
    }
    text
}

fn bench(c: &mut Criterion) {
    let scanner = SecretScanner::new();

    let arguments = tool_arguments();
    let size = arguments.to_string().len();
    let mut check = arguments.clone();
    assert_eq!(scanner.redact_json(&mut check).total, 2, "{check}");
    let mut group = c.benchmark_group("redact_json");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function(format!("tool_arguments_{size}B_2_secrets"), |b| {
        b.iter_batched_ref(|| arguments.clone(), |value| black_box(scanner.redact_json(value)), BatchSize::SmallInput)
    });
    group.finish();

    let text = tool_result_text();
    assert!(scanner.redact_str(&text).1.is_empty());
    let mut group = c.benchmark_group("redact_str");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(format!("tool_result_{}B_clean", text.len()), |b| {
        b.iter(|| black_box(scanner.redact_str(black_box(&text))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
