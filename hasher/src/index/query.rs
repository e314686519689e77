//! Which keys a query reads, and how the values read become matches.
//!
//! The caller does the reading: the worker from Workers KV, `hashgate match`
//! from the local index file. Both run this same code, so what the command
//! line finds is what the edge finds.
//!
//! Cost of one query (one PDQ hash, three digests, `N` list hashes):
//!
//! | threshold | PDQ bucket keys | + exact/allow keys | bulk reads of 100 |
//! |---|---|---|---|
//! | 0 | 1 | 4 | 1 |
//! | 10 | 11 | 4 | 1 |
//! | 15 | 16 | 4 | 1 |
//! | 20 | 96 | 4 | 1 |
//! | 31 | 272 | 4 | 3 |
//!
//! Every bulk read can be issued at once (they do not depend on each other),
//! so the latency is one KV round trip however many batches there are.
//! With `--dihedral` there are up to 8 PDQ hashes and 8 times the bucket
//! keys: 2,176 at `T = 31` (22 bulk reads), 88 at `T = 10` (1 bulk read).
//! Bytes read: each bucket holds about `N / 65,536` entries of about 45
//! bytes of text, so about `keys * N / 65,536 * 45`: measured 0.19 MB at
//! `N = 10^6, T = 31` (0.066 MB at `T = 20`, 0.008 MB at `T = 10`).
//!
//! Exact recall: [`layout::probe_radii`] reads, for each PDQ hash, enough
//! buckets that every list hash within the threshold is in at least one of
//! them; every candidate's full distance is then checked, so nothing beyond
//! the threshold is reported. The property test in `tests/index_recall.rs`
//! checks both against a brute-force scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use thiserror::Error;

use super::layout::{self, probe_values, CHUNKS, KV_BATCH_LIMIT, MAX_PDQ_THRESHOLD};
use super::record::{self, Allowance, RecordError, TableView};
use super::{ExactDigest, ListName, TypedHash};
use crate::hashes::{HashKind, PdqHash, Vec72};
use crate::image_hashes::ImageHashes;

/// Which lists a query subscribes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListFilter {
    /// Every list in the index.
    #[default]
    All,
    /// Only these lists.
    Only(BTreeSet<ListName>),
}

impl ListFilter {
    /// Whether matches from `list` are wanted.
    pub fn includes(&self, list: &str) -> bool {
        match self {
            ListFilter::All => true,
            ListFilter::Only(lists) => lists.contains(list),
        }
    }
}

/// What to look up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// PDQ hashes of the image: its own, and optionally its dihedral
    /// variants (rotations and mirrors).
    pub pdq: Vec<PdqHash>,
    /// Largest Hamming distance that matches, 0..=31.
    pub pdq_threshold: u32,
    /// Exact digests of the image's bytes.
    pub exact: Vec<ExactDigest>,
    /// A vec72 hash to match by scanning the vec72 lists.
    pub vec72: Option<Vec72>,
    /// Largest squared distance that matches a vec72 hash.
    pub vec72_threshold: u32,
    /// Subscribed lists.
    pub lists: ListFilter,
}

impl Query {
    /// The query for an image's hashes: its PDQ hash, the dihedral and other
    /// variants when they were computed (in [`ImageHashes::query_pdq`]
    /// order), and its three digests.
    pub fn for_image(hashes: &ImageHashes, pdq_threshold: u32, lists: ListFilter) -> Self {
        // The image's own hash first, then its dihedral and other variants
        // and its views (`ImageHashes::query_pdq` labels them in the same
        // order).
        let pdq = hashes
            .query_pdq()
            .into_iter()
            .map(|(_, hash)| hash)
            .collect();
        // The body's digests, then those of the images in a container (an
        // SVG's embedded rasters, an icon's images).
        let mut exact = vec![
            ExactDigest::Md5(hashes.md5),
            ExactDigest::Sha1(hashes.sha1),
            ExactDigest::Sha256(hashes.sha256),
        ];
        for digests in &hashes.embedded {
            exact.extend([
                ExactDigest::Md5(digests.md5),
                ExactDigest::Sha1(digests.sha1),
                ExactDigest::Sha256(digests.sha256),
            ]);
        }
        Query {
            pdq,
            pdq_threshold,
            exact,
            lists,
            ..Query::default()
        }
    }
}

