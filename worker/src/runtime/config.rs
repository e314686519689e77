//! Bindings and configuration, loaded once per isolate.
//!
//! Binding names are fixed and match `wrangler.toml`. The policy is parsed
//! and validated the first time it is needed and then reused: an inline
//! `POLICY` is re-parsed only if its text changes; a `kv:<key>` policy is
//! re-read from `HASH_INDEX` every `kv_refresh_seconds` of the policy in
//! use (default 60), so an operator can change it without a deploy.
//!
//! A policy that cannot be used (a `kv:` key that is missing or unreadable,
//! JSON that does not parse or validate, an empty `POLICY`) never reaches a
//! public body and never turns scanning off: the error goes to the log
//! (`console.error`, seen in `wrangler tail`, at most every
//! [`BAD_POLICY_LOG_MS`] while it lasts) and the isolate keeps serving with
//! its last good policy, or, when it has none, with
//! [`Policy::safe_default`] (every route scanned, every list, block, fail
//! closed). A `kv:` policy that failed is tried again after
//! [`KV_POLICY_RETRY_MS`] (or the refresh interval, if shorter). Only an unusable `ORIGIN` (nowhere to send
//! requests) is an error for the caller, answered with a bare 500.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use crate::error::{check_origin, ConfigError};
use crate::policy::{Policy, PolicySource};
use crate::runtime::{log_error, now_ms};
use crate::verdict_cache::VerdictCache;

/// KV namespace: the hash index (and a `kv:` policy).
pub const HASH_INDEX: &str = "HASH_INDEX";
/// KV namespace: report records.
pub const REPORTS: &str = "REPORTS";
/// Queue producer for match and unscanned events.
pub const MATCH_EVENTS: &str = "MATCH_EVENTS";
/// The dead-letter queue's name (a consumer of it stores what it receives).
pub const DEAD_LETTER_QUEUE: &str = "hashgate-dlq";
/// Variable: the policy JSON, or `kv:<key>`.
pub const POLICY_VAR: &str = "POLICY";
/// Variable: origin base URL for local runs (empty: the request's host).
pub const ORIGIN_VAR: &str = "ORIGIN";
/// Variable: `1`/`true` adds debug headers (verdict, cache, wasm memory).
pub const DEBUG_VAR: &str = "DEBUG";
/// How soon a `kv:` policy that could not be used is tried again.
pub const KV_POLICY_RETRY_MS: f64 = 10_000.0;
/// How often an unusable policy is logged again while it lasts.
pub const BAD_POLICY_LOG_MS: f64 = 60_000.0;

/// What a request needs from the configuration.
#[derive(Clone)]
pub struct Config {
    pub policy: Rc<Policy>,
    /// Base URL (`scheme://host[:port]`) without a trailing slash.
    pub origin: Option<String>,
    pub debug: bool,
}

struct Loaded {
    /// The `POLICY` variable's value this was loaded from.
    source: String,
    policy: Rc<Policy>,
    /// When the source was last read.
    loaded_ms: f64,
    /// `Some(error)`: the source was unusable and `policy` is the fallback.
    problem: Option<String>,
    /// When the problem was last logged.
    logged_ms: f64,
}

thread_local! {
    static POLICY: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    static LAST_GOOD: RefCell<Option<Rc<Policy>>> = const { RefCell::new(None) };
    static CACHE: RefCell<VerdictCache> = RefCell::new(VerdictCache::new(0, 1));
}

/// Runs `f` on the isolate's verdict cache.
pub fn with_cache<R>(f: impl FnOnce(&mut VerdictCache) -> R) -> R {
    CACHE.with(|cache| f(&mut cache.borrow_mut()))
}

fn var(env: &Env, name: &str) -> Option<String> {
    if let Ok(value) = env.var(name) {
        return Some(value.to_string());
    }
    // `[vars] POLICY = { routes = [...] }` in wrangler.toml arrives as an object.
    env.object_var::<serde_json::Value>(name)
        .ok()
        .map(|v| v.to_string())
}

/// Loads (or reuses) the configuration. The only error is an unusable
/// `ORIGIN`; a policy that cannot be used is replaced (see the module docs).
pub async fn load(env: &Env) -> Result<Config, ConfigError> {
    let raw = var(env, POLICY_VAR).unwrap_or_default();
    let now = now_ms();
    let reuse = POLICY.with(|cell| {
        let mut cell = cell.borrow_mut();
        let loaded = cell.as_mut()?;
        if loaded.source != raw {
            return None;
        }
        let is_kv = matches!(PolicySource::from_var(&raw), Ok(PolicySource::Kv(_)));
        let age = now - loaded.loaded_ms;
        let refresh = f64::from(loaded.policy.kv_refresh_seconds) * 1000.0;
        let fresh = match (&loaded.problem, is_kv) {
            (_, false) => true,
            (None, true) => age < refresh,
            (Some(_), true) => age < KV_POLICY_RETRY_MS.min(refresh),
        };
        if !fresh {
            return None;
        }
        if let Some(problem) = &loaded.problem {
            if now - loaded.logged_ms >= BAD_POLICY_LOG_MS {
                loaded.logged_ms = now;
                log_unusable(problem);
            }
        }
        Some(loaded.policy.clone())
    });
    let policy = match reuse {
        Some(policy) => policy,
        None => {
            let (policy, problem) = match read_policy(env, &raw).await {
                Ok(policy) => {
                    let policy = Rc::new(policy);
                    LAST_GOOD.with(|cell| *cell.borrow_mut() = Some(policy.clone()));
                    (policy, None)
                }
                Err(e) => {
                    let last_good = LAST_GOOD.with(|cell| cell.borrow().clone());
                    let problem = match &last_good {
                        Some(_) => format!("{e}; serving with the last good policy"),
                        None => format!("{e}; serving with the safe default policy"),
                    };
                    log_unusable(&problem);
                    let policy = last_good.unwrap_or_else(|| Rc::new(Policy::safe_default()));
                    (policy, Some(problem))
                }
            };
            with_cache(|cache| cache.configure(policy.cache.ttl_seconds, policy.cache.max_entries));
            POLICY.with(|cell| {
                *cell.borrow_mut() = Some(Loaded {
                    source: raw.clone(),
                    policy: policy.clone(),
                    loaded_ms: now,
                    problem,
                    logged_ms: now,
                })
            });
            policy
        }
    };
    let origin = var(env, ORIGIN_VAR)
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty());
    if let Some(origin) = &origin {
        check_origin(origin)?;
    }
    let debug = var(env, DEBUG_VAR).is_some_and(|d| matches!(d.trim(), "1" | "true" | "yes"));
    Ok(Config {
        policy,
        origin,
        debug,
    })
}

fn log_unusable(problem: &str) {
    log_error(&format!("hashgate: the POLICY cannot be used: {problem}"));
}

/// Reads and validates the policy the `POLICY` variable names.
async fn read_policy(env: &Env, raw: &str) -> Result<Policy, ConfigError> {
    let text = match PolicySource::from_var(raw)? {
        PolicySource::Inline(text) => text,
        PolicySource::Kv(key) => {
            let problem = |problem: String| ConfigError::KvPolicy {
                key: key.clone(),
                problem,
            };
            let kv = env
                .kv(HASH_INDEX)
                .map_err(|e| problem(format!("{HASH_INDEX} is not bound: {e}")))?;
            kv.get(&key)
                .text()
                .await
                .map_err(|e| problem(format!("reading it from {HASH_INDEX} failed: {e}")))?
                .ok_or_else(|| problem(format!("no such key in {HASH_INDEX}")))?
        }
    };
    Ok(Policy::parse(&text)?)
}
