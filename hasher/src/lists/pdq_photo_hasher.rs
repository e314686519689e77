//! The output of Meta's `pdq-photo-hasher` (and hashgate-compatible tools
//! that mimic it): `HASH,QUALITY,FILE` per line, no header. The file name
//! becomes the entry's id, the one name such a list has for an item.
//! Quality is checked (0..=100) but not used: the hygiene rule on quality
//! applies to query hashes, where the image is at hand.

use super::{parse_hash, parse_id, ListFile, RecordError};
use crate::hashes::HashKind;

pub(super) fn read(text: &str, file: &mut ListFile) -> Result<(), RecordError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let Some((line, record)) = super::csv_row(record, file) else {
            continue;
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let result = (|| {
            let (Some(hash), Some(quality)) = (record.get(0), record.get(1)) else {
                return Err(RecordError::new(
                    line,
                    "HASH,QUALITY,FILE",
                    format!("{} field(s)", record.len()),
                ));
            };
            let hash = parse_hash(HashKind::Pdq, hash, line)?;
            if !quality.parse::<u8>().is_ok_and(|q| q <= 100) {
                return Err(RecordError::new(
                    line,
                    "a quality from 0 to 100",
                    format!("{:?}", super::shorten(quality)),
                ));
            }
            let id = parse_id(record.get(2).unwrap_or_default(), line)?;
            Ok((hash, id))
        })();
        match result {
            Ok((hash, id)) => file.add(hash, id, line),
            Err(error) => file.errors.push(error),
        }
    }
    Ok(())
}
