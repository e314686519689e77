//! python-threatexchange's `threatexchange dataset -P` output.
//!
//! `--csv` prints a header `collab,signal_type,signal_str,category,tags`
//! and one CSV row per (collaboration, signal); fields may be quoted, so
//! the rows are read with the `csv` crate, never split by hand. `-S` prints
//! the signals alone, one a line, preceded by the signal type and a space
//! unless the output was limited to one type (`-s pdq`).
//!
//! Signal types are python-threatexchange's names: `pdq` is PDQ and
//! `video_md5` (and `photo_md5`, `md5`) an MD5 digest; `url`, `raw_text`,
//! `trend_query`, `url_md5` and the others are counted as skipped. A bare
//! signal is typed by its length: 64 hex digits are PDQ (python-threatexchange
//! has no SHA-256 signal type), 32 are MD5. Neither format carries an entry
//! id.

use super::{parse_hash, ListFile, RecordError};
use crate::hashes::HashKind;

/// Signal types python-threatexchange ships (the ones hashgate reads and
/// the ones it skips), lower case.
const SIGNAL_TYPES: &[&str] = &[
    "pdq",
    "video_md5",
    "photo_md5",
    "md5",
    "url",
    "url_md5",
    "raw_text",
    "trend_query",
    "video_tmk_pdqf",
    "vpdq",
    "facebook_tmk",
];

/// Whether `text` is a python-threatexchange signal type name.
pub fn is_signal_type(text: &str) -> bool {
    SIGNAL_TYPES.contains(&text.to_ascii_lowercase().as_str())
}

fn kind_of(signal_type: &str) -> Option<HashKind> {
    match signal_type.to_ascii_lowercase().as_str() {
        "pdq" => Some(HashKind::Pdq),
        "video_md5" | "photo_md5" | "md5" => Some(HashKind::Md5),
        _ => None,
    }
}

/// `dataset -P --csv`. A missing `signal_type` or `signal_str` column is
/// a malformed file; a bad row is a record error.
pub(super) fn read_csv(text: &str, file: &mut ListFile) -> Result<(), RecordError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| RecordError::new(1, "a CSV header", e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(type_at), Some(signal_at)) = (column("signal_type"), column("signal_str")) else {
        return Err(RecordError::new(
            1,
            "a header with signal_type and signal_str columns",
            format!("{:?}", headers.iter().collect::<Vec<_>>().join(",")),
        ));
    };
    for record in reader.records() {
        let Some((line, record)) = super::csv_row(record, file) else {
            continue;
        };
        let (Some(signal_type), Some(signal)) = (record.get(type_at), record.get(signal_at)) else {
            file.errors.push(RecordError::new(
                line,
                format!("at least {} fields", type_at.max(signal_at) + 1),
                format!("{} fields", record.len()),
            ));
            continue;
        };
        match kind_of(signal_type) {
            Some(kind) => match parse_hash(kind, signal, line) {
                Ok(hash) => file.add(hash, None, line),
                Err(error) => file.errors.push(error),
            },
            None if is_signal_type(signal_type) => file.skip(signal_type),
            None => file.errors.push(RecordError::new(
                line,
                "a python-threatexchange signal type (pdq, video_md5, ...)",
                format!("{:?}", super::shorten(signal_type)),
            )),
        }
    }
    Ok(())
}

/// `dataset -P -S`: `[SIGNAL_TYPE ]SIGNAL` lines.
pub(super) fn read_signals(text: &str, file: &mut ListFile) {
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (signal_type, signal) = match trimmed.split_once(char::is_whitespace) {
            Some((first, rest)) if is_signal_type(first) => (Some(first), rest.trim()),
            _ => (None, trimmed),
        };
        let kind = match signal_type {
            Some(signal_type) => match kind_of(signal_type) {
                Some(kind) => kind,
                None => {
                    file.skip(signal_type);
                    continue;
                }
            },
            None if super::detect::is_hex(signal, 64) => HashKind::Pdq,
            None if super::detect::is_hex(signal, 32) => HashKind::Md5,
            None => {
                file.errors.push(RecordError::new(
                    line,
                    "[SIGNAL_TYPE ]SIGNAL with a 64-digit PDQ or 32-digit MD5 signal",
                    format!("{:?}", super::shorten(trimmed)),
                ));
                continue;
            }
        };
        match parse_hash(kind, signal, line) {
            Ok(hash) => file.add(hash, None, line),
            Err(error) => file.errors.push(error),
        }
    }
}
