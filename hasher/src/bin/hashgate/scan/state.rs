//! The `--resume` state file: which files an interrupted scan already
//! finished, so running the same command again picks up where it stopped.
//!
//! Format, one JSON value per line: a header object naming the settings
//! that decide a file's result, then one path string per finished file,
//! appended as results are written. A file is recorded only after its
//! output line has been flushed, so a crash can repeat a line on resume
//! but never lose one. A torn last line (the process died mid-write) is
//! ignored and that file is scanned again.
//!
//! Paths are recorded as text. A path that is not valid UTF-8 is recorded
//! with replacement characters, so two such paths that differ only in their
//! invalid bytes count as one.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

/// The header's format marker.
const FORMAT: &str = "hashgate-scan-state/1";

/// The settings a state file is valid for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub threshold: u32,
    pub lists: Vec<String>,
    pub dihedral: bool,
    pub variants: bool,
    pub all: bool,
}

#[derive(Serialize)]
struct Header<'a> {
    format: &'a str,
    settings: &'a Fingerprint,
}

/// Appends finished files to the state file.
pub struct StateWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

/// Opens (or creates) the state file: the files already finished, and a
/// writer for the ones finished from now on.
pub fn open(
    path: &Path,
    fingerprint: &Fingerprint,
) -> anyhow::Result<(HashSet<String>, StateWriter)> {
    let header = serde_json::to_string(&Header {
        format: FORMAT,
        settings: fingerprint,
    })?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening state file {}", path.display()))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .with_context(|| format!("reading state file {}", path.display()))?;
    let mut done = HashSet::new();
    if text.is_empty() {
        file.write_all(format!("{header}\n").as_bytes())
            .with_context(|| format!("writing state file {}", path.display()))?;
    } else {
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        if first != header {
            bail!(
                "state file {} belongs to another scan (its settings: {first}; this scan: {header}); \
                 use another --resume file or delete it to start over",
                path.display()
            );
        }
        for line in lines {
            // A torn last line does not parse: that file is scanned again.
            if let Ok(done_path) = serde_json::from_str::<String>(line) {
                done.insert(done_path);
            }
        }
        if !text.ends_with('\n') {
            file.write_all(b"\n")
                .with_context(|| format!("writing state file {}", path.display()))?;
        }
    }
    file.seek(SeekFrom::End(0))?;
    Ok((
        done,
        StateWriter {
            path: path.to_owned(),
            out: BufWriter::new(file),
        },
    ))
}

impl StateWriter {
    /// Records a finished file (buffered until [`StateWriter::flush`]).
    pub fn record(&mut self, file: &str) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, file)
            .and_then(|()| self.out.write_all(b"\n").map_err(serde_json::Error::io))
            .with_context(|| format!("writing state file {}", self.path.display()))
    }

    /// Writes what was recorded; call only after the output it covers was
    /// flushed.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing state file {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            threshold: 31,
            lists: vec!["demo".into()],
            dihedral: false,
            variants: true,
            all: false,
        }
    }

    #[test]
    fn records_survive_reopening_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (done, mut writer) = open(&path, &fingerprint()).unwrap();
        assert!(done.is_empty());
        writer.record("a/1.jpg").unwrap();
        writer.record("b/\"quoted\".png").unwrap();
        writer.flush().unwrap();
        drop(writer);
        // A crash mid-write leaves a torn line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\"c/3.j").unwrap();
        drop(file);

        let (done, mut writer) = open(&path, &fingerprint()).unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.contains("a/1.jpg") && done.contains("b/\"quoted\".png"));
        writer.record("c/3.jpg").unwrap();
        writer.flush().unwrap();
        drop(writer);
        let (done, _) = open(&path, &fingerprint()).unwrap();
        assert!(done.contains("c/3.jpg"), "{done:?}");
    }

    #[test]
    fn refuses_a_state_file_from_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        drop(open(&path, &fingerprint()).unwrap());
        let other = Fingerprint {
            threshold: 10,
            ..fingerprint()
        };
        let error = open(&path, &other).err().unwrap().to_string();
        assert!(error.contains("another scan"), "{error}");
    }
}
