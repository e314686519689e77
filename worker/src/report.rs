//! Report records: what the queue consumer keeps in the `REPORTS` KV
//! namespace, deduplicated by content.
//!
//! One record per image (SHA-256) and route: the first event creates it,
//! repeats increment `count`, move `last_seen` and add the URL and request
//! id (bounded lists), so a popular listed image makes one record, not a
//! million. Each write sets the KV expiration to one year after the last
//! sighting: US law (18 U.S.C. 2258A, as amended by the REPORT Act of 2024)
//! requires a provider that reports to NCMEC's CyberTipline to preserve the
//! report for one year. The record holds identities (hashes, list entry,
//! URLs), not the image: whoever must preserve the content fetches it from
//! the origin under their own access controls.
//!
//! Queues deliver at least once, so merging is idempotent: the ids of the
//! events already counted are kept (the most recent [`MAX_EVENT_IDS`]) and a
//! redelivered event changes nothing. "Unscanned" events (fail mode) are
//! operational, not legal, records: they are kept 30 days under their own
//! prefix. Keys:
//!
//! ```text
//! report/v1/<sha256>/<route id>      match records, 1 year after last seen
//! unscanned/v1/<id>/<route id>       unscanned records, 30 days (<id>: sha256, or url-<sha256 of URL>)
//! dead/v1/<event id>                 events the consumer gave up on (from the dead-letter queue), 1 year
//! ```
//!
//! `<route id>` is the first 16 hex digits of the SHA-256 of the route
//! pattern (patterns contain `/` and `*`); the pattern itself is in the record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{ActionTaken, Direction, Event, EventKind};
use hashgate::matching::MatchRecord;

pub const REPORT_PREFIX: &str = "report/v1/";
pub const UNSCANNED_PREFIX: &str = "unscanned/v1/";
pub const DEAD_PREFIX: &str = "dead/v1/";
/// One year, in seconds (the REPORT Act's preservation period).
pub const REPORT_RETENTION_SECONDS: u64 = 365 * 24 * 60 * 60;
/// Unscanned records are kept 30 days.
pub const UNSCANNED_RETENTION_SECONDS: u64 = 30 * 24 * 60 * 60;
/// Distinct URLs kept per record.
pub const MAX_URLS: usize = 20;
/// Request ids kept per record (most recent).
pub const MAX_REQUEST_IDS: usize = 20;
/// Event ids kept per record for idempotency (most recent).
pub const MAX_EVENT_IDS: usize = 64;

/// Counts of what was done with the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCounts {
    #[serde(default)]
    pub blocked: u64,
    #[serde(default)]
    pub flagged: u64,
    #[serde(default)]
    pub passed: u64,
    #[serde(default)]
    pub refused: u64,
    /// Stored objects (written only when not zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quarantined: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ActionCounts {
    fn add(&mut self, action: ActionTaken) {
        match action {
            ActionTaken::Blocked => self.blocked += 1,
            ActionTaken::Flagged => self.flagged += 1,
            ActionTaken::Passed => self.passed += 1,
            ActionTaken::Refused => self.refused += 1,
            ActionTaken::Quarantined => self.quarantined += 1,
            ActionTaken::Deleted => self.deleted += 1,
        }
    }
}

/// One report record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub key: String,
    pub route: String,
    pub sha256: Option<String>,
    pub pdq: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub last_seen_ms: u64,
    /// Events counted (sightings).
    pub count: u64,
    pub actions: ActionCounts,
    pub directions: Vec<Direction>,
    /// The closest match and up to 8 more (match records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<MatchRecord>,
    /// Why the image could not be checked (unscanned records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub urls: Vec<String>,
    pub request_ids: Vec<String>,
    pub event_ids: Vec<String>,
    /// When the route's webhook acknowledged the notification.
    pub notified_at: Option<String>,
    /// The KV expiration set on the last write (RFC 3339).
    pub retain_until: String,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// A new record.
    Created,
    /// An existing record counted one more sighting.
    Updated,
    /// The event was already counted (queue redelivery): nothing changed.
    Duplicate,
}

