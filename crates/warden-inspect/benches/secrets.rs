//! Secret redaction on the shapes the gateway sees on every call: a tool call's
//! arguments (JSON, a few KiB, occasionally holding a secret), a tool result's text (tens
//! of KiB, usually holding none), and a large mixed result (1 MiB of prose, JSON, logs and
//! code with a few secrets: the throughput target, 300 MB/s on one core). The last case,
//! prose with no prefilter anchor at all, measures the Aho-Corasick pass alone.

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

/// About 1 MiB of what tool results hold: prose, pretty JSON, log lines and source code,
/// with four secrets (an AWS key id, a GitHub token, a database URL password and a
/// Stripe key) spread through it.
fn mixed_mebibyte() -> (String, u32) {
    let blocks = [
        "The deployment pipeline builds every service, runs the integration suite against a staging database and,          once the canary has served traffic for an hour without errors, promotes the release. Rollbacks restore the          previous image and replay the migration journal backwards; see the runbook for the order of operations.\n\n",
        "{\n  \"id\": 48213,\n  \"name\": \"orders-api\",\n  \"owner\": {\"login\": \"acme\", \"type\": \"Organization\"},\n  \
         \"created_at\": \"2025-06-01T12:00:00Z\",\n  \"topics\": [\"payments\", \"grpc\", \"rust\"],\n  \
         \"html_url\": \"https://github.com/acme/orders-api\",\n  \"stargazers_count\": 1532,\n  \"default_branch\": \"main\"\n}\n",
        "2025-06-01T12:00:00.123Z INFO  http{method=GET path=/v1/orders/48213 status=200} request_id=123e4567-e89b-12d3-a456-426614174000 duration_ms=12 bytes=5120\n\
         2025-06-01T12:00:00.456Z WARN  pool{db=orders} slow query took 812ms: SELECT id, total FROM orders WHERE customer_id = $1 LIMIT 50\n\
         2025-06-01T12:00:01.001Z DEBUG cache hit ratio=0.93 evictions=12 size=48213 upstream=http://cache.internal:6379/0\n",
        "fn total(items: &[Item]) -> Money {\n    let mut sum = Money::zero();\n    for item in items {\n        \
         let key = item.sku.as_str();\n        sum += prices.get(key).copied().unwrap_or_default() * item.quantity;\n    }\n    sum\n}\n\n\
         def refresh(session):\n    # The token count limits how much context we send.\n    return session.get(url, timeout=30)\n\n",
    ];
    let secrets = [
        "\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
        "\nthe CI log printed ghp_R4nd0mT0k3nV4lu3F0rB3nchm4rk1ngXYZ12 in the CI log\n",
        "\nDATABASE_URL=postgres://orders:S3cr3tPassw0rd@db.internal:5432/orders\n",
        "\nstripe.api_key = sk_live_4eC39HqLyjWDarjtT1zdp7dc\n",
    ];
    let size = 1024 * 1024;
    let mut text = String::with_capacity(size + 4096);
    let mut next_secret = 0;
    for (i, block) in blocks.iter().cycle().enumerate() {
        if text.len() + block.len() > size {
            break;
        }
        // One secret every quarter MiB.
        if next_secret < secrets.len() && text.len() >= next_secret * size / 4 + size / 8 && i % 4 == 0 {
            text.push_str(secrets[next_secret]);
            next_secret += 1;
        }
        text.push_str(block);
    }
    (text, next_secret as u32)
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
    let (mixed, secrets) = mixed_mebibyte();
    let found = scanner.find(&mixed);
    assert_eq!(found.len(), secrets as usize, "every planted secret is found, and nothing else: {found:?}");
    group.throughput(Throughput::Bytes(mixed.len() as u64));
    group.bench_function(format!("mixed_{}B_{secrets}_secrets", mixed.len()), |b| {
        b.iter(|| black_box(scanner.redact_str(black_box(&mixed))))
    });
    // Prose with no anchor at all: the cost of the Aho-Corasick pass alone.
    let prose = blocks_without_anchors();
    assert!(scanner.find(&prose).is_empty());
    group.throughput(Throughput::Bytes(prose.len() as u64));
    group.bench_function(format!("prose_{}B_no_anchor", prose.len()), |b| {
        b.iter(|| black_box(scanner.redact_str(black_box(&prose))))
    });
    group.finish();
}

/// About 1 MiB of prose and log lines that hold none of the prefilter's anchors.
fn blocks_without_anchors() -> String {
    let line = "2025-06-01T12:00:00Z INFO the canary served traffic for an hour; latency p99 was 41 ms and the error rate stayed under 0.1 per cent.\n";
    line.repeat(1024 * 1024 / line.len())
}

criterion_group!(benches, bench);
criterion_main!(benches);
