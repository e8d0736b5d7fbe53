//! Arguments are checked against what their server declared before anything decides on them: a
//! tool's arguments against its `inputSchema` (JSON Schema, `$ref` never fetched), a prompt's
//! against its declared arguments (strings, required ones present, no others), a completion's
//! argument against the prompt's. A mismatch is refused with the place and the rule, never the
//! value; a schema that cannot be used refuses the call.

use super::{Flow, Request, RequestGuard};
use crate::catalogue::{CallKind, Route};
use crate::schemas::Schemas;
use serde_json::{Value, json};
use std::sync::Arc;
use warden_protocol::{RpcError, error};

/// The argument-validating guard.
pub struct ValidateArgs {
    schemas: Arc<Schemas>,
}

impl ValidateArgs {
    /// The guard, compiling schemas into `schemas`.
    pub fn new(schemas: Arc<Schemas>) -> ValidateArgs {
        ValidateArgs { schemas }
    }

    fn tool(&self, request: &Request<'_>) -> Result<(), RpcError> {
        let Some(target) = &request.target else { return Ok(()) };
        let exposed = || crate::names::shown(request.addressed());
        let Some(compiled) = target.definition.as_ref().and_then(|d| d.input_schema(&self.schemas)) else {
            return Err(unusable(&exposed(), "it declares no inputSchema"));
        };
        let empty = json!({});
        let arguments = match request.arguments() {
            Value::Null => &empty,
            other => other,
        };
        match Schemas::check_with(&compiled, arguments) {
            Err(why) => {
                let exposed = exposed();
                tracing::warn!(tool = %exposed, "a tool's inputSchema cannot be used: {why}");
                Err(unusable(&exposed, "its inputSchema cannot be used"))
            }
            Ok(None) => Ok(()),
            Ok(Some(m)) => Err(RpcError::invalid_params(format!(
                "tools/call {}: the arguments do not match the tool's inputSchema at {} ({})",
                exposed(),
                m.at,
                m.keyword
            ))
            .with_data(json!({ "at": m.at, "keyword": m.keyword, "schemaPath": m.schema_path }))),
        }
    }

    fn prompt(&self, request: &Request<'_>) -> Result<(), RpcError> {
        let Some(target) = &request.target else { return Ok(()) };
        let exposed = crate::names::shown(request.addressed());
        let declared = declared_arguments(target.listed());
        let given = match request.arguments() {
            Value::Null => serde_json::Map::new(),
            Value::Object(o) => o.clone(),
            _ => return Err(RpcError::invalid_params("params.arguments must be an object")),
        };
        for (name, value) in &given {
            if !declared.iter().any(|(d, _)| d == name) {
                return Err(mismatch("prompts/get", &exposed, &pointer(name), "the prompt declares no such argument"));
            }
            if !value.is_string() {
                return Err(mismatch("prompts/get", &exposed, &pointer(name), "prompt arguments are strings"));
            }
        }
        if let Some((missing, _)) = declared.iter().find(|(name, required)| *required && !given.contains_key(name)) {
            return Err(mismatch("prompts/get", &exposed, &pointer(missing), "a required argument is missing"));
        }
        Ok(())
    }

    fn completion(&self, request: &Request<'_>) -> Result<(), RpcError> {
        let argument = request.params.get("argument");
        let name = argument.and_then(|a| a.get("name")).and_then(Value::as_str);
        let value = argument.and_then(|a| a.get("value"));
        let (Some(name), Some(Value::String(_))) = (name, value) else {
            return Err(RpcError::invalid_params("params.argument needs a string name and a string value"));
        };
        let is_prompt =
            request.params.get("ref").and_then(|r| r.get("type")).and_then(Value::as_str) == Some("ref/prompt");
        if let (true, Some(target)) = (is_prompt, &request.target)
            && !declared_arguments(target.listed()).iter().any(|(d, _)| d == name)
        {
            let exposed = crate::names::shown(request.addressed());
            return Err(mismatch(
                "completion/complete",
                &exposed,
                &pointer(name),
                "the prompt declares no such argument",
            ));
        }
        Ok(())
    }
}

/// A prompt's declared arguments: name, and whether it is required.
fn declared_arguments(prompt: &Value) -> Vec<(String, bool)> {
    let items = prompt.get("arguments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|a| {
            let name = a.get("name").and_then(Value::as_str)?;
            Some((name.to_owned(), a.get("required").and_then(Value::as_bool).unwrap_or(false)))
        })
        .collect()
}

fn pointer(name: &str) -> String {
    format!("/{}", crate::names::shown(&name.replace('~', "~0").replace('/', "~1")))
}

fn mismatch(method: &str, exposed: &str, at: &str, why: &str) -> RpcError {
    RpcError::invalid_params(format!("{method} {exposed}: argument {at}: {why}")).with_data(json!({ "at": at }))
}

fn unusable(exposed: &str, why: &str) -> RpcError {
    RpcError::new(error::UPSTREAM_INVALID_RESPONSE, format!("tools/call {exposed} refused: {why}"))
}

#[async_trait::async_trait]
impl RequestGuard for ValidateArgs {
    fn name(&self) -> &'static str {
        "validate_args"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        match request.route {
            Route::Call(CallKind::Tool) => self.tool(request)?,
            Route::Call(CallKind::Prompt) => self.prompt(request)?,
            Route::Complete => self.completion(request)?,
            _ => {}
        }
        Ok(Flow::Next)
    }
}
