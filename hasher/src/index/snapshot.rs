//! The whole index as one checksummed binary document: what the worker
//! keeps in memory and what `hashgate serve`, `scan` and `match` load.
//!
//! Why one document: Workers KV bills every key read, and the bucket layout
//! ([`super::layout`]) reads 272 keys per PDQ query hash at `T = 31`, about
//! 1,900 for an image with its dihedral variants. A snapshot of 10^6 PDQ
//! hashes is about 37 MB (32 bytes a hash plus memberships): an isolate reads
//! it once per index generation in a few large values and then answers every
//! image from memory ([`super::resident`]) with no key read at all. The same
//! bytes are the native index file, so the command line and the edge hold the
//! same index in the same form.
//!
//! ```text
//! magic      "HGSNAP2\n"
//! u32        L, then L x (u16 length, UTF-8 list name)
//! 5 x u32    entries per kind, in the order pdq, md5, sha1, sha256, vec72
//! hashes     for each kind in that order, its hashes sorted ascending,
//!            fixed width (32, 16, 20, 32, 72 bytes)
//! u32 x (E + 1)  offsets of each entry's memberships (E = all entries, in
//!            the order above) into the membership bytes, then their end
//! memberships  per entry: u16 M >= 1, M x (u16 list index, u16 id length,
//!            id bytes); id length 0xffff means no id. One list may appear
//!            several times with different ids (a hash the list carries
//!            under several cases)
//! u32        A, then A x (u8 kind, hash bytes, u8 scope, u16 S, S x u16
//!            list index): allowlisted hashes; scope 1 = every list
//! sha256     of every byte above
//! ```
//!
//! All integers little-endian. [`Snapshot::parse`] checks the digest before
//! anything else, so a file with one byte changed is refused as a whole
//! (rather than losing one hash silently), then every length and offset
//! against the bytes that are there: a snapshot from anywhere may be handed
//! to it.

use std::collections::BTreeMap;
use std::ops::Range;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::record::Allowance;
use super::{ListName, Membership, TypedHash};
use crate::hashes::HashKind;

/// The first bytes of every snapshot.
///
/// Version 2 (`HGSNAP2`) widened the membership count from u8 to u16 when
/// a hash started keeping every id a list gives it; a version 1 snapshot is
/// refused as `BadMagic` (rebuild with `hashgate index build`).
pub const MAGIC: &[u8; 8] = b"HGSNAP2\n";
/// Bytes of the trailing SHA-256.
const DIGEST_BYTES: usize = 32;
/// Id length that means "no id".
const NO_ID: u16 = u16::MAX;
/// Kinds in the order their sections are stored.
pub const KIND_ORDER: [HashKind; 5] = [
    HashKind::Pdq,
    HashKind::Md5,
    HashKind::Sha1,
    HashKind::Sha256,
    HashKind::Vec72,
];

/// Width in bytes of a stored hash of `kind`.
pub fn hash_width(kind: HashKind) -> usize {
    match kind {
        HashKind::Pdq => 32,
        HashKind::Md5 => 16,
        HashKind::Sha1 => 20,
        HashKind::Sha256 => 32,
        HashKind::Vec72 => 72,
    }
}

