//! The files of a built index directory (feature `store`: native file I/O).
//!
//! * `index.snapshot`: the whole index in one checksummed file
//!   ([`crate::index::snapshot`]); what `match`, `scan` and `serve` load.
//! * `kv-current.json`: the generation's manifest, the value of
//!   `hg2/current` ([`crate::index::generation`]); uploaded last.
//! * `kv-part-N.bin` (resident layout): the snapshot in parts, the values of
//!   `hg2/<generation>/part/N`, uploaded before the manifest.
//!
//! A build is written into a new directory beside `--out` and then swapped
//! with it in one atomic step ([`publish_dir`]), so that after a crash at
//! any point `--out` is wholly the old build or wholly the new one.
//!
//! For the bucket layout (indexes too large to hold in an isolate), also:
//!
//! * `index.hgkv`: the local copy of the records, exactly the keys and
//!   values Workers KV gets, sorted by key. `hashgate match` reads it with
//!   the same plan/resolve code the worker runs against KV, and `hashgate
//!   index diff` walks two of them side by side. Format: the line
//!   `HGKV2`, then per record a little-endian u32 key length, the key, a u32
//!   value length, the value; then an end record, the key length
//!   `u32::MAX` followed by the number of records as a little-endian u64.
//!   The end record is there because a file cut short at a record boundary
//!   (a writer killed or out of disk, a copy interrupted) would otherwise
//!   read as a valid index with entries missing, and a service reloading
//!   it would silently stop matching them.
//! * `kv-bulk.json` (or, past 100 MiB, `kv-bulk.0001.json`, ...): the same
//!   records as `wrangler kv bulk put` takes them. Values are already text
//!   (base64 records, JSON meta), so `base64` is false: KV stores the text,
//!   which is what its bulk read returns.
//! * `kv-delete.json` (diffs only): the keys to delete, as `wrangler kv bulk
//!   delete` takes them.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why an index directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused (the action says what was being done).
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The records file is not one `hashgate index build` writes.
    #[error("{} is not a hashgate index file", path.display())]
    NotAnIndex { path: PathBuf },
    /// The records file is cut short, miscounted or malformed.
    #[error("reading {}: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    /// A record or a bulk file could not be encoded.
    #[error("encoding {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Attaches what was being done, and to which path, to an I/O error.
trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        })
    }
}

pub const RECORDS_FILE: &str = "index.hgkv";
pub const SNAPSHOT_FILE: &str = "index.snapshot";
pub const MANIFEST_FILE: &str = "kv-current.json";

/// The file holding part `index` of a resident snapshot.
pub fn part_file(index: usize) -> String {
    format!("kv-part-{index}.bin")
}

/// Writes `bytes` to `path` and syncs it to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).at("creating", path)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .at("writing", path)
}

/// A fresh directory beside `out` to build into (its name starts with
/// `out`'s, so it is on the same file system and [`publish_dir`] can swap).
pub fn staging_dir(out: &Path) -> Result<PathBuf, StoreError> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index".to_owned());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).at("creating", &parent)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let staging = parent.join(format!(".{name}.building-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&staging).at("creating", &staging)?;
    Ok(staging)
}

/// Makes the finished `staging` directory become `out`, atomically: on
/// Linux by exchanging the two paths in one `renameat2(RENAME_EXCHANGE)`,
/// then removing what was `out`. A crash before the exchange leaves `out`
/// as it was, after it leaves the new build; either way only a stale
/// staging directory may be left beside it (removed by the next build).
pub fn publish_dir(staging: &Path, out: &Path) -> Result<(), StoreError> {
    sync_dir(staging);
    if std::fs::symlink_metadata(out).is_err() {
        std::fs::rename(staging, out).at("renaming into place", staging)?;
    } else {
        exchange(staging, out)?;
        // `staging` now holds the previous build.
        std::fs::remove_dir_all(staging).at("removing the previous build", staging)?;
    }
    if let Some(parent) = out.parent() {
        sync_dir(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        });
    }
    Ok(())
}

/// Removes staging directories a killed build left beside `out`.
pub fn remove_stale_staging(out: &Path) {
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.building-");
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<(), StoreError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(io::Error::other)
            .at("naming", p)
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; renameat2 reads them only.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).at("exchanging with the previous build", a);
    }
    Ok(())
}

/// Elsewhere: move the old build aside, then the new one in (a crash
/// between the two renames leaves the old build under the aside name).
#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<(), StoreError> {
    let aside = a.with_extension("previous");
    std::fs::rename(b, &aside).at("moving aside", b)?;
    std::fs::rename(a, b).at("renaming into place", a)?;
    std::fs::rename(&aside, a).at("moving back", &aside)?;
    Ok(())
}
pub const BULK_STEM: &str = "kv-bulk";
pub const DELETE_FILE: &str = "kv-delete.json";
const MAGIC: &[u8] = b"HGKV2\n";
/// The key length that marks the end record: no key is this long.
const END_MARK: u32 = u32::MAX;
/// Largest bulk file written; node (wrangler) cannot hold much larger JSON
/// in one string.
const BULK_FILE_LIMIT: usize = 100 * 1024 * 1024;

