//! What the worker tells its operators about each sighting: one JSON log
//! line ([`crate::logging`]) and one Workers Analytics Engine data point
//! (binding [`EVENTS_DATASET`]) for every match and every image that could
//! not be checked.
//!
//! Data point layout (query with the Analytics Engine SQL API, e.g.
//! `SELECT blob1 AS outcome, blob2 AS route, blob3 AS list, SUM(_sample_interval)
//! FROM hashgate_events GROUP BY outcome, route, list`):
//!
//! ```text
//! index1   route pattern (the sampling key)
//! blob1    outcome: blocked | flagged | unscanned
//! blob2    route pattern
//! blob3    list of the closest match ("" for unscanned)
//! blob4    reason: why it was not checked ("" for a match)
//! blob5    direction: response | upload
//! blob6    what was done: blocked | flagged | passed | refused
//! double1  1 (one sighting)
//! double2  distance of the closest match (-1 for unscanned)
//! ```
//!
//! The dimensions are built here, purely; the runtime part writes them. A
//! missing binding (an older wrangler.toml) only skips the counter.

use crate::events::{ActionTaken, Direction, EventContext};
use crate::logging::{Level, Line};
use hashgate::matching::MatchRecord;

/// The Analytics Engine binding (wrangler.toml `[[analytics_engine_datasets]]`).
pub const EVENTS_DATASET: &str = "HASHGATE_EVENTS";

/// One counter's dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub index: String,
    pub blobs: [String; 6],
    pub doubles: [f64; 2],
}

fn direction_name(direction: Direction) -> &'static str {
    direction.name()
}

fn taken_name(taken: ActionTaken) -> &'static str {
    taken.name()
}

/// The log line and counter of a match.
pub fn matched(
    cx: &EventContext,
    taken: ActionTaken,
    matches: &[MatchRecord],
    cached: bool,
) -> (Line, DataPoint) {
    let best = matches.first();
    let list = best.map(|m| m.list.as_str()).unwrap_or_default();
    let outcome = taken_name(taken);
    let mut line = Line::new(Level::Info, "match")
        .str("route", cx.route.as_str())
        .str("list", list)
        .str("request_id", cx.request_id.as_str())
        .str("action", outcome)
        .str("direction", direction_name(cx.direction))
        .str("url", cx.url.as_str())
        .opt("field", cx.field.as_deref())
        .opt("filename", cx.filename.as_deref())
        .flag("cached", cached)
        .num("matches", matches.len() as u64);
    if let Some(m) = best {
        line = line
            .opt("entry", m.id.as_deref())
            .str("type", m.kind.as_str())
            .opt("variant", m.variant.as_deref())
            .num("distance", u64::from(m.distance));
    }
    let point = DataPoint {
        index: cx.route.clone(),
        blobs: [
            outcome.to_owned(),
            cx.route.clone(),
            list.to_owned(),
            String::new(),
            direction_name(cx.direction).to_owned(),
            outcome.to_owned(),
        ],
        doubles: [1.0, best.map_or(-1.0, |m| f64::from(m.distance))],
    };
    (line, point)
}

/// The log line and counter of an image that could not be checked.
pub fn unscanned(
    cx: &EventContext,
    taken: ActionTaken,
    reason: &str,
    detail: &str,
) -> (Line, DataPoint) {
    let line = Line::new(Level::Warn, "unscanned")
        .str("route", cx.route.as_str())
        .str("reason", reason)
        .str("request_id", cx.request_id.as_str())
        .str("action", taken_name(taken))
        .str("direction", direction_name(cx.direction))
        .str("url", cx.url.as_str())
        .opt("field", cx.field.as_deref())
        .opt("filename", cx.filename.as_deref())
        .str("detail", detail);
    let point = DataPoint {
        index: cx.route.clone(),
        blobs: [
            "unscanned".to_owned(),
            cx.route.clone(),
            String::new(),
            reason.to_owned(),
            direction_name(cx.direction).to_owned(),
            taken_name(taken).to_owned(),
        ],
        doubles: [1.0, -1.0],
    };
    (line, point)
}

#[cfg(target_arch = "wasm32")]
pub use runtime::record;

#[cfg(target_arch = "wasm32")]
mod runtime {
    use worker::{AnalyticsEngineDataPointBuilder, Env};

    use super::{DataPoint, EVENTS_DATASET};
    use crate::logging::{self, Line};

    /// Logs the line and writes the counter (never fails the request).
    pub fn record(env: &Env, (line, point): (Line, DataPoint)) {
        logging::emit(&line);
        let Ok(dataset) = env.analytics_engine(EVENTS_DATASET) else {
            return;
        };
        let blobs: Vec<&str> = point.blobs.iter().map(String::as_str).collect();
        let written = AnalyticsEngineDataPointBuilder::new()
            .indexes([point.index.as_str()])
            .blobs(blobs)
            .doubles(point.doubles)
            .write_to(&dataset);
        if let Err(e) = written {
            crate::runtime::log_warn(&format!(
                "hashgate: writing to {EVENTS_DATASET} failed: {e}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> EventContext {
        EventContext {
            request_id: "req-1".into(),
            route: "example.com/images/*".into(),
            url: "https://example.com/images/<b>.jpg".into(),
            direction: Direction::Upload,
            field: Some("file".into()),
            filename: None,
        }
    }

    #[test]
    fn a_match_counts_per_route_and_list() {
        let m = MatchRecord {
            list: "ncii".into(),
            id: Some("ncii-4".into()),
            kind: "pdq".into(),
            hash: "ab".repeat(32),
            distance: 5,
            variant: Some("rot90".into()),
        };
        let (line, point) = matched(&cx(), ActionTaken::Blocked, &[m], false);
        let v: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(v["event"], "match");
        assert_eq!(v["route"], "example.com/images/*");
        assert_eq!(v["list"], "ncii");
        assert_eq!(v["entry"], "ncii-4");
        assert_eq!(v["variant"], "rot90");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(point.index, "example.com/images/*");
        assert_eq!(
            point.blobs,
            [
                "blocked",
                "example.com/images/*",
                "ncii",
                "",
                "upload",
                "blocked"
            ]
            .map(String::from)
        );
        assert_eq!(point.doubles, [1.0, 5.0]);
    }

    #[test]
    fn unscanned_counts_by_reason() {
        let (line, point) = unscanned(&cx(), ActionTaken::Passed, "over-cap", "too big");
        let v: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["reason"], "over-cap");
        assert_eq!(v["list"], serde_json::Value::Null);
        assert_eq!(point.blobs[0], "unscanned");
        assert_eq!(point.blobs[3], "over-cap");
        assert_eq!(point.blobs[5], "passed");
    }
}