fn kind_slot(kind: HashKind) -> usize {
    KIND_ORDER.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Why bytes are not a usable snapshot.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a hashgate index snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot is {0} bytes, too short to hold its header and checksum")]
    TooShort(usize),
    #[error("snapshot checksum does not match its contents (corrupt or cut short)")]
    ChecksumMismatch,
    #[error("snapshot ends early in its {0}")]
    Truncated(&'static str),
    #[error("snapshot list name is not UTF-8")]
    NotUtf8,
    #[error("snapshot refers to list {index}, but has {lists} lists")]
    BadListIndex { index: usize, lists: usize },
    #[error("snapshot membership offsets are not in order")]
    BadOffsets,
    #[error("snapshot has an entry with no list")]
    EmptyEntry,
    #[error("snapshot has an unknown hash kind {0}")]
    BadKind(u8),
    #[error("snapshot has {0} bytes after its allowlist")]
    TrailingBytes(usize),
    #[error("{0} does not fit a snapshot's u32/u16 fields")]
    TooLarge(&'static str),
}

/// Encodes merged entries (sorted by hash, each with at least one
/// membership) and the allowlist as a snapshot.
pub fn encode(
    lists: &[ListName],
    entries: &[(TypedHash, Vec<Membership>)],
    allow: &BTreeMap<TypedHash, Allowance>,
) -> Result<Vec<u8>, SnapshotError> {
    let list_index = |name: &str| -> Result<u16, SnapshotError> {
        let index = lists
            .iter()
            .position(|l| l == name)
            .ok_or(SnapshotError::BadListIndex {
                index: usize::MAX,
                lists: lists.len(),
            })?;
        u16::try_from(index).map_err(|_| SnapshotError::TooLarge("list count"))
    };
    let mut by_kind: [Vec<&(TypedHash, Vec<Membership>)>; 5] = Default::default();
    for entry in entries {
        by_kind[kind_slot(entry.0.kind())].push(entry);
    }
    for section in &mut by_kind {
        section.sort_by_key(|entry| entry.0);
    }

    let mut out = Vec::with_capacity(64 + entries.len() * 40);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, lists.len(), "list count")?;
    for name in lists {
        let len = u16::try_from(name.len()).map_err(|_| SnapshotError::TooLarge("list name"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    for section in &by_kind {
        put_u32(&mut out, section.len(), "entry count")?;
    }
    for section in &by_kind {
        for (hash, _) in section {
            out.extend_from_slice(hash_bytes(hash));
        }
    }
    let mut members = Vec::new();
    let mut offsets = Vec::with_capacity(entries.len() + 1);
    for section in &by_kind {
        for (_, memberships) in section {
            offsets.push(members.len());
            let count = u16::try_from(memberships.len())
                .map_err(|_| SnapshotError::TooLarge("memberships of one hash"))?;
            if count == 0 {
                return Err(SnapshotError::EmptyEntry);
            }
            members.extend_from_slice(&count.to_le_bytes());
            for membership in memberships {
                members.extend_from_slice(&list_index(&membership.list)?.to_le_bytes());
                match &membership.id {
                    None => members.extend_from_slice(&NO_ID.to_le_bytes()),
                    Some(id) => {
                        let len = u16::try_from(id.len())
                            .ok()
                            .filter(|&len| len != NO_ID)
                            .ok_or(SnapshotError::TooLarge("entry id"))?;
                        members.extend_from_slice(&len.to_le_bytes());
                        members.extend_from_slice(id.as_bytes());
                    }
                }
            }
        }
    }
    offsets.push(members.len());
    for offset in offsets {
        put_u32(&mut out, offset, "membership bytes")?;
    }
    out.extend_from_slice(&members);
    put_u32(&mut out, allow.len(), "allowlist")?;
    for (hash, allowance) in allow {
        out.push(kind_code(hash.kind()));
        out.extend_from_slice(hash_bytes(hash));
        let (scope, named): (u8, &[ListName]) = match allowance {
            Allowance::AllLists => (1, &[]),
            Allowance::Lists(names) => (0, names),
            Allowance::None => (0, &[]),
        };
        out.push(scope);
        let count = u16::try_from(named.len()).map_err(|_| SnapshotError::TooLarge("lists"))?;
        out.extend_from_slice(&count.to_le_bytes());
        for name in named {
            out.extend_from_slice(&list_index(name)?.to_le_bytes());
        }
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

fn put_u32(out: &mut Vec<u8>, value: usize, what: &'static str) -> Result<(), SnapshotError> {
    let value = u32::try_from(value).map_err(|_| SnapshotError::TooLarge(what))?;
    out.extend_from_slice(&value.to_le_bytes());
    Ok(())
}

/// A hash's bytes as stored (its kind's width).
pub(crate) fn hash_bytes(hash: &TypedHash) -> &[u8] {
    match hash {
        TypedHash::Pdq(h) => &h.0,
        TypedHash::Md5(h) => &h.0,
        TypedHash::Sha1(h) => &h.0,
        TypedHash::Sha256(h) => &h.0,
        TypedHash::Vec72(h) => &h.0,
    }
}

fn kind_code(kind: HashKind) -> u8 {
    kind_slot(kind) as u8
}

/// A hash from its stored bytes (`bytes.len()` is the kind's width).
pub(crate) fn typed_hash(kind: HashKind, bytes: &[u8]) -> Option<TypedHash> {
    Some(match kind {
        HashKind::Pdq => TypedHash::Pdq(crate::hashes::PdqHash::from_slice(bytes)?),
        HashKind::Md5 => TypedHash::Md5(crate::hashes::Md5Digest::from_slice(bytes)?),
        HashKind::Sha1 => TypedHash::Sha1(crate::hashes::Sha1Digest::from_slice(bytes)?),
        HashKind::Sha256 => TypedHash::Sha256(crate::hashes::Sha256Digest::from_slice(bytes)?),
        HashKind::Vec72 => TypedHash::Vec72(crate::hashes::Vec72::from_slice(bytes)?),
    })
}

/// A parsed, verified snapshot: the bytes, and where each part lies in them.
/// Entries are read in place; nothing is copied but the list names and the
/// allowlist.
#[derive(Debug, Clone)]
pub struct Snapshot {
    bytes: Vec<u8>,
    lists: Vec<ListName>,
    /// Per kind (in [`KIND_ORDER`]): where its hashes lie, and the index of
    /// its first entry among all entries.
    sections: [(Range<usize>, usize); 5],
    offsets_at: usize,
    members_at: usize,
    members_len: usize,
    allow: BTreeMap<TypedHash, Allowance>,
}

/// Reads fields front to back, never past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(SnapshotError::Truncated(what))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, SnapshotError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, SnapshotError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

impl Snapshot {
    /// Verifies and indexes `bytes`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        if bytes.len() < MAGIC.len() + DIGEST_BYTES {
            return Err(SnapshotError::TooShort(bytes.len()));
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let body_len = bytes.len() - DIGEST_BYTES;
        if Sha256::digest(&bytes[..body_len]).as_slice() != &bytes[body_len..] {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let body = &bytes[..body_len];
        let mut cursor = Cursor {
            bytes: body,
            at: MAGIC.len(),
        };
        let list_count = cursor.u32("list table")?;
        let mut lists = Vec::with_capacity(list_count.min(4096));
        for _ in 0..list_count {
            let len = cursor.u16("list table")? as usize;
            let name = cursor.take(len, "list table")?;
            let name = std::str::from_utf8(name).map_err(|_| SnapshotError::NotUtf8)?;
            lists.push(name.to_owned());
        }
        let mut counts = [0usize; 5];
        for count in &mut counts {
            *count = cursor.u32("entry counts")?;
        }
        let mut sections: [(Range<usize>, usize); 5] = Default::default();
        let mut first_entry = 0usize;
        for (slot, kind) in KIND_ORDER.iter().enumerate() {
            let len = counts[slot]
                .checked_mul(hash_width(*kind))
                .ok_or(SnapshotError::Truncated("hashes"))?;
            let start = cursor.at;
            cursor.take(len, "hashes")?;
            sections[slot] = (start..cursor.at, first_entry);
            first_entry = first_entry
                .checked_add(counts[slot])
                .ok_or(SnapshotError::Truncated("hashes"))?;
        }
        let total = first_entry;
        let offsets_at = cursor.at;
        let offsets_len = (total + 1)
            .checked_mul(4)
            .ok_or(SnapshotError::Truncated("membership offsets"))?;
        cursor.take(offsets_len, "membership offsets")?;
        let read_offset = |i: usize| {
            let at = offsets_at + 4 * i;
            u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize
        };
        let members_len = read_offset(total);
        let members_at = cursor.at;
        let members = cursor.take(members_len, "memberships")?;
        // Every entry's memberships must be well formed: checked once here,
        // so queries can read them without re-checking.
        let mut previous = 0usize;
        for i in 0..total {
            let (start, end) = (read_offset(i), read_offset(i + 1));
            if start != previous || end < start || end > members_len {
                return Err(SnapshotError::BadOffsets);
            }
            previous = end;
            check_memberships(&members[start..end], lists.len())?;
        }
        let allow_count = cursor.u32("allowlist")?;
        let mut allow = BTreeMap::new();
        for _ in 0..allow_count {
            let code = cursor.u8("allowlist")?;
            let kind = *KIND_ORDER
                .get(code as usize)
                .ok_or(SnapshotError::BadKind(code))?;
            let raw = cursor.take(hash_width(kind), "allowlist")?;
            let hash = typed_hash(kind, raw).ok_or(SnapshotError::Truncated("allowlist"))?;
            let scope = cursor.u8("allowlist")?;
            let named = cursor.u16("allowlist")?;
            let mut names = Vec::with_capacity(named as usize);
            for _ in 0..named {
                let index = cursor.u16("allowlist")? as usize;
                let name = lists.get(index).ok_or(SnapshotError::BadListIndex {
                    index,
                    lists: lists.len(),
                })?;
                names.push(name.clone());
            }
            let allowance = if scope == 1 {
                Allowance::AllLists
            } else {
                Allowance::Lists(names)
            };
            allow.insert(hash, allowance);
        }
        if cursor.at != body.len() {
            return Err(SnapshotError::TrailingBytes(body.len() - cursor.at));
        }
        Ok(Snapshot {
            bytes,
            lists,
            sections,
            offsets_at,
            members_at,
            members_len,
            allow,
        })
    }

    /// The snapshot's bytes, as stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The list names, in stored order.
    pub fn lists(&self) -> &[ListName] {
        &self.lists
    }

    /// Entries of `kind`.
    pub fn count(&self, kind: HashKind) -> usize {
        let (range, _) = &self.sections[kind_slot(kind)];
        range.len() / hash_width(kind)
    }

    /// The stored bytes of entry `row` of `kind` (rows sorted ascending).
    pub fn hash_at(&self, kind: HashKind, row: usize) -> &[u8] {
        let width = hash_width(kind);
        let (range, _) = &self.sections[kind_slot(kind)];
        let start = range.start + row * width;
        &self.bytes[start..start + width]
    }

    /// All stored hashes of `kind`, back to back.
    pub fn hashes(&self, kind: HashKind) -> &[u8] {
        let (range, _) = &self.sections[kind_slot(kind)];
        &self.bytes[range.clone()]
    }

    /// The row of `bytes` among the `kind` entries, if present.
    pub fn find(&self, kind: HashKind, bytes: &[u8]) -> Option<usize> {
        let width = hash_width(kind);
        let (mut low, mut high) = (0usize, self.count(kind));
        while low < high {
            let mid = low + (high - low) / 2;
            match self
                .hash_at(kind, mid)
                .cmp(&bytes[..width.min(bytes.len())])
            {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The (list, id) pairs of entry `row` of `kind`.
    pub fn memberships(&self, kind: HashKind, row: usize) -> Vec<(&str, Option<&str>)> {
        let (_, first) = &self.sections[kind_slot(kind)];
        let entry = first + row;
        let offset = |i: usize| {
            let at = self.offsets_at + 4 * i;
            let b = &self.bytes[at..at + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let members = &self.bytes[self.members_at..self.members_at + self.members_len];
        let slice = &members[offset(entry)..offset(entry + 1)];
        // Checked at parse time; a malformed slice cannot occur here, and
        // reading stops rather than panicking if it did.
        let mut out = Vec::new();
        let mut cursor = Cursor {
            bytes: slice,
            at: 0,
        };
        let Ok(count) = cursor.u16("memberships") else {
            return out;
        };
        for _ in 0..count {
            let (Ok(list), Ok(len)) = (cursor.u16("memberships"), cursor.u16("memberships")) else {
                break;
            };
            let id = if len == NO_ID {
                None
            } else {
                match cursor.take(len as usize, "memberships") {
                    Ok(id) => std::str::from_utf8(id).ok(),
                    Err(_) => break,
                }
            };
            if let Some(name) = self.lists.get(list as usize) {
                out.push((name.as_str(), id));
            }
        }
        out
    }

    /// The allowlist.
    pub fn allow(&self) -> &BTreeMap<TypedHash, Allowance> {
        &self.allow
    }
}

fn check_memberships(slice: &[u8], lists: usize) -> Result<(), SnapshotError> {
    let mut cursor = Cursor {
        bytes: slice,
        at: 0,
    };
    let count = cursor.u16("memberships")?;
    if count == 0 {
        return Err(SnapshotError::EmptyEntry);
    }
    for _ in 0..count {
        let index = cursor.u16("memberships")? as usize;
        if index >= lists {
            return Err(SnapshotError::BadListIndex { index, lists });
        }
        let len = cursor.u16("memberships")?;
        if len != NO_ID {
            let id = cursor.take(len as usize, "memberships")?;
            std::str::from_utf8(id).map_err(|_| SnapshotError::NotUtf8)?;
        }
    }
    if cursor.at != slice.len() {
        return Err(SnapshotError::BadOffsets);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::lists::{parse_allowlist, parse_hash_list};
    use crate::index::IndexBuilder;

    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

    fn sample() -> Vec<u8> {
        let mut builder = IndexBuilder::new();
        let a = parse_hash_list(&format!("pdq,{PDQ},a-1\nmd5,{MD5}\n"));
        let b = parse_hash_list(&format!("pdq,{PDQ},b-1\nsha1,{}\n", "ab".repeat(20)));
        builder.add_list("a", a.entries).unwrap();
        builder.add_list("b", b.entries).unwrap();
        builder.add_allowlist(parse_allowlist(&format!("sha256,{},b\n", "cd".repeat(32))).entries);
        builder.merge().unwrap().snapshot().unwrap()
    }

    #[test]
    fn round_trips_entries_memberships_and_the_allowlist() {
        let snapshot = Snapshot::parse(sample()).unwrap();
        assert_eq!(snapshot.lists(), ["a", "b"]);
        assert_eq!(snapshot.count(HashKind::Pdq), 1);
        assert_eq!(snapshot.count(HashKind::Md5), 1);
        assert_eq!(snapshot.count(HashKind::Sha1), 1);
        let pdq: crate::hashes::PdqHash = PDQ.parse().unwrap();
        let row = snapshot.find(HashKind::Pdq, &pdq.0).unwrap();
        assert_eq!(
            snapshot.memberships(HashKind::Pdq, row),
            vec![("a", Some("a-1")), ("b", Some("b-1"))]
        );
        let md5: crate::hashes::Md5Digest = MD5.parse().unwrap();
        let row = snapshot.find(HashKind::Md5, &md5.0).unwrap();
        assert_eq!(snapshot.memberships(HashKind::Md5, row), vec![("a", None)]);
        assert_eq!(snapshot.allow().len(), 1);
    }

    #[test]
    fn every_changed_byte_and_every_cut_is_refused() {
        let bytes = sample();
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x20;
            assert!(Snapshot::parse(changed).is_err(), "byte {at} changed");
            assert!(
                Snapshot::parse(bytes[..at].to_vec()).is_err(),
                "cut at {at}"
            );
        }
    }

    #[test]
    fn a_valid_checksum_over_inconsistent_fields_is_refused_too() {
        // A writer with a bug (or an attacker) can produce a correct digest
        // over nonsense: the fields are still checked against the bytes.
        let reseal = |mut body: Vec<u8>| {
            let digest = Sha256::digest(&body);
            body.extend_from_slice(&digest);
            body
        };
        let bytes = sample();
        let body = bytes[..bytes.len() - DIGEST_BYTES].to_vec();
        let mut huge_lists = body.clone();
        huge_lists[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Snapshot::parse(reseal(huge_lists)).is_err());
        let mut extra = body.clone();
        extra.push(0);
        assert_eq!(
            Snapshot::parse(reseal(extra)).unwrap_err(),
            SnapshotError::TrailingBytes(1)
        );
        assert!(Snapshot::parse(reseal(body)).is_ok());
    }
}
