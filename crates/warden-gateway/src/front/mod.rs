//! The fronts: how clients reach the gateway.
//!
//! [`http`] serves Streamable HTTP at the MCP endpoint; [`stdio`] serves one client on
//! stdin/stdout, so a desktop client can launch Warden in place of a server.

pub mod admin;
mod consent;
pub mod console;
pub mod guard;
pub mod http;
pub mod listener;
mod sse_body;
pub mod stdio;
