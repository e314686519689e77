//! Stored content: the consumer of the `hashgate-stored-objects` queue,
//! which scans objects in R2 buckets (new ones from R2 event
//! notifications, old ones from backfills), lists backfills page by page,
//! and runs retroactive passes over the hash log.
//!
//! ```text
//! scan        rule for bucket/prefix (policy `stored`) -> hash log: same ETag and
//!             generation already scanned? skip (no R2 read) -> R2 get (size under
//!             max_bytes) -> hash (the edge's hasher) -> look up (the edge's index)
//!             -> match: event (Direction stored, r2://bucket/key) -> log row ->
//!             act (quarantine: copy, then delete; delete; report)
//!             clean / not an image / failed: log row
//! list        one page (1,000 keys) of a backfill from its cursor -> scan messages in
//!             batches of 100 (sendBatch) -> cursor saved -> next list message
//! retro       one page (500 rows) of the hash log against the hashes the new
//!             generation added (crate::retro) -> candidates confirmed against the
//!             full index: stored objects are scanned again, edge images queried
//! ```
//!
//! Retries are safe at every step: a sighting's event id is derived from
//! the location, ETag and generation ([`sighting_id`]), so the report
//! consumer counts it once; quarantine copies before it deletes and both
//! steps are idempotent; the log row is written before the action, and a
//! matched object still present is acted on again. A failure that retrying
//! can fix (R2, KV, D1, the queue) retries the message; one that it cannot
//! (an object that does not decode) is logged as `failed` and the message
//! acknowledged, so one bad object never stops a backfill.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use hashgate::index::generation::Manifest;
use hashgate::index::{Query, ResidentIndex, Snapshot};
use hashgate::{hash_image_with_digests, HashError, HashOptions};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{Env, MessageBatch, MessageExt, RawMessage};

use crate::config::{self, Config, HASH_INDEX, REPORTS};
use crate::current_index;
use crate::digests;
use crate::error::ScanError;
use crate::events::{ActionTaken, Direction, Event, EventContext};
use crate::hash_log::{self, LastScan, LogRow, PageRow, Progress, ScanResult};
use crate::outbox;
use crate::policy::Action;
use crate::retro;
use crate::runtime::{log_error, log_warn, now_ms};
use crate::stored_message::{
    location, parse_location, quarantine_key, sighting_id, StoredMessage, Work,
};
use crate::stored_policy::{StoredAction, StoredRule};
use crate::verdict::{self, Verdict};

/// The queue's name (wrangler.toml).
pub const STORED_QUEUE: &str = "hashgate-stored-objects";
/// Its producer binding (backfills and retroactive passes enqueue work).
pub const STORED_OBJECTS: &str = "STORED_OBJECTS";
/// The D1 database of the hash log.
pub const HASH_LOG: &str = "HASH_LOG";
/// Keys listed per backfill page (R2's largest page).
pub const LIST_PAGE: u32 = 1000;
/// Messages per `sendBatch` (the Queues limit).
pub const SEND_BATCH: usize = 100;
/// Hash-log rows matched per retroactive page.
pub const RETRO_PAGE: u32 = 500;
/// How long index reads may take in the consumer.
const INDEX_TIMEOUT_MS: u32 = 10_000;
/// Where a retroactive pass keeps its added hashes (REPORTS), 30 days.
const RETRO_PREFIX: &str = "retro/v1/";
const RETRO_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// A failure: retry the message, or give up on it.
enum Failure {
    Retry(String),
    Drop(String),
}

fn retry(e: impl std::fmt::Display) -> Failure {
    Failure::Retry(e.to_string())
}

thread_local! {
    static SCHEMA_READY: RefCell<bool> = const { RefCell::new(false) };
    static RETRO_INDEX: RefCell<Option<(String, Rc<Option<ResidentIndex>>)>> = const { RefCell::new(None) };
}

/// The hash log, its schema applied once per isolate.
pub async fn database(env: &Env) -> Result<worker::D1Database, String> {
    let db = env
        .d1(HASH_LOG)
        .map_err(|e| format!("{HASH_LOG} is not bound: {e}"))?;
    if !SCHEMA_READY.with(|r| *r.borrow()) {
        let statements = hash_log::schema_statements()
            .into_iter()
            .map(|sql| db.prepare(sql))
            .collect();
        db.batch(statements)
            .await
            .map_err(|e| format!("applying the hash log schema: {e}"))?;
        SCHEMA_READY.with(|r| *r.borrow_mut() = true);
    }
    Ok(db)
}

