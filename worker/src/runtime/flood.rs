//! The flood guard's runtime half ([`crate::flood_guard`]): in the queue
//! consumer, count the distinct images each matched entry has matched
//! (D1, beside the hash log) and suspend an entry past the limit in
//! `hg2/overrides`, with an audit entry and an error-level log line.

use std::collections::BTreeSet;

use wasm_bindgen::JsValue;
use worker::Env;

use crate::config::{HASH_INDEX, REPORTS};
use crate::console::audit::{self, Action, AuditEntry};
use crate::events::{rfc3339, Event, EventKind};
use crate::flood_guard::{FloodGuard, COUNT, GUARD_NAME, PRUNE, RECORD};
use crate::logging::{self, Level, Line};
use crate::overrides::{Overrides, OVERRIDES_KEY};
use crate::runtime::{now_ms, uuid};

#[derive(serde::Deserialize)]
struct Count {
    n: f64,
}

/// Counts the images of a match event per entry and suspends flooded
/// entries. Without a `HASH_LOG` binding the guard cannot count: logged,
/// never retried (retrying would not bind it).
pub async fn count(env: &Env, guard: FloodGuard, event: &Event) -> Result<(), String> {
    if !guard.is_on() || event.kind != EventKind::Match {
        return Ok(());
    }
    let Some(sha256) = event.sha256.as_deref() else {
        return Ok(());
    };
    let db = match crate::stored::database(env).await {
        Ok(db) => db,
        Err(e) => {
            crate::runtime::log_warn(&format!("hashgate: the flood guard cannot count: {e}"));
            return Ok(());
        }
    };
    let now = now_ms() as u64;
    let mut seen = BTreeSet::new();
    for m in &event.matches {
        if !seen.insert((&m.list, &m.kind, &m.hash)) {
            continue;
        }
        let entry = [
            JsValue::from(m.list.as_str()),
            JsValue::from(m.kind.as_str()),
            JsValue::from(m.hash.as_str()),
        ];
        let mut record = entry.to_vec();
        record.push(sha256.into());
        record.push(JsValue::from_f64(now as f64));
        db.prepare(RECORD)
            .bind(&record)
            .map_err(|e| e.to_string())?
            .run()
            .await
            .map_err(|e| format!("flood guard: recording a match: {e}"))?;
        let mut query = entry.to_vec();
        query.push(JsValue::from_f64(guard.window_start_ms(now) as f64));
        let n = db
            .prepare(COUNT)
            .bind(&query)
            .map_err(|e| e.to_string())?
            .first::<Count>(None)
            .await
            .map_err(|e| format!("flood guard: counting: {e}"))?
            .map_or(0, |c| c.n as u64);
        if guard.is_flooded(n) {
            suspend(env, guard, event, m, n, now).await?;
        }
    }
    Ok(())
}

async fn suspend(
    env: &Env,
    guard: FloodGuard,
    event: &Event,
    entry: &hashgate::matching::MatchRecord,
    distinct_images: u64,
    now: u64,
) -> Result<(), String> {
    let kv = env
        .kv(HASH_INDEX)
        .map_err(|e| format!("{HASH_INDEX} is not bound: {e}"))?;
    let mut overrides = match kv.get(OVERRIDES_KEY).text().await {
        Ok(Some(text)) => match Overrides::parse(&text) {
            Ok(o) => o,
            Err(e) => {
                // Never overwrite a value that does not read: a person's
                // overrides would be lost. Retried until someone fixes it.
                return Err(format!("flood guard: not suspending, {e}"));
            }
        },
        Ok(None) => Overrides::default(),
        Err(e) => return Err(format!("flood guard: reading {OVERRIDES_KEY}: {e}")),
    };
    let at = rfc3339(now);
    let Some(suspension) = guard.suspension(&overrides, entry, distinct_images, &at) else {
        return Ok(());
    };
    let why = suspension.reason.clone();
    overrides.turn_off(suspension, now / 1000);
    kv.put(OVERRIDES_KEY, overrides.to_json())
        .map_err(|e| e.to_string())?
        .execute()
        .await
        .map_err(|e| format!("flood guard: writing {OVERRIDES_KEY}: {e}"))?;
    crate::overrides_store::forget();
    let detail = format!(
        "{OVERRIDES_KEY}: suspended {} {} {}",
        entry.list, entry.kind, entry.hash
    );
    let audit_entry = AuditEntry {
        v: 1,
        at,
        who: GUARD_NAME.to_owned(),
        role: "system".to_owned(),
        action: Action::Suspend,
        target: crate::report::record_key(event),
        url: event.url.clone(),
        why: why.clone(),
        detail: detail.clone(),
    };
    let reports = env
        .kv(REPORTS)
        .map_err(|e| format!("{REPORTS} is not bound: {e}"))?;
    reports
        .put(
            &audit::audit_key(now, &uuid()),
            serde_json::to_string(&audit_entry).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?
        .metadata(audit_entry.metadata())
        .map_err(|e| e.to_string())?
        .expiration_ttl(audit::AUDIT_RETENTION_SECONDS)
        .execute()
        .await
        .map_err(|e| format!("flood guard: writing the audit entry: {e}"))?;
    logging::emit(
        &Line::new(Level::Error, "entry-suspended")
            .str("route", event.route.as_str())
            .str("list", entry.list.as_str())
            .str("type", entry.kind.as_str())
            .str("hash", entry.hash.as_str())
            .opt("id", entry.id.as_deref())
            .num("distinct_images", distinct_images)
            .num("window_seconds", u64::from(guard.window_seconds))
            .str("reason", why.as_str()),
    );
    Ok(())
}

/// Forgets counts older than the guard's window (the scheduled tick).
pub async fn prune(env: &Env, guard: FloodGuard) -> Result<(), String> {
    if !guard.is_on() || env.d1(crate::stored::HASH_LOG).is_err() {
        return Ok(());
    }
    let db = crate::stored::database(env).await?;
    let before = guard.window_start_ms(now_ms() as u64);
    db.prepare(PRUNE)
        .bind(&[JsValue::from_f64(before as f64)])
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| format!("flood guard: pruning: {e}"))?;
    Ok(())
}
