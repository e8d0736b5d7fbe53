//! The gateway: fronts that speak MCP to clients, the request path every message takes, and the
//! upstream connections behind it.

pub mod config;
