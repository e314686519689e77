//! The queue consumer: events in, report records and notifications out.
//!
//! For each event from `MATCH_EVENTS`:
//! 1. merge it into its record in `REPORTS` ([`crate::report`]): create,
//!    or count one more sighting; a redelivered event changes nothing;
//! 2. write the record with a one-year expiration (30 days for unscanned);
//! 3. count the images each matched entry matched, for the flood guard
//!    ([`crate::flood_guard`]);
//! 4. if the record has not been notified and its route has a webhook, post
//!    the signed notification ([`crate::notify`]); on success, mark the
//!    record notified.
//!
//! A failure at any step retries the message (`message.retry()`); after
//! the queue's `max_retries` the message goes to the dead-letter queue
//! `hashgate-dlq`, whose consumer (also here) stores it under `dead/v1/`
//! with a one-year expiration, so nothing is silently lost. Messages that
//! are not events of a known version are stored the same way at once
//! (retrying cannot fix them).
//!
//! Messages are handled one after another, so two sightings of the same
//! image in one batch update the record in turn.

use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::JsValue;
use worker::{Delay, Env, MessageBatch, MessageExt, RawMessage};

use crate::config::{self, DEAD_LETTER_QUEUE, REPORTS};
use crate::events::{read_event, Event, EventError};
use crate::notify::{self, DELIVERY_HEADER, EVENT_HEADER, SECRET_NAME, SIGNATURE_HEADER};
use crate::origin;
use crate::report::{self, DeadLetter, Merge, ReportRecord, REPORT_RETENTION_SECONDS};
use crate::runtime::{js_error_text, log_error, log_warn, now_ms};

/// How long a webhook may take to answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles one batch from either queue.
pub async fn handle(batch: MessageBatch<JsValue>, env: Env) -> worker::Result<()> {
    if batch.queue() == crate::stored::STORED_QUEUE {
        return crate::stored::handle(batch, env).await;
    }
    let dead_letters = batch.queue() == DEAD_LETTER_QUEUE;
    for message in batch.raw_iter() {
        let outcome = if dead_letters {
            store_dead_letter(&env, &message, DEAD_LETTER_QUEUE).await
        } else {
            handle_event(&env, &message).await
        };
        match outcome {
            Ok(()) => message.ack(),
            Err(e) => {
                log_warn(&format!(
                    "hashgate: message {} will be retried: {e}",
                    message.id()
                ));
                message.retry();
            }
        }
    }
    Ok(())
}

async fn handle_event(env: &Env, message: &RawMessage) -> Result<(), String> {
    let body = message.body();
    let value = serde_wasm_bindgen::from_value::<serde_json::Value>(body)
        .map_err(|e| EventError::Invalid(serde::de::Error::custom(e)));
    let event: Event = match value.and_then(read_event) {
        Ok(event) => event,
        Err(e) => {
            log_error(&format!(
                "hashgate: message {} cannot be handled ({e}); stored as dead letter",
                message.id()
            ));
            return store_dead_letter(env, message, "invalid").await;
        }
    };
    let reports = env
        .kv(REPORTS)
        .map_err(|e| format!("{REPORTS} is not bound: {e}"))?;
    let key = report::record_key(&event);
    let existing: Option<ReportRecord> = match reports.get(&key).text().await {
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(record) => Some(record),
            Err(e) => {
                log_error(&format!(
                    "hashgate: record {key} is unreadable ({e}); starting it again"
                ));
                None
            }
        },
        Ok(None) => None,
        Err(e) => return Err(format!("reading {key}: {e}")),
    };
    let now = now_ms() as u64;
    let (mut record, merge) = report::merge(existing, &event, now);
    let ttl = report::retention_seconds(event.kind);
    if merge != Merge::Duplicate {
        put_record(&reports, &record, ttl).await?;
    }
    if merge == Merge::Created && event.kind == crate::events::EventKind::Match {
        auto_report(env, &event, &record.key).await?;
    }
    let config = config::load(env).await.map_err(|e| e.to_string())?;
    if merge != Merge::Duplicate {
        crate::flood::count(env, config.policy.flood_guard, &event).await?;
    }
    if record.notified_at.is_some() {
        return Ok(());
    }
    // Notify: the route's webhook, from the current policy.
    let Some(webhook) = config
        .policy
        .route_by_pattern(&event.route)
        .and_then(|r| r.webhook.clone())
    else {
        return Ok(());
    };
    let secret = env
        .secret(SECRET_NAME)
        .map(|s| s.to_string())
        .or_else(|_| env.var(SECRET_NAME).map(|s| s.to_string()))
        .map_err(|_| format!("route {:?} has a webhook but the secret {SECRET_NAME} is not set (wrangler secret put {SECRET_NAME})", event.route))?;
    let body = notify::body(&event, &record, now);
    deliver(&webhook, &body, &secret, &event).await?;
    record.notified_at = Some(crate::events::rfc3339(now_ms() as u64));
    put_record(&reports, &record, ttl).await
}

