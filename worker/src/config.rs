//! Bindings and configuration, loaded once per isolate.
//!
//! Binding names are fixed and match `wrangler.toml`. The policy is parsed
//! and validated the first time it is needed and then reused: an inline
//! `POLICY` is re-parsed only if its text changes; a `kv:<key>` policy is
//! re-read from `HASH_INDEX` at most every [`KV_POLICY_REFRESH_MS`], so an
//! operator can change it without a deploy. An invalid policy is an error
//! for every request (the caller answers 500 with the message): scanning
//! must never silently turn off because of a typo.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use crate::error::{check_origin, ConfigError};
use crate::policy::{Policy, PolicySource};
use crate::runtime::now_ms;
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
/// How often a KV-held policy is re-read.
pub const KV_POLICY_REFRESH_MS: f64 = 60_000.0;

/// What a request needs from the configuration.
#[derive(Clone)]
pub struct Config {
    pub policy: Rc<Policy>,
    /// Base URL (`scheme://host[:port]`) without a trailing slash.
    pub origin: Option<String>,
    pub debug: bool,
}

struct Loaded {
    source: String,
    policy: Rc<Policy>,
    loaded_ms: f64,
}

thread_local! {
    static POLICY: RefCell<Option<Loaded>> = const { RefCell::new(None) };
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

/// Loads (or reuses) the configuration.
pub async fn load(env: &Env) -> Result<Config, ConfigError> {
    let raw = var(env, POLICY_VAR).unwrap_or_default();
    let source = PolicySource::from_var(&raw)?;
    let now = now_ms();
    let reuse = POLICY.with(|cell| {
        cell.borrow().as_ref().and_then(|loaded| {
            let fresh = match &source {
                PolicySource::Inline(text) => &loaded.source == text,
                PolicySource::Kv(key) => {
                    &loaded.source == key && now - loaded.loaded_ms < KV_POLICY_REFRESH_MS
                }
            };
            fresh.then(|| loaded.policy.clone())
        })
    });
    let policy = match reuse {
        Some(policy) => policy,
        None => {
            let (text, source_id) = match &source {
                PolicySource::Inline(text) => (text.clone(), text.clone()),
                PolicySource::Kv(key) => {
                    let problem = |problem: String| ConfigError::KvPolicy {
                        key: key.clone(),
                        problem,
                    };
                    let kv = env
                        .kv(HASH_INDEX)
                        .map_err(|e| problem(format!("{HASH_INDEX} is not bound: {e}")))?;
                    let text = kv
                        .get(key)
                        .text()
                        .await
                        .map_err(|e| problem(format!("reading it from {HASH_INDEX} failed: {e}")))?
                        .ok_or_else(|| problem(format!("no such key in {HASH_INDEX}")))?;
                    (text, key.clone())
                }
            };
            let policy = Rc::new(Policy::parse(&text)?);
            with_cache(|cache| cache.configure(policy.cache.ttl_seconds, policy.cache.max_entries));
            POLICY.with(|cell| {
                *cell.borrow_mut() = Some(Loaded {
                    source: source_id,
                    policy: policy.clone(),
                    loaded_ms: now,
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
