//! Matching shared by `hashgate match`, `hashgate scan` and `hashgate serve`:
//! the settings that turn an image or a hash into a [`Query`], and an index
//! held in memory.
//!
//! `match`, `scan` and `serve` load the build's `index.snapshot` into a
//! [`MemoryIndex`] and answer each query in memory with the library's
//! [`ResidentIndex`], the code the worker runs once it holds a generation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use hashgate::index::lists::validate_list_name;
use hashgate::index::{
    ExactDigest, Hygiene, ListFilter, Match, Query, ResidentIndex, TypedHash,
    DEFAULT_MIN_PDQ_QUALITY, MAX_PDQ_THRESHOLD,
};
use hashgate::variants::VariantOptions;
use hashgate::{HashKind, HashOptions, ImageHashes};

use crate::index_store::SNAPSHOT_FILE;

/// The PDQ threshold every command defaults to (Meta's suggestion).
pub const DEFAULT_PDQ_THRESHOLD: u32 = 31;
/// The vec72 threshold every command defaults to. It sits between an
/// altered copy (about 5,000) and unrelated images (about 700,000) in
/// Cloudflare's published examples.
pub const DEFAULT_VEC72_THRESHOLD: u32 = 50_000;

/// The matching flags `match`, `scan` and `serve` share.
#[derive(Debug, Clone, clap::Args)]
pub struct MatchFlags {
    /// Largest PDQ Hamming distance that matches.
    #[arg(long, default_value_t = DEFAULT_PDQ_THRESHOLD, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PDQ_THRESHOLD)))]
    pub threshold: u32,
    /// Only these lists (comma-separated); all lists by default.
    #[arg(long, value_delimiter = ',', value_name = "LIST,...")]
    pub lists: Vec<String>,
    /// Largest squared distance that matches a vec72 hash. The default sits
    /// between an altered copy (about 5,000) and unrelated images (about
    /// 700,000) in Cloudflare's published examples.
    #[arg(long, default_value_t = DEFAULT_VEC72_THRESHOLD)]
    pub vec72_threshold: u32,
    /// Match images by at least their 8 rotations and mirrors (part of the
    /// default query set too; with --no-variants, only these).
    #[arg(long)]
    pub dihedral: bool,
    /// Match images by their own PDQ hash only (plus the 8 orientations with
    /// --dihedral), not the whole query set (rotations, mirrors, content
    /// inside added borders); faster.
    #[arg(long)]
    pub no_variants: bool,
    /// Images of lower PDQ quality get no PDQ match (their digests still
    /// match); 0 turns the rule off. PDQ's authors advise 50.
    #[arg(long, value_name = "0..100", default_value_t = DEFAULT_MIN_PDQ_QUALITY, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub min_quality: u8,
    /// Largest PDQ distance that matches on one list, as LIST=N (repeat for
    /// more lists); --threshold still bounds every list.
    #[arg(long, value_name = "LIST=N", value_parser = parse_list_distance)]
    pub list_distance: Vec<(String, u32)>,
    /// Lists of known-innocent hashes (comma-separated): an image or hash
    /// that matches one of them matches nothing.
    #[arg(long, value_delimiter = ',', value_name = "LIST,...")]
    pub negative_lists: Vec<String>,
}

fn parse_list_distance(text: &str) -> Result<(String, u32), String> {
    let (name, distance) = text
        .split_once('=')
        .ok_or_else(|| format!("expected LIST=N, found {text:?}"))?;
    let name = validate_list_name(name.trim()).map_err(|e| e.to_string())?;
    let distance: u32 = distance
        .trim()
        .parse()
        .ok()
        .filter(|d| *d <= MAX_PDQ_THRESHOLD)
        .ok_or_else(|| format!("{text:?}: the distance must be 0 to {MAX_PDQ_THRESHOLD}"))?;
    Ok((name, distance))
}

impl MatchFlags {
    /// The settings these flags ask for.
    pub fn settings(&self) -> MatchSettings {
        MatchSettings {
            threshold: self.threshold,
            vec72_threshold: self.vec72_threshold,
            lists: MatchSettings::list_filter(&self.lists),
            dihedral: self.dihedral,
            variants: !self.no_variants,
            hygiene: Hygiene {
                min_pdq_quality: self.min_quality,
                list_distance: self.list_distance.iter().cloned().collect(),
                negative_lists: self
                    .negative_lists
                    .iter()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect(),
            },
        }
    }
}

/// How images and hashes are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSettings {
    /// Largest PDQ Hamming distance that matches, 0..=31.
    pub threshold: u32,
    /// Largest squared distance that matches a vec72 hash.
    pub vec72_threshold: u32,
    /// Subscribed lists.
    pub lists: ListFilter,
    /// Whether images are also matched by their 7 rotated and mirrored PDQ
    /// hashes (derived from the DCT).
    pub dihedral: bool,
    /// Whether images are matched by the whole query set of
    /// [`hashgate::variants`] (derived and pixel rotations and mirrors, the
    /// content inside added borders) rather than their own hash alone.
    pub variants: bool,
    /// PDQ quality, per-list distance, negative lists
    /// ([`hashgate::index::hygiene`]).
    pub hygiene: Hygiene,
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings {
            threshold: DEFAULT_PDQ_THRESHOLD,
            vec72_threshold: DEFAULT_VEC72_THRESHOLD,
            lists: ListFilter::All,
            dihedral: false,
            variants: true,
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
        HashOptions {
            dihedral: self.dihedral,
            variants: if self.variants {
                VariantOptions::ALL
            } else {
                VariantOptions::NONE
            },
            ..HashOptions::default()
        }
    }

    /// A query with the thresholds and lists and no hashes yet.
    pub fn base_query(&self) -> Query {
        Query {
            pdq_threshold: self.threshold,
            vec72_threshold: self.vec72_threshold,
            lists: self.query_lists(),
            ..Query::default()
        }
    }

    /// The lists looked up: the subscribed ones and the negative lists,
    /// whose matches cancel the others.
    fn query_lists(&self) -> ListFilter {
        match &self.lists {
            ListFilter::All => ListFilter::All,
            ListFilter::Only(names) => ListFilter::Only(
                names
                    .iter()
                    .chain(&self.hygiene.negative_lists)
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// The matches that count under the hygiene rules; `quality` is the
    /// image's PDQ quality (`None` for a query by hash).
    pub fn apply_hygiene(&self, matches: Vec<Match>, quality: Option<u8>) -> Vec<Match> {
        self.hygiene.apply(matches, quality).0
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
            ..Query::for_image(hashes, self.threshold, self.query_lists())
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

/// A built index in memory: the directory's `index.snapshot`, verified by
/// its checksum and held with its PDQ tables ([`ResidentIndex`]), about 80
/// bytes per PDQ hash. The same form and the same matching code as the
/// worker's.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    index: Option<ResidentIndex>,
}

impl MemoryIndex {
    /// Reads and verifies the snapshot of the index in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "reading {} (is {} a directory made by `hashgate index build`?)",
                path.display(),
                dir.display()
            )
        })?;
        let index =
            ResidentIndex::load(bytes).with_context(|| format!("loading {}", path.display()))?;
        Ok(MemoryIndex { index: Some(index) })
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
    pub fn len(&self) -> usize {
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
