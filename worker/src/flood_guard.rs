//! The flood guard: a list entry that suddenly matches many distinct images
//! is suspended, so one bad entry (a hash of a stock photo, a logo, a blank
//! frame that slipped into a list) cannot block a whole site.
//!
//! The queue consumer counts, per list entry, the distinct images (by
//! SHA-256) it matched within a sliding window, in the D1 table
//! `entry_images` (schema in `worker/migrations/0001_stored.sql`, beside
//! the hash log). When an entry matches
//! more than `max_images` distinct images within `window_seconds`, the
//! consumer marks it `suspended` in `hg2/overrides`
//! ([`hashgate::overrides`]), writes an audit entry by [`GUARD_NAME`] and
//! logs one `entry_suspended` line (error level), which is how it is
//! reported for review: the console's audit log and list health show it,
//! and a person turns it on again (`hashgate index enable`) or off for
//! good.
//!
//! A suspended entry does not vanish: its matches still raise sightings
//! and reports, they are only flagged instead of blocked. Turning the entry
//! off entirely would hand an attacker a switch: upload `max_images + 1`
//! altered copies of a listed image and the original passes unseen. With
//! suspension the worst an attacker gets is flag-only for that one entry
//! until a person looks, and every copy is still on record.
//!
//! ```json
//! "flood_guard": {"max_images": 100, "window_seconds": 3600}
//! ```
//!
//! Defaults: 100 distinct images per hour; `"max_images": 0` turns the
//! guard off. The count is exact (one D1 row per entry and image, primary
//! key on both), so two consumers seeing the same image count it once.
//! Counting happens in the consumer, after the response: the guard acts
//! within the queue's delivery delay plus `index.refresh_seconds` (when
//! isolates read the overrides again).

use serde::Deserialize;
use thiserror::Error;

use hashgate::matching::MatchRecord;
use hashgate::overrides::{EntryOverride, EntryState, Overrides};

/// The `by` of the overrides and audit entries the guard writes.
pub const GUARD_NAME: &str = "flood-guard";
/// Default: more distinct images than this within the window suspends.
pub const DEFAULT_MAX_IMAGES: u32 = 100;
/// Default window: one hour.
pub const DEFAULT_WINDOW_SECONDS: u32 = 3600;
/// Longest window: seven days (rows older than the window are deleted by
/// the scheduled tick, so the table stays small).
pub const MAX_WINDOW_SECONDS: u32 = 7 * 86_400;

/// Records that an entry matched an image (a repeat keeps the first time).
pub const RECORD: &str =
    "INSERT OR IGNORE INTO entry_images (list, type, hash, sha256, seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Distinct images an entry matched since `?4` (ms).
pub const COUNT: &str = "SELECT count(*) AS n FROM entry_images \
     WHERE list = ?1 AND type = ?2 AND hash = ?3 AND seen_ms >= ?4";

/// Forgets what is older than every window (`?1`, ms).
pub const PRUNE: &str = "DELETE FROM entry_images WHERE seen_ms < ?1";

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodGuard {
    /// More distinct images than this within the window suspends the
    /// entry; 0: the guard is off.
    pub max_images: u32,
    pub window_seconds: u32,
}

impl Default for FloodGuard {
    fn default() -> Self {
        FloodGuard {
            max_images: DEFAULT_MAX_IMAGES,
            window_seconds: DEFAULT_WINDOW_SECONDS,
        }
    }
}

/// `flood_guard` as written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodGuardDoc {
    #[serde(default = "default_max_images")]
    max_images: u32,
    #[serde(default = "default_window")]
    window_seconds: u32,
}

fn default_max_images() -> u32 {
    DEFAULT_MAX_IMAGES
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_SECONDS
}

/// What is wrong with `flood_guard`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FloodGuardError {
    #[error("flood_guard.window_seconds {0} is out of range 60..={MAX_WINDOW_SECONDS}")]
    Window(u32),
}

