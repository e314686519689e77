//! `hashgate index build` and `hashgate index diff`: hash lists in, an index
//! generation out, with the exact commands that upload it. The library
//! builds and diffs; this file reads the lists, reports bad lines, writes
//! the output directory (see `index_store`) and prints the upload steps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hashgate::index::generation::{self, Layout, Manifest, CURRENT_KEY, RESIDENT_MAX_BYTES};
use hashgate::index::lists;
use hashgate::index::{diff_sorted, BuildSummary, Change, IndexBuilder, KindCounts};
use sha2::{Digest, Sha256};

use hashgate::index::store::{self, BulkWriter, RecordReader, MANIFEST_FILE};

/// The KV binding the worker reads the index from (wrangler.toml).
const BINDING: &str = "HASH_INDEX";

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Build KV records from hash lists (any format `hashgate::lists` reads).
    Build(BuildArgs),
    /// The KV puts and deletes that turn one build into another.
    Diff(DiffArgs),
    /// Turn one list entry off without rebuilding (edits the overrides
    /// value `hg2/overrides` the worker reads).
    Disable(crate::overrides_cmd::OverrideArgs),
    /// Turn a disabled entry on again; a suspended one (flood guard) is
    /// marked reviewed, so the guard does not suspend it again.
    Enable(crate::overrides_cmd::OverrideArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A named hash list, as NAME=PATH (repeat for more lists). Its format
    /// is recognised from the content. Naming a list again adds a feed:
    /// its entries and deletions are applied, in order, to the list.
    #[arg(long = "list", value_name = "NAME=PATH", required = true, value_parser = parse_named_list)]
    lists: Vec<(String, PathBuf)>,
    /// Read every list file in this format instead of recognising it:
    /// hashgate, tx-dataset-csv, tx-signals, te-updates, ncmec, stopncii,
    /// pdq-photo-hasher.
    #[arg(long, value_name = "FORMAT")]
    format: Option<hashgate::lists::Format>,
    /// Allowlist of known false positives: `TYPE,HASH[,LIST]` per line
    /// (no LIST, or `*`, means every list).
    #[arg(long = "allow", value_name = "PATH")]
    allow: Option<PathBuf>,
    /// Leave out bad lines (reported on stderr) instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Output directory: replaced as a whole, atomically.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How the worker reads the index: `resident` (one snapshot held in
    /// each isolate, a few KV reads per isolate), `buckets` (KV keys read
    /// per image, for indexes too large to hold), or `auto`: resident up to
    /// a 52 MiB snapshot (10^6 PDQ hashes with short ids), buckets beyond.
    #[arg(long, value_enum, default_value_t = LayoutChoice::Auto)]
    layout: LayoutChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LayoutChoice {
    Auto,
    Resident,
    Buckets,
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
        IndexCommand::Disable(args) => crate::overrides_cmd::run(args, true),
        IndexCommand::Enable(args) => crate::overrides_cmd::run(args, false),
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let mut builder = IndexBuilder::new();
    for (name, paths) in crate::list_input::group(&args.lists) {
        let entries = crate::list_input::read_list(&name, &paths, args.format, args.skip_bad)?;
        builder
            .add_list(&name, entries)
            .with_context(|| format!("list {name}"))?;
    }
    if let Some(path) = &args.allow {
        let parsed = lists::parse_allowlist(&read_text(path)?);
        crate::list_input::report_errors(
            path,
            parsed.errors.iter().map(|e| (e.line, &e.problem)),
            args.skip_bad,
        )?;
        builder.add_allowlist(parsed.entries);
    }
    let merged = builder.merge()?;
    let snapshot = merged.snapshot()?;
    let layout = match args.layout {
        LayoutChoice::Resident => Layout::Resident,
        LayoutChoice::Buckets => Layout::Buckets,
        LayoutChoice::Auto if snapshot.len() <= RESIDENT_MAX_BYTES => Layout::Resident,
        LayoutChoice::Auto => Layout::Buckets,
    };
    let generation = Manifest::generation_name(&Sha256::digest(&snapshot));
    let mut manifest = Manifest {
        format: generation::FORMAT.to_owned(),
        generation: generation.clone(),
        layout,
        parts: Vec::new(),
        bytes: 0,
        lists: merged.summary.lists.clone(),
        built_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let previous = read_manifest(&args.out).ok();

    store::remove_stale_staging(&args.out);
    let staging = store::staging_dir(&args.out)?;
    let written = write_build(&staging, &merged, &snapshot, &mut manifest);
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    if let Err(error) = store::publish_dir(&staging, &args.out) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error.into());
    }
    print_summary(&summary);
    println!(
        "generation {generation}: {} layout, {} bytes of snapshot",
        layout_name(layout),
        snapshot.len()
    );
    print_upload(&args.out, &manifest, previous.as_ref());
    Ok(ExitCode::SUCCESS)
}