/// Writes `index.hgkv` from records sorted by key: into a temporary file
/// beside it, synced, then renamed over it, so that a reader (a running
/// `hashgate serve`) sees the old file or the new one, never part of one,
/// and a build that fails or is killed leaves the old file as it was.
pub fn write_records<'a>(
    dir: &Path,
    records: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<PathBuf, StoreError> {
    let path = dir.join(RECORDS_FILE);
    let partial = dir.join(format!("{RECORDS_FILE}.partial"));
    let file = File::create(&partial).at("creating", &partial)?;
    let mut out = BufWriter::new(file);
    let write = |out: &mut BufWriter<File>, key: &str, value: &str| -> io::Result<()> {
        for field in [key.as_bytes(), value.as_bytes()] {
            let len = u32::try_from(field.len())
                .ok()
                .filter(|&len| len != END_MARK)
                .ok_or_else(|| io::Error::other("record too large"))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(field)?;
        }
        Ok(())
    };
    out.write_all(MAGIC)
        .and_then(|()| {
            let mut count: u64 = 0;
            for (key, value) in records {
                write(&mut out, key, value)?;
                count += 1;
            }
            out.write_all(&END_MARK.to_le_bytes())?;
            out.write_all(&count.to_le_bytes())?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })
        .at("writing", &partial)?;
    std::fs::rename(&partial, &path).at("renaming into place", &partial)?;
    Ok(path)
}

/// Reads `index.hgkv` record by record.
///
/// A file that ends anywhere but right after its end record, or whose
/// record count disagrees, is an error: it is not a whole index. Generic
/// over the input so that the fuzz target reads bytes in memory.
pub struct RecordReader<R = BufReader<File>> {
    path: PathBuf,
    input: R,
    /// Bytes of the input not read yet: no field may claim more (a corrupt
    /// length must not make the reader allocate gigabytes).
    remaining: u64,
    /// Records read so far.
    count: u64,
    done: bool,
}

impl RecordReader {
    /// Opens the records file of the index in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(RECORDS_FILE);
        let file = File::open(&path).at(
            "opening (not a directory made by `hashgate index build`?)",
            &path,
        )?;
        let len = file.metadata().at("reading", &path)?.len();
        RecordReader::new(path, BufReader::new(file), len)
    }
}

impl<R: Read> RecordReader<R> {
    /// Reads records from `input`, `len` bytes long; `path` names it in
    /// errors.
    pub fn new(path: PathBuf, mut input: R, len: u64) -> Result<Self, StoreError> {
        let mut magic = [0u8; MAGIC.len()];
        if len < MAGIC.len() as u64 || input.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(StoreError::NotAnIndex { path });
        }
        Ok(RecordReader {
            path,
            input,
            remaining: len - MAGIC.len() as u64,
            count: 0,
            done: false,
        })
    }

    fn corrupt(&self, problem: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            problem,
        }
    }

    /// Fills `buf`, or fails naming the file as truncated.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        let len = buf.len() as u64;
        if len > self.remaining {
            return Err(self.corrupt(format!(
                "truncated ({len} bytes expected, {} left)",
                self.remaining
            )));
        }
        if let Err(error) = self.input.read_exact(buf) {
            return Err(self.corrupt(format!("truncated ({error})")));
        }
        self.remaining -= len;
        Ok(())
    }

    fn field(&mut self, len: u32) -> Result<String, StoreError> {
        if u64::from(len) > self.remaining {
            return Err(self.corrupt(format!(
                "truncated (a field of {len} bytes, {} left)",
                self.remaining
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        self.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|_| self.corrupt("a field is not UTF-8".to_owned()))
    }

    fn length(&mut self) -> Result<u32, StoreError> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        Ok(u32::from_le_bytes(len))
    }

    /// Checks the end record, whose mark was just read.
    fn end(&mut self) -> Result<(), StoreError> {
        let mut count = [0u8; 8];
        self.read_exact(&mut count)?;
        let count = u64::from_le_bytes(count);
        if count != self.count {
            return Err(self.corrupt(format!(
                "the end record counts {count} records, the file holds {}",
                self.count
            )));
        }
        if self.remaining != 0 {
            return Err(self.corrupt(format!("{} bytes after the end record", self.remaining)));
        }
        Ok(())
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(String, String)>, StoreError> {
        if self.done {
            return Ok(None);
        }
        if self.remaining == 0 {
            return Err(
                self.corrupt("truncated (no end record: the file is incomplete)".to_owned())
            );
        }
        let key_len = self.length()?;
        if key_len == END_MARK {
            self.end()?;
            self.done = true;
            return Ok(None);
        }
        let key = self.field(key_len)?;
        let value_len = self.length()?;
        let value = self.field(value_len)?;
        self.count += 1;
        Ok(Some((key, value)))
    }

    /// Adapts to an infallible iterator for [`crate::index::diff_sorted`];
    /// the first error stops it and is kept in `error`.
    pub fn records<'e>(
        &'e mut self,
        error: &'e mut Option<StoreError>,
    ) -> impl Iterator<Item = (String, String)> + 'e {
        std::iter::from_fn(move || {
            if error.is_some() {
                return None;
            }
            match self.next_record() {
                Ok(record) => record,
                Err(e) => {
                    *error = Some(e);
                    None
                }
            }
        })
    }
}

