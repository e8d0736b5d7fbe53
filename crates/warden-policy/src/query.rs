//! What a decision is asked about, and its translation into a Cedar request.
//!
//! Entities and context are built here exactly as `warden.cedarschema` declares them; a test
//! checks every shape against the schema, so requests need no validation on the hot path.

use crate::class::ToolClass;
use crate::principal::{Principal, PrincipalClass};
use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression};
use serde_json::{Map, Value};
use std::str::FromStr;
use std::sync::OnceLock;

/// What the principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `tools/call`.
    CallTool,
    /// `prompts/get` (and completions of a prompt's arguments).
    GetPrompt,
    /// `resources/read`, subscriptions, and completions of a template's arguments.
    ReadResource,
    /// A server's `sampling/createMessage` to the client.
    Sample,
    /// A server's `elicitation/create` to the client.
    Elicit,
    /// A server's `roots/list` to the client.
    ListRoots,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] =
        [Action::CallTool, Action::GetPrompt, Action::ReadResource, Action::Sample, Action::Elicit, Action::ListRoots];

    /// The action's name in policies (`Action::"call_tool"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CallTool => "call_tool",
            Action::GetPrompt => "get_prompt",
            Action::ReadResource => "read_resource",
            Action::Sample => "sample",
            Action::Elicit => "elicit",
            Action::ListRoots => "list_roots",
        }
    }

    /// The action with this policy name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The action a server-to-client request needs, by method.
    pub fn for_server_request(method: &str) -> Option<Action> {
        match method {
            "sampling/createMessage" => Some(Action::Sample),
            "elicitation/create" => Some(Action::Elicit),
            "roots/list" => Some(Action::ListRoots),
            _ => None,
        }
    }
}

/// A configured server, as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// Its configured name.
    pub name: String,
    /// Whether its tool annotations are believed.
    pub trusted: bool,
}

/// A tool, as policies see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolFacts {
    /// The tool's name on its server.
    pub name: String,
    /// Its class.
    pub class: ToolClass,
    /// Whether only the admin class may reach it.
    pub admin: bool,
    /// The annotations the server declared (`readOnlyHint` and the like), if any.
    pub annotations: Option<Value>,
    /// The scopes a caller's token needs for it (configuration).
    pub scopes: Vec<String>,
}

/// The thing acted on.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A tool of the server.
    Tool(&'a ToolFacts),
    /// A prompt of the server, by name.
    Prompt(&'a str),
    /// A resource (or, with `template`, a resource template) of the server, by URI.
    Resource {
        /// The URI or URI template.
        uri: &'a str,
        /// Whether this is a template.
        template: bool,
    },
    /// The server itself (server-to-client requests).
    Server,
}

/// The context of one request.
#[derive(Debug, Clone, Default)]
pub struct CallFacts<'a> {
    /// The request's arguments (tool and prompt arguments, or a server request's params).
    pub args: Option<&'a Map<String, Value>>,
    /// Whether this decides what a list shows.
    pub listing: bool,
    /// Whether the caller's context has read untrusted content.
    pub tainted: bool,
    /// Nesting depth of the call (1 for a direct call).
    pub call_depth: u32,
    /// Wall-clock time, seconds since 1970 UTC.
    pub now_unix: i64,
    /// The client's era: `"legacy"` or `"modern"`.
    pub era: &'a str,
    /// Normalized path arguments.
    pub paths: Vec<String>,
    /// Whether every path argument is under the server's roots.
    pub paths_confined: bool,
    /// Normalized URL arguments.
    pub urls: Vec<String>,
    /// Whether every URL argument is https to public addresses only.
    pub urls_public: bool,
}

impl CallFacts<'_> {
    /// The context of a listing: no arguments, nothing to confine.
    pub fn listing(now_unix: i64, era: &str) -> CallFacts<'_> {
        CallFacts {
            listing: true,
            call_depth: 1,
            now_unix,
            era,
            paths_confined: true,
            urls_public: true,
            ..Default::default()
        }
    }
}

