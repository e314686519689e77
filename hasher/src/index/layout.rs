//! Key names, and which PDQ buckets a threshold needs.
//!
//! ```text
//! hg1/meta                 JSON: format, lists and counts (for people and tools; queries never read it)
//! hg1/mih/<c>/<vvvv>       PDQ bucket: every list hash whose 16-bit chunk c (one hex digit, 0..f)
//!                          equals vvvv (four hex digits); 16 x 65,536 possible keys
//! hg1/md5/<hex>            exact record: lists (and ids) holding this digest, allowlist scopes
//! hg1/sha1/<hex>           "
//! hg1/sha256/<hex>         "
//! hg1/pdq/<hex>            allowlist scopes of one exact PDQ hash (list PDQ hashes live in buckets)
//! hg1/vec72                every vec72 entry in one value (scanned; for small lists)
//! ```
//!
//! Every key starts with [`PREFIX`]. A change of key layout or value
//! encoding takes a new prefix (`hg2/`), so a new index can be written next
//! to the old one and the worker switched over in one deploy, then the old
//! prefix deleted.
//!
//! # Why 16 chunks of 16 bits, keyed by the whole chunk
//!
//! Multi-index hashing splits the 256 bits into `m` chunks. If a list hash
//! is within `T` of the query, the chunks cannot all differ by more than
//! their probe radius `r_i` when `sum (r_i + 1) >= T + 1` (otherwise the
//! distance would be at least `T + 1`). A probe of radius 0 reads one key,
//! radius 1 reads 1 + 16 keys, radius -1 (chunk skipped) reads none. So for
//! `T <= 15` reading `T + 1` chunks exactly is enough, and each step above 15
//! widens one chunk to radius 1 for 16 more keys: [`probe_radii`] gives the
//! cheapest plan, `T + 1` keys up to `T = 15` and `16 + 16 (T - 15)` after,
//! 272 keys at `T = 31`.
//!
//! Alternatives at `T = 31`, measured on the same 10^6 random hashes by
//! `cargo bench -p hashgate --bench index` (which prints this comparison):
//!
//! | layout | keys read | entries read | bytes read |
//! |---|---|---|---|
//! | 16 chunks of 16 bits, key = whole chunk (chosen) | 272 | 4,149 | 0.19 MB |
//! | 16 chunks of 16 bits, key = top 14 bits | 240 | 14,640 | 0.66 MB |
//! | 16 chunks of 16 bits, key = top 12 bits | 208 | 50,770 | 2.3 MB |
//! | 32 chunks of 8 bits, exact | 32 | 124,971 | 5.6 MB |
//!
//! Coarser keys save few keys (the radius-1 neighbours of the low bits fall
//! in the same key) and multiply the bytes; 8-bit chunks need one bulk read
//! but 30 times the bytes. The chosen layout reads 272 keys in 3 bulk reads
//! and about `N / 65,536` entries per key: 0.19 MB at `10^6`, 1.9 MB at
//! `10^7`. Keys are finer than this only by splitting chunks further, which
//! the pigeonhole bound does not allow at `T = 31` without radius-2 probes
//! (136 keys per chunk).

use super::{ExactDigest, TypedHash};
use crate::hashes::PdqHash;

/// Version prefix of every key.
pub const PREFIX: &str = "hg1/";
/// The build's description (JSON).
pub const META_KEY: &str = "hg1/meta";
/// The single value holding every vec72 entry.
pub const VEC72_KEY: &str = "hg1/vec72";
/// Number of 16-bit chunks a PDQ hash is split into.
pub const CHUNKS: usize = 16;
/// Bits per chunk.
pub const CHUNK_BITS: u32 = 16;
/// The largest PDQ threshold the layout answers with exact recall.
pub const MAX_PDQ_THRESHOLD: u32 = 31;
/// Keys per Workers KV bulk read.
pub const KV_BATCH_LIMIT: usize = 100;
/// The largest value Workers KV stores (25 MiB).
pub const KV_VALUE_LIMIT: usize = 25 * 1024 * 1024;

/// How far from the query's chunk one chunk is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Not read at all.
    Skip,
    /// Only the bucket equal to the query's chunk (1 key).
    Exact,
    /// That bucket and the 16 that differ in one bit (17 keys).
    OneBit,
}

