//! `TYPE,HASH[,ID]` lines: hashgate's own list format, which also takes
//! ThreatExchange's descriptor type names (`HASH_PDQ`, `HASH_MD5`,
//! `HASH_SHA1`, `HASH_SHA256`), the form tag-query tools print.
//!
//! The id is everything after the second comma (ids may contain commas);
//! fields may also be quoted as CSV quotes them (`pdq,"HEX","case, 1"`, as
//! spreadsheets export), and are then read as CSV (the `csv` crate), quotes
//! removed and doubled quotes undone. `#` lines and blank lines are
//! ignored. ThreatExchange types hashgate does
//! not match (`HASH_TMK`, `HASH_PHOTODNA`, `URI`, ...) are counted as
//! skipped; any other unknown type is an error.

use super::{parse_id, ListFile, RecordError};
use crate::hashes::HashKind;
use crate::index::lists::LineProblem;
use crate::index::TypedHash;

/// The error of a line, in the words `hashgate index build` has always
/// used for this format.
fn problem(line: usize, problem: LineProblem) -> RecordError {
    RecordError {
        line,
        problem: problem.to_string(),
    }
}

/// The hash kind a TYPE field names: hashgate's names in any case, or a
/// ThreatExchange descriptor type.
pub fn kind_of(field: &str) -> Option<HashKind> {
    let field = field.trim();
    if let Ok(kind) = field.parse::<HashKind>() {
        return Some(kind);
    }
    match field.to_ascii_uppercase().as_str() {
        "HASH_PDQ" => Some(HashKind::Pdq),
        "HASH_MD5" => Some(HashKind::Md5),
        "HASH_SHA1" => Some(HashKind::Sha1),
        "HASH_SHA256" => Some(HashKind::Sha256),
        _ => None,
    }
}

/// Whether `field` is a ThreatExchange type hashgate has no matcher for.
fn is_other_te_type(field: &str) -> bool {
    let upper = field.trim();
    upper.starts_with("HASH_")
        || matches!(
            upper,
            "URI" | "DEBUG_STRING" | "DOMAIN" | "IP_ADDRESS" | "TEXT_STRING"
        )
}

pub(super) fn read(text: &str, file: &mut ListFile) {
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Err(error) = read_line(trimmed, line, file) {
            file.errors.push(error);
        }
    }
}

/// The line's TYPE, HASH and ID fields: split at the first two commas, or
/// read as one CSV record when it quotes.
fn fields(text: &str, line: usize) -> Result<Vec<String>, RecordError> {
    if !text.contains('"') {
        return Ok(text.splitn(3, ',').map(str::to_owned).collect());
    }
    // The csv reader would read an unclosed quote to the end of the line.
    if text.matches('"').count() % 2 == 1 {
        return Err(RecordError::new(line, "a closing quote", "none"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let record = match reader.records().next() {
        Some(Ok(record)) => record,
        Some(Err(e)) => return Err(RecordError::new(line, "a CSV record", e)),
        None => return Ok(Vec::new()),
    };
    let mut fields: Vec<String> = record.iter().take(2).map(str::to_owned).collect();
    let id: Vec<&str> = record.iter().skip(2).collect();
    if !id.is_empty() {
        fields.push(id.join(","));
    }
    Ok(fields)
}

fn read_line(text: &str, line: usize, file: &mut ListFile) -> Result<(), RecordError> {
    let fields = self::fields(text, line)?;
    let mut fields = fields.iter().map(String::as_str);
    let kind_text = fields.next().unwrap_or_default().trim();
    let Some(hash_text) = fields.next() else {
        return Err(problem(line, LineProblem::MissingHash));
    };
    let Some(kind) = kind_of(kind_text) else {
        if is_other_te_type(kind_text) {
            file.skip(kind_text);
            return Ok(());
        }
        return Err(problem(
            line,
            LineProblem::UnknownType(super::shorten(kind_text)),
        ));
    };
    let hash = TypedHash::parse(kind, hash_text.trim())
        .map_err(|source| problem(line, LineProblem::BadHash { kind, source }))?;
    let id = match fields.next() {
        Some(id) => parse_id(id, line)?,
        None => None,
    };
    file.add(hash, id, line);
    Ok(())
}
