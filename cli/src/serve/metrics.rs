//! Counters for `GET /metrics`, in the Prometheus text format (version
//! 0.0.4), written by hand: a handful of series does not justify a metrics
//! library, and the format is a few lines of text. `prometheus-client` would
//! not keep them as they are: its encoder writes OpenMetrics text (a
//! trailing `# EOF`, `_total` appended to every counter's name, its own
//! content type), which changes the series scrapers and dashboards read.
//!
//! Label values come from fixed sets (endpoints, status codes, error kinds)
//! or from the index (list names), so the number of series stays bounded
//! whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::reload::LoadedIndex;

/// Upper bounds of the hashing latency buckets, in seconds.
const HASH_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Everything the service counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    matches: Mutex<BTreeMap<(String, String), u64>>,
    images_matched: AtomicU64,
    hash: Histogram,
    inflight: AtomicI64,
    admitted: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`HASH_BUCKETS`], then `+Inf`.
    buckets: [AtomicU64; HASH_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    // A poisoned lock only means another thread panicked mid-increment;
    // the counts are still usable.
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    *map.entry(key).or_insert(0) += by;
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        bump(&self.requests, (endpoint, status), 1);
    }

    /// One error answer, by kind.
    pub fn error(&self, kind: &'static str) {
        bump(&self.errors, kind, 1);
    }

    /// The matches found for one query.
    pub fn matched<'a>(&self, matches: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut any = false;
        for (list, kind) in matches {
            any = true;
            bump(&self.matches, (list.to_owned(), kind.to_owned()), 1);
        }
        if any {
            self.images_matched.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Time spent hashing one image.
    pub fn hashed(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let first = HASH_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(HASH_BUCKETS.len());
        for bucket in &self.hash.buckets[first..] {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.hash.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A request was admitted (`+1`) or finished (`-1`).
    pub fn inflight(&self, delta: i64) {
        if delta > 0 {
            self.admitted.fetch_add(1, Ordering::Relaxed);
        }
        self.inflight.fetch_add(delta, Ordering::Relaxed);
    }

    /// Requests in flight now.
    pub fn inflight_now(&self) -> i64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Requests admitted since the start.
    pub fn requests_handled(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// An index reload finished.
    pub fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text for `GET /metrics`.
    pub fn render(&self, index: &LoadedIndex) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hashgate_requests_total Requests answered, by endpoint and status code.\n\
             # TYPE hashgate_requests_total counter"
        );
        for ((endpoint, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "hashgate_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}"
            );
        }

        let _ = writeln!(
            out,
            "# HELP hashgate_errors_total Error answers, by kind.\n# TYPE hashgate_errors_total counter"
        );
        for (kind, n) in self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "hashgate_errors_total{{kind=\"{kind}\"}} {n}");
        }

        let _ = writeln!(
            out,
            "# HELP hashgate_matches_total List entries matched, by list and hash type.\n\
             # TYPE hashgate_matches_total counter"
        );
        for ((list, kind), n) in self
            .matches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "hashgate_matches_total{{list=\"{}\",type=\"{}\"}} {n}",
                escape(list),
                escape(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hashgate_matched_queries_total Queries (images or hashes) with at least one match.\n\
             # TYPE hashgate_matched_queries_total counter\n\
             hashgate_matched_queries_total {}",
            self.images_matched.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "# HELP hashgate_hash_duration_seconds Time to decode and hash one image.\n\
             # TYPE hashgate_hash_duration_seconds histogram"
        );
        for (le, bucket) in HASH_BUCKETS.iter().zip(&self.hash.buckets) {
            let _ = writeln!(
                out,
                "hashgate_hash_duration_seconds_bucket{{le=\"{le}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.hash.buckets[HASH_BUCKETS.len()].load(Ordering::Relaxed);
        let sum = self.hash.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "hashgate_hash_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             hashgate_hash_duration_seconds_sum {sum}\n\
             hashgate_hash_duration_seconds_count {count}"
        );

        let _ = writeln!(
            out,
            "# HELP hashgate_inflight_requests Requests admitted and not yet answered.\n\
             # TYPE hashgate_inflight_requests gauge\n\
             hashgate_inflight_requests {}",
            self.inflight.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "# HELP hashgate_index_records Distinct hashes in the loaded index.\n\
             # TYPE hashgate_index_records gauge\n\
             hashgate_index_records {}\n\
             # HELP hashgate_index_bytes Bytes the loaded index holds in memory (snapshot and tables).\n\
             # TYPE hashgate_index_bytes gauge\n\
             hashgate_index_bytes {}",
            index.index.distinct_hashes(),
            index.index.bytes()
        );
        let _ = writeln!(
            out,
            "# HELP hashgate_index_hashes Distinct hashes in the loaded index, by type.\n\
             # TYPE hashgate_index_hashes gauge"
        );
        for (kind, n) in &index.distinct {
            let _ = writeln!(
                out,
                "hashgate_index_hashes{{type=\"{}\"}} {n}",
                escape(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hashgate_index_loaded_timestamp_seconds When the loaded index was read.\n\
             # TYPE hashgate_index_loaded_timestamp_seconds gauge\n\
             hashgate_index_loaded_timestamp_seconds {}",
            index.loaded_unix_seconds()
        );
        let _ = writeln!(
            out,
            "# HELP hashgate_index_reloads_total Index reloads, by result.\n\
             # TYPE hashgate_index_reloads_total counter\n\
             hashgate_index_reloads_total{{result=\"ok\"}} {}\n\
             hashgate_index_reloads_total{{result=\"error\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\n\
                 process_resident_memory_bytes {rss}"
            );
        }
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// This process's resident memory, from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size is 4 KiB on every Linux target hashgate is built for.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.request("/v1/hash", 200);
        m.request("/v1/hash", 200);
        m.request("/v1/hash", 422);
        m.error("truncated");
        m.matched([("demo", "pdq"), ("demo", "sha256")]);
        m.matched([]);
        m.hashed(Duration::from_millis(3));
        m.hashed(Duration::from_secs(60));
        let text = m.render(&LoadedIndex::empty_for_tests());
        for line in [
            "hashgate_requests_total{endpoint=\"/v1/hash\",code=\"200\"} 2",
            "hashgate_requests_total{endpoint=\"/v1/hash\",code=\"422\"} 1",
            "hashgate_errors_total{kind=\"truncated\"} 1",
            "hashgate_matches_total{list=\"demo\",type=\"pdq\"} 1",
            "hashgate_matched_queries_total 1",
            "hashgate_hash_duration_seconds_bucket{le=\"0.0025\"} 0",
            "hashgate_hash_duration_seconds_bucket{le=\"0.005\"} 1",
            "hashgate_hash_duration_seconds_bucket{le=\"10\"} 1",
            "hashgate_hash_duration_seconds_bucket{le=\"+Inf\"} 2",
            "hashgate_hash_duration_seconds_count 2",
            "hashgate_index_records 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{line}");
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