/// Why a query cannot be planned.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QueryError {
    #[error("PDQ threshold {0} is over the index's maximum of {MAX_PDQ_THRESHOLD}")]
    ThresholdTooLarge(u32),
}

/// Why the values read could not be resolved: a stored value is corrupt.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("bad value at {key}: {source}")]
pub struct ResolveError {
    pub key: String,
    #[source]
    pub source: RecordError,
}

/// Which of the query's hashes found a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    /// `Query::pdq[index]` (0 is the image itself; with dihedral variants
    /// from [`Query::for_image`], 1..8 are rot90, rot180, rot270, flipx,
    /// flipy, flipp, flipm).
    Pdq(usize),
    /// `Query::exact[index]`.
    Exact(usize),
    /// `Query::vec72`.
    Vec72,
}

/// One list entry the query matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    pub list: ListName,
    #[serde(rename = "type")]
    pub kind: HashKind,
    /// The list's hash.
    pub hash: TypedHash,
    /// 0 for exact digests; Hamming distance for PDQ; squared distance for vec72.
    pub distance: u32,
    /// The list's id for the entry.
    pub id: Option<String>,
    pub matched_by: MatchedBy,
}

/// What one key is read for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyRole {
    /// PDQ bucket: chunk, chunk value, and the query hashes probing it.
    Bucket {
        chunk: usize,
        value: u16,
        probes: Vec<usize>,
    },
    /// The exact record of `Query::exact[index]`.
    Exact(usize),
    /// The allowlist record of `Query::pdq[index]`.
    PdqAllow(usize),
    /// The vec72 table.
    Vec72,
}

/// The keys one query reads, and how to resolve what was read.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    query: Query,
    keys: Vec<String>,
    roles: Vec<KeyRole>,
}

