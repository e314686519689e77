//! The events outbox: where an event waits when the queue will not take it.
//!
//! A verdict never waits for reporting, and reporting must not lose what a
//! verdict decided. The fetch handler sends each event to `MATCH_EVENTS`
//! after the response (`waitUntil`); a failed send is retried
//! ([`SEND_ATTEMPTS`] in all, with a short pause), and if the queue still
//! refuses, the event is written to `REPORTS` under
//! `outbox/v1/<event id>` (kept [`OUTBOX_RETENTION_SECONDS`]). Only if that
//! write fails too is the event lost, and the error is logged.
//!
//! The outbox is drained back into the queue by the cron trigger
//! (`scheduled`, declared in `wrangler.toml`), and by an isolate that wrote
//! to the outbox itself, on a later request, at most every
//! [`DRAIN_INTERVAL_MS`]: the queue is usually back long before the next
//! cron tick.
//!
//! The cron tick runs every minute, and a KV list costs as much as a write
//! (1,000 a day on the free plan): listing every minute would be 1,440 a
//! day. So whoever writes an entry also writes the marker [`OUTBOX_MARKER`];
//! a tick reads only the marker (one key read, 1,440 a day of the free
//! plan's 100,000) and lists only when it is there. A tick deletes the
//! marker before it lists and puts it back if entries are left, so an entry
//! written during a drain is never stranded: either its marker write comes
//! after the delete, or the list after the delete sees the entry. An entry is deleted only after the queue accepted it. That
//! makes delivery at-least-once (an entry sent but not yet deleted may be
//! sent again, by a concurrent drain or after a failed delete), with the
//! event's own id: the consumer counts an event id once
//! ([`crate::report`]), so a record never counts a sighting twice.

use crate::events::Event;

/// Key prefix of outbox entries in `REPORTS`.
pub const OUTBOX_PREFIX: &str = "outbox/v1/";
/// How long an undrained entry is kept (KV expiration).
pub const OUTBOX_RETENTION_SECONDS: u64 = 30 * 24 * 60 * 60;
/// Sends of one event before it goes to the outbox.
pub const SEND_ATTEMPTS: usize = 3;
/// Pause before each retry of a send, in milliseconds.
pub const SEND_BACKOFF_MS: [u64; SEND_ATTEMPTS - 1] = [50, 250];
/// An isolate that wrote to the outbox drains it on a request at most this
/// often.
pub const DRAIN_INTERVAL_MS: f64 = 10_000.0;
/// Entries read and sent per batch (a queue batch takes at most 100
/// messages and 256 KB; an event is 1-3 KB).
pub const DRAIN_BATCH: usize = 50;
/// Batches per drain (each costs a list, a bulk read, a batch send and a
/// delete per entry: well within a cron invocation's subrequest budget).
pub const DRAIN_MAX_BATCHES: usize = 8;

/// Present in `REPORTS` while the outbox may hold entries (see above).
pub const OUTBOX_MARKER: &str = "outbox/pending";

/// The outbox key of an event.
pub fn key(event: &Event) -> String {
    format!("{OUTBOX_PREFIX}{}", event.id)
}

#[cfg(target_arch = "wasm32")]
pub use runtime::*;

#[cfg(target_arch = "wasm32")]
mod runtime {
    use std::cell::Cell;
    use std::time::Duration;

    use thiserror::Error;
    use worker::{Delay, Env, KvStore};

    use super::*;
    use crate::config::{MATCH_EVENTS, REPORTS};
    use crate::events::{read_event, EventError};
    use crate::runtime::{log_error, log_warn, now_ms};

    /// Why a drain stopped.
    #[derive(Debug, Error)]
    pub enum OutboxError {
        #[error("{0} is not bound: {1}")]
        Unbound(&'static str, String),
        #[error("reading the outbox: {0}")]
        Read(String),
        #[error("the queue refused {count} events: {reason}")]
        Send { count: usize, reason: String },
    }

    /// What a drain did.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Drained {
        /// Entries the queue accepted (and that were deleted).
        pub sent: usize,
        /// Entries that were not events (deleted, logged).
        pub invalid: usize,
        /// Whether entries are left (more than one drain's worth).
        pub more: bool,
    }

