//! List hygiene: the rules applied to a query's matches before they become
//! a verdict, the same at the edge, in `hashgate match` and in `hashgate
//! serve`.
//!
//! * **PDQ quality.** PDQ's authors advise ignoring hashes of quality below
//!   50: a flat or tiny image has a hash dominated by noise, and such hashes
//!   collide with unrelated flat images. A PDQ match found by a query hash
//!   of quality below [`Hygiene::min_pdq_quality`] (default
//!   [`DEFAULT_MIN_PDQ_QUALITY`]) does not count; exact digests still match
//!   (a digest is exact whatever the pixels). The quality is that of the
//!   query hash that found the match: an image whose stored pixels are flat
//!   but whose view over white is a photo (hidden alpha) is judged by the
//!   view.
//! * **Per-list distance.** Lists differ in how near a copy may be before it
//!   is the same image: a list of logos or screenshots wants a tighter
//!   distance than a list of photos. [`Hygiene::list_distance`] caps the PDQ
//!   distance per list, below the query's own threshold.
//! * **Negative lists.** A negative list holds hashes known to be innocent
//!   (stock images, the site's own logo). An image that matches an entry of
//!   a negative list matches nothing at all: its other matches are dropped,
//!   and the negative match itself is never reported.
//!
//! Pure: matches in, matches out, order kept (closest first).

use std::collections::{BTreeMap, BTreeSet};

use super::{ListFilter, ListName, Match, MatchedBy};
use crate::hashes::HashKind;

/// The quality below which PDQ hashes are not matched by default (PDQ's
/// README: "discard quality <= 49").
pub const DEFAULT_MIN_PDQ_QUALITY: u8 = 50;

/// The hygiene rules of one route, command or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hygiene {
    /// Images of lower PDQ quality get no PDQ match (0 turns the rule off).
    pub min_pdq_quality: u8,
    /// Largest PDQ distance that matches, per list.
    pub list_distance: BTreeMap<ListName, u32>,
    /// Lists whose matches cancel every match of the image.
    pub negative_lists: BTreeSet<ListName>,
}

impl Default for Hygiene {
    fn default() -> Self {
        Hygiene {
            min_pdq_quality: DEFAULT_MIN_PDQ_QUALITY,
            list_distance: BTreeMap::new(),
            negative_lists: BTreeSet::new(),
        }
    }
}

/// What the hygiene rules took away, for logs and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// PDQ matches of a low-quality image.
    pub low_quality: usize,
    /// PDQ matches beyond their list's distance.
    pub beyond_list_distance: usize,
    /// Matches cancelled by a negative list (including the negative ones).
    pub negative: usize,
}

impl Hygiene {
    /// The lists a query must look up: the subscribed ones and the
    /// negative lists, whose matches cancel the others.
    pub fn lookup_lists(&self, subscribed: &ListFilter) -> ListFilter {
        match subscribed {
            ListFilter::All => ListFilter::All,
            ListFilter::Only(names) => {
                ListFilter::Only(names.iter().chain(&self.negative_lists).cloned().collect())
            }
        }
    }

    /// The matches that count. `qualities[i]` is the PDQ quality of the
    /// query's `pdq[i]` ([`crate::ImageHashes::query_qualities`]); a PDQ
    /// match whose query hash has no quality there (a query of bare
    /// hashes: `&[]`) is not judged by quality.
    pub fn apply(&self, matches: Vec<Match>, qualities: &[u8]) -> (Vec<Match>, Dropped) {
        let mut dropped = Dropped::default();
        let mut kept: Vec<Match> = Vec::with_capacity(matches.len());
        for m in matches {
            if m.kind == HashKind::Pdq {
                let quality = match m.matched_by {
                    MatchedBy::Pdq(i) => qualities.get(i).copied(),
                    _ => None,
                };
                if quality.is_some_and(|q| q < self.min_pdq_quality) {
                    dropped.low_quality += 1;
                    continue;
                }
                if self
                    .list_distance
                    .get(&m.list)
                    .is_some_and(|&max| m.distance > max)
                {
                    dropped.beyond_list_distance += 1;
                    continue;
                }
            }
            kept.push(m);
        }
        if kept.iter().any(|m| self.negative_lists.contains(&m.list)) {
            dropped.negative = kept.len();
            kept.clear();
        }
        (kept, dropped)
    }

