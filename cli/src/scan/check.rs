//! One input, start to verdict: sniff the first bytes, read, hash, look up
//! ([`check`]), whether the bytes come from a file ([`check_file`] opens it
//! safely) or an object in a store (`super::s3`): one code path, so a file
//! and an object with the same bytes get the same line.
//!
//! Most of what a scan walks is not images (logs, HTML, archives), so the
//! first few bytes decide before anything else is read: a non-image costs
//! one open and one small read. Every failure becomes an [`Outcome`]; no
//! input can stop the scan.
//!
//! The walk saw a regular file, but the tree can change before the file is
//! opened: it may by then be a FIFO (whose open and reads block until a
//! writer comes, forever), a device, or a symbolic link. So the file is
//! opened without blocking (`O_NONBLOCK`), without following a link unless
//! `--follow-links` (`O_NOFOLLOW`), and what was opened is checked with
//! `fstat` before a byte is read: anything but a regular file is an error
//! line.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hashgate::{hash_image, sniff, HashOptions, ImageHashes};

use crate::lines::hash_error_kind;
use hashgate::matching::MatchRecord;
use hashgate::matching::{MatchSettings, MemoryIndex};

/// Bytes read to recognise a format ([`hashgate::sniff`] needs 14 for BMP).
const HEAD_BYTES: usize = 32;

/// What became of one file.
#[derive(Debug)]
pub enum Outcome {
    /// Hashed and looked up; `matches` may be empty.
    Checked {
        hashes: Box<ImageHashes>,
        matches: Vec<MatchRecord>,
    },
    /// Not an image by its first bytes (or empty).
    NotImage,
    /// Could not be read, hashed or looked up.
    Failed { kind: &'static str, error: String },
}

/// Opens `path` for reading only if it is a regular file, never blocking
/// (see the module doc).
pub fn open_regular(path: &Path, follow_links: bool) -> Result<File, String> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow_links {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .file_type();
    if !kind.is_file() {
        return Err(format!(
            "not a regular file ({}): changed since the walk listed it",
            describe(kind)
        ));
    }
    Ok(file)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// Checks the file at `path`.
pub fn check_file(
    path: &Path,
    follow_links: bool,
    settings: &MatchSettings,
    options: &HashOptions,
    index: &MemoryIndex,
) -> Outcome {
    match open_regular(path, follow_links) {
        Ok(file) => {
            let len = file.metadata().map_or(0, |m| m.len());
            check(file, len, settings, options, index)
        }
        Err(e) => Outcome::Failed {
            kind: "unreadable",
            error: e,
        },
    }
}

/// Checks the input read from `input`, `len` bytes long as its file system
/// or store says (the read stops past the limit whatever it says).
pub fn check(
    mut input: impl Read,
    len: u64,
    settings: &MatchSettings,
    options: &HashOptions,
    index: &MemoryIndex,
) -> Outcome {
    let failed = |kind, error: String| Outcome::Failed { kind, error };
    let mut bytes = Vec::new();
    if let Err(e) = (&mut input).take(HEAD_BYTES as u64).read_to_end(&mut bytes) {
        return failed("unreadable", format!("cannot read: {e}"));
    }
    if sniff(&bytes).is_none() {
        return Outcome::NotImage;
    }
    let limit = options.decode.limits.max_input_bytes;
    if len > limit as u64 {
        return failed(
            "input_too_large",
            format!("input is {len} bytes, over the limit of {limit} bytes"),
        );
    }
    bytes.reserve(len as usize);
    // `take` keeps an input that grows while it is read within the limit.
    if let Err(e) = input.take(limit as u64 + 1).read_to_end(&mut bytes) {
        return failed("unreadable", format!("cannot read: {e}"));
    }
    let hashes = match hash_image(&bytes, options) {
        Ok(hashes) => hashes,
        Err(e) => return failed(hash_error_kind(&e), e.to_string()),
    };
    match index
        .find(&settings.image_query(&hashes))
        .map(|matches| settings.apply_hygiene(matches, Some(&hashes)))
    {
        Ok(matches) => Outcome::Checked {
            matches: MatchRecord::for_image(&hashes, matches),
            hashes: Box::new(hashes),
        },
        Err(e) => failed("index", format!("index lookup failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `check` on another thread: a blocking open would hang it, so the
    /// test gives up waiting instead of hanging too.
    fn check_soon(path: &Path, follow_links: bool) -> Outcome {
        let (tx, rx) = mpsc::channel();
        let path = path.to_owned();
        std::thread::spawn(move || {
            let settings = MatchSettings::default();
            let options = settings.hash_options();
            let _ = tx.send(check_file(
                &path,
                follow_links,
                &settings,
                &options,
                &MemoryIndex::default(),
            ));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("check should answer within 10 s, not block")
    }

    #[test]
    fn a_fifo_a_device_or_a_link_where_a_file_was_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("was-a-file.jpg");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        for follow in [false, true] {
            let Outcome::Failed { error, .. } = check_soon(&fifo, follow) else {
                panic!("a FIFO was checked");
            };
            assert!(error.contains("a FIFO"), "{error}");
        }
        let Outcome::Failed { error, .. } = check_soon(Path::new("/dev/null"), true) else {
            panic!("a device was checked");
        };
        assert!(error.contains("a device"), "{error}");

        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"not an image").unwrap();
        let link = dir.path().join("link.jpg");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(check_soon(&link, false), Outcome::Failed { .. }));
        assert!(matches!(check_soon(&link, true), Outcome::NotImage));
    }
}
