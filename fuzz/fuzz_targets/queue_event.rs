//! Queue event decoding and the report consumer's pure steps.
//!
//! The consumer reads events from the `MATCH_EVENTS` queue and the current
//! report record from KV, both JSON. An event it cannot read goes to the
//! dead-letter store, so decoding must fail cleanly; one it can read is
//! merged into its record, and redelivery (queues deliver at least once)
//! must not count it twice.
//!
//! Input: the event JSON, optionally followed by a NUL byte and the JSON of
//! an existing report record.

#![no_main]

use hashgate_worker::events;
use hashgate_worker::notify;
use hashgate_worker::report::{self, Merge, ReportRecord};
use libfuzzer_sys::fuzz_target;

/// A fixed consumer clock (2026-04-26T12:00:00Z).
const NOW_MS: u64 = 1_777_204_800_000;

fuzz_target!(|data: &[u8]| {
    let (event, existing) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    // What the consumer does: any version it can read, else a dead letter.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(event) else { return };
    let Ok(event) = events::read_event(value) else { return };
    let existing = existing.and_then(|json| serde_json::from_slice::<ReportRecord>(json).ok());
    let key = report::record_key(&event);
    assert!(key.starts_with(report::REPORT_PREFIX) || key.starts_with(report::UNSCANNED_PREFIX));
    let _ = report::dead_key(&event.id);

    let (record, merge) = report::merge(existing, &event, NOW_MS);
    assert!(record.event_ids.contains(&event.id) || merge == Merge::Duplicate);
    let (again, second) = report::merge(Some(record.clone()), &event, NOW_MS);
    assert_eq!(second, Merge::Duplicate, "a redelivered event is counted once");
    assert_eq!(again.count, record.count);

    // What the consumer writes back must read again as a record.
    let json = serde_json::to_string(&record).expect("a record serializes");
    let read: ReportRecord = serde_json::from_str(&json).expect("a written record reads back");
    assert_eq!(read.count, record.count);
    let body = notify::body(&event, &record, NOW_MS);
    assert!(body.starts_with('{'));
});
