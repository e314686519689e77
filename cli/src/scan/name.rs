//! Input names as a scan writes them: files exactly, even when their names
//! are not text; objects as `s3://bucket/key` with their version.
//!
//! Unix file names are bytes. Most are UTF-8 and go into a line's `file`
//! field as they are; for one that is not, `file` holds a readable form
//! (invalid bytes replaced by U+FFFD, so two names can read alike) and
//! `file_base64` the exact bytes (standard base64 with padding). A reader
//! wanting the real name takes `file_base64` when it is there. The resume
//! state stores names the same way, so two names that read alike are never
//! taken for one.
//!
//! An object in a store is named by its URL, and its line and state entry
//! also carry its `version` (the ETag): an object replaced since is another
//! input, scanned again.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// A finished input as the resume state and the output remember it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Done {
    /// A file, by its exact path.
    File(PathBuf),
    /// An object, by its `s3://bucket/key` URL and version.
    Object { url: String, version: String },
}

/// An input and how it is written.
#[derive(Debug, Clone)]
pub struct InputName {
    pub done: Done,
    /// The name as text (lossy when a file name is not UTF-8).
    pub text: String,
    /// The exact bytes in base64, only when a file name is not UTF-8.
    pub base64: Option<String>,
}

impl InputName {
    pub fn file(path: PathBuf) -> Self {
        let (text, base64) = match path.to_str() {
            Some(text) => (text.to_owned(), None),
            None => (
                path.to_string_lossy().into_owned(),
                Some(STANDARD.encode(path.as_os_str().as_bytes())),
            ),
        };
        InputName {
            done: Done::File(path),
            text,
            base64,
        }
    }

    pub fn object(url: String, version: String) -> Self {
        InputName {
            text: url.clone(),
            base64: None,
            done: Done::Object { url, version },
        }
    }

    /// An object's version, for its line.
    pub fn version(&self) -> Option<&str> {
        match &self.done {
            Done::File(_) => None,
            Done::Object { version, .. } => Some(version),
        }
    }
}

/// The input an output line names: an object when it has a `version`,
/// else the exact path (`file_base64`, else `file`).
pub fn of_line(line: &Value) -> Option<Done> {
    if let Some(version) = line.get("version") {
        return Some(Done::Object {
            url: line.get("file")?.as_str()?.to_owned(),
            version: version.as_str()?.to_owned(),
        });
    }
    match line.get("file_base64") {
        Some(encoded) => decode(encoded.as_str()?).map(Done::File),
        None => Some(Done::File(PathBuf::from(line.get("file")?.as_str()?))),
    }
}

/// A finished input as a resume state entry: a path as a JSON string when
/// it is UTF-8, `{"base64": ...}` when it is not; an object as
/// `{"object": URL, "version": V}`.
pub fn to_state(done: &Done) -> Value {
    match done {
        Done::File(path) => match path.to_str() {
            Some(text) => Value::String(text.to_owned()),
            None => {
                serde_json::json!({ "base64": STANDARD.encode(path.as_os_str().as_bytes()) })
            }
        },
        Done::Object { url, version } => serde_json::json!({ "object": url, "version": version }),
    }
}

/// The input of a resume state entry.
pub fn of_state(entry: &Value) -> Option<Done> {
    match entry {
        Value::String(text) => Some(Done::File(PathBuf::from(text))),
        Value::Object(object) => match object.get("object") {
            Some(url) => Some(Done::Object {
                url: url.as_str()?.to_owned(),
                version: object.get("version")?.as_str()?.to_owned(),
            }),
            None => decode(object.get("base64")?.as_str()?).map(Done::File),
        },
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
        let (na, nb) = (InputName::file(a.clone()), InputName::file(b.clone()));
        assert_eq!(na.text, nb.text, "both read as dir/a\u{fffd}.jpg");
        assert_ne!(na.base64, nb.base64);
        for (name, path) in [(&na, &a), (&nb, &b)] {
            let line = serde_json::json!({ "file": name.text, "file_base64": name.base64 });
            let done = Done::File(path.clone());
            assert_eq!(of_line(&line).as_ref(), Some(&done));
            assert_eq!(of_state(&to_state(&done)).as_ref(), Some(&done));
        }
        let plain = InputName::file(PathBuf::from("dir/b.jpg"));
        assert_eq!(plain.base64, None);
        assert_eq!(to_state(&plain.done), Value::String("dir/b.jpg".into()));
        let line = serde_json::json!({ "file": "dir/b.jpg" });
        assert_eq!(of_line(&line), Some(plain.done));
    }

    #[test]
    fn an_object_is_its_url_and_version() {
        let name = InputName::object("s3://media/a/b.jpg".into(), "\"e1\"".into());
        assert_eq!(name.text, "s3://media/a/b.jpg");
        assert_eq!(name.version(), Some("\"e1\""));
        let line = serde_json::json!({ "file": name.text, "version": name.version() });
        assert_eq!(of_line(&line).as_ref(), Some(&name.done));
        assert_eq!(of_state(&to_state(&name.done)).as_ref(), Some(&name.done));
        // Another version of the same key, or a file of the same name, is
        // another input.
        let replaced = InputName::object("s3://media/a/b.jpg".into(), "\"e2\"".into());
        assert_ne!(replaced.done, name.done);
        let file = serde_json::json!({ "file": "s3://media/a/b.jpg" });
        assert_ne!(of_line(&file).as_ref(), Some(&name.done));
    }
}