/// Writes every file of a build into `dir` (synced), completing `manifest`.
fn write_build(
    dir: &Path,
    merged: &hashgate::index::MergedIndex,
    snapshot: &[u8],
    manifest: &mut Manifest,
) -> anyhow::Result<BuildSummary> {
    store::write_synced(&dir.join(store::SNAPSHOT_FILE), snapshot)?;
    let summary = match manifest.layout {
        Layout::Resident => {
            for (index, part) in generation::split_parts(snapshot).enumerate() {
                store::write_synced(&dir.join(store::part_file(index)), part)?;
                manifest
                    .parts
                    .push(Manifest::part_key(&manifest.generation, index));
            }
            manifest.bytes = snapshot.len() as u64;
            let mut summary = merged.summary.clone();
            summary.keys = manifest.parts.len() + 1;
            summary.bytes = snapshot.len();
            summary.largest_value = (
                snapshot.len().min(generation::PART_BYTES),
                manifest.parts.first().cloned().unwrap_or_default(),
            );
            summary
        }
        Layout::Buckets => {
            let built = merged.clone().records()?;
            let mut bulk = BulkWriter::new(dir, store::BULK_STEM);
            for (key, value) in &built.records {
                bulk.put(key, value)?;
            }
            bulk.finish()?;
            store::write_records(dir, &built.records)?;
            built.summary
        }
    };
    let mut json = serde_json::to_vec_pretty(&*manifest)?;
    json.push(b'\n');
    store::write_synced(&dir.join(MANIFEST_FILE), &json)?;
    Ok(summary)
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = read_text(&path)?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Resident => "resident",
        Layout::Buckets => "buckets",
    }
}

/// Prints the commands that upload a build, in the order that keeps every
/// reader consistent: the generation's values first, the manifest last.
fn print_upload(out: &Path, manifest: &Manifest, previous: Option<&Manifest>) {
    let dir = out.display();
    println!();
    println!("upload, in this order (--remote writes to the deployed namespace; --local to the one `wrangler dev` uses):");
    match manifest.layout {
        Layout::Resident => {
            for (index, key) in manifest.parts.iter().enumerate() {
                println!(
                    "  npx wrangler kv key put --binding {BINDING} --remote {key} --path {dir}/{}",
                    store::part_file(index)
                );
            }
        }
        Layout::Buckets => {
            for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(store::BULK_STEM) && name.ends_with(".json") {
                    println!(
                        "  npx wrangler kv bulk put {dir}/{name} --binding {BINDING} --remote"
                    );
                }
            }
        }
    }
    println!("  npx wrangler kv key put --binding {BINDING} --remote {CURRENT_KEY} --path {dir}/{MANIFEST_FILE}");
    if let Some(previous) = previous.filter(|p| p.generation != manifest.generation) {
        if !previous.parts.is_empty() {
            println!(
                "then, once every isolate has moved on (index.refresh_seconds plus a minute), the previous generation {}:",
                previous.generation
            );
            for key in &previous.parts {
                println!("  npx wrangler kv key delete --binding {BINDING} --remote {key}");
            }
        }
    }
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
    let from_manifest = read_manifest(&args.from)?;
    let to_manifest = read_manifest(&args.to)?;
    if from_manifest.layout == Layout::Resident || to_manifest.layout == Layout::Resident {
        return replace_generation(&args, &from_manifest, &to_manifest);
    }
    let mut from = RecordReader::open(&args.from)?;
    let mut to = RecordReader::open(&args.to)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut bulk = BulkWriter::new(&args.out, store::BULK_STEM);
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
        return Err(error.into());
    }
    let bulk_files = bulk.finish()?;
    let delete_file = store::write_deletes(&args.out, &deletes)?;
    println!(
        "puts: {} ({} bytes), deletes: {}, unchanged: {}",
        summary.puts, summary.put_bytes, summary.deletes, summary.unchanged
    );
    for path in bulk_files.iter().chain([&delete_file]) {
        println!("wrote {}", path.display());
    }
    let out = args.out.display();
    let to_dir = args.to.display();
    println!();
    println!("upload, in this order (--remote writes to the deployed namespace; --local to the one `wrangler dev` uses):");
    for path in &bulk_files {
        println!(
            "  npx wrangler kv bulk put {} --binding {BINDING} --remote",
            path.display()
        );
    }
    println!("  npx wrangler kv key put --binding {BINDING} --remote {CURRENT_KEY} --path {to_dir}/{MANIFEST_FILE}");
    println!(
        "  npx wrangler kv bulk delete {out}/{} --binding {BINDING} --remote --force",
        store::DELETE_FILE
    );
    Ok(ExitCode::SUCCESS)
}

/// A resident generation is never patched: the new one is uploaded whole
/// (a few values) and the old one's keys deleted afterwards.
fn replace_generation(args: &DiffArgs, from: &Manifest, to: &Manifest) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut deletes: Vec<String> = Vec::new();
    if from.generation != to.generation {
        match from.layout {
            Layout::Resident => deletes.extend(from.parts.iter().cloned()),
            Layout::Buckets => {
                let mut reader = RecordReader::open(&args.from)?;
                while let Some((key, _)) = reader.next_record()? {
                    deletes.push(key);
                }
            }
        }
    }
    let delete_file = store::write_deletes(&args.out, &deletes)?;
    println!(
        "generation {} replaces {}: {} keys of the old one to delete",
        to.generation,
        from.generation,
        deletes.len()
    );
    println!("wrote {}", delete_file.display());
    print_upload(&args.to, to, None);
    println!(
        "then, once every isolate has moved on (index.refresh_seconds plus a minute):\n  npx wrangler kv bulk delete {} --binding {BINDING} --remote --force",
        delete_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
