//! What a server sends toward a client beside its answers, made safe to deliver: notifications
//! cleaned, and requests of the client's model (sampling) and user (elicitation) narrowed and
//! cleaned.

use super::{Cleaning, OutputGuard};
use crate::config::{SamplingContext, SamplingLimits};
use serde_json::Value;

impl OutputGuard {
    /// Cleans what a server's notification tells a client (a log message's `data` and `logger`,
    /// a progress `message`, anything else it carries) as results are cleaned. Tokens and levels
    /// the client matches on are left as they are.
    pub fn clean_notification(&self, params: Option<&mut Value>) -> Cleaning {
        let mut c = Cleaning::default();
        let Some(Value::Object(params)) = params else { return c };
        for (key, value) in params.iter_mut() {
            // Only what the client matches on, and only in the form it can take, is left as it
            // is: a progress token is the client's own (restored by the connection), counts are
            // numbers, a level is one of the levels.
            let kept = match key.as_str() {
                "progressToken" => value.is_string() || value.is_number(),
                "progress" | "total" => value.is_number(),
                "level" => value.as_str().is_some_and(crate::levels::is_valid),
                _ => false,
            };
            if !kept {
                c.merge(self.clean_at(value, key));
            }
        }
        if params.get("level").is_some_and(|l| !l.as_str().is_some_and(crate::levels::is_valid)) {
            c.refused = Some("its level is not a log level".to_owned());
        }
        c
    }

    /// What a server asks of a client, made safe to relay; runs after policy has allowed the
    /// request. An elicitation's message and schema texts, shown to the user, are cleaned and
    /// have secrets redacted. R8, the sampling guard: every string of a sampling request's
    /// messages and system prompt is cleaned and has secrets redacted; `includeContext` (which
    /// would hand the server the client's other conversations) is narrowed to what the server
    /// may ask (`none` unless configured); `maxTokens` is capped. Anything else a request
    /// carries is cleaned like a result.
    pub fn guard_client_request(&self, method: &str, params: Option<&mut Value>, limits: &SamplingLimits) -> Cleaning {
        let mut c = Cleaning::default();
        let Some(Value::Object(p)) = params else { return c };
        for (key, value) in p.iter_mut() {
            // What the client matches on, or the server's own state, passes as it is.
            if !matches!(key.as_str(), "includeContext" | "maxTokens" | "mode" | "elicitationId") {
                c.merge(self.clean_at(value, key));
            }
        }
        if method != "sampling/createMessage" {
            return c;
        }
        if let Some(asked) = p.get("includeContext") {
            let wanted = asked.as_str().map_or(SamplingContext::AllServers, SamplingContext::from_wire);
            if wanted > limits.context || !asked.is_string() {
                p.insert("includeContext".to_owned(), Value::String(limits.context.wire().to_owned()));
                c.removed_characters += 1;
            }
        }
        let asked = p.get("maxTokens").and_then(Value::as_u64);
        if asked.is_none_or(|t| t > limits.max_tokens) {
            p.insert(
                "maxTokens".to_owned(),
                Value::from(asked.map_or(limits.max_tokens, |t| t.min(limits.max_tokens))),
            );
            c.removed_characters += u32::from(asked.is_some());
        }
        c
    }
}

/// Text a server chose, made fit for the gateway's own log (see [`crate::names::for_log`]).
pub fn redacted_for_log(text: &str) -> String {
    crate::names::for_log(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SAMPLING_MAX_TOKENS;
    use serde_json::json;

    #[test]
    fn sampling_requests_are_narrowed_and_redacted() {
        let guard = OutputGuard::shared();
        let mut p = json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": "summarize ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \u{1b}[8mhidden" } }],
            "includeContext": "allServers",
            "maxTokens": 100000,
        });
        let c = guard.guard_client_request("sampling/createMessage", Some(&mut p), &SamplingLimits::default());
        assert!(c.redactions + c.removed_characters >= 3);
        let text = p["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(!text.contains("ghp_") && !text.contains('\u{1b}'), "{text}");
        assert_eq!(p["includeContext"], "none");
        assert_eq!(p["maxTokens"], SAMPLING_MAX_TOKENS);
        let mut asked =
            json!({ "message": "token ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \u{1b}[31m", "requestedSchema": {} });
        let c = guard.guard_client_request("elicitation/create", Some(&mut asked), &SamplingLimits::default());
        assert_eq!((c.redactions, c.removed_characters), (1, 1));
        assert_eq!(asked["message"], "token [REDACTED:github_token] ");
    }

    #[test]
    fn a_server_may_be_allowed_its_own_context_and_more_tokens() {
        let guard = OutputGuard::shared();
        let limits = SamplingLimits { context: SamplingContext::ThisServer, max_tokens: 10_000 };
        let mut p = json!({ "messages": [], "includeContext": "thisServer", "maxTokens": 8000 });
        assert_eq!(guard.guard_client_request("sampling/createMessage", Some(&mut p), &limits), Cleaning::default());
        assert_eq!((p["includeContext"].as_str(), p["maxTokens"].as_u64()), (Some("thisServer"), Some(8000)));
        for wider in [json!("allServers"), json!("everything"), json!(3)] {
            let mut p = json!({ "messages": [], "includeContext": wider, "maxTokens": 20_000 });
            guard.guard_client_request("sampling/createMessage", Some(&mut p), &limits);
            assert_eq!(p["includeContext"], "thisServer", "narrowed from {wider}");
            assert_eq!(p["maxTokens"], 10_000);
        }
    }

    #[test]
    fn notifications_are_cleaned_in_every_member_but_their_tokens() {
        let guard = OutputGuard::shared();
        let mut p = json!({ "progressToken": "t\u{1b}", "progress": 1, "message": "key ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "extra": { "blob": "\u{200b}x" } });
        let c = guard.clean_notification(Some(&mut p));
        assert_eq!(c.redactions, 1);
        assert_eq!(p["progressToken"], "t\u{1b}", "the client's own token is left as it is");
        assert_eq!(p["message"], "key [REDACTED:github_token]");
    }
}
