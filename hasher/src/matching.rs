//! Matching outside the edge: the settings that turn an image or a hash
//! into a [`Query`], and an index held in memory.
//!
//! The `hashgate` command's `match`, `scan` and `serve` load a build's
//! `index.snapshot` into a [`MemoryIndex`] and answer each query in memory
//! with [`ResidentIndex`], the code the worker runs once it holds a
//! generation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::index::{
    ExactDigest, Hygiene, ListFilter, Match, MatchedBy, Query, ResidentIndex, SnapshotError,
    TypedHash, MAX_PDQ_THRESHOLD,
};
use crate::{HashKind, HashOptions, ImageHashes, QuerySet};

/// The PDQ threshold the command, the service and the worker's policy
/// default to: 31, the distance Meta's PDQ documentation suggests for
/// matching, and the most the index answers exactly.
pub const DEFAULT_PDQ_THRESHOLD: u32 = MAX_PDQ_THRESHOLD;
/// The vec72 threshold every command defaults to. It sits between an
/// altered copy (about 5,000) and unrelated images (about 700,000) in
/// Cloudflare's published examples.
pub const DEFAULT_VEC72_THRESHOLD: u32 = 50_000;

/// How images and hashes are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSettings {
    /// Largest PDQ Hamming distance that matches, 0..=31.
    pub threshold: u32,
    /// Largest squared distance that matches a vec72 hash.
    pub vec72_threshold: u32,
    /// Subscribed lists.
    pub lists: ListFilter,
    /// Which query hashes an image is matched by.
    pub variants: QuerySet,
    /// PDQ quality, per-list distance, negative lists
    /// ([`crate::index::hygiene`]).
    pub hygiene: Hygiene,
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings {
            threshold: DEFAULT_PDQ_THRESHOLD,
            vec72_threshold: DEFAULT_VEC72_THRESHOLD,
            lists: ListFilter::All,
            variants: QuerySet::All,
            hygiene: Hygiene::default(),
        }
    }
}

impl MatchSettings {
    /// The list filter for `--lists` values (each may hold commas): all
    /// lists when none are given.
    pub fn list_filter<S: AsRef<str>>(names: &[S]) -> ListFilter {
        let names: BTreeSet<String> = names
            .iter()
            .flat_map(|n| n.as_ref().split(','))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            ListFilter::All
        } else {
            ListFilter::Only(names)
        }
    }

    /// Refuses a threshold the index cannot answer.
    pub fn validate(&self) -> Result<(), String> {
        if self.threshold > MAX_PDQ_THRESHOLD {
            return Err(format!(
                "PDQ threshold {} is over the index's maximum of {MAX_PDQ_THRESHOLD}",
                self.threshold
            ));
        }
        Ok(())
    }

    /// How images are hashed for matching: the default decode, and the
    /// query hashes wanted.
    pub fn hash_options(&self) -> HashOptions {
        HashOptions::for_query(self.variants, Default::default())
    }

    /// A query with the thresholds and lists and no hashes yet.
    pub fn base_query(&self) -> Query {
        Query {
            pdq_threshold: self.threshold,
            vec72_threshold: self.vec72_threshold,
            lists: self.hygiene.lookup_lists(&self.lists),
            ..Query::default()
        }
    }

    /// The matches that count under the hygiene rules, each PDQ match
    /// judged by the quality of the image's query hash that found it
    /// (`None`: a query by hash).
    pub fn apply_hygiene(&self, matches: Vec<Match>, image: Option<&ImageHashes>) -> Vec<Match> {
        let qualities = image.map(ImageHashes::query_qualities).unwrap_or_default();
        self.hygiene.apply(matches, &qualities).0
    }

    /// The query for one hash given as text (`--pdq`, `?sha256=`, ...).
    pub fn hash_query(&self, hash: TypedHash) -> Query {
        let mut query = self.base_query();
        match hash {
            TypedHash::Pdq(pdq) => query.pdq = vec![pdq],
            TypedHash::Vec72(vector) => query.vec72 = Some(vector),
            other => query.exact = ExactDigest::try_from(other).into_iter().collect(),
        }
        query
    }

    /// The query for an image: its PDQ hash (or all 8 variants) and digests.
    pub fn image_query(&self, hashes: &ImageHashes) -> Query {
        Query {
            vec72_threshold: self.vec72_threshold,
            ..Query::for_image(
                hashes,
                self.threshold,
                self.hygiene.lookup_lists(&self.lists),
            )
        }
    }
}

