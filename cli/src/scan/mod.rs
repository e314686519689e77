//! `hashgate scan`: check what a site already stores (upload folders,
//! backups, buckets in S3-API object stores such as R2) against an index.
//!
//! Three stages joined by bounded channels, so memory stays flat however
//! large the tree or bucket:
//!
//! 1. one thread walks the paths ([`walk`]) and lists the `s3://` sources
//!    a page at a time ([`s3`]), skipping inputs a resumed scan already
//!    finished;
//! 2. `--jobs` threads check inputs ([`check`]): open the file or fetch the
//!    object, sniff, read, hash, look up in the index held in memory (the
//!    same function for both);
//! 3. this thread writes one JSON line per match, error and (with `--all`)
//!    clean or skipped file, records finished files in the `--resume` state
//!    ([`state`]), and draws the progress bar ([`progress`]).
//!
//! With `--resume` and `--out`, a scan killed at any point and run again
//! ends with exactly one whole line per file: the state is written only
//! after the lines it covers ([`state`]), and the output is repaired and
//! read back on resume ([`output`]). Names that are not UTF-8 carry their
//! exact bytes in `file_base64`; objects are named `s3://bucket/key` with
//! their `version` (ETag) ([`name`]).
//!
//! Lines come in the order inputs finish, not walk order. Exit status
//! (`crate::exit`): 0 when every input was checked (matches are in the
//! lines), 1 when some could not be (each an `error` line, counted in the
//! summary), 2 when the scan could not run (no index, a bucket that cannot
//! be listed).

mod check;
mod name;
mod output;
mod progress;
mod s3;
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
    /// Inputs checked at once [default: number of cores; at least 8 when
    /// an s3:// source is scanned, as fetches wait on the network].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Follow symbolic links (loops are detected).
    #[arg(long)]
    follow_links: bool,
    /// Never draw the progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// S3 API endpoint for s3:// sources (else AWS_ENDPOINT_URL, else
    /// AWS S3); R2: https://<ACCOUNT_ID>.r2.cloudflarestorage.com.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Region for s3:// sources (else AWS_REGION or AWS_DEFAULT_REGION,
    /// else us-east-1); R2: auto.
    #[arg(long, value_name = "REGION")]
    s3_region: Option<String>,
    /// Allow a plain-HTTP --s3-endpoint (a local server).
    #[arg(long)]
    s3_allow_http: bool,
    /// Keys asked for per listing request of an s3:// source.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    s3_page_size: usize,
    /// Files and folders to scan, and s3://BUCKET/PREFIX for every object
    /// under PREFIX in an S3-API store (R2, S3, compatible).
    #[arg(required = true, value_name = "PATH|s3://BUCKET/PREFIX")]
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
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a str>,
        matches: &'a [MatchRecord],
    },
    /// An image nothing matched (`--all` only).
    Clean {
        #[serde(flatten)]
        image: HashLine<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a str>,
    },
    /// Not an image (`--all` only).
    Skipped {
        file: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_base64: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a str>,
        reason: &'static str,
    },
    /// Could not be checked.
    Error {
        file: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_base64: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a str>,
        kind: &'static str,
        error: &'a str,
    },
}

/// What a scan was asked to look at.
enum Source {
    /// A file or folder.
    Path(PathBuf),
    /// A bucket and prefix in an object store.
    S3(Arc<s3::S3Source>),
}

/// One input found by stage 1, on its way to a worker.
enum Found {
    Walked(walk::Found),
    Object(Arc<s3::S3Source>, s3::Object),
    /// A key the store lists but the client cannot name (an error line).
    Unnamable {
        url: String,
        error: String,
    },
}

/// A checked input on its way to the writer.
struct Checked {
    name: name::InputName,
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

