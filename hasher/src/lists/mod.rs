//! Hash lists as the exchanges publish them.
//!
//! Hash exchanges do not agree on a file format: NCMEC's hash-sharing API
//! answers XML, StopNCII and ThreatExchange answer JSON, python-threatexchange
//! prints CSV or bare signals, Meta's `pdq-photo-hasher` prints
//! `hash,quality,file`, and hashgate's own lists are `TYPE,HASH[,ID]` lines.
//! This module reads each of them into one shape, a sequence of
//! [`Change`]s (add an entry, delete entries by id or by hash), so that a
//! full export and an incremental feed are the same thing: a feed is applied
//! on top of the list it updates ([`ListState`]), and the index built from
//! the result goes to KV through `hashgate index diff` like any other build.
//!
//! The format is recognised from the content ([`detect`]), never from the
//! file name, and the caller may name it instead ([`Format`] parses the
//! names `--format` takes). Parsing is pure (text in, changes out) and
//! strict about content: a record that cannot be read is a [`RecordError`]
//! naming its line and what was expected there, and the rest of the file is
//! still read so that one run reports every bad record. Records of hash
//! types hashgate does not match (PhotoDNA, video TMK, URLs, text) are not
//! errors: they are counted in [`ListFile::skipped`] by type.
//!
//! One file per format: [`hashgate`] (with ThreatExchange's `HASH_PDQ`-style
//! type names), [`tx_dataset`] (python-threatexchange `dataset -P --csv` and
//! `-S`), [`te_updates`] (ThreatExchange `/threat_updates` JSON),
//! [`ncmec`] (NCMEC hash-sharing XML), [`stopncii`] (StopNCII fetch JSON),
//! [`pdq_photo_hasher`].

pub mod detect;
pub mod hashgate;
mod json_records;
pub mod ncmec;
pub mod pdq_photo_hasher;
pub mod stopncii;
pub mod te_updates;
pub mod tx_dataset;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::hashes::HashKind;
use crate::index::lists::MAX_ID_BYTES;
use crate::index::{ListEntry, TypedHash};

pub use detect::detect;

/// A list file format hashgate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `TYPE,HASH[,ID]` lines; TYPE is hashgate's (`pdq`) or ThreatExchange's
    /// descriptor type (`HASH_PDQ`).
    Hashgate,
    /// python-threatexchange `dataset -P --csv`:
    /// `collab,signal_type,signal_str,category,tags` with a header.
    TxDatasetCsv,
    /// python-threatexchange `dataset -P -S`: `[SIGNAL_TYPE ]SIGNAL` lines.
    TxSignals,
    /// ThreatExchange `/threat_updates` JSON (adds and `should_delete`).
    TeUpdates,
    /// NCMEC hash-sharing `/v2/entries` XML (entries and deleted entries).
    Ncmec,
    /// StopNCII `FetchHashes` JSON.
    StopNcii,
    /// `pdq-photo-hasher` output: `HASH,QUALITY,FILE` lines.
    PdqPhotoHasher,
}

impl Format {
    /// Every format, in the order [`detect`] reports them.
    pub const ALL: [Format; 7] = [
        Format::Hashgate,
        Format::TxDatasetCsv,
        Format::TxSignals,
        Format::TeUpdates,
        Format::Ncmec,
        Format::StopNcii,
        Format::PdqPhotoHasher,
    ];

    /// The name `--format` takes and messages print.
    pub fn name(self) -> &'static str {
        match self {
            Format::Hashgate => "hashgate",
            Format::TxDatasetCsv => "tx-dataset-csv",
            Format::TxSignals => "tx-signals",
            Format::TeUpdates => "te-updates",
            Format::Ncmec => "ncmec",
            Format::StopNcii => "stopncii",
            Format::PdqPhotoHasher => "pdq-photo-hasher",
        }
    }

    /// What the format is, for people.
    pub fn description(self) -> &'static str {
        match self {
            Format::Hashgate => "TYPE,HASH[,ID] lines",
            Format::TxDatasetCsv => "python-threatexchange dataset CSV",
            Format::TxSignals => "python-threatexchange dataset -S signals",
            Format::TeUpdates => "ThreatExchange threat_updates JSON",
            Format::Ncmec => "NCMEC hash-sharing XML",
            Format::StopNcii => "StopNCII fetch JSON",
            Format::PdqPhotoHasher => "pdq-photo-hasher hash,quality,file lines",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown list format {text:?} (expected {})",
                    names.join(", ")
                )
            })
    }
}