/// Short id of a route pattern for keys.
pub fn route_id(pattern: &str) -> String {
    hex::encode(&Sha256::digest(pattern.as_bytes())[..8])
}

/// The KV key of the record an event belongs to.
pub fn record_key(event: &Event) -> String {
    let route = route_id(&event.route);
    match event.kind {
        EventKind::Match => {
            let digest = event.sha256.clone().unwrap_or_else(|| url_id(&event.url));
            format!("{REPORT_PREFIX}{digest}/{route}")
        }
        EventKind::Unscanned => {
            let id = event.sha256.clone().unwrap_or_else(|| url_id(&event.url));
            format!("{UNSCANNED_PREFIX}{id}/{route}")
        }
    }
}

fn url_id(url: &str) -> String {
    format!("url-{}", hex::encode(Sha256::digest(url.as_bytes())))
}

/// How long a record of this kind is kept after its last sighting.
pub fn retention_seconds(kind: EventKind) -> u64 {
    match kind {
        EventKind::Match => REPORT_RETENTION_SECONDS,
        EventKind::Unscanned => UNSCANNED_RETENTION_SECONDS,
    }
}

/// The KV key of a dead-lettered event.
pub fn dead_key(event_id: &str) -> String {
    format!("{DEAD_PREFIX}{event_id}")
}

/// Creates or updates the record for `event`. `now_ms` is the consumer's
/// clock (the retention is counted from the write).
pub fn merge(existing: Option<ReportRecord>, event: &Event, now_ms: u64) -> (ReportRecord, Merge) {
    let retain_until =
        crate::events::rfc3339(now_ms.saturating_add(retention_seconds(event.kind) * 1000));
    let Some(mut record) = existing else {
        let matches = event.matches.clone();
        let mut actions = ActionCounts::default();
        actions.add(event.action);
        let record = ReportRecord {
            v: 1,
            kind: event.kind,
            key: record_key(event),
            route: event.route.clone(),
            sha256: event.sha256.clone(),
            pdq: event.pdq.clone(),
            first_seen: event.time.clone(),
            last_seen: event.time.clone(),
            last_seen_ms: event.time_ms,
            count: 1,
            actions,
            directions: vec![event.direction],
            matches,
            reason: event.reason.clone(),
            urls: vec![event.url.clone()],
            request_ids: vec![event.request_id.clone()],
            event_ids: vec![event.id.clone()],
            notified_at: None,
            retain_until,
        };
        return (record, Merge::Created);
    };
    if record.event_ids.contains(&event.id) {
        return (record, Merge::Duplicate);
    }
    // A stored count is input (read back from KV): never overflow on it.
    record.count = record.count.saturating_add(1);
    record.actions.add(event.action);
    if event.time_ms >= record.last_seen_ms {
        record.last_seen = event.time.clone();
        record.last_seen_ms = event.time_ms;
    }
    if !record.directions.contains(&event.direction) {
        record.directions.push(event.direction);
    }
    if record.pdq.is_none() {
        record.pdq = event.pdq.clone();
    }
    if !record.urls.contains(&event.url) && record.urls.len() < MAX_URLS {
        record.urls.push(event.url.clone());
    }
    push_bounded(
        &mut record.request_ids,
        event.request_id.clone(),
        MAX_REQUEST_IDS,
    );
    push_bounded(&mut record.event_ids, event.id.clone(), MAX_EVENT_IDS);
    if event.reason.is_some() {
        record.reason = event.reason.clone();
    }
    record.retain_until = retain_until;
    (record, Merge::Updated)
}

fn push_bounded(list: &mut Vec<String>, value: String, max: usize) {
    list.push(value);
    if list.len() > max {
        let excess = list.len() - max;
        list.drain(..excess);
    }
}

