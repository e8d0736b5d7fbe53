//! The gateway: fronts that speak MCP to clients, the stack of guards every message passes, and
//! the connections to the servers behind it.
//!
//! Read [`stack`] for the request path and the order of the guards, [`guard`] for each guard,
//! [`catalogue`] for which methods take which path, [`resolver`] for how names reach servers, and
//! [`servers`] for how connections are kept and shared; [`notify`] for how people are told of
//! what waits for them, and [`gates`] for the detection gates evaluated while serving.

pub mod authenticate;
pub mod catalogue;
pub mod client;
pub use warden_policy::clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod front;
pub mod gates;
pub mod gateway;
pub mod guard;
pub mod headers;
pub mod hub;
pub mod import;
pub mod levels;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod peer;
pub mod resolver;
pub mod schemas;
pub mod servers;
pub mod session;
pub mod stack;
pub mod state;
pub mod telemetry;
pub mod uri;

pub use error::GatewayError;
pub use gateway::Gateway;
