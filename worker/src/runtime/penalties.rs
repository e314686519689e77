//! The per-client limit on 451 answers at runtime ([`crate::block_limit`]):
//! the rate-limiting binding counts each client's 451s; a client past its
//! limit is remembered as penalized for [`PENALTY_SECONDS`] in this isolate
//! and in the location's Cache API, and gets 429 on scanning routes.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{Cache, Env, Headers, Response};

use crate::block_limit::{penalty_url, BINDING, PENALTY_SECONDS};
use crate::runtime::{log_warn, now_ms};

/// Penalties remembered by one isolate at most (the Cache API holds the
/// rest).
const MAX_REMEMBERED: usize = 10_000;

thread_local! {
    static PENALIZED: RefCell<HashMap<String, f64>> = RefCell::new(HashMap::new());
}

/// Whether the limit is on (the binding exists).
pub fn enabled(env: &Env) -> bool {
    env.rate_limiter(BINDING).is_ok()
}

/// Whether the client is penalized now.
pub async fn is_penalized(key: &str) -> bool {
    let now = now_ms();
    let known = PENALIZED.with(|p| p.borrow().get(key).copied());
    if let Some(until) = known {
        if until > now {
            return true;
        }
        PENALIZED.with(|p| p.borrow_mut().remove(key));
        return false;
    }
    match Cache::default().get(penalty_url(key), false).await {
        Ok(Some(_)) => {
            remember(key, now);
            true
        }
        _ => false,
    }
}

/// Counts one 451 for the client. `false`: the client is past its limit
/// (now penalized) and gets 429 instead. A limiter that does not answer
/// counts as within the limit: the 451 is what protects, never withheld.
pub async fn count_block(env: &Env, key: &str) -> bool {
    let Ok(limiter) = env.rate_limiter(BINDING) else {
        return true;
    };
    match limiter.limit(key.to_owned()).await {
        Ok(outcome) if outcome.success => true,
        Ok(_) => {
            penalize(key).await;
            false
        }
        Err(e) => {
            log_warn(&format!("hashgate: {BINDING} did not answer: {e}"));
            true
        }
    }
}

fn remember(key: &str, now: f64) {
    PENALIZED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= MAX_REMEMBERED {
            p.retain(|_, until| *until > now);
        }
        if p.len() < MAX_REMEMBERED {
            p.insert(key.to_owned(), now + f64::from(PENALTY_SECONDS) * 1000.0);
        }
    });
}

async fn penalize(key: &str) {
    remember(key, now_ms());
    let headers = Headers::new();
    if headers
        .set("cache-control", &format!("max-age={PENALTY_SECONDS}"))
        .is_err()
    {
        return;
    }
    if let Ok(response) = Response::ok("penalized").map(|r| r.with_headers(headers)) {
        let _ = Cache::default().put(penalty_url(key), response).await;
    }
}
