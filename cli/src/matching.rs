//! The matching flags `match`, `scan` and `serve` share, as
//! [`MatchSettings`] of the library.

use hashgate::index::lists::validate_list_name;
use hashgate::index::{Hygiene, DEFAULT_MIN_PDQ_QUALITY, MAX_PDQ_THRESHOLD};
use hashgate::matching::{MatchSettings, DEFAULT_PDQ_THRESHOLD, DEFAULT_VEC72_THRESHOLD};
use hashgate::QuerySet;

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
    /// Which query hashes images are matched by: own (the image's PDQ
    /// hash only), dihedral (and its 7 rotations and mirrors), all (also
    /// the rotated and mirrored pixels and the content inside added
    /// borders).
    #[arg(long, value_name = "own|dihedral|all", default_value_t = QuerySet::All)]
    pub variants: QuerySet,
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
            variants: self.variants,
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