impl QueryPlan {
    /// Plans `query`: every key it needs, each once.
    pub fn new(query: &Query) -> Result<Self, QueryError> {
        let probes = layout::probe_radii(query.pdq_threshold)
            .ok_or(QueryError::ThresholdTooLarge(query.pdq_threshold))?;
        let mut plan = QueryPlan {
            query: query.clone(),
            keys: Vec::new(),
            roles: Vec::new(),
        };
        // Exact and allow records first: they are few and decide most
        // verdicts, so a caller that reads batch by batch sees them first.
        for (index, digest) in query.exact.iter().enumerate() {
            plan.push(layout::exact_key(digest), KeyRole::Exact(index));
        }
        let mut bucket_slots: HashMap<(usize, u16), usize> = HashMap::new();
        for (index, hash) in query.pdq.iter().enumerate() {
            plan.push(layout::pdq_allow_key(hash), KeyRole::PdqAllow(index));
        }
        if query.vec72.is_some() {
            plan.push(layout::VEC72_KEY.to_owned(), KeyRole::Vec72);
        }
        for (index, hash) in query.pdq.iter().enumerate() {
            for (chunk, probe) in probes.iter().enumerate().take(CHUNKS) {
                for value in probe_values(hash.chunk16(chunk), *probe) {
                    match bucket_slots.get(&(chunk, value)) {
                        Some(&slot) => {
                            if let KeyRole::Bucket { probes, .. } = &mut plan.roles[slot] {
                                if probes.last() != Some(&index) {
                                    probes.push(index);
                                }
                            }
                        }
                        None => {
                            bucket_slots.insert((chunk, value), plan.keys.len());
                            let role = KeyRole::Bucket {
                                chunk,
                                value,
                                probes: vec![index],
                            };
                            plan.push(layout::bucket_key(chunk, value), role);
                        }
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Adds a key. Bucket keys arrive deduplicated; the few others (one
    /// per digest and per PDQ hash) are checked here, before any bucket.
    fn push(&mut self, key: String, role: KeyRole) {
        if matches!(role, KeyRole::Bucket { .. }) || !self.keys.contains(&key) {
            self.keys.push(key);
            self.roles.push(role);
        }
    }

    /// The query planned.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Every key to read, each once.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The keys in groups of at most [`KV_BATCH_LIMIT`] (one bulk read each).
    pub fn batches(&self) -> std::slice::Chunks<'_, String> {
        self.keys.chunks(KV_BATCH_LIMIT)
    }

    /// Turns the values read into matches. `values` gives the stored text
    /// of a key, or `None` when the key does not exist (an empty bucket,
    /// a digest on no list). Matches are sorted by distance, list, hash and
    /// id; one list entry (list, hash, id) found through several query
    /// hashes is reported once, at its smallest distance. A hash a list
    /// carries under several ids is reported once per id.
    pub fn resolve<'v, F>(&self, values: F) -> Result<Vec<Match>, ResolveError>
    where
        F: Fn(&str) -> Option<&'v [u8]>,
    {
        let query = &self.query;
        let mut found: BTreeMap<(ListName, TypedHash, Option<String>), Match> = BTreeMap::new();
        let mut allowed_everywhere = false;
        let mut allowed_lists: BTreeSet<ListName> = BTreeSet::new();
        let mut add = |candidate: Match| {
            let key = (candidate.list.clone(), candidate.hash, candidate.id.clone());
            match found.get(&key) {
                Some(existing) if existing.distance <= candidate.distance => {}
                _ => {
                    found.insert(key, candidate);
                }
            }
        };

        for (key, role) in self.keys.iter().zip(&self.roles) {
            let Some(text) = values(key) else { continue };
            let corrupt = |source| ResolveError {
                key: key.clone(),
                source,
            };
            let bytes = record::decode_text(text).map_err(corrupt)?;
            match role {
                KeyRole::Exact(_) | KeyRole::PdqAllow(_) => {
                    let record = record::decode_exact(&bytes).map_err(corrupt)?;
                    match record.allowance {
                        Allowance::None => {}
                        Allowance::AllLists => allowed_everywhere = true,
                        Allowance::Lists(lists) => allowed_lists.extend(lists),
                    }
                    let KeyRole::Exact(index) = role else {
                        continue;
                    };
                    let Some(digest) = query.exact.get(*index) else {
                        continue;
                    };
                    let hash = TypedHash::from(*digest);
                    for membership in record.memberships {
                        if query.lists.includes(&membership.list) {
                            add(Match {
                                list: membership.list,
                                kind: hash.kind(),
                                hash,
                                distance: 0,
                                id: membership.id,
                                matched_by: MatchedBy::Exact(*index),
                            });
                        }
                    }
                }
                KeyRole::Bucket {
                    chunk,
                    value,
                    probes,
                } => {
                    let table = TableView::bucket(&bytes).map_err(corrupt)?;
                    for &index in probes {
                        let Some(hash) = query.pdq.get(index) else {
                            continue;
                        };
                        scan_bucket(&table, hash, *chunk, *value, query, index, &mut add);
                    }
                }
                KeyRole::Vec72 => {
                    let table = TableView::vec72(&bytes).map_err(corrupt)?;
                    if let Some(vector) = &query.vec72 {
                        scan_vec72(&table, vector, query, &mut add);
                    }
                }
            }
        }

        Ok(finish(
            found.into_values(),
            allowed_everywhere,
            &allowed_lists,
        ))
    }
}

/// The last step of every look-up, whatever the layout: drops matches from
/// lists the query's own hashes are allowlisted for, and orders the rest
/// closest first (then by list, kind and hash, so answers are stable).
pub(crate) fn finish(
    found: impl IntoIterator<Item = Match>,
    allowed_everywhere: bool,
    allowed_lists: &BTreeSet<ListName>,
) -> Vec<Match> {
    let mut matches: Vec<Match> = found
        .into_iter()
        .filter(|m| !allowed_everywhere && !allowed_lists.contains(&m.list))
        .collect();
    matches.sort_by(|a, b| {
        (a.distance, &a.list, a.kind, a.hash, &a.id)
            .cmp(&(b.distance, &b.list, b.kind, b.hash, &b.id))
    });
    matches
}

/// Checks every row of one bucket against one query hash. The chunk's own
/// distance is known from the key, so only the other 30 bytes are compared.
fn scan_bucket(
    table: &TableView<'_>,
    hash: &PdqHash,
    chunk: usize,
    value: u16,
    query: &Query,
    index: usize,
    add: &mut impl FnMut(Match),
) {
    let chunk_distance = (hash.chunk16(chunk) ^ value).count_ones();
    if chunk_distance > query.pdq_threshold {
        return;
    }
    let budget = query.pdq_threshold - chunk_distance;
    let wanted = record::bucket_row(hash, chunk);
    for (row_index, row) in table.rows().enumerate() {
        let rest = row_distance(row, &wanted);
        if rest > budget {
            continue;
        }
        let list_hash = TypedHash::Pdq(record::hash_from_bucket_row(row, chunk, value));
        for (list, id) in table.memberships(row_index) {
            if query.lists.includes(list) {
                add(Match {
                    list: list.to_owned(),
                    kind: HashKind::Pdq,
                    hash: list_hash,
                    distance: chunk_distance + rest,
                    id: id.map(str::to_owned),
                    matched_by: MatchedBy::Pdq(index),
                });
            }
        }
    }
}

/// Hamming distance of two 30-byte rows, eight bytes at a time.
fn row_distance(row: &[u8], wanted: &[u8; record::BUCKET_ROW_BYTES]) -> u32 {
    let mut distance = 0;
    let (row_words, row_tail) = row.split_at(24);
    let (wanted_words, wanted_tail) = wanted.split_at(24);
    for (a, b) in row_words.chunks_exact(8).zip(wanted_words.chunks_exact(8)) {
        let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
        let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
        distance += (a ^ b).count_ones();
    }
    for (a, b) in row_tail.iter().zip(wanted_tail) {
        distance += (a ^ b).count_ones();
    }
    distance
}

fn scan_vec72(table: &TableView<'_>, vector: &Vec72, query: &Query, add: &mut impl FnMut(Match)) {
    for (row_index, row) in table.rows().enumerate() {
        let Some(candidate) = Vec72::from_slice(row) else {
            continue;
        };
        let distance = candidate.distance(vector);
        if distance > query.vec72_threshold {
            continue;
        }
        for (list, id) in table.memberships(row_index) {
            if query.lists.includes(list) {
                add(Match {
                    list: list.to_owned(),
                    kind: HashKind::Vec72,
                    hash: TypedHash::Vec72(candidate),
                    distance,
                    id: id.map(str::to_owned),
                    matched_by: MatchedBy::Vec72,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashes::{Md5Digest, Sha256Digest};
    use crate::index::lists::{parse_allowlist, parse_hash_list};
    use crate::index::IndexBuilder;

    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn index(lists: &[(&str, String)], allow: &str) -> BTreeMap<String, String> {
        let mut builder = IndexBuilder::new();
        for (name, text) in lists {
            let parsed = parse_hash_list(text);
            assert!(parsed.errors.is_empty());
            builder.add_list(name, parsed.entries).unwrap();
        }
        builder.add_allowlist(parse_allowlist(allow).entries);
        builder.build().unwrap().records
    }

    fn run(records: &BTreeMap<String, String>, query: &Query) -> Vec<Match> {
        let plan = QueryPlan::new(query).unwrap();
        plan.resolve(|key| records.get(key).map(|v| v.as_bytes()))
            .unwrap()
    }

    fn pdq(text: &str) -> PdqHash {
        text.parse().unwrap()
    }

    /// `PDQ` with its lowest `bits` bits flipped.
    fn flipped(bits: usize) -> PdqHash {
        let mut hash = pdq(PDQ);
        for bit in 0..bits {
            hash.0[31 - bit / 8] ^= 1 << (bit % 8);
        }
        hash
    }

    #[test]
    fn plan_sizes_and_batches() {
        let query = Query {
            pdq: vec![pdq(PDQ)],
            pdq_threshold: 31,
            exact: vec![ExactDigest::Md5(MD5.parse().unwrap())],
            ..Query::default()
        };
        let plan = QueryPlan::new(&query).unwrap();
        // 272 buckets + 1 PDQ allow record + 1 digest record
        assert_eq!(plan.keys().len(), 274);
        let sizes: Vec<usize> = plan.batches().map(<[String]>::len).collect();
        assert_eq!(sizes, vec![100, 100, 74]);
        let unique: BTreeSet<&String> = plan.keys().iter().collect();
        assert_eq!(unique.len(), plan.keys().len());
        let small = Query {
            pdq_threshold: 10,
            ..query.clone()
        };
        assert_eq!(QueryPlan::new(&small).unwrap().keys().len(), 13);
        let too_far = Query {
            pdq_threshold: 32,
            ..query
        };
        assert_eq!(
            QueryPlan::new(&too_far).unwrap_err(),
            QueryError::ThresholdTooLarge(32)
        );
    }

    #[test]
    fn exact_and_fuzzy_matches_with_lists_and_ids() {
        let records = index(
            &[
                ("ncmec", format!("pdq,{PDQ},n-7\nmd5,{MD5},n-8\n")),
                ("iwf", format!("sha256,{SHA256}\npdq,{}\n", flipped(12))),
            ],
            "",
        );
        let mut query = Query {
            pdq: vec![flipped(3)],
            pdq_threshold: 31,
            exact: vec![
                ExactDigest::Md5(MD5.parse::<Md5Digest>().unwrap()),
                ExactDigest::Sha256(SHA256.parse::<Sha256Digest>().unwrap()),
            ],
            ..Query::default()
        };
        let found: Vec<(String, HashKind, u32, Option<String>)> = run(&records, &query)
            .into_iter()
            .map(|m| (m.list, m.kind, m.distance, m.id))
            .collect();
        assert_eq!(
            found,
            vec![
                ("iwf".into(), HashKind::Sha256, 0, None),
                ("ncmec".into(), HashKind::Md5, 0, Some("n-8".into())),
                ("ncmec".into(), HashKind::Pdq, 3, Some("n-7".into())),
                ("iwf".into(), HashKind::Pdq, 9, None),
            ]
        );
        query.lists = ListFilter::Only(["iwf".to_string()].into());
        query.pdq_threshold = 8;
        let lists: Vec<String> = run(&records, &query).into_iter().map(|m| m.list).collect();
        assert_eq!(lists, vec!["iwf"]);
    }

    #[test]
    fn a_list_hash_found_by_two_query_hashes_is_reported_once_at_its_nearest() {
        let records = index(&[("ncmec", format!("pdq,{PDQ}\n"))], "");
        let query = Query {
            pdq: vec![flipped(20), flipped(2), flipped(2)],
            pdq_threshold: 31,
            ..Query::default()
        };
        let matches = run(&records, &query);
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].distance, 2);
        assert_eq!(matches[0].matched_by, MatchedBy::Pdq(1));
    }

    #[test]
    fn allowlisted_query_hashes_suppress_their_lists() {
        let lists = [
            ("ncmec", format!("pdq,{}\nmd5,{MD5}\n", flipped(5))),
            ("iwf", format!("pdq,{}\n", flipped(6))),
        ];
        let query = Query {
            pdq: vec![pdq(PDQ)],
            pdq_threshold: 31,
            exact: vec![ExactDigest::Md5(MD5.parse().unwrap())],
            ..Query::default()
        };
        // The image's own PDQ hash is a known false positive for iwf only.
        let records = index(&lists, &format!("pdq,{PDQ},iwf\n"));
        let lists_found: BTreeSet<String> =
            run(&records, &query).into_iter().map(|m| m.list).collect();
        assert_eq!(lists_found, ["ncmec".to_string()].into());
        // Its digest is allowed everywhere: nothing matches.
        let records = index(
            &lists,
            &format!("sha1,da39a3ee5e6b4b0d3255bfef95601890afd80709\nmd5,{MD5},*\n"),
        );
        assert!(run(&records, &query).is_empty());
    }

    #[test]
    fn vec72_matches_by_scanning() {
        let near = "01".repeat(72);
        let far = "ff".repeat(72);
        let records = index(
            &[("internal", format!("vec72,{near},v-1\nvec72,{far}\n"))],
            "",
        );
        let query = Query {
            vec72: Some("00".repeat(72).parse().unwrap()),
            vec72_threshold: 100,
            ..Query::default()
        };
        let matches = run(&records, &query);
        assert_eq!(matches.len(), 1);
        assert_eq!(
            (matches[0].distance, matches[0].id.as_deref()),
            (72, Some("v-1"))
        );
        assert_eq!(matches[0].matched_by, MatchedBy::Vec72);
    }

    #[test]
    fn corrupt_values_are_reported_with_their_key() {
        let query = Query {
            exact: vec![ExactDigest::Md5(MD5.parse().unwrap())],
            ..Query::default()
        };
        let plan = QueryPlan::new(&query).unwrap();
        let error = plan.resolve(|_| Some(b"%%%".as_slice())).unwrap_err();
        assert_eq!(error.key, format!("hg1/md5/{MD5}"));
        assert_eq!(error.source, RecordError::NotBase64);
    }
}
