//! StopNCII `FetchHashes` JSON: `{"hashRecords": [{"hashValue",
//! "signalType", "hashStatus", "caseNumbers", "lastModtimestamp", ...}],
//! "nextPageToken", "hasMoreRecords", ...}`.
//!
//! `ImagePDQ` is a PDQ hash and `VideoMD5` an MD5 digest; other signal
//! types (`VideoTMK`, `Text`, `URL`) are counted as skipped. A record whose
//! `hashStatus` is `Withdrawn` or `Deleted` deletes the hash (StopNCII
//! asks clients to drop it). The case numbers (a map from case id to its
//! status, or an empty list) become the entry's ids, one membership per
//! case still active, so a report can name each case.

use serde::Deserialize;

use super::json_records::{read_record, records};
use super::{parse_hash, parse_id, ListFile, RecordError, Target};
use crate::hashes::HashKind;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashRecord {
    hash_value: String,
    signal_type: String,
    #[serde(default)]
    hash_status: Option<String>,
    /// A map from case id to its status; StopNCII also sends `[]` for none.
    #[serde(default)]
    case_numbers: serde_json::Value,
}

fn withdrawn(status: &str) -> bool {
    matches!(status, "Withdrawn" | "Deleted")
}

pub(super) fn read(text: &str, file: &mut ListFile) -> Result<(), RecordError> {
    for record in records(text, "hashRecords", "StopNCII hash records")? {
        let line = record.line;
        let result = (|| {
            let record: HashRecord =
                read_record(&record, "a hash record with hashValue and signalType")?;
            let kind = match record.signal_type.as_str() {
                "ImagePDQ" => HashKind::Pdq,
                "VideoMD5" => HashKind::Md5,
                other => {
                    file.skip(other);
                    return Ok(());
                }
            };
            let hash = parse_hash(kind, &record.hash_value, line)?;
            if record.hash_status.as_deref().is_some_and(withdrawn) {
                file.delete(Target::Hash(hash), line);
                return Ok(());
            }
            let mut ids = Vec::new();
            if let serde_json::Value::Object(cases) = &record.case_numbers {
                for (case, status) in cases {
                    if !status.as_str().is_some_and(withdrawn) {
                        ids.extend(parse_id(case, line)?);
                    }
                }
            }
            if ids.is_empty() {
                file.add(hash, None, line);
            }
            for id in ids {
                file.add(hash, Some(id), line);
            }
            Ok(())
        })();
        if let Err(error) = result {
            file.errors.push(error);
        }
    }
    Ok(())
}
