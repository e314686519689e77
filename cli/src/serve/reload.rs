//! The index the service answers from, and how it is replaced without
//! downtime.
//!
//! Requests take an `Arc` of the current [`LoadedIndex`] and keep it for
//! their whole lookup; a reload builds the new index beside the old one and
//! swaps the pointer, so no request ever waits for a load or sees half of
//! one. The old index is freed when its last request finishes.
//!
//! A reload happens on SIGHUP, or when polling sees the records file change
//! (size, modification time or inode). `hashgate index build` renames a
//! finished file into place, but other writers (a copy, a sync tool) write
//! in place, so a poll could catch the file half-written: a change is only
//! loaded once the file has looked the same for one whole poll interval,
//! and a load is kept only if the file did not change while it was read (a
//! file cut short is also refused by its missing end record). A file that
//! fails to load (corrupt, missing) leaves the old index serving, is
//! counted once, and is not retried until it changes again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::metrics::Metrics;
use hashgate::index::store::SNAPSHOT_FILE;
use hashgate::matching::MemoryIndex;

/// What identifies one version of the records file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// One loaded version of the index.
#[derive(Debug)]
pub struct LoadedIndex {
    pub index: MemoryIndex,
    /// Distinct hashes by type, from the index's meta record.
    pub distinct: BTreeMap<String, u64>,
    stamp: Option<FileStamp>,
    loaded_at: SystemTime,
}

/// What one attempt to read the index gave.
#[derive(Debug)]
enum LoadOutcome {
    Loaded(Box<LoadedIndex>),
    /// The file changed while it was read: try again once it settles.
    Moving,
    /// The file (at `stamp`) cannot be loaded.
    Failed {
        stamp: Option<FileStamp>,
        error: anyhow::Error,
    },
}

impl LoadedIndex {
    /// Reads the index in `dir`, checking that the file did not change
    /// while it was read.
    fn load(dir: &Path) -> LoadOutcome {
        let path = dir.join(SNAPSHOT_FILE);
        let before = match FileStamp::of(&path) {
            Ok(stamp) => stamp,
            Err(error) => {
                let error =
                    anyhow::Error::new(error).context(format!("reading {}", path.display()));
                return LoadOutcome::Failed { stamp: None, error };
            }
        };
        let index = match MemoryIndex::load(dir) {
            Ok(index) => index,
            Err(error) => {
                return match FileStamp::of(&path) {
                    Ok(after) if after == before => LoadOutcome::Failed {
                        stamp: Some(before),
                        error: error.into(),
                    },
                    _ => LoadOutcome::Moving,
                }
            }
        };
        match FileStamp::of(&path) {
            Ok(after) if after == before => {}
            _ => return LoadOutcome::Moving,
        }
        let distinct = index.counts();
        LoadOutcome::Loaded(Box::new(LoadedIndex {
            index,
            distinct,
            stamp: Some(before),
            loaded_at: SystemTime::now(),
        }))
    }

    /// When this version was read, in seconds since 1970.
    pub fn loaded_unix_seconds(&self) -> f64 {
        self.loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    #[cfg(test)]
    pub fn empty_for_tests() -> Self {
        LoadedIndex {
            index: MemoryIndex::default(),
            distinct: BTreeMap::new(),
            stamp: None,
            loaded_at: UNIX_EPOCH,
        }
    }
}

/// The current index, swapped whole on reload.
#[derive(Debug)]
pub struct IndexHolder {
    dir: PathBuf,
    current: RwLock<Arc<LoadedIndex>>,
}

impl IndexHolder {
    /// Loads the index in `dir`; failing here stops the service from
    /// starting.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        // A file being rewritten right now gets a few chances to settle.
        for _ in 0..20 {
            match LoadedIndex::load(dir) {
                LoadOutcome::Loaded(loaded) => {
                    return Ok(IndexHolder {
                        dir: dir.to_owned(),
                        current: RwLock::new(Arc::new(*loaded)),
                    })
                }
                LoadOutcome::Moving => std::thread::sleep(Duration::from_millis(100)),
                LoadOutcome::Failed { error, .. } => return Err(error),
            }
        }
        anyhow::bail!(
            "{} keeps changing while it is read",
            dir.join(SNAPSHOT_FILE).display()
        )
    }

    /// The index to answer one request from.
    pub fn current(&self) -> Arc<LoadedIndex> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, loaded: LoadedIndex) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
    }

    fn stamp_now(&self) -> Option<FileStamp> {
        FileStamp::of(&self.dir.join(SNAPSHOT_FILE)).ok()
    }
}

/// Why a reload was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP: load now, whether or not the file looks changed.
    Signal,
    /// Polling saw a settled change.
    Changed,
}

/// Reloads the index on SIGHUP (a message on `signals`) and, every
/// `interval`, when the records file has changed and settled. Runs until the
/// sender of `signals` is dropped.
pub async fn watch(
    holder: Arc<IndexHolder>,
    metrics: Arc<Metrics>,
    interval: Option<Duration>,
    mut signals: mpsc::Receiver<()>,
) {
    // A far-off tick when polling is off keeps one `select!` below.
    let period = interval.unwrap_or(Duration::from_secs(3600 * 24 * 365));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    // What the file looks like at a poll: its stamp, or `None` when it is
    // missing (a removed file is a change too: it fails to load, and is
    // counted, once).
    type FileState = Option<FileStamp>;
    // A changed state seen at the last poll, loaded if it is seen again.
    let mut settling: Option<FileState> = None;
    // The state of a file that failed to load, not retried until it changes.
    let mut failed: Option<FileState> = None;
    loop {
        let trigger = tokio::select! {
            _ = ticker.tick(), if interval.is_some() => {
                let now: FileState = holder.stamp_now();
                let loaded = holder.current().stamp;
                if now == loaded || failed == Some(now) {
                    settling = None;
                    continue;
                }
                if settling != Some(now) {
                    settling = Some(now);
                    continue;
                }
                Trigger::Changed
            }
            signal = signals.recv() => match signal {
                Some(()) => Trigger::Signal,
                None => return,
            },
        };
        settling = None;
        let dir = holder.dir.clone();
        let result = tokio::task::spawn_blocking(move || LoadedIndex::load(&dir)).await;
        match result {
            Ok(LoadOutcome::Loaded(loaded)) => {
                eprintln!(
                    "hashgate serve: index reloaded ({trigger:?}): {} hashes",
                    loaded.index.distinct_hashes()
                );
                failed = None;
                holder.replace(*loaded);
                metrics.reloaded(true);
            }
            Ok(LoadOutcome::Moving) => {
                // Polling picks it up again once the writer is done.
                if interval.is_none() {
                    eprintln!(
                        "hashgate serve: the index changed while it was read; \
                         still serving the previous index (send SIGHUP again)"
                    );
                }
            }
            Ok(LoadOutcome::Failed { stamp, error }) => {
                eprintln!(
                    "hashgate serve: index reload failed, still serving the previous index: {error:#}"
                );
                failed = Some(stamp);
                metrics.reloaded(false);
            }
            Err(error) => {
                eprintln!("hashgate serve: index reload failed: {error}");
                metrics.reloaded(false);
            }
        }
    }
}