/// Handles one batch from the stored-objects queue.
pub async fn handle(batch: MessageBatch<JsValue>, env: Env) -> worker::Result<()> {
    for message in batch.raw_iter() {
        match handle_message(&env, &message).await {
            Ok(()) => message.ack(),
            Err(Failure::Retry(e)) => {
                log_warn(&format!(
                    "hashgate: stored message {} will be retried: {e}",
                    message.id()
                ));
                message.retry();
            }
            Err(Failure::Drop(e)) => {
                log_error(&format!(
                    "hashgate: stored message {} dropped: {e}",
                    message.id()
                ));
                message.ack();
            }
        }
    }
    Ok(())
}

async fn handle_message(env: &Env, message: &RawMessage) -> Result<(), Failure> {
    let body: serde_json::Value = serde_wasm_bindgen::from_value(message.body())
        .map_err(|e| Failure::Drop(format!("unreadable body: {e}")))?;
    let parsed = StoredMessage::parse(&body).map_err(|e| Failure::Drop(e.to_string()))?;
    let config = config::load(env).await.map_err(retry)?;
    match parsed {
        StoredMessage::Notification(n) if n.creates_object() => {
            scan(
                env,
                &config,
                &n.bucket,
                &n.object.key,
                n.object.etag.as_deref(),
                "r2-notification",
            )
            .await
        }
        StoredMessage::Notification(_) => Ok(()),
        StoredMessage::Work(Work::Scan {
            bucket,
            key,
            etag,
            backfill,
        }) => {
            let request_id = backfill.unwrap_or_else(|| "retroactive".to_owned());
            scan(env, &config, &bucket, &key, etag.as_deref(), &request_id).await
        }
        StoredMessage::Work(Work::List { backfill }) => list_page(env, &config, &backfill).await,
        StoredMessage::Work(Work::Retro { pass, after }) => {
            retro_page(env, &config, &pass, after).await
        }
    }
}

async fn manifest(env: &Env, config: &Config) -> Result<Rc<Manifest>, Failure> {
    current_index::manifest(env, config.policy.index.refresh_seconds, INDEX_TIMEOUT_MS)
        .await
        .map_err(retry)
}

async fn last_scan(db: &worker::D1Database, at: &str) -> Result<Option<LastScan>, Failure> {
    db.prepare(hash_log::LAST_SCAN)
        .bind(&[at.into()])
        .map_err(retry)?
        .first::<LastScan>(None)
        .await
        .map_err(retry)
}

async fn write_row(db: &worker::D1Database, row: &LogRow) -> Result<(), Failure> {
    let text = |v: &Option<String>| v.as_deref().map_or(JsValue::NULL, JsValue::from);
    db.prepare(hash_log::UPSERT)
        .bind(&[
            row.location.as_str().into(),
            row.etag.as_str().into(),
            row.generation.as_str().into(),
            row.result.as_str().into(),
            row.route.as_str().into(),
            row.direction.as_str().into(),
            text(&row.pdq),
            text(&row.md5),
            text(&row.sha1),
            text(&row.sha256),
            text(&row.detail),
            JsValue::from_f64(row.scanned_ms as f64),
            row.pdq_quality
                .map_or(JsValue::NULL, |q| JsValue::from_f64(f64::from(q))),
        ])
        .map_err(retry)?
        .run()
        .await
        .map_err(retry)?;
    Ok(())
}

fn hash_options(rule: &StoredRule) -> HashOptions {
    let mut limits = hashgate::Limits::edge();
    limits.max_input_bytes = limits.max_input_bytes.min(rule.max_bytes);
    let decode = hashgate::DecodeOptions {
        limits,
        reduction: hashgate::Reduction::DEFAULT,
        apply_exif: false,
    };
    HashOptions::for_query(rule.variants, decode)
}

