//! Exact digests of the raw bytes, as industry hash lists (NCMEC, IWF) carry
//! them. They match only byte-identical files, so they are computed over the
//! input exactly as received, before any decoding.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::hashes::{Md5Digest, Sha1Digest, Sha256Digest};

/// MD5, SHA-1 and SHA-256 of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactDigests {
    pub md5: Md5Digest,
    pub sha1: Sha1Digest,
    pub sha256: Sha256Digest,
}

impl ExactDigests {
    /// Digests of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ExactDigests {
            md5: Md5Digest(Md5::digest(bytes).into()),
            sha1: Sha1Digest(Sha1::digest(bytes).into()),
            sha256: Sha256Digest(Sha256::digest(bytes).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_inputs() {
        let empty = ExactDigests::of(b"");
        assert_eq!(empty.md5.to_string(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            empty.sha1.to_string(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            empty.sha256.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let abc = ExactDigests::of(b"abc");
        assert_eq!(abc.md5.to_string(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            abc.sha256.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
