//! Where MCP clients keep their server configurations, user and project scopes, on Linux and
//! macOS, and which format each file is in.
//!
//! The list is data ([`candidates`]): every path is looked at, missing files are skipped, and
//! `--verbose` shows the whole list so a user can see what was and was not read. JetBrains AI
//! Assistant keeps its servers in the IDE's own settings store, not in a file of a documented
//! format, so it is not read; Junie (JetBrains' agent) is.

use super::formats::Format;
use std::path::{Path, PathBuf};

/// An MCP client whose configuration `warden scan` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// Anthropic's desktop app.
    ClaudeDesktop,
    /// Anthropic's command-line agent.
    ClaudeCode,
    /// Cursor.
    Cursor,
    /// Visual Studio Code (and Insiders).
    VsCode,
    /// Windsurf.
    Windsurf,
    /// Zed.
    Zed,
    /// Continue.
    Continue,
    /// Gemini CLI.
    GeminiCli,
    /// OpenAI Codex.
    Codex,
    /// JetBrains Junie.
    Junie,
    /// A file named on the command line whose client is not known from its path.
    Unknown,
}

impl Client {
    /// The client's name as users know it.
    pub fn label(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::Windsurf => "Windsurf",
            Client::Zed => "Zed",
            Client::Continue => "Continue",
            Client::GeminiCli => "Gemini CLI",
            Client::Codex => "Codex",
            Client::Junie => "JetBrains Junie",
            Client::Unknown => "(file)",
        }
    }
}

/// Whose configuration a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The user's, for every project.
    User,
    /// A project's, in its directory (often committed with it).
    Project,
    /// Named on the command line.
    Given,
}

impl Scope {
    /// `user`, `project` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
            Scope::Given => "file",
        }
    }
}

/// The operating systems whose layouts are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux and other Unix systems with an XDG layout.
    Linux,
    /// macOS (`~/Library/Application Support`).
    MacOs,
}

impl Os {
    /// The system this binary runs on.
    pub fn current() -> Os {
        if cfg!(target_os = "macos") { Os::MacOs } else { Os::Linux }
    }
}

/// A place where a client may keep servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The client.
    pub client: Client,
    /// User or project.
    pub scope: Scope,
    /// The file, or a directory of files (`dir`).
    pub path: PathBuf,
    /// How to read it.
    pub format: Format,
    /// `path` is a directory whose `*.yaml`, `*.yml` and `*.json` files are each read.
    pub dir: bool,
}

/// Every place looked at for a user whose home is `home` (with `$XDG_CONFIG_HOME` as
/// `config_home` when set, `$CODEX_HOME` as `codex_home` when set) and a project in `project`.
pub fn candidates(
    os: Os,
    home: &Path,
    config_home: Option<&Path>,
    codex_home: Option<&Path>,
    project: &Path,
) -> Vec<Candidate> {
    let xdg = config_home.map(Path::to_path_buf).unwrap_or_else(|| home.join(".config"));
    // Electron apps keep their files under the platform's application-data directory.
    let app_data = match os {
        Os::Linux => xdg.clone(),
        Os::MacOs => home.join("Library/Application Support"),
    };
    let codex = codex_home.map(Path::to_path_buf).unwrap_or_else(|| home.join(".codex"));
    let file = |client, scope, path: PathBuf, format| Candidate { client, scope, path, format, dir: false };
    let dir = |client, scope, path: PathBuf, format| Candidate { client, scope, path, format, dir: true };
    use Client::*;
    use Format as F;
    use Scope::*;
    let mut out = vec![
        file(ClaudeDesktop, User, app_data.join("Claude/claude_desktop_config.json"), F::McpServers),
        file(ClaudeCode, User, home.join(".claude.json"), F::ClaudeCodeUser),
        file(ClaudeCode, Project, project.join(".mcp.json"), F::McpServers),
        file(Cursor, User, home.join(".cursor/mcp.json"), F::McpServers),
        file(Cursor, Project, project.join(".cursor/mcp.json"), F::McpServers),
    ];
    for variant in ["Code", "Code - Insiders"] {
        out.push(file(VsCode, User, app_data.join(variant).join("User/mcp.json"), F::VsCodeMcp));
        out.push(file(VsCode, User, app_data.join(variant).join("User/settings.json"), F::VsCodeSettings));
    }
    out.extend([
        file(VsCode, Project, project.join(".vscode/mcp.json"), F::VsCodeMcp),
        file(Windsurf, User, home.join(".codeium/windsurf/mcp_config.json"), F::McpServers),
        // Zed reads ~/.config/zed on macOS too.
        file(Zed, User, xdg.join("zed/settings.json"), F::Zed),
        file(Continue, User, home.join(".continue/config.yaml"), F::ContinueYaml),
        file(Continue, User, home.join(".continue/config.json"), F::ContinueJson),
        dir(Continue, User, home.join(".continue/mcpServers"), F::ContinueYaml),
        dir(Continue, Project, project.join(".continue/mcpServers"), F::ContinueYaml),
        file(GeminiCli, User, home.join(".gemini/settings.json"), F::Gemini),
        file(GeminiCli, Project, project.join(".gemini/settings.json"), F::Gemini),
        file(Codex, User, codex.join("config.toml"), F::Codex),
        file(Codex, Project, project.join(".codex/config.toml"), F::Codex),
        file(Junie, User, home.join(".junie/mcp/mcp.json"), F::McpServers),
        file(Junie, Project, project.join(".junie/mcp/mcp.json"), F::McpServers),
    ]);
    out
}