/// One question for the policy engine.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// To do what.
    pub action: Action,
    /// On which server.
    pub server: &'a ServerFacts,
    /// To which of its items.
    pub item: Item<'a>,
    /// With what context.
    pub call: &'a CallFacts<'a>,
}

struct Names {
    user: EntityTypeName,
    service: EntityTypeName,
    admin: EntityTypeName,
    role: EntityTypeName,
    server: EntityTypeName,
    tool: EntityTypeName,
    prompt: EntityTypeName,
    resource: EntityTypeName,
    arguments: EntityTypeName,
    actions: Vec<(Action, EntityUid)>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let t = |s: &str| EntityTypeName::from_str(s).expect("a valid entity type name");
        let action = t("Action");
        Names {
            user: t("User"),
            service: t("Service"),
            admin: t("Admin"),
            role: t("Role"),
            server: t("Server"),
            tool: t("Tool"),
            prompt: t("Prompt"),
            resource: t("Resource"),
            arguments: t("Arguments"),
            actions: Action::ALL
                .iter()
                .map(|a| (*a, EntityUid::from_type_name_and_id(action.clone(), EntityId::new(a.as_str()))))
                .collect(),
        }
    })
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn entity(
    uid: EntityUid,
    attrs: impl IntoIterator<Item = (String, RestrictedExpression)>,
    parents: impl IntoIterator<Item = EntityUid>,
) -> Result<Entity, String> {
    Entity::new_with_tags(uid, attrs, parents, []).map_err(|e| e.to_string())
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn strings<'s>(items: impl IntoIterator<Item = &'s String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(|s| string(s)))
}

fn record(pairs: Vec<(&str, RestrictedExpression)>) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_owned(), v))).map_err(|e| e.to_string())
}

/// The entity type of a principal's class.
pub fn principal_type(class: PrincipalClass) -> &'static str {
    match class {
        PrincipalClass::User => "User",
        PrincipalClass::Service => "Service",
        PrincipalClass::Admin => "Admin",
    }
}

/// A value as an argument tag: strings as they are, anything else as compact JSON.
///
/// Every argument is passed, whole: an argument left out or cut short could hide what a policy
/// forbids. The request's frame limit bounds them.
fn tag_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds the Cedar request and entities for a query; with `schema`, checks them against it.
/// Where a request sits in the entity hierarchy: what policy scopes are matched against.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub principal: EntityUid,
    pub principal_ancestors: Vec<EntityUid>,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub resource_ancestors: Vec<EntityUid>,
}

/// The placement of a query, without building anything else.
pub(crate) fn place(q: &Query<'_>) -> Placement {
    let n = names();
    let p_type = match q.principal.class {
        PrincipalClass::User => &n.user,
        PrincipalClass::Service => &n.service,
        PrincipalClass::Admin => &n.admin,
    };
    let server = uid(&n.server, &q.server.name);
    let (resource, resource_ancestors) = match q.item {
        Item::Tool(t) => (uid(&n.tool, &format!("{}/{}", q.server.name, t.name)), vec![server]),
        Item::Prompt(name) => (uid(&n.prompt, &format!("{}/{}", q.server.name, name)), vec![server]),
        Item::Resource { uri, .. } => (uid(&n.resource, uri), vec![server]),
        Item::Server => (server, vec![]),
    };
    let action = n.actions.iter().find(|(a, _)| *a == q.action).map(|(_, u)| u.clone()).unwrap_or_else(|| {
        EntityUid::from_type_name_and_id(
            EntityTypeName::from_str("Action").expect("a type name"),
            EntityId::new("none"),
        )
    });
    Placement {
        principal: uid(p_type, &q.principal.subject),
        principal_ancestors: q.principal.roles.iter().map(|r| uid(&n.role, r)).collect(),
        action,
        resource,
        resource_ancestors,
    }
}

