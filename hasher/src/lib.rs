//! hashgate's hasher: image bytes to perceptual and exact hashes.
//!
//! Pure computation with no I/O, so the same code runs in the edge worker
//! (wasm32) and in the native `hashgate` command and service.
//!
//! * [`decode`]: format sniffing and safe decoding to luma, under [`Limits`];
//! * [`pdq`]: Meta's PDQ, stage by stage, bit-identical to the reference on
//!   the same pixels, plus the 8 dihedral variants;
//! * [`digest`]: MD5, SHA-1 and SHA-256 of the raw bytes;
//! * [`hashes`]: the hash types, their text form and distances;
//! * [`hash_image`]: all of the above in one call, with the query hashes of
//!   what a viewer sees ([`views`]: alpha composited, animation frames,
//!   images embedded in an SVG);
//! * [`index`]: hash lists as Workers KV records, and the pure query logic
//!   (which keys to read, how values become matches) the worker shares.

pub mod cybertip;
pub mod decode;
pub mod digest;
pub mod error;
pub mod evidence;
pub mod hashes;
mod image_hashes;
pub mod index;
pub mod limits;
#[cfg(feature = "lists")]
pub mod lists;
pub mod matching;
#[cfg(feature = "overrides")]
pub mod overrides;
pub mod pdq;
pub mod variants;
pub mod views;

pub use decode::{sniff, DecodeOptions, ImageFormat, Reduction};
pub use error::HashError;
pub use hashes::{HashKind, Md5Digest, ParseHashError, PdqHash, Sha1Digest, Sha256Digest, Vec72};
pub use image_hashes::{hash_image, hash_image_with_digests, HashOptions, ImageHashes};
pub use limits::Limits;
pub use variants::QuerySet;
