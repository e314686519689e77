//! From hash lists and an allowlist to the complete set of KV records.
//!
//! A build is a pure function of its inputs: the same lists give the same
//! records byte for byte, whatever order lines or lists came in. That is
//! what makes updates incremental: build the new lists, [`super::diff`]
//! against the previous build, and only the keys whose value changed are
//! written (one new PDQ hash touches its 16 buckets; dropping a whole list
//! rewrites the buckets its hashes were in and deletes those left empty).
//!
//! Merging: one hash in several lists becomes one entry with one membership
//! per (list, id): a hash a list carries under several ids (several cases
//! with the same image) keeps every id, so a match reports each of them.
//! A line repeating a (list, hash, id) already seen, or repeating a hash
//! without an id, is merged and counted in [`BuildSummary::duplicates`]
//! (an entry without an id takes the id a later repeat gives).
//!
//! The allowlist works twice. At build time a list entry whose hash is
//! allowlisted (for that list or for all) is dropped, so its near-duplicates
//! stop matching too. At query time the exact record of an allowlisted
//! digest or PDQ hash carries the allowance, so an image whose own hash is
//! allowlisted gets no matches from those lists (see [`super::query`]).
//! vec72 allow entries only drop list entries.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::layout::{self, CHUNKS, KV_VALUE_LIMIT};
use super::lists::{validate_list_name, AllowEntry, AllowScope, ListEntry, ListNameError};
use super::record::{self, Allowance, ExactRecord, TableRow};
use super::{ExactDigest, ListName, Membership, TypedHash};
use crate::hashes::{HashKind, PdqHash};

/// Counts per hash kind.
pub type KindCounts = BTreeMap<HashKind, usize>;

/// Why a build was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BuildError {
    #[error(transparent)]
    BadListName(#[from] ListNameError),
    #[error("list {0:?} is given twice")]
    DuplicateList(ListName),
    #[error(
        "list {0:?} has no entries; refusing to build (an empty export would delete the list \
         from the index); leave the list out to remove it"
    )]
    EmptyList(ListName),
    #[error("allowlist line {line} names list {list:?}, which is not in this build")]
    UnknownAllowList { list: ListName, line: usize },
    #[error("value of {key} is {bytes} bytes, over the Workers KV limit of {KV_VALUE_LIMIT}")]
    ValueTooLarge { key: String, bytes: usize },
}

/// What a build contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    /// Entries per list and kind, after merging and the allowlist.
    pub lists: BTreeMap<ListName, KindCounts>,
    /// Distinct hashes per kind across all lists.
    pub distinct: KindCounts,
    /// Repeated (list, hash, id) lines merged into one.
    pub duplicates: usize,
    /// Allowlist entries (distinct hashes).
    pub allowlisted: usize,
    /// List memberships dropped because the hash is allowlisted.
    pub suppressed: usize,
    /// KV keys written.
    pub keys: usize,
    /// Bytes of keys plus values.
    pub bytes: usize,
    /// The largest value, in bytes, and its key.
    pub largest_value: (usize, String),
}

/// The records of one build, sorted by key, and what they hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuiltIndex {
    pub records: BTreeMap<String, String>,
    pub summary: BuildSummary,
}

struct RawEntry {
    hash: TypedHash,
    list: usize,
    id: Option<String>,
}

/// Collects lists and allowlist entries, then [`IndexBuilder::build`]s.
#[derive(Default)]
pub struct IndexBuilder {
    lists: Vec<ListName>,
    raw: Vec<RawEntry>,
    allow: Vec<AllowEntry>,
}

#[derive(Default)]
struct AllowSet {
    all: bool,
    lists: BTreeSet<ListName>,
}

impl AllowSet {
    fn covers(&self, list: &str) -> bool {
        self.all || self.lists.contains(list)
    }

