//! `hashgate scan`: check what a site already stores (buckets synced to
//! disk, upload folders, backups) against an index.
//!
//! Three stages joined by bounded channels, so memory stays flat however
//! large the tree:
//!
//! 1. one thread walks the paths ([`walk`]), skipping files a resumed scan
//!    already finished;
//! 2. `--jobs` threads check files ([`check`]): sniff, read, hash, look up
//!    in the index held in memory;
//! 3. this thread writes one JSON line per match, error and (with `--all`)
//!    clean or skipped file, records finished files in the `--resume` state
//!    ([`state`]), and draws the progress bar ([`progress`]).
//!
//! With `--resume` and `--out`, a scan killed at any point and run again
//! ends with exactly one whole line per file: the state is written only
//! after the lines it covers ([`state`]), and the output is repaired and
//! read back on resume ([`output`]). Names that are not UTF-8 carry their
//! exact bytes in `file_base64` ([`name`]).
//!
//! Lines come in the order files finish, not walk order. Exit status: 0
//! when nothing matched, 1 when something did, 2 when the scan could not
//! run; files that could not be checked are `error` lines and counted in the
//! summary.

mod check;
mod name;
mod output;
mod progress;
mod state;
mod walk;

use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hashgate::index::ListFilter;
use serde::Serialize;

use crate::exit::Tally;
use crate::lines::HashLine;
use crate::matching::MatchFlags;
use check::Outcome;
use hashgate::matching::MatchRecord;
use hashgate::matching::{check_lists, MatchSettings, MemoryIndex};
use progress::{Counts, Progress, Summary};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Directory made by `hashgate index build`.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    #[command(flatten)]
    matching: MatchFlags,
    /// Also write a line for every clean image and skipped file.
    #[arg(long)]
    all: bool,
    /// Write the JSON lines to FILE instead of standard output (appended to
    /// when resuming, after cutting a line a crash left torn).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Record finished files in STATE and skip the ones it lists, so an
    /// interrupted scan can be run again to finish it.
    #[arg(long, value_name = "STATE")]
    resume: Option<PathBuf>,
    /// Files checked at once [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Follow symbolic links (loops are detected).
    #[arg(long)]
    follow_links: bool,
    /// Never draw the progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Files and folders to scan.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// One output line.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum ScanLine<'a> {
    /// Listed content.
    Match {
        #[serde(flatten)]
        image: HashLine<'a>,
        matches: &'a [MatchRecord],
    },
    /// An image nothing matched (`--all` only).
    Clean {
        #[serde(flatten)]
        image: HashLine<'a>,
    },
    /// Not an image (`--all` only).
    Skipped {
        file: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_base64: Option<&'a str>,
        reason: &'static str,
    },
    /// Could not be checked.
    Error {
        file: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_base64: Option<&'a str>,
        kind: &'static str,
        error: &'a str,
    },
}

/// A checked file on its way to the writer.
struct Checked {
    file: name::FileName,
    outcome: Outcome,
}

impl ScanArgs {
    fn settings(&self) -> MatchSettings {
        self.matching.settings()
    }

    fn fingerprint(&self, settings: &MatchSettings) -> state::Fingerprint {
        state::Fingerprint {
            threshold: settings.threshold,
            lists: match &settings.lists {
                ListFilter::All => Vec::new(),
                ListFilter::Only(lists) => lists.iter().cloned().collect(),
            },
            variants: settings.variants,
            all: self.all,
        }
    }
}

