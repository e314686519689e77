//! The `--resume` state file: which files an interrupted scan already
//! finished, so running the same command again picks up where it stopped.
//!
//! Format, one JSON value per line: a header object naming the settings
//! that decide a file's result, then one entry per finished file, appended
//! as results are written: the path as a JSON string, or `{"base64": ...}`
//! for a path that is not UTF-8 ([`super::name`]), so every name is kept
//! exactly; an object as `{"object": "s3://bucket/key", "version": ETAG}`,
//! so an object replaced since (another ETag) is scanned again.
//!
//! Crash consistency. Entries are held in memory and written only by
//! [`StateWriter::flush`], which the scan calls after the output lines they
//! cover were written: the state never runs ahead of the output. It may
//! run behind (a kill between the two writes); the `--out` file then names
//! those files itself, and [`super::output`] counts them as done too. A
//! torn last line (the process died mid-write) is ignored and that file is
//! scanned again; a torn header (the first run died creating the file) is
//! written again.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::name::{self, Done};

/// The header's format marker.
const FORMAT: &str = "hashgate-scan-state/2";

/// The settings a state file is valid for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub threshold: u32,
    pub lists: Vec<String>,
    pub variants: hashgate::QuerySet,
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
    file: File,
    pending: Vec<u8>,
}

/// Opens (or creates) the state file: the files already finished, and a
/// writer for the ones finished from now on.
pub fn open(
    path: &Path,
    fingerprint: &Fingerprint,
) -> anyhow::Result<(HashSet<Done>, StateWriter)> {
    let header = serde_json::to_string(&Header {
        format: FORMAT,
        settings: fingerprint,
    })?;
    let context = || format!("state file {}", path.display());
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(context)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).with_context(context)?;
    let mut done = HashSet::new();
    if !text.contains(&b'\n') {
        // New, or a header torn before its newline: start it again.
        file.set_len(0).with_context(context)?;
        file.write_all(format!("{header}\n").as_bytes())
            .with_context(context)?;
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
            let entry = serde_json::from_str(line).ok();
            if let Some(done_path) = entry.as_ref().and_then(name::of_state) {
                done.insert(done_path);
            }
        }
        if !text.ends_with('\n') {
            file.write_all(b"\n").with_context(context)?;
        }
    }
    file.seek(SeekFrom::End(0))?;
    Ok((
        done,
        StateWriter {
            path: path.to_owned(),
            file,
            pending: Vec::new(),
        },
    ))
}

impl StateWriter {
    /// Records a finished input, in memory until [`StateWriter::flush`].
    pub fn record(&mut self, done: &Done) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.pending, &name::to_state(done))
            .with_context(|| format!("writing state file {}", self.path.display()))?;
        self.pending.push(b'\n');
        Ok(())
    }

    /// Writes what was recorded; call only after the output it covers was
    /// written.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .with_context(|| format!("writing state file {}", self.path.display()))?;
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(path: &str) -> Done {
        Done::File(PathBuf::from(path))
    }

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            threshold: 31,
            lists: vec!["demo".into()],
            variants: hashgate::QuerySet::All,
            all: false,
        }
    }

    #[test]
    fn records_survive_reopening_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (done, mut writer) = open(&path, &fingerprint()).unwrap();
        assert!(done.is_empty());
        writer.record(&finished("a/1.jpg")).unwrap();
        writer.record(&finished("b/\"quoted\".png")).unwrap();
        writer.flush().unwrap();
        drop(writer);
        // A crash mid-write leaves a torn line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\"c/3.j").unwrap();
        drop(file);

        let (done, mut writer) = open(&path, &fingerprint()).unwrap();
        assert_eq!(done.len(), 2);
        assert!(
            done.contains(&finished("a/1.jpg")) && done.contains(&finished("b/\"quoted\".png"))
        );
        writer.record(&finished("c/3.jpg")).unwrap();
        writer.flush().unwrap();
        drop(writer);
        let (done, _) = open(&path, &fingerprint()).unwrap();
        assert!(done.contains(&finished("c/3.jpg")), "{done:?}");
    }

    #[test]
    fn nothing_reaches_the_file_before_flush_and_a_torn_header_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (_, mut writer) = open(&path, &fingerprint()).unwrap();
        let header = std::fs::read(&path).unwrap();
        for n in 0..2000 {
            writer.record(&finished(&format!("dir/{n}.jpg"))).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            header,
            "written before flush"
        );
        drop(writer);
        std::fs::write(&path, &header[..header.len() / 2]).unwrap();
        let (done, _) = open(&path, &fingerprint()).unwrap();
        assert!(done.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), header);
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
