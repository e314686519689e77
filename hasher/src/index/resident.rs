//! Queries answered from a [`Snapshot`] held in memory: the worker's index
//! once an isolate has loaded a generation, and the native tools' index.
//!
//! PDQ look-ups use a multi-index over the first [`INDEXED_CHUNKS`] 16-bit
//! chunks of each hash, built when the snapshot is loaded (a counting sort
//! per chunk: `O(11 N)`, no hashing, no allocation per entry). Exact
//! recall follows from pigeonhole: if a list hash is within `T` of the
//! query, then over any `k` chunks probed at radius `r` with
//! `k (r + 1) >= T + 1`, at least one chunk differs by at most `r` bits, so
//! the list hash sits in a probed bucket; each candidate's full distance is
//! then checked, so nothing beyond `T` is reported.
//!
//! | T | chunks probed x radius | buckets per query hash | candidates at N = 10^6 |
//! |---|---|---|---|
//! | 0..=10 | (T + 1) x 0 | T + 1 | about 15 (T + 1) |
//! | 11..=21 | ceil((T + 1) / 2) x 1 | 17 per chunk, 187 at most | about 2,800 |
//! | 22..=31 | ceil((T + 1) / 3) x 2 | 137 per chunk, 1,507 at most | about 23,000 |
//!
//! Eleven tables of `u32` row numbers cost 44 bytes per hash (plus 2.9 MB
//! of bucket starts), the hashes themselves 32: about 80 MB per 10^6 PDQ
//! hashes in all, where sixteen tables at radius 1 would cost 100 MB for a
//! quarter of the probes. Digests are found by binary search in their
//! sorted sections, vec72 vectors by a scan (their lists are small).
//!
//! The answers are exactly [`super::QueryPlan::resolve`]'s over the bucket
//! layout built from the same lists (same matches, distances, ids, order);
//! `tests/index_recall.rs` checks both against a brute-force scan.

use std::collections::{BTreeMap, BTreeSet};

use super::query::{ListFilter, Match, MatchedBy, Query, QueryError};
use super::record::Allowance;
use super::snapshot::{Snapshot, SnapshotError};
use super::{ListName, TypedHash, MAX_PDQ_THRESHOLD};
use crate::hashes::{HashKind, PdqHash};

/// Chunks with a table: eleven at radius 2 cover `T = 31` (11 x 3 >= 32).
pub const INDEXED_CHUNKS: usize = 11;
/// Buckets per chunk (16-bit chunks).
const BUCKETS: usize = 1 << 16;

/// A snapshot and its PDQ multi-index, ready to answer queries.
#[derive(Debug, Clone)]
pub struct ResidentIndex {
    snapshot: Snapshot,
    /// For chunk `c`, bucket `v`: rows `rows[c][starts[c][v]..starts[c][v + 1]]`.
    starts: Vec<Vec<u32>>,
    rows: Vec<Vec<u32>>,
}

impl ResidentIndex {
    /// Verifies `bytes` as a snapshot and builds the PDQ tables.
    pub fn load(bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        Ok(Self::new(Snapshot::parse(bytes)?))
    }