    fn allowance(&self) -> Allowance {
        if self.all {
            Allowance::AllLists
        } else {
            Allowance::Lists(self.lists.iter().cloned().collect())
        }
    }
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named list. An empty list is refused: see [`BuildError::EmptyList`].
    pub fn add_list(&mut self, name: &str, entries: Vec<ListEntry>) -> Result<(), BuildError> {
        let name = validate_list_name(name)?;
        if self.lists.contains(&name) {
            return Err(BuildError::DuplicateList(name));
        }
        if entries.is_empty() {
            return Err(BuildError::EmptyList(name));
        }
        let list = self.lists.len();
        self.lists.push(name);
        self.raw.extend(entries.into_iter().map(|entry| RawEntry {
            hash: entry.hash,
            list,
            id: entry.id,
        }));
        Ok(())
    }

    /// Adds allowlist entries.
    pub fn add_allowlist(&mut self, entries: Vec<AllowEntry>) {
        self.allow.extend(entries);
    }

    /// Builds every record of the KV bucket layout.
    pub fn build(self) -> Result<BuiltIndex, BuildError> {
        self.merge()?.records()
    }

    /// Merges the lists into one entry per distinct hash and applies the
    /// allowlist: the step every index layout starts from.
    pub fn merge(self) -> Result<MergedIndex, BuildError> {
        let IndexBuilder {
            lists,
            mut raw,
            allow,
        } = self;
        let allow = collect_allow(&lists, allow)?;
        let mut summary = BuildSummary {
            allowlisted: allow.len(),
            ..BuildSummary::default()
        };
        for name in &lists {
            summary.lists.insert(name.clone(), KindCounts::new());
        }

        // Merge: sort by hash then list (stable, so ids keep file order).
        raw.sort_by(|a, b| (a.hash, &lists[a.list]).cmp(&(b.hash, &lists[b.list])));
        let mut merged: Vec<(TypedHash, Vec<Membership>)> = Vec::new();
        let mut previous: Option<(TypedHash, usize)> = None;
        for entry in raw {
            if previous == Some((entry.hash, entry.list)) {
                let list = &lists[entry.list];
                if let Some((_, memberships)) = merged.last_mut() {
                    // The memberships of this (hash, list) so far: the run
                    // at the end.
                    let run = memberships.iter_mut().rev().take_while(|m| &m.list == list);
                    let mut same = false;
                    let mut unnamed = None;
                    for membership in run {
                        same |= membership.id == entry.id || entry.id.is_none();
                        if membership.id.is_none() {
                            unnamed = Some(membership);
                        }
                    }
                    if same {
                        summary.duplicates += 1;
                    } else if let Some(unnamed) = unnamed {
                        summary.duplicates += 1;
                        unnamed.id = entry.id;
                    } else {
                        memberships.push(Membership {
                            list: list.clone(),
                            id: entry.id,
                        });
                    }
                }
                continue;
            }
            let membership = Membership {
                list: lists[entry.list].clone(),
                id: entry.id,
            };
            match merged.last_mut() {
                Some((hash, memberships)) if *hash == entry.hash => memberships.push(membership),
                _ => merged.push((entry.hash, vec![membership])),
            }
            previous = Some((entry.hash, entry.list));
        }

        // The allowlist drops list entries equal to an allowed hash.
        for (hash, memberships) in &mut merged {
            if let Some(allowed) = allow.get(hash) {
                let before = memberships.len();
                memberships.retain(|m| !allowed.covers(&m.list));
                summary.suppressed += before - memberships.len();
            }
        }
        merged.retain(|(_, memberships)| !memberships.is_empty());
        for (hash, memberships) in &merged {
            *summary.distinct.entry(hash.kind()).or_default() += 1;
            // Hashes per list: a list's several ids for one hash count once.
            let mut lists_of_hash: Vec<&str> =
                memberships.iter().map(|m| m.list.as_str()).collect();
            lists_of_hash.dedup();
            for list in lists_of_hash {
                if let Some(counts) = summary.lists.get_mut(list) {
                    *counts.entry(hash.kind()).or_default() += 1;
                }
            }
        }

        let allow = allow
            .into_iter()
            .map(|(hash, set)| (hash, set.allowance()))
            .collect();
        Ok(MergedIndex {
            lists,
            entries: merged,
            allow,
            summary,
        })
    }
}

