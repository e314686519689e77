//! The hash log: the hashes (PDQ and the three digests, never bytes) of
//! every object scanned in a bucket and every image scanned at the edge,
//! with the verdict and the index generation of its last scan. One table
//! in D1 (`HASH_LOG`, schema in `worker/migrations/0001_stored.sql`).
//!
//! It serves three purposes with one row per location:
//! * backfill dedupe: an object whose row has the same ETag and generation
//!   is not scanned again (a re-run, a redelivered message, a restart);
//! * backfill progress: scanned / matched / failed are counts of rows under
//!   the prefix for the backfill's generation (an index range scan), so
//!   they are exact whatever was retried;
//! * retroactive matching ([`crate::retro`]): when a generation adds list
//!   hashes, the rows are read in `rowid` pages and matched against the
//!   added hashes only.
//!
//! Why D1 and not R2 or KV: dedupe needs a read of one row per object and
//! an upsert (KV would do, at $0.50 and $5.00 per million against D1's
//! $0.001 and $1.00 per million rows), progress needs counts by prefix (KV
//! would need a list per count) and retroactive matching needs pages of
//! rows in order (a query). R2 would hold the log as cheap append-only
//! files but needs a second store for dedupe. Sizes: about 400 bytes a row
//! with its index entry (hex hashes: 200 bytes), so 10^6 objects are about
//! 0.4 GB of D1's 10 GB per database; `scripts/bench-stored.mjs` prints the
//! measured figure.

use serde::{Deserialize, Serialize};

/// The schema, one statement per `;`, each idempotent.
pub const SCHEMA: &str = include_str!("../migrations/0001_stored.sql");

/// The statements of [`SCHEMA`] (comments dropped).
pub fn schema_statements() -> Vec<String> {
    let without_comments: String = SCHEMA
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanResult {
    Clean,
    Match,
    /// Could not be checked (undecodable, over `max_bytes`, unreadable).
    Failed,
    /// Not an image (nothing to check).
    Other,
}

impl ScanResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanResult::Clean => "clean",
            ScanResult::Match => "match",
            ScanResult::Failed => "failed",
            ScanResult::Other => "other",
        }
    }
}

/// Upsert one row (parameters in [`LogRow`] order).
pub const UPSERT: &str = "INSERT INTO hash_log (location, etag, generation, result, route, direction, pdq, md5, sha1, sha256, detail, scanned_ms, pdq_quality) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
     ON CONFLICT (location) DO UPDATE SET etag = excluded.etag, generation = excluded.generation, \
     result = excluded.result, route = excluded.route, direction = excluded.direction, pdq = excluded.pdq, \
     md5 = excluded.md5, sha1 = excluded.sha1, sha256 = excluded.sha256, detail = excluded.detail, \
     scanned_ms = excluded.scanned_ms, pdq_quality = excluded.pdq_quality, scans = hash_log.scans + 1";

/// The ETag and generation of a location's last scan.
pub const LAST_SCAN: &str = "SELECT etag, generation, result FROM hash_log WHERE location = ?1";

/// Counts by result of one generation's rows in `[?2, ?3)`.
pub const PROGRESS: &str = "SELECT result, count(*) AS n FROM hash_log \
     WHERE generation = ?1 AND location >= ?2 AND location < ?3 GROUP BY result";

/// A page of rows for a retroactive pass.
pub const PAGE: &str =
    "SELECT rowid AS row, location, etag, generation, route, direction, pdq, pdq_quality, md5, sha1, sha256 \
     FROM hash_log WHERE rowid > ?1 AND pdq IS NOT NULL ORDER BY rowid LIMIT ?2";

/// One row as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRow {
    pub location: String,
    pub etag: String,
    pub generation: String,
    pub result: ScanResult,
    pub route: String,
    pub direction: String,
    pub pdq: Option<String>,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub detail: Option<String>,
    pub scanned_ms: u64,
    /// The PDQ hash's quality (0..=100): the quality rule of list hygiene
    /// applies to retroactive matches too.
    pub pdq_quality: Option<u8>,
}

/// The last scan of a location.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LastScan {
    pub etag: String,
    pub generation: String,
    pub result: ScanResult,
}

impl LastScan {
    /// Whether this object version was already scanned with this
    /// generation (so scanning again would change nothing).
    pub fn covers(&self, etag: &str, generation: &str) -> bool {
        self.etag == etag && self.generation == generation
    }
}

/// A row read for a retroactive pass.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PageRow {
    pub row: i64,
    pub location: String,
    pub etag: String,
    pub generation: String,
    pub route: String,
    pub direction: String,
    pub pdq: Option<String>,
    #[serde(default)]
    pub pdq_quality: Option<u8>,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// The `[low, high)` range of locations under an `r2://bucket/prefix`.
pub fn prefix_range(bucket: &str, prefix: &str) -> (String, String) {
    let low = crate::stored_message::location(bucket, prefix);
    // U+10FFFF sorts after every character a key can hold (SQLite compares
    // text as UTF-8 bytes).
    let high = format!("{low}\u{10FFFF}");
    (low, high)
}

/// Progress of a backfill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub listed: u64,
    /// Every object with a row for the generation (clean, match, failed,
    /// other).
    pub scanned: u64,
    pub matched: u64,
    pub failed: u64,
    /// Not images.
    pub other: u64,
}

impl Progress {
    /// Adds the counts of a [`PROGRESS`] query.
    pub fn add_counts(&mut self, counts: &[(ScanResult, u64)]) {
        for (result, n) in counts {
            self.scanned += n;
            match result {
                ScanResult::Match => self.matched += n,
                ScanResult::Failed => self.failed += n,
                ScanResult::Other => self.other += n,
                ScanResult::Clean => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_splits_into_statements() {
        let statements = schema_statements();
        assert_eq!(statements.len(), 5);
        assert!(statements
            .iter()
            .all(|s| s.starts_with("CREATE") && s.contains("IF NOT EXISTS")));
        for table in ["hash_log", "backfills", "entry_images"] {
            assert!(
                statements
                    .iter()
                    .any(|s| s.contains(&format!("TABLE IF NOT EXISTS {table} ("))),
                "{table}"
            );
        }
    }

    #[test]
    fn prefix_range_covers_the_prefix_only() {
        let (low, high) = prefix_range("b", "img/");
        for inside in ["r2://b/img/", "r2://b/img/a.jpg", "r2://b/img/\u{FFFF}x"] {
            assert!(low.as_str() <= inside && inside < high.as_str(), "{inside}");
        }
        for outside in ["r2://b/imf/z", "r2://b/img0", "r2://b2/img/a", "r2://b/im"] {
            assert!(
                !(low.as_str() <= outside && outside < high.as_str()),
                "{outside}"
            );
        }
    }

    #[test]
    fn progress_counts() {
        let mut p = Progress::default();
        p.add_counts(&[
            (ScanResult::Clean, 970),
            (ScanResult::Match, 20),
            (ScanResult::Failed, 3),
            (ScanResult::Other, 7),
        ]);
        assert_eq!((p.scanned, p.matched, p.failed, p.other), (1000, 20, 3, 7));
    }

    #[test]
    fn last_scan_covers_same_version_and_generation() {
        let last = LastScan {
            etag: "e".into(),
            generation: "g".into(),
            result: ScanResult::Clean,
        };
        assert!(last.covers("e", "g"));
        assert!(!last.covers("e2", "g"));
        assert!(!last.covers("e", "g2"));
    }
}