/// The entities a query's principal and resource make: the same for every request of this
/// principal on this item, so the engine caches them.
pub(crate) fn base(q: &Query<'_>, schema: Option<&cedar_policy::Schema>) -> Result<Entities, String> {
    let n = names();
    let p = q.principal;
    let p_type = match p.class {
        PrincipalClass::User => &n.user,
        PrincipalClass::Service => &n.service,
        PrincipalClass::Admin => &n.admin,
    };
    let principal_uid = uid(p_type, &p.subject);
    let mut attrs = vec![
        ("subject".to_owned(), string(&p.subject)),
        ("roles".to_owned(), strings(&p.roles)),
        ("scopes".to_owned(), strings(&p.scopes)),
    ];
    if let Some(t) = &p.tenant {
        attrs.push(("tenant".to_owned(), string(t)));
    }
    if let Some(c) = &p.client_id {
        attrs.push(("client_id".to_owned(), string(c)));
    }
    let roles = p.roles.iter().map(|r| uid(&n.role, r));
    let principal = entity(principal_uid, attrs, roles).map_err(|e| e.to_string())?;

    let server_uid = uid(&n.server, &q.server.name);
    let server = entity(
        server_uid.clone(),
        [
            ("name".to_owned(), string(&q.server.name)),
            ("trusted".to_owned(), RestrictedExpression::new_bool(q.server.trusted)),
        ],
        [],
    )
    .map_err(|e| e.to_string())?;

    let resource = match q.item {
        Item::Tool(t) => {
            let id = format!("{}/{}", q.server.name, t.name);
            let annotations: Vec<(&str, RestrictedExpression)> = HINTS
                .iter()
                .zip(hints(t))
                .filter_map(|(h, b)| Some((*h, RestrictedExpression::new_bool(b?))))
                .collect();
            let u = uid(&n.tool, &id);
            let e = entity(
                u,
                [
                    ("name".to_owned(), string(&t.name)),
                    ("server".to_owned(), string(&q.server.name)),
                    ("class".to_owned(), string(t.class.as_str())),
                    ("admin".to_owned(), RestrictedExpression::new_bool(t.admin)),
                    ("annotations".to_owned(), record(annotations)?),
                    ("scopes".to_owned(), strings(&t.scopes)),
                ],
                [server_uid.clone()],
            )
            .map_err(|e| e.to_string())?;
            Some(e)
        }
        Item::Prompt(name) => {
            let u = uid(&n.prompt, &format!("{}/{}", q.server.name, name));
            let e = entity(
                u,
                [("name".to_owned(), string(name)), ("server".to_owned(), string(&q.server.name))],
                [server_uid.clone()],
            )
            .map_err(|e| e.to_string())?;
            Some(e)
        }
        Item::Resource { uri, template } => {
            let u = uid(&n.resource, uri);
            let e = entity(
                u,
                [
                    ("uri".to_owned(), string(uri)),
                    ("server".to_owned(), string(&q.server.name)),
                    ("template".to_owned(), RestrictedExpression::new_bool(template)),
                ],
                [server_uid.clone()],
            )
            .map_err(|e| e.to_string())?;
            Some(e)
        }
        Item::Server => None,
    };

    let no_args = Entity::new_with_tags(uid(&n.arguments, NO_ARGS_ID), [], [], []).map_err(|e| e.to_string())?;
    let mut all = vec![principal, server, no_args];
    all.extend(resource);
    Entities::from_entities(all, schema).map_err(|e| e.to_string())
}

/// The request itself and the entity holding its arguments.
/// The entity holding a request's arguments, when it has any.
pub(crate) fn arguments(q: &Query<'_>) -> Result<Option<Entity>, String> {
    let Some(args) = q.call.args.filter(|a| !a.is_empty()) else { return Ok(None) };
    let tags = args.iter().map(|(k, v)| (k.clone(), RestrictedExpression::new_string(tag_text(v))));
    let uid = uid(&names().arguments, ARGS_ID);
    Entity::new_with_tags(uid, [], [], tags).map(Some).map_err(|e| e.to_string())
}

