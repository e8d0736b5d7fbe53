//! The wire layer of Warden: the JSON-RPC envelope, the MCP method catalogue, protocol versions and
//! eras, header value encoding and SSE framing.
//!
//! This crate decides what a frame *is*; it does not decide what is *allowed*. Everything here is
//! pure and bounded: a hostile frame yields an error value, never a panic or unbounded allocation.
//!
//! ```
//! use warden_protocol::{Limits, Message, Kind};
//! let m = Message::parse(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#, &Limits::default()).unwrap();
//! assert_eq!(m.kind(), Kind::Request);
//! assert_eq!(m.id().unwrap().raw(), "\"a\"");
//! ```

mod bounded;
pub mod envelope;
pub mod error;
pub mod header_value;
pub mod meta;
pub mod methods;
pub mod results;
pub mod sse;
pub mod typed;
pub mod version;

pub use bounded::parse_value;
pub use envelope::{Id, IdKey, Kind, Limits, Message, ParseError};
pub use error::RpcError;
pub use version::{Era, ProtocolVersion};