/// How many checked files may wait for the writer, and paths for a worker.
const CHANNEL_DEPTH: usize = 256;
/// How often buffered output (and then the state) is flushed.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings();
    let options = settings.hash_options();
    let index = Arc::new(MemoryIndex::load(&args.index)?);
    check_lists(&settings.lists, &index.list_names())?;
    let (mut done_before, mut state) = match &args.resume {
        Some(path) => {
            let (done, writer) = state::open(path, &args.fingerprint(&settings))?;
            (done, Some(writer))
        }
        None => (HashSet::new(), None),
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => {
            let (file, written) = output::open(path, args.resume.is_some())?;
            // Lines written after the state's last update count as done.
            done_before.extend(written);
            Box::new(io::BufWriter::new(file))
        }
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    let started = Instant::now();
    let found = AtomicU64::new(0);
    let resumed = AtomicU64::new(0);
    let walking = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let mut counts = Counts::default();
    let mut progress = Progress::new(!args.no_progress && io::stderr().is_terminal());

    let result = std::thread::scope(|scope| -> anyhow::Result<()> {
        let (path_tx, path_rx) = mpsc::sync_channel::<walk::Found>(CHANNEL_DEPTH);
        let (done_tx, done_rx) = mpsc::sync_channel::<Checked>(CHANNEL_DEPTH);

        // Stage 1: walk.
        let done_before = &done_before;
        let (found, resumed, walking, stop) = (&found, &resumed, &walking, &stop);
        let paths = &args.paths;
        scope.spawn(move || {
            walk::walk(paths, args.follow_links, |item| {
                let (walk::Found::File(path) | walk::Found::Failed(path, _)) = &item;
                if !done_before.is_empty() && done_before.contains(path) {
                    resumed.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                found.fetch_add(1, Ordering::Relaxed);
                !stop.load(Ordering::Relaxed) && path_tx.send(item).is_ok()
            });
            walking.store(false, Ordering::Relaxed);
        });

        // Stage 2: check, on `jobs` threads sharing one queue of paths.
        let path_rx = Arc::new(Mutex::new(path_rx));
        for _ in 0..jobs {
            let path_rx = Arc::clone(&path_rx);
            let done_tx = done_tx.clone();
            let (settings, options, index) = (&settings, &options, &index);
            let follow_links = args.follow_links;
            scope.spawn(move || loop {
                let next = path_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let checked = match next {
                    Err(_) => return,
                    Ok(walk::Found::Failed(path, error)) => Checked {
                        file: name::FileName::new(path),
                        outcome: Outcome::Failed {
                            kind: "unreadable",
                            error,
                        },
                    },
                    Ok(walk::Found::File(path)) => Checked {
                        outcome: check::check(&path, follow_links, settings, options, index),
                        file: name::FileName::new(path),
                    },
                };
                if done_tx.send(checked).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);

        // Stage 3: write, here.
        let written = write_results(
            &done_rx,
            &args,
            &mut *out,
            state.as_mut(),
            &mut counts,
            |counts| {
                progress.update(
                    counts,
                    found.load(Ordering::Relaxed),
                    walking.load(Ordering::Relaxed),
                );
            },
        );
        if written.is_err() {
            // Let the walker and workers wind down instead of blocking.
            stop.store(true, Ordering::Relaxed);
            drop(done_rx);
        }
        written
    });
    progress.finish();
    result?;
    counts.resumed = resumed.load(Ordering::Relaxed);
    eprintln!(
        "hashgate scan: {}",
        Summary {
            counts,
            elapsed: started.elapsed()
        }
    );
    Ok(Tally {
        failed: counts.errors,
    }
    .exit_code())
}

/// Stage 3: writes each checked file's line, then records it as finished.
fn write_results(
    results: &mpsc::Receiver<Checked>,
    args: &ScanArgs,
    out: &mut dyn Write,
    mut state: Option<&mut state::StateWriter>,
    counts: &mut Counts,
    mut show: impl FnMut(&Counts),
) -> anyhow::Result<()> {
    let mut last_flush = Instant::now();
    let mut unflushed = false;
    loop {
        let checked = match results.recv_timeout(Duration::from_millis(100)) {
            Ok(checked) => Some(checked),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut urgent = false;
        if let Some(Checked { file, outcome }) = checked {
            let line = match &outcome {
                Outcome::Checked { hashes, matches } => {
                    counts.images += 1;
                    // Scan lines carry the image's own hashes, not its
                    // whole query set.
                    let image = HashLine {
                        file_base64: file.base64.as_deref(),
                        dihedral: None,
                        variants: Vec::new(),
                        ..HashLine::new(&file.text, hashes)
                    };
                    if matches.is_empty() {
                        args.all.then_some(ScanLine::Clean { image })
                    } else {
                        counts.matched += 1;
                        urgent = true;
                        Some(ScanLine::Match { image, matches })
                    }
                }
                Outcome::NotImage => {
                    counts.not_images += 1;
                    args.all.then_some(ScanLine::Skipped {
                        file: &file.text,
                        file_base64: file.base64.as_deref(),
                        reason: "not an image",
                    })
                }
                Outcome::Failed { kind, error } => {
                    counts.errors += 1;
                    Some(ScanLine::Error {
                        file: &file.text,
                        file_base64: file.base64.as_deref(),
                        kind,
                        error,
                    })
                }
            };
            if let Some(line) = line {
                serde_json::to_writer(&mut *out, &line).context("writing output")?;
                out.write_all(b"\n").context("writing output")?;
            }
            if let Some(state) = state.as_deref_mut() {
                state.record(&file.path)?;
            }
            unflushed = true;
        }
        // Output first, then the state that says it was written.
        if unflushed && (urgent || last_flush.elapsed() >= FLUSH_EVERY) {
            out.flush().context("writing output")?;
            if let Some(state) = state.as_deref_mut() {
                state.flush()?;
            }
            last_flush = Instant::now();
            unflushed = false;
        }
        show(counts);
    }
    out.flush().context("writing output")?;
    if let Some(state) = state {
        state.flush()?;
    }
    Ok(())
}