/// Id of the arguments entity of a request with arguments.
const ARGS_ID: &str = "request";
/// Id of the (empty) arguments entity every base holds, for requests without arguments.
const NO_ARGS_ID: &str = "none";

/// What a request's context depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ContextKey {
    has_args: bool,
    flags: (bool, bool, bool, bool),
    call_depth: u32,
    now_unix: i64,
    scopes: Vec<String>,
    era: String,
    paths: Vec<String>,
    urls: Vec<String>,
}

impl ContextKey {
    pub(crate) fn of(q: &Query<'_>, has_args: bool) -> ContextKey {
        let c = q.call;
        ContextKey {
            has_args,
            flags: (c.listing, c.tainted, c.paths_confined, c.urls_public),
            call_depth: c.call_depth,
            now_unix: c.now_unix,
            scopes: q.principal.scopes.clone(),
            era: c.era.to_owned(),
            paths: c.paths.clone(),
            urls: c.urls.clone(),
        }
    }
}

/// A request's context.
pub(crate) fn context(q: &Query<'_>, has_args: bool) -> Result<Context, String> {
    let n = names();
    let c = q.call;
    let args_uid = uid(&n.arguments, if has_args { ARGS_ID } else { NO_ARGS_ID });
    let (hour, weekday) = hour_and_weekday(c.now_unix);
    Context::from_pairs([
        ("args".to_owned(), RestrictedExpression::new_entity_uid(args_uid)),
        ("listing".to_owned(), RestrictedExpression::new_bool(c.listing)),
        ("tainted".to_owned(), RestrictedExpression::new_bool(c.tainted)),
        ("call_depth".to_owned(), RestrictedExpression::new_long(i64::from(c.call_depth))),
        (
            "time".to_owned(),
            record(vec![
                ("unix", RestrictedExpression::new_long(c.now_unix)),
                ("hour", RestrictedExpression::new_long(hour)),
                ("weekday", RestrictedExpression::new_long(weekday)),
            ])?,
        ),
        ("scopes".to_owned(), strings(&q.principal.scopes)),
        ("era".to_owned(), string(c.era)),
        ("paths".to_owned(), strings(&c.paths)),
        ("paths_confined".to_owned(), RestrictedExpression::new_bool(c.paths_confined)),
        ("urls".to_owned(), strings(&c.urls)),
        ("urls_public".to_owned(), RestrictedExpression::new_bool(c.urls_public)),
    ])
    .map_err(|e| e.to_string())
}

/// The Cedar request of a placed query with its context.
pub(crate) fn request(
    at: &Placement,
    context: Context,
    schema: Option<&cedar_policy::Schema>,
) -> Result<Request, String> {
    Request::new(at.principal.clone(), at.action.clone(), at.resource.clone(), context, schema)
        .map_err(|e| e.to_string())
}

/// The whole request and its entities.
#[cfg(test)]
pub(crate) fn build(q: &Query<'_>, schema: Option<&cedar_policy::Schema>) -> Result<(Request, Entities), String> {
    let args = arguments(q)?;
    let request = request(&place(q), context(q, args.is_some())?, schema)?;
    let entities = base(q, schema)?.add_entities(args, schema).map_err(|e| e.to_string())?;
    Ok((request, entities))
}

/// What the cached base entities of a query depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BaseKey {
    principal: (PrincipalClass, String, Option<String>, Option<String>, Vec<String>, Vec<String>),
    server: (String, bool),
    item: (u8, String, Option<ToolClass>, [Option<bool>; 4], bool),
}

/// The annotations a tool entity carries.
const HINTS: [&str; 4] = ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"];

fn hints(t: &ToolFacts) -> [Option<bool>; 4] {
    HINTS.map(|h| t.annotations.as_ref().and_then(|a| a.get(h)).and_then(Value::as_bool))
}

