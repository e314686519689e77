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
//! be added within a version, so unknown fields are ignored. Version 2
//! carries `matches` in the one match shape of every output
//! ([`MatchRecord`]); version 1 events (the closest match in flat fields,
//! the rest in `other_matches`), which may still wait in a queue or the
//! outbox after an upgrade, are read and converted ([`read_event`]).

use serde::{Deserialize, Serialize};

use crate::error::ScanError;
use crate::policy::Action;
use hashgate::matching::MatchRecord;

use crate::verdict::ImageSummary;

/// The schema version this worker writes.
pub const EVENT_VERSION: u32 = 2;
/// At most this many matches are carried, closest first.
pub const MAX_MATCHES: usize = 9;

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

impl Direction {
    /// The name events, logs and manifests use.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Response => "response",
            Direction::Upload => "upload",
            Direction::Stored => "stored",
        }
    }
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

impl ActionTaken {
    /// The name events, logs and counters use.
    pub fn name(self) -> &'static str {
        match self {
            ActionTaken::Blocked => "blocked",
            ActionTaken::Flagged => "flagged",
            ActionTaken::Passed => "passed",
            ActionTaken::Refused => "refused",
            ActionTaken::Quarantined => "quarantined",
            ActionTaken::Deleted => "deleted",
        }
    }
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
    /// The matches, closest first, at most [`MAX_MATCHES`] (match events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<MatchRecord>,
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
            matches: Vec::new(),
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
        matches: &[MatchRecord],
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
        event.matches = matches.iter().take(MAX_MATCHES).cloned().collect();
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

/// Why a queued value is not an event this worker can handle.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not an event: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("event {id} has unknown version {v}")]
    UnknownVersion { id: String, v: u64 },
}

/// Reads an event of this version or of version 1 (converted).
pub fn read_event(value: serde_json::Value) -> Result<Event, EventError> {
    let v = value.get("v").and_then(serde_json::Value::as_u64);
    match v {
        Some(1) => Ok(serde_json::from_value::<EventV1>(value)?.upgrade()),
        Some(v) if v == u64::from(EVENT_VERSION) => Ok(serde_json::from_value(value)?),
        _ => Err(EventError::UnknownVersion {
            id: value
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("(no id)")
                .to_owned(),
            v: v.unwrap_or(0),
        }),
    }
}

/// A version 1 event: the closest match in flat fields.
#[derive(Deserialize)]
struct EventV1 {
    #[serde(flatten)]
    common: Event,
    list: Option<String>,
    entry_id: Option<String>,
    hash_type: Option<String>,
    list_hash: Option<String>,
    distance: Option<u32>,
    matched_by: Option<String>,
    #[serde(default)]
    other_matches: Vec<MatchRecord>,
}

impl EventV1 {
    fn upgrade(self) -> Event {
        let mut event = self.common;
        event.v = EVENT_VERSION;
        if let (Some(list), Some(kind), Some(hash), Some(distance)) =
            (self.list, self.hash_type, self.list_hash, self.distance)
        {
            event.matches.push(MatchRecord {
                list,
                kind,
                hash,
                distance,
                id: self.entry_id,
                variant: self.matched_by,
            });
        }
        event.matches.extend(self.other_matches);
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

    fn m(list: &str, distance: u32) -> MatchRecord {
        MatchRecord {
            list: list.into(),
            id: Some(format!("{list}-1")),
            kind: "pdq".into(),
            hash: "ef".repeat(32),
            distance,
            variant: Some("rot90".into()),
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
        assert_eq!(json["v"], 2);
        assert_eq!(json["type"], "match");
        assert_eq!(json["action"], "blocked");
        assert_eq!(json["direction"], "response");
        let best = &json["matches"][0];
        assert_eq!(best["list"], "demo");
        assert_eq!(best["type"], "pdq");
        assert_eq!(best["id"], "demo-1");
        assert_eq!(best["distance"], 0);
        assert_eq!(best["variant"], "rot90");
        assert_eq!(json["sha256"], "ab".repeat(32));
        assert_eq!(json["time"], "2026-04-26T12:00:00.000Z");
        assert_eq!(json["matches"].as_array().unwrap().len(), MAX_MATCHES);
        assert!(json.get("reason").is_none());
        assert!(json.get("entry_id").is_none() && json.get("other_matches").is_none());
        let back = read_event(json).unwrap();
        assert_eq!(back.matches, matches[..MAX_MATCHES].to_vec());
        assert_eq!(back, event);
    }

    #[test]
    fn version_1_events_are_read_as_version_2() {
        let v1 = serde_json::json!({
            "v": 1, "type": "match", "id": "old", "time": "2026-04-26T12:00:00.000Z",
            "time_ms": 1_777_204_800_000u64, "request_id": "r", "route": "*/*",
            "url": "https://example.com/a.jpg", "direction": "upload", "action": "flagged",
            "sha256": "ab".repeat(32), "pdq": "cd".repeat(32),
            "list": "demo", "entry_id": "demo-1", "hash_type": "pdq", "list_hash": "ef".repeat(32),
            "distance": 3, "matched_by": "pdq-rot90",
            "other_matches": [{"list": "iwf", "entry_id": null, "hash_type": "sha256",
                               "hash": "01".repeat(32), "distance": 0, "matched_by": "sha256"}],
        });
        let event = read_event(v1).unwrap();
        assert_eq!(event.v, EVENT_VERSION);
        assert_eq!(event.matches.len(), 2);
        assert_eq!(event.matches[0].list, "demo");
        assert_eq!(event.matches[0].id.as_deref(), Some("demo-1"));
        assert_eq!(event.matches[0].kind, "pdq");
        assert_eq!(event.matches[0].distance, 3);
        assert_eq!(event.matches[1].list, "iwf");
        assert_eq!(event.matches[1].kind, "sha256");
        assert!(matches!(
            read_event(serde_json::json!({"v": 3, "id": "x"})),
            Err(EventError::UnknownVersion { v: 3, .. })
        ));
        assert!(read_event(serde_json::json!({"v": 2, "id": "x"})).is_err());
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
        assert_eq!(read_event(json).unwrap(), event);
    }
}
