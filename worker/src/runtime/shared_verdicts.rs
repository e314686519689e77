//! The colo's tier of the verdict cache: the Cache API (`caches.default`),
//! shared by every isolate of a data centre and free of charge.
//!
//! Entries are small JSON documents ([`SharedVerdict`]) under synthetic
//! URLs ([`CacheKey::url`]); they expire by `Cache-Control: max-age` (the
//! policy's `verdict_cache.ttl_seconds`) and carry the index generation in
//! their key, so an upload makes every older entry unreachable at once. A
//! Cache API that fails is treated as a miss: it only ever saves work.

use worker::{Cache, Headers, Response};

use crate::verdict_cache::{CacheKey, Cached, SharedVerdict};

/// The verdict the colo remembers for `key`, if any.
pub async fn get(key: &CacheKey) -> Option<Cached> {
    let cache = Cache::default();
    let mut response = cache.get(key.url(), false).await.ok()??;
    let shared: SharedVerdict = response.json().await.ok()?;
    shared.into_cached(&key.sha256)
}

/// Remembers `cached` under `key` for `ttl_seconds`.
pub async fn put(key: &CacheKey, cached: &Cached, ttl_seconds: u32) {
    let Ok(body) = serde_json::to_string(&SharedVerdict::from_cached(cached)) else {
        return;
    };
    let headers = Headers::new();
    let set = headers
        .set("content-type", "application/json")
        .and_then(|_| headers.set("cache-control", &format!("max-age={ttl_seconds}")));
    if set.is_err() {
        return;
    }
    let Ok(response) = Response::ok(body).map(|r| r.with_headers(headers)) else {
        return;
    };
    let _ = Cache::default().put(key.url(), response).await;
}
