//! The decisions Warden makes about a request, without I/O.
//!
//! - [`Principal`]: who is calling.
//! - [`PolicyEngine`]: Cedar policies, validated against Warden's schema ([`SCHEMA_TEXT`]), that
//!   decide each [`Query`] with a [`Decision`] naming the policies behind it.
//! - [`ToolClass`]: how much harm a tool can do.
//! - [`paths`]: path arguments normalized for confinement.
//! - [`limits`]: token buckets and daily budgets per principal and per tool.
//! - [`clock`]: time, injected.
//!
//! Nothing here reads files, the network or the system clock directly, so every decision can be
//! tested and benchmarked alone. Fetching keys, resolving names and loading files is the
//! gateway's work.

pub mod clock;
pub mod limits;
pub mod paths;
pub mod rules_file;

mod class;
mod engine;
mod principal;
mod query;
mod slice;

pub use class::ToolClass;
pub use engine::{
    Decision, ID, PolicyEngine, PolicyError, PolicyProblem, PolicySource, REASON, REQUIRE_APPROVAL, SCHEMA_TEXT,
    Verdict, schema,
};
pub use principal::{Authority, Principal, PrincipalClass};
pub use query::{Action, CallFacts, Item, Query, ServerFacts, ToolFacts, principal_type};
