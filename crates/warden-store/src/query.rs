//! Ad-hoc read-only queries over the audit tables.
//!
//! Read-only is the database's job: SQLite connections are opened read-only with
//! `PRAGMA query_only`, Postgres runs each query in a `READ ONLY` transaction that is rolled
//! back. On top of that, a query must be one `SELECT`, `WITH` or `VALUES` statement, which
//! keeps out what read-only mode lets through (SQLite `ATTACH`, `VACUUM INTO`, `PRAGMA`;
//! Postgres `COPY ... TO`).

use std::time::Duration;

use serde::Serialize;

use crate::StoreError;

/// How long a query may run and how many rows it may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub timeout: Duration,
    pub max_rows: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits { timeout: Duration::from_secs(10), max_rows: 10_000 }
    }
}

/// Rows of an ad-hoc query, each value as JSON (times as RFC 3339 text, blobs as hex).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows matched than [`QueryLimits::max_rows`]; only the first ones are here.
    pub truncated: bool,
}

/// Which lexical rules to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Counts statements: SQLite would run every statement in the text.
    Sqlite,
    /// The server refuses several statements in one prepared query; only the first word matters.
    Postgres,
}

/// Refuses anything but a single SELECT/WITH/VALUES statement.
pub(crate) fn check_read_statement(sql: &str, dialect: Dialect) -> Result<(), StoreError> {
    let refuse = |why: &str| Err(StoreError::QueryRefused(why.to_owned()));
    let bytes = sql.as_bytes();
    let start = skip_space_and_comments(bytes, 0, dialect);
    let word_end = bytes[start..].iter().position(|b| !b.is_ascii_alphabetic()).map_or(bytes.len(), |n| start + n);
    let word = sql[start..word_end].to_ascii_uppercase();
    let allowed: &[&str] = match dialect {
        Dialect::Sqlite => &["SELECT", "WITH", "VALUES"],
        Dialect::Postgres => &["SELECT", "WITH", "VALUES", "TABLE"],
    };
    if !allowed.contains(&word.as_str()) {
        return refuse(&format!(
            "only SELECT, WITH or VALUES statements may be run here, not `{}`",
            if word.is_empty() { "(nothing)" } else { &word }
        ));
    }
    if dialect == Dialect::Sqlite
        && let Some(end) = statement_end(bytes, word_end)
        && skip_space_and_comments(bytes, end + 1, dialect) < bytes.len()
    {
        return refuse("only one statement may be run at a time");
    }
    Ok(())
}

/// The index of the first `;` outside literals, quoted names and comments (SQLite rules).
fn statement_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i < bytes.len() {
        match bytes[i] {
            b';' => return Some(i),
            b'\'' | b'"' | b'`' => i = quoted_end(bytes, i, bytes[i]),
            b'[' => i = bytes[i..].iter().position(|&b| b == b']').map_or(bytes.len(), |n| i + n + 1),
            b'-' | b'/' => {
                let next = skip_space_and_comments(bytes, i, Dialect::Sqlite);
                i = if next == i { i + 1 } else { next };
            }
            _ => i += 1,
        }
    }
    None
}

/// Past a quoted run opened at `open` whose quote is doubled to escape it.
fn quoted_end(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn skip_space_and_comments(bytes: &[u8], mut i: usize, dialect: Dialect) -> usize {
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| i + n + 1);
        } else if bytes[i..].starts_with(b"/*") {
            // Postgres block comments nest; SQLite's do not.
            let mut depth = 1usize;
            i += 2;
            while i < bytes.len() && depth > 0 {
                if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                } else if dialect == Dialect::Postgres && bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else {
            return i.min(bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str, dialect: Dialect) -> bool {
        check_read_statement(sql, dialect).is_ok()
    }

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT * FROM mcp_audit",
            "  -- why\n /* what */ select 1;",
            "WITH x AS (SELECT 1) SELECT * FROM x;  -- done",
            "VALUES (1)",
            "SELECT ';' AS a, \"b;\" , [c;], `d;` FROM t",
            "SELECT 'it''s; fine'",
        ] {
            assert!(ok(sql, Dialect::Sqlite), "{sql}");
        }
        assert!(ok("/* a /* nested */ comment */ TABLE mcp_audit", Dialect::Postgres));
    }

    #[test]
    fn writes_and_escapes_are_refused() {
        for sql in [
            "DELETE FROM mcp_audit",
            "update mcp_audit set decision = 'ALLOW'",
            "DROP TABLE mcp_audit",
            "INSERT INTO mcp_audit DEFAULT VALUES",
            "ATTACH DATABASE '/tmp/x.db' AS x",
            "PRAGMA query_only = OFF",
            "VACUUM INTO '/tmp/copy.db'",
            "SELECT 1; DELETE FROM mcp_audit",
            "SELECT ';'; ATTACH 'x' AS y",
            "/* SELECT */ DELETE FROM mcp_audit",
            "",
            "(SELECT 1)",
        ] {
            assert!(!ok(sql, Dialect::Sqlite), "{sql}");
        }
        assert!(!ok("COPY (SELECT 1) TO PROGRAM 'true'", Dialect::Postgres));
    }
}
