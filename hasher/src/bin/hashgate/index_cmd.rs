//! `hashgate index build` and `hashgate index diff`: hash lists in, Workers
//! KV records out. The library builds and diffs; this file reads the lists,
//! reports bad lines, and writes the output directory (see `index_store`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hashgate::index::lists::{self, LineError, Parsed};
use hashgate::index::{diff_sorted, BuildSummary, Change, IndexBuilder, KindCounts};

use crate::index_store::{self, BulkWriter, RecordReader};

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Build KV records from hash lists (`TYPE,HASH[,ID]` per line).
    Build(BuildArgs),
    /// The KV puts and deletes that turn one build into another.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A named hash list, as NAME=PATH (repeat for more lists).
    #[arg(long = "list", value_name = "NAME=PATH", required = true, value_parser = parse_named_list)]
    lists: Vec<(String, PathBuf)>,
    /// Allowlist of known false positives: `TYPE,HASH[,LIST]` per line
    /// (no LIST, or `*`, means every list).
    #[arg(long = "allow", value_name = "PATH")]
    allow: Option<PathBuf>,
    /// Leave out bad lines (reported on stderr) instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The build now in KV.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The new build.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Where to write kv-bulk.json (puts) and kv-delete.json (deletes).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn parse_named_list(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, found {text:?}"))?;
    let name = lists::validate_list_name(name).map_err(|e| e.to_string())?;
    if path.is_empty() {
        return Err(format!("list {name} has no path"));
    }
    Ok((name, PathBuf::from(path)))
}

pub fn run(command: IndexCommand) -> anyhow::Result<ExitCode> {
    match command {
        IndexCommand::Build(args) => build(args),
        IndexCommand::Diff(args) => diff(args),
    }
}

/// How many bad lines are printed per file before summarising.
const BAD_LINES_SHOWN: usize = 20;

/// Reports bad lines; fails unless they may be skipped.
fn check_lines<T>(path: &Path, parsed: &Parsed<T>, skip_bad: bool) -> anyhow::Result<()> {
    let errors: &[LineError] = &parsed.errors;
    if errors.is_empty() {
        return Ok(());
    }
    for error in errors.iter().take(BAD_LINES_SHOWN) {
        eprintln!(
            "hashgate: {}:{}: {}",
            path.display(),
            error.line,
            error.problem
        );
    }
    if errors.len() > BAD_LINES_SHOWN {
        eprintln!(
            "hashgate: {}: {} more bad lines",
            path.display(),
            errors.len() - BAD_LINES_SHOWN
        );
    }
    if skip_bad {
        eprintln!(
            "hashgate: {}: skipped {} bad lines",
            path.display(),
            errors.len()
        );
        Ok(())
    } else {
        bail!(
            "{}: {} bad lines (use --skip-bad to leave them out)",
            path.display(),
            errors.len()
        )
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let mut builder = IndexBuilder::new();
    for (name, path) in &args.lists {
        let parsed = lists::parse_hash_list(&read_text(path)?);
        check_lines(path, &parsed, args.skip_bad)?;
        builder
            .add_list(name, parsed.entries)
            .with_context(|| format!("list {name} ({})", path.display()))?;
    }
    if let Some(path) = &args.allow {
        let parsed = lists::parse_allowlist(&read_text(path)?);
        check_lines(path, &parsed, args.skip_bad)?;
        builder.add_allowlist(parsed.entries);
    }
    let built = builder.build()?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut bulk = BulkWriter::new(&args.out, index_store::BULK_STEM);
    for (key, value) in &built.records {
        bulk.put(key, value)?;
    }
    let bulk_files = bulk.finish()?;
    let records_file = index_store::write_records(&args.out, &built.records)?;
    print_summary(&built.summary);
    for path in bulk_files.iter().chain([&records_file]) {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn counts_text(counts: &KindCounts) -> String {
    if counts.is_empty() {
        return "no entries".to_owned();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    parts.join(", ")
}

fn print_summary(summary: &BuildSummary) {
    for (name, counts) in &summary.lists {
        println!("list {name}: {}", counts_text(counts));
    }
    println!("distinct hashes: {}", counts_text(&summary.distinct));
    println!("duplicate lines merged: {}", summary.duplicates);
    println!(
        "allowlisted hashes: {} (list entries dropped: {})",
        summary.allowlisted, summary.suppressed
    );
    println!(
        "kv: {} keys, {} bytes (largest value {} bytes at {})",
        summary.keys, summary.bytes, summary.largest_value.0, summary.largest_value.1
    );
}

fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let mut from = RecordReader::open(&args.from)?;
    let mut to = RecordReader::open(&args.to)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut bulk = BulkWriter::new(&args.out, index_store::BULK_STEM);
    let mut deletes = Vec::new();
    let mut write_error = None;
    let (mut from_error, mut to_error) = (None, None);
    let summary = diff_sorted(
        from.records(&mut from_error),
        to.records(&mut to_error),
        |change| match change {
            Change::Put { key, value } => {
                if write_error.is_none() {
                    write_error = bulk.put(&key, &value).err();
                }
            }
            Change::Delete { key } => deletes.push(key),
        },
    )?;
    if let Some(error) = [from_error, to_error, write_error]
        .into_iter()
        .flatten()
        .next()
    {
        return Err(error);
    }
    let bulk_files = bulk.finish()?;
    let delete_file = index_store::write_deletes(&args.out, &deletes)?;
    println!(
        "puts: {} ({} bytes), deletes: {}, unchanged: {}",
        summary.puts, summary.put_bytes, summary.deletes, summary.unchanged
    );
    for path in bulk_files.iter().chain([&delete_file]) {
        println!("wrote {}", path.display());
    }
    println!("apply the puts first, then the deletes");
    Ok(ExitCode::SUCCESS)
}
