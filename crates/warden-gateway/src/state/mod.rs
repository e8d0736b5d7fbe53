//! State several gateways share (`[state] redis`):
//! - rate limits and daily budgets: a caller gets its limit once however many gateways serve it.
//!   Each call is one round trip: a Lua script checks every bucket (GCRA, on Redis's clock) and
//!   budget the call is charged against and, only if all have room, charges them all;
//! - taint: a context tainted on one gateway is tainted on every other;
//! - spent continuations of approved calls: one used on one gateway is refused on every other;
//! - legacy sessions: one opened on a gateway is served by any other, for its own caller only
//!   (see [`sessions`]);
//! - news: a containment, its release or a revocation made anywhere (a gateway's admin API,
//!   `warden contain`) is published, and every gateway applies it at once; the poll of
//!   `approvals.containment_poll` stays as the backstop.
//!
//! Keys are `{prefix}:{kind}:` and a hash of what they count: Redis holds no identities. When
//! Redis cannot be reached, rate-limited calls are refused with a clear error
//! (`on_unavailable = "refuse"`, the default) or limited by this gateway alone (`"local"`,
//! logged); a context counts as tainted and a continuation as spent: never the permissive side.

mod sessions;

pub use sessions::{SessionRecord, ended_news, owner_of, session_hash};

use crate::config::StateSection;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::OnceCell;
use warden_policy::limits::{LimitExceeded, Plan};

/// The script: KEYS are the buckets then the budgets; ARGV is the number of buckets, each
/// bucket's interval (µs) and burst, the number of budgets, each budget's limit and seconds to
/// midnight. Returns `{0, 0}` when charged, or `{i, wait_µs}` for the first (1-based) key that
/// has no room, charging nothing. Times are microseconds (exact in Lua's doubles, and written
/// as whole numbers: Lua's default conversion would round them).
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nb = tonumber(ARGV[1])
local a = 2
local tats = {}
for b = 1, nb do
  local interval = tonumber(ARGV[a]); local burst = tonumber(ARGV[a + 1]); a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[b]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - interval * burst
  if allow_at > now then return {b, allow_at - now} end
  tats[b] = new_tat
end
local nd = tonumber(ARGV[a]); a = a + 1
local ttls = {}
for d = 1, nd do
  local budget = tonumber(ARGV[a]); local ttl = tonumber(ARGV[a + 1]); a = a + 2
  local used = tonumber(redis.call('GET', KEYS[nb + d]) or 0)
  if used >= budget then return {nb + d, ttl * 1000000} end
  ttls[d] = ttl
end
for b = 1, nb do
  redis.call('SET', KEYS[b], string.format('%.0f', tats[b]), 'PX', math.floor((tats[b] - now) / 1000) + 1000)
end
for d = 1, nd do
  redis.call('INCR', KEYS[nb + d])
  redis.call('EXPIRE', KEYS[nb + d], ttls[d] + 60)
end
return {0, 0}
"#;

/// Why the shared state could not answer.
#[derive(Debug, thiserror::Error)]
#[error("the shared state (Redis) is unreachable: {0}")]
pub struct StateError(String);

/// The connection to the shared state.
pub struct SharedState {
    client: redis::Client,
    conn: OnceCell<redis::aio::ConnectionManager>,
    prefix: String,
    timeout: Duration,
    script: redis::Script,
}

impl SharedState {
    /// The shared state `[state]` names, if any (nothing is connected yet).
    pub fn from_config(s: &StateSection) -> Result<Option<SharedState>, String> {
        let url = match (&s.redis, &s.redis_env) {
            (Some(u), _) => u.clone(),
            (None, Some(var)) => {
                std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?
            }
            (None, None) => return Ok(None),
        };
        let client = redis::Client::open(url.as_str()).map_err(|_| "[state] redis is not a Redis URL".to_owned())?;
        Ok(Some(SharedState {
            client,
            conn: OnceCell::new(),
            prefix: s.prefix.clone(),
            timeout: s.timeout.0,
            script: redis::Script::new(TAKE),
        }))
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, StateError> {
        let timeout = self.timeout;
        let made = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await;
        made.cloned().map_err(|e| StateError(format!("{:?}", e.kind())))
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{}", self.prefix, &hex::encode(Sha256::digest(key.as_bytes()))[..40])
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StateError> {
        let mut conn = self.conn().await?;
        tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map_err(|e| StateError(format!("{:?}", e.kind())))
    }

    fn channel(&self) -> String {
        format!("{}:news", self.prefix)
    }

    /// Tells every gateway that `what` changed (`containment`).
    pub async fn publish(&self, what: &str) -> Result<(), StateError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(what);
        self.run::<i64>(&cmd).await.map(|_| ())
    }

    /// Calls `on_news` with each piece of news published by any gateway or operator, for as
    /// long as the connection lasts; returns when it ends (to be called again).
    pub async fn listen<F, Fut>(&self, mut on_news: F) -> Result<(), StateError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        use futures::StreamExt;
        let mut pubsub = tokio::time::timeout(self.timeout, self.client.get_async_pubsub())
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map_err(|e| StateError(format!("{:?}", e.kind())))?;
        pubsub.subscribe(self.channel()).await.map_err(|e| StateError(format!("{:?}", e.kind())))?;
        let mut messages = pubsub.into_on_message();
        while let Some(m) = messages.next().await {
            on_news(m.get_payload::<String>().unwrap_or_default()).await;
        }
        Err(StateError("the subscription ended".into()))
    }