/// Scans one object.
async fn scan(
    env: &Env,
    config: &Config,
    bucket_name: &str,
    key: &str,
    etag_hint: Option<&str>,
    request_id: &str,
) -> Result<(), Failure> {
    let Some(rule) = config.policy.stored.rule_for(bucket_name, key) else {
        log_warn(&format!(
            "hashgate: r2://{bucket_name}/{key}: no stored rule covers it; not scanned"
        ));
        return Ok(());
    };
    let at = location(bucket_name, key);
    let manifest = manifest(env, config).await?;
    current_index::check_lists(&manifest, &rule.lists).map_err(retry)?;
    let db = database(env).await.map_err(Failure::Retry)?;
    let last = last_scan(&db, &at).await?;
    // Skip what this generation already judged, without reading the object
    // (a matched object is looked at again: its action may not have finished).
    if let (Some(last), Some(etag)) = (&last, etag_hint) {
        if last.covers(etag, &manifest.generation) && last.result != ScanResult::Match {
            return Ok(());
        }
    }
    let bucket = env.bucket(&rule.binding).map_err(retry)?;
    let Some(object) = bucket.get(key).execute().await.map_err(retry)? else {
        // Gone: deleted by its owner, or quarantined by an earlier attempt.
        return Ok(());
    };
    let etag = object.etag();
    if let Some(last) = &last {
        if last.covers(&etag, &manifest.generation) && last.result != ScanResult::Match {
            return Ok(());
        }
    }
    let mut row = LogRow {
        location: at.clone(),
        etag: etag.clone(),
        generation: manifest.generation.clone(),
        result: ScanResult::Failed,
        route: rule.pattern(),
        direction: "stored".to_owned(),
        pdq: None,
        md5: None,
        sha1: None,
        sha256: None,
        detail: None,
        scanned_ms: now_ms() as u64,
        pdq_quality: None,
    };
    if object.size() > rule.max_bytes as u64 {
        row.detail = Some(format!(
            "{} bytes, over the rule's max_bytes of {}",
            object.size(),
            rule.max_bytes
        ));
        return write_row(&db, &row).await;
    }
    let Some(body) = object.body() else {
        return Err(Failure::Retry(format!("{at}: no body")));
    };
    let bytes = body.bytes().await.map_err(retry)?;
    let digests = digests::exact_digests(&bytes).await;
    row.md5 = Some(digests.md5.to_string());
    row.sha1 = Some(digests.sha1.to_string());
    row.sha256 = Some(digests.sha256.to_string());
    let hashes = match hash_image_with_digests(&bytes, &hash_options(rule), digests) {
        Ok(hashes) => hashes,
        Err(HashError::UnsupportedFormat | HashError::Empty | HashError::NoRaster) => {
            row.result = ScanResult::Other;
            return write_row(&db, &row).await;
        }
        Err(e) => {
            row.detail = Some(ScanError::Hash(e).to_string());
            return write_row(&db, &row).await;
        }
    };
    row.pdq = Some(hashes.pdq.to_string());
    row.pdq_quality = Some(hashes.quality);
    let lists = rule.hygiene.lookup_lists(&rule.lists);
    let query = Query::for_image(&hashes, rule.pdq_threshold, lists);
    let matches = current_index::find(env, &manifest, &query, INDEX_TIMEOUT_MS)
        .await
        .map_err(retry)?;
    let (matches, _) = rule.hygiene.apply(matches, &hashes.query_qualities());
    let Verdict::Match(summaries) = verdict::verdict(&matches, &hashes) else {
        row.result = ScanResult::Clean;
        return write_row(&db, &row).await;
    };
    row.result = ScanResult::Match;
    let taken = match rule.action {
        StoredAction::Quarantine => ActionTaken::Quarantined,
        StoredAction::Delete => ActionTaken::Deleted,
        StoredAction::Report => ActionTaken::Flagged,
    };
    row.detail = Some(format!("{taken:?}").to_lowercase());
    let cx = EventContext {
        request_id: request_id.to_owned(),
        route: rule.pattern(),
        url: at.clone(),
        direction: Direction::Stored,
        field: None,
        filename: None,
    };
    let mut event = Event::matched(
        sighting_id(&at, &etag, &manifest.generation),
        now_ms(),
        &cx,
        Action::Flag,
        &verdict::summarize(&hashes),
        &summaries,
        false,
    );
    event.action = taken;
    // The evidence is preserved before the original is moved or deleted
    // (one object per SHA-256, so a retried message preserves once); a
    // failure leaves the object where it is, for the message's retry.
    let evidence = crate::evidence::EvidenceContext {
        sha256: hashes.sha256.to_string(),
        url: at.clone(),
        route: rule.pattern(),
        request_id: request_id.to_owned(),
        direction: Direction::Stored,
        action: if rule.action == StoredAction::Report {
            Action::Flag
        } else {
            Action::Block
        },
        content_type: None,
        matches: summaries.clone(),
        uploader: None,
    };
    crate::evidence::preserve(env, &bytes, &evidence)
        .await
        .map_err(|e| retry(format!("preserving the evidence of {at}: {e}")))?;
    outbox::send(env, &event).await;
    write_row(&db, &row).await?;
    act(env, rule, &bucket, key, &etag, &bytes, &row).await
}

