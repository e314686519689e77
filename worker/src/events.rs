//! Events put on the `MATCH_EVENTS` queue, as versioned JSON.
//!
//! The fetch handler must answer quickly, so it only describes what
//! happened; the queue consumer ([`crate::report`]) turns events into
//! durable records and notifications. An event carries identities (the
//! image's SHA-256 and PDQ, the list entry), never image bytes: access to
//! the content itself is kept minimal, and a queue is no place for it.
//!
//! `v` is the schema version. A consumer refuses versions it does not know
//! (they go to the dead-letter queue rather than being misread); fields may
//! be added within a version, so unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::error::ScanError;
use crate::policy::Action;
use crate::verdict::{ImageSummary, MatchSummary};

/// The schema version this worker writes and reads.
pub const EVENT_VERSION: u32 = 1;
/// At most this many further matches are carried besides the closest.
pub const MAX_OTHER_MATCHES: usize = 8;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// An image matched a subscribed list.
    Match,
    /// An image could not be checked (the route's fail mode applied).
    Unscanned,
}

/// Where the image was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Served by the origin.
    Response,
    /// Sent by a client in a `PUT`/`POST`.
    Upload,
    /// An object in an R2 bucket (URL `r2://<bucket>/<key>`), see
    /// [`crate::stored_policy`].
    Stored,
}

/// What the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionTaken {
    /// Answered 451 (`action: block`).
    Blocked,
    /// Passed the original and reported (`action: flag`).
    Flagged,
    /// Could not check; passed the original (`fail: open`).
    Passed,
    /// Could not check; answered 503 (`fail: closed`).
    Refused,
    /// A stored object moved to the quarantine bucket.
    Quarantined,
    /// A stored object deleted.
    Deleted,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Unique per event (the consumer's idempotency key).
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub time_ms: u64,
    /// `cf-ray` when present, else a generated id (also in the 451 body).
    pub request_id: String,
    /// The matching route's pattern.
    pub route: String,
    pub url: String,
    pub direction: Direction,
    pub action: ActionTaken,
    /// The upload's form field and file name, for multipart uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The image, when it was hashed (absent if it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq: Option<String>,
    /// The closest match (match events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<String>,
    /// Further matches, closest first, at most [`MAX_OTHER_MATCHES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_matches: Vec<MatchSummary>,
    /// Why the image was not checked (unscanned events): a short code and
    /// the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Whether the verdict came from the verdict cache.
    #[serde(default)]
    pub cached: bool,
}

/// Context shared by the events of one request.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub request_id: String,
    pub route: String,
    pub url: String,
    pub direction: Direction,
    pub field: Option<String>,
    pub filename: Option<String>,
}

impl Event {
    fn base(
        kind: EventKind,
        id: String,
        now_ms: f64,
        cx: &EventContext,
        action: ActionTaken,
    ) -> Event {
        let time_ms = if now_ms.is_finite() && now_ms > 0.0 {
            now_ms as u64
        } else {
            0
        };
        Event {
            v: EVENT_VERSION,
            kind,
            id,
            time: rfc3339(time_ms),
            time_ms,
            request_id: cx.request_id.clone(),
            route: cx.route.clone(),
            url: cx.url.clone(),
            direction: cx.direction,
            action,
            field: cx.field.clone(),
            filename: cx.filename.clone(),
            sha256: None,
            pdq: None,
            list: None,
            entry_id: None,
            hash_type: None,
            list_hash: None,
            distance: None,
            matched_by: None,
            other_matches: Vec::new(),
            reason: None,
            detail: None,
            cached: false,
        }
    }