impl BaseKey {
    pub(crate) fn of(q: &Query<'_>) -> BaseKey {
        let p = q.principal;
        let item = match q.item {
            Item::Tool(t) => (0, t.name.clone(), Some(t.class), hints(t), t.admin),
            Item::Prompt(name) => (1, name.to_owned(), None, [None; 4], false),
            Item::Resource { uri, template } => (2, uri.to_owned(), None, [None; 4], template),
            Item::Server => (3, String::new(), None, [None; 4], false),
        };
        BaseKey {
            principal: (
                p.class,
                p.subject.clone(),
                p.tenant.clone(),
                p.client_id.clone(),
                p.roles.clone(),
                p.scopes.clone(),
            ),
            server: (q.server.name.clone(), q.server.trusted),
            item,
        }
    }
}

/// Hour of day (0..23) and ISO weekday (1 = Monday .. 7 = Sunday) in UTC.
fn hour_and_weekday(unix: i64) -> (i64, i64) {
    let days = unix.div_euclid(86_400);
    let hour = unix.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (ISO 4).
    let weekday = (days + 3).rem_euclid(7) + 1;
    (hour, weekday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields() {
        assert_eq!(hour_and_weekday(0), (0, 4), "1970-01-01 00:00 was a Thursday");
        // 2026-11-21 13:30 UTC, a Saturday.
        assert_eq!(hour_and_weekday(1_795_267_800), (13, 6));
        assert_eq!(hour_and_weekday(-1), (23, 3));
    }

    #[test]
    fn every_shape_conforms_to_the_schema() {
        use crate::class::ToolClass;
        let schema = crate::engine::schema();
        let mut alice = Principal::new("alice", PrincipalClass::User);
        alice.tenant = Some("acme".into());
        alice.client_id = Some("cli".into());
        alice.roles = vec!["dev".into()];
        alice.scopes = vec!["mcp".into()];
        let server = ServerFacts { name: "files".into(), trusted: true };
        let tool = ToolFacts {
            name: "read_file".into(),
            class: ToolClass::Read,
            admin: false,
            annotations: Some(serde_json::json!({ "readOnlyHint": true, "title": "x", "openWorldHint": "no" })),
            scopes: vec![],
        };
        let args = serde_json::json!({ "path": "/srv/a", "n": 3 });
        let call = CallFacts {
            args: args.as_object(),
            call_depth: 2,
            now_unix: 1_795_267_800,
            era: "modern",
            paths: vec!["/srv/a".into()],
            paths_confined: true,
            ..Default::default()
        };
        let listing = CallFacts::listing(0, "legacy");
        let items = [
            (Action::CallTool, Item::Tool(&tool)),
            (Action::GetPrompt, Item::Prompt("p")),
            (Action::ReadResource, Item::Resource { uri: "file:///srv/a", template: false }),
            (Action::ReadResource, Item::Resource { uri: "file:///{path}", template: true }),
            (Action::Sample, Item::Server),
            (Action::Elicit, Item::Server),
            (Action::ListRoots, Item::Server),
        ];
        for class in [PrincipalClass::User, PrincipalClass::Service, PrincipalClass::Admin] {
            let mut p = alice.clone();
            p.class = class;
            let bare = Principal::new("svc", class);
            for (action, item) in items {
                for (who, facts) in [(&p, &call), (&bare, &listing)] {
                    let q = Query { principal: who, action, server: &server, item, call: facts };
                    if let Err(e) = build(&q, Some(schema)) {
                        panic!("{action:?} {item:?} by {class:?}: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn tags_are_strings_of_whole_values() {
        assert_eq!(tag_text(&Value::String("acme".into())), "acme");
        assert_eq!(tag_text(&serde_json::json!(42)), "42");
        assert_eq!(tag_text(&serde_json::json!({"a": [1, true]})), r#"{"a":[1,true]}"#);
        assert_eq!(tag_text(&Value::String("é".repeat(100_000))).len(), 200_000, "never cut");
    }
}
