//! ThreatExchange `/threat_updates` JSON: the records of an incremental
//! fetch, each `{"id", "indicator", "type", "last_updated",
//! "should_delete", ...}`. A record with `should_delete: true` is a
//! tombstone: every entry with that id is deleted. Types are descriptor
//! types (`HASH_PDQ`, `HASH_MD5`, ...); those hashgate does not match are
//! counted as skipped. Pages (`{"data": [...]}`), arrays and JSON lines
//! are all read (python-threatexchange stores fetched updates as lines).

use serde::Deserialize;

use super::json_records::{read_record, records};
use super::{hashgate, parse_hash, ListFile, RecordError, Target};

#[derive(Deserialize)]
struct Update {
    id: serde_json::Value,
    #[serde(default)]
    indicator: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    should_delete: bool,
}

pub(super) fn read(text: &str, file: &mut ListFile) -> Result<(), RecordError> {
    for record in records(text, "data", "threat updates")? {
        let line = record.line;
        let result = (|| {
            let update: Update = read_record(&record, "a threat update with an id")?;
            let id = match &update.id {
                serde_json::Value::String(id) => id.clone(),
                serde_json::Value::Number(id) => id.to_string(),
                other => {
                    return Err(RecordError::new(
                        line,
                        "an id (string or number)",
                        other.to_string(),
                    ))
                }
            };
            let id = super::parse_id(&id, line)?
                .ok_or_else(|| RecordError::new(line, "a non-empty id", "\"\""))?;
            if update.should_delete {
                file.delete(Target::Id(id), line);
                return Ok(());
            }
            let kind_text = update.kind.unwrap_or_default();
            let Some(kind) = hashgate::kind_of(&kind_text) else {
                file.skip(&kind_text);
                return Ok(());
            };
            let indicator = update
                .indicator
                .ok_or_else(|| RecordError::new(line, "an indicator", "none"))?;
            let hash = parse_hash(kind, &indicator, line)?;
            file.add(hash, Some(id), line);
            Ok(())
        })();
        if let Err(error) = result {
            file.errors.push(error);
        }
    }
    Ok(())
}
