//! `hashgate index disable` and `hashgate index enable`: turn one list
//! entry off (or on again) without rebuilding the index, by editing the
//! overrides value the worker reads from `HASH_INDEX` at `hg2/overrides`
//! (the format of `worker/src/overrides.rs`, contract: `{"v":1,
//! "updated_unix", "entries": [...], "allowed": [...]}`).
//!
//! The command edits a local copy (read, modify, write the whole value, as
//! every writer does) and prints the `wrangler` commands that fetch the
//! deployed value first and upload the result. Fields it does not know are
//! kept as they are, so a value written by the console survives an edit
//! here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use hashgate::index::lists::validate_list_name;
use hashgate::index::TypedHash;
use hashgate::HashKind;
use serde_json::{json, Value};

/// The KV key of the overrides (wrangler.toml's `HASH_INDEX`).
const OVERRIDES_KEY: &str = "hg2/overrides";

#[derive(Debug, Args)]
pub struct OverrideArgs {
    /// The list holding the entry.
    #[arg(long)]
    list: String,
    /// The entry's hash type: pdq, md5, sha1 or sha256.
    #[arg(long = "type", value_name = "TYPE")]
    kind: HashKind,
    /// The entry's hash, hex.
    #[arg(long)]
    hash: String,
    /// Who turns it off or on (kept in the value).
    #[arg(long)]
    by: String,
    /// Why (kept in the value).
    #[arg(long, default_value = "")]
    reason: String,
    /// The overrides file to edit (created when missing).
    #[arg(long, value_name = "FILE", default_value = "overrides.json")]
    file: PathBuf,
}

pub fn run(args: OverrideArgs, disable: bool) -> anyhow::Result<ExitCode> {
    let list = validate_list_name(&args.list)?;
    if args.kind == HashKind::Vec72 {
        bail!("vec72 entries cannot be overridden");
    }
    let hash = TypedHash::parse(args.kind, args.hash.trim())
        .with_context(|| format!("--hash is not a {} hash", args.kind))?;
    let mut doc = read(&args.file)?;
    let now = now_unix();
    let previous = doc["updated_unix"].as_u64().unwrap_or(0);
    let entries = doc["entries"]
        .as_array_mut()
        .context("the overrides' \"entries\" is not an array")?;
    let same = |e: &Value| {
        e["list"] == list.as_str()
            && e["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(args.kind.name()))
            && e["hash"]
                .as_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&hash.to_string()))
    };
    let before = entries.len();
    entries.retain(|e| !same(e));
    let removed = before - entries.len();
    if disable {
        entries.push(json!({
            "list": list, "type": args.kind.name(), "hash": hash.to_string(),
            "state": "disabled", "at": rfc3339(now), "by": args.by, "reason": args.reason,
        }));
    } else if removed == 0 {
        bail!(
            "{}: {list} {} {hash} is not turned off",
            args.file.display(),
            args.kind
        );
    }
    // Strictly increasing: readers key remembered verdicts on it.
    doc["updated_unix"] = json!(now.max(previous + 1));
    let mut text = serde_json::to_vec_pretty(&doc)?;
    text.push(b'\n');
    let staging = args.file.with_extension("json.tmp");
    std::fs::write(&staging, &text).with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, &args.file)
        .with_context(|| format!("writing {}", args.file.display()))?;
    let off = doc["entries"].as_array().map_or(0, Vec::len);
    let allowed = doc["allowed"].as_array().map_or(0, Vec::len);
    println!(
        "{} {list} {} {hash}: wrote {} ({off} entries turned off, {allowed} images allowed)",
        if disable { "disabled" } else { "enabled" },
        args.kind,
        args.file.display()
    );
    println!();
    println!("edit the deployed value: fetch it first (a missing key means none), then upload:");
    println!(
        "  npx wrangler kv key get --binding HASH_INDEX --remote {OVERRIDES_KEY} > {}",
        args.file.display()
    );
    println!(
        "  npx wrangler kv key put --binding HASH_INDEX --remote {OVERRIDES_KEY} --path {}",
        args.file.display()
    );
    println!(
        "the worker applies it within index.refresh_seconds (plus KV's propagation, up to 60 s)"
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => text,
        Ok(_) => return Ok(empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(empty()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if doc["v"] != 1 {
        bail!(
            "{}: overrides version {} is not 1",
            path.display(),
            doc["v"]
        );
    }
    for field in ["entries", "allowed"] {
        if doc.get(field).is_none() {
            doc[field] = json!([]);
        }
    }
    Ok(doc)
}

fn empty() -> Value {
    json!({"v": 1, "updated_unix": 0, "entries": [], "allowed": []})
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (civil-from-days, proleptic
/// Gregorian calendar).
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
