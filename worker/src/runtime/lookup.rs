//! The look-up phase: read the keys the hasher's [`QueryPlan`] names from
//! the `HASH_INDEX` KV namespace and let the plan resolve them.
//!
//! The index format is the hasher's (`hashgate::index`); this module only
//! does the I/O. Keys are read with Workers KV bulk reads (up to 100 keys
//! per call; workers-rs 0.8.7's `get_bulk` and miniflare both support it),
//! all batches at once, so a query costs one KV round trip however many
//! batches it has (a PDQ threshold of 31 with 8 dihedral hashes is about
//! 2,200 keys, 22 batches).
//!
//! The reads race a timer (the route's `kv_timeout_ms`): a KV that errors
//! or stalls must not hold the request, and must never look like "no
//! match". Either is a [`ScanError`], so the route's fail mode applies and
//! nothing is cached; the reads left behind are abandoned.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use hashgate::index::{Match, QueryPlan};
use worker::{Delay, KvStore};

use crate::error::ScanError;

/// Reads every key of `plan` within `timeout_ms` and resolves the matches.
pub async fn lookup(
    kv: &KvStore,
    plan: &QueryPlan,
    timeout_ms: u32,
) -> Result<Vec<Match>, ScanError> {
    let reads = Box::pin(join_all(
        plan.batches().map(|batch| kv.get_bulk(batch).text()),
    ));
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let results = match select(reads, timer).await {
        Either::Left((results, _)) => results,
        Either::Right(_) => return Err(ScanError::IndexTimeout { ms: timeout_ms }),
    };
    let mut values: HashMap<String, String> = HashMap::new();
    for result in results {
        let batch = result.map_err(|e| ScanError::IndexUnavailable(e.to_string()))?;
        values.extend(
            batch
                .into_iter()
                .filter_map(|(key, value)| value.map(|v| (key, v))),
        );
    }
    Ok(plan.resolve(|key| values.get(key).map(|v| v.as_bytes()))?)
}