impl Probe {
    /// Keys read for one chunk.
    pub fn keys(self) -> usize {
        match self {
            Probe::Skip => 0,
            Probe::Exact => 1,
            Probe::OneBit => 1 + CHUNK_BITS as usize,
        }
    }
}

/// The cheapest probes that find every hash within `threshold` (0..=31).
/// Returns `None` above [`MAX_PDQ_THRESHOLD`].
pub fn probe_radii(threshold: u32) -> Option<[Probe; CHUNKS]> {
    if threshold > MAX_PDQ_THRESHOLD {
        return None;
    }
    let t = threshold as usize;
    let mut probes = [Probe::Skip; CHUNKS];
    for (chunk, probe) in probes.iter_mut().enumerate() {
        *probe = if t < CHUNKS {
            if chunk <= t {
                Probe::Exact
            } else {
                Probe::Skip
            }
        } else if chunk < t + 1 - CHUNKS {
            Probe::OneBit
        } else {
            Probe::Exact
        };
    }
    Some(probes)
}

/// Keys one PDQ hash costs at `threshold` (before sharing between hashes).
pub fn pdq_keys_for_threshold(threshold: u32) -> Option<usize> {
    probe_radii(threshold).map(|probes| probes.iter().map(|p| p.keys()).sum())
}

/// The chunk values a probe reads, for a query chunk value.
pub fn probe_values(value: u16, probe: Probe) -> impl Iterator<Item = u16> {
    let flips: &[u16] = match probe {
        Probe::Skip => &[],
        Probe::Exact => &[0],
        Probe::OneBit => &[
            0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
        ],
    };
    flips.iter().map(move |flip| value ^ flip)
}

/// The key of PDQ bucket (`chunk`, `value`).
pub fn bucket_key(chunk: usize, value: u16) -> String {
    format!("{PREFIX}mih/{chunk:x}/{value:04x}")
}

/// The key of the exact record of a digest.
pub fn exact_key(digest: &ExactDigest) -> String {
    let hash = TypedHash::from(*digest);
    format!("{PREFIX}{}/{hash}", hash.kind())
}

/// The key of the allowlist record of one exact PDQ hash.
pub fn pdq_allow_key(hash: &PdqHash) -> String {
    format!("{PREFIX}pdq/{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_radii_cover_threshold_plus_one() {
        for t in 0..=MAX_PDQ_THRESHOLD {
            let probes = probe_radii(t).unwrap();
            let covered: u32 = probes
                .iter()
                .map(|p| match p {
                    Probe::Skip => 0,
                    Probe::Exact => 1,
                    Probe::OneBit => 2,
                })
                .sum();
            assert_eq!(covered, t + 1, "threshold {t}");
        }
        assert_eq!(probe_radii(32), None);
    }

    #[test]
    fn key_counts() {
        assert_eq!(pdq_keys_for_threshold(0), Some(1));
        assert_eq!(pdq_keys_for_threshold(10), Some(11));
        assert_eq!(pdq_keys_for_threshold(15), Some(16));
        assert_eq!(pdq_keys_for_threshold(16), Some(32));
        assert_eq!(pdq_keys_for_threshold(31), Some(272));
    }

    #[test]
    fn probe_values_differ_by_at_most_one_bit() {
        let values: Vec<u16> = probe_values(0xa3f2, Probe::OneBit).collect();
        assert_eq!(values.len(), 17);
        assert!(values.iter().all(|v| (v ^ 0xa3f2).count_ones() <= 1));
        let unique: std::collections::BTreeSet<u16> = values.iter().copied().collect();
        assert_eq!(unique.len(), 17);
    }

    #[test]
    fn key_names() {
        assert_eq!(bucket_key(10, 0x3f2c), "hg1/mih/a/3f2c");
        let md5: crate::Md5Digest = "d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
        assert_eq!(
            exact_key(&ExactDigest::Md5(md5)),
            "hg1/md5/d41d8cd98f00b204e9800998ecf8427e"
        );
        assert!(pdq_allow_key(&PdqHash::ZERO).starts_with("hg1/pdq/0000"));
    }
}