#[derive(Serialize)]
struct BulkEntry<'a> {
    key: &'a str,
    value: &'a str,
    base64: bool,
}

/// Streams `wrangler kv bulk put` JSON into `STEM.json`, or numbered parts
/// once it would pass [`BULK_FILE_LIMIT`].
pub struct BulkWriter {
    dir: PathBuf,
    stem: String,
    pending: Vec<u8>,
    entries_in_pending: usize,
    written: Vec<PathBuf>,
}

impl BulkWriter {
    pub fn new(dir: &Path, stem: &str) -> Self {
        BulkWriter {
            dir: dir.to_owned(),
            stem: stem.to_owned(),
            pending: Vec::new(),
            entries_in_pending: 0,
            written: Vec::new(),
        }
    }

    pub fn put(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let entry = serde_json::to_vec(&BulkEntry {
            key,
            value,
            base64: false,
        })
        .map_err(|source| StoreError::Encode {
            path: self.dir.clone(),
            source,
        })?;
        if self.entries_in_pending > 0 && self.pending.len() + entry.len() + 4 > BULK_FILE_LIMIT {
            self.flush_part()?;
        }
        self.pending
            .extend_from_slice(if self.entries_in_pending == 0 {
                b"[\n"
            } else {
                b",\n"
            });
        self.pending.extend_from_slice(&entry);
        self.entries_in_pending += 1;
        Ok(())
    }

    fn flush_part(&mut self) -> Result<(), StoreError> {
        let path = self
            .dir
            .join(format!("{}.{:04}.json", self.stem, self.written.len() + 1));
        self.write_pending(path)
    }

    fn write_pending(&mut self, path: PathBuf) -> Result<(), StoreError> {
        if self.entries_in_pending == 0 {
            self.pending.extend_from_slice(b"[");
        }
        self.pending.extend_from_slice(b"\n]\n");
        std::fs::write(&path, &self.pending).at("writing", &path)?;
        self.pending.clear();
        self.entries_in_pending = 0;
        self.written.push(path);
        Ok(())
    }

    /// Writes what is left and returns every file written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, StoreError> {
        let path = if self.written.is_empty() {
            self.dir.join(format!("{}.json", self.stem))
        } else {
            self.dir
                .join(format!("{}.{:04}.json", self.stem, self.written.len() + 1))
        };
        if self.entries_in_pending > 0 || self.written.is_empty() {
            self.write_pending(path)?;
        }
        Ok(self.written)
    }
}

/// Writes the keys to delete, as `wrangler kv bulk delete` takes them.
pub fn write_deletes(dir: &Path, keys: &[String]) -> Result<PathBuf, StoreError> {
    let path = dir.join(DELETE_FILE);
    let mut json = serde_json::to_vec_pretty(keys).map_err(|source| StoreError::Encode {
        path: path.clone(),
        source,
    })?;
    json.push(b'\n');
    std::fs::write(&path, json).at("writing", &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<(String, String)> {
        (0..5)
            .map(|i| (format!("hg1/key/{i}"), "v".repeat(i * 3)))
            .collect()
    }

    fn write(dir: &Path) -> Vec<u8> {
        let records = records();
        let path = write_records(dir, records.iter().map(|(k, v)| (k, v))).unwrap();
        std::fs::read(path).unwrap()
    }

    fn read_all(dir: &Path) -> Result<Vec<(String, String)>, StoreError> {
        let mut reader = RecordReader::open(dir)?;
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path());
        assert_eq!(read_all(dir.path()).unwrap(), records());
        // Written beside, then renamed: nothing else is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [RECORDS_FILE]);
    }

    #[test]
    fn every_shorter_prefix_is_refused() {
        // Including those that end exactly between two records, which
        // would otherwise read as a smaller valid index.
        let dir = tempfile::tempdir().unwrap();
        let whole = write(dir.path());
        for len in 0..whole.len() {
            std::fs::write(dir.path().join(RECORDS_FILE), &whole[..len]).unwrap();
            assert!(read_all(dir.path()).is_err(), "a prefix of {len} bytes");
        }
    }

    #[test]
    fn trailing_bytes_and_wrong_counts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let whole = write(dir.path());
        let path = dir.path().join(RECORDS_FILE);
        let mut longer = whole.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(read_all(dir.path()).is_err());
        let mut miscounted = whole.clone();
        let at = miscounted.len() - 8;
        miscounted[at] += 1;
        std::fs::write(&path, &miscounted).unwrap();
        let error = read_all(dir.path()).unwrap_err().to_string();
        assert!(error.contains("counts 6 records"), "{error}");
    }

    #[test]
    fn a_length_beyond_the_file_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
        bytes.extend_from_slice(b"short");
        std::fs::write(dir.path().join(RECORDS_FILE), &bytes).unwrap();
        let error = read_all(dir.path()).unwrap_err().to_string();
        assert!(error.contains("truncated (a field of"), "{error}");
    }
}