    /// The paths and buckets to scan; each bucket is reached once here, so
    /// one that cannot be listed stops the scan before it starts.
    fn sources(&self) -> anyhow::Result<(Vec<Source>, Option<tokio::runtime::Runtime>)> {
        let connection = s3::Connection {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            allow_http: self.s3_allow_http,
            page_size: self.s3_page_size,
        };
        let mut runtime = None;
        let mut sources = Vec::with_capacity(self.paths.len());
        for path in &self.paths {
            match path.to_str().and_then(s3::Url::parse) {
                None => sources.push(Source::Path(path.clone())),
                Some(url) => {
                    let rt = match &mut runtime {
                        Some(rt) => rt,
                        None => runtime.insert(s3::runtime()?),
                    };
                    let source = s3::S3Source::connect(url?, &connection, rt)?;
                    sources.push(Source::S3(Arc::new(source)));
                }
            }
        }
        Ok((sources, runtime))
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
    // Kept alive until the scan ends: the S3 sources run on it.
    let (sources, _runtime) = args.sources()?;
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let remote = sources.iter().any(|s| matches!(s, Source::S3(_)));
    let jobs = args
        .jobs
        .unwrap_or(if remote { cores.max(8) } else { cores })
        .max(1);
    let limit = options.decode.limits.max_input_bytes as u64;

    let started = Instant::now();
    let found = AtomicU64::new(0);
    let resumed = AtomicU64::new(0);
    let walking = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let list_error = Mutex::new(None::<anyhow::Error>);
    let mut counts = Counts::default();
    let mut progress = Progress::new(!args.no_progress && io::stderr().is_terminal());

    let result = std::thread::scope(|scope| -> anyhow::Result<()> {
        let (path_tx, path_rx) = mpsc::sync_channel::<Found>(CHANNEL_DEPTH);
        let (done_tx, done_rx) = mpsc::sync_channel::<Checked>(CHANNEL_DEPTH);

        // Stage 1: walk and list.
        let done_before = &done_before;
        let (found, resumed, walking, stop) = (&found, &resumed, &walking, &stop);
        let (sources, list_error) = (&sources, &list_error);
        scope.spawn(move || {
            // Queues `item` unless an earlier run finished it; false to stop.
            let visit = |done: name::Done, item: Found| {
                if !done_before.is_empty() && done_before.contains(&done) {
                    resumed.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                found.fetch_add(1, Ordering::Relaxed);
                !stop.load(Ordering::Relaxed) && path_tx.send(item).is_ok()
            };
            'sources: for source in sources {
                match source {
                    Source::Path(root) => {
                        let mut going = true;
                        walk::walk(std::slice::from_ref(root), args.follow_links, |item| {
                            let (walk::Found::File(path) | walk::Found::Failed(path, _)) = &item;
                            going = visit(name::Done::File(path.clone()), Found::Walked(item));
                            going
                        });
                        if !going {
                            break;
                        }
                    }
                    Source::S3(store) => {
                        let mut lister = store.lister();
                        loop {
                            let page = match lister.next_page() {
                                Ok(Some(page)) => page,
                                Ok(None) => break,
                                Err(e) => {
                                    *list_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                                    break 'sources;
                                }
                            };
                            for listed in page {
                                let (done, item) = match listed {
                                    s3::Listed::Object(object) => (
                                        name::Done::Object {
                                            url: object.url(),
                                            version: object.version.clone(),
                                        },
                                        Found::Object(Arc::clone(store), object),
                                    ),
                                    // No ETag to tell versions apart.
                                    s3::Listed::Unnamable { url, error } => (
                                        name::Done::Object {
                                            url: url.clone(),
                                            version: String::new(),
                                        },
                                        Found::Unnamable { url, error },
                                    ),
                                };
                                if !visit(done, item) {
                                    break 'sources;
                                }
                            }
                        }
                    }
                }
            }
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
                    Ok(Found::Walked(walk::Found::Failed(path, error))) => Checked {
                        name: name::InputName::file(path),
                        outcome: Outcome::Failed {
                            kind: "unreadable",
                            error,
                        },
                    },
                    Ok(Found::Walked(walk::Found::File(path))) => Checked {
                        outcome: check::check_file(&path, follow_links, settings, options, index),
                        name: name::InputName::file(path),
                    },
                    Ok(Found::Object(store, object)) => Checked {
                        outcome: match store.open(&object, limit) {
                            Ok(body) => check::check(body, object.size, settings, options, index),
                            Err(error) => Outcome::Failed {
                                kind: "unreadable",
                                error,
                            },
                        },
                        name: name::InputName::object(object.url(), object.version),
                    },
                    Ok(Found::Unnamable { url, error }) => Checked {
                        name: name::InputName::object(url, String::new()),
                        outcome: Outcome::Failed {
                            kind: "unreadable",
                            error,
                        },
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
    if let Some(error) = list_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error.context(
            "the scan stopped; the lines written so far stand (with --resume, run again to go on)",
        ));
    }
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
        if let Some(Checked {
            name: file,
            outcome,
        }) = checked
        {
            let version = file.version();
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
                        args.all.then_some(ScanLine::Clean { image, version })
                    } else {
                        counts.matched += 1;
                        urgent = true;
                        Some(ScanLine::Match {
                            image,
                            version,
                            matches,
                        })
                    }
                }
                Outcome::NotImage => {
                    counts.not_images += 1;
                    args.all.then_some(ScanLine::Skipped {
                        file: &file.text,
                        file_base64: file.base64.as_deref(),
                        version,
                        reason: "not an image",
                    })
                }
                Outcome::Failed { kind, error } => {
                    counts.errors += 1;
                    Some(ScanLine::Error {
                        file: &file.text,
                        file_base64: file.base64.as_deref(),
                        version,
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
                state.record(&file.done)?;
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