/// Carries out the rule's action on a matched object.
async fn act(
    env: &Env,
    rule: &StoredRule,
    bucket: &worker::Bucket,
    key: &str,
    etag: &str,
    bytes: &[u8],
    row: &LogRow,
) -> Result<(), Failure> {
    match rule.action {
        StoredAction::Report => Ok(()),
        StoredAction::Quarantine => {
            let binding = rule
                .quarantine_binding
                .as_deref()
                .ok_or_else(|| Failure::Drop("quarantine without a binding".into()))?;
            let quarantine = env.bucket(binding).map_err(retry)?;
            let metadata: HashMap<String, String> = [
                ("bucket", rule.bucket.clone()),
                ("key", key.to_owned()),
                ("etag", etag.to_owned()),
                ("sha256", row.sha256.clone().unwrap_or_default()),
                ("generation", row.generation.clone()),
                ("quarantined", crate::events::rfc3339(now_ms() as u64)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            quarantine
                .put(quarantine_key(&rule.bucket, key), bytes.to_vec())
                .custom_metadata(metadata)
                .execute()
                .await
                .map_err(retry)?;
            delete_if_unchanged(bucket, key, etag).await
        }
        StoredAction::Delete => delete_if_unchanged(bucket, key, etag).await,
    }
}

/// Deletes `key` if it is still the version that was scanned (a newer
/// upload under the same key is scanned on its own notification).
async fn delete_if_unchanged(
    bucket: &worker::Bucket,
    key: &str,
    etag: &str,
) -> Result<(), Failure> {
    match bucket.head(key).await.map_err(retry)? {
        Some(head) if head.etag() == etag => bucket.delete(key).await.map_err(retry),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Backfills

/// A backfill's row.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Backfill {
    pub id: String,
    pub bucket: String,
    pub prefix: String,
    pub generation: String,
    pub cursor: Option<String>,
    pub listed: u64,
    pub listing_done: u32,
    pub pass: u32,
    pub started_ms: f64,
    pub updated_ms: f64,
}

pub async fn backfill(db: &worker::D1Database, id: &str) -> Result<Option<Backfill>, String> {
    db.prepare("SELECT * FROM backfills WHERE id = ?1")
        .bind(&[id.into()])
        .map_err(|e| e.to_string())?
        .first::<Backfill>(None)
        .await
        .map_err(|e| e.to_string())
}

/// A backfill's counts: listed from its row, the rest from the hash log.
pub async fn progress(db: &worker::D1Database, b: &Backfill) -> Result<Progress, String> {
    #[derive(Deserialize)]
    struct Count {
        result: ScanResult,
        n: u64,
    }
    let (low, high) = hash_log::prefix_range(&b.bucket, &b.prefix);
    let counts: Vec<Count> = db
        .prepare(hash_log::PROGRESS)
        .bind(&[b.generation.as_str().into(), low.into(), high.into()])
        .map_err(|e| e.to_string())?
        .all()
        .await
        .map_err(|e| e.to_string())?
        .results()
        .map_err(|e| e.to_string())?;
    let mut p = Progress {
        listed: b.listed,
        ..Progress::default()
    };
    p.add_counts(&counts.iter().map(|c| (c.result, c.n)).collect::<Vec<_>>());
    Ok(p)
}

async fn send_work(env: &Env, work: &[Work]) -> Result<(), String> {
    let queue = env
        .queue(STORED_OBJECTS)
        .map_err(|e| format!("{STORED_OBJECTS} is not bound: {e}"))?;
    for chunk in work.chunks(SEND_BATCH) {
        queue
            .send_batch(chunk.to_vec())
            .await
            .map_err(|e| format!("sending to {STORED_QUEUE}: {e}"))?;
    }
    Ok(())
}

/// Starts a backfill of `bucket`/`prefix` with the current generation, or
/// resumes it: a backfill that is not complete lists again from the start
/// (a new pass); objects already scanned are skipped by the hash log, so
/// the counts come out the same.
pub async fn start_backfill(
    env: &Env,
    config: &Config,
    bucket: &str,
    prefix: &str,
) -> Result<(Backfill, Progress), String> {
    if config.policy.stored.rule_for(bucket, prefix).is_none()
        && !config
            .policy
            .stored
            .rules()
            .iter()
            .any(|r| r.bucket == bucket && r.prefix.starts_with(prefix))
    {
        return Err(format!(
            "no stored rule covers bucket {bucket:?} prefix {prefix:?}: add one to the policy's \"stored\" section"
        ));
    }
    let manifest =
        current_index::manifest(env, config.policy.index.refresh_seconds, INDEX_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string())?;
    let db = database(env).await?;
    let id = crate::stored_message::backfill_id(bucket, prefix, &manifest.generation);
    let now = JsValue::from_f64(now_ms());
    db.prepare(
        "INSERT INTO backfills (id, bucket, prefix, generation, started_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&[
        id.as_str().into(),
        bucket.into(),
        prefix.into(),
        manifest.generation.as_str().into(),
        now.clone(),
    ])
    .map_err(|e| e.to_string())?
    .run()
    .await
    .map_err(|e| e.to_string())?;
    let mut b = backfill(&db, &id)
        .await?
        .ok_or_else(|| format!("backfill {id} vanished"))?;
    let p = progress(&db, &b).await?;
    let complete = b.listing_done == 1 && p.scanned >= b.listed;
    let fresh = b.listed == 0 && b.cursor.is_none() && b.listing_done == 0 && p.scanned == 0;
    if complete {
        return Ok((b, p));
    }
    if !fresh {
        // Resume: a new pass lists from the start.
        db.prepare(
            "UPDATE backfills SET cursor = NULL, listed = 0, listing_done = 0, pass = pass + 1, updated_ms = ?2 WHERE id = ?1",
        )
        .bind(&[id.as_str().into(), now])
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())?;
        b = backfill(&db, &id)
            .await?
            .ok_or_else(|| format!("backfill {id} vanished"))?;
    }
    send_work(env, &[Work::List { backfill: id }]).await?;
    let p = progress(&db, &b).await?;
    Ok((b, p))
}

/// Lists one page of a backfill and enqueues its keys.
async fn list_page(env: &Env, config: &Config, id: &str) -> Result<(), Failure> {
    let db = database(env).await.map_err(Failure::Retry)?;
    let Some(b) = backfill(&db, id).await.map_err(Failure::Retry)? else {
        return Err(Failure::Drop(format!("backfill {id} does not exist")));
    };
    if b.listing_done == 1 {
        return Ok(());
    }
    let Some(binding) = config.policy.stored.binding_of(&b.bucket) else {
        return Err(Failure::Drop(format!(
            "backfill {id}: no stored rule names bucket {:?} any more",
            b.bucket
        )));
    };
    let bucket = env.bucket(binding).map_err(retry)?;
    let mut list = bucket.list().prefix(b.prefix.clone()).limit(LIST_PAGE);
    if let Some(cursor) = &b.cursor {
        list = list.cursor(cursor.clone());
    }
    let page = list.execute().await.map_err(retry)?;
    let work: Vec<Work> = page
        .objects()
        .iter()
        .map(|o| Work::Scan {
            bucket: b.bucket.clone(),
            key: o.key(),
            etag: Some(o.etag()),
            backfill: Some(id.to_owned()),
        })
        .collect();
    send_work(env, &work).await.map_err(Failure::Retry)?;
    let done = !page.truncated();
    let next = page.cursor().filter(|_| !done);
    // Only the pass that read this cursor moves it on (a redelivered or
    // superseded list message changes nothing).
    let moved = db
        .prepare(
            "UPDATE backfills SET cursor = ?1, listed = listed + ?2, listing_done = ?3, updated_ms = ?4 \
             WHERE id = ?5 AND pass = ?6 AND cursor IS ?7",
        )
        .bind(&[
            next.as_deref().map_or(JsValue::NULL, JsValue::from),
            JsValue::from_f64(work.len() as f64),
            JsValue::from_f64(if done { 1.0 } else { 0.0 }),
            JsValue::from_f64(now_ms()),
            id.into(),
            JsValue::from_f64(f64::from(b.pass)),
            b.cursor.as_deref().map_or(JsValue::NULL, JsValue::from),
        ])
        .map_err(retry)?
        .run()
        .await
        .map_err(retry)?
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0);
    if moved == 1 && !done {
        send_work(
            env,
            &[Work::List {
                backfill: id.to_owned(),
            }],
        )
        .await
        .map_err(Failure::Retry)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Retroactive matching

#[derive(Debug, Deserialize)]
struct PassRow {
    id: String,
    to_generation: String,
    manifest: String,
}

async fn read_snapshot(env: &Env, manifest: &Manifest) -> Result<Option<Snapshot>, String> {
    if manifest.layout != hashgate::index::Layout::Resident {
        return Ok(None);
    }
    let kv = env.kv(HASH_INDEX).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(usize::try_from(manifest.bytes).unwrap_or(0));
    for key in &manifest.parts {
        match kv.get(key).bytes().await.map_err(|e| e.to_string())? {
            Some(part) => bytes.extend_from_slice(&part),
            None => return Ok(None),
        }
    }
    Snapshot::parse(bytes).map(Some).map_err(|e| e.to_string())
}

/// Starts a retroactive pass when the current generation is not the one
/// the last pass (or the first sight) recorded. Called from the cron
/// trigger and the admin endpoint; returns the pass id when one started.
pub async fn check_generation(env: &Env) -> Result<Option<String>, String> {
    let config = config::load(env).await.map_err(|e| e.to_string())?;
    if config.policy.stored.rules().is_empty() && env.d1(HASH_LOG).is_err() {
        return Ok(None);
    }
    let manifest =
        current_index::manifest(env, config.policy.index.refresh_seconds, INDEX_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string())?;
    let db = database(env).await?;
    let last: Option<PassRow> = db
        .prepare("SELECT id, to_generation, manifest FROM retro_passes ORDER BY started_ms DESC, rowid DESC LIMIT 1")
        .first(None)
        .await
        .map_err(|e| e.to_string())?;
    if last
        .as_ref()
        .is_some_and(|l| l.to_generation == manifest.generation)
    {
        return Ok(None);
    }
    let manifest_json = serde_json::to_string(&*manifest).map_err(|e| e.to_string())?;
    let Some(last) = last else {
        // First sight of an index: nothing to compare with.
        db.prepare(
            "INSERT OR IGNORE INTO retro_passes (id, from_generation, to_generation, added, manifest, done, started_ms) \
             VALUES (?1, NULL, ?1, 0, ?2, 1, ?3)",
        )
        .bind(&[manifest.generation.as_str().into(), manifest_json.into(), JsValue::from_f64(now_ms())])
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())?;
        return Ok(None);
    };
    let old: Manifest = serde_json::from_str(&last.manifest).map_err(|e| e.to_string())?;
    let new_snapshot = read_snapshot(env, &manifest).await?;
    let Some(new_snapshot) = new_snapshot else {
        log_warn("hashgate: retroactive matching needs the resident index layout; skipped");
        return Ok(None);
    };
    let old_snapshot = read_snapshot(env, &old).await?;
    if old_snapshot.is_none() {
        log_warn(&format!(
            "hashgate: generation {} is no longer readable: every hash of {} counts as added",
            old.generation, manifest.generation
        ));
    }
    let added = retro::added(old_snapshot.as_ref(), &new_snapshot);
    let pass = format!(
        "{}-{}",
        last.id.split('-').next_back().unwrap_or(&last.id),
        manifest.generation
    );
    env.kv(REPORTS)
        .map_err(|e| e.to_string())?
        .put(
            &format!("{RETRO_PREFIX}{pass}"),
            retro::encode_added(&added),
        )
        .map_err(|e| e.to_string())?
        .expiration_ttl(RETRO_TTL_SECONDS)
        .execute()
        .await
        .map_err(|e| e.to_string())?;
    db.prepare(
        "INSERT OR IGNORE INTO retro_passes (id, from_generation, to_generation, added, manifest, started_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        pass.as_str().into(),
        last.to_generation.as_str().into(),
        manifest.generation.as_str().into(),
        JsValue::from_f64(added.len() as f64),
        manifest_json.into(),
        JsValue::from_f64(now_ms()),
    ])
    .map_err(|e| e.to_string())?
    .run()
    .await
    .map_err(|e| e.to_string())?;
    send_work(
        env,
        &[Work::Retro {
            pass: pass.clone(),
            after: 0,
        }],
    )
    .await?;
    Ok(Some(pass))
}

