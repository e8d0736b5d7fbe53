//! The catalogue of MCP methods: who sends each, in which era it exists, and what it addresses.

use crate::version::Era;

/// Who sends a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the client to the server.
    ClientToServer,
    /// Sent by the server to the client.
    ServerToClient,
    /// Sent by either side.
    Both,
}

/// Which eras a method exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eras {
    /// Legacy versions only.
    Legacy,
    /// Modern versions only.
    Modern,
    /// Both eras.
    Both,
}

impl Eras {
    /// Whether the method exists in `era`.
    pub fn includes(self, era: Era) -> bool {
        matches!((self, era), (Eras::Both, _) | (Eras::Legacy, Era::Legacy) | (Eras::Modern, Era::Modern))
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// The method name on the wire.
    pub name: &'static str,
    /// Who sends it.
    pub direction: Direction,
    /// Whether it is a notification (no response).
    pub notification: bool,
    /// Eras in which it exists.
    pub eras: Eras,
    /// The `params` member that names what the call addresses (mirrored into `Mcp-Name`).
    pub name_param: Option<&'static str>,
    /// Whether a modern server may answer it with `input_required`.
    pub input_required: bool,
}

const fn req(name: &'static str, direction: Direction, eras: Eras) -> MethodInfo {
    MethodInfo { name, direction, notification: false, eras, name_param: None, input_required: false }
}

const fn named(name: &'static str, param: &'static str) -> MethodInfo {
    MethodInfo {
        name,
        direction: Direction::ClientToServer,
        notification: false,
        eras: Eras::Both,
        name_param: Some(param),
        input_required: true,
    }
}

const fn note(name: &'static str, direction: Direction, eras: Eras) -> MethodInfo {
    MethodInfo { name, direction, notification: true, eras, name_param: None, input_required: false }
}

use Direction::{Both as Either, ClientToServer as C2S, ServerToClient as S2C};

/// Every method Warden knows.
pub const CATALOGUE: &[MethodInfo] = &[
    req("initialize", C2S, Eras::Legacy),
    note("notifications/initialized", C2S, Eras::Legacy),
    req("ping", Either, Eras::Legacy),
    req("server/discover", C2S, Eras::Modern),
    req("tools/list", C2S, Eras::Both),
    named("tools/call", "name"),
    req("prompts/list", C2S, Eras::Both),
    named("prompts/get", "name"),
    req("resources/list", C2S, Eras::Both),
    req("resources/templates/list", C2S, Eras::Both),
    named("resources/read", "uri"),
    req("resources/subscribe", C2S, Eras::Legacy),
    req("resources/unsubscribe", C2S, Eras::Legacy),
    req("subscriptions/listen", C2S, Eras::Modern),
    req("completion/complete", C2S, Eras::Both),
    req("logging/setLevel", C2S, Eras::Legacy),
    req("sampling/createMessage", S2C, Eras::Both),
    req("elicitation/create", S2C, Eras::Both),
    req("roots/list", S2C, Eras::Both),
    note("notifications/cancelled", Either, Eras::Both),
    note("notifications/progress", Either, Eras::Both),
    note("notifications/message", S2C, Eras::Both),
    note("notifications/tools/list_changed", S2C, Eras::Both),
    note("notifications/prompts/list_changed", S2C, Eras::Both),
    note("notifications/resources/list_changed", S2C, Eras::Both),
    note("notifications/resources/updated", S2C, Eras::Both),
    note("notifications/roots/list_changed", C2S, Eras::Legacy),
    note("notifications/elicitation/complete", S2C, Eras::Legacy),
    note("notifications/subscriptions/acknowledged", S2C, Eras::Modern),
];

/// Looks a method up by name.
pub fn lookup(name: &str) -> Option<&'static MethodInfo> {
    CATALOGUE.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let call = lookup("tools/call").unwrap();
        assert_eq!(call.name_param, Some("name"));
        assert!(call.input_required);
        assert!(lookup("initialize").unwrap().eras.includes(Era::Legacy));
        assert!(!lookup("initialize").unwrap().eras.includes(Era::Modern));
        assert!(lookup("nope").is_none());
        let mut names: Vec<_> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}
