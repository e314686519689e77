//! Verdicts remembered per isolate, so a popular image is not decoded,
//! hashed and looked up again on every request.
//!
//! Two keys lead to one verdict:
//! * the SHA-256 of the bytes: the same file under any URL skips decoding,
//!   hashing and the KV reads (it is still read, to compute the digest);
//! * the URL plus the origin's `ETag`: a repeat of a known response is
//!   decided before its body is read, so a clean image streams through
//!   untouched and a listed one is refused without reading it.
//!
//! Both keys include the route's [`crate::policy::Route::verdict_key`]
//! (threshold and lists), since a verdict is only valid for those. Entries
//! expire after the policy's TTL so that index updates take effect, and the
//! oldest entries are evicted beyond the size limit. Failures are never
//! cached: a transient KV error must not stick. The clock is passed in
//! (milliseconds), which keeps this module pure and testable.

use std::collections::{HashMap, VecDeque};

use crate::verdict::{ImageSummary, Verdict};

/// A remembered verdict and the image it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub image: ImageSummary,
    pub verdict: Verdict,
}

/// A cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Digest {
        route: String,
        sha256: String,
    },
    Url {
        route: String,
        url: String,
        etag: String,
    },
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
        CacheKey::Digest {
            route: "t31:*".into(),
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
    fn keys_are_per_route() {
        let mut cache = VerdictCache::new(10, 100);
        cache.insert(key(1), cached("a"), 0.0);
        let other_route = CacheKey::Digest {
            route: "t10:demo".into(),
            sha256: "1".into(),
        };
        assert_eq!(cache.get(&other_route, 1.0), None);
        let url = CacheKey::Url {
            route: "t31:*".into(),
            url: "https://a/x.jpg".into(),
            etag: "\"1\"".into(),
        };
        cache.insert(url.clone(), cached("u"), 0.0);
        assert_eq!(cache.get(&url, 1.0), Some(cached("u")));
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