/// A dead-lettered event as kept in `REPORTS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub v: u32,
    pub received: String,
    pub queue: String,
    /// The message body as delivered (normally an [`Event`]).
    pub body: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventContext;
    use crate::policy::Action;
    use crate::verdict::ImageSummary;

    fn event(id: &str, url: &str, time_ms: u64) -> Event {
        let cx = EventContext {
            request_id: format!("req-{id}"),
            route: "example.com/images/*".into(),
            url: url.into(),
            direction: Direction::Response,
            field: None,
            filename: None,
        };
        let image = ImageSummary {
            sha256: "aa".repeat(32),
            pdq: "bb".repeat(32),
            format: "jpeg".into(),
            width: 1,
            height: 1,
        };
        let m = MatchRecord {
            list: "demo".into(),
            id: Some("demo-1".into()),
            kind: "pdq".into(),
            hash: "cc".repeat(32),
            distance: 4,
            variant: Some("orig".into()),
        };
        Event::matched(
            id.into(),
            time_ms as f64,
            &cx,
            Action::Block,
            &image,
            &[m],
            false,
        )
    }

    #[test]
    fn creates_then_counts_repeats_once() {
        let first = event("e1", "https://example.com/images/a.jpg", 1_000);
        let (record, outcome) = merge(None, &first, 1_000);
        assert_eq!(outcome, Merge::Created);
        assert_eq!(record.count, 1);
        assert_eq!(
            record.key,
            format!(
                "report/v1/{}/{}",
                "aa".repeat(32),
                route_id("example.com/images/*")
            )
        );
        assert_eq!(record.matches.len(), 1);
        assert_eq!(record.matches[0].id.as_deref(), Some("demo-1"));
        assert_eq!(record.actions.blocked, 1);
        assert_eq!(record.retain_until, "1971-01-01T00:00:01.000Z");

        let again = event("e2", "https://example.com/images/b.jpg", 5_000);
        let (record, merge2) = merge(Some(record), &again, 5_000);
        assert_eq!(merge2, Merge::Updated);
        assert_eq!(record.count, 2);
        assert_eq!(record.first_seen, first.time);
        assert_eq!(record.last_seen, again.time);
        assert_eq!(record.urls.len(), 2);

        // Redelivery of e2 changes nothing.
        let (same, merge3) = merge(Some(record.clone()), &again, 9_000);
        assert_eq!(merge3, Merge::Duplicate);
        assert_eq!(same, record);
    }

    #[test]
    fn a_stored_count_at_the_limit_does_not_overflow() {
        // Found by the queue_event fuzz target: the record is read back from
        // KV, so its count is input.
        let (mut record, _) = merge(None, &event("e0", "https://x/0", 0), 0);
        record.count = u64::MAX;
        let (record, outcome) = merge(Some(record), &event("e1", "https://x/1", 1), 1);
        assert_eq!(outcome, Merge::Updated);
        assert_eq!(record.count, u64::MAX);
    }

    #[test]
    fn lists_stay_bounded() {
        let (mut record, _) = merge(None, &event("e0", "https://x/0", 0), 0);
        for i in 1..200 {
            record = merge(
                Some(record),
                &event(&format!("e{i}"), &format!("https://x/{i}"), i),
                i,
            )
            .0;
        }
        assert_eq!(record.count, 200);
        assert_eq!(record.urls.len(), MAX_URLS);
        assert_eq!(record.event_ids.len(), MAX_EVENT_IDS);
        assert_eq!(record.event_ids.last().map(String::as_str), Some("e199"));
        assert_eq!(record.request_ids.len(), MAX_REQUEST_IDS);
    }

    #[test]
    fn unscanned_keys_fall_back_to_the_url() {
        let cx = EventContext {
            request_id: "r".into(),
            route: "*/*".into(),
            url: "https://x/big.jpg".into(),
            direction: Direction::Upload,
            field: None,
            filename: None,
        };
        let e = Event::unscanned(
            "u1".into(),
            0.0,
            &cx,
            ActionTaken::Passed,
            &crate::error::ScanError::OverCap { cap: 1 },
            None,
        );
        let key = record_key(&e);
        assert!(key.starts_with("unscanned/v1/url-"), "{key}");
        assert_eq!(retention_seconds(e.kind), UNSCANNED_RETENTION_SECONDS);
        let (record, _) = merge(None, &e, 0);
        assert_eq!(record.reason.as_deref(), Some("over-cap"));
        assert_eq!(record.actions.passed, 1);
    }
}
