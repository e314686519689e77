//! Telling a list's format from its content.
//!
//! Operators save what an exchange sends under any name, so the file name
//! says nothing; the first record does. Each format has a shape no other
//! one shares: XML (NCMEC), a JSON object with `hashRecords` (StopNCII) or
//! records with `indicator` (ThreatExchange), python-threatexchange's CSV
//! header, a known hash type before the first comma (hashgate and
//! ThreatExchange descriptor types), a 64-digit hash and a quality
//! (pdq-photo-hasher), or bare signals with an optional signal type
//! (python-threatexchange `-S`). Anything else is refused with the line it
//! looked at, never guessed.

use super::{hashgate, tx_dataset, Format, ReadError};

/// The format of `text`, from its first record.
pub fn detect(text: &str) -> Result<Format, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some((index, first)) = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .find(|(_, l)| !l.is_empty() && !l.starts_with('#'))
    else {
        return Err(ReadError::Empty);
    };
    let line = index + 1;
    let unrecognised = || ReadError::Unrecognised {
        line,
        found: super::shorten(first),
    };
    if first.starts_with('<') {
        return if text.contains("hashsharing") || text.contains("<queryResult") {
            Ok(Format::Ncmec)
        } else {
            Err(unrecognised())
        };
    }
    if first.starts_with('{') || first.starts_with('[') {
        return detect_json(text, first).ok_or_else(unrecognised);
    }
    let lower = first.to_ascii_lowercase();
    if lower.starts_with("collab,signal_type,signal_str") {
        return Ok(Format::TxDatasetCsv);
    }
    let fields: Vec<&str> = first.split(',').map(str::trim).collect();
    if fields.len() >= 2 && hashgate::kind_of(fields[0]).is_some() {
        return Ok(Format::Hashgate);
    }
    if fields.len() >= 2 && is_hex(fields[0], 64) && fields[1].parse::<u8>().is_ok_and(|q| q <= 100)
    {
        return Ok(Format::PdqPhotoHasher);
    }
    let words: Vec<&str> = first.split_whitespace().collect();
    match words.as_slice() {
        [signal] if is_hex(signal, 32) || is_hex(signal, 64) => Ok(Format::TxSignals),
        [kind, _] if tx_dataset::is_signal_type(kind) => Ok(Format::TxSignals),
        _ => Err(unrecognised()),
    }
}

fn detect_json(text: &str, first: &str) -> Option<Format> {
    let value: serde_json::Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(first))
        .ok()?;
    if value.get("hashRecords").is_some() {
        return Some(Format::StopNcii);
    }
    let record = match &value {
        serde_json::Value::Array(items) => items.first()?,
        serde_json::Value::Object(object) => match object.get("data") {
            Some(serde_json::Value::Array(items)) => items.first()?,
            _ => &value,
        },
        _ => return None,
    };
    (record.get("indicator").is_some() || record.get("should_delete").is_some())
        .then_some(Format::TeUpdates)
}

/// Whether `text` is exactly `digits` hex digits.
pub(crate) fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit())
}
