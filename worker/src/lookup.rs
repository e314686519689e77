//! The look-up phase: read the keys the hasher's [`QueryPlan`] names from
//! the `HASH_INDEX` KV namespace and let the plan resolve them.
//!
//! The index format is the hasher's (`hashgate::index`); this module only
//! does the I/O. Keys are read with Workers KV bulk reads (up to 100 keys
//! per call; workers-rs 0.8.7's `get_bulk` and miniflare both support it),
//! all batches at once, so a query costs one KV round trip however many
//! batches it has (a PDQ threshold of 31 with 8 dihedral hashes is about
//! 2,200 keys, 22 batches).

use std::collections::HashMap;

use futures_util::future::join_all;
use hashgate::index::{Match, QueryPlan};
use worker::KvStore;

use crate::error::ScanError;

/// Reads every key of `plan` and resolves the matches.
pub async fn lookup(kv: &KvStore, plan: &QueryPlan) -> Result<Vec<Match>, ScanError> {
    let reads = plan.batches().map(|batch| kv.get_bulk(batch).text());
    let mut values: HashMap<String, String> = HashMap::new();
    for result in join_all(reads).await {
        let batch = result.map_err(|e| ScanError::IndexUnavailable(e.to_string()))?;
        values.extend(
            batch
                .into_iter()
                .filter_map(|(key, value)| value.map(|v| (key, v))),
        );
    }
    Ok(plan.resolve(|key| values.get(key).map(|v| v.as_bytes()))?)
}