/// The lists merged: one entry per distinct hash, sorted by hash, each with
/// the lists (and ids) holding it; allowlisted memberships already dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergedIndex {
    /// The lists given to the build, in the order given.
    pub lists: Vec<ListName>,
    /// Sorted by hash; every entry has at least one membership.
    pub entries: Vec<(TypedHash, Vec<Membership>)>,
    /// Allowlisted hashes and the lists each is allowed for.
    pub allow: BTreeMap<TypedHash, Allowance>,
    /// Counts (the KV fields `keys`, `bytes`, `largest_value` are filled by
    /// [`MergedIndex::records`]).
    pub summary: BuildSummary,
}

impl MergedIndex {
    /// The whole index as one [`super::snapshot`] document.
    pub fn snapshot(&self) -> Result<Vec<u8>, super::snapshot::SnapshotError> {
        super::snapshot::encode(&self.lists, &self.entries, &self.allow)
    }

    /// The KV bucket layout (`hg1/`): every record, keyed as
    /// [`super::layout`] says.
    pub fn records(self) -> Result<BuiltIndex, BuildError> {
        let MergedIndex {
            entries: merged,
            allow,
            mut summary,
            ..
        } = self;
        let mut records = BTreeMap::new();
        let mut pdq = Vec::new();
        let mut vec72 = Vec::new();
        for (hash, memberships) in merged {
            match hash {
                TypedHash::Pdq(h) => pdq.push((h, memberships)),
                TypedHash::Vec72(v) => vec72.push((v, memberships)),
                TypedHash::Md5(_) | TypedHash::Sha1(_) | TypedHash::Sha256(_) => {
                    let allowance = allow.get(&hash).cloned().unwrap_or_default();
                    if let Ok(digest) = ExactDigest::try_from(hash) {
                        let record = ExactRecord {
                            memberships,
                            allowance,
                        };
                        records.insert(layout::exact_key(&digest), record::encode_exact(&record));
                    }
                }
            }
        }
        // Allowances of hashes no list holds still need their record.
        for (hash, allowed) in &allow {
            match hash {
                TypedHash::Pdq(h) => {
                    let record = ExactRecord {
                        memberships: Vec::new(),
                        allowance: allowed.clone(),
                    };
                    records.insert(layout::pdq_allow_key(h), record::encode_exact(&record));
                }
                TypedHash::Vec72(_) => {}
                TypedHash::Md5(_) | TypedHash::Sha1(_) | TypedHash::Sha256(_) => {
                    if let Ok(digest) = ExactDigest::try_from(*hash) {
                        let record = ExactRecord {
                            memberships: Vec::new(),
                            allowance: allowed.clone(),
                        };
                        records
                            .entry(layout::exact_key(&digest))
                            .or_insert_with(|| record::encode_exact(&record));
                    }
                }
            }
        }
        add_buckets(&pdq, &mut records);
        if !vec72.is_empty() {
            let rows: Vec<TableRow<'_>> = vec72
                .iter()
                .map(|(v, memberships)| TableRow {
                    row: v.as_bytes(),
                    memberships,
                })
                .collect();
            records.insert(
                layout::VEC72_KEY.to_owned(),
                record::encode_vec72_table(&rows),
            );
        }
        records.insert(layout::META_KEY.to_owned(), meta_json(&summary));

        for (key, value) in &records {
            if value.len() > KV_VALUE_LIMIT {
                return Err(BuildError::ValueTooLarge {
                    key: key.clone(),
                    bytes: value.len(),
                });
            }
            summary.keys += 1;
            summary.bytes += key.len() + value.len();
            if value.len() > summary.largest_value.0 {
                summary.largest_value = (value.len(), key.clone());
            }
        }
        Ok(BuiltIndex { records, summary })
    }
}

fn collect_allow(
    lists: &[ListName],
    entries: Vec<AllowEntry>,
) -> Result<BTreeMap<TypedHash, AllowSet>, BuildError> {
    let mut allow: BTreeMap<TypedHash, AllowSet> = BTreeMap::new();
    for entry in entries {
        let set = allow.entry(entry.hash).or_default();
        match entry.scope {
            AllowScope::AllLists => set.all = true,
            AllowScope::List(list) => {
                if !lists.contains(&list) {
                    return Err(BuildError::UnknownAllowList {
                        list,
                        line: entry.line,
                    });
                }
                set.lists.insert(list);
            }
        }
    }
    Ok(allow)
}

