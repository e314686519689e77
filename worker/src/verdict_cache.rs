//! Verdicts remembered, so a popular image is not decoded, hashed and
//! looked up again on every request.
//!
//! A verdict is remembered under the SHA-256 of the bytes it was reached
//! for, the route's [`crate::policy::Route::verdict_key`] (threshold and
//! lists) and the index generation ([`hashgate::index::generation`]): a
//! verdict is only valid for those, and none reached against an older index
//! is used once the isolate knows a newer one. Two tiers share the key:
//! * this isolate's map (no I/O at all), bounded and expiring by the
//!   policy's `verdict_cache` settings;
//! * the colo's Cache API ([`CacheKey::url`], [`SharedVerdict`]), which every
//!   isolate of the data centre shares, so a repeat image costs no index
//!   read in a fresh isolate either.
//!
//! There is deliberately no key by URL and `ETag`: an origin may serve
//! different bytes under the same URL and ETag (a careless deploy, or an
//! attacker who controls the origin), and a verdict reached by name would let
//! them through. The body is always read and its SHA-256 taken (Web Crypto,
//! a fraction of a millisecond per MiB) before any remembered verdict is used.
//!
//! Failures are never remembered: a transient KV error must not stick. The
//! clock is passed in (milliseconds), which keeps this module pure.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::verdict::{ImageSummary, Verdict};
use hashgate::matching::MatchRecord;

/// A remembered verdict and the image it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub image: ImageSummary,
    pub verdict: Verdict,
}

/// What a verdict is remembered under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// [`crate::policy::Route::verdict_key`].
    pub route: String,
    /// The index generation the verdict was reached against.
    pub generation: String,
    /// The SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// Host of the Cache API keys: a reserved name (RFC 2606) that no request
/// can carry, so no client fetch can collide with a verdict entry.
const SHARED_HOST: &str = "verdicts.hashgate.invalid";

impl CacheKey {
    /// The key's URL in the colo's Cache API. The route key is hashed into
    /// the path (it holds list names and punctuation).
    pub fn url(&self) -> String {
        use sha2::{Digest, Sha256};
        let route = hex::encode(&Sha256::digest(self.route.as_bytes())[..8]);
        format!(
            "https://{SHARED_HOST}/v1/{}/{route}/{}",
            self.generation, self.sha256
        )
    }
}

/// A verdict as stored in the Cache API: JSON, versioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedVerdict {
    pub v: u32,
    pub image: ImageSummary,
    /// Empty: clean.
    pub matches: Vec<MatchRecord>,
}

impl SharedVerdict {
    pub const VERSION: u32 = 1;

    pub fn from_cached(cached: &Cached) -> Self {
        SharedVerdict {
            v: Self::VERSION,
            image: cached.image.clone(),
            matches: match &cached.verdict {
                Verdict::Clean => Vec::new(),
                Verdict::Match(matches) => matches.clone(),
            },
        }
    }

    /// The remembered verdict, if it is one this build understands and it is
    /// about the bytes asked for.
    pub fn into_cached(self, sha256: &str) -> Option<Cached> {
        if self.v != Self::VERSION || self.image.sha256 != sha256 {
            return None;
        }
        let verdict = if self.matches.is_empty() {
            Verdict::Clean
        } else {
            Verdict::Match(self.matches)
        };
        Some(Cached {
            image: self.image,
            verdict,
        })
    }
}

struct Entry {
    value: Cached,
    expires_ms: f64,
    seq: u64,
}

/// A bounded, expiring map of verdicts.
pub struct VerdictCache {
    entries: HashMap<CacheKey, Entry>,
    /// Insertion order, for eviction; stale pairs (re-inserted keys) are
    /// skipped when popped.
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
    ttl_ms: f64,
    max_entries: usize,
    pub hits: u64,
    pub misses: u64,
}

