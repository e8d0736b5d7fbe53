//! The gateway: fronts that speak MCP to clients, the request path every message takes, and the
//! connections to the servers behind it.
//!
//! Read [`dispatch`] for the request path, [`forward`] for how calls reach servers and how the two
//! protocol eras meet, and [`upstreams`] for how connections are shared between clients.

pub mod approve;
pub mod audit;
pub mod authenticate;
pub mod authorize;
pub mod client;
pub use warden_policy::clock;
pub mod config;
pub mod contain;
pub mod dispatch;
pub mod forward;
pub mod front;
pub mod gateway;
pub mod hub;
pub mod integrity;
pub mod inventory;
pub mod levels;
pub mod limit;
pub mod lists;
pub mod metrics;
pub mod names;
pub mod parked;
pub mod quarantine;
pub mod routing;
pub mod sanitize;
pub mod session;
pub mod taint;
pub mod telemetry;
pub mod upstreams;

pub use gateway::Gateway;
