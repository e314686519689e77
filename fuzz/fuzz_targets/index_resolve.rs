//! `QueryPlan::resolve` fed arbitrary values for the keys a plan reads.
//!
//! The values come from Workers KV: normally written by the builder, but a
//! partial update, a bug or tampering can leave anything there. A corrupt
//! value must be a `ResolveError`; a well-formed one must give only matches
//! within the threshold, in the subscribed lists, with the distance the
//! hashes really have, sorted closest first.

#![no_main]

use std::collections::{BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use hashgate::index::{ExactDigest, ListFilter, MatchedBy, Query, QueryPlan, TypedHash};
use hashgate::{Md5Digest, PdqHash, Sha1Digest, Sha256Digest, Vec72};
use hashgate_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// Reads a query and the values for its keys:
///
/// ```text
/// u8 threshold (mod 40: over the maximum of 31 is tried too)
/// u8 flags: 1 = vec72 query, 2 = lists only {demo, iwf}
/// u8 n, n x 32 bytes: PDQ hashes (at most 4)
/// u8 m, m x (u8 kind 0|1|2, 16|20|32 bytes): digests (at most 4)
/// [72 bytes vec72, u32 LE vec72 threshold]   if flags & 1
/// then until the end: u16 LE key index (modulo the plan's keys),
///   u8 raw (odd: stored as is; even: base64 of the bytes), u16 LE length, bytes
/// ```
fn read(data: &[u8]) -> (Query, Vec<(u16, bool, &[u8])>) {
    let mut input = Input::new(data);
    let threshold = u32::from(input.u8() % 40);
    let flags = input.u8();
    let pdq = (0..input.u8() % 5).map(|_| PdqHash(input.array())).collect();
    let exact = (0..input.u8() % 5)
        .map(|_| match input.u8() % 3 {
            0 => ExactDigest::Md5(Md5Digest(input.array())),
            1 => ExactDigest::Sha1(Sha1Digest(input.array())),
            _ => ExactDigest::Sha256(Sha256Digest(input.array())),
        })
        .collect();
    let (vec72, vec72_threshold) = if flags & 1 == 1 {
        (Some(Vec72(input.array())), u32::from_le_bytes(input.array()))
    } else {
        (None, 0)
    };
    let lists = if flags & 2 == 2 {
        ListFilter::Only(["demo".to_owned(), "iwf".to_owned()].into_iter().collect())
    } else {
        ListFilter::All
    };
    let mut values = Vec::new();
    while !input.is_empty() {
        let key = u16::from_le_bytes(input.array());
        let raw = input.u8() & 1 == 1;
        let len = usize::from(u16::from_le_bytes(input.array()));
        values.push((key, raw, input.take(len)));
    }
    let query = Query {
        pdq,
        pdq_threshold: threshold,
        exact,
        vec72,
        vec72_threshold,
        lists,
    };
    (query, values)
}

fuzz_target!(|data: &[u8]| {
    let (query, input_values) = read(data);
    let Ok(plan) = QueryPlan::new(&query) else {
        assert!(query.pdq_threshold > 31, "a threshold within 0..=31 plans");
        return;
    };
    let keys = plan.keys();
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len(), "keys are distinct");
    assert!(plan.batches().all(|b| b.len() <= 100));
    if keys.is_empty() {
        return;
    }
    let mut values: HashMap<&str, Vec<u8>> = HashMap::new();
    for (key, raw, bytes) in input_values {
        let key = &keys[usize::from(key) % keys.len()];
        let text = if raw { bytes.to_vec() } else { STANDARD_NO_PAD.encode(bytes).into_bytes() };
        values.insert(key, text);
    }
    let Ok(matches) = plan.resolve(|key| values.get(key).map(Vec::as_slice)) else {
        return;
    };
    for m in &matches {
        assert!(query.lists.includes(&m.list), "match outside the subscribed lists");
        match (m.matched_by, m.hash) {
            (MatchedBy::Pdq(i), TypedHash::Pdq(hash)) => {
                assert!(m.distance <= query.pdq_threshold);
                assert_eq!(m.distance, query.pdq[i].distance(&hash));
            }
            (MatchedBy::Exact(i), hash) => {
                assert_eq!(m.distance, 0);
                assert_eq!(hash, TypedHash::from(query.exact[i]));
            }
            (MatchedBy::Vec72, TypedHash::Vec72(vector)) => {
                assert!(m.distance <= query.vec72_threshold);
                assert_eq!(Some(m.distance), query.vec72.map(|q| q.distance(&vector)));
            }
            other => panic!("match of the wrong kind: {other:?}"),
        }
    }
    assert!(matches.windows(2).all(|w| w[0].distance <= w[1].distance), "sorted by distance");
});