    thread_local! {
        /// This isolate wrote to the outbox and has not seen it drained.
        static PENDING: Cell<bool> = const { Cell::new(false) };
        /// When this isolate last started a drain.
        static LAST_DRAIN_MS: Cell<f64> = const { Cell::new(0.0) };
    }

    /// Sends `event` to the queue, retrying; keeps it in the outbox if the
    /// queue refuses every attempt.
    pub async fn send(env: &Env, event: &Event) {
        let reason = match env.queue(MATCH_EVENTS) {
            Err(e) => format!("{MATCH_EVENTS} is not bound: {e}"),
            Ok(queue) => {
                let mut last = String::new();
                for attempt in 0..SEND_ATTEMPTS {
                    if attempt > 0 {
                        let pause = SEND_BACKOFF_MS[(attempt - 1).min(SEND_BACKOFF_MS.len() - 1)];
                        Delay::from(Duration::from_millis(pause)).await;
                    }
                    match queue.send(event).await {
                        Ok(()) => return,
                        Err(e) => last = e.to_string(),
                    }
                }
                last
            }
        };
        log_warn(&format!(
            "hashgate: sending event {} failed {SEND_ATTEMPTS} times ({reason}); keeping it in the outbox",
            event.id
        ));
        if let Err(e) = keep(env, event).await {
            log_error(&format!(
                "hashgate: event {} is lost: the queue refused it ({reason}) and {e}",
                event.id
            ));
        }
    }

    async fn keep(env: &Env, event: &Event) -> Result<(), String> {
        let reports = env
            .kv(REPORTS)
            .map_err(|e| format!("{REPORTS} is not bound: {e}"))?;
        let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
        reports
            .put(&key(event), json)
            .map_err(|e| e.to_string())?
            .expiration_ttl(OUTBOX_RETENTION_SECONDS)
            .execute()
            .await
            .map_err(|e| e.to_string())?;
        mark(&reports)
            .await
            .map_err(|e| format!("writing it to the outbox failed: {e}"))?;
        PENDING.with(|p| p.set(true));
        Ok(())
    }

    /// Whether this isolate should drain now (it wrote to the outbox, and
    /// has not tried for [`DRAIN_INTERVAL_MS`]); marks the attempt.
    pub fn due() -> bool {
        if !PENDING.with(Cell::get) {
            return false;
        }
        let now = now_ms();
        if now - LAST_DRAIN_MS.with(Cell::get) < DRAIN_INTERVAL_MS {
            return false;
        }
        LAST_DRAIN_MS.with(|t| t.set(now));
        true
    }

    /// Sends outbox entries to the queue (up to [`DRAIN_MAX_BATCHES`] of
    /// [`DRAIN_BATCH`]), deleting each once the queue has accepted it.
    pub async fn drain(env: &Env) -> Result<Drained, OutboxError> {
        let reports = env
            .kv(REPORTS)
            .map_err(|e| OutboxError::Unbound(REPORTS, e.to_string()))?;
        let queue = env
            .queue(MATCH_EVENTS)
            .map_err(|e| OutboxError::Unbound(MATCH_EVENTS, e.to_string()))?;
        let mut drained = Drained::default();
        for _ in 0..DRAIN_MAX_BATCHES {
            let list = reports
                .list()
                .prefix(OUTBOX_PREFIX.to_owned())
                .limit(DRAIN_BATCH as u64)
                .execute()
                .await
                .map_err(|e| OutboxError::Read(e.to_string()))?;
            if list.keys.is_empty() {
                drained.more = false;
                break;
            }
            let keys: Vec<String> = list.keys.into_iter().map(|k| k.name).collect();
            let values = reports
                .get_bulk(&keys)
                .text()
                .await
                .map_err(|e| OutboxError::Read(e.to_string()))?;
            let mut events = Vec::with_capacity(keys.len());
            let mut done = Vec::with_capacity(keys.len());
            for name in &keys {
                match values.get(name) {
                    // Expired or deleted by a concurrent drain since the list.
                    Some(None) | None => {}
                    Some(Some(text)) => match serde_json::from_str(text)
                        .map_err(EventError::from)
                        .and_then(read_event)
                    {
                        Ok(event) => {
                            events.push(event);
                            done.push(name.clone());
                        }
                        Err(e) => {
                            log_error(&format!(
                                "hashgate: outbox entry {name} is not an event ({e}); deleted"
                            ));
                            drained.invalid += 1;
                            delete(&reports, name).await;
                        }
                    },
                }
            }
            if !events.is_empty() {
                let count = events.len();
                queue
                    .send_batch(events)
                    .await
                    .map_err(|e| OutboxError::Send {
                        count,
                        reason: e.to_string(),
                    })?;
                drained.sent += count;
            }
            for name in &done {
                delete(&reports, name).await;
            }
            drained.more = !list.list_complete;
            if list.list_complete {
                break;
            }
        }
        if !drained.more {
            PENDING.with(|p| p.set(false));
        }
        Ok(drained)
    }

