//! Queries answered from a [`Snapshot`] held in memory: the worker's index
//! once an isolate has loaded a generation, and the native tools' index.
//!
//! PDQ look-ups use a multi-index over the sixteen 16-bit chunks of each
//! hash, the same probe plan as the KV bucket layout
//! ([`super::layout::probe_radii`]: `T + 1` chunks at radius 0 up to
//! `T = 15`, then one more chunk at radius 1 per unit of `T`, 272 buckets at
//! `T = 31`), built when the snapshot is loaded: a counting sort per chunk,
//! `O(16 N)`, no allocation per entry. Each table holds 3-byte row numbers
//! (indexes up to 2^24 hashes), so the tables cost 48 bytes per hash plus
//! 4 MB of bucket starts, the hashes 32 and their memberships about 9: about
//! 93 MB per 10^6 PDQ hashes in all. Exact recall follows from pigeonhole
//! (see [`super::layout`]); each candidate's full distance is then checked,
//! so nothing beyond `T` is reported.
//!
//! Why not fewer tables probed wider: eleven tables at radius 2 also cover
//! `T = 31` and save 15 bytes per hash, but read 1,507 buckets per query hash
//! instead of 272; a look-up is bound by memory latency (each bucket is a
//! cache miss or two), and measured 1.6 times slower than the bucket layout
//! it replaces (`cargo bench -p hashgate --bench index`).
//!
//! Digests are found by binary search in their sorted sections, vec72
//! vectors by a scan (their lists are small).
//!
//! The answers are exactly [`super::QueryPlan::resolve`]'s over the bucket
//! layout built from the same lists (same matches, distances, ids, order);
//! `tests/index_recall.rs` checks both against a brute-force scan.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{probe_radii, probe_values, CHUNKS};
use super::query::{finish, Match, MatchedBy, Query, QueryError};
use super::record::Allowance;
use super::snapshot::{hash_bytes, Snapshot, SnapshotError};
use super::{ListName, TypedHash, MAX_PDQ_THRESHOLD};
use crate::hashes::{HashKind, PdqHash};

/// Buckets per chunk (16-bit chunks).
const BUCKETS: usize = 1 << 16;
/// Bytes of a row number in a table.
const ROW_BYTES: usize = 3;
/// Most PDQ hashes a resident index holds (3-byte row numbers).
pub const MAX_RESIDENT_PDQ: usize = 1 << 24;

/// A snapshot and its PDQ multi-index, ready to answer queries.
#[derive(Debug, Clone)]
pub struct ResidentIndex {
    snapshot: Snapshot,
    /// For chunk `c`, bucket `v`: the row numbers at
    /// `rows[c][3 * starts[c][v]..3 * starts[c][v + 1]]` (3 bytes each).
    starts: Vec<Vec<u32>>,
    rows: Vec<Vec<u8>>,
}

impl ResidentIndex {
    /// Verifies `bytes` as a snapshot and builds the PDQ tables.
    pub fn load(bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        Self::new(Snapshot::parse(bytes)?)
    }

    /// Builds the PDQ tables of a parsed snapshot.
    pub fn new(snapshot: Snapshot) -> Result<Self, SnapshotError> {
        let hashes = snapshot.hashes(HashKind::Pdq);
        let count = hashes.len() / 32;
        if count > MAX_RESIDENT_PDQ {
            return Err(SnapshotError::TooLarge("PDQ hash count"));
        }
        let mut starts = Vec::with_capacity(CHUNKS);
        let mut rows = Vec::with_capacity(CHUNKS);
        for chunk in 0..CHUNKS {
            let value = |row: usize| {
                let at = row * 32 + 2 * chunk;
                usize::from(u16::from_be_bytes([hashes[at], hashes[at + 1]]))
            };
            let mut bucket_starts = vec![0u32; BUCKETS + 1];
            for row in 0..count {
                bucket_starts[value(row) + 1] += 1;
            }
            for v in 0..BUCKETS {
                bucket_starts[v + 1] += bucket_starts[v];
            }
            let mut next = bucket_starts.clone();
            let mut table = vec![0u8; count * ROW_BYTES];
            for row in 0..count {
                let slot = &mut next[value(row)];
                let at = *slot as usize * ROW_BYTES;
                table[at..at + ROW_BYTES].copy_from_slice(&(row as u32).to_le_bytes()[..ROW_BYTES]);
                *slot += 1;
            }
            starts.push(bucket_starts);
            rows.push(table);
        }
        Ok(ResidentIndex {
            snapshot,
            starts,
            rows,
        })
    }

    /// The snapshot behind the index.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The list names the index holds.
    pub fn lists(&self) -> &[ListName] {
        self.snapshot.lists()
    }

    /// Bytes held: the snapshot plus the tables.
    pub fn memory_bytes(&self) -> usize {
        self.snapshot.bytes().len()
            + self.starts.iter().map(|s| s.len() * 4).sum::<usize>()
            + self.rows.iter().map(Vec::len).sum::<usize>()
    }

