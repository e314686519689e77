//! The KV writes and deletes that turn one build into another.
//!
//! Builds are deterministic (see [`super::build`]), so comparing two
//! builds record by record gives exactly the keys that changed: adding a
//! PDQ hash puts its 16 buckets, adding a digest puts one record, removing
//! a list rewrites the buckets its hashes shared with other entries and
//! deletes the rest. Both sides are walked once in key order, so two builds
//! of millions of keys are compared without holding either in memory.
//!
//! Apply the puts before the deletes: every value is self-contained, so a
//! reader that sees some of the new values and some of the old ones still
//! gets correct answers for each key it reads, and no key it needs vanishes
//! before its replacement exists.

use std::cmp::Ordering;

use thiserror::Error;

/// One change to Workers KV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write (create or overwrite) `key`.
    Put { key: String, value: String },
    /// Delete `key`.
    Delete { key: String },
}

/// Counts of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffSummary {
    pub puts: usize,
    pub deletes: usize,
    pub unchanged: usize,
    /// Bytes of the keys and values put.
    pub put_bytes: usize,
}

/// The inputs were not sorted by key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the {side} records are not sorted by key (at {key:?})")]
pub struct DiffError {
    pub side: &'static str,
    pub key: String,
}

struct Sorted<I: Iterator<Item = (String, String)>> {
    records: I,
    side: &'static str,
    last: Option<String>,
}

impl<I: Iterator<Item = (String, String)>> Sorted<I> {
    fn next(&mut self) -> Result<Option<(String, String)>, DiffError> {
        let Some((key, value)) = self.records.next() else {
            return Ok(None);
        };
        if self.last.as_ref().is_some_and(|last| *last >= key) {
            return Err(DiffError {
                side: self.side,
                key,
            });
        }
        self.last = Some(key.clone());
        Ok(Some((key, value)))
    }
}

/// Walks two record streams, each sorted by key with no key twice, and
/// calls `emit` for every change that turns `from` into `to`.
pub fn diff_sorted<F, T>(
    from: F,
    to: T,
    mut emit: impl FnMut(Change),
) -> Result<DiffSummary, DiffError>
where
    F: IntoIterator<Item = (String, String)>,
    T: IntoIterator<Item = (String, String)>,
{
    let mut old = Sorted {
        records: from.into_iter(),
        side: "old",
        last: None,
    };
    let mut new = Sorted {
        records: to.into_iter(),
        side: "new",
        last: None,
    };
    let mut summary = DiffSummary::default();
    let put =
        |summary: &mut DiffSummary, emit: &mut dyn FnMut(Change), key: String, value: String| {
            summary.puts += 1;
            summary.put_bytes += key.len() + value.len();
            emit(Change::Put { key, value });
        };
    let delete = |summary: &mut DiffSummary, emit: &mut dyn FnMut(Change), key: String| {
        summary.deletes += 1;
        emit(Change::Delete { key });
    };
    let mut old_record = old.next()?;
    let mut new_record = new.next()?;
    loop {
        match (old_record.take(), new_record.take()) {
            (None, None) => break,
            (Some((key, _)), None) => {
                delete(&mut summary, &mut emit, key);
                old_record = old.next()?;
            }
            (None, Some((key, value))) => {
                put(&mut summary, &mut emit, key, value);
                new_record = new.next()?;
            }
            (Some((old_key, old_value)), Some((new_key, new_value))) => match old_key.cmp(&new_key)
            {
                Ordering::Less => {
                    delete(&mut summary, &mut emit, old_key);
                    old_record = old.next()?;
                    new_record = Some((new_key, new_value));
                }
                Ordering::Greater => {
                    put(&mut summary, &mut emit, new_key, new_value);
                    old_record = Some((old_key, old_value));
                    new_record = new.next()?;
                }
                Ordering::Equal => {
                    if old_value == new_value {
                        summary.unchanged += 1;
                    } else {
                        put(&mut summary, &mut emit, new_key, new_value);
                    }
                    old_record = old.next()?;
                    new_record = new.next()?;
                }
            },
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::lists::parse_hash_list;
    use crate::index::IndexBuilder;

    fn records(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn changes(
        from: Vec<(String, String)>,
        to: Vec<(String, String)>,
    ) -> (Vec<Change>, DiffSummary) {
        let mut out = Vec::new();
        let summary = diff_sorted(from, to, |c| out.push(c)).unwrap();
        (out, summary)
    }

    #[test]
    fn puts_new_and_changed_deletes_gone() {
        let (out, summary) = changes(
            records(&[("a", "1"), ("b", "2"), ("d", "4")]),
            records(&[("b", "2"), ("c", "3"), ("d", "5"), ("e", "6")]),
        );
        assert_eq!(
            out,
            vec![
                Change::Delete { key: "a".into() },
                Change::Put {
                    key: "c".into(),
                    value: "3".into()
                },
                Change::Put {
                    key: "d".into(),
                    value: "5".into()
                },
                Change::Put {
                    key: "e".into(),
                    value: "6".into()
                },
            ]
        );
        assert_eq!(
            (summary.puts, summary.deletes, summary.unchanged),
            (3, 1, 1)
        );
    }

    #[test]
    fn refuses_unsorted_input() {
        let error =
            diff_sorted(records(&[("b", "1"), ("a", "1")]), Vec::new(), |_| {}).unwrap_err();
        assert_eq!(
            error,
            DiffError {
                side: "old",
                key: "a".into()
            }
        );
    }

    fn build(lists: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut builder = IndexBuilder::new();
        for (name, text) in lists {
            builder
                .add_list(name, parse_hash_list(text).entries)
                .unwrap();
        }
        builder.build().unwrap().records.into_iter().collect()
    }

    #[test]
    fn one_new_pdq_hash_puts_its_buckets_and_meta() {
        let a = format!("pdq,{}\n", "ab".repeat(32));
        let b = format!("{a}pdq,{}\n", "cd".repeat(32));
        let (out, summary) = changes(build(&[("x", &a)]), build(&[("x", &b)]));
        // 16 new buckets and the meta record; nothing deleted.
        assert_eq!((summary.puts, summary.deletes), (17, 0));
        assert!(out.iter().all(|c| matches!(c, Change::Put { .. })));
        // Removing the list again deletes exactly those buckets.
        let (_, summary) = changes(build(&[("x", &b)]), build(&[("x", &a)]));
        assert_eq!((summary.puts, summary.deletes), (1, 16));
    }
}