    /// Records `id` as spent for `ttl`: whether it was not spent before (on any gateway).
    pub async fn spend(&self, kind: &str, id: &[u8], ttl: Duration) -> Result<bool, StateError> {
        let key = self.key(kind, &hex::encode(id));
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("NX").arg("PX").arg(ttl.as_millis().max(1) as u64);
        let set: Option<String> = self.run(&cmd).await?;
        Ok(set.is_some())
    }

    /// Marks `context` tainted for `ttl` (again: the time restarts).
    pub async fn mark_tainted(&self, context: &str, ttl: Duration) -> Result<(), StateError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("t", context)).arg(1).arg("PX").arg(ttl.as_millis().max(1) as u64);
        self.run::<()>(&cmd).await
    }

    /// Whether `context` is tainted on any gateway.
    pub async fn is_tainted(&self, context: &str) -> Result<bool, StateError> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.key("t", context));
        Ok(self.run::<i64>(&cmd).await? > 0)
    }

    /// Forgets `context`'s taint (its session ended).
    pub async fn clear_taint(&self, context: &str) -> Result<(), StateError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key("t", context));
        self.run::<()>(&cmd).await
    }

    /// Charges a call against `plan`: `Ok(Ok(()))` when every bucket and budget had room (and
    /// all were charged), `Ok(Err(..))` naming the first that had none (nothing charged).
    pub async fn take(&self, plan: &Plan) -> Result<Result<(), LimitExceeded>, StateError> {
        if plan.buckets.is_empty() && plan.budgets.is_empty() {
            return Ok(Ok(()));
        }
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(plan.buckets.len());
        for b in &plan.buckets {
            invocation.key(self.key("l", &b.key));
            invocation.arg(b.interval.as_micros().max(1) as u64).arg(b.burst);
        }
        invocation.arg(plan.budgets.len());
        for d in &plan.budgets {
            invocation.key(self.key("l", &d.key));
            invocation.arg(d.budget).arg(d.until_midnight.as_secs().max(1));
        }
        let mut conn = self.conn().await?;
        let answer: Vec<i64> = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map_err(|e| StateError(format!("{:?}", e.kind())))?;
        let (which, wait) = (answer.first().copied().unwrap_or(-1), answer.get(1).copied().unwrap_or(0));
        if which == 0 {
            return Ok(Ok(()));
        }
        let index = usize::try_from(which - 1).map_err(|_| StateError("an unexpected answer".into()))?;
        let limit = match plan.buckets.get(index) {
            Some(b) => b.limit,
            None => plan.budgets.get(index - plan.buckets.len()).map(|d| d.limit).unwrap_or("principal"),
        };
        Ok(Err(LimitExceeded { limit, retry_after: Duration::from_micros(wait.max(1) as u64) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::limits::{Budget, Charge};

    /// The machine's Redis, under a prefix of this test's own.
    pub(super) fn state() -> SharedState {
        let prefix = format!("warden-test-{}", rand::random::<u64>());
        let section = StateSection { redis: Some("redis://127.0.0.1:6379".into()), prefix, ..Default::default() };
        SharedState::from_config(&section).unwrap().unwrap()
    }

    fn bucket(key: &str, interval: Duration, burst: u32) -> Charge {
        Charge { key: key.into(), limit: "principal", interval, burst }
    }

    #[tokio::test]
    async fn buckets_keep_sub_millisecond_rates_and_charge_all_or_nothing() {
        let s = state();
        // 50 000 calls a second, no burst: a round trip to Redis takes longer than a call's
        // worth of time, so every call passes (rounded to milliseconds, most would not).
        let fast = Plan { buckets: vec![bucket("a", Duration::from_micros(20), 1)], budgets: vec![] };
        let mut passed = 0;
        for _ in 0..200 {
            passed += usize::from(s.take(&fast).await.unwrap().is_ok());
        }
        assert!(passed >= 190, "{passed} of 200 passed");
        // One a minute: the second at once is refused, and told when to come back.
        let slow = Plan { buckets: vec![bucket("s", Duration::from_secs(60), 1)], budgets: vec![] };
        assert!(s.take(&slow).await.unwrap().is_ok());
        let refused = s.take(&slow).await.unwrap().unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(59) && refused.retry_after <= Duration::from_secs(60));

        // A budget with nothing left refuses the call and charges none of its buckets.
        let day = |budget| Budget { key: "d".into(), limit: "daily", budget, until_midnight: Duration::from_secs(60) };
        let both = Plan { buckets: vec![bucket("b", Duration::from_secs(60), 1)], budgets: vec![day(1)] };
        assert!(s.take(&both).await.unwrap().is_ok());
        let over = Plan { buckets: vec![bucket("c", Duration::from_secs(60), 1)], budgets: vec![day(1)] };
        assert_eq!(s.take(&over).await.unwrap().unwrap_err().limit, "daily");
        let c_alone = Plan { buckets: vec![bucket("c", Duration::from_secs(60), 1)], budgets: vec![] };
        assert!(s.take(&c_alone).await.unwrap().is_ok(), "the refused call took nothing from bucket c");
    }

    #[tokio::test]
    async fn spent_ids_and_taint_are_seen_once_set() {
        let s = state();
        assert!(s.spend("c", b"id", Duration::from_secs(5)).await.unwrap());
        assert!(!s.spend("c", b"id", Duration::from_secs(5)).await.unwrap(), "spent once");
        assert!(!s.is_tainted("ctx").await.unwrap());
        s.mark_tainted("ctx", Duration::from_secs(5)).await.unwrap();
        assert!(s.is_tainted("ctx").await.unwrap());
        s.clear_taint("ctx").await.unwrap();
        assert!(!s.is_tainted("ctx").await.unwrap());
    }
}
