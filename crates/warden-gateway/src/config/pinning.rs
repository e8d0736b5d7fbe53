//! Pinning what `warden import` can: a package runner's package named without an exact version
//! is rewritten to the version this machine already runs — the one in npx's cache, or in a uv or
//! pipx tool environment — when there is exactly one. What cannot be pinned that way (no cached
//! copy, several versions, container images) is left as it is, and `warden import` flags it.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where installed packages are looked for.
#[derive(Debug, Clone)]
pub struct Caches {
    /// npm's cache (`$npm_config_cache`, or `~/.npm`); npx keeps packages under `_npx/`.
    pub npm: Option<PathBuf>,
    /// The home directory (uv tools under `.local/share/uv/tools`, pipx venvs under
    /// `.local/share/pipx/venvs` and `.local/pipx/venvs`).
    pub home: Option<PathBuf>,
}

impl Caches {
    /// The caches of the user running Warden.
    pub fn of_this_user() -> Caches {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let npm =
            std::env::var_os("npm_config_cache").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".npm")));
        Caches { npm, home }
    }
}

/// What pinning did to one server's arguments.
#[derive(Debug, PartialEq, Eq)]
pub enum Pinned {
    /// Rewritten: a line for the reviewer.
    Rewritten(String),
    /// Nothing to do, or nothing that could be done (the review flags it).
    Unchanged,
}

/// Pins the package `program` runs with `args`, if it names one without an exact version and
/// exactly one installed version is found.
pub fn pin(program: &str, args: &mut [String], caches: &Caches) -> Pinned {
    let prog = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    match prog {
        "npx" => {
            let i = match args.iter().position(|a| a == "-p" || a == "--package") {
                Some(i) => i + 1,
                None => match args.iter().position(|a| !a.starts_with('-')) {
                    Some(i) => i,
                    None => return Pinned::Unchanged,
                },
            };
            let Some(spec) = args.get(i) else { return Pinned::Unchanged };
            let name = npm_name(spec);
            if name.len() < spec.len() && is_exact_version(&spec[name.len() + 1..]) {
                return Pinned::Unchanged;
            }
            let Some(version) = one(npx_versions(name, caches)) else { return Pinned::Unchanged };
            let was = spec.clone();
            args[i] = format!("{name}@{version}");
            Pinned::Rewritten(format!("pinned {was} to {}, the version in npx's cache", args[i]))
        }
        "uvx" | "pipx" => {
            let start = if prog == "pipx" {
                match args.iter().position(|a| a == "run") {
                    Some(r) => r + 1,
                    None => return Pinned::Unchanged,
                }
            } else {
                0
            };
            let i = match args[start..].iter().position(|a| a == "--from" || a == "--spec") {
                Some(f) => start + f + 1,
                None => match args[start..].iter().position(|a| !a.starts_with('-')) {
                    Some(p) => start + p,
                    None => return Pinned::Unchanged,
                },
            };
            let Some(spec) = args.get(i) else { return Pinned::Unchanged };
            if spec.contains("==") || spec.split_once('@').is_some_and(|(_, v)| is_exact_version(v)) {
                return Pinned::Unchanged;
            }
            let name = spec.split(['@', '=', '<', '>', '~', '!', '[']).next().unwrap_or(spec).to_owned();
            // Extras (`pkg[cli]`) are kept.
            let extras = spec.find('[').and_then(|a| spec[a..].find(']').map(|b| spec[a..a + b + 1].to_owned()));
            let Some(version) = one(python_versions(&name, caches)) else { return Pinned::Unchanged };
            let was = spec.clone();
            args[i] = format!("{name}{}=={version}", extras.unwrap_or_default());
            Pinned::Rewritten(format!("pinned {was} to {}, the version installed as a {prog} tool", args[i]))
        }
        _ => Pinned::Unchanged,
    }
}

/// `@scope/name@range` → `@scope/name`; `name@range` → `name`.
fn npm_name(spec: &str) -> &str {
    let at = if let Some(rest) = spec.strip_prefix('@') { rest.find('@').map(|i| i + 1) } else { spec.find('@') };
    at.map_or(spec, |i| &spec[..i])
}

