//! Secret redaction on real source code: the Rust sources of every crate in this workspace's
//! `Cargo.lock` (on every machine that built Warden, in Cargo's registry) redacted as tool results
//! would be. Source code holds almost no credentials, so what is redacted outside the files listed
//! in `corpus/real-sources-credentials.txt` (test keys, example URLs with passwords, fixtures:
//! credential-shaped values, which redaction should catch) is a false redaction that breaks the
//! code an agent reads.
//!
//! ```text
//! cargo test -p warden-inspect --test redaction_precision -- --nocapture
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use warden_inspect::SecretScanner;

/// Most false redactions per MB of source code.
const FLOOR_PER_MB: f64 = 0.1;
/// Less source than this and the measure says little (a machine without the registry).
const MIN_MB: f64 = 50.0;

#[test]
fn real_source_code_is_not_redacted() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(manifest.join("../../Cargo.lock")).expect("Cargo.lock");
    let listed = listed_files(manifest, "corpus/real-sources-credentials.txt");
    let registries = registry_sources();
    let scanner = SecretScanner::new();
    let (mut bytes, mut false_redactions, mut listed_seen) = (0usize, Vec::new(), BTreeSet::new());
    for (name, version) in packages(&lock) {
        let Some(dir) = registries.iter().map(|r| r.join(format!("{name}-{version}"))).find(|d| d.is_dir()) else {
            continue;
        };
        for file in rust_files(&dir) {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            bytes += text.len();
            let found = scanner.find(&text);
            if found.is_empty() {
                continue;
            }
            let relative = format!("{name}/{}", file.strip_prefix(&dir).unwrap_or(&file).display());
            if listed.contains(&relative) {
                listed_seen.insert(relative);
                continue;
            }
            for m in found {
                false_redactions.push(format!("{relative}: {} {:?}", m.kind, &text[m.span]));
            }
        }
    }
    let mb = bytes as f64 / 1_000_000.0;
    if mb < MIN_MB {
        eprintln!("only {mb:.1} MB of crate sources found: the registry is not on this machine; nothing measured");
        return;
    }
    let per_mb = false_redactions.len() as f64 / mb;
    println!("{mb:.1} MB of Rust sources; {} false redactions ({per_mb:.3} per MB)", false_redactions.len());
    for f in &false_redactions {
        println!("  {f}");
    }
    let stale: Vec<&String> = listed.difference(&listed_seen).collect();
    assert!(stale.is_empty(), "listed as holding credential-shaped values, but nothing was found in: {stale:?}");
    assert!(
        per_mb <= FLOOR_PER_MB,
        "{per_mb:.3} false redactions per MB (floor {FLOOR_PER_MB}):\n{}",
        false_redactions.join("\n")
    );
}

/// The files a list under the crate names as holding credential-shaped values: one per line,
/// `#` comments and blank lines skipped.
fn listed_files(manifest: &Path, list: &str) -> BTreeSet<String> {
    std::fs::read_to_string(manifest.join(list))
        .unwrap_or_else(|e| panic!("{list}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Cargo's registry source directories.
fn registry_sources() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else { return Vec::new() };
    std::fs::read_dir(src).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// The registry packages of a `Cargo.lock`: name and version.
fn packages(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            out.push((n, v.trim_matches('"').to_owned()));
        }
    }
    out
}

/// The `.rs` files under `dir`, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() && meta.len() <= 512 * 1024 && path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Text files the package test below reads (as `examples/redaction_precision.rs` does).
const PACKAGE_EXTENSIONS: &[&str] =
    &["rs", "md", "toml", "py", "js", "ts", "go", "c", "h", "java", "json", "yml", "yaml", "txt", "csv", "sh"];

/// The same floor on the pinned test peers' packages (`scripts/install-peers.sh`), JavaScript
/// and Python: what is redacted outside the files listed in
/// `corpus/peer-packages-credentials.txt` (literal passwords in tests, URLs with a password, a
/// JWT fixture) is a false redaction.
#[test]
fn installed_javascript_and_python_packages_are_not_redacted() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let peers = manifest.join("../../tests/peers");
    let listed = listed_files(manifest, "corpus/peer-packages-credentials.txt");
    let scanner = SecretScanner::new();
    let mut listed_seen = BTreeSet::new();
    let mut measured = Vec::new();
    for (dir, root_name) in [("node/node_modules", "node_modules/"), (".venv/lib", "site-packages/")] {
        let (mut bytes, mut false_redactions) = (0usize, Vec::new());
        let mut stack = vec![peers.join(dir)];
        while let Some(path) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
                continue;
            }
            let wanted = path.extension().and_then(|e| e.to_str()).is_some_and(|e| PACKAGE_EXTENSIONS.contains(&e));
            if !meta.is_file() || meta.len() > 512 * 1024 || !wanted {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            bytes += text.len();
            let found = scanner.find(&text);
            if found.is_empty() {
                continue;
            }
            let shown = path.display().to_string();
            let relative = shown.find(root_name).map_or(shown.clone(), |at| shown[at..].to_owned());
            if listed.contains(&relative) {
                listed_seen.insert(relative);
                continue;
            }
            for m in found {
                false_redactions.push(format!("{relative}: {} {:?}", m.kind, &text[m.span]));
            }
        }
        let mb = bytes as f64 / 1_000_000.0;
        if mb < 5.0 {
            eprintln!("{dir}: only {mb:.1} MB found (peers not installed); nothing measured");
            continue;
        }
        measured.push(root_name);
        let per_mb = false_redactions.len() as f64 / mb;
        println!("{dir}: {mb:.1} MB, {} false redactions ({per_mb:.3} per MB)", false_redactions.len());
        assert!(
            per_mb <= FLOOR_PER_MB,
            "{dir}: {per_mb:.3} false redactions per MB (floor {FLOOR_PER_MB}):\n{}",
            false_redactions.join("\n")
        );
    }
    let stale: Vec<&String> =
        listed.difference(&listed_seen).filter(|f| measured.iter().any(|root| f.starts_with(root))).collect();
    assert!(stale.is_empty(), "listed as holding credential-shaped values, but nothing was found in: {stale:?}");
}
