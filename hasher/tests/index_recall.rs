//! The index against a brute-force scan: for random and clustered PDQ sets,
//! every threshold 0..=31, list subscriptions and several query hashes at
//! once, the matches must be exactly the list hashes within the threshold.
//!
//! Clustered sets put many hashes at distances around the threshold from
//! the query (flipping 0..=40 bits of a centre), which is where a wrong
//! probe plan would lose recall; random sets check the common case of
//! nothing near.

use std::collections::{BTreeMap, BTreeSet};

use hashgate::index::lists::ListEntry;
use hashgate::index::{
    IndexBuilder, ListFilter, MatchedBy, Query, QueryPlan, ResidentIndex, TypedHash,
};
use hashgate::PdqHash;
use proptest::prelude::*;

use hashgate_testkit::rng::Rng;

const LISTS: [&str; 3] = ["ncmec", "iwf", "internal"];

struct Case {
    /// list name -> hashes in it
    lists: BTreeMap<&'static str, Vec<PdqHash>>,
    queries: Vec<Vec<PdqHash>>,
}

fn case(seed: u64, clustered: bool) -> Case {
    let mut rng = Rng::new(seed);
    let centres: Vec<PdqHash> = (0..3).map(|_| rng.pdq()).collect();
    let mut lists = BTreeMap::new();
    for name in LISTS {
        let size = 20 + rng.below(60);
        let hashes: Vec<PdqHash> = (0..size)
            .map(|_| {
                if clustered {
                    let centre = centres[rng.below(3)];
                    let bits = rng.below(41) as u32;
                    match rng.below(3) {
                        0 => rng.near(&centre, bits),
                        1 => rng.near_spread(&centre, bits),
                        _ => rng.near_spread_over(&centre, bits, 11),
                    }
                } else {
                    rng.pdq()
                }
            })
            .collect();
        lists.insert(name, hashes);
    }
    // Share some hashes between lists so memberships merge.
    let shared: Vec<PdqHash> = lists["ncmec"].iter().take(5).copied().collect();
    lists.entry("iwf").or_default().extend(shared);
    let mut queries = Vec::new();
    for _ in 0..4 {
        let centre = centres[rng.below(3)];
        let own_bits = rng.below(20) as u32;
        let own = if clustered {
            rng.near(&centre, own_bits)
        } else {
            rng.pdq()
        };
        // A second query hash, as a dihedral variant would be.
        let other_bits = rng.below(30) as u32;
        let other = rng.near(&centre, other_bits);
        queries.push(vec![own, other]);
    }
    // A query equal to a list hash, and one list hash's near neighbour.
    let first = lists["internal"][0];
    queries.push(vec![first]);
    let bits = rng.below(32) as u32;
    queries.push(vec![rng.near(&first, bits)]);
    Case { lists, queries }
}

/// The same lists in both layouts: KV bucket records, and the resident
/// index loaded from the snapshot.
fn build(case: &Case) -> (BTreeMap<String, String>, ResidentIndex) {
    let mut builder = IndexBuilder::new();
    for (name, hashes) in &case.lists {
        let entries = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| ListEntry {
                hash: TypedHash::Pdq(*h),
                id: Some(format!("{name}-{i}")),
                line: i + 1,
            })
            .collect();
        builder.add_list(name, entries).expect("lists are valid");
    }
    let merged = builder.merge().expect("build succeeds");
    let snapshot = merged.snapshot().expect("snapshot encodes");
    let resident = ResidentIndex::load(snapshot).expect("snapshot loads");
    (merged.records().expect("build succeeds").records, resident)
}

