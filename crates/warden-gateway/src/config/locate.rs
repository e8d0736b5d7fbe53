//! Turning configuration errors into `file:line:column: key: message`.

use super::ConfigError;
use serde::de::DeserializeOwned;

/// Deserializes `text`, reporting the key path and position of the first error.
pub(super) fn deserialize<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let de = match toml::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => return Err(from_toml(text, file, String::new(), &e)),
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        from_toml(text, file, path, e.inner())
    })
}

fn from_toml(text: &str, file: &str, path: String, e: &toml::de::Error) -> ConfigError {
    let key = if path.is_empty() || path == "." { "(file)".to_owned() } else { path };
    let (line, column) = e.span().map_or((0, 0), |s| position(text, s.start));
    // toml's own message repeats the position and a source excerpt; keep the first line.
    let message = e.message().lines().next().unwrap_or("invalid configuration").trim().to_owned();
    // A missing key has no span of its own: point at the table it belongs to.
    let (line, column) = if line == 0 { locate_path(text, &key).unwrap_or((0, 0)) } else { (line, column) };
    ConfigError { file: file.to_owned(), line, column, key, message }
}

/// An error about a key found valid by serde but wrong by Warden's rules.
pub(super) fn error_at(text: &str, file: &str, path: &[String], message: String) -> ConfigError {
    let key = path.join(".");
    let (line, column) = span_of(text, path).map_or((0, 0), |start| position(text, start));
    ConfigError { file: file.to_owned(), line, column, key, message }
}

fn locate_path(text: &str, dotted: &str) -> Option<(usize, usize)> {
    let path: Vec<String> = dotted.split('.').map(str::to_owned).collect();
    span_of(text, &path).map(|s| position(text, s))
}

/// Byte offset where the key (or, failing that, its nearest located ancestor) is written.
fn span_of(text: &str, path: &[String]) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut best = None;
    let mut item: &toml_edit::Item = doc.as_item();
    for key in path {
        let table = item.as_table_like()?;
        let (k, next) = table.get_key_value(key)?;
        best = k.span().map(|s| s.start).or_else(|| next.span().map(|s| s.start)).or(best);
        if let Some(t) = next.as_table()
            && let Some(s) = t.span()
        {
            best = Some(s.start);
        }
        item = next;
    }
    best
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}
