//! The readers of the hash-list formats exchanges publish
//! (`hashgate::lists`), by detection and forced into every format, then the
//! feed applied to a list; and the overrides value (`hashgate::overrides`),
//! which several writers edit.
//!
//! List files and feeds come from outside. Besides "no panic": every error
//! names a line of the file; every hash read is one the index parses back
//! the same; applying the changes keeps the counts straight (what is left is
//! what was added less what was removed); an overrides value that parses
//! writes back to one that parses the same.

#![no_main]

use hashgate::index::TypedHash;
use hashgate::lists::{self, Change, Format, ListState, ReadError};
use hashgate::overrides::Overrides;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count().max(1);

    let mut formats: Vec<Option<Format>> = vec![None];
    formats.extend(Format::ALL.iter().copied().map(Some));
    for format in formats {
        let file = match lists::read(&text, format) {
            Ok(file) => file,
            Err(e) => {
                let line = match &e {
                    ReadError::Unrecognised { line, .. } => Some(*line),
                    ReadError::Malformed { error, .. } => Some(error.line),
                    ReadError::Empty => None,
                };
                if let Some(line) = line {
                    assert!(line >= 1 && line <= lines + 1, "error line {line} of {lines}: {e}");
                }
                let _ = e.to_string();
                continue;
            }
        };
        if let Some(forced) = format {
            assert_eq!(file.format, forced);
        }
        for error in &file.errors {
            assert!(error.line >= 1 && error.line <= lines + 1, "record error line {}: {error}", error.line);
        }
        let mut adds = 0;
        for change in &file.changes {
            if let Change::Add(entry) = change {
                adds += 1;
                let again = TypedHash::parse(entry.hash.kind(), &entry.hash.to_string())
                    .expect("a hash read from a list parses back");
                assert_eq!(again, entry.hash);
            }
        }
        let mut state = ListState::new();
        let summary = state.apply(file.changes);
        assert_eq!(summary.added, adds);
        assert_eq!(state.into_entries().len(), summary.added - summary.removed);
    }

    if let Ok(overrides) = Overrides::parse(&text) {
        let again = Overrides::parse(&overrides.to_json()).expect("written overrides parse");
        assert_eq!(again, overrides);
    }
});
