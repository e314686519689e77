//! The files of a built index directory.
//!
//! * `index.hgkv`: the local copy of the records, exactly the keys and
//!   values Workers KV gets, sorted by key. `hashgate match` reads it with
//!   the same plan/resolve code the worker runs against KV, and `hashgate
//!   index diff` walks two of them side by side. Format: the line
//!   `HGKV1`, then per record a little-endian u32 key length, the key, a u32
//!   value length, the value.
//! * `kv-bulk.json` (or, past 100 MiB, `kv-bulk.0001.json`, ...): the same
//!   records as `wrangler kv bulk put` takes them. Values are already text
//!   (base64 records, JSON meta), so `base64` is false: KV stores the text,
//!   which is what its bulk read returns.
//! * `kv-delete.json` (diffs only): the keys to delete, as `wrangler kv bulk
//!   delete` takes them.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

pub const RECORDS_FILE: &str = "index.hgkv";
pub const BULK_STEM: &str = "kv-bulk";
pub const DELETE_FILE: &str = "kv-delete.json";
const MAGIC: &[u8] = b"HGKV1\n";
/// Largest bulk file written; node (wrangler) cannot hold much larger JSON
/// in one string.
const BULK_FILE_LIMIT: usize = 100 * 1024 * 1024;

/// Writes `index.hgkv` from records sorted by key.
pub fn write_records<'a>(
    dir: &Path,
    records: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(RECORDS_FILE);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let write = |out: &mut BufWriter<File>, key: &str, value: &str| -> io::Result<()> {
        for field in [key.as_bytes(), value.as_bytes()] {
            let len =
                u32::try_from(field.len()).map_err(|_| io::Error::other("record too large"))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(field)?;
        }
        Ok(())
    };
    out.write_all(MAGIC)
        .and_then(|()| {
            for (key, value) in records {
                write(&mut out, key, value)?;
            }
            out.flush()
        })
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads `index.hgkv` record by record.
pub struct RecordReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl RecordReader {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(RECORDS_FILE);
        let file = File::open(&path).with_context(|| {
            format!(
                "opening {} (not a directory made by `hashgate index build`?)",
                path.display()
            )
        })?;
        let mut input = BufReader::new(file);
        let mut magic = [0u8; MAGIC.len()];
        input
            .read_exact(&mut magic)
            .with_context(|| format!("reading {}", path.display()))?;
        if magic != MAGIC {
            bail!("{} is not a hashgate index file", path.display());
        }
        Ok(RecordReader { path, input })
    }

    fn field(&mut self, first: bool) -> anyhow::Result<Option<String>> {
        let mut len = [0u8; 4];
        if let Err(error) = self.input.read_exact(&mut len) {
            if first && error.kind() == io::ErrorKind::UnexpectedEof {
                return Ok(None);
            }
            return Err(error).with_context(|| format!("reading {}", self.path.display()));
        }
        let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
        self.input
            .read_exact(&mut bytes)
            .with_context(|| format!("reading {}: truncated", self.path.display()))?;
        String::from_utf8(bytes)
            .map(Some)
            .with_context(|| format!("reading {}: not UTF-8", self.path.display()))
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> anyhow::Result<Option<(String, String)>> {
        let Some(key) = self.field(true)? else {
            return Ok(None);
        };
        let value = self
            .field(false)?
            .with_context(|| format!("reading {}: truncated", self.path.display()))?;
        Ok(Some((key, value)))
    }

    /// Adapts to an infallible iterator for [`hashgate::index::diff_sorted`];
    /// the first error stops it and is kept in `error`.
    pub fn records<'e>(
        &'e mut self,
        error: &'e mut Option<anyhow::Error>,
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

    pub fn put(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        let entry = serde_json::to_vec(&BulkEntry {
            key,
            value,
            base64: false,
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

    fn flush_part(&mut self) -> anyhow::Result<()> {
        let path = self
            .dir
            .join(format!("{}.{:04}.json", self.stem, self.written.len() + 1));
        self.write_pending(path)
    }

    fn write_pending(&mut self, path: PathBuf) -> anyhow::Result<()> {
        if self.entries_in_pending == 0 {
            self.pending.extend_from_slice(b"[");
        }
        self.pending.extend_from_slice(b"\n]\n");
        std::fs::write(&path, &self.pending)
            .with_context(|| format!("writing {}", path.display()))?;
        self.pending.clear();
        self.entries_in_pending = 0;
        self.written.push(path);
        Ok(())
    }

    /// Writes what is left and returns every file written.
    pub fn finish(mut self) -> anyhow::Result<Vec<PathBuf>> {
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
pub fn write_deletes(dir: &Path, keys: &[String]) -> anyhow::Result<PathBuf> {
    let path = dir.join(DELETE_FILE);
    let mut json = serde_json::to_vec_pretty(keys)?;
    json.push(b'\n');
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