/// (list, hash, id, smallest distance over the query hashes) by scanning:
/// a hash a list holds several times is there once per id (the build keeps
/// every id; ids here are `{list}-{position}`).
fn brute_force(
    case: &Case,
    query: &[PdqHash],
    threshold: u32,
    lists: &ListFilter,
) -> BTreeSet<(String, String, String, u32)> {
    let mut best: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for (name, hashes) in &case.lists {
        if !lists.includes(name) {
            continue;
        }
        for (i, hash) in hashes.iter().enumerate() {
            let distance = query
                .iter()
                .map(|q| q.distance(hash))
                .min()
                .unwrap_or(u32::MAX);
            if distance <= threshold {
                let slot = best
                    .entry((name.to_string(), hash.to_string(), format!("{name}-{i}")))
                    .or_insert(distance);
                *slot = (*slot).min(distance);
            }
        }
    }
    best.into_iter()
        .map(|((l, h, id), d)| (l, h, id, d))
        .collect()
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let (records, resident) = build(case);
    let subscriptions = [
        ListFilter::All,
        ListFilter::Only(["iwf".to_string()].into()),
        ListFilter::Only(["ncmec".to_string(), "internal".to_string()].into()),
    ];
    for (q, pdq) in case.queries.iter().enumerate() {
        for threshold in 0..=31 {
            let lists = &subscriptions[(q + threshold as usize) % subscriptions.len()];
            let query = Query {
                pdq: pdq.clone(),
                pdq_threshold: threshold,
                lists: lists.clone(),
                ..Query::default()
            };
            let plan = QueryPlan::new(&query).expect("threshold is in range");
            prop_assert!(plan.batches().all(|batch| batch.len() <= 100));
            let matches = plan
                .resolve(|key| records.get(key).map(|v| v.as_bytes()))
                .expect("values are well formed");
            let found: BTreeSet<(String, String, String, u32)> = matches
                .iter()
                .map(|m| {
                    let id = m.id.clone().unwrap_or_default();
                    (m.list.clone(), m.hash.to_string(), id, m.distance)
                })
                .collect();
            prop_assert_eq!(found.len(), matches.len(), "a match reported twice");
            for m in &matches {
                prop_assert!(m.distance <= threshold);
                let MatchedBy::Pdq(index) = m.matched_by else {
                    return Err(TestCaseError::fail(
                        "PDQ match not attributed to a PDQ hash",
                    ));
                };
                let TypedHash::Pdq(list_hash) = m.hash else {
                    return Err(TestCaseError::fail("PDQ match with a non-PDQ hash"));
                };
                prop_assert_eq!(pdq[index].distance(&list_hash), m.distance);
                prop_assert!(m
                    .id
                    .as_deref()
                    .is_some_and(|id| id.starts_with(m.list.as_str())));
            }
            // The resident index answers exactly as the bucket layout: the
            // same entries, distances and ids, in the same order.
            let in_memory = resident.find(&query).expect("threshold is in range");
            let shape = |m: &hashgate::index::Match| {
                (m.list.clone(), m.hash.to_string(), m.distance, m.id.clone())
            };
            prop_assert_eq!(
                in_memory.iter().map(shape).collect::<Vec<_>>(),
                matches.iter().map(shape).collect::<Vec<_>>(),
                "resident vs buckets, threshold {}",
                threshold
            );
            for m in &in_memory {
                let (MatchedBy::Pdq(index), TypedHash::Pdq(list_hash)) = (m.matched_by, m.hash)
                else {
                    return Err(TestCaseError::fail("resident PDQ match mislabelled"));
                };
                prop_assert_eq!(pdq[index].distance(&list_hash), m.distance);
            }
            prop_assert_eq!(
                found,
                brute_force(case, pdq, threshold, lists),
                "threshold {}",
                threshold
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_sets_match_brute_force(seed in any::<u64>()) {
        check(&case(seed, false))?;
    }

    #[test]
    fn clustered_sets_match_brute_force(seed in any::<u64>()) {
        check(&case(seed, true))?;
    }
}

/// The boundary itself: one hash at each distance 0..=33 from the query,
/// its differences spread over all chunks, for every threshold.
#[test]
fn boundary_distances_are_exact() {
    let mut rng = Rng::new(7);
    let centre = rng.pdq();
    let mut lists = BTreeMap::new();
    let hashes: Vec<PdqHash> = (0..=33)
        .map(|bits| rng.near_spread(&centre, bits))
        .collect();
    lists.insert("internal", hashes);
    let case = Case {
        lists,
        queries: vec![vec![centre]],
    };
    check(&case).expect("boundary case");
    let (records, _) = build(&case);
    for threshold in 0..=31u32 {
        let query = Query {
            pdq: vec![centre],
            pdq_threshold: threshold,
            ..Query::default()
        };
        let plan = QueryPlan::new(&query).expect("in range");
        let matches = plan
            .resolve(|k| records.get(k).map(|v| v.as_bytes()))
            .expect("resolves");
        let distances: Vec<u32> = matches.iter().map(|m| m.distance).collect();
        assert_eq!(distances, (0..=threshold).collect::<Vec<_>>());
    }
}

/// Differences spread over eleven of the sixteen chunks only (the other
/// five equal to the query's), one hash at each distance 0..=33, every
/// threshold, in the resident index.
#[test]
fn boundary_distances_over_the_indexed_chunks_are_exact() {
    let mut rng = Rng::new(11);
    let centre = rng.pdq();
    let hashes: Vec<PdqHash> = (0..=33)
        .map(|bits| rng.near_spread_over(&centre, bits, 11))
        .collect();
    let case = Case {
        lists: BTreeMap::from([("internal", hashes)]),
        queries: vec![vec![centre]],
    };
    check(&case).expect("boundary case");
    let (_, resident) = build(&case);
    for threshold in 0..=31u32 {
        let query = Query {
            pdq: vec![centre],
            pdq_threshold: threshold,
            ..Query::default()
        };
        let distances: Vec<u32> = resident
            .find(&query)
            .expect("in range")
            .iter()
            .map(|m| m.distance)
            .collect();
        assert_eq!(distances, (0..=threshold).collect::<Vec<_>>());
    }
}