async fn put_record(
    reports: &worker::KvStore,
    record: &ReportRecord,
    ttl: u64,
) -> Result<(), String> {
    let json = serde_json::to_string(record).map_err(|e| e.to_string())?;
    reports
        .put(&record.key, json)
        .map_err(|e| e.to_string())?
        .expiration_ttl(ttl)
        .execute()
        .await
        .map_err(|e| format!("writing {}: {e}", record.key))
}

/// Posts a signed notification; any answer but 2xx is a failure.
async fn deliver(url: &str, body: &str, secret: &str, event: &Event) -> Result<(), String> {
    let request = (|| -> Result<web_sys::Request, JsValue> {
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", "application/json")?;
        headers.set(
            EVENT_HEADER,
            if event.kind == crate::events::EventKind::Match {
                "match"
            } else {
                "unscanned"
            },
        )?;
        headers.set(DELIVERY_HEADER, &event.id)?;
        headers.set(
            SIGNATURE_HEADER,
            &notify::sign(secret.as_bytes(), body.as_bytes()),
        )?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(body));
        web_sys::Request::new_with_str_and_init(url, &init)
    })()
    .map_err(|e| format!("building the webhook request: {}", js_error_text(&e)))?;

    let fetch = Box::pin(async move { origin::fetch(&request).await });
    let timeout = Box::pin(Delay::from(WEBHOOK_TIMEOUT));
    match select(fetch, timeout).await {
        Either::Left((Ok(response), _)) if (200..300).contains(&response.status()) => Ok(()),
        Either::Left((Ok(response), _)) => {
            Err(format!("webhook {url} answered {}", response.status()))
        }
        Either::Left((Err(e), _)) => Err(format!("webhook {url} failed: {}", js_error_text(&e))),
        Either::Right(_) => Err(format!(
            "webhook {url} did not answer within {}s",
            WEBHOOK_TIMEOUT.as_secs()
        )),
    }
}

/// Keeps a message that could not be processed, under `dead/v1/<id>`.
async fn store_dead_letter(env: &Env, message: &RawMessage, queue: &str) -> Result<(), String> {
    let reports = env
        .kv(REPORTS)
        .map_err(|e| format!("{REPORTS} is not bound: {e}"))?;
    let body: serde_json::Value =
        serde_wasm_bindgen::from_value(message.body()).unwrap_or(serde_json::Value::Null);
    let id = body
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| message.id());
    let letter = DeadLetter {
        v: 1,
        received: crate::events::rfc3339(now_ms() as u64),
        queue: queue.to_owned(),
        body,
    };
    let json = serde_json::to_string(&letter).map_err(|e| e.to_string())?;
    reports
        .put(&report::dead_key(&id), json)
        .map_err(|e| e.to_string())?
        .expiration_ttl(REPORT_RETENTION_SECONDS)
        .execute()
        .await
        .map_err(|e| format!("writing dead letter {id}: {e}"))
}

/// `report.auto` routes: the incident is confirmed for reporting without a
/// person ([`crate::reporting`]); the confirmation is idempotent, so a
/// retried message confirms once.
async fn auto_report(env: &Env, event: &Event, key: &str) -> Result<(), String> {
    let config = config::load(env).await.map_err(|e| e.to_string())?;
    let auto = config
        .policy
        .route_by_pattern(&event.route)
        .is_some_and(|r| r.auto_report);
    if auto {
        crate::reporting::confirm(env, key, "policy (report.auto)", "automatic submission").await?;
    }
    Ok(())
}
