//! Who is calling, and (as the policy layer grows) what they may do.
//!
//! This crate does no I/O: it holds the [`Principal`] that every request through Warden carries,
//! so that decisions about it can be tested and benchmarked alone.

mod principal;

pub use principal::{Principal, PrincipalClass};