/// Writes the 16 buckets of every PDQ entry. `pdq` is sorted by hash, and a
/// stable sort by chunk value keeps each bucket's rows sorted too.
fn add_buckets(pdq: &[(PdqHash, Vec<Membership>)], records: &mut BTreeMap<String, String>) {
    let mut order: Vec<usize> = (0..pdq.len()).collect();
    let mut rows: Vec<[u8; record::BUCKET_ROW_BYTES]> = Vec::new();
    for chunk in 0..CHUNKS {
        order.sort_by_key(|&i| pdq[i].0.chunk16(chunk));
        for group in order.chunk_by(|&a, &b| pdq[a].0.chunk16(chunk) == pdq[b].0.chunk16(chunk)) {
            rows.clear();
            rows.extend(group.iter().map(|&i| record::bucket_row(&pdq[i].0, chunk)));
            let table: Vec<TableRow<'_>> = group
                .iter()
                .zip(&rows)
                .map(|(&i, row)| TableRow {
                    row,
                    memberships: &pdq[i].1,
                })
                .collect();
            let value = pdq[group[0]].0.chunk16(chunk);
            records.insert(
                layout::bucket_key(chunk, value),
                record::encode_bucket(&table),
            );
        }
        // Restore hash order for the next chunk's stable sort.
        order.sort_unstable();
    }
}

