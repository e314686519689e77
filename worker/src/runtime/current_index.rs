//! The index this isolate uses: which generation is current, and the
//! generation's data.
//!
//! ```text
//! every request that needs the index
//!   manifest   hg2/current, read at most once per `index.refresh_seconds`
//!              (1 KV read); missing: `index-missing`, never "no match"
//!   resident   the generation's snapshot parts, read once per isolate and
//!              generation (a few KV reads, cacheTtl a day: a generation
//!              never changes), matched in memory from then on
//!   buckets    (indexes too large to hold) the hg1 keys the query plans,
//!              read per query by [`crate::lookup`]
//! ```
//!
//! A failed manifest read with a generation already known keeps that
//! generation (logged), for at most [`MAX_STALE_MS`]: the index in memory
//! is still a real index, and failing every image open because one small
//! read failed would be worse. With no generation known, or past that
//! bound, a failure takes the route's fail mode. Nothing here is cached on
//! failure.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use hashgate::index::generation::{Layout, Manifest, CURRENT_KEY};
use hashgate::index::{ListFilter, Match, Query, QueryPlan, ResidentIndex};
use worker::{Delay, Env, KvStore};

use crate::config::HASH_INDEX;
use crate::error::ScanError;
use crate::lookup::lookup;
use crate::runtime::{log_warn, now_ms};

/// How long a known generation is used while its manifest cannot be read.
pub const MAX_STALE_MS: f64 = 10.0 * 60_000.0;
/// Edge cache TTL of a generation's parts (they never change).
const PART_CACHE_TTL_SECONDS: u64 = 86_400;

struct Known {
    manifest: Rc<Manifest>,
    checked_ms: f64,
    read_ok_ms: f64,
}

thread_local! {
    static MANIFEST: RefCell<Option<Known>> = const { RefCell::new(None) };
    static RESIDENT: RefCell<Option<(String, Rc<ResidentIndex>)>> = const { RefCell::new(None) };
    static LOADING: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn kv(env: &Env) -> Result<KvStore, ScanError> {
    env.kv(HASH_INDEX)
        .map_err(|e| ScanError::IndexUnavailable(format!("{HASH_INDEX} is not bound: {e}")))
}

async fn with_timeout<T>(
    future: impl std::future::Future<Output = T>,
    timeout_ms: u32,
) -> Result<T, ScanError> {
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    match select(Box::pin(future), timer).await {
        Either::Left((value, _)) => Ok(value),
        Either::Right(_) => Err(ScanError::IndexTimeout { ms: timeout_ms }),
    }
}

/// The current generation's manifest.
pub async fn manifest(
    env: &Env,
    refresh_seconds: u32,
    timeout_ms: u32,
) -> Result<Rc<Manifest>, ScanError> {
    let now = now_ms();
    let refresh_ms = f64::from(refresh_seconds) * 1000.0;
    let known = MANIFEST.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|k| (k.manifest.clone(), k.checked_ms, k.read_ok_ms))
    });
    if let Some((manifest, checked_ms, _)) = &known {
        if now - checked_ms < refresh_ms {
            return Ok(manifest.clone());
        }
    }
    match read_manifest(env, timeout_ms).await {
        Ok(manifest) => {
            let manifest = Rc::new(manifest);
            MANIFEST.with(|cell| {
                *cell.borrow_mut() = Some(Known {
                    manifest: manifest.clone(),
                    checked_ms: now,
                    read_ok_ms: now,
                })
            });
            Ok(manifest)
        }
        Err(error) => match known {
            // A transient failure with a generation in hand: keep it, for a
            // while, and try again at the next interval.
            Some((manifest, _, read_ok_ms))
                if now - read_ok_ms < MAX_STALE_MS
                    && matches!(
                        error,
                        ScanError::IndexUnavailable(_) | ScanError::IndexTimeout { .. }
                    ) =>
            {
                log_warn(&format!(
                    "hashgate: index manifest not readable ({error}); keeping generation {}",
                    manifest.generation
                ));
                MANIFEST.with(|cell| {
                    if let Some(k) = cell.borrow_mut().as_mut() {
                        k.checked_ms = now;
                    }
                });
                Ok(manifest)
            }
            _ => {
                MANIFEST.with(|cell| *cell.borrow_mut() = None);
                Err(error)
            }
        },
    }
}