async fn added_index(env: &Env, pass: &str) -> Result<Rc<Option<ResidentIndex>>, Failure> {
    if let Some(index) = RETRO_INDEX.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(p, _)| p == pass)
            .map(|(_, i)| i.clone())
    }) {
        return Ok(index);
    }
    let text = env
        .kv(REPORTS)
        .map_err(retry)?
        .get(&format!("{RETRO_PREFIX}{pass}"))
        .text()
        .await
        .map_err(retry)?
        .ok_or_else(|| {
            Failure::Drop(format!(
                "retroactive pass {pass}: its added hashes are gone"
            ))
        })?;
    let added = retro::decode_added(&text).map_err(|e| Failure::Drop(e.to_string()))?;
    let index = Rc::new(retro::added_index(&added).map_err(|e| Failure::Drop(e.to_string()))?);
    RETRO_INDEX.with(|c| *c.borrow_mut() = Some((pass.to_owned(), index.clone())));
    Ok(index)
}

/// Matches one page of the hash log against a pass's added hashes.
async fn retro_page(env: &Env, config: &Config, pass: &str, after: i64) -> Result<(), Failure> {
    let db = database(env).await.map_err(Failure::Retry)?;
    let Some(row): Option<PassRow> = db
        .prepare("SELECT id, to_generation, manifest FROM retro_passes WHERE id = ?1")
        .bind(&[pass.into()])
        .map_err(retry)?
        .first(None)
        .await
        .map_err(retry)?
    else {
        return Err(Failure::Drop(format!(
            "retroactive pass {pass} does not exist"
        )));
    };
    let index = added_index(env, pass).await?;
    let rows: Vec<PageRow> = db
        .prepare(hash_log::PAGE)
        .bind(&[
            JsValue::from_f64(after as f64),
            JsValue::from_f64(f64::from(RETRO_PAGE)),
        ])
        .map_err(retry)?
        .all()
        .await
        .map_err(retry)?
        .results()
        .map_err(retry)?;
    let found = match index.as_ref() {
        Some(index) => retro::candidates(index, &rows),
        None => Vec::new(),
    };
    let mut rescans = Vec::new();
    let mut raised = 0u32;
    for (candidate, _) in &found {
        // Scanned with the new generation already: judged by the full index.
        if candidate.generation == row.to_generation {
            continue;
        }
        if let Some((bucket, key)) = parse_location(&candidate.location) {
            rescans.push(Work::Scan {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                etag: None,
                backfill: None,
            });
        } else if confirm_edge(env, config, candidate, &row.to_generation).await? {
            raised += 1;
        }
    }
    send_work(env, &rescans).await.map_err(Failure::Retry)?;
    let last = rows.last().map_or(after, |r| r.row);
    let done = rows.len() < RETRO_PAGE as usize;
    db.prepare(
        "UPDATE retro_passes SET checked = checked + ?2, candidates = candidates + ?3, done = ?4 WHERE id = ?1",
    )
    .bind(&[
        pass.into(),
        JsValue::from_f64(rows.len() as f64),
        JsValue::from_f64((rescans.len() as u32 + raised) as f64),
        JsValue::from_f64(if done { 1.0 } else { 0.0 }),
    ])
    .map_err(retry)?
    .run()
    .await
    .map_err(retry)?;
    if !done {
        send_work(
            env,
            &[Work::Retro {
                pass: pass.to_owned(),
                after: last,
            }],
        )
        .await
        .map_err(Failure::Retry)?;
    }
    Ok(())
}