    /// A match: `matches` closest first (must not be empty to be useful;
    /// an empty slice gives an event without match fields).
    pub fn matched(
        id: String,
        now_ms: f64,
        cx: &EventContext,
        action: Action,
        image: &ImageSummary,
        matches: &[MatchSummary],
        cached: bool,
    ) -> Event {
        let taken = match action {
            Action::Block => ActionTaken::Blocked,
            Action::Flag => ActionTaken::Flagged,
        };
        let mut event = Event::base(EventKind::Match, id, now_ms, cx, taken);
        event.sha256 = Some(image.sha256.clone());
        event.pdq = Some(image.pdq.clone());
        event.cached = cached;
        if let Some((best, rest)) = matches.split_first() {
            event.list = Some(best.list.clone());
            event.entry_id = best.entry_id.clone();
            event.hash_type = Some(best.hash_type.clone());
            event.list_hash = Some(best.hash.clone());
            event.distance = Some(best.distance);
            event.matched_by = Some(best.matched_by.clone());
            event.other_matches = rest.iter().take(MAX_OTHER_MATCHES).cloned().collect();
        }
        event
    }

    /// An image that could not be checked.
    pub fn unscanned(
        id: String,
        now_ms: f64,
        cx: &EventContext,
        action: ActionTaken,
        error: &ScanError,
        sha256: Option<String>,
    ) -> Event {
        let mut event = Event::base(EventKind::Unscanned, id, now_ms, cx, action);
        event.reason = Some(error.reason().to_owned());
        event.detail = Some(error.to_string());
        event.sha256 = sha256;
        event
    }
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC with
/// milliseconds (`2026-04-26T12:00:00.000Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> EventContext {
        EventContext {
            request_id: "req-1".into(),
            route: "*/*".into(),
            url: "https://example.com/a.jpg".into(),
            direction: Direction::Response,
            field: None,
            filename: None,
        }
    }

    fn image() -> ImageSummary {
        ImageSummary {
            sha256: "ab".repeat(32),
            pdq: "cd".repeat(32),
            format: "jpeg".into(),
            width: 10,
            height: 10,
        }
    }

    fn m(list: &str, distance: u32) -> MatchSummary {
        MatchSummary {
            list: list.into(),
            entry_id: Some(format!("{list}-1")),
            hash_type: "pdq".into(),
            hash: "ef".repeat(32),
            distance,
            matched_by: "pdq-rot90".into(),
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_777_204_800_123), "2026-04-26T12:00:00.123Z");
    }

    #[test]
    fn match_event_json() {
        let matches: Vec<_> = (0..12).map(|i| m("demo", i)).collect();
        let event = Event::matched(
            "e1".into(),
            1_777_204_800_000.0,
            &cx(),
            Action::Block,
            &image(),
            &matches,
            false,
        );
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["type"], "match");
        assert_eq!(json["action"], "blocked");
        assert_eq!(json["direction"], "response");
        assert_eq!(json["list"], "demo");
        assert_eq!(json["entry_id"], "demo-1");
        assert_eq!(json["distance"], 0);
        assert_eq!(json["matched_by"], "pdq-rot90");
        assert_eq!(json["sha256"], "ab".repeat(32));
        assert_eq!(json["time"], "2026-04-26T12:00:00.000Z");
        assert_eq!(
            json["other_matches"].as_array().unwrap().len(),
            MAX_OTHER_MATCHES
        );
        assert!(json.get("reason").is_none());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(
            back,
            Event {
                other_matches: matches[1..=MAX_OTHER_MATCHES].to_vec(),
                ..event
            }
        );
    }

    #[test]
    fn unscanned_event_json() {
        let event = Event::unscanned(
            "e2".into(),
            0.0,
            &cx(),
            ActionTaken::Refused,
            &ScanError::OverCap { cap: 10 },
            None,
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "unscanned");
        assert_eq!(json["action"], "refused");
        assert_eq!(json["reason"], "over-cap");
        assert!(json.get("sha256").is_none());
    }

    #[test]
    fn reads_events_with_unknown_fields() {
        let event = Event::unscanned(
            "e3".into(),
            0.0,
            &cx(),
            ActionTaken::Passed,
            &ScanError::OverCap { cap: 1 },
            None,
        );
        let mut json = serde_json::to_value(&event).unwrap();
        json["added_later"] = serde_json::json!(true);
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}
