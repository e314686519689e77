//! The records of a JSON list document, each with the line it starts on.
//!
//! Exchanges answer a page (`{"data": [...]}`, `{"hashRecords": [...]}`),
//! a bare array, or JSON lines. The records are taken as raw slices of the
//! text (`serde_json`'s `RawValue`), so a record that does not read can be
//! reported at its line, then each is read into its typed shape.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{line_of, RecordError};

/// One record: its line and its text.
pub(super) struct RawRecord<'a> {
    pub line: usize,
    pub text: &'a str,
}

fn located<'a>(text: &'a str, raw: &'a RawValue) -> RawRecord<'a> {
    let slice = raw.get();
    let at = (slice.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    RawRecord {
        line: line_of(text, at),
        text: slice,
    }
}

/// The records of `text`: the array under `field` of a top-level object,
/// a top-level array, or one object per line.
pub(super) fn records<'a>(
    text: &'a str,
    field: &str,
    what: &str,
) -> Result<Vec<RawRecord<'a>>, RecordError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| json_error(e, what))?;
        return Ok(items.into_iter().map(|r| located(text, r)).collect());
    }
    match serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(text) {
        Ok(object) => {
            let Some(items) = object.get(field) else {
                return Err(RecordError::new(
                    1,
                    format!("a JSON object with a {field:?} array of {what}"),
                    "no such field",
                ));
            };
            let items: Vec<&RawValue> =
                serde_json::from_str(items.get()).map_err(|e| json_error(e, what))?;
            Ok(items.into_iter().map(|r| located(text, r)).collect())
        }
        Err(whole) => {
            // JSON lines: one record per non-blank line.
            let mut out = Vec::new();
            for (index, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                if serde_json::from_str::<&RawValue>(line).is_err() {
                    return Err(json_error(whole, what));
                }
                out.push(RawRecord {
                    line: index + 1,
                    text: line,
                });
            }
            Ok(out)
        }
    }
}

fn json_error(error: serde_json::Error, what: &str) -> RecordError {
    RecordError::new(error.line(), format!("JSON ({what})"), error.to_string())
}

/// Reads one record into `T`, or the error at its line.
pub(super) fn read_record<'a, T: Deserialize<'a>>(
    record: &RawRecord<'a>,
    what: &str,
) -> Result<T, RecordError> {
    serde_json::from_str(record.text).map_err(|e| {
        RecordError::new(
            record.line + e.line().saturating_sub(1),
            what.to_owned(),
            e.to_string(),
        )
    })
}
