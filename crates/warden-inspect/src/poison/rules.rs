//! The builtin poisoning rules: one table of `(id, family, severity, detector, explanation)`.
//!
//! Text rules are compiled once into a single multi-pattern regex that says, in one pass,
//! which rules match a string; only the rules that do are then located. Name rules are a
//! second, smaller set applied to names only (tool, prompt and argument names, schema
//! property names). Checks are the few rules that are not a pattern (lengths, sizes,
//! whole-script lookalike names); the walker raises them by id.
//!
//! Patterns use ASCII word boundaries (`(?-u:\b)`) so the lazy DFA also runs on
//! non-ASCII text, and bounded word gaps (`(?:[!-~]+\s+){0,N}?`) rather than `.*`, so a
//! match stays within a sentence-sized window and the automaton stays small.
//!
//! Where a phrase is common in honest descriptions ("you must provide a valid path",
//! "Note:", "important", "reads ~/.aws/credentials"), the rule either requires the part
//! that makes it hostile (an imperative aimed at the model, a secret *sent* somewhere, a
//! reference to *other* tools) or is given a severity below the blocking threshold.

use super::{Family, Severity};

/// How a rule is detected.
#[derive(Debug, Clone, Copy)]
pub(super) enum Detect {
    /// A pattern run over every string (values and object keys).
    Text(&'static str),
    /// A pattern run over names only.
    Name(&'static str),
    /// Raised by code in the walker (see [`check`]).
    Check,
}

/// One poisoning rule. The table is [`RULES`]; see [`super::rules`] for the list.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, `<family>.<what>`; it is what findings, audit records and docs name.
    pub id: &'static str,
    /// The family the rule belongs to.
    pub family: Family,
    /// The severity of its findings.
    pub severity: Severity,
    /// One sentence for a reviewer: what was found and why it matters.
    pub explanation: &'static str,
    pub(super) detect: Detect,
}

impl Rule {
    /// Whether the rule runs on names only (tool, prompt, argument and property names).
    pub fn names_only(&self) -> bool {
        matches!(self.detect, Detect::Name(_))
    }
}

const fn text(
    id: &'static str,
    family: Family,
    severity: Severity,
    pattern: &'static str,
    explanation: &'static str,
) -> Rule {
    Rule { id, family, severity, explanation, detect: Detect::Text(pattern) }
}

const fn name(
    id: &'static str,
    family: Family,
    severity: Severity,
    pattern: &'static str,
    explanation: &'static str,
) -> Rule {
    Rule { id, family, severity, explanation, detect: Detect::Name(pattern) }
}

const fn check(id: &'static str, family: Family, severity: Severity, explanation: &'static str) -> Rule {
    Rule { id, family, severity, explanation, detect: Detect::Check }
}

/// Ids of the rules the walker raises itself.
pub(super) mod check {
    pub const DESCRIPTION_LONG: &str = "length.long_text";
    pub const DESCRIPTION_HUGE: &str = "length.huge_text";
    pub const NAME_LONG: &str = "length.long_name";
    pub const TOO_LARGE: &str = "length.definition_too_large";
    pub const TOO_DEEP: &str = "length.too_deep";
    pub const TOO_MANY: &str = "length.too_many_findings";
    pub const WHOLE_SCRIPT: &str = "homoglyph.lookalike_name";
}

/// Files and stores that hold credentials, which honest tools do mention now and then
/// (an SSH tool's default key, an AWS tool's credentials file).
macro_rules! common_secret_path {
    () => {
        concat!(
            r"(?:~/\.ssh(?:/[\w.\-]*)?|\.ssh/[\w.\-]+|(?-u:\b)id_(?:rsa|dsa|ecdsa|ed25519)(?-u:\b)",
            r"|(?-u:\B)\.env(?:\.\w+)?(?-u:\b)|\.aws/(?:credentials|config)|\.npmrc|\.netrc|\.pypirc|\.pgpass",
            r"|(?-u:\b)kubeconfig(?-u:\b)|\.kube/config|\.config/gcloud|application_default_credentials\.json",
            r"|\.docker/config\.json|\.gnupg|(?-u:\b)private[\s_-]keys?(?-u:\b)|(?-u:\b)keychain(?-u:\b)",
            r"|(?-u:\b)keystore(?-u:\b)|\.password-store|(?-u:\b)(?:seed|recovery|mnemonic)\s+(?:phrase|words))"
        )
    };
}

/// Credential stores an honest tool description has no reason to name.
macro_rules! rare_secret_path {
    () => {
        concat!(
            r"(?:/etc/(?:shadow|sudoers|gshadow)|(?-u:\b)wallet\.dat",
            r"|(?-u:\b)Login\s+Data(?-u:\b)|cookies\.sqlite|key4\.db|logins\.json|\.git-credentials",
            r"|(?:\.cursor|\.claude|\.codeium|\.windsurf|\.vscode)/mcp\.json|claude_desktop_config\.json",
            r"|\.bash_history|\.zsh_history|/proc/self/environ|\.electrum|(?-u:\b)Local\s+State(?-u:\b))"
        )
    };
}

/// Conversation, context and secrets: what an attacker wants carried out of the session.
macro_rules! sensitive {
    () => {
        concat!(
            r"(?:(?:the\s+|this\s+|our\s+)?conversation|chat\s+history|message\s+history|(?:previous|prior|earlier|all|other)\s+messages",
            r"|system\s+prompt|(?:your|the)\s+(?:instructions|prompt)|(?:entire|whole|full)\s+(?:conversation|context|chat|history|prompt|transcript)",
            r"|transcript|context\s+window|secrets?|credentials|(?:private|ssh|api)\s+keys|environment\s+variables|env\s+vars",
            r"|(?:outputs?|results?|responses?)\s+(?:of|from)\s+(?:the\s+)?(?:other|previous|all|every|earlier)\s+(?:[!-~]+\s+)?(?:tools?|calls?)",
            r"|tool\s+(?:outputs|results)|file\s+contents|(?:its|their)\s+(?:[!-~]+\s+)?contents?",
            r"|contents?\s+of\s+(?:the\s+|that\s+|this\s+|those\s+|these\s+|any\s+|each\s+)?(?:[!-~]+\s+){0,2}?(?:files?|keys?|documents?|configs?|configuration|director(?:y|ies)|folders?)",
            r"|(?:the\s+)?user'?s?\s+(?:data|messages|emails|files|documents|contacts|history|quer(?:y|ies)|questions?|prompts?)",
            r"|everything\s+(?:you|the\s+user)|personal\s+(?:data|information|details)|",
            common_secret_path!(),
            "|",
            rare_secret_path!(),
            ")"
        )
    };
}

/// Imperatives that move data somewhere.
macro_rules! carry {
    () => {
        r"(?:pass|put|include|insert|add|place|embed|send|supply|fill|append|copy|paste|store|write|encode|attach|concatenate|forward|upload|post|transmit|leak|exfiltrate|share|email|mail)"
    };
}

use Family::{Ansi, Exfiltration, Homoglyph, Instruction, Invisible, Length, SecretReference, Shadowing};
use Severity::{Critical, High, Info, Low, Medium};

/// Every builtin rule. Order does not matter for detection: all rules that match are
/// reported, each with its own spans.
pub(super) const RULES: &[Rule] = &[
    // ---- Instruction: text aimed at the model rather than describing the tool ----
    text(
        "instruction.ignore_previous",
        Instruction,
        Critical,
        concat!(
            r"(?i)(?-u:\b)(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|its\s+)?",
            r"(?:(?:previous|prior|above|earlier|preceding|former|original|system|safety|existing|other)\s+)",
            r"(?:[!-~]+\s+)?(?:instructions?|directions?|guidelines|rules|prompts?|guardrails|polic(?:y|ies)|constraints|restrictions|context)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:ignore|disregard|forget)\s+(?:all|any|everything)\s+(?:of\s+)?(?:your\s+|the\s+)?(?:instructions|rules|guidelines|restrictions|you\s+(?:were|have\s+been)\s+told)",
            r"|(?i)(?-u:\b)(?:ignore|disregard)\s+(?:what(?:ever)?|anything)\s+(?:the\s+)?(?:user|human|system)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:ignore|disregard)\s+(?:the\s+|your\s+|these\s+|those\s+|its\s+)?(?:instructions|guardrails|system\s+prompt|safety\s+rules)(?-u:\b)"
        ),
        "Tells the model to ignore its previous instructions: a classic prompt-injection payload that has no place in a tool description.",
    ),
    text(
        "instruction.conceal_from_user",
        Instruction,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:do\s+not|don'?t|never|must\s+not|should\s+not|shouldn'?t|avoid)\s+(?:[!-~]+\s+){0,2}?",
            r"(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|notify(?:ing)?|alert(?:ing)?|warn(?:ing)?|disclose|disclosing|reveal(?:ing)?|show(?:ing)?|let(?:ting)?)",
            r"(?:\s+[!-~]+){0,5}?\s+(?:the\s+)?(?:user|human|operator|customer|requester)s?(?:'s)?(?-u:\b)",
            r"|(?i)(?-u:\b)without\s+(?:[!-~]+\s+)?(?:telling|informing|notifying|alerting|warning|letting)\s+(?:the\s+)?(?:user|human|operator)",
            r"|(?i)(?-u:\b)(?:keep|hide|conceal)\s+(?:[!-~]+\s+){0,3}?(?:secret|hidden|confidential|private)?\s*from\s+(?:the\s+)?(?:user|human|operator)",
            r"|(?i)(?-u:\b)(?:the\s+)?(?:user|human)\s+(?:must|should|will|does|do|need)\s*(?:not|n't)\s+(?:[!-~]+\s+)?(?:know|see|notice|be\s+(?:told|informed|aware))",
            r"|(?i)(?-u:\b)(?:the\s+)?(?:user|human)\s+(?:cannot|can'?t|won'?t|will\s+not)\s+see\s+(?:this|these|the\s+following)"
        ),
        "Asks the model to hide what it does from the user, which only makes sense if the action is one the user would refuse.",
    ),
    text(
        "instruction.chat_template",
        Instruction,
        High,
        concat!(
            r"(?i)<\s*/?\s*(?:important|system|instructions?|admin|secret|hidden|override|assistant_?note|sys)\s*>",
            r"|\[/?INST\]|<\|(?:im_start|im_end|system|user|assistant|begin_of_text|end_of_text|start_header_id|end_header_id|eot_id)\|>",
            r"|<<\s*/?SYS\s*>>|(?m:^\s*#{2,}\s*(?i:system|instructions?)\s*:)"
        ),
        "Contains markup that imitates a chat template or a system block, used to make injected text look like it comes from the system.",
    ),
    text(
        "instruction.note_to_model",
        Instruction,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:note|message|instructions?|reminder|hint|memo|directive|attention)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?",
            r"(?:ai|llm|model|assistant|agent|claude|gpt|chatbot|copilot|language\s+model)s?(?-u:\b)",
            r"|(?i)(?-u:\b)(?:dear|hey|attention)\s+(?:ai|llm|model|assistant|agent|claude|chatgpt|gpt)(?-u:\b)"
        ),
        "Addresses the model directly (\"note to the assistant\"): tool metadata should describe the tool, not talk to the model.",
    ),
    text(
        "instruction.as_an_ai",
        Instruction,
        Medium,
        r"(?i)(?-u:\b)as\s+an?\s+(?:ai|llm|language\s+model|ai\s+assistant|assistant|agent|ai\s+agent)\s*,?\s+you\s+(?:must|should|will|are|need|have|shall)(?-u:\b)",
        "Tells the model what it must do \"as an AI\", a framing used to override its own instructions.",
    ),
    text(
        "instruction.role_override",
        Instruction,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:new|updated|real|actual|true|revised|hidden)\s+(?:system\s+)?(?:instructions|prompt|directives?)\s*:",
            r"|(?i)(?-u:\b)system\s+(?:prompt|message|instructions?)\s+(?:override|update|change)",
            r"|(?i)(?-u:\b)you\s+are\s+now\s+(?:in\s+)?(?:developer|dan|admin|god|debug|jailbreak|unrestricted|maintenance)\s+mode",
            r"|(?i)(?-u:\b)(?:enter|enable|activate|switch\s+to)\s+(?:developer|dan|admin|god|jailbreak|unrestricted)\s+mode",
            r"|(?i)(?-u:\b)from\s+now\s+on\s*,?\s+(?:you|the\s+(?:assistant|model|ai))\s+(?:must|should|will|are)"
        ),
        "Tries to replace the model's role or instructions (\"new system instructions\", \"you are now in developer mode\").",
    ),
    text(
        "instruction.must_first",
        Instruction,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:you|the\s+(?:assistant|model|ai|llm|agent))\s+(?:must|should|need\s+to|have\s+to|are\s+required\s+to|is\s+required\s+to)\s+(?:always\s+|first\s+|also\s+|immediately\s+)+",
            r"(?:read|cat|open|call|run|execute|invoke|send|include|fetch|pass|upload|collect|copy|forward|append|add|use\s+the\s+\S+\s+tool)(?-u:\b)",
            r"|(?i)(?-u:\b)before\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+(?:[!-~]+\s+)?(?:tool|function)\s*,?\s+(?:[!-~]+\s+){0,4}?",
            r"(?:read|cat|open|send|include|upload|collect|append|pass|fetch\s+the\s+contents)(?-u:\b)"
        ),
        "An imperative aimed at the model that chains another action (read a file, send something) before or alongside the tool's own work.",
    ),
    text(
        "instruction.directive",
        Instruction,
        Low,
        concat!(
            r"(?i)(?-u:\b)(?:you|the\s+(?:assistant|model|ai|llm|agent))\s+(?:must|should|need\s+to|have\s+to)\s+(?:always|first|never)(?-u:\b)",
            r"|(?i)(?-u:\b)before\s+(?:using|calling|invoking)\s+this\s+tool(?-u:\b)",
            r"|(?i)(?-u:\b)otherwise\s+the\s+(?:tool|system|application|server|assistant)\s+will\s+(?:crash|fail|break|stop)"
        ),
        "A directive aimed at the model; common in honest descriptions too, so it is recorded but does not block on its own.",
    ),
    text(
        "instruction.skip_confirmation",
        Instruction,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:do\s+not|don'?t|never|no\s+need\s+to)\s+(?:ask|request|wait\s+for|seek)\s+(?:the\s+user\s+)?(?:for\s+)?",
            r"(?:confirmation|permission|approval|consent)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:automatically|silently)\s+(?:approve|accept|confirm|grant)\s+(?:all|any|every)(?-u:\b)"
        ),
        "Tells the model to act without the user's confirmation, defeating the human in the loop.",
    ),
    // ---- Secret references: credentials the model is steered towards ----
    text(
        "secret.exfiltrate_path",
        SecretReference,
        Critical,
        concat!(
            r"(?i)(?-u:\b)",
            carry!(),
            r"\s+(?:[!-~]+\s+){0,8}?[!-~]{0,48}?",
            common_secret_path!(),
            "|(?i)(?-u:\\b)",
            carry!(),
            r"\s+(?:[!-~]+\s+){0,8}?[!-~]{0,48}?",
            rare_secret_path!()
        ),
        "Asks for a credential file or key to be included, passed or sent somewhere: the payload of a credential-stealing tool.",
    ),
    text(
        "secret.read_path",
        SecretReference,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:read|cat|open|print|dump|output|retrieve|grab|collect|extract|fetch|get|obtain|load)\s+(?:[!-~]+\s+){0,6}?[!-~]{0,48}?",
            common_secret_path!(),
            r"|(?i)(?-u:\b)(?:read|cat|open|print|dump|output|retrieve|grab|collect|extract|fetch|get|obtain|load)\s+(?:[!-~]+\s+){0,6}?[!-~]{0,48}?",
            rare_secret_path!(),
            r"|(?i)(?-u:\b)contents?\s+of\s+(?:the\s+|your\s+|their\s+)?(?:[!-~]+\s+){0,2}?[!-~]{0,48}?",
            common_secret_path!(),
            r"|(?i)(?-u:\b)contents?\s+of\s+(?:the\s+|your\s+|their\s+)?(?:[!-~]+\s+){0,2}?[!-~]{0,48}?",
            rare_secret_path!()
        ),
        "An imperative to read a credential file or key store (SSH keys, cloud credentials, wallets, browser logins).",
    ),
    text(
        "secret.harvest",
        SecretReference,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:include|send|pass|upload|attach|post|forward|append|paste|copy|embed|exfiltrate|leak|collect|gather|extract|dump|harvest|read)\s+",
            r"(?:[!-~]+\s+){0,3}?(?:all|any|every|each)\s+(?:of\s+)?(?:the\s+|your\s+|their\s+|user'?s?\s+)?(?:[!-~]+\s+){0,2}?",
            r"(?:api[\s_-]?keys|credentials|secrets|passwords|tokens|private\s+keys|environment\s+variables|env\s+vars|cookies|ssh\s+keys|seed\s+phrases)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:include|send|pass|upload|attach|post|forward|append|paste|copy|embed|exfiltrate|leak|collect|harvest)\s+(?:[!-~]+\s+){0,3}?",
            r"(?:the\s+)?(?:user'?s?|their|customer'?s?)\s+(?:own\s+)?(?:[!-~]+\s+)?(?:api[\s_-]?keys?|passwords?|credentials|private\s+keys?|secret\s+keys?|access\s+tokens?|session\s+(?:cookies?|tokens?)|seed\s+phrase|recovery\s+phrase|2fa\s+codes?|otp\s+codes?)(?-u:\b)"
        ),
        "Asks for all secrets, tokens or the user's credentials to be gathered or passed on.",
    ),
    text(
        "secret.of_the_user",
        SecretReference,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:api[\s_-]?keys?|passwords?|credentials|private\s+keys?|access\s+tokens?|session\s+cookies?|seed\s+phrase)\s+",
            r"(?:of|belonging\s+to)\s+the\s+(?:current\s+)?user(?-u:\b)",
            r"|(?i)(?-u:\b)(?:printenv|os\.environ|/proc/self/environ)(?-u:\b)|(?i)(?-u:\b)process\.env(?:\s|$|[^.\w])"
        ),
        "Refers to the user's own secrets or to the whole process environment, which a tool's description has no need to.",
    ),
    text(
        "secret.rare_store",
        SecretReference,
        Medium,
        concat!(r"(?i)", rare_secret_path!()),
        "Names a credential store (shadow file, wallet, browser login database, another client's MCP config) that honest tools do not mention.",
    ),
    text(
        "secret.path_mention",
        SecretReference,
        Low,
        concat!(r"(?i)", common_secret_path!()),
        "Mentions a credential file or key; honest SSH, cloud and dotenv tools do, so this alone does not block.",
    ),
    // ---- Exfiltration: data routed out through parameters, URLs or copies ----
    text(
        "exfiltration.via_parameter",
        Exfiltration,
        High,
        concat!(
            r"(?i)(?-u:\b)",
            carry!(),
            r"\s+(?:[!-~]+\s+){0,6}?",
            sensitive!(),
            r"(?:\s+[!-~]+){0,8}?\s+(?:in|into|as|inside|within|via|through|to|using|under)\s+(?:the\s+|a\s+|this\s+|an\s+)?(?:[!-~]+\s+){0,3}?",
            r"(?:parameter|argument|field|param|arg|property|variable|input|key)s?(?-u:\b)"
        ),
        "Asks for conversation, context or secrets to be smuggled out in a tool argument.",
    ),
    text(
        "exfiltration.send_sensitive",
        Exfiltration,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:send|post|upload|forward|transmit|email|mail|share|leak|exfiltrate|report|sync|copy)\s+(?:[!-~]+\s+){0,4}?",
            sensitive!(),
            r"(?:\s+[!-~]+){0,6}?\s+to(?-u:\b)"
        ),
        "Asks for conversation, context or secrets to be sent to a destination.",
    ),
    text(
        "exfiltration.send_to_url",
        Exfiltration,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:send|post|upload|forward|transmit|submit|report|copy|mirror|exfiltrate|leak|beacon)\s+",
            r"(?:it|them|this|that|these|those|everything|all|a\s+copy|copies|(?:the|its|their|all)\s+(?:[!-~]+\s+)?(?:result|results|output|response|data|contents?|files?|keys?|tokens?|conversation|history|summary|details|messages?|answers?))",
            r"(?:\s+[!-~]+){0,6}?\s+(?:to\s+)?[`'(\x22<]?(?:https?://|www\.|[\w.+\-]+@[\w\-]+\.[\w.]+)"
        ),
        "Asks for results or data to be sent to a URL or e-mail address named in the description.",
    ),
    text(
        "exfiltration.known_collector",
        Exfiltration,
        High,
        r"(?i)(?:webhook\.site|requestbin|pipedream\.net|ngrok(?:-free)?\.(?:io|app|dev)|burpcollaborator|interact\.sh|oast\.(?:fun|me|pro|live|site|online)|hookbin|beeceptor\.com|requestcatcher\.com)",
        "Names a request-collection service used to receive exfiltrated data.",
    ),
    text(
        "exfiltration.covert_copy",
        Exfiltration,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:secretly|silently|quietly|covertly|discreetly|invisibly)\s+(?:[!-~]+\s+){0,4}?",
            r"(?:bcc|cc|forward|send|copy|redirect|mirror|upload|post|include|add|append|exfiltrate|transmit|log|record)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:always|also|additionally)\s+(?:[!-~]+\s+){0,2}?bcc(?-u:\b)",
            r"|(?i)(?-u:\b)(?:redirect|reroute|divert)\s+(?:all\s+)?(?:[!-~]+\s+){0,3}?(?:emails?|messages?|payments?|transfers?|funds|invoices?)(?-u:\b)"
        ),
        "Asks for a hidden copy or redirection (silent BCC, quiet forward) of the user's messages or payments.",
    ),
    text(
        "exfiltration.append_to_url",
        Exfiltration,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:append|add|attach|encode|include|put|insert|embed)\s+(?:[!-~]+\s+){0,8}?(?:to|in|into|as)\s+(?:the\s+|a\s+|an\s+)?",
            r"(?:url|link|query\s+string|query\s+param(?:eter)?s?|subdomain|hostname|image\s+(?:url|link)|request\s+url)(?-u:\b)"
        ),
        "Asks for data to be put into a URL or link, a way to leak it through a request the client makes.",
    ),
    text(
        "exfiltration.image_beacon",
        Exfiltration,
        High,
        concat!(
            r"!\[[^\]\n]*\]\(\s*https?://[^)\s]*(?:\{|\$|%7B|<|\[)",
            r"|(?i)<img\s[^>]*src\s*=\s*[\x22']?https?://[^\x22'\s>]*(?:\{|\$|%7B|<|\[)"
        ),
        "A markdown or HTML image whose URL carries a placeholder to fill in: rendering it sends the data to that host.",
    ),
    text(
        "exfiltration.image_query",
        Exfiltration,
        Low,
        r"!\[[^\]\n]*\]\(\s*https?://[^)\s]*\?[^)\s]*=",
        "A markdown image with a query string; harmless for badges, a leak channel when the model fills the query.",
    ),
    // ---- Shadowing: instructions about other tools and servers ----
    text(
        "shadowing.other_tools",
        Shadowing,
        High,
        concat!(
            r"(?i)(?-u:\b)(?:when(?:ever)?|if|before|after)\s+(?:[!-~]+\s+){0,2}?(?:the\s+|any\s+|an?\s+)?(?:other|another|different|external|third[\s-]party)\s+(?:[!-~]+\s+){0,2}?",
            r"(?:tools?|servers?|functions?|plugins?|extensions?|integrations?)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:other|another)\s+(?:mcp\s+)?servers?'?s?\s+(?:[!-~]+\s+)?tools?(?-u:\b)",
            r"|(?i)(?-u:\b)tools?\s+(?:of|from|on|provided\s+by)\s+(?:an?\s+)?(?:other|another|different)\s+(?:mcp\s+)?servers?(?-u:\b)",
            r"|(?i)(?-u:\b)(?:all|any|every)\s+other\s+tools?\s+(?:must|should|will)(?-u:\b)"
        ),
        "Gives instructions about other tools or servers, which lets one server change how another server's tools are used.",
    ),
    text(
        "shadowing.override",
        Shadowing,
        High,
        concat!(
            r"(?i)(?-u:\b)this\s+tool\s+(?:overrides|replaces|supersedes|takes\s+precedence\s+over|has\s+(?:priority|precedence)\s+over|must\s+(?:always\s+)?be\s+used\s+instead\s+of)",
            r"|(?i)(?-u:\b)(?:change|modify|alter|rewrite|replace)\s+(?:the\s+)?(?:behaviou?r|recipient|destination|arguments?|parameters?|address|amount)\s+(?:of|for|in)\s+(?:the\s+|any\s+|all\s+|every\s+)?(?:other\s+)?(?:[!-~]+\s+){0,2}?(?:tools?|calls?|emails?|messages?|transfers?)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:the\s+)?(?:recipient|destination|to\s+address|account)s?(?:\s+(?:of|for|in)\s+(?:[!-~]+\s+){0,3}?\S+)?\s+(?:must|should|has\s+to)\s+(?:always\s+)?be\s+(?:changed|set|replaced|overridden)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:never|do\s+not|don'?t)\s+(?:use|call|invoke)\s+(?:the\s+)?(?:[!-~]+\s+)?(?:other|original|built-?in|default)\s+(?:[!-~]+\s+)?tools?(?-u:\b)"
        ),
        "Claims to override or redirect other tools (\"this tool replaces …\", \"change the recipient of all emails\").",
    ),
    text(
        "shadowing.future_calls",
        Shadowing,
        Medium,
        concat!(
            r"(?i)(?-u:\b)(?:for|in|on|during)\s+(?:all|any|every|each)\s+(?:future|subsequent|later|following|remaining)\s+",
            r"(?:tool\s+calls?|calls?\s+to|messages?|emails?|responses?|conversations?|sessions?|replies|answers|interactions?)(?-u:\b)",
            r"|(?i)(?-u:\b)(?:henceforth|going\s+forward|from\s+now\s+on)\s*,?\s+(?:always|every|all|whenever|when)(?-u:\b)"
        ),
        "Sets a standing rule for later calls and messages, beyond the tool's own invocation.",
    ),
    text(
        "shadowing.instead_of",
        Shadowing,
        Medium,
        r"(?i)(?-u:\b)(?:always\s+)?(?:use|call|invoke|prefer)\s+this\s+(?:tool\s+)?(?:[!-~]+\s+)?instead\s+of\s+(?:using\s+|calling\s+)?(?:the\s+|any\s+)?(?:[!-~]+\s+)?(?:other|original|built-?in|default|standard|[!-~]*_[!-~]*)",
        "Steers the model away from another tool towards this one.",
    ),
    // ---- Invisible: characters a reviewer does not see ----
    text(
        "invisible.tag_characters",
        Invisible,
        Critical,
        r"[\x{E0000}-\x{E007F}]+",
        "Unicode tag characters are invisible but read by the model; they spell hidden text (decoded alongside).",
    ),
    text(
        "invisible.bidi_control",
        Invisible,
        High,
        r"[\x{202A}-\x{202E}\x{2066}-\x{2069}]+",
        "Bidirectional overrides or isolates reorder how text is displayed, so what a reviewer reads differs from what the model reads.",
    ),
    text(
        "invisible.zero_width_in_word",
        Invisible,
        High,
        r"[\p{Latin}\p{Greek}\p{Cyrillic}\p{Nd}][\x{200B}-\x{200D}\x{2060}\x{FEFF}\x{180E}]+[\p{Latin}\p{Greek}\p{Cyrillic}\p{Nd}]",
        "A zero-width character inside a word, which splits it for filters while looking whole to a reviewer.",
    ),
    text(
        "invisible.zero_width",
        Invisible,
        Medium,
        r"[\x{200B}\x{2060}\x{180E}\x{FEFF}]+",
        "A zero-width character: invisible to a reviewer, present for the model.",
    ),
    text(
        "invisible.variation_selectors",
        Invisible,
        High,
        r"[\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]{2,}|[\x{E0100}-\x{E01EF}]",
        "A run of variation selectors: invisible code points that can encode hidden bytes (decoded alongside).",
    ),
    text(
        "invisible.format_character",
        Invisible,
        Medium,
        r"[[\p{Cf}\x{115F}\x{1160}\x{3164}\x{FFA0}]--[\x{AD}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}\x{2066}-\x{2069}\x{FEFF}\x{E0000}-\x{E007F}\x{180E}\x{600}-\x{605}\x{6DD}\x{70F}\x{8E2}\x{110BD}\x{110CD}]]+",
        "An invisible formatting or filler character with no business in tool metadata.",
    ),
    text(
        "invisible.private_use",
        Invisible,
        Medium,
        r"\p{Co}+",
        "A private-use character: it renders as nothing or as a box, and its meaning is whatever the sender intends.",
    ),
    text(
        "invisible.direction_mark",
        Invisible,
        Low,
        r"[\x{200E}\x{200F}\x{61C}]+",
        "A direction mark: legitimate in right-to-left text, invisible everywhere.",
    ),
    text(
        "invisible.soft_hyphen",
        Invisible,
        Low,
        r"\x{AD}+",
        "A soft hyphen: invisible unless a line breaks there; it can split words for filters.",
    ),
    // ---- Ansi: terminal control ----
    text(
        "ansi.hiding_sequence",
        Ansi,
        Critical,
        r"\x1B\[[0-9;?]{0,32}(?:8m|[ABCDEFGHJKSTfsu])|\x{9B}[0-9;?]{0,32}(?:8m|[ABCDEFGHJKSTfsu])",
        "A terminal escape that conceals text, moves the cursor or erases lines, so a terminal shows something other than what the model reads.",
    ),
    text(
        "ansi.escape_sequence",
        Ansi,
        High,
        r"\x1B(?:\[[0-?]{0,32}[ -/]{0,8}[@-~]?|\][^\x07\x1B]*(?:\x07|\x1B\\)?|[P^_X][^\x1B]*(?:\x1B\\)?|[ -~]?)",
        "A terminal escape sequence (CSI/OSC): it styles, hides or rewrites text when shown in a terminal.",
    ),
    text(
        "ansi.c1_control",
        Ansi,
        High,
        r"[\x{80}-\x{9F}]+",
        "A C1 control character, which terminals may interpret as an escape sequence.",
    ),
    text(
        "ansi.backspace",
        Ansi,
        High,
        r"\x08+",
        "Backspaces, which overwrite text already shown so a reviewer sees something else.",
    ),
    text(
        "ansi.control_character",
        Ansi,
        Medium,
        r"[\x00-\x07\x0B\x0C\x0E-\x1A\x1C-\x1F\x7F]+",
        "A control character other than tab and newline, which has no place in tool metadata.",
    ),
    text(
        "ansi.bare_carriage_return",
        Ansi,
        Low,
        r"\r+[^\r\n]",
        "A carriage return not followed by a newline: in a terminal the text after it overwrites the line.",
    ),
    // ---- Homoglyph: names that look like other names ----
    name(
        "homoglyph.mixed_script",
        Homoglyph,
        High,
        r"\p{Latin}.*[\p{Cyrillic}\p{Greek}\p{Armenian}\p{Cherokee}]|[\p{Cyrillic}\p{Greek}\p{Armenian}\p{Cherokee}].*\p{Latin}",
        "A name mixing Latin letters with Cyrillic, Greek or other lookalike scripts, the shape of an impersonated name.",
    ),
    name(
        "homoglyph.compatibility_form",
        Homoglyph,
        High,
        r"[\x{FF01}-\x{FF5E}\x{1D400}-\x{1D7FF}\x{2100}-\x{214F}\x{1D00}-\x{1D2B}\x{0131}\x{0251}\x{0261}]",
        "A name containing fullwidth, mathematical or small-capital letters that look like plain ASCII.",
    ),
    name(
        "homoglyph.non_ascii_name",
        Homoglyph,
        Low,
        r"[^\x00-\x7F]",
        "A name with non-ASCII characters; MCP names are meant to be ASCII, though a name in one other script is not itself deceptive.",
    ),
    text(
        "homoglyph.mixed_script_word",
        Homoglyph,
        Medium,
        concat!(
            r"[A-Za-z][\p{Cyrillic}\x{391}-\x{3A9}\x{3B1}\x{3B5}\x{3B9}\x{3BA}\x{3BD}\x{3BF}\x{3C1}\x{3C4}\x{3C5}\x{3C7}]",
            r"|[\p{Cyrillic}\x{391}-\x{3A9}\x{3B1}\x{3B5}\x{3B9}\x{3BA}\x{3BD}\x{3BF}\x{3C1}\x{3C4}\x{3C5}\x{3C7}][A-Za-z]"
        ),
        "A word that mixes Latin letters with Cyrillic or Greek lookalikes, which defeats keyword filters while reading normally.",
    ),
    check(
        check::WHOLE_SCRIPT,
        Homoglyph,
        High,
        "A name written entirely in lookalike letters from another script, so it reads as a different ASCII name.",
    ),
    // ---- Length: sizes that hide content ----
    text(
        "length.whitespace_padding",
        Length,
        Medium,
        r"[ \t\r\n\x{A0}\x{2000}-\x{200A}\x{3000}]{101,}",
        "More than 100 blank characters in a row, which pushes the text after them out of a reviewer's view.",
    ),
    check(
        check::DESCRIPTION_LONG,
        Length,
        Medium,
        "A string over 2,000 characters: long enough to bury instructions a reviewer will not read.",
    ),
    check(
        check::DESCRIPTION_HUGE,
        Length,
        High,
        "A string over 10,000 characters, far beyond what describing a tool needs.",
    ),
    check(
        check::NAME_LONG,
        Length,
        Medium,
        "A name over 64 characters; names that long are used to carry text rather than to name.",
    ),
    check(
        check::TOO_LARGE,
        Length,
        High,
        "The definition's strings exceed the scan budget; the rest was not inspected.",
    ),
    check(
        check::TOO_DEEP,
        Length,
        Medium,
        "The definition nests deeper than the scan limit; deeper values were not inspected.",
    ),
    check(check::TOO_MANY, Length, Info, "More findings than the report keeps; the rest were dropped."),
];
