//! The matching flags `match`, `scan` and `serve` share, as
//! [`MatchSettings`] of the library.

use hashgate::index::MAX_PDQ_THRESHOLD;
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
}

impl MatchFlags {
    /// The settings these flags ask for.
    pub fn settings(&self) -> MatchSettings {
        MatchSettings {
            threshold: self.threshold,
            vec72_threshold: self.vec72_threshold,
            lists: MatchSettings::list_filter(&self.lists),
            variants: self.variants,
        }
    }
}