/// Which entries a deletion removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every entry with this id (NCMEC and ThreatExchange delete by id).
    Id(String),
    /// Every entry with this hash (StopNCII withdraws a hash).
    Hash(TypedHash),
}

/// One change a file makes to a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add(ListEntry),
    Delete { target: Target, line: usize },
}

/// A record that could not be read: its line, and what was expected there
/// against what was found.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct RecordError {
    /// 1-based line of the record (its start, for XML and JSON).
    pub line: usize,
    /// "expected ..., found ..." (or the hash parser's own words).
    pub problem: String,
}

impl RecordError {
    pub(crate) fn new(line: usize, expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        RecordError {
            line,
            problem: format!("expected {expected}, found {found}"),
        }
    }
}

/// Why a file could not be read at all.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    #[error(
        "line {line}: cannot tell the list format from {found:?}; expected one of: {}",
        expected_formats()
    )]
    Unrecognised { line: usize, found: String },
    #[error("the file has no entries to tell its format from")]
    Empty,
    /// The file's structure (JSON, XML, CSV header) is broken.
    #[error("{format}: {error}")]
    Malformed {
        format: Format,
        #[source]
        error: RecordError,
    },
}

fn expected_formats() -> String {
    let parts: Vec<String> = Format::ALL
        .iter()
        .map(|f| format!("{} ({})", f.name(), f.description()))
        .collect();
    parts.join("; ")
}

/// What reading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFile {
    pub format: Format,
    /// The changes, in file order.
    pub changes: Vec<Change>,
    /// Records refused, each with its line.
    pub errors: Vec<RecordError>,
    /// Records of hash types hashgate does not match, counted by type name.
    pub skipped: BTreeMap<String, usize>,
}

impl ListFile {
    fn new(format: Format) -> Self {
        ListFile {
            format,
            changes: Vec::new(),
            errors: Vec::new(),
            skipped: BTreeMap::new(),
        }
    }

    pub(crate) fn skip(&mut self, kind: &str) {
        *self.skipped.entry(kind.to_owned()).or_default() += 1;
    }

    pub(crate) fn add(&mut self, hash: TypedHash, id: Option<String>, line: usize) {
        self.changes.push(Change::Add(ListEntry { hash, id, line }));
    }

    pub(crate) fn delete(&mut self, target: Target, line: usize) {
        self.changes.push(Change::Delete { target, line });
    }

    /// Entries added and deletions, for the summary line.
    pub fn counts(&self) -> (usize, usize) {
        let adds = self
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Add(_)))
            .count();
        (adds, self.changes.len() - adds)
    }
}

/// One row a CSV reader gave, with its line; a row it could not read is
/// a record error in `file` (and `None`: reading goes on).
pub(crate) fn csv_row(
    record: csv::Result<csv::StringRecord>,
    file: &mut ListFile,
) -> Option<(usize, csv::StringRecord)> {
    match record {
        Ok(record) => Some((record.position().map_or(0, |p| p.line() as usize), record)),
        Err(error) => {
            let line = error.position().map_or(0, |p| p.line() as usize);
            file.errors
                .push(RecordError::new(line, "a CSV row", error.to_string()));
            None
        }
    }
}

