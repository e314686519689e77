//! File names as a scan writes them: exactly, even when they are not text.
//!
//! Unix file names are bytes. Most are UTF-8 and go into a line's `file`
//! field as they are; for one that is not, `file` holds a readable form
//! (invalid bytes replaced by U+FFFD, so two names can read alike) and
//! `file_base64` the exact bytes (standard base64 with padding). A reader
//! wanting the real name takes `file_base64` when it is there. The resume
//! state stores names the same way, so two names that read alike are never
//! taken for one.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// A path and how it is written.
#[derive(Debug, Clone)]
pub struct FileName {
    pub path: PathBuf,
    /// The name as text (lossy when it is not UTF-8).
    pub text: String,
    /// The exact bytes in base64, only when the name is not UTF-8.
    pub base64: Option<String>,
}

impl FileName {
    pub fn new(path: PathBuf) -> Self {
        let (text, base64) = match path.to_str() {
            Some(text) => (text.to_owned(), None),
            None => (
                path.to_string_lossy().into_owned(),
                Some(STANDARD.encode(path.as_os_str().as_bytes())),
            ),
        };
        FileName { path, text, base64 }
    }
}

/// The exact path an output line names (`file_base64`, else `file`).
pub fn of_line(line: &Value) -> Option<PathBuf> {
    match line.get("file_base64") {
        Some(encoded) => decode(encoded.as_str()?),
        None => Some(PathBuf::from(line.get("file")?.as_str()?)),
    }
}

/// A path as a resume state entry: a JSON string when it is UTF-8,
/// `{"base64": ...}` when it is not.
pub fn to_state(path: &Path) -> Value {
    match path.to_str() {
        Some(text) => Value::String(text.to_owned()),
        None => serde_json::json!({ "base64": STANDARD.encode(path.as_os_str().as_bytes()) }),
    }
}

/// The path of a resume state entry.
pub fn of_state(entry: &Value) -> Option<PathBuf> {
    match entry {
        Value::String(text) => Some(PathBuf::from(text)),
        Value::Object(object) => decode(object.get("base64")?.as_str()?),
        _ => None,
    }
}

fn decode(encoded: &str) -> Option<PathBuf> {
    let bytes = STANDARD.decode(encoded).ok()?;
    Some(PathBuf::from(OsString::from_vec(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_read_alike_stay_apart() {
        let a = PathBuf::from(OsString::from_vec(b"dir/a\xff.jpg".to_vec()));
        let b = PathBuf::from(OsString::from_vec(b"dir/a\xfe.jpg".to_vec()));
        let (na, nb) = (FileName::new(a.clone()), FileName::new(b.clone()));
        assert_eq!(na.text, nb.text, "both read as dir/a\u{fffd}.jpg");
        assert_ne!(na.base64, nb.base64);
        for (name, path) in [(&na, &a), (&nb, &b)] {
            let line = serde_json::json!({ "file": name.text, "file_base64": name.base64 });
            assert_eq!(of_line(&line).as_ref(), Some(path));
            assert_eq!(of_state(&to_state(path)).as_ref(), Some(path));
        }
        let plain = FileName::new(PathBuf::from("dir/b.jpg"));
        assert_eq!(plain.base64, None);
        assert_eq!(to_state(&plain.path), Value::String("dir/b.jpg".into()));
        let line = serde_json::json!({ "file": "dir/b.jpg" });
        assert_eq!(of_line(&line), Some(plain.path));
    }
}