    /// [`Hygiene::apply`] for a query of bare hashes (no image, no quality).
    pub fn apply_to_hashes(&self, matches: Vec<Match>) -> Vec<Match> {
        self.apply(matches, &[]).0
    }

    /// A short text that differs whenever the rules differ: part of the
    /// keys under which verdicts are remembered.
    pub fn key(&self) -> String {
        let distances: Vec<String> = self
            .list_distance
            .iter()
            .map(|(list, d)| format!("{list}={d}"))
            .collect();
        let negative: Vec<&str> = self.negative_lists.iter().map(String::as_str).collect();
        format!(
            "q{}:d{}:n{}",
            self.min_pdq_quality,
            distances.join(","),
            negative.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{MatchedBy, TypedHash};

    fn m(list: &str, kind: HashKind, distance: u32) -> Match {
        let hash = match kind {
            HashKind::Pdq => TypedHash::parse(kind, &"ab".repeat(32)).unwrap(),
            _ => TypedHash::parse(HashKind::Md5, &"cd".repeat(16)).unwrap(),
        };
        Match {
            list: list.into(),
            kind,
            hash,
            distance,
            id: None,
            matched_by: MatchedBy::Pdq(0),
        }
    }

    #[test]
    fn low_quality_images_get_no_pdq_match_but_digests_still_match() {
        let rules = Hygiene::default();
        let matches = vec![m("a", HashKind::Pdq, 3), m("a", HashKind::Md5, 0)];
        let (kept, dropped) = rules.apply(matches.clone(), &[49]);
        assert_eq!(kept, vec![m("a", HashKind::Md5, 0)]);
        assert_eq!(dropped.low_quality, 1);
        assert_eq!(rules.apply(matches.clone(), &[50]).0, matches);
        // Configurable, and off at 0.
        let off = Hygiene {
            min_pdq_quality: 0,
            ..Hygiene::default()
        };
        assert_eq!(off.apply(matches.clone(), &[0]).0, matches);
        // Bare hashes have no quality to judge.
        assert_eq!(rules.apply_to_hashes(matches.clone()), matches);
        // Each match is judged by the query hash that found it: a flat
        // image whose view (pdq[1]) is a photo keeps the view's match.
        let by_view = Match {
            matched_by: MatchedBy::Pdq(1),
            ..m("a", HashKind::Pdq, 2)
        };
        let (kept, _) = rules.apply(vec![m("a", HashKind::Pdq, 3), by_view.clone()], &[10, 90]);
        assert_eq!(kept, vec![by_view]);
    }

    #[test]
    fn per_list_distance_caps_pdq_matches_of_that_list_only() {
        let rules = Hygiene {
            list_distance: [("logos".to_string(), 8)].into(),
            ..Hygiene::default()
        };
        let matches = vec![
            m("logos", HashKind::Pdq, 8),
            m("logos", HashKind::Pdq, 9),
            m("photos", HashKind::Pdq, 20),
        ];
        let (kept, dropped) = rules.apply(matches, &[100]);
        assert_eq!(
            kept,
            vec![m("logos", HashKind::Pdq, 8), m("photos", HashKind::Pdq, 20)]
        );
        assert_eq!(dropped.beyond_list_distance, 1);
    }

    #[test]
    fn a_negative_list_match_cancels_every_match() {
        let rules = Hygiene {
            negative_lists: ["stock".to_string()].into(),
            ..Hygiene::default()
        };
        let matches = vec![m("ncmec", HashKind::Pdq, 4), m("stock", HashKind::Pdq, 6)];
        let (kept, dropped) = rules.apply(matches, &[100]);
        assert!(kept.is_empty());
        assert_eq!(dropped.negative, 2);
        // Beyond its own distance, the negative entry does not count.
        let capped = Hygiene {
            list_distance: [("stock".to_string(), 5)].into(),
            ..rules.clone()
        };
        let matches = vec![m("ncmec", HashKind::Pdq, 4), m("stock", HashKind::Pdq, 6)];
        assert_eq!(
            capped.apply(matches, &[100]).0,
            vec![m("ncmec", HashKind::Pdq, 4)]
        );
        assert_ne!(rules.key(), capped.key());
        assert_ne!(rules.key(), Hygiene::default().key());
    }
}
