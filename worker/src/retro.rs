//! Retroactive matching, the pure part: which list hashes a new index
//! generation added, and which hash-log rows match them.
//!
//! ```text
//! added     every (list, type, hash) of the new snapshot that the previous
//!           snapshot does not hold for that list: both snapshots are sorted,
//!           so each new hash is one binary search in the old
//! index     a small resident index of the added entries only (built with
//!           the same IndexBuilder as `hashgate index build`)
//! match     each logged row's PDQ (threshold 31) and digests against that
//!           small index: a query costs the same whatever size the full
//!           index is
//! ```
//!
//! A row that matches is a candidate, not yet a sighting: the runtime
//! part ([`crate::stored`]) confirms it against the full current index (so
//! allowlists and the route's threshold and lists apply) by scanning the
//! stored object again, or, for an image logged at the edge, by querying
//! the index with its logged hashes.
//!
//! The log keeps the image's own PDQ (not its 7 dihedral variants), so a
//! retroactive match finds images whose listed hash is of the same
//! orientation; rotated copies are found at their next scan.

use std::collections::BTreeMap;

use hashgate::index::query::Match;
use hashgate::index::ExactDigest;
use hashgate::index::{
    IndexBuilder, ListEntry, ListFilter, Query, ResidentIndex, Snapshot, TypedHash,
};
use hashgate::HashKind;

use crate::hash_log::PageRow;

/// The kinds the hash log holds (vec72 is not computed by hashgate).
pub const LOGGED_KINDS: [HashKind; 4] = [
    HashKind::Pdq,
    HashKind::Md5,
    HashKind::Sha1,
    HashKind::Sha256,
];

/// Why the added entries could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum RetroError {
    #[error("building the index of added hashes: {0}")]
    Build(#[from] hashgate::index::BuildError),
    #[error("the index of added hashes: {0}")]
    Snapshot(#[from] hashgate::index::SnapshotError),
    #[error("a stored hash does not parse: {0}")]
    Hash(String),
}

/// One added list entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Added {
    pub list: String,
    pub kind: HashKind,
    /// Lower-case hex.
    pub hash: String,
    pub id: Option<String>,
}

impl Added {
    /// As a list line (`type,hash[,id]`).
    pub fn line(&self) -> String {
        match &self.id {
            Some(id) => format!("{},{},{id}", self.kind.name(), self.hash),
            None => format!("{},{}", self.kind.name(), self.hash),
        }
    }
}

/// The entries of `new` that `old` does not hold (every entry of `new`
/// when there is no `old`).
pub fn added(old: Option<&Snapshot>, new: &Snapshot) -> Vec<Added> {
    let mut out = Vec::new();
    for kind in LOGGED_KINDS {
        for row in 0..new.count(kind) {
            let bytes = new.hash_at(kind, row);
            let before: Vec<String> = old
                .and_then(|old| old.find(kind, bytes).map(|r| (old, r)))
                .map(|(old, r)| {
                    old.memberships(kind, r)
                        .into_iter()
                        .map(|(list, _)| list.to_owned())
                        .collect()
                })
                .unwrap_or_default();
            for (list, id) in new.memberships(kind, row) {
                if !before.iter().any(|l| l == list) {
                    out.push(Added {
                        list: list.to_owned(),
                        kind,
                        hash: hex::encode(bytes),
                        id: id.map(str::to_owned),
                    });
                }
            }
        }
    }
    out.sort();
    out
}

/// Writes added entries as text (one `list,type,hash[,id]` line each), the
/// form kept between the pages of a pass.
pub fn encode_added(added: &[Added]) -> String {
    added
        .iter()
        .map(|a| format!("{},{}\n", a.list, a.line()))
        .collect()
}

/// Reads [`encode_added`]'s text back.
pub fn decode_added(text: &str) -> Result<Vec<Added>, RetroError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.splitn(4, ',');
        let (Some(list), Some(kind), Some(hash)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(RetroError::Hash(line.to_owned()));
        };
        let kind: HashKind = kind
            .parse()
            .map_err(|_| RetroError::Hash(line.to_owned()))?;
        out.push(Added {
            list: list.to_owned(),
            kind,
            hash: hash.to_owned(),
            id: fields.next().map(str::to_owned),
        });
    }
    Ok(out)
}

/// A resident index of the added entries (`None` when nothing was added).
pub fn added_index(added: &[Added]) -> Result<Option<ResidentIndex>, RetroError> {
    let mut by_list: BTreeMap<&str, Vec<ListEntry>> = BTreeMap::new();
    for (line, a) in added.iter().enumerate() {
        let hash =
            TypedHash::parse(a.kind, &a.hash).map_err(|e| RetroError::Hash(e.to_string()))?;
        by_list.entry(&a.list).or_default().push(ListEntry {
            hash,
            id: a.id.clone(),
            line: line + 1,
        });
    }
    if by_list.is_empty() {
        return Ok(None);
    }
    let mut builder = IndexBuilder::new();
    for (list, entries) in by_list {
        builder.add_list(list, entries)?;
    }
    let snapshot = builder.merge()?.snapshot()?;
    Ok(Some(ResidentIndex::load(snapshot)?))
}

