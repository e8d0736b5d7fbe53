//! `x-mcp-header` (2026-07-28): tool arguments a client mirrors into `Mcp-Param-*` HTTP headers,
//! so that what sits in front of a server can route on them. Warden checks a client's headers
//! against the body, and sets them on calls to modern HTTP servers.

use serde_json::Value;
use warden_protocol::header_value;

/// An `x-mcp-header` annotation: the property path and the header's name part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAnnotation {
    /// Chain of `properties` keys from the schema root.
    pub path: Vec<String>,
    /// The `{Name}` of `Mcp-Param-{Name}`.
    pub name: String,
}

/// Reads and checks the `x-mcp-header` annotations of an input schema, per 2026-07-28.
pub fn header_annotations(schema: &Value) -> Result<Vec<HeaderAnnotation>, String> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), true, false, &mut out)?;
    let mut names: Vec<String> = out.iter().map(|a| a.name.to_ascii_lowercase()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("two properties use the same header name".into());
    }
    Ok(out)
}

fn walk(
    node: &Value,
    path: &mut Vec<String>,
    reachable: bool,
    is_property: bool,
    out: &mut Vec<HeaderAnnotation>,
) -> Result<(), String> {
    if path.len() > 32 {
        return Ok(());
    }
    match node {
        Value::Object(map) => {
            if let Some(h) = map.get("x-mcp-header") {
                if !(reachable && is_property) {
                    return Err("it is not on a property reachable through properties alone".into());
                }
                let name = h.as_str().ok_or("its value is not a string")?;
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || !name.chars().all(token) {
                    return Err(format!("{name:?} is not a valid header name"));
                }
                match map.get("type").and_then(Value::as_str) {
                    Some("string" | "integer" | "boolean") => {}
                    _ => return Err("it is on a property that is not a string, integer or boolean".into()),
                }
                out.push(HeaderAnnotation { path: path.clone(), name: name.to_owned() });
            }
            for (k, v) in map {
                match k.as_str() {
                    "properties" => {
                        if let Value::Object(props) = v {
                            for (pname, pschema) in props {
                                path.push(pname.clone());
                                walk(pschema, path, reachable, true, out)?;
                                path.pop();
                            }
                        }
                    }
                    // Data, not schemas.
                    "default" | "examples" | "enum" | "const" | "x-mcp-header" => {}
                    _ => walk(v, path, false, false, out)?,
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, path, false, false, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn value_at<'a>(args: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(args, |v, k| v.get(k)).filter(|v| !v.is_null())
}

fn header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_i64().filter(|i| i.unsigned_abs() < (1 << 53)).map(|i| i.to_string()),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers a call to `tool` with `arguments` must carry: `(Name, encoded value)`.
pub fn param_headers(tool: &Value, arguments: &Value) -> Vec<(String, String)> {
    let Some(schema) = tool.get("inputSchema") else { return vec![] };
    let Ok(annotations) = header_annotations(schema) else { return vec![] };
    annotations
        .into_iter()
        .filter_map(|a| {
            let v = value_at(arguments, &a.path)?;
            Some((a.name, header_value::encode(&header_text(v)?)))
        })
        .collect()
}

/// Checks the `Mcp-Param-*` headers a client sent against the call's arguments.
pub fn check_param_headers(tool: &Value, arguments: &Value, sent: &[(String, String)]) -> Result<(), String> {
    let Some(schema) = tool.get("inputSchema") else { return Ok(()) };
    let Ok(annotations) = header_annotations(schema) else { return Ok(()) };
    for a in annotations {
        let header = format!("mcp-param-{}", a.name.to_ascii_lowercase());
        let got = sent.iter().find(|(n, _)| *n == header).map(|(_, v)| v.as_str());
        let body = value_at(arguments, &a.path);
        match (body, got) {
            (None, None) => {}
            (None, Some(_)) => return Err(format!("Mcp-Param-{} is sent but the argument is absent", a.name)),
            (Some(_), None) => return Err(format!("Mcp-Param-{} is missing", a.name)),
            (Some(v), Some(h)) => {
                let same = match v {
                    Value::Number(n) => h.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
                    other => header_text(other).as_deref() == Some(h),
                };
                if !same {
                    return Err(format!("Mcp-Param-{} does not match the argument", a.name));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(props: Value) -> Value {
        json!({ "name": "t", "inputSchema": { "type": "object", "properties": props } })
    }

    #[test]
    fn reads_valid_annotations() {
        let t = tool(json!({
            "region": { "type": "string", "x-mcp-header": "Region" },
            "opts": { "type": "object", "properties": { "n": { "type": "integer", "x-mcp-header": "N" } } },
            "q": { "type": "string", "default": { "x-mcp-header": "data, not a schema" } }
        }));
        let a = header_annotations(&t["inputSchema"]).unwrap();
        assert_eq!(a.len(), 2);
        let h = param_headers(&t, &json!({ "region": "Zürich", "opts": { "n": 42 } }));
        assert!(h.contains(&("Region".into(), "=?base64?WsO8cmljaA==?=".into())));
        assert!(h.contains(&("N".into(), "42".into())));
    }

    #[test]
    fn refuses_invalid_annotations() {
        for bad in [
            json!({ "a": { "type": "number", "x-mcp-header": "A" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "A B" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "A" }, "b": { "type": "string", "x-mcp-header": "a" } }),
            json!({ "a": { "type": "array", "items": { "type": "string", "x-mcp-header": "A" } } }),
            json!({ "a": { "anyOf": [{ "type": "string", "x-mcp-header": "A" }] } }),
        ] {
            assert!(header_annotations(&tool(bad.clone())["inputSchema"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_client_headers_against_the_body() {
        let t = tool(
            json!({ "region": { "type": "string", "x-mcp-header": "Region" }, "n": { "type": "integer", "x-mcp-header": "N" } }),
        );
        let args = json!({ "region": "eu", "n": 42 });
        let ok = vec![("mcp-param-region".to_owned(), "eu".to_owned()), ("mcp-param-n".to_owned(), "42.0".to_owned())];
        assert!(check_param_headers(&t, &args, &ok).is_ok());
        assert!(check_param_headers(&t, &args, &ok[..1]).is_err(), "a missing header is refused");
        let wrong = vec![("mcp-param-region".to_owned(), "us".to_owned()), ok[1].clone()];
        assert!(check_param_headers(&t, &args, &wrong).is_err());
        assert!(check_param_headers(&t, &json!({}), &ok).is_err(), "a header without its argument is refused");
        assert!(check_param_headers(&t, &json!({ "region": null }), &[]).is_ok());
    }
}
