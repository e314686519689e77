//! `hashgate index disable` and `hashgate index enable`: turn one list
//! entry off (or on again) without rebuilding the index, by editing the
//! overrides value the worker reads from `HASH_INDEX` at `hg2/overrides`
//! (`hashgate::overrides`, the one format the worker reads and its
//! console writes).
//!
//! The command edits a local copy (read, modify, write the whole value, as
//! every writer does) and prints the `wrangler` commands that fetch the
//! deployed value first and upload the result. What other writers put
//! there (images the console cleared) is kept.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use hashgate::index::lists::validate_list_name;
use hashgate::index::TypedHash;
use hashgate::overrides::{EntryOverride, EntryState, Overrides, OVERRIDES_KEY};
use hashgate::HashKind;

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
        .with_context(|| format!("--hash is not a {} hash", args.kind))?
        .to_string();
    let mut overrides = read(&args.file)?;
    let now = std::time::SystemTime::now();
    let now_unix = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let decision = EntryOverride {
        list: list.clone(),
        kind: args.kind.name().to_owned(),
        hash: hash.clone(),
        state: EntryState::Disabled,
        at: humantime::format_rfc3339_seconds(now).to_string(),
        by: args.by,
        reason: args.reason,
    };
    if disable {
        overrides.turn_off(decision, now_unix);
    } else if !overrides.turn_on(decision, now_unix) {
        bail!(
            "{}: {list} {} {hash} is not turned off",
            args.file.display(),
            args.kind
        );
    }
    let mut text = overrides.to_json().into_bytes();
    text.push(b'\n');
    let staging = args.file.with_extension("json.tmp");
    std::fs::write(&staging, &text).with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, &args.file)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!(
        "{} {list} {} {hash}: wrote {} ({} entries turned off, {} images allowed)",
        if disable { "disabled" } else { "enabled" },
        args.kind,
        args.file.display(),
        overrides.entries.len(),
        overrides.allowed.len(),
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

/// The overrides in `path`; none when it is missing or empty. A value that
/// does not read is refused whole, as the worker refuses it.
fn read(path: &Path) -> anyhow::Result<Overrides> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            Overrides::parse(&text).with_context(|| format!("reading {}", path.display()))
        }
        Ok(_) => Ok(Overrides::default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overrides::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