/// One list entry an image or a hash matched, as every output writes it:
/// the command's and the service's match lines, scan lines, the worker's
/// events and report records.
///
/// Records written before this shape had `entry_id`, `hash_type` and
/// `matched_by` (e.g. `pdq-rot90`); those names are still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// The list the entry is on.
    pub list: String,
    /// `pdq`, `md5`, `sha1`, `sha256` or `vec72`.
    #[serde(rename = "type", alias = "hash_type")]
    pub kind: String,
    /// The list's hash.
    pub hash: String,
    /// 0 for digests; Hamming distance for PDQ; squared distance for vec72.
    pub distance: u32,
    /// The list's id for the entry, if it gave one.
    #[serde(alias = "entry_id")]
    pub id: Option<String>,
    /// Which of the query's hashes matched, when it was not the image's own:
    /// a PDQ variant or view (`orig`, `rot90`, `pixels-flipx`, `trimmed`,
    /// `over-white`, `frame-3`, `embedded-2`), or `embedded-N` for the
    /// digest of the N-th image inside an SVG or an icon.
    #[serde(default, alias = "matched_by", skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl MatchRecord {
    /// The records of an image's matches, each labelled with the query hash
    /// of `hashes` that found it ([`Query::for_image`] order).
    pub fn for_image(hashes: &ImageHashes, matches: Vec<Match>) -> Vec<MatchRecord> {
        let labels = hashes.query_pdq();
        matches
            .into_iter()
            .map(|m| {
                let variant = match m.matched_by {
                    MatchedBy::Pdq(i) => labels.get(i).map(|(variant, _)| variant.to_string()),
                    // The body's three digests, then three per image
                    // embedded in an SVG or an icon.
                    MatchedBy::Exact(i) if i >= 3 => Some(format!("embedded-{}", i / 3)),
                    MatchedBy::Exact(_) | MatchedBy::Vec72 => None,
                };
                MatchRecord {
                    variant,
                    ..MatchRecord::from(m)
                }
            })
            .collect()
    }
}

impl From<Match> for MatchRecord {
    /// The record of a match of a hash given as such (no variant).
    fn from(m: Match) -> Self {
        MatchRecord {
            list: m.list,
            kind: m.kind.to_string(),
            hash: m.hash.to_string(),
            distance: m.distance,
            id: m.id,
            variant: None,
        }
    }
}

/// `--lists` or `?lists=` names a list the index does not hold: an error,
/// not a filter that silently matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown list{} {}: the index has {}",
    if unknown.len() == 1 { "" } else { "s" },
    quoted(unknown),
    if known.is_empty() { "no lists".to_owned() } else { quoted(known) }
)]
pub struct UnknownLists {
    pub unknown: Vec<String>,
    pub known: Vec<String>,
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// Refuses a list filter naming any list outside `known`.
pub fn check_lists(filter: &ListFilter, known: &BTreeSet<String>) -> Result<(), UnknownLists> {
    let ListFilter::Only(names) = filter else {
        return Ok(());
    };
    let unknown: Vec<String> = names.difference(known).cloned().collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(UnknownLists {
        unknown,
        known: known.iter().cloned().collect(),
    })
}

/// Why a built index could not be loaded.
#[cfg(feature = "store")]
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {} (is it in a directory made by `hashgate index build`?): {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loading {}: {source}", path.display())]
    Snapshot {
        path: std::path::PathBuf,
        #[source]
        source: SnapshotError,
    },
}

/// A built index in memory: the directory's `index.snapshot`, verified by
/// its checksum and held with its PDQ tables ([`ResidentIndex`]), about 80
/// bytes per PDQ hash. The same form and the same matching code as the
/// worker's.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    index: Option<ResidentIndex>,
}

