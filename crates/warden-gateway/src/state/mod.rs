//! State several gateways share (`[state] redis`):
//! - rate limits and daily budgets: a caller gets its limit once however many gateways serve it.
//!   Each call is one round trip: a Lua script checks every bucket (GCRA, on Redis's clock) and
//!   budget the call is charged against and, only if all have room, charges them all;
//! - taint: a context tainted on one gateway is tainted on every other;
//! - spent continuations of approved calls: one used on one gateway is refused on every other;
//! - calls in flight and calls waiting on the client, per context: `max_concurrent_calls` and
//!   `max_call_depth` hold across gateways (checked in the same round trip as the limits);
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

/// The admission script, one round trip per call: KEYS are the context's in-flight and waiting
/// counters, then the buckets, then the budgets; ARGV is whether to admit into the context (0:
/// only charge limits), the most calls in flight, the deepest nesting, the calls parked for the
/// caller, the counters' time to live (ms), then the number of buckets, each bucket's interval
/// (µs) and burst, the number of budgets, each budget's limit and seconds to midnight. Checks
/// everything before writing anything. Returns `{0, depth}` when admitted and charged, `{-1,
/// depth}` when nested too deep, `{-2, in_flight}` when too many calls are in flight, or `{i,
/// wait_µs}` for the first (1-based) limit with no room. Times are microseconds (exact in Lua's
/// doubles, and written as whole numbers: Lua's default conversion would round them).
const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local admit = tonumber(ARGV[1]) == 1
local depth = 0
if admit then
  local waiting = tonumber(redis.call('GET', KEYS[2]) or 0)
  depth = 1 + math.max(waiting, 0) + tonumber(ARGV[4])
  if depth > tonumber(ARGV[3]) then return {-1, depth} end
  local in_flight = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), 0)
  if in_flight >= tonumber(ARGV[2]) then return {-2, in_flight} end
end
local nb = tonumber(ARGV[6])
local a = 7
local tats = {}
for b = 1, nb do
  local interval = tonumber(ARGV[a]); local burst = tonumber(ARGV[a + 1]); a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[2 + b]) or now)
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
  local used = tonumber(redis.call('GET', KEYS[2 + nb + d]) or 0)
  if used >= budget then return {nb + d, ttl * 1000000} end
  ttls[d] = ttl
end
for b = 1, nb do
  redis.call('SET', KEYS[2 + b], string.format('%.0f', tats[b]), 'PX', math.floor((tats[b] - now) / 1000) + 1000)
end
for d = 1, nd do
  redis.call('INCR', KEYS[2 + nb + d])
  redis.call('EXPIRE', KEYS[2 + nb + d], ttls[d] + 60)
end
if admit then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
end
return {0, depth}
"#;

/// How long a context's counters outlive their last change: a gateway that dies with calls in
/// flight leaves them counted (refusing, never admitting, more) until then.
pub const COUNTER_TTL: Duration = Duration::from_secs(600);

/// A context to admit a call into, with the bounds it must stay within.
pub struct Admission<'a> {
    /// The context (a session or a principal's client), as the limit guard names it.
    pub context: &'a str,
    pub max_in_flight: u32,
    pub max_depth: u32,
    /// Calls of the caller parked on this gateway for the client.
    pub parked: u32,
}

