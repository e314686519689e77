//! KV values: compact binary, stored as base64 text.
//!
//! Workers KV's bulk read (100 keys per call) returns values as text or
//! JSON only, so every value is text: the binary record below, base64
//! without padding (4/3 of the binary size). JSON with hex hashes would be
//! about 2.5 times larger, and bytes read per query is what the layout
//! optimises.
//!
//! Every value is self-contained (a bucket carries the names of the lists it
//! mentions), so an index updated key by key is consistent key by key, and
//! no catalogue key has to be read first.
//!
//! ```text
//! varint  = unsigned LEB128 (1 byte below 128)
//! string  = varint length, UTF-8 bytes
//!
//! PDQ bucket (tag 1) / vec72 table (tag 3):
//!   u8 tag, varint L, L x string (list names),
//!   varint E, E x row (30 bytes: the PDQ hash without the bucket's own
//!   2-byte chunk | 72 bytes: the vector),
//!   E x memberships (varint M >= 1, M x (varint list index < L, string id))
//!   rows sorted by hash; an empty id means none
//!
//! exact record (tag 2):
//!   u8 tag, varint M, M x (string list, string id),
//!   u8 allow (0 none, 1 every list, 2 named lists), [if 2: varint A, A x string]
//! ```
//!
//! A PDQ entry in one list without an id costs 33 bytes, 44 as text, in each
//! of its 16 buckets; with each bucket's header, 44.8 bytes per entry and
//! 731 bytes of KV per hash were measured at `N = 10^6` (an id adds its
//! length plus a third, 16 times). Rows come first and have a
//! fixed width so the distance scan walks one contiguous slice; memberships
//! are only decoded for rows within the threshold.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use super::{ListName, Membership};
use crate::hashes::PdqHash;

const TAG_BUCKET: u8 = 1;
const TAG_EXACT: u8 = 2;
const TAG_VEC72: u8 = 3;

/// Bytes of a bucket row: a PDQ hash less its 2-byte chunk.
pub const BUCKET_ROW_BYTES: usize = 30;
/// Bytes of a vec72 row.
pub const VEC72_ROW_BYTES: usize = 72;

/// Why a stored value could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("value is not base64")]
    NotBase64,
    #[error("value ends early")]
    Truncated,
    #[error("expected record tag {expected}, found {found}")]
    WrongTag { expected: u8, found: u8 },
    #[error("a string is not UTF-8")]
    NotUtf8,
    #[error("list index {index} out of range ({lists} lists)")]
    BadListIndex { index: usize, lists: usize },
    #[error("length field overflows")]
    Overflow,
    #[error("{0} bytes left after the record")]
    TrailingBytes(usize),
    #[error("unknown allow flag {0}")]
    BadAllowFlag(u8),
}

/// Whether an exact hash is on the allowlist, and for which lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Allowance {
    #[default]
    None,
    AllLists,
    Lists(Vec<ListName>),
}

/// The decoded exact record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactRecord {
    pub memberships: Vec<Membership>,
    pub allowance: Allowance,
}

// ---------------------------------------------------------------- writing

struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: usize) {
        while value >= 0x80 {
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn string(&mut self, text: &str) {
        self.varint(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn text(self) -> String {
        STANDARD_NO_PAD.encode(self.0)
    }
}

/// One row of an entry table before encoding.
pub struct TableRow<'a> {
    pub row: &'a [u8],
    pub memberships: &'a [Membership],
}

/// Encodes an entry table (bucket or vec72). Rows must be sorted and each
/// have at least one membership.
fn encode_table(tag: u8, rows: &[TableRow<'_>]) -> String {
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.memberships.iter().map(|m| m.list.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let width = rows.first().map_or(0, |r| r.row.len());
    let mut out = Writer(Vec::with_capacity(8 + rows.len() * (width + 3)));
    out.0.push(tag);
    out.varint(names.len());
    for name in &names {
        out.string(name);
    }
    out.varint(rows.len());
    for row in rows {
        out.0.extend_from_slice(row.row);
    }
    for row in rows {
        out.varint(row.memberships.len());
        for membership in row.memberships {
            let index = names
                .binary_search(&membership.list.as_str())
                .unwrap_or_default();
            out.varint(index);
            out.string(membership.id.as_deref().unwrap_or(""));
        }
    }
    out.text()
}

/// The 30 bytes of `hash` that bucket `chunk` stores.
pub fn bucket_row(hash: &PdqHash, chunk: usize) -> [u8; BUCKET_ROW_BYTES] {
    let mut row = [0u8; BUCKET_ROW_BYTES];
    row[..2 * chunk].copy_from_slice(&hash.0[..2 * chunk]);
    row[2 * chunk..].copy_from_slice(&hash.0[2 * chunk + 2..]);
    row
}

/// Rebuilds a hash from a bucket row and the bucket's chunk value.
pub fn hash_from_bucket_row(row: &[u8], chunk: usize, value: u16) -> PdqHash {
    let mut hash = [0u8; 32];
    hash[..2 * chunk].copy_from_slice(&row[..2 * chunk]);
    hash[2 * chunk..2 * chunk + 2].copy_from_slice(&value.to_be_bytes());
    hash[2 * chunk + 2..].copy_from_slice(&row[2 * chunk..BUCKET_ROW_BYTES]);
    PdqHash(hash)
}

/// Encodes a PDQ bucket; rows are [`bucket_row`]s, sorted.
pub fn encode_bucket(rows: &[TableRow<'_>]) -> String {
    encode_table(TAG_BUCKET, rows)
}

/// Encodes the vec72 table; rows are the 72-byte vectors, sorted.
pub fn encode_vec72_table(rows: &[TableRow<'_>]) -> String {
    encode_table(TAG_VEC72, rows)
}

/// Encodes an exact record.
pub fn encode_exact(record: &ExactRecord) -> String {
    let mut out = Writer(Vec::new());
    out.0.push(TAG_EXACT);
    out.varint(record.memberships.len());
    for membership in &record.memberships {
        out.string(&membership.list);
        out.string(membership.id.as_deref().unwrap_or(""));
    }
    match &record.allowance {
        Allowance::None => out.0.push(0),
        Allowance::AllLists => out.0.push(1),
        Allowance::Lists(lists) => {
            out.0.push(2);
            out.varint(lists.len());
            for list in lists {
                out.string(list);
            }
        }
    }
    out.text()
}

// ---------------------------------------------------------------- reading

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, RecordError> {
        let byte = *self.bytes.get(self.at).ok_or(RecordError::Truncated)?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<usize, RecordError> {
        let mut value = 0usize;
        for shift in (0..).step_by(7) {
            if shift > 28 {
                return Err(RecordError::Overflow);
            }
            let byte = self.u8()?;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        Ok(value)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        let end = self.at.checked_add(len).ok_or(RecordError::Overflow)?;
        let slice = self.bytes.get(self.at..end).ok_or(RecordError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn string(&mut self) -> Result<&'a str, RecordError> {
        let len = self.varint()?;
        std::str::from_utf8(self.take(len)?).map_err(|_| RecordError::NotUtf8)
    }

    fn tag(&mut self, expected: u8) -> Result<(), RecordError> {
        let found = self.u8()?;
        if found == expected {
            Ok(())
        } else {
            Err(RecordError::WrongTag { expected, found })
        }
    }

    fn finish(&self) -> Result<(), RecordError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            left => Err(RecordError::TrailingBytes(left)),
        }
    }
}

/// Base64 text to the binary record.
pub fn decode_text(value: &[u8]) -> Result<Vec<u8>, RecordError> {
    STANDARD_NO_PAD
        .decode(value)
        .map_err(|_| RecordError::NotBase64)
}

/// A decoded entry table (bucket or vec72), borrowing the binary record.
#[derive(Debug)]
pub struct TableView<'a> {
    names: Vec<&'a str>,
    width: usize,
    rows: &'a [u8],
    /// Start of each row's memberships within `memberships`, filled by
    /// [`TableView::parse`] so that each row is reachable in O(1).
    membership_starts: Vec<usize>,
    memberships: &'a [u8],
}

impl<'a> TableView<'a> {
    fn parse(bytes: &'a [u8], tag: u8, width: usize) -> Result<Self, RecordError> {
        let mut reader = Reader { bytes, at: 0 };
        reader.tag(tag)?;
        let name_count = reader.varint()?;
        let mut names = Vec::with_capacity(name_count.min(64));
        for _ in 0..name_count {
            names.push(reader.string()?);
        }
        let row_count = reader.varint()?;
        let rows = reader.take(row_count.checked_mul(width).ok_or(RecordError::Overflow)?)?;
        let memberships_start = reader.at;
        let mut membership_starts = Vec::with_capacity(row_count);
        for _ in 0..row_count {
            membership_starts.push(reader.at - memberships_start);
            let count = reader.varint()?;
            for _ in 0..count {
                let index = reader.varint()?;
                if index >= names.len() {
                    return Err(RecordError::BadListIndex {
                        index,
                        lists: names.len(),
                    });
                }
                reader.string()?;
            }
        }
        reader.finish()?;
        Ok(TableView {
            names,
            width,
            rows,
            membership_starts,
            memberships: &bytes[memberships_start..],
        })
    }

    /// Reads a PDQ bucket record (binary, after [`decode_text`]).
    pub fn bucket(bytes: &'a [u8]) -> Result<Self, RecordError> {
        Self::parse(bytes, TAG_BUCKET, BUCKET_ROW_BYTES)
    }

    /// Reads the vec72 table (binary, after [`decode_text`]).
    pub fn vec72(bytes: &'a [u8]) -> Result<Self, RecordError> {
        Self::parse(bytes, TAG_VEC72, VEC72_ROW_BYTES)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.membership_starts.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.membership_starts.is_empty()
    }

    /// The rows, in order, each `width` bytes.
    pub fn rows(&self) -> std::slice::ChunksExact<'a, u8> {
        self.rows.chunks_exact(self.width)
    }

    /// The memberships of row `index` as (list name, id). Validated by
    /// [`TableView::parse`], so reading again cannot fail.
    pub fn memberships(&self, index: usize) -> Vec<(&'a str, Option<&'a str>)> {
        let mut reader = Reader {
            bytes: self.memberships,
            at: self
                .membership_starts
                .get(index)
                .copied()
                .unwrap_or(self.memberships.len()),
        };
        let count = reader.varint().unwrap_or(0);
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let (Ok(list), Ok(id)) = (reader.varint(), reader.string()) else {
                break;
            };
            let name = self.names.get(list).copied().unwrap_or_default();
            out.push((name, (!id.is_empty()).then_some(id)));
        }
        out
    }
}

/// Reads an exact record (binary, after [`decode_text`]).
pub fn decode_exact(bytes: &[u8]) -> Result<ExactRecord, RecordError> {
    let mut reader = Reader { bytes, at: 0 };
    reader.tag(TAG_EXACT)?;
    let count = reader.varint()?;
    let mut memberships = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let list = reader.string()?.to_owned();
        let id = reader.string()?;
        memberships.push(Membership {
            list,
            id: (!id.is_empty()).then(|| id.to_owned()),
        });
    }
    let allowance = match reader.u8()? {
        0 => Allowance::None,
        1 => Allowance::AllLists,
        2 => {
            let count = reader.varint()?;
            let mut lists = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                lists.push(reader.string()?.to_owned());
            }
            Allowance::Lists(lists)
        }
        flag => return Err(RecordError::BadAllowFlag(flag)),
    };
    reader.finish()?;
    Ok(ExactRecord {
        memberships,
        allowance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(list: &str, id: Option<&str>) -> Membership {
        Membership {
            list: list.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn bucket_round_trips() {
        let hash: PdqHash = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
            .parse()
            .unwrap();
        for chunk in [0, 7, 15] {
            let row = bucket_row(&hash, chunk);
            assert_eq!(hash_from_bucket_row(&row, chunk, hash.chunk16(chunk)), hash);
        }
        let a = [member("ncmec", Some("n-1")), member("iwf", None)];
        let b = [member("iwf", Some("i-9"))];
        let rows = [[1u8; 30], [2u8; 30]];
        let text = encode_bucket(&[
            TableRow {
                row: &rows[0],
                memberships: &a,
            },
            TableRow {
                row: &rows[1],
                memberships: &b,
            },
        ]);
        let bytes = decode_text(text.as_bytes()).unwrap();
        let view = TableView::bucket(&bytes).unwrap();
        assert_eq!(view.len(), 2);
        assert_eq!(view.rows().nth(1).unwrap(), &rows[1]);
        assert_eq!(
            view.memberships(0),
            vec![("ncmec", Some("n-1")), ("iwf", None)]
        );
        assert_eq!(view.memberships(1), vec![("iwf", Some("i-9"))]);
        // 1 tag + 1 + 2 names (4+6) + 1 count + 60 rows + memberships (1+1+4 +1+1, 1+1+4)
        assert_eq!(bytes.len(), 1 + 1 + 4 + 6 + 1 + 60 + 6 + 2 + 6);
    }

    #[test]
    fn exact_round_trips() {
        for allowance in [
            Allowance::None,
            Allowance::AllLists,
            Allowance::Lists(vec!["iwf".into()]),
        ] {
            let record = ExactRecord {
                memberships: vec![member("ncmec", Some("x")), member("iwf", None)],
                allowance,
            };
            let text = encode_exact(&record);
            assert_eq!(
                decode_exact(&decode_text(text.as_bytes()).unwrap()).unwrap(),
                record
            );
        }
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        assert_eq!(decode_text(b"not base64!"), Err(RecordError::NotBase64));
        assert_eq!(
            TableView::bucket(&[TAG_EXACT]).unwrap_err(),
            RecordError::WrongTag {
                expected: 1,
                found: 2
            }
        );
        assert_eq!(
            TableView::bucket(&[TAG_BUCKET, 0, 2, 0]).unwrap_err(),
            RecordError::Truncated
        );
        // one row, membership pointing at list 3 of 0
        let mut bad = vec![TAG_BUCKET, 0, 1];
        bad.extend_from_slice(&[0; 30]);
        bad.extend_from_slice(&[1, 3, 0]);
        assert_eq!(
            TableView::bucket(&bad).unwrap_err(),
            RecordError::BadListIndex { index: 3, lists: 0 }
        );
        assert_eq!(
            decode_exact(&[TAG_EXACT, 0, 0, 9]),
            Err(RecordError::TrailingBytes(1))
        );
        assert_eq!(
            decode_exact(&[TAG_EXACT, 0, 7]),
            Err(RecordError::BadAllowFlag(7))
        );
        assert_eq!(
            decode_exact(&[TAG_EXACT, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(RecordError::Overflow)
        );
    }
}
