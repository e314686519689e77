//! Overrides: turning one list entry off, or clearing one image, without
//! rebuilding the index.
//!
//! A rebuild and upload takes minutes and a person at a terminal; an entry
//! that turns out to match innocent images (a bad hash, a common logo) has
//! to stop blocking now. The overrides are one small KV value in
//! `HASH_INDEX` at [`OVERRIDES_KEY`], read with the index manifest (same
//! refresh bound, `index.refresh_seconds`) and applied to the matches
//! before the verdict:
//!
//! ```json
//! {"v": 1, "updated_unix": 1767139200,
//!  "entries": [{"list": "ncmec", "type": "pdq", "hash": "HEX",
//!               "state": "disabled", "at": "2026-01-01T00:00:00Z",
//!               "by": "alice", "reason": "matches a stock logo"}],
//!  "allowed": [{"list": "*", "sha256": "HEX of the image", "pdq": null,
//!               "at": "...", "by": "...", "reason": "false positive"}]}
//! ```
//!
//! `entries` turn a list entry off: `disabled` by a person (`hashgate index
//! disable`, the console), `suspended` by the flood guard (an entry that
//! matched too many distinct images). `allowed` clears one image (a false
//! positive) for a list (`*`: every list): an image whose SHA-256 equals
//! `sha256` is never a match there. Writers read, modify and write the
//! whole value; it stays small (one line per override).
//!
//! Like the policy, the document is validated as a whole: unknown fields,
//! a bad hash, a list name that could not be in the index are errors that
//! name the entry and the field, so a typo cannot silently leave an entry
//! blocking (or clear the wrong one). This module is pure (parse, apply,
//! edit); the runtime reader sits beside the index manifest reader.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use hashgate::hashes::HashKind;
use hashgate::index::lists::validate_list_name;
use hashgate::index::{Match, TypedHash};
use hashgate::Sha256Digest;

/// The KV key (in `HASH_INDEX`) of the overrides document.
pub const OVERRIDES_KEY: &str = "hg2/overrides";
/// The document version this module reads and writes.
pub const VERSION: u32 = 1;

/// Why a list entry is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Turned off by a person.
    Disabled,
    /// Turned off by the flood guard, for review.
    Suspended,
}

/// One list entry turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryOverride {
    pub list: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub hash: String,
    pub state: EntryState,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
}

/// One image cleared for a list (or `*`, every list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedImage {
    pub list: String,
    pub sha256: String,
    #[serde(default)]
    pub pdq: Option<String>,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
}

/// The overrides document, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverridesDoc {
    pub v: u32,
    #[serde(default)]
    pub updated_unix: u64,
    #[serde(default)]
    pub entries: Vec<EntryOverride>,
    #[serde(default)]
    pub allowed: Vec<AllowedImage>,
}

impl Default for OverridesDoc {
    fn default() -> Self {
        OverridesDoc {
            v: VERSION,
            updated_unix: 0,
            entries: Vec::new(),
            allowed: Vec::new(),
        }
    }
}

/// Why an overrides document was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OverridesError {
    #[error("overrides are not a valid document: {0}")]
    Json(String),
    #[error("overrides version {0} is not supported (expected {VERSION})")]
    Version(u32),
    #[error("entries[{index}].{field}: {problem}")]
    Entry {
        index: usize,
        field: &'static str,
        problem: String,
    },
    #[error("allowed[{index}].{field}: {problem}")]
    Allowed {
        index: usize,
        field: &'static str,
        problem: String,
    },
}

/// A validated overrides document, ready to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    doc: OverridesDoc,
    /// (list, hash) of every entry turned off.
    off: Vec<(String, TypedHash, EntryState)>,
    /// (list or `*`, image SHA-256).
    allowed: Vec<(String, Sha256Digest)>,
}

impl Overrides {
    /// Parses and validates the stored text.
    pub fn parse(text: &str) -> Result<Self, OverridesError> {
        let doc: OverridesDoc =
            serde_json::from_str(text).map_err(|e| OverridesError::Json(e.to_string()))?;
        Self::from_doc(doc)
    }

    /// Validates a document.
    pub fn from_doc(doc: OverridesDoc) -> Result<Self, OverridesError> {
        if doc.v != VERSION {
            return Err(OverridesError::Version(doc.v));
        }
        let mut off = Vec::with_capacity(doc.entries.len());
        for (index, entry) in doc.entries.iter().enumerate() {
            let problem = |field, problem: String| OverridesError::Entry {
                index,
                field,
                problem,
            };
            let list =
                validate_list_name(&entry.list).map_err(|e| problem("list", e.to_string()))?;
            let kind: HashKind = entry.kind.parse().map_err(|e: String| problem("type", e))?;
            if kind == HashKind::Vec72 {
                return Err(problem("type", "vec72 entries cannot be overridden".into()));
            }
            let hash =
                TypedHash::parse(kind, &entry.hash).map_err(|e| problem("hash", e.to_string()))?;
            off.push((list, hash, entry.state));
        }
        let mut allowed = Vec::with_capacity(doc.allowed.len());
        for (index, image) in doc.allowed.iter().enumerate() {
            let problem = |field, problem: String| OverridesError::Allowed {
                index,
                field,
                problem,
            };
            let list = if image.list == "*" {
                image.list.clone()
            } else {
                validate_list_name(&image.list).map_err(|e| problem("list", e.to_string()))?
            };
            let sha256: Sha256Digest = image
                .sha256
                .parse()
                .map_err(|e: hashgate::ParseHashError| problem("sha256", e.to_string()))?;
            if let Some(pdq) = &image.pdq {
                pdq.parse::<hashgate::PdqHash>()
                    .map_err(|e| problem("pdq", e.to_string()))?;
            }
            allowed.push((list, sha256));
        }
        Ok(Overrides { doc, off, allowed })
    }

