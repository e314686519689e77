//! The hash index: named hash lists laid out as Workers KV records, and the
//! pure logic to query them.
//!
//! The worker and the native tools share everything here; none of it does
//! I/O. A query goes through three steps, the middle one being the caller's:
//!
//! 1. [`QueryPlan::new`] lists the KV keys a [`Query`] needs, in
//!    [`QueryPlan::batches`] of at most 100 (one Workers KV bulk read each);
//! 2. the caller reads those keys (Workers KV, or the local index file);
//! 3. [`QueryPlan::resolve`] turns the values read (missing keys are simply
//!    absent) into [`Match`]es: every list hash within the threshold in a
//!    subscribed list, nothing beyond it, minus allowlisted content.
//!
//! Building goes the other way: [`lists`] parses `TYPE,HASH[,ID]` files,
//! [`IndexBuilder`] turns lists and an allowlist into the full set of
//! records, and [`diff`] gives the puts and deletes between two builds, so an
//! update writes only the keys that changed.
//!
//! Modules, in data-flow order: [`lists`] (input files), [`layout`] (key
//! names, and why 16 chunks of 16 bits), [`record`] (value encoding and
//! sizes), [`build`], [`query`] (plan, resolve, costs), [`diff`].
//! `docs/index.md` has the measured figures.

pub mod build;
pub mod diff;
pub mod generation;
pub mod hygiene;
pub mod layout;
pub mod lists;
pub mod query;
pub mod record;
pub mod resident;
pub mod snapshot;
#[cfg(feature = "store")]
pub mod store;

use core::fmt;

use serde::{Serialize, Serializer};

use crate::hashes::{
    HashKind, Md5Digest, ParseHashError, PdqHash, Sha1Digest, Sha256Digest, Vec72,
};

pub use build::{BuildError, BuildSummary, BuiltIndex, IndexBuilder, KindCounts, MergedIndex};
pub use diff::{diff_sorted, Change, DiffError, DiffSummary};
pub use generation::{Layout, Manifest, CURRENT_KEY};
pub use hygiene::{Hygiene, DEFAULT_MIN_PDQ_QUALITY};
pub use layout::{KV_BATCH_LIMIT, MAX_PDQ_THRESHOLD, PREFIX};
pub use lists::{parse_allowlist, parse_hash_list, AllowEntry, AllowScope, LineError, ListEntry};
pub use query::{ListFilter, Match, MatchedBy, Query, QueryError, QueryPlan, ResolveError};
pub use record::RecordError;
pub use resident::ResidentIndex;
pub use snapshot::{Snapshot, SnapshotError};

/// A list's name (`ncmec`, `iwf`, ...), checked by
/// [`lists::validate_list_name`].
pub type ListName = String;

/// One list holding an entry, with the list's id for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Membership {
    pub list: ListName,
    pub id: Option<String>,
}

/// A hash of any kind hashgate indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypedHash {
    Pdq(PdqHash),
    Md5(Md5Digest),
    Sha1(Sha1Digest),
    Sha256(Sha256Digest),
    Vec72(Vec72),
}

impl TypedHash {
    /// Parses hex text as a hash of `kind`.
    pub fn parse(kind: HashKind, text: &str) -> Result<Self, ParseHashError> {
        Ok(match kind {
            HashKind::Pdq => TypedHash::Pdq(text.parse()?),
            HashKind::Md5 => TypedHash::Md5(text.parse()?),
            HashKind::Sha1 => TypedHash::Sha1(text.parse()?),
            HashKind::Sha256 => TypedHash::Sha256(text.parse()?),
            HashKind::Vec72 => TypedHash::Vec72(text.parse()?),
        })
    }

    /// Which kind of hash this is.
    pub fn kind(&self) -> HashKind {
        match self {
            TypedHash::Pdq(_) => HashKind::Pdq,
            TypedHash::Md5(_) => HashKind::Md5,
            TypedHash::Sha1(_) => HashKind::Sha1,
            TypedHash::Sha256(_) => HashKind::Sha256,
            TypedHash::Vec72(_) => HashKind::Vec72,
        }
    }
}

impl fmt::Display for TypedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedHash::Pdq(h) => h.fmt(f),
            TypedHash::Md5(h) => h.fmt(f),
            TypedHash::Sha1(h) => h.fmt(f),
            TypedHash::Sha256(h) => h.fmt(f),
            TypedHash::Vec72(h) => h.fmt(f),
        }
    }
}

/// Serialized as its hex text (the kind travels in a separate field).
impl Serialize for TypedHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A digest matched by equality: one KV read each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExactDigest {
    Md5(Md5Digest),
    Sha1(Sha1Digest),
    Sha256(Sha256Digest),
}

impl From<ExactDigest> for TypedHash {
    fn from(digest: ExactDigest) -> Self {
        match digest {
            ExactDigest::Md5(h) => TypedHash::Md5(h),
            ExactDigest::Sha1(h) => TypedHash::Sha1(h),
            ExactDigest::Sha256(h) => TypedHash::Sha256(h),
        }
    }
}

impl TryFrom<TypedHash> for ExactDigest {
    type Error = TypedHash;
    /// Fails (giving the hash back) for PDQ and vec72, which match by distance.
    fn try_from(hash: TypedHash) -> Result<Self, Self::Error> {
        match hash {
            TypedHash::Md5(h) => Ok(ExactDigest::Md5(h)),
            TypedHash::Sha1(h) => Ok(ExactDigest::Sha1(h)),
            TypedHash::Sha256(h) => Ok(ExactDigest::Sha256(h)),
            other => Err(other),
        }
    }
}
