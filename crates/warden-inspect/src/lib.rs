//! Pure content inspection for Warden, the security gateway for the Model Context
//! Protocol.
//!
//! This crate answers questions about content that passes through the gateway: tool
//! arguments, tool results, errors and sampling messages, as text or as JSON trees. Today
//! it holds secret redaction ([`SecretScanner`]); PII, control and invisible characters,
//! tool-poisoning rules, injection heuristics, schema checks and canonical hashing belong
//! here too.
//!
//! What it is not for: it does no I/O, keeps no state between calls, and makes no
//! decisions. Whether a finding denies a call, taints a context or is only audited is
//! decided by the guard chain in `warden-gateway` and the policy in `warden-policy`.
//! Nor is it a data-loss-prevention system against a party set on exfiltration: a secret
//! that is encoded, split or disguised on purpose passes. It catches credentials that
//! leak by accident, in the shapes they usually have.
//!
//! Every function here takes attacker-controlled input and must not panic on any of it;
//! work is linear in the input and recursion is bounded.

#![forbid(unsafe_code)]

pub mod canonical;
pub mod errors;
pub mod injection;
pub mod model;
pub mod pii;
pub mod poison;
pub mod sanitize;
pub mod secrets;

pub use errors::{ScrubbedError, scrub_error_message};
pub use injection::{Injection, InjectionScanner};
pub use pii::{PiiKind, PiiMatch, PiiScanner};
pub use poison::{DefinitionKind, Finding, PoisonScanner};
pub use sanitize::{Cleaned, clean_text};
pub use secrets::{Redactions, SecretMatch, SecretScanner};