impl MemoryIndex {
    /// Verifies a snapshot (the bytes of `index.snapshot`) and indexes it.
    pub fn from_snapshot(bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        Ok(MemoryIndex {
            index: Some(ResidentIndex::load(bytes)?),
        })
    }

    /// Reads and verifies the snapshot of the built index in `dir`.
    #[cfg(feature = "store")]
    pub fn load(dir: &std::path::Path) -> Result<Self, LoadError> {
        let path = dir.join(crate::index::store::SNAPSHOT_FILE);
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        MemoryIndex::from_snapshot(bytes).map_err(|source| LoadError::Snapshot { path, source })
    }

    /// Distinct hashes per kind.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let Some(index) = &self.index else {
            return BTreeMap::new();
        };
        HashKind::ALL
            .iter()
            .map(|kind| (kind.to_string(), index.snapshot().count(*kind) as u64))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Distinct hashes of every kind.
    pub fn distinct_hashes(&self) -> usize {
        self.counts().values().sum::<u64>() as usize
    }

    /// Bytes held in memory (snapshot and tables).
    pub fn bytes(&self) -> usize {
        self.index.as_ref().map_or(0, ResidentIndex::memory_bytes)
    }

    /// The lists the index holds.
    pub fn lists(&self) -> &[String] {
        self.index.as_ref().map_or(&[], |i| i.lists())
    }

    /// The names of the lists this index holds.
    pub fn list_names(&self) -> BTreeSet<String> {
        self.lists().iter().cloned().collect()
    }

    /// Every list entry `query` matches. An error means the query cannot
    /// be answered (a threshold over the maximum).
    pub fn find(&self, query: &Query) -> Result<Vec<Match>, String> {
        match &self.index {
            Some(index) => index.find(query).map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filter_splits_commas_and_defaults_to_all() {
        assert_eq!(MatchSettings::list_filter::<&str>(&[]), ListFilter::All);
        assert_eq!(MatchSettings::list_filter(&[" , "]), ListFilter::All);
        let only = MatchSettings::list_filter(&["ncmec, iwf", "demo"]);
        let expected: BTreeSet<String> = ["ncmec", "iwf", "demo"].map(String::from).into();
        assert_eq!(only, ListFilter::Only(expected));
    }

    #[test]
    fn unknown_lists_are_refused_naming_the_known_ones() {
        let known: BTreeSet<String> = ["demo", "iwf"].map(String::from).into();
        assert!(check_lists(&ListFilter::All, &known).is_ok());
        assert!(check_lists(&MatchSettings::list_filter(&["demo,iwf"]), &known).is_ok());
        let error = check_lists(&MatchSettings::list_filter(&["demo,dmeo"]), &known).unwrap_err();
        assert_eq!(error.unknown, ["dmeo"]);
        assert_eq!(
            error.to_string(),
            r#"unknown list "dmeo": the index has "demo", "iwf""#
        );
        let none = check_lists(&MatchSettings::list_filter(&["a"]), &BTreeSet::new());
        assert_eq!(
            none.unwrap_err().to_string(),
            r#"unknown list "a": the index has no lists"#
        );
    }

    #[test]
    fn validate_refuses_thresholds_over_the_index_maximum() {
        let mut settings = MatchSettings::default();
        assert!(settings.validate().is_ok());
        settings.threshold = MAX_PDQ_THRESHOLD + 1;
        assert!(settings.validate().is_err());
    }
}