async fn read_manifest(env: &Env, timeout_ms: u32) -> Result<Manifest, ScanError> {
    let kv = kv(env)?;
    let text = with_timeout(kv.get(CURRENT_KEY).text(), timeout_ms)
        .await?
        .map_err(|e| ScanError::IndexUnavailable(e.to_string()))?
        .ok_or(ScanError::IndexMissing { key: CURRENT_KEY })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| ScanError::IndexGeneration(format!("{CURRENT_KEY}: {e}")))?;
    manifest
        .validate()
        .map_err(|e| ScanError::IndexGeneration(format!("{CURRENT_KEY}: {e}")))?;
    Ok(manifest)
}

/// Refuses a list filter naming lists the generation does not hold.
pub fn check_lists(manifest: &Manifest, lists: &ListFilter) -> Result<(), ScanError> {
    let ListFilter::Only(names) = lists else {
        return Ok(());
    };
    let unknown: Vec<String> = names
        .iter()
        .filter(|name| !manifest.lists.contains_key(*name))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ScanError::UnknownLists {
        unknown,
        known: manifest.lists.keys().cloned().collect(),
    })
}

/// Every list entry `query` matches in the generation `manifest` names.
pub async fn find(
    env: &Env,
    manifest: &Manifest,
    query: &Query,
    timeout_ms: u32,
) -> Result<Vec<Match>, ScanError> {
    check_lists(manifest, &query.lists)?;
    match manifest.layout {
        Layout::Resident => Ok(resident(env, manifest, timeout_ms).await?.find(query)?),
        Layout::Buckets => {
            let plan = QueryPlan::new(query)?;
            lookup(&kv(env)?, &plan, timeout_ms).await
        }
    }
}

/// The resident index of `manifest`'s generation, loading it if this
/// isolate does not hold it yet. Requests that arrive while another is
/// loading it wait for that load instead of starting their own (one copy
/// in memory).
async fn resident(
    env: &Env,
    manifest: &Manifest,
    timeout_ms: u32,
) -> Result<Rc<ResidentIndex>, ScanError> {
    let started = now_ms();
    loop {
        if let Some(index) = RESIDENT.with(|cell| {
            cell.borrow()
                .as_ref()
                .filter(|(generation, _)| *generation == manifest.generation)
                .map(|(_, index)| index.clone())
        }) {
            return Ok(index);
        }
        let someone_loading =
            LOADING.with(|cell| cell.borrow().as_deref() == Some(manifest.generation.as_str()));
        if !someone_loading {
            break;
        }
        if now_ms() - started > f64::from(timeout_ms) {
            return Err(ScanError::IndexTimeout { ms: timeout_ms });
        }
        Delay::from(Duration::from_millis(5)).await;
    }
    LOADING.with(|cell| *cell.borrow_mut() = Some(manifest.generation.clone()));
    let loaded = load_resident(env, manifest, timeout_ms).await;
    LOADING.with(|cell| *cell.borrow_mut() = None);
    let index = Rc::new(loaded?);
    RESIDENT.with(|cell| *cell.borrow_mut() = Some((manifest.generation.clone(), index.clone())));
    Ok(index)
}

async fn load_resident(
    env: &Env,
    manifest: &Manifest,
    timeout_ms: u32,
) -> Result<ResidentIndex, ScanError> {
    // The previous generation's memory goes before the new one arrives.
    RESIDENT.with(|cell| *cell.borrow_mut() = None);
    let kv = kv(env)?;
    // One part at a time, each appended and dropped at once: the isolate
    // never holds more than the snapshot and one part (20 MiB) besides.
    let mut bytes = Vec::with_capacity(usize::try_from(manifest.bytes).unwrap_or(0));
    for key in &manifest.parts {
        let read = kv.get(key).cache_ttl(PART_CACHE_TTL_SECONDS).bytes();
        let part = with_timeout(read, timeout_ms.saturating_mul(4))
            .await?
            .map_err(|e| ScanError::IndexUnavailable(e.to_string()))?
            .ok_or_else(|| {
                ScanError::IndexGeneration(format!(
                    "generation {} names part {key}, which is missing",
                    manifest.generation
                ))
            })?;
        bytes.extend_from_slice(&part);
    }
    if bytes.len() as u64 != manifest.bytes {
        return Err(ScanError::IndexGeneration(format!(
            "generation {}: parts hold {} bytes, the manifest says {}",
            manifest.generation,
            bytes.len(),
            manifest.bytes
        )));
    }
    ResidentIndex::load(bytes)
        .map_err(|e| ScanError::IndexGeneration(format!("generation {}: {e}", manifest.generation)))
}