    /// The document (for writers: edit, then [`Overrides::to_json`]).
    pub fn doc(&self) -> &OverridesDoc {
        &self.doc
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.off.is_empty() && self.allowed.is_empty()
    }

    /// The state of an entry turned off, if it is.
    pub fn entry_state(&self, list: &str, hash: &TypedHash) -> Option<EntryState> {
        self.off
            .iter()
            .find(|(l, h, _)| l == list && h == hash)
            .map(|(_, _, state)| *state)
    }

    /// Whether the image with this SHA-256 is cleared for `list`.
    pub fn image_allowed(&self, list: &str, image: &Sha256Digest) -> bool {
        self.allowed
            .iter()
            .any(|(l, h)| h == image && (l == "*" || l == list))
    }

    /// The matches that still count: those of entries not turned off, on
    /// lists the image is not cleared for. Order is kept (closest first).
    pub fn apply(&self, matches: Vec<Match>, image: Option<&Sha256Digest>) -> Vec<Match> {
        if self.is_empty() {
            return matches;
        }
        matches
            .into_iter()
            .filter(|m| self.entry_state(&m.list, &m.hash).is_none())
            .filter(|m| image.is_none_or(|image| !self.image_allowed(&m.list, image)))
            .collect()
    }

    /// The document with `entry` turned off (replacing any override of the
    /// same list entry), stamped `now_unix`. Validated like a stored one.
    pub fn with_entry(&self, entry: EntryOverride, now_unix: u64) -> Result<Self, OverridesError> {
        let mut doc = self.doc.clone();
        doc.entries
            .retain(|e| !(e.list == entry.list && same_hash(e, &entry)));
        doc.entries.push(entry);
        doc.updated_unix = now_unix;
        Self::from_doc(doc)
    }

    /// The document with the override of (list, hash) removed: the entry
    /// matches again. `None` when it was not overridden.
    pub fn without_entry(&self, list: &str, hash: &TypedHash, now_unix: u64) -> Option<Self> {
        let before = self.off.len();
        let mut doc = self.doc.clone();
        doc.entries.retain(|e| {
            let parsed = e
                .kind
                .parse::<HashKind>()
                .ok()
                .and_then(|kind| TypedHash::parse(kind, &e.hash).ok());
            !(e.list == list && parsed.as_ref() == Some(hash))
        });
        if doc.entries.len() == before {
            return None;
        }
        doc.updated_unix = now_unix;
        Self::from_doc(doc).ok()
    }

    /// The stored text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.doc).unwrap_or_default()
    }
}