    /// Deletes an entry; a failure only means it may be sent again (the
    /// consumer counts an event id once).
    async fn delete(reports: &KvStore, name: &str) {
        if let Err(e) = reports.delete(name).await {
            log_warn(&format!(
                "hashgate: deleting outbox entry {name} failed ({e}); it may be sent again"
            ));
        }
    }

    /// Writes the marker that tells the cron tick to look.
    async fn mark(reports: &KvStore) -> Result<(), String> {
        reports
            .put(OUTBOX_MARKER, "1")
            .map_err(|e| e.to_string())?
            .expiration_ttl(OUTBOX_RETENTION_SECONDS)
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    /// The cron tick: drains only if the marker says there is something to
    /// drain (one key read otherwise), logging the outcome.
    pub async fn drain_marked_and_log(env: &Env) {
        let Ok(reports) = env.kv(REPORTS) else {
            return drain_and_log(env).await;
        };
        match reports.get(OUTBOX_MARKER).text().await {
            Ok(None) => return,
            Ok(Some(_)) => {}
            Err(e) => log_warn(&format!(
                "hashgate: outbox marker not readable ({e}); draining"
            )),
        }
        if let Err(e) = reports.delete(OUTBOX_MARKER).await {
            log_warn(&format!("hashgate: outbox marker not deleted ({e})"));
        }
        let left = match drain(env).await {
            Ok(d) => {
                log_drained(&d);
                d.more
            }
            Err(e) => {
                log_warn(&format!("hashgate: outbox not drained: {e}"));
                true
            }
        };
        if left {
            if let Err(e) = mark(&reports).await {
                log_error(&format!("hashgate: outbox marker not restored ({e})"));
            }
        }
    }

    fn log_drained(d: &Drained) {
        if d.sent > 0 || d.invalid > 0 {
            log_warn(&format!(
                "hashgate: outbox drained: {} events sent to {MATCH_EVENTS}, {} invalid entries deleted{}",
                d.sent,
                d.invalid,
                if d.more { ", more left" } else { "" }
            ));
        }
    }

    /// Drains, logging the outcome (for `waitUntil` and the cron handler).
    pub async fn drain_and_log(env: &Env) {
        match drain(env).await {
            Ok(d) => log_drained(&d),
            Err(e) => log_warn(&format!("hashgate: outbox not drained: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScanError;
    use crate::events::{ActionTaken, Direction, EventContext};

    #[test]
    fn key_is_the_event_id_under_the_prefix() {
        let cx = EventContext {
            request_id: "r".into(),
            route: "*/*".into(),
            url: "https://example.com/a.jpg".into(),
            direction: Direction::Response,
            field: None,
            filename: None,
        };
        let event = Event::unscanned(
            "e-1".into(),
            0.0,
            &cx,
            ActionTaken::Passed,
            &ScanError::OverCap { cap: 1 },
            None,
        );
        assert_eq!(key(&event), "outbox/v1/e-1");
        assert!(!OUTBOX_PREFIX.starts_with(crate::report::REPORT_PREFIX));
        // The marker is not an entry: a drain never sends or deletes it.
        assert!(!OUTBOX_MARKER.starts_with(OUTBOX_PREFIX));
    }
}
