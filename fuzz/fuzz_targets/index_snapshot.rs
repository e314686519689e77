//! Index snapshots: the bytes a worker reads from KV and `hashgate serve`
//! reads from disk, loaded into the resident index and queried.
//!
//! The fuzzer's bytes are tried twice: as they are (almost always refused
//! by the checksum), and resealed with a valid SHA-256 so the field checks
//! behind it are reached. Either way a load is a `SnapshotError` or an
//! index that answers queries, never a panic; and whatever loads must
//! answer exactly as a brute-force scan of its own PDQ hashes.

#![no_main]

use hashgate::index::{Query, ResidentIndex};
use hashgate::{HashKind, PdqHash};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn check(bytes: Vec<u8>) {
    let Ok(index) = ResidentIndex::load(bytes) else {
        return;
    };
    let snapshot = index.snapshot();
    let count = snapshot.count(HashKind::Pdq);
    let probe = if count > 0 {
        let mut hash = PdqHash::from_slice(snapshot.hash_at(HashKind::Pdq, 0)).expect("32 bytes");
        hash.0[5] ^= 0x11;
        hash
    } else {
        PdqHash::ZERO
    };
    let query = Query {
        pdq: vec![probe],
        pdq_threshold: 31,
        ..Query::default()
    };
    let found = index.find(&query).expect("threshold in range");
    let expected = (0..count)
        .filter(|&row| {
            let hash = PdqHash::from_slice(snapshot.hash_at(HashKind::Pdq, row)).expect("32 bytes");
            hash.distance(&probe) <= 31 && !snapshot.memberships(HashKind::Pdq, row).is_empty()
        })
        .count();
    let distinct: std::collections::BTreeSet<_> = found.iter().map(|m| m.hash).collect();
    if snapshot.allow().is_empty() {
        assert_eq!(distinct.len(), expected);
    } else {
        assert!(distinct.len() <= expected);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data.to_vec());
    let mut sealed = b"HGSNAP1\n".to_vec();
    sealed.extend_from_slice(data);
    let digest = Sha256::digest(&sealed);
    sealed.extend_from_slice(&digest);
    check(sealed);
});