/// An image logged at the edge that matches an added hash: confirmed
/// against the full index with its route's threshold and lists, then
/// reported (it was served before the hash was listed).
async fn confirm_edge(
    env: &Env,
    config: &Config,
    candidate: &PageRow,
    generation: &str,
) -> Result<bool, Failure> {
    let Some(mut query) = retro::row_query(candidate) else {
        return Ok(false);
    };
    let route = config.policy.route_by_pattern(&candidate.route);
    if let Some(route) = route {
        query.pdq_threshold = route.pdq_threshold;
        query.lists = route.hygiene.lookup_lists(&route.lists);
    }
    let manifest = manifest(env, config).await?;
    if manifest.generation != generation {
        // A newer generation has its own pass.
        return Ok(false);
    }
    let matches = current_index::find(env, &manifest, &query, INDEX_TIMEOUT_MS)
        .await
        .map_err(retry)?;
    // The route's hygiene rules, with the quality logged at the edge (a
    // row logged before qualities were kept is judged as a bare hash).
    let matches = match route {
        Some(route) => {
            route
                .hygiene
                .apply(matches, candidate.pdq_quality.as_slice())
                .0
        }
        None => {
            hashgate::index::Hygiene::default()
                .apply(matches, candidate.pdq_quality.as_slice())
                .0
        }
    };
    if matches.is_empty() {
        return Ok(false);
    }
    let direction = if candidate.direction == "upload" {
        Direction::Upload
    } else {
        Direction::Response
    };
    let cx = EventContext {
        request_id: "retroactive".to_owned(),
        route: candidate.route.clone(),
        url: candidate.location.clone(),
        direction,
        field: None,
        filename: None,
    };
    let image = crate::verdict::ImageSummary {
        sha256: candidate.sha256.clone().unwrap_or_default(),
        pdq: candidate.pdq.clone().unwrap_or_default(),
        format: String::new(),
        width: 0,
        height: 0,
    };
    let mut event = Event::matched(
        sighting_id(&candidate.location, &candidate.etag, generation),
        now_ms(),
        &cx,
        Action::Flag,
        &image,
        &retro::summaries(&matches),
        false,
    );
    event.action = ActionTaken::Passed;
    event.detail = Some(format!(
        "retroactive: served before generation {generation} listed it"
    ));
    outbox::send(env, &event).await;
    Ok(true)
}