    /// Every list entry `query` matches: the same answer as
    /// [`super::QueryPlan::resolve`] over the bucket layout.
    pub fn find(&self, query: &Query) -> Result<Vec<Match>, QueryError> {
        if query.pdq_threshold > MAX_PDQ_THRESHOLD {
            return Err(QueryError::ThresholdTooLarge(query.pdq_threshold));
        }
        let mut found = Found::default();
        let mut allowed_everywhere = false;
        let mut allowed_lists: BTreeSet<ListName> = BTreeSet::new();
        let mut allow = |hash: &TypedHash| match self.snapshot.allow().get(hash) {
            Some(Allowance::AllLists) => allowed_everywhere = true,
            Some(Allowance::Lists(lists)) => allowed_lists.extend(lists.iter().cloned()),
            Some(Allowance::None) | None => {}
        };

        for (index, digest) in query.exact.iter().enumerate() {
            let hash = TypedHash::from(*digest);
            allow(&hash);
            let kind = hash.kind();
            if let Some(row) = self.snapshot.find(kind, hash_bytes(&hash)) {
                self.add_row(
                    &mut found,
                    query,
                    kind,
                    row,
                    hash,
                    0,
                    MatchedBy::Exact(index),
                );
            }
        }
        for hash in &query.pdq {
            allow(&TypedHash::Pdq(*hash));
        }
        for (index, hash) in query.pdq.iter().enumerate() {
            self.find_pdq(&mut found, query, index, hash);
        }
        if let Some(vector) = &query.vec72 {
            let count = self.snapshot.count(HashKind::Vec72);
            for row in 0..count {
                let bytes = self.snapshot.hash_at(HashKind::Vec72, row);
                let Some(candidate) = crate::hashes::Vec72::from_slice(bytes) else {
                    continue;
                };
                let distance = candidate.distance(vector);
                if distance <= query.vec72_threshold {
                    let hash = TypedHash::Vec72(candidate);
                    self.add_row(
                        &mut found,
                        query,
                        HashKind::Vec72,
                        row,
                        hash,
                        distance,
                        MatchedBy::Vec72,
                    );
                }
            }
        }

        Ok(finish(
            found.0.into_values(),
            allowed_everywhere,
            &allowed_lists,
        ))
    }

    fn find_pdq(&self, found: &mut Found, query: &Query, index: usize, hash: &PdqHash) {
        let threshold = query.pdq_threshold;
        let Some(probes) = probe_radii(threshold) else {
            return;
        };
        let hashes = self.snapshot.hashes(HashKind::Pdq);
        let wanted = words(&hash.0);
        for (chunk, probe) in probes.iter().enumerate() {
            let starts = &self.starts[chunk];
            let rows = &self.rows[chunk];
            for value in probe_values(hash.chunk16(chunk), *probe) {
                let v = usize::from(value);
                let bucket =
                    &rows[starts[v] as usize * ROW_BYTES..starts[v + 1] as usize * ROW_BYTES];
                for row in bucket.chunks_exact(ROW_BYTES) {
                    let row = u32::from_le_bytes([row[0], row[1], row[2], 0]) as usize;
                    let stored = &hashes[row * 32..row * 32 + 32];
                    let distance = distance(stored, &wanted);
                    if distance > threshold {
                        continue;
                    }
                    let Some(list_hash) = PdqHash::from_slice(stored) else {
                        continue;
                    };
                    self.add_row(
                        found,
                        query,
                        HashKind::Pdq,
                        row,
                        TypedHash::Pdq(list_hash),
                        distance,
                        MatchedBy::Pdq(index),
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_row(
        &self,
        found: &mut Found,
        query: &Query,
        kind: HashKind,
        row: usize,
        hash: TypedHash,
        distance: u32,
        matched_by: MatchedBy,
    ) {
        for (list, id) in self.snapshot.memberships(kind, row) {
            if query.lists.includes(list) {
                found.add(Match {
                    list: list.to_owned(),
                    kind,
                    hash,
                    distance,
                    id: id.map(str::to_owned),
                    matched_by,
                });
            }
        }
    }
}

/// Matches so far, one per (list, hash, id), at the smallest distance; on a
/// tie the first query hash that found it.
#[derive(Default)]
struct Found(BTreeMap<(ListName, TypedHash, Option<String>), Match>);

impl Found {
    fn add(&mut self, candidate: Match) {
        let key = (candidate.list.clone(), candidate.hash, candidate.id.clone());
        match self.0.get(&key) {
            Some(existing)
                if (existing.distance, existing.matched_by)
                    <= (candidate.distance, candidate.matched_by) => {}
            _ => {
                self.0.insert(key, candidate);
            }
        }
    }
}

fn words(bytes: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (word, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    out
}

fn distance(stored: &[u8], wanted: &[u64; 4]) -> u32 {
    let mut total = 0;
    for (chunk, want) in stored.chunks_exact(8).zip(wanted) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        total += (u64::from_le_bytes(b) ^ want).count_ones();
    }
    total
}
