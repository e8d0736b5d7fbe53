//! The families findings belong to: the MCP attack taxonomy, and the character-level tricks
//! the rules own, each with what a reviewer should check.

use std::fmt;
use std::str::FromStr;

/// What kind of poisoning a rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Instructions aimed at the model ("ignore previous instructions", `<IMPORTANT>`).
    Instruction,
    /// References to credentials and key stores (`~/.ssh/id_rsa`, wallets, `.env`).
    SecretReference,
    /// Data routed out through arguments, URLs or hidden copies.
    Exfiltration,
    /// Instructions about other tools or servers, and names imitating them.
    Shadowing,
    /// Characters a reviewer cannot see: tags, zero-width, bidi controls.
    Invisible,
    /// Terminal escape sequences and control characters.
    Ansi,
    /// Names made of lookalike letters from other scripts.
    Homoglyph,
    /// Abnormal lengths, padding, and definitions too large or deep to scan.
    Length,
    /// Telling the model to run commands, scripts or installers.
    CommandInjection,
    /// Telling the model to read local files (keys, configuration) and pass them on.
    FileAccess,
    /// A parameter that asks for secrets, the conversation or the system prompt.
    ParameterPoisoning,
    /// "Call X first", "always call Y afterwards": a dependency the user did not ask for.
    DependencyInjection,
    /// A fake deprecation or restriction that steers the model to another tool or endpoint.
    Redirection,
    /// Promotional or superlative claims meant to make the model prefer this tool.
    PreferenceManipulation,
    /// Fake alerts, system notices, compliance or administrator messages.
    FalseAuthority,
    /// Telling the model to hide what it does, or claiming the user already approved.
    Concealment,
    /// A tool that duplicates another tool (another server's, or a well-known one).
    Overlap,
}

impl Family {
    /// Every family, in declaration order.
    pub const ALL: [Family; 17] = [
        Family::Instruction,
        Family::SecretReference,
        Family::Exfiltration,
        Family::Shadowing,
        Family::Invisible,
        Family::Ansi,
        Family::Homoglyph,
        Family::Length,
        Family::CommandInjection,
        Family::FileAccess,
        Family::ParameterPoisoning,
        Family::DependencyInjection,
        Family::Redirection,
        Family::PreferenceManipulation,
        Family::FalseAuthority,
        Family::Concealment,
        Family::Overlap,
    ];

    /// The snake-case name: `instruction`, `secret_reference`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Instruction => "instruction",
            Family::SecretReference => "secret_reference",
            Family::Exfiltration => "exfiltration",
            Family::Shadowing => "shadowing",
            Family::Invisible => "invisible",
            Family::Ansi => "ansi",
            Family::Homoglyph => "homoglyph",
            Family::Length => "length",
            Family::CommandInjection => "command_injection",
            Family::FileAccess => "file_access",
            Family::ParameterPoisoning => "parameter_poisoning",
            Family::DependencyInjection => "dependency_injection",
            Family::Redirection => "redirection",
            Family::PreferenceManipulation => "preference_manipulation",
            Family::FalseAuthority => "false_authority",
            Family::Concealment => "concealment",
            Family::Overlap => "overlap",
        }
    }

    /// What a reviewer should check before approving a definition held for this family.
    pub fn check(self) -> &'static str {
        match self {
            Family::Instruction => {
                "Read the passage as the model would: does it tell the model to do something the tool's job does not need?"
            }
            Family::SecretReference | Family::FileAccess => {
                "Does the tool's job need this file or credential? A definition never needs the model to read keys or configuration for it."
            }
            Family::Exfiltration => {
                "Where would data go? An address, URL or other tool that the user did not choose is an exfiltration channel."
            }
            Family::Shadowing => {
                "Does the text change how other tools or servers are used? A server's definitions speak only for its own tools."
            }
            Family::Invisible | Family::Ansi => {
                "Decode the hidden characters (shown escaped): a reviewer cannot see what the model reads."
            }
            Family::Homoglyph => {
                "Compare the name letter by letter with the tool it resembles: which server really owns it?"
            }
            Family::Length => "Why is the text this long? Padding pushes instructions out of a reviewer's view.",
            Family::CommandInjection => {
                "Which command would the model run, with which tool? A definition that asks for commands outside its own call is an attack."
            }
            Family::ParameterPoisoning => {
                "What would the model put in this parameter? Secrets, the conversation or the system prompt are never an honest argument."
            }
            Family::DependencyInjection => {
                "Is the required first or follow-up call real documentation of this server's own tools, or a call the user never asked for?"
            }
            Family::Redirection => {
                "Is the deprecation or restriction real (the vendor's changelog), and is the replacement a tool of the same server?"
            }
            Family::PreferenceManipulation => {
                "Are the claims verifiable, and do they tell the model to prefer this tool over others? Descriptions describe, they do not advertise."
            }
            Family::FalseAuthority => {
                "Who speaks? Alerts, system notices and compliance demands do not come from tool descriptions."
            }
            Family::Concealment => {
                "What would be hidden from the user, or which approval is claimed? Nothing in a definition may waive confirmation."
            }
            Family::Overlap => {
                "Compare both tools: which server should own this function, and does the user need both? Keep one."
            }
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL.into_iter().find(|family| family.as_str() == s).ok_or_else(|| format!("unknown family {s:?}"))
    }
}
