//! Matching shared by `hashgate match`, `hashgate scan` and `hashgate serve`:
//! the settings that turn an image or a hash into a [`Query`], and an index
//! held in memory.
//!
//! `hashgate match` reads only the keys its queries need from the index
//! file, in one pass. `scan` and `serve` look up many images against the
//! same index, so they read every record once into a [`MemoryIndex`] with
//! the same [`RecordReader`] and resolve each query with the same library
//! code ([`QueryPlan`]), which is also what the worker runs against KV.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use hashgate::index::{
    ExactDigest, ListFilter, Match, Query, QueryPlan, TypedHash, MAX_PDQ_THRESHOLD,
};
use hashgate::variants::VariantOptions;
use hashgate::{HashOptions, ImageHashes};

use crate::index_store::RecordReader;

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
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings {
            threshold: DEFAULT_PDQ_THRESHOLD,
            vec72_threshold: DEFAULT_VEC72_THRESHOLD,
            lists: ListFilter::All,
            dihedral: false,
            variants: true,
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
            lists: self.lists.clone(),
            ..Query::default()
        }
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
            ..Query::for_image(hashes, self.threshold, self.lists.clone())
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

/// The names of the lists an index holds, from its meta record (`None`
/// when the index has none: then it holds no list).
pub fn list_names(meta: Option<&str>) -> BTreeSet<String> {
    meta.and_then(|meta| serde_json::from_str::<serde_json::Value>(meta).ok())
        .and_then(|meta| {
            let lists = meta.get("lists")?.as_object()?;
            Some(lists.keys().cloned().collect())
        })
        .unwrap_or_default()
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

/// Every record of a built index, in memory.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    records: HashMap<String, String>,
    bytes: usize,
}

impl MemoryIndex {
    /// Reads every record of the index in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut reader = RecordReader::open(dir)?;
        let mut index = MemoryIndex::default();
        while let Some((key, value)) = reader.next_record()? {
            index.bytes += key.len() + value.len();
            index.records.insert(key, value);
        }
        Ok(index)
    }

    /// Number of records (KV keys).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The names of the lists this index holds.
    pub fn list_names(&self) -> BTreeSet<String> {
        list_names(self.get(hashgate::index::layout::META_KEY))
    }

    /// The value stored at `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.records.get(key).map(String::as_str)
    }

    /// Every list entry `query` matches. An error means a stored value is
    /// corrupt or the query cannot be planned.
    pub fn find(&self, query: &Query) -> Result<Vec<Match>, String> {
        let plan = QueryPlan::new(query).map_err(|e| e.to_string())?;
        plan.resolve(|key| self.records.get(key).map(|v| v.as_bytes()))
            .map_err(|e| e.to_string())
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
        let meta = r#"{"format":"hashgate-index","lists":{"demo":{"pdq":1},"iwf":{"md5":2}}}"#;
        let known = list_names(Some(meta));
        assert_eq!(known, ["demo", "iwf"].map(String::from).into());
        assert!(check_lists(&ListFilter::All, &known).is_ok());
        assert!(check_lists(&MatchSettings::list_filter(&["demo,iwf"]), &known).is_ok());
        let error = check_lists(&MatchSettings::list_filter(&["demo,dmeo"]), &known).unwrap_err();
        assert_eq!(error.unknown, ["dmeo"]);
        assert_eq!(
            error.to_string(),
            r#"unknown list "dmeo": the index has "demo", "iwf""#
        );
        let none = check_lists(&MatchSettings::list_filter(&["a"]), &list_names(None));
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
