//! The catalogue of what Warden serves: which MCP methods it answers, which lists servers offer,
//! and (for every method a client or server may send) the path it takes through the guards.

/// The four lists a server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`
    Tools,
    /// `prompts/list`
    Prompts,
    /// `resources/list`
    Resources,
    /// `resources/templates/list`
    Templates,
}

impl ListKind {
    /// All four.
    pub const ALL: [ListKind; 4] = [ListKind::Tools, ListKind::Prompts, ListKind::Resources, ListKind::Templates];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    /// The result member holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The server capability that offers the list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }

    /// The member that identifies an item.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
        }
    }

    /// The list a method asks for.
    pub fn from_method(method: &str) -> Option<Self> {
        ListKind::ALL.into_iter().find(|k| k.method() == method)
    }

    /// The lists a `list_changed` notification invalidates.
    pub fn changed_by(notification: &str) -> &'static [ListKind] {
        match notification {
            "notifications/tools/list_changed" => &[ListKind::Tools],
            "notifications/prompts/list_changed" => &[ListKind::Prompts],
            "notifications/resources/list_changed" => &[ListKind::Resources, ListKind::Templates],
            _ => &[],
        }
    }

    /// The `list_changed` notification for this list.
    pub fn changed_notification(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources | ListKind::Templates => "notifications/resources/list_changed",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a client's request addresses, in the calls that address one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `tools/call`
    Tool,
    /// `prompts/get`
    Prompt,
    /// `resources/read`
    Resource,
}

impl CallKind {
    /// The list its items come from.
    pub fn list(self) -> ListKind {
        match self {
            CallKind::Tool => ListKind::Tools,
            CallKind::Prompt => ListKind::Prompts,
            CallKind::Resource => ListKind::Resources,
        }
    }
}

/// The path a client's request takes through the stack. Every request method Warden serves has
/// one; a method without one is refused before any guard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `ping`: answered by the gateway.
    Ping,
    /// `server/discover`: answered by the gateway, with the servers' pinned instructions.
    Discover,
    /// A merged list.
    List(ListKind),
    /// A call of one tool or prompt, or a read of one resource.
    Call(CallKind),
    /// `completion/complete`: about a prompt's or a resource template's arguments.
    Complete,
    /// `resources/subscribe` (`true`) and `resources/unsubscribe` (`false`), legacy sessions.
    Subscribe(bool),
    /// `logging/setLevel`, legacy sessions.
    SetLevel,
    /// `subscriptions/listen`: a stream a streaming front opens through the stack's `listen`.
    Listen,
    /// `initialize`: the fronts answer it when they open a session; on a session it is refused.
    Initialize,
}

impl Route {
    /// Whether the route addresses resources by URI (what URI normalization applies to).
    pub fn addresses_uri(self) -> bool {
        matches!(self, Route::Call(CallKind::Resource) | Route::Subscribe(_))
    }
}

/// The route of a client's request method; `None` for anything Warden does not serve, which is
/// refused.
pub fn route(method: &str) -> Option<Route> {
    Some(match method {
        "ping" => Route::Ping,
        "server/discover" => Route::Discover,
        "tools/list" => Route::List(ListKind::Tools),
        "prompts/list" => Route::List(ListKind::Prompts),
        "resources/list" => Route::List(ListKind::Resources),
        "resources/templates/list" => Route::List(ListKind::Templates),
        "tools/call" => Route::Call(CallKind::Tool),
        "prompts/get" => Route::Call(CallKind::Prompt),
        "resources/read" => Route::Call(CallKind::Resource),
        "completion/complete" => Route::Complete,
        "resources/subscribe" => Route::Subscribe(true),
        "resources/unsubscribe" => Route::Subscribe(false),
        "logging/setLevel" => Route::SetLevel,
        "subscriptions/listen" => Route::Listen,
        "initialize" => Route::Initialize,
        _ => return None,
    })
}

/// What a client's notification does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNotice {
    /// `notifications/cancelled`: the client gave up on one of its requests.
    Cancelled,
    /// `notifications/initialized`: the session is ready.
    Initialized,
    /// `notifications/roots/list_changed`: passed only to connections this client owns.
    RootsChanged,
    /// `notifications/progress`: a client's progress on a request of the gateway's; not passed on.
    Progress,
}

