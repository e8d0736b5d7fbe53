//! The official MCP conformance suite, run against the reference server directly and through the
//! gateway for 2025-11-25 and 2026-07-28: every scenario and check that passes directly must pass
//! through Warden (tests/conformance/run.sh; differences are explained in docs/conformance.md).

mod support;

use support::*;

#[test]
fn conformance_suite_passes_through_the_gateway_as_it_does_directly() {
    node_modules();
    let out = std::process::Command::new(repo().join("tests/conformance/run.sh"))
        .arg(warden_bin())
        .output()
        .expect("running tests/conformance/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance differs through the gateway:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2025-11-25:") && stdout.contains("2026-07-28:"), "both requirement sets ran");
}