impl VerdictCache {
    pub fn new(ttl_seconds: u32, max_entries: usize) -> Self {
        VerdictCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            ttl_ms: f64::from(ttl_seconds) * 1000.0,
            max_entries: max_entries.max(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Applies new settings (a reloaded policy); shrinking evicts.
    pub fn configure(&mut self, ttl_seconds: u32, max_entries: usize) {
        self.ttl_ms = f64::from(ttl_seconds) * 1000.0;
        self.max_entries = max_entries.max(1);
        if ttl_seconds == 0 {
            self.entries.clear();
            self.order.clear();
        }
        self.evict();
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.ttl_ms > 0.0
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verdict under `key`, if present and not expired.
    pub fn get(&mut self, key: &CacheKey, now_ms: f64) -> Option<Cached> {
        if !self.enabled() {
            return None;
        }
        match self.entries.get(key) {
            Some(entry) if entry.expires_ms > now_ms => {
                self.hits += 1;
                Some(entry.value.clone())
            }
            Some(_) => {
                self.entries.remove(key);
                self.misses += 1;
                None
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Remembers a verdict.
    pub fn insert(&mut self, key: CacheKey, value: Cached, now_ms: f64) {
        if !self.enabled() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                value,
                expires_ms: now_ms + self.ttl_ms,
                seq,
            },
        );
        self.order.push_back((key, seq));
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > self.max_entries {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.entries.remove(&key);
            }
        }
        // Keep the order queue from growing without bound on re-inserts.
        if self.order.len() > 2 * self.max_entries + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(tag: &str) -> Cached {
        Cached {
            image: ImageSummary {
                sha256: tag.into(),
                pdq: String::new(),
                format: "jpeg".into(),
                width: 1,
                height: 1,
            },
            verdict: Verdict::Clean,
        }
    }

    fn key(n: u32) -> CacheKey {
        CacheKey {
            route: "t31:*".into(),
            generation: "g1".into(),
            sha256: n.to_string(),
        }
    }

    #[test]
    fn hit_miss_and_expiry() {
        let mut cache = VerdictCache::new(10, 100);
        assert_eq!(cache.get(&key(1), 0.0), None);
        cache.insert(key(1), cached("a"), 0.0);
        assert_eq!(cache.get(&key(1), 9_999.0), Some(cached("a")));
        assert_eq!(cache.get(&key(1), 10_000.0), None);
        assert!(cache.is_empty());
        assert_eq!((cache.hits, cache.misses), (1, 2));
    }

    #[test]
    fn keys_are_per_route_and_generation() {
        let mut cache = VerdictCache::new(10, 100);
        cache.insert(key(1), cached("a"), 0.0);
        let other_route = CacheKey {
            route: "t10:demo".into(),
            ..key(1)
        };
        assert_eq!(cache.get(&other_route, 1.0), None);
        let newer_index = CacheKey {
            generation: "g2".into(),
            ..key(1)
        };
        assert_eq!(cache.get(&newer_index, 1.0), None);
        assert_eq!(cache.get(&key(1), 1.0), Some(cached("a")));
    }

    #[test]
    fn shared_urls_differ_by_every_part_of_the_key() {
        let base = key(1).url();
        assert!(base.starts_with("https://verdicts.hashgate.invalid/v1/g1/"));
        for other in [
            CacheKey {
                route: "t10:demo".into(),
                ..key(1)
            },
            CacheKey {
                generation: "g2".into(),
                ..key(1)
            },
            key(2),
        ] {
            assert_ne!(other.url(), base);
        }
    }

    #[test]
    fn shared_verdicts_round_trip_and_refuse_other_bytes() {
        let clean = cached("abc");
        let shared = SharedVerdict::from_cached(&clean);
        let json = serde_json::to_string(&shared).unwrap();
        let back: SharedVerdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back.clone().into_cached("abc"), Some(clean));
        assert_eq!(back.into_cached("other"), None);
        let old = SharedVerdict { v: 0, ..shared };
        assert_eq!(old.into_cached("abc"), None);
    }

    #[test]
    fn evicts_oldest_beyond_the_limit() {
        let mut cache = VerdictCache::new(100, 3);
        for n in 0..5 {
            cache.insert(key(n), cached(&n.to_string()), 0.0);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(0), 1.0), None);
        assert_eq!(cache.get(&key(1), 1.0), None);
        assert!(cache.get(&key(4), 1.0).is_some());
        // Re-inserting a key many times does not grow the order queue.
        for _ in 0..1000 {
            cache.insert(key(4), cached("again"), 0.0);
        }
        assert!(cache.order.len() <= 2 * 3 + 16);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn ttl_zero_turns_it_off() {
        let mut cache = VerdictCache::new(100, 3);
        cache.insert(key(1), cached("a"), 0.0);
        cache.configure(0, 3);
        assert!(!cache.enabled());
        cache.insert(key(2), cached("b"), 0.0);
        assert_eq!(cache.get(&key(1), 0.0), None);
        assert_eq!(cache.get(&key(2), 0.0), None);
    }
}