/// The client a file named on the command line belongs to, from its path, and its format:
/// from the path when it is one of the known places, else from its name and content.
pub fn given(path: &Path, text: &str) -> (Client, Format) {
    let p = path.to_string_lossy().replace('\\', "/");
    let ends = |suffix: &str| p.ends_with(suffix);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let known = if ends("claude_desktop_config.json") {
        Some((Client::ClaudeDesktop, Format::McpServers))
    } else if name == ".claude.json" {
        Some((Client::ClaudeCode, Format::ClaudeCodeUser))
    } else if name == ".mcp.json" {
        Some((Client::ClaudeCode, Format::McpServers))
    } else if ends(".cursor/mcp.json") {
        Some((Client::Cursor, Format::McpServers))
    } else if ends(".vscode/mcp.json") || ends("/User/mcp.json") {
        Some((Client::VsCode, Format::VsCodeMcp))
    } else if ends("/User/settings.json") {
        Some((Client::VsCode, Format::VsCodeSettings))
    } else if ends("windsurf/mcp_config.json") {
        Some((Client::Windsurf, Format::McpServers))
    } else if ends("zed/settings.json") {
        Some((Client::Zed, Format::Zed))
    } else if p.contains(".continue/") && (name.ends_with(".yaml") || name.ends_with(".yml")) {
        Some((Client::Continue, Format::ContinueYaml))
    } else if ends(".continue/config.json") {
        Some((Client::Continue, Format::ContinueJson))
    } else if ends(".gemini/settings.json") {
        Some((Client::GeminiCli, Format::Gemini))
    } else if ends(".codex/config.toml") {
        Some((Client::Codex, Format::Codex))
    } else if ends(".junie/mcp/mcp.json") {
        Some((Client::Junie, Format::McpServers))
    } else {
        None
    };
    known.unwrap_or_else(|| (Client::Unknown, Format::detect(&name, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(os: Os) -> Vec<String> {
        candidates(os, Path::new("/h"), None, None, Path::new("/p"))
            .into_iter()
            .map(|c| format!("{} {} {}", c.client.label(), c.scope.as_str(), c.path.display()))
            .collect()
    }

    #[test]
    fn macos_keeps_app_files_under_application_support() {
        let mac = paths(Os::MacOs);
        for expected in [
            "Claude Desktop user /h/Library/Application Support/Claude/claude_desktop_config.json",
            "VS Code user /h/Library/Application Support/Code/User/mcp.json",
            "VS Code user /h/Library/Application Support/Code/User/settings.json",
            "Zed user /h/.config/zed/settings.json",
            "Claude Code user /h/.claude.json",
            "Cursor project /p/.cursor/mcp.json",
            "Codex user /h/.codex/config.toml",
        ] {
            assert!(mac.contains(&expected.to_owned()), "{expected} missing from {mac:#?}");
        }
        let linux = paths(Os::Linux);
        assert!(linux.contains(&"Claude Desktop user /h/.config/Claude/claude_desktop_config.json".to_owned()));
        assert!(linux.contains(&"VS Code user /h/.config/Code/User/mcp.json".to_owned()));
        assert!(!linux.iter().any(|p| p.contains("Library")), "{linux:#?}");
    }

    #[test]
    fn xdg_and_codex_home_are_honoured() {
        let c = candidates(Os::Linux, Path::new("/h"), Some(Path::new("/x")), Some(Path::new("/c")), Path::new("/p"));
        assert!(c.iter().any(|c| c.path == Path::new("/x/zed/settings.json")));
        assert!(c.iter().any(|c| c.path == Path::new("/c/config.toml")));
    }

    #[test]
    fn given_files_are_recognised_by_path_then_content() {
        assert_eq!(given(Path::new("/a/.cursor/mcp.json"), "{}"), (Client::Cursor, Format::McpServers));
        assert_eq!(given(Path::new("/a/.codex/config.toml"), ""), (Client::Codex, Format::Codex));
        assert_eq!(given(Path::new("x.json"), r#"{"context_servers":{}}"#), (Client::Unknown, Format::Zed));
        assert_eq!(given(Path::new("x.toml"), ""), (Client::Unknown, Format::Codex));
    }
}
