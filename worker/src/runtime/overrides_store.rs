//! The overrides this isolate applies ([`crate::overrides`]), read from
//! `HASH_INDEX` at `hg2/overrides` at most once per
//! `index.refresh_seconds`, like the index manifest beside it
//! ([`crate::current_index`]).
//!
//! A missing key is "nothing overridden". A value that cannot be read in
//! the route's `kv_timeout_ms` or does not parse keeps the last good
//! overrides (and is logged): clearing images is never the result of a
//! failure, a stalled KV never holds a verdict, and a failure never makes
//! a cleared image a match again before the next good read either.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{Delay, Env};

use crate::config::HASH_INDEX;
use crate::overrides::{Overrides, OVERRIDES_KEY};
use crate::runtime::{log_warn, now_ms};

struct Known {
    overrides: Rc<Overrides>,
    checked_ms: f64,
}

thread_local! {
    static KNOWN: RefCell<Option<Known>> = const { RefCell::new(None) };
}

/// The overrides in force.
pub async fn current(env: &Env, refresh_seconds: u32, timeout_ms: u32) -> Rc<Overrides> {
    let now = now_ms();
    let known = KNOWN.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|k| (k.overrides.clone(), k.checked_ms))
    });
    if let Some((overrides, checked_ms)) = &known {
        if now - checked_ms < f64::from(refresh_seconds) * 1000.0 {
            return overrides.clone();
        }
    }
    let last = known.map(|(o, _)| o);
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let read = match select(Box::pin(read(env)), timer).await {
        Either::Left((read, _)) => read,
        Either::Right(_) => Err(format!("no answer in {timeout_ms} ms")),
    };
    let overrides = match read {
        Ok(overrides) => Rc::new(overrides),
        Err(problem) => {
            log_warn(&format!(
                "hashgate: {OVERRIDES_KEY} not used ({problem}); keeping the last good overrides"
            ));
            last.unwrap_or_default()
        }
    };
    KNOWN.with(|cell| {
        *cell.borrow_mut() = Some(Known {
            overrides: overrides.clone(),
            checked_ms: now,
        })
    });
    overrides
}

/// Forgets what this isolate read, so the next request reads it again (the
/// console, after writing it).
pub fn forget() {
    KNOWN.with(|cell| *cell.borrow_mut() = None);
}

async fn read(env: &Env) -> Result<Overrides, String> {
    let kv = env
        .kv(HASH_INDEX)
        .map_err(|e| format!("{HASH_INDEX} is not bound: {e}"))?;
    let text = kv
        .get(OVERRIDES_KEY)
        .text()
        .await
        .map_err(|e| e.to_string())?;
    match text {
        None => Ok(Overrides::default()),
        Some(text) => Overrides::parse(&text).map_err(|e| e.to_string()),
    }
}