/// The meta record: what was built, for people and tools. List names are
/// restricted to characters that need no JSON escaping.
fn meta_json(summary: &BuildSummary) -> String {
    let counts = |counts: &KindCounts| {
        let fields: Vec<String> = counts
            .iter()
            .map(|(kind, n)| format!("\"{kind}\":{n}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let lists: Vec<String> = summary
        .lists
        .iter()
        .map(|(name, c)| format!("\"{name}\":{}", counts(c)))
        .collect();
    format!(
        "{{\"format\":\"hashgate-index\",\"prefix\":\"{}\",\"lists\":{{{}}},\"distinct\":{},\"allowlisted\":{}}}",
        layout::PREFIX,
        lists.join(","),
        counts(&summary.distinct),
        summary.allowlisted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::lists::{parse_allowlist, parse_hash_list};

    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

    fn list(text: &str) -> Vec<ListEntry> {
        let parsed = parse_hash_list(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.entries
    }

    #[test]
    fn merges_duplicates_and_unions_lists() {
        let mut builder = IndexBuilder::new();
        builder
            .add_list(
                "ncmec",
                list(&format!(
                    "pdq,{PDQ}\npdq,{PDQ},n-1\nmd5,{MD5},m-1\nmd5,{MD5},m-2\n"
                )),
            )
            .unwrap();
        builder
            .add_list("iwf", list(&format!("pdq,{PDQ},i-1\n")))
            .unwrap();
        let built = builder.build().unwrap();
        let s = &built.summary;
        // `pdq,PDQ` then `pdq,PDQ,n-1`: one entry, named by the repeat.
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.distinct[&HashKind::Pdq], 1);
        assert_eq!(s.lists["ncmec"][&HashKind::Pdq], 1);
        assert_eq!(s.lists["ncmec"][&HashKind::Md5], 1);
        assert_eq!(s.lists["iwf"][&HashKind::Pdq], 1);
        // 16 buckets + 1 md5 record + meta
        assert_eq!(s.keys, 18);
        assert_eq!(built.records.len(), 18);
        let md5 = &built.records[&format!("hg1/md5/{MD5}")];
        let record = record::decode_exact(&record::decode_text(md5.as_bytes()).unwrap()).unwrap();
        // Every id a list gives a hash is kept, in file order.
        let ids: Vec<Option<&str>> = record.memberships.iter().map(|m| m.id.as_deref()).collect();
        assert_eq!(ids, vec![Some("m-1"), Some("m-2")]);
        // A missing id is filled from a later duplicate.
        let hash: PdqHash = PDQ.parse().unwrap();
        let bucket = &built.records[&layout::bucket_key(3, hash.chunk16(3))];
        let bytes = record::decode_text(bucket.as_bytes()).unwrap();
        let view = record::TableView::bucket(&bytes).unwrap();
        assert_eq!(
            view.memberships(0),
            vec![("iwf", Some("i-1")), ("ncmec", Some("n-1"))]
        );
    }

    #[test]
    fn builds_are_independent_of_input_order() {
        let lines = [
            format!("pdq,{PDQ},a"),
            format!("md5,{MD5},b"),
            format!("pdq,{}", "0f".repeat(32)),
        ];
        let build = |order: &[usize]| {
            let text: Vec<&str> = order.iter().map(|&i| lines[i].as_str()).collect();
            let mut builder = IndexBuilder::new();
            builder.add_list("x", list(&text.join("\n"))).unwrap();
            builder.build().unwrap().records
        };
        assert_eq!(build(&[0, 1, 2]), build(&[2, 1, 0]));
    }

    #[test]
    fn refuses_empty_duplicate_and_badly_named_lists() {
        let mut builder = IndexBuilder::new();
        assert_eq!(
            builder.add_list("empty", vec![]),
            Err(BuildError::EmptyList("empty".into()))
        );
        builder.add_list("a", list(&format!("md5,{MD5}"))).unwrap();
        assert_eq!(
            builder.add_list("a", list(&format!("md5,{MD5}"))),
            Err(BuildError::DuplicateList("a".into()))
        );
        assert!(matches!(
            builder.add_list("a b", list(&format!("md5,{MD5}"))),
            Err(BuildError::BadListName(_))
        ));
    }

    #[test]
    fn allowlist_drops_entries_and_records_allowances() {
        let mut builder = IndexBuilder::new();
        builder
            .add_list("ncmec", list(&format!("pdq,{PDQ}\nmd5,{MD5}\n")))
            .unwrap();
        builder
            .add_list("iwf", list(&format!("pdq,{PDQ}\n")))
            .unwrap();
        builder.add_allowlist(parse_allowlist(&format!("pdq,{PDQ},iwf\nmd5,{MD5}\n")).entries);
        let built = builder.build().unwrap();
        assert_eq!(built.summary.suppressed, 2);
        assert_eq!(built.summary.allowlisted, 2);
        assert_eq!(built.summary.lists["iwf"].get(&HashKind::Pdq), None);
        assert_eq!(built.summary.lists["ncmec"][&HashKind::Pdq], 1);
        let pdq: PdqHash = PDQ.parse().unwrap();
        let allow = &built.records[&layout::pdq_allow_key(&pdq)];
        let record = record::decode_exact(&record::decode_text(allow.as_bytes()).unwrap()).unwrap();
        assert_eq!(record.allowance, Allowance::Lists(vec!["iwf".into()]));
        let md5 = &built.records[&format!("hg1/md5/{MD5}")];
        let record = record::decode_exact(&record::decode_text(md5.as_bytes()).unwrap()).unwrap();
        assert_eq!(record.allowance, Allowance::AllLists);
        assert!(record.memberships.is_empty());

        let mut builder = IndexBuilder::new();
        builder
            .add_list("ncmec", list(&format!("md5,{MD5}\n")))
            .unwrap();
        builder.add_allowlist(parse_allowlist(&format!("md5,{MD5},iwf\n")).entries);
        assert_eq!(
            builder.build().unwrap_err(),
            BuildError::UnknownAllowList {
                list: "iwf".into(),
                line: 1
            }
        );
    }

    #[test]
    fn meta_is_json() {
        let mut builder = IndexBuilder::new();
        builder
            .add_list("ncmec", list(&format!("pdq,{PDQ}\nmd5,{MD5}\n")))
            .unwrap();
        let built = builder.build().unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&built.records[layout::META_KEY]).unwrap();
        assert_eq!(meta["lists"]["ncmec"]["pdq"], 1);
        assert_eq!(meta["prefix"], "hg1/");
    }
}
