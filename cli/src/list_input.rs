//! Reading the files of `--list NAME=PATH` for `hashgate index build`: the
//! format of each file is recognised (or given with `--format`) and said,
//! its bad records are reported with their lines, skipped hash types are
//! counted, and the files given for one NAME are applied in order: the
//! first is the list, later ones are feeds (adds and deletions) updating it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hashgate::index::ListEntry;
use hashgate::lists::{self, Format, ListState};

/// How many bad records are printed per file before summarising.
const BAD_RECORDS_SHOWN: usize = 20;

/// The lists of a build, in the order first named, each with its files.
pub fn group(lists: &[(String, PathBuf)]) -> Vec<(String, Vec<PathBuf>)> {
    let mut grouped: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for (name, path) in lists {
        match grouped.iter_mut().find(|(n, _)| n == name) {
            Some((_, paths)) => paths.push(path.clone()),
            None => grouped.push((name.clone(), vec![path.clone()])),
        }
    }
    grouped
}

/// Reads and applies the files of one list.
pub fn read_list(
    name: &str,
    paths: &[PathBuf],
    format: Option<Format>,
    skip_bad: bool,
) -> anyhow::Result<Vec<ListEntry>> {
    let mut state = ListState::new();
    for (index, path) in paths.iter().enumerate() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let file = lists::read(&text, format)
            .with_context(|| format!("list {name}: {}", path.display()))?;
        report_errors(
            path,
            file.errors.iter().map(|e| (e.line, &e.problem)),
            skip_bad,
        )?;
        let (adds, deletes) = file.counts();
        let skipped: Vec<String> = file
            .skipped
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let applied = state.apply(file.changes);
        println!(
            "list {name}: {} is {} ({}): {adds} entries, {deletes} deletions{}{}",
            path.display(),
            file.format,
            file.format.description(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(", skipped {}", skipped.join(", "))
            },
            if index > 0 || deletes > 0 {
                format!(
                    "; {} entries removed, {} deletions matched nothing",
                    applied.removed, applied.missed
                )
            } else {
                String::new()
            },
        );
    }
    Ok(state.into_entries())
}

/// Reports a file's bad lines (the first [`BAD_RECORDS_SHOWN`], then a
/// count); fails unless they may be skipped. `errors` are (line, problem).
pub fn report_errors<P: std::fmt::Display>(
    path: &Path,
    errors: impl ExactSizeIterator<Item = (usize, P)>,
    skip_bad: bool,
) -> anyhow::Result<()> {
    let count = errors.len();
    if count == 0 {
        return Ok(());
    }
    for (line, problem) in errors.take(BAD_RECORDS_SHOWN) {
        eprintln!("hashgate: {}:{line}: {problem}", path.display());
    }
    if count > BAD_RECORDS_SHOWN {
        eprintln!(
            "hashgate: {}: {} more bad lines",
            path.display(),
            count - BAD_RECORDS_SHOWN
        );
    }
    if skip_bad {
        eprintln!("hashgate: {}: skipped {count} bad lines", path.display());
        Ok(())
    } else {
        bail!(
            "{}: {count} bad lines (use --skip-bad to leave them out)",
            path.display()
        )
    }
}
