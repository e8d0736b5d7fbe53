//! The deployment files: `deploy/check.sh` renders the Helm chart, validates the manifests
//! against the Kubernetes schemas, runs `warden check` (this build) on the configuration the
//! chart renders, and reads the Dockerfile. Everything but building the image (no Docker daemon
//! on the machines the suite runs on) must have run and passed.

mod support;

use std::process::Command;
use support::*;

#[test]
fn the_chart_renders_valid_manifests_and_a_configuration_warden_accepts() {
    let out = Command::new("bash")
        .arg(repo().join("deploy/check.sh"))
        .arg(warden_bin())
        .output()
        .expect("run deploy/check.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let not_run: Vec<&str> =
        text.lines().filter(|l| l.starts_with("NOT CHECKED") && !l.contains("docker build")).collect();
    assert!(not_run.is_empty(), "every check but the image build ran: {not_run:?}\n{text}");
    for needed in ["warden check passes", "manifests valid for Kubernetes", "helm lint", "chart renders"] {
        assert!(
            text.lines().any(|l| l.starts_with("ok:") && l.contains(needed)),
            "no passed check on {needed}:\n{text}"
        );
    }
}