/// The query for a logged row: its PDQ at the largest threshold and its
/// digests, every list (the confirmation applies the rule's lists).
pub fn row_query(row: &PageRow) -> Option<Query> {
    let pdq = row.pdq.as_deref()?.parse().ok()?;
    let mut exact = Vec::new();
    if let Some(h) = row.md5.as_deref().and_then(|h| h.parse().ok()) {
        exact.push(ExactDigest::Md5(h));
    }
    if let Some(h) = row.sha1.as_deref().and_then(|h| h.parse().ok()) {
        exact.push(ExactDigest::Sha1(h));
    }
    if let Some(h) = row.sha256.as_deref().and_then(|h| h.parse().ok()) {
        exact.push(ExactDigest::Sha256(h));
    }
    Some(Query {
        pdq: vec![pdq],
        pdq_threshold: hashgate::index::MAX_PDQ_THRESHOLD,
        exact,
        lists: ListFilter::All,
        ..Query::default()
    })
}

/// The rows of a page that match an added hash, with their matches.
pub fn candidates<'r>(
    index: &ResidentIndex,
    rows: &'r [PageRow],
) -> Vec<(&'r PageRow, Vec<Match>)> {
    rows.iter()
        .filter_map(|row| {
            let query = row_query(row)?;
            let matches = index.find(&query).ok()?;
            (!matches.is_empty()).then_some((row, matches))
        })
        .collect()
}

/// Matches found from logged hashes, as records (the query hash is the
/// image's own PDQ or one of its digests: no variant).
pub fn summaries(matches: &[Match]) -> Vec<hashgate::matching::MatchRecord> {
    matches
        .iter()
        .cloned()
        .map(hashgate::matching::MatchRecord::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate::index::parse_hash_list;

    fn snapshot(lists: &[(&str, &str)]) -> Snapshot {
        let mut builder = IndexBuilder::new();
        for (name, text) in lists {
            builder
                .add_list(name, parse_hash_list(text).entries)
                .unwrap();
        }
        Snapshot::parse(builder.merge().unwrap().snapshot().unwrap()).unwrap()
    }

    const PDQ_A: &str = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";
    const SHA_B: &str = "96677f79beb3872970f2d3d907e5063b9e42aa5b1fba85fa2d55e7f2ad681ff6";

    fn row(pdq: &str, sha256: Option<&str>) -> PageRow {
        PageRow {
            row: 1,
            location: "r2://b/k".into(),
            etag: "e".into(),
            generation: "g".into(),
            route: "r2://b/*".into(),
            direction: "stored".into(),
            pdq: Some(pdq.into()),
            pdq_quality: Some(100),
            md5: None,
            sha1: None,
            sha256: sha256.map(str::to_owned),
        }
    }

    #[test]
    fn added_is_the_difference_per_list() {
        let old = snapshot(&[("demo", &format!("pdq,{PDQ_A},a\n"))]);
        let new = snapshot(&[
            ("demo", &format!("pdq,{PDQ_A},a\nsha256,{SHA_B},b\n")),
            ("other", &format!("pdq,{PDQ_A},a2\n")),
        ]);
        let added = added(Some(&old), &new);
        assert_eq!(
            added,
            vec![
                Added {
                    list: "demo".into(),
                    kind: HashKind::Sha256,
                    hash: SHA_B.into(),
                    id: Some("b".into())
                },
                Added {
                    list: "other".into(),
                    kind: HashKind::Pdq,
                    hash: PDQ_A.into(),
                    id: Some("a2".into())
                },
            ]
        );
        assert_eq!(decode_added(&encode_added(&added)).unwrap(), added);
        // Nothing added: the same snapshot.
        assert!(super::added(Some(&new), &new).is_empty());
        // No previous generation: everything.
        assert_eq!(super::added(None, &new).len(), 3);
    }

    #[test]
    fn rows_match_added_hashes_only() {
        let old = snapshot(&[("demo", &format!("pdq,{PDQ_A},a\n"))]);
        let new = snapshot(&[("demo", &format!("pdq,{PDQ_A},a\nsha256,{SHA_B},b\n"))]);
        let index = added_index(&added(Some(&old), &new)).unwrap().unwrap();
        // Flip 3 bits of A: near A, which was listed before (not a candidate).
        let near_a = format!("{}{}", "a0eb", &PDQ_A[4..]);
        let other = "0".repeat(64);
        let rows = vec![
            row(&near_a, None),
            row(&other, Some(SHA_B)),
            row(&other, None),
        ];
        let found = candidates(&index, &rows);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.sha256.as_deref(), Some(SHA_B));
        assert_eq!(found[0].1[0].id.as_deref(), Some("b"));
        // A list that adds A: the near copy becomes a candidate.
        let newer = snapshot(&[
            ("demo", &format!("pdq,{PDQ_A},a\nsha256,{SHA_B},b\n")),
            ("more", &format!("pdq,{PDQ_A},m\n")),
        ]);
        let index = added_index(&added(Some(&new), &newer)).unwrap().unwrap();
        let found = candidates(&index, &rows);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1[0].list, "more");
        assert!(found[0].1[0].distance > 0 && found[0].1[0].distance <= 31);
        assert!(added_index(&[]).unwrap().is_none());
    }
}
