//! Turns the paths given on the command line into the regular files to
//! check, in a stable order (sorted by name within each folder) so that two
//! runs over the same tree agree line for line.
//!
//! Only regular files are checked: a FIFO or device could block a worker or
//! never end. Symbolic links are followed only with `--follow-links`
//! (walkdir then detects loops). Folders that cannot be read are reported
//! and the walk goes on.

use std::path::PathBuf;

use walkdir::WalkDir;

/// One thing the walk found.
#[derive(Debug)]
pub enum Found {
    /// A regular file to check.
    File(PathBuf),
    /// A path that could not be walked.
    Failed(PathBuf, String),
}

/// Every file under `roots`, in order, to `visit`; stops early when
/// `visit` returns false.
pub fn walk(roots: &[PathBuf], follow_links: bool, mut visit: impl FnMut(Found) -> bool) {
    for root in roots {
        let walker = WalkDir::new(root)
            .follow_links(follow_links)
            .sort_by_file_name();
        for entry in walker {
            let found = match entry {
                Ok(entry) if entry.file_type().is_file() => Found::File(entry.into_path()),
                Ok(_) => continue,
                Err(error) => {
                    let path = error.path().map_or_else(|| root.clone(), PathBuf::from);
                    let message = match error.io_error() {
                        Some(io) => format!("cannot read: {io}"),
                        None => error.to_string(),
                    };
                    Found::Failed(path, message)
                }
            };
            if !visit(found) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_files_in_name_order_and_reports_missing_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/inner")).unwrap();
        for name in ["b/inner/z.jpg", "b/a.png", "c.txt", "a.gif"] {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        let missing = root.join("missing");
        let mut seen = Vec::new();
        walk(&[root.to_owned(), missing.clone()], false, |found| {
            seen.push(match found {
                Found::File(p) => p.strip_prefix(root).unwrap().display().to_string(),
                Found::Failed(p, e) => {
                    format!("{} failed: {}", p.display(), e.starts_with("cannot read"))
                }
            });
            true
        });
        assert_eq!(
            seen,
            [
                "a.gif".to_owned(),
                "b/a.png".into(),
                "b/inner/z.jpg".into(),
                "c.txt".into(),
                format!("{} failed: true", missing.display()),
            ]
        );
    }
}