/// Logs an image scanned at the edge (its hashes, never its bytes), after
/// the response: a failure is logged, never the request's.
pub async fn log_edge(env: &Env, row: LogRow) {
    if env.d1(HASH_LOG).is_err() {
        return;
    }
    let result = async {
        let db = database(env).await.map_err(Failure::Retry)?;
        write_row(&db, &row).await
    }
    .await;
    if let Err(Failure::Retry(e) | Failure::Drop(e)) = result {
        log_warn(&format!(
            "hashgate: hash log write for {} failed: {e}",
            row.location
        ));
    }
}

/// The hash-log row of an image scanned at the edge.
pub fn edge_row(
    url: &str,
    route: &crate::policy::Route,
    generation: &str,
    hashes: &hashgate::ImageHashes,
    verdict: &Verdict,
) -> LogRow {
    LogRow {
        location: url.to_owned(),
        etag: String::new(),
        generation: generation.to_owned(),
        result: match verdict {
            Verdict::Clean => ScanResult::Clean,
            Verdict::Match(_) => ScanResult::Match,
        },
        route: route.pattern.as_str().to_owned(),
        direction: "response".to_owned(),
        pdq: Some(hashes.pdq.to_string()),
        md5: Some(hashes.md5.to_string()),
        sha1: Some(hashes.sha1.to_string()),
        sha256: Some(hashes.sha256.to_string()),
        detail: None,
        scanned_ms: now_ms() as u64,
        pdq_quality: Some(hashes.quality),
    }
}