impl FloodGuard {
    /// Validates the policy's section (absent: the defaults).
    pub fn from_doc(doc: Option<FloodGuardDoc>) -> Result<Self, FloodGuardError> {
        let Some(doc) = doc else {
            return Ok(FloodGuard::default());
        };
        if !(60..=MAX_WINDOW_SECONDS).contains(&doc.window_seconds) {
            return Err(FloodGuardError::Window(doc.window_seconds));
        }
        Ok(FloodGuard {
            max_images: doc.max_images,
            window_seconds: doc.window_seconds,
        })
    }

    /// Whether the guard counts at all.
    pub fn is_on(&self) -> bool {
        self.max_images > 0
    }

    /// The start of the window that ends at `now_ms`.
    pub fn window_start_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from(self.window_seconds) * 1000)
    }

    /// Whether `distinct_images` within the window is too many.
    pub fn is_flooded(&self, distinct_images: u64) -> bool {
        self.is_on() && distinct_images > u64::from(self.max_images)
    }

    /// The override that suspends `entry`, unless a person already turned
    /// it off or the guard already suspended it (either way nothing to do).
    pub fn suspension(
        &self,
        overrides: &Overrides,
        entry: &MatchRecord,
        distinct_images: u64,
        at: &str,
    ) -> Option<EntryOverride> {
        if !self.is_flooded(distinct_images)
            || overrides
                .entry_state(&entry.list, &entry.kind, &entry.hash)
                .is_some()
        {
            return None;
        }
        Some(EntryOverride {
            list: entry.list.clone(),
            kind: entry.kind.clone(),
            hash: entry.hash.clone(),
            state: EntryState::Suspended,
            at: at.to_owned(),
            by: GUARD_NAME.to_owned(),
            reason: format!(
                "matched {distinct_images} distinct images within {} s (more than {})",
                self.window_seconds, self.max_images
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> MatchRecord {
        MatchRecord {
            list: "demo".into(),
            kind: "pdq".into(),
            hash: "ab".repeat(32),
            distance: 0,
            id: Some("demo-1".into()),
            variant: None,
        }
    }

    fn doc(json: &str) -> Result<FloodGuard, FloodGuardError> {
        FloodGuard::from_doc(Some(serde_json::from_str(json).unwrap()))
    }

    #[test]
    fn defaults_and_off() {
        assert_eq!(FloodGuard::from_doc(None).unwrap(), FloodGuard::default());
        assert_eq!(doc("{}").unwrap(), FloodGuard::default());
        let off = doc(r#"{"max_images": 0}"#).unwrap();
        assert!(!off.is_on());
        assert!(!off.is_flooded(1_000_000));
    }

    #[test]
    fn refuses_a_window_out_of_range() {
        assert_eq!(
            doc(r#"{"window_seconds": 59}"#),
            Err(FloodGuardError::Window(59))
        );
        assert_eq!(
            doc(&format!(
                r#"{{"window_seconds": {}}}"#,
                MAX_WINDOW_SECONDS + 1
            )),
            Err(FloodGuardError::Window(MAX_WINDOW_SECONDS + 1))
        );
    }

    #[test]
    fn suspends_only_past_the_limit() {
        let guard = doc(r#"{"max_images": 3, "window_seconds": 60}"#).unwrap();
        let none = Overrides::default();
        assert!(guard.suspension(&none, &entry(), 3, "t").is_none());
        let s = guard.suspension(&none, &entry(), 4, "t").unwrap();
        assert_eq!(s.state, EntryState::Suspended);
        assert_eq!(s.by, GUARD_NAME);
        assert_eq!((s.list.as_str(), s.kind.as_str()), ("demo", "pdq"));
        assert!(s.reason.contains("4 distinct images"), "{}", s.reason);
        assert_eq!(guard.window_start_ms(100_000), 40_000);
        assert_eq!(guard.window_start_ms(10), 0);
    }

    #[test]
    fn leaves_an_entry_a_person_or_the_guard_already_turned_off() {
        let guard = doc(r#"{"max_images": 1}"#).unwrap();
        let mut overrides = Overrides::default();
        let e = entry();
        let first = guard.suspension(&overrides, &e, 2, "t").unwrap();
        overrides.turn_off(first, 1);
        assert!(guard.suspension(&overrides, &e, 50, "t").is_none());
    }
}
