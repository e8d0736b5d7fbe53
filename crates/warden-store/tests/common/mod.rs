//! Test stores: a fresh SQLite file in a temp dir, or a fresh schema in the real Postgres
//! (`WARDEN_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`). Postgres tests
//! fail, never skip, when it is unreachable.

#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use warden_store::{AuditEvent, AuditSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct Target {
    pub kind: Kind,
    pub url: String,
    pub dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

fn postgres_base() -> String {
    std::env::var("WARDEN_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl Target {
    pub async fn new(kind: Kind) -> Target {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("audit/audit.db").display());
                Target { kind, url, dir, schema: None }
            }
            Kind::Postgres => {
                let base = postgres_base();
                let schema = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
                let mut conn = sqlx::PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|err| panic!("Postgres at WARDEN_TEST_POSTGRES / {base} is needed: {err}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options[search_path]={schema}");
                Target { kind, url, dir, schema: Some((base, schema)) }
            }
        }
    }

    pub fn settings(&self) -> AuditSettings {
        AuditSettings::new(self.url.clone())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs SQL with full rights, as a tamperer with database access would.
    pub async fn raw(&self, sql: &str) {
        self.try_raw(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs SQL with full rights; the database's answer.
    #[allow(dead_code)]
    pub async fn try_raw(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self.kind {
            Kind::Sqlite => {
                let path = self.dir.path().join("audit/audit.db");
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("raw sqlite");
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("raw postgres");
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else { return };
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// An event with most fields filled, varied by `i`.
pub fn event(i: usize, time: DateTime<Utc>) -> AuditEvent {
    let mut event = AuditEvent::new(time, "call", if i.is_multiple_of(3) { "DENY" } else { "ALLOW" });
    event.request_id = Some(format!("req-{i}"));
    event.era = Some(if i.is_multiple_of(2) { "modern" } else { "legacy" }.into());
    event.method = Some("tools/call".into());
    event.actor_id = Some(format!("user-{}", i % 5));
    event.actor_class = Some("user".into());
    event.tenant = Some("acme".into());
    event.client_id = Some("claude".into());
    event.session_id = Some("s-1".into());
    event.server_name = Some("github".into());
    event.tool_name = Some("create_issue".into());
    event.action_class = Some(if i.is_multiple_of(2) { "write" } else { "read" }.into());
    event.arguments = Some(serde_json::json!({"title": format!("issue {i}"), "body": "[REDACTED]", "n": i, "x": 0.1}));
    event.redactions = 1;
    event.result_hash = Some("ab".repeat(32));
    event.policy_ids = vec!["policy0".into(), format!("policy{i}")];
    event.reason = Some("permitted".into());
    event.outcome = Some("ok".into());
    event.error_code = i.is_multiple_of(7).then_some(-32603);
    event.latency_ms = Some(i as f64 * 1.25 + 0.1);
    event.scopes = match i % 4 {
        1 => Some(vec!["mcp".into(), "notes:write".into()]),
        2 => Some(vec![]),
        _ => None,
    };
    event
}

/// Declares each listed `async fn name(kind: Kind)` as two tests, one per backend.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Postgres).await
                }
            )*
        }
    };
}