/// Reads `text` in `format`, or in the format [`detect`] recognises.
pub fn read(text: &str, format: Option<Format>) -> Result<ListFile, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let format = match format {
        Some(format) => format,
        // Nothing to read: an empty list (the build refuses it by name).
        None => match detect(text) {
            Err(ReadError::Empty) => return Ok(ListFile::new(Format::Hashgate)),
            detected => detected?,
        },
    };
    let malformed = |error| ReadError::Malformed { format, error };
    let mut file = ListFile::new(format);
    match format {
        Format::Hashgate => hashgate::read(text, &mut file),
        Format::TxDatasetCsv => tx_dataset::read_csv(text, &mut file).map_err(malformed)?,
        Format::TxSignals => tx_dataset::read_signals(text, &mut file),
        Format::TeUpdates => te_updates::read(text, &mut file).map_err(malformed)?,
        Format::Ncmec => ncmec::read(text, &mut file).map_err(malformed)?,
        Format::StopNcii => stopncii::read(text, &mut file).map_err(malformed)?,
        Format::PdqPhotoHasher => pdq_photo_hasher::read(text, &mut file).map_err(malformed)?,
    }
    Ok(file)
}

/// A hash of `kind` from text, or the error naming the line.
pub(crate) fn parse_hash(
    kind: HashKind,
    text: &str,
    line: usize,
) -> Result<TypedHash, RecordError> {
    TypedHash::parse(kind, text.trim()).map_err(|e| {
        RecordError::new(
            line,
            format!("a {kind} hash"),
            format!("{:?} ({e})", shorten(text)),
        )
    })
}

/// An entry id as the index keeps it: empty is none; too long or with
/// control characters is refused.
pub(crate) fn parse_id(text: &str, line: usize) -> Result<Option<String>, RecordError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_ID_BYTES {
        return Err(RecordError::new(
            line,
            format!("an id of at most {MAX_ID_BYTES} bytes"),
            format!("{} bytes", text.len()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(RecordError::new(
            line,
            "an id without control characters",
            format!("{:?}", shorten(text)),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// At most 80 characters of `text`, for messages.
pub(crate) fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push_str("...");
    }
    out
}

/// 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Why applying a feed to a list did something unexpected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub added: usize,
    /// Entries removed by deletions.
    pub removed: usize,
    /// Deletions that matched no entry (already gone, or never in this list).
    pub missed: usize,
}

/// A list being assembled from a full export and the feeds that update it,
/// applied in order. Deletions find their entries through an index by id and
/// by hash, so a feed of `d` deletions costs `O(d)`, not `O(d * n)`.
#[derive(Debug, Clone, Default)]
pub struct ListState {
    entries: Vec<Option<ListEntry>>,
    by_id: HashMap<String, Vec<usize>>,
    by_hash: HashMap<TypedHash, Vec<usize>>,
}

impl ListState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `changes` in order: an add appends, a delete removes every
    /// entry added so far with that id (or hash).
    pub fn apply(&mut self, changes: Vec<Change>) -> ApplySummary {
        let mut summary = ApplySummary::default();
        for change in changes {
            match change {
                Change::Add(entry) => {
                    summary.added += 1;
                    let at = self.entries.len();
                    if let Some(id) = &entry.id {
                        self.by_id.entry(id.clone()).or_default().push(at);
                    }
                    self.by_hash.entry(entry.hash).or_default().push(at);
                    self.entries.push(Some(entry));
                }
                Change::Delete { target, .. } => {
                    let positions = match &target {
                        Target::Id(id) => self.by_id.remove(id),
                        Target::Hash(hash) => self.by_hash.remove(hash),
                    };
                    let mut removed = 0;
                    for at in positions.into_iter().flatten() {
                        if let Some(slot) = self.entries.get_mut(at) {
                            removed += usize::from(slot.take().is_some());
                        }
                    }
                    summary.removed += removed;
                    summary.missed += usize::from(removed == 0);
                }
            }
        }
        summary
    }

    /// The entries now in the list, in the order they were added.
    pub fn into_entries(self) -> Vec<ListEntry> {
        self.entries.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests;