/// The meaning of a client's notification; `None` for one Warden ignores.
pub fn client_notice(method: &str) -> Option<ClientNotice> {
    Some(match method {
        "notifications/cancelled" => ClientNotice::Cancelled,
        "notifications/initialized" => ClientNotice::Initialized,
        "notifications/roots/list_changed" => ClientNotice::RootsChanged,
        "notifications/progress" => ClientNotice::Progress,
        _ => return None,
    })
}

/// What a server's message to a client is, as the server-message guards see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `notifications/progress`: relayed to the calling client, cleaned.
    Progress,
    /// `notifications/message`: relayed to a client that asked for logs, cleaned; else logged.
    Log,
    /// A `list_changed` notification: invalidates a list, passed to the connection's audience.
    ListChanged(ListKind),
    /// `notifications/resources/updated`: passed to subscribers of the resource.
    ResourceUpdated,
    /// A notification that is never passed on (`notifications/cancelled`, elicitation completion,
    /// subscription acknowledgements): the gateway keeps its own time for what it relays.
    Dropped,
    /// `ping`: answered by the gateway itself.
    Ping,
    /// `sampling/createMessage`: a request for the client's model.
    Sampling,
    /// `elicitation/create`: a question for the client's user.
    Elicitation,
    /// `roots/list`: what the client lets the server see.
    Roots,
}

impl ServerKind {
    /// Whether it is a request (it needs an answer).
    pub fn is_request(self) -> bool {
        matches!(self, ServerKind::Ping | ServerKind::Sampling | ServerKind::Elicitation | ServerKind::Roots)
    }

    /// The client capability a request needs.
    pub fn capability(self) -> Option<&'static str> {
        match self {
            ServerKind::Sampling => Some("sampling"),
            ServerKind::Elicitation => Some("elicitation"),
            ServerKind::Roots => Some("roots"),
            _ => None,
        }
    }
}

/// The kind of a message a server sends toward a client; `None` for anything Warden does not
/// know, which is refused (requests) or dropped (notifications).
pub fn server_kind(method: &str) -> Option<ServerKind> {
    Some(match method {
        "notifications/progress" => ServerKind::Progress,
        "notifications/message" => ServerKind::Log,
        "notifications/tools/list_changed" => ServerKind::ListChanged(ListKind::Tools),
        "notifications/prompts/list_changed" => ServerKind::ListChanged(ListKind::Prompts),
        "notifications/resources/list_changed" => ServerKind::ListChanged(ListKind::Resources),
        "notifications/resources/updated" => ServerKind::ResourceUpdated,
        "notifications/cancelled"
        | "notifications/elicitation/complete"
        | "notifications/subscriptions/acknowledged" => ServerKind::Dropped,
        "ping" => ServerKind::Ping,
        "sampling/createMessage" => ServerKind::Sampling,
        "elicitation/create" => ServerKind::Elicitation,
        "roots/list" => ServerKind::Roots,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_protocol::methods::{CATALOGUE, Direction};

    /// Every method of the protocol catalogue has a path through the stack for each direction it
    /// travels: a method added there without one fails here, instead of travelling unguarded.
    #[test]
    fn every_method_of_the_catalogue_is_classified() {
        for m in CATALOGUE {
            let from_client = matches!(m.direction, Direction::ClientToServer | Direction::Both);
            let from_server = matches!(m.direction, Direction::ServerToClient | Direction::Both);
            if from_client && !m.notification {
                assert!(route(m.name).is_some(), "{} has no route through the request guards", m.name);
            }
            if from_client && m.notification {
                assert!(client_notice(m.name).is_some(), "{} from a client is not classified", m.name);
            }
            if from_server {
                let kind = server_kind(m.name);
                assert!(kind.is_some(), "{} from a server has no path through the server-message guards", m.name);
                assert_eq!(kind.is_some_and(ServerKind::is_request), !m.notification, "{}", m.name);
            }
        }
    }

    #[test]
    fn what_the_catalogue_does_not_know_is_not_classified() {
        assert_eq!(route("tools/execute"), None);
        assert_eq!(route("notifications/progress"), None, "a notification is not a request route");
        assert_eq!(server_kind("tools/call"), None, "a server cannot send a client-to-server method");
        assert_eq!(server_kind("sampling/createMessages"), None);
        assert_eq!(client_notice("notifications/message"), None);
    }
}