/// Why a call was not admitted.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// A rate limit or budget had no room.
    Limited(LimitExceeded),
    /// Nested this deep (more than allowed).
    TooDeep(u32),
    /// This many calls already in flight (the most allowed).
    TooMany(u32),
}

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
            script: redis::Script::new(ADMIT),
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
        Ok(self.admit(None, plan).await?.map(|_| ()).map_err(|r| match r {
            Refusal::Limited(e) => e,
            // Not asked for without an admission.
            Refusal::TooDeep(_) | Refusal::TooMany(_) => {
                LimitExceeded { limit: "principal", retry_after: Duration::ZERO }
            }
        }))
    }

    /// In one round trip: admits a call into its context (depth and calls in flight, counted
    /// across gateways) when `into` is given, and charges it against `plan`; nothing is counted
    /// or charged unless everything had room. `Ok(Ok(depth))` when admitted (release the place
    /// with [`SharedState::leave`]).
    pub async fn admit(&self, into: Option<&Admission<'_>>, plan: &Plan) -> Result<Result<u32, Refusal>, StateError> {
        let mut invocation = self.script.prepare_invoke();
        let context = into.map_or("", |a| a.context);
        invocation.key(self.key("f", context)).key(self.key("w", context));
        invocation
            .arg(u8::from(into.is_some()))
            .arg(into.map_or(0, |a| a.max_in_flight))
            .arg(into.map_or(0, |a| a.max_depth))
            .arg(into.map_or(0, |a| a.parked))
            .arg(COUNTER_TTL.as_millis() as u64);
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
        let (which, value) = (answer.first().copied().unwrap_or(i64::MIN), answer.get(1).copied().unwrap_or(0));
        let count = u32::try_from(value).unwrap_or(u32::MAX);
        match which {
            0 => Ok(Ok(count)),
            -1 => Ok(Err(Refusal::TooDeep(count))),
            -2 => Ok(Err(Refusal::TooMany(count))),
            _ => {
                let index = usize::try_from(which - 1).map_err(|_| StateError("an unexpected answer".into()))?;
                let limit = match plan.buckets.get(index) {
                    Some(b) => b.limit,
                    None => plan.budgets.get(index - plan.buckets.len()).map(|d| d.limit).unwrap_or("principal"),
                };
                Ok(Err(Refusal::Limited(LimitExceeded {
                    limit,
                    retry_after: Duration::from_micros(value.max(1) as u64),
                })))
            }
        }
    }

    /// Gives back a call's place in `context` (it ended); a count at zero (or below, after its
    /// expiry) is removed, never left without an expiry.
    pub async fn leave(&self, context: &str) -> Result<(), StateError> {
        let script = redis::Script::new(
            "local n = redis.call('DECR', KEYS[1]) if n <= 0 then redis.call('DEL', KEYS[1]) \
             else redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
        );
        let mut invocation = script.key(self.key("f", context));
        invocation.arg(COUNTER_TTL.as_millis() as u64);
        let mut conn = self.conn().await?;
        tokio::time::timeout(self.timeout, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map(drop)
            .map_err(|e| StateError(format!("{:?}", e.kind())))
    }

    /// Counts a call of `context` as waiting on the client (`by` 1), or no longer (`by` -1):
    /// calls the client makes meanwhile are nested one level deeper, on every gateway.
    pub async fn wait(&self, context: &str, by: i64) -> Result<(), StateError> {
        let key = self.key("w", context);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCRBY")
            .arg(&key)
            .arg(by)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(COUNTER_TTL.as_millis() as u64)
            .ignore();
        let mut conn = self.conn().await?;
        tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map_err(|e| StateError(format!("{:?}", e.kind())))
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
    async fn a_context_is_admitted_within_its_bounds_across_callers_of_the_state() {
        let s = state();
        let none = Plan::default();
        let at = |parked| Admission { context: "ctx", max_in_flight: 2, max_depth: 2, parked };
        assert_eq!(s.admit(Some(&at(0)), &none).await.unwrap(), Ok(1));
        assert_eq!(s.admit(Some(&at(0)), &none).await.unwrap(), Ok(1));
        assert_eq!(s.admit(Some(&at(0)), &none).await.unwrap(), Err(Refusal::TooMany(2)));
        s.leave("ctx").await.unwrap();
        // A call waiting on the client: the next is nested one deeper; with a parked call too,
        // deeper than allowed.
        s.wait("ctx", 1).await.unwrap();
        assert_eq!(s.admit(Some(&at(0)), &none).await.unwrap(), Ok(2));
        assert_eq!(s.admit(Some(&at(1)), &none).await.unwrap(), Err(Refusal::TooDeep(3)));
        s.wait("ctx", -1).await.unwrap();
        // A refused admission charges nothing; a refused charge admits nothing.
        let one = Plan { buckets: vec![bucket("one", Duration::from_secs(60), 1)], budgets: vec![] };
        s.leave("ctx").await.unwrap();
        s.leave("ctx").await.unwrap();
        assert!(s.admit(Some(&at(0)), &one).await.unwrap().is_ok());
        assert!(matches!(s.admit(Some(&at(0)), &one).await.unwrap(), Err(Refusal::Limited(_))));
        assert_eq!(s.admit(Some(&at(0)), &none).await.unwrap(), Ok(1), "only one place is taken");
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