fn same_hash(a: &EntryOverride, b: &EntryOverride) -> bool {
    a.kind.eq_ignore_ascii_case(&b.kind) && a.hash.eq_ignore_ascii_case(&b.hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashgate::index::MatchedBy;

    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const IMAGE: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn entry(list: &str, kind: &str, hash: &str) -> String {
        format!(
            r#"{{"list":"{list}","type":"{kind}","hash":"{hash}","state":"disabled","at":"2026-01-01T00:00:00Z","by":"alice","reason":"logo"}}"#
        )
    }

    fn doc(entries: &[String], allowed: &str) -> String {
        format!(
            r#"{{"v":1,"updated_unix":5,"entries":[{}],"allowed":[{allowed}]}}"#,
            entries.join(",")
        )
    }

    fn pdq_match(list: &str, id: &str) -> Match {
        Match {
            list: list.into(),
            kind: HashKind::Pdq,
            hash: TypedHash::parse(HashKind::Pdq, PDQ).unwrap(),
            distance: 4,
            id: Some(id.into()),
            matched_by: MatchedBy::Pdq(0),
        }
    }

    #[test]
    fn a_disabled_entry_drops_its_matches_on_its_list_only() {
        let overrides = Overrides::parse(&doc(&[entry("ncmec", "pdq", PDQ)], "")).unwrap();
        let kept = overrides.apply(
            vec![
                pdq_match("ncmec", "a"),
                pdq_match("ncmec", "b"),
                pdq_match("iwf", "c"),
            ],
            None,
        );
        assert_eq!(kept, vec![pdq_match("iwf", "c")]);
        // Hex case does not matter.
        let upper =
            Overrides::parse(&doc(&[entry("iwf", "PDQ", &PDQ.to_uppercase())], "")).unwrap();
        assert!(upper.apply(vec![pdq_match("iwf", "c")], None).is_empty());
    }

    #[test]
    fn an_allowed_image_is_never_a_match_on_its_list() {
        let allowed = format!(
            r#"{{"list":"iwf","sha256":"{IMAGE}","pdq":null,"at":"x","by":"bob","reason":"fp"}}"#
        );
        let overrides = Overrides::parse(&doc(&[], &allowed)).unwrap();
        let image: Sha256Digest = IMAGE.parse().unwrap();
        let other: Sha256Digest = "00".repeat(32).parse().unwrap();
        let matches = vec![pdq_match("ncmec", "a"), pdq_match("iwf", "c")];
        assert_eq!(
            overrides.apply(matches.clone(), Some(&image)),
            vec![pdq_match("ncmec", "a")]
        );
        assert_eq!(overrides.apply(matches.clone(), Some(&other)), matches);
        let everywhere = Overrides::parse(&doc(&[], &allowed.replace("\"iwf\"", "\"*\""))).unwrap();
        assert!(everywhere.apply(matches, Some(&image)).is_empty());
    }

    #[test]
    fn edits_round_trip_and_enable_removes_the_override() {
        let empty = Overrides::from_doc(OverridesDoc::default()).unwrap();
        let added = empty
            .with_entry(
                EntryOverride {
                    list: "ncmec".into(),
                    kind: "pdq".into(),
                    hash: PDQ.into(),
                    state: EntryState::Suspended,
                    at: "t".into(),
                    by: "flood-guard".into(),
                    reason: "120 images in 600 s".into(),
                },
                42,
            )
            .unwrap();
        let hash = TypedHash::parse(HashKind::Pdq, PDQ).unwrap();
        assert_eq!(
            added.entry_state("ncmec", &hash),
            Some(EntryState::Suspended)
        );
        let reread = Overrides::parse(&added.to_json()).unwrap();
        assert_eq!(reread, added);
        assert_eq!(reread.doc().updated_unix, 42);
        let enabled = reread.without_entry("ncmec", &hash, 43).unwrap();
        assert_eq!(enabled.entry_state("ncmec", &hash), None);
        assert!(enabled.without_entry("ncmec", &hash, 44).is_none());
    }

    // One test per rejection, each naming the entry and the field.
    #[test]
    fn refuses_a_bad_version() {
        assert_eq!(
            Overrides::parse(r#"{"v":2}"#).unwrap_err(),
            OverridesError::Version(2)
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        let text = doc(
            &[entry("ncmec", "pdq", PDQ).replace("\"by\"", "\"who\"")],
            "",
        );
        assert!(matches!(
            Overrides::parse(&text),
            Err(OverridesError::Json(_))
        ));
    }

    #[test]
    fn refuses_a_bad_list_name() {
        let err = Overrides::parse(&doc(&[entry("bad list", "pdq", PDQ)], "")).unwrap_err();
        assert!(
            matches!(
                err,
                OverridesError::Entry {
                    index: 0,
                    field: "list",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_an_unknown_type() {
        let err = Overrides::parse(&doc(&[entry("a", "crc32", PDQ)], "")).unwrap_err();
        assert!(
            matches!(err, OverridesError::Entry { field: "type", .. }),
            "{err}"
        );
        let err = Overrides::parse(&doc(&[entry("a", "vec72", PDQ)], "")).unwrap_err();
        assert!(
            matches!(err, OverridesError::Entry { field: "type", .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_bad_hash() {
        let err = Overrides::parse(&doc(
            &[entry("a", "pdq", "abc"), entry("a", "md5", "x")],
            "",
        ))
        .unwrap_err();
        assert_eq!(err.to_string().split(':').next(), Some("entries[0].hash"));
    }

    #[test]
    fn refuses_a_bad_state() {
        let text = doc(&[entry("a", "pdq", PDQ).replace("disabled", "paused")], "");
        assert!(matches!(
            Overrides::parse(&text),
            Err(OverridesError::Json(_))
        ));
    }

    #[test]
    fn refuses_a_bad_allowed_image() {
        let bad = |field: &str, value: &str| {
            let mut image = serde_json::json!({"list": "iwf", "sha256": IMAGE, "pdq": PDQ, "at": "x", "by": "y"});
            image[field] = serde_json::Value::String(value.into());
            Overrides::parse(&doc(&[], &image.to_string())).unwrap_err()
        };
        assert!(matches!(
            bad("sha256", "12"),
            OverridesError::Allowed {
                index: 0,
                field: "sha256",
                ..
            }
        ));
        assert!(matches!(
            bad("pdq", "zz"),
            OverridesError::Allowed { field: "pdq", .. }
        ));
        assert!(matches!(
            bad("list", "a/b"),
            OverridesError::Allowed { field: "list", .. }
        ));
    }
}