    /// Builds the PDQ tables of a parsed snapshot.
    pub fn new(snapshot: Snapshot) -> Self {
        let hashes = snapshot.hashes(HashKind::Pdq);
        let count = hashes.len() / 32;
        let mut starts = Vec::with_capacity(INDEXED_CHUNKS);
        let mut rows = Vec::with_capacity(INDEXED_CHUNKS);
        for chunk in 0..INDEXED_CHUNKS {
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
            let mut table = vec![0u32; count];
            for row in 0..count {
                let slot = &mut next[value(row)];
                table[*slot as usize] = row as u32;
                *slot += 1;
            }
            starts.push(bucket_starts);
            rows.push(table);
        }
        ResidentIndex {
            snapshot,
            starts,
            rows,
        }
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
            + self.rows.iter().map(|r| r.len() * 4).sum::<usize>()
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
            if let Some(row) = self.snapshot.find(kind, hash_slice(&hash)) {
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

        let mut matches: Vec<Match> = found
            .0
            .into_values()
            .filter(|m| !allowed_everywhere && !allowed_lists.contains(&m.list))
            .collect();
        matches.sort_by(|a, b| {
            (a.distance, &a.list, a.kind, a.hash).cmp(&(b.distance, &b.list, b.kind, b.hash))
        });
        Ok(matches)
    }

    fn find_pdq(&self, found: &mut Found, query: &Query, index: usize, hash: &PdqHash) {
        let threshold = query.pdq_threshold;
        let (chunks, radius) = probe_plan(threshold);
        let hashes = self.snapshot.hashes(HashKind::Pdq);
        let wanted = words(&hash.0);
        for chunk in 0..chunks {
            let starts = &self.starts[chunk];
            let rows = &self.rows[chunk];
            for value in neighbours(hash.chunk16(chunk), radius) {
                let v = usize::from(value);
                let bucket = &rows[starts[v] as usize..starts[v + 1] as usize];
                for &row in bucket {
                    let row = row as usize;
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

    /// Names in `filter` that the index does not hold (an unknown list
    /// would silently match nothing).
    pub fn unknown_lists<'a>(&self, filter: &'a ListFilter) -> Vec<&'a str> {
        match filter {
            ListFilter::All => Vec::new(),
            ListFilter::Only(names) => names
                .iter()
                .filter(|name| !self.lists().iter().any(|l| l == *name))
                .map(String::as_str)
                .collect(),
        }
    }
}

/// Matches so far, one per (list, hash), at the smallest distance; on a tie
/// the first query hash that found it.
#[derive(Default)]
struct Found(BTreeMap<(ListName, TypedHash), Match>);

impl Found {
    fn add(&mut self, candidate: Match) {
        let key = (candidate.list.clone(), candidate.hash);
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

/// How many chunks to probe, and at what radius, for `threshold` (<= 31):
/// the fewest buckets with `chunks * (radius + 1) >= threshold + 1`.
pub fn probe_plan(threshold: u32) -> (usize, u32) {
    let need = threshold as usize + 1;
    if need <= INDEXED_CHUNKS {
        (need, 0)
    } else if need <= 2 * INDEXED_CHUNKS {
        (need.div_ceil(2), 1)
    } else {
        (need.div_ceil(3).min(INDEXED_CHUNKS), 2)
    }
}

/// Every 16-bit value within `radius` (0..=2) bits of `value`.
fn neighbours(value: u16, radius: u32) -> impl Iterator<Item = u16> {
    let ones = (0..16u32).map(|bit| 1u16 << bit);
    let one_bit = ones.clone().filter(move |_| radius >= 1);
    let two_bits = (0..16u32)
        .flat_map(move |a| (a + 1..16).map(move |b| (1u16 << a) | (1u16 << b)))
        .filter(move |_| radius >= 2);
    std::iter::once(0u16)
        .chain(one_bit)
        .chain(two_bits)
        .map(move |flip| value ^ flip)
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

fn hash_slice(hash: &TypedHash) -> &[u8] {
    match hash {
        TypedHash::Pdq(h) => &h.0,
        TypedHash::Md5(h) => &h.0,
        TypedHash::Sha1(h) => &h.0,
        TypedHash::Sha256(h) => &h.0,
        TypedHash::Vec72(h) => &h.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_plans_cover_every_threshold() {
        for threshold in 0..=MAX_PDQ_THRESHOLD {
            let (chunks, radius) = probe_plan(threshold);
            assert!(chunks <= INDEXED_CHUNKS);
            assert!(
                chunks * (radius as usize + 1) > threshold as usize,
                "T={threshold}"
            );
        }
        assert_eq!(probe_plan(31), (11, 2));
        assert_eq!(probe_plan(0), (1, 0));
    }

    #[test]
    fn neighbours_are_all_values_within_the_radius_once() {
        for radius in 0..=2 {
            let values: Vec<u16> = neighbours(0xa5c3, radius).collect();
            let distinct: BTreeSet<u16> = values.iter().copied().collect();
            assert_eq!(values.len(), distinct.len());
            let expected = (0..=u16::MAX)
                .filter(|v| (v ^ 0xa5c3).count_ones() <= radius)
                .count();
            assert_eq!(values.len(), expected);
        }
    }
}
