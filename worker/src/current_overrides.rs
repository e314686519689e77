//! The overrides this isolate applies: `hg2/overrides` in `HASH_INDEX`
//! (see [`crate::overrides`]), read at most once per
//! `index.refresh_seconds`, like the index manifest, so disabling an entry
//! takes effect everywhere within that bound plus KV's propagation.
//!
//! Overrides only ever take matches away, so their failures never fail an
//! image: a missing key is "no overrides"; a read that fails or times out
//! keeps the overrides last read; a value that does not validate is logged
//! and the last good overrides are kept (none if there were none: an entry
//! keeps blocking rather than a typo clearing the wrong one).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{Delay, Env};

use crate::config::HASH_INDEX;
use crate::overrides::{Overrides, OVERRIDES_KEY};
use crate::runtime::{log_warn, now_ms};

thread_local! {
    static CURRENT: RefCell<Option<(Rc<Overrides>, f64)>> = const { RefCell::new(None) };
}

/// The overrides to apply now.
pub async fn current(env: &Env, refresh_seconds: u32, timeout_ms: u32) -> Rc<Overrides> {
    let now = now_ms();
    let known = CURRENT.with(|cell| cell.borrow().clone());
    if let Some((overrides, checked_ms)) = &known {
        if now - checked_ms < f64::from(refresh_seconds) * 1000.0 {
            return overrides.clone();
        }
    }
    let last = known.map(|(o, _)| o).unwrap_or_default();
    let next = match read(env, timeout_ms).await {
        Ok(None) => Rc::new(Overrides::default()),
        Ok(Some(text)) => match Overrides::parse(&text) {
            Ok(overrides) => Rc::new(overrides),
            Err(error) => {
                log_warn(&format!(
                    "hashgate: {OVERRIDES_KEY} is not valid ({error}); keeping the overrides last read"
                ));
                last
            }
        },
        Err(error) => {
            log_warn(&format!(
                "hashgate: {OVERRIDES_KEY} not readable ({error}); keeping the overrides last read"
            ));
            last
        }
    };
    CURRENT.with(|cell| *cell.borrow_mut() = Some((next.clone(), now)));
    next
}

async fn read(env: &Env, timeout_ms: u32) -> Result<Option<String>, String> {
    let kv = env.kv(HASH_INDEX).map_err(|e| e.to_string())?;
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    match select(Box::pin(kv.get(OVERRIDES_KEY).text()), timer).await {
        Either::Left((value, _)) => value.map_err(|e| e.to_string()),
        Either::Right(_) => Err(format!("no answer in {timeout_ms} ms")),
    }
}