/// Whether a version is exact: digits and dots (with an optional pre-release), not a range or tag.
pub fn is_exact_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The single distinct version, if there is exactly one.
fn one(mut versions: Vec<String>) -> Option<String> {
    versions.sort();
    versions.dedup();
    (versions.len() == 1).then(|| versions.remove(0))
}

fn npx_versions(name: &str, caches: &Caches) -> Vec<String> {
    let Some(npm) = &caches.npm else { return vec![] };
    let Ok(dirs) = std::fs::read_dir(npm.join("_npx")) else { return vec![] };
    dirs.flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("node_modules").join(name).join("package.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok()?.get("version")?.as_str().map(str::to_owned))
        .filter(|v| is_exact_version(v))
        .collect()
}

fn python_versions(name: &str, caches: &Caches) -> Vec<String> {
    let Some(home) = &caches.home else { return vec![] };
    let norm = name.to_ascii_lowercase().replace(['-', '.'], "_");
    let mut out = vec![];
    for tools in [".local/share/uv/tools", ".local/share/pipx/venvs", ".local/pipx/venvs"] {
        let Ok(libs) = std::fs::read_dir(home.join(tools).join(name).join("lib")) else { continue };
        for lib in libs.flatten() {
            let Ok(site) = std::fs::read_dir(lib.path().join("site-packages")) else { continue };
            for entry in site.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".dist-info") else { continue };
                let Some((pkg, version)) = stem.rsplit_once('-') else { continue };
                if pkg.to_ascii_lowercase().replace(['-', '.'], "_") == norm && is_exact_version(version) {
                    out.push(version.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn runners_are_pinned_to_the_one_version_installed() {
        let root = std::env::temp_dir().join(format!("warden-pinning-{}", std::process::id()));
        let pkg = root.join("npm/_npx/abc/node_modules/@modelcontextprotocol/server-filesystem");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"name":"x","version":"2025.8.21"}"#).unwrap();
        std::fs::create_dir_all(root.join(
            "home/.local/share/uv/tools/mcp-server-git/lib/python3.11/site-packages/mcp_server_git-2025.9.25.dist-info",
        ))
        .unwrap();
        let caches = Caches { npm: Some(root.join("npm")), home: Some(root.join("home")) };
        let mut a = args(&["-y", "@modelcontextprotocol/server-filesystem@latest", "/srv"]);
        assert!(matches!(pin("npx", &mut a, &caches), Pinned::Rewritten(_)));
        assert_eq!(a, args(&["-y", "@modelcontextprotocol/server-filesystem@2025.8.21", "/srv"]));
        let mut a = args(&["mcp-server-git", "--repository", "/r"]);
        assert!(matches!(pin("/usr/bin/uvx", &mut a, &caches), Pinned::Rewritten(_)));
        assert_eq!(a[0], "mcp-server-git==2025.9.25");
        let mut a = args(&["mcp-server-git[extra]"]);
        assert!(matches!(pin("uvx", &mut a, &caches), Pinned::Rewritten(_)));
        assert_eq!(a[0], "mcp-server-git[extra]==2025.9.25");
        for (prog, a) in [
            ("npx", &["-y", "@modelcontextprotocol/server-filesystem@2025.7.1"][..]),
            ("npx", &["-y", "not-cached"][..]),
            ("uvx", &["mcp-server-time==2025.1.1"][..]),
            ("docker", &["run", "image"][..]),
        ] {
            let mut a = args(a);
            assert_eq!(pin(prog, &mut a, &caches), Pinned::Unchanged, "{prog} {a:?}");
        }
        let other = root.join("npm/_npx/def/node_modules/@modelcontextprotocol/server-filesystem");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("package.json"), r#"{"version":"2025.9.1"}"#).unwrap();
        let mut a = args(&["-y", "@modelcontextprotocol/server-filesystem"]);
        assert_eq!(pin("npx", &mut a, &caches), Pinned::Unchanged, "two versions cached: no guess");
        let _ = std::fs::remove_dir_all(&root);
    }
}
