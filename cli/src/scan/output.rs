//! The `--out` file, and what it tells a resumed scan.
//!
//! Lines are appended through a buffer, so a scan killed at any moment can
//! leave a line cut short at the end of the file, and lines whose files the
//! resume state does not list yet ([`super::state`] is written after them).
//! Resuming therefore repairs the file before appending: it cuts it back to
//! its last whole line, and counts every file a whole line names as done.
//! Together: after a crash at any point and a resumed run, every file has
//! exactly one line and no line is cut.
//!
//! Without `--out`, lines go to standard output, which cannot be read back:
//! a resumed scan then repeats the lines written after the state's last
//! update (never loses one).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;

use super::name::{self, Done};

/// Opens the `--out` file: replaced when starting afresh; when resuming,
/// cut back to its last whole line and opened for appending, with the
/// inputs its lines name.
pub fn open(path: &Path, resume: bool) -> anyhow::Result<(File, HashSet<Done>)> {
    let context = || format!("opening {}", path.display());
    let mut options = OpenOptions::new();
    options.create(true);
    if !resume {
        let file = options
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(context)?;
        return Ok((file, HashSet::new()));
    }
    let mut file = options
        .read(true)
        .append(true)
        .open(path)
        .with_context(context)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).with_context(context)?;
    let whole = text
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    if whole < text.len() {
        file.set_len(whole as u64)
            .with_context(|| format!("cutting the torn last line of {}", path.display()))?;
    }
    file.seek(SeekFrom::End(0)).with_context(context)?;
    let done = text[..whole]
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .filter_map(|line: serde_json::Value| name::of_line(&line))
        .collect();
    Ok((file, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn resuming_cuts_a_torn_line_and_names_the_files_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(
            &path,
            "{\"status\":\"clean\",\"file\":\"a.jpg\"}\n\
             {\"status\":\"error\",\"file\":\"b\\ufffd.jpg\",\"file_base64\":\"Yv8uanBn\"}\n\
             {\"status\":\"clean\",\"fi",
        )
        .unwrap();
        let (_, done) = open(&path, true).unwrap();
        let b = PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                b"b\xff.jpg".to_vec(),
            ),
        );
        assert_eq!(
            done,
            HashSet::from([Done::File(PathBuf::from("a.jpg")), Done::File(b)])
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("Yv8uanBn\"}\n"), "{text}");

        let (_, done) = open(&path, false).unwrap();
        assert!(done.is_empty());
        assert!(std::fs::read(&path).unwrap().is_empty());
    }
}
