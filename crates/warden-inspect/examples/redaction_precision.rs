//! Measures what secret redaction changes in real content: every text file under the given
//! directories is redacted as a tool result would be, and each change is printed with the kind
//! and the text it replaced, then the totals (files changed, redactions per MB).
//!
//! ```text
//! cargo run --release -p warden-inspect --example redaction_precision -- ~/.cargo/registry/src
//! ```
//!
//! Real source trees hold almost no credentials, so nearly every change it prints is a false
//! redaction: a word taken for a secret, which breaks the code an agent reads.

use std::path::{Path, PathBuf};
use warden_inspect::SecretScanner;

/// Text files worth reading: source in several languages, docs, data.
const EXTENSIONS: &[&str] =
    &["rs", "md", "toml", "py", "js", "ts", "go", "c", "h", "java", "json", "yml", "yaml", "txt", "csv", "sh"];
/// Files larger than this are skipped (generated tables, vendored blobs).
const MAX_FILE_BYTES: u64 = 512 * 1024;

fn main() {
    let roots: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if roots.is_empty() {
        eprintln!("usage: redaction_precision DIR [DIR ...]");
        std::process::exit(2);
    }
    let scanner = SecretScanner::new();
    let (mut files, mut bytes, mut changed, mut redactions) = (0usize, 0usize, 0usize, 0usize);
    let mut stack = roots;
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            continue;
        }
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES || !wanted(&path) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        files += 1;
        bytes += text.len();
        let found = scanner.find(&text);
        if found.is_empty() {
            continue;
        }
        changed += 1;
        redactions += found.len();
        for m in found {
            let line_start = text[..m.span.start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[m.span.end..].find('\n').map_or(text.len(), |i| m.span.end + i);
            let line: String = text[line_start..line_end].trim().chars().take(160).collect();
            println!("{}\t{}\t{:?}\t{}", path.display(), m.kind, &text[m.span.clone()], line);
        }
    }
    let mb = bytes as f64 / 1_000_000.0;
    println!(
        "# {files} files, {mb:.1} MB; {changed} files changed, {redactions} redactions, {:.2} per MB",
        redactions as f64 / mb.max(f64::EPSILON)
    );
}

fn wanted(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e))
}
