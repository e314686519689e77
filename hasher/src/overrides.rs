//! Overrides: list entries turned off and images cleared by people, read
//! by the worker with the index manifest and applied before every verdict.
//!
//! One small JSON value in `HASH_INDEX` at [`OVERRIDES_KEY`], written whole
//! by whoever changes it (the console, the lists tooling: read, modify,
//! write):
//!
//! ```json
//! {"v": 1, "updated_unix": 1767225600,
//!  "entries": [{"list": "L", "type": "pdq", "hash": "HEX", "state": "disabled",
//!               "at": "2026-01-01T00:00:00Z", "by": "who", "reason": "..."}],
//!  "allowed": [{"list": "L or *", "sha256": "HEX of the image", "pdq": "HEX or null",
//!               "at": "2026-01-01T00:00:00Z", "by": "who", "reason": "..."}]}
//! ```
//!
//! * `entries` turn one list entry off: `disabled` by a person, no image
//!   matches it any more; `suspended` by the worker's flood guard, its
//!   matches are still sightings but only flagged, never blocked, until a
//!   person decides; `reviewed` when a person turned a suspended entry on
//!   again (it matches as usual and the flood guard leaves it alone).
//! * `allowed` clears one image (a false positive) for one list, or for
//!   every list with `"*"`: an image whose SHA-256 equals `sha256` is never
//!   a match on that list. `pdq` records which image it was; matching is by
//!   the exact digest only, so a near copy is still a match.
//!
//! One format for every writer and reader: the worker (which applies it
//! and whose console and flood guard write it) and `hashgate index
//! disable` / `enable` use this module (cargo feature `overrides`).
//!
//! Applying is pure ([`Overrides::apply`]): the worker's runtime reader
//! (`overrides_store`) reads the value at most once per
//! `index.refresh_seconds`, as it reads `hg2/current`, so a change is in
//! force everywhere within that bound plus KV's own propagation (up to
//! 60 s). A value that does not parse is refused whole (the reader keeps
//! the last good one): a broken override must never clear images.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::matching::MatchRecord;

/// The KV key (in `HASH_INDEX`).
pub const OVERRIDES_KEY: &str = "hg2/overrides";
/// The format version this module reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// `list` value that clears an image on every list.
pub const EVERY_LIST: &str = "*";
/// Largest number of `entries` plus `allowed` (the value stays small: it is
/// read by every isolate at every refresh).
pub const MAX_OVERRIDES: usize = 20_000;

/// Why an overrides value was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OverridesError {
    #[error("{OVERRIDES_KEY} is not valid JSON for the overrides format: {0}")]
    Json(String),
    #[error("{OVERRIDES_KEY}: version {0} is not supported (expected {FORMAT_VERSION})")]
    Version(u32),
    #[error("{OVERRIDES_KEY}: {0} overrides, more than {MAX_OVERRIDES}")]
    TooMany(usize),
    #[error("{OVERRIDES_KEY}: {field}[{index}]: {problem}")]
    Entry {
        field: &'static str,
        index: usize,
        problem: String,
    },
}

/// State of a list entry turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Turned off by a person.
    Disabled,
    /// Suspended by the flood guard: still matched, only flagged.
    Suspended,
    /// On: a person reviewed a suspension and kept the entry; the flood
    /// guard leaves it alone from then on.
    Reviewed,
}

/// A list entry turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryOverride {
    pub list: String,
    /// `pdq`, `md5`, `sha1` or `sha256`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The list's hash, lowercase hex.
    pub hash: String,
    pub state: EntryState,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
}

/// An image cleared on a list (or every list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    /// A list name, or `"*"` for every list.
    pub list: String,
    /// SHA-256 of the image bytes, lowercase hex.
    pub sha256: String,
    /// The image's PDQ hash (a record of which image it was), or null.
    pub pdq: Option<String>,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub reason: String,
}

/// The whole overrides value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    pub v: u32,
    pub updated_unix: u64,
    #[serde(default)]
    pub entries: Vec<EntryOverride>,
    #[serde(default)]
    pub allowed: Vec<Allowed>,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            v: FORMAT_VERSION,
            updated_unix: 0,
            entries: Vec::new(),
            allowed: Vec::new(),
        }
    }
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_len(kind: &str) -> Option<usize> {
    match kind {
        "pdq" | "sha256" => Some(64),
        "md5" => Some(32),
        "sha1" => Some(40),
        _ => None,
    }
}

impl Overrides {
    /// Parses and checks a stored value. Hex is accepted in either case and
    /// kept lowercase.
    pub fn parse(text: &str) -> Result<Self, OverridesError> {
        let mut value: Overrides =
            serde_json::from_str(text).map_err(|e| OverridesError::Json(e.to_string()))?;
        if value.v != FORMAT_VERSION {
            return Err(OverridesError::Version(value.v));
        }
        let total = value.entries.len() + value.allowed.len();
        if total > MAX_OVERRIDES {
            return Err(OverridesError::TooMany(total));
        }
        for (index, e) in value.entries.iter_mut().enumerate() {
            let problem = |problem: String| OverridesError::Entry {
                field: "entries",
                index,
                problem,
            };
            if e.list.is_empty() || e.list == EVERY_LIST {
                return Err(problem(format!("list {:?} names no list", e.list)));
            }
            let len = hex_len(&e.kind)
                .ok_or_else(|| problem(format!("type {:?} is not pdq|md5|sha1|sha256", e.kind)))?;
            e.hash.make_ascii_lowercase();
            if !is_hex(&e.hash, len) {
                return Err(problem(format!(
                    "hash is not {len} hex digits for {}",
                    e.kind
                )));
            }
        }
        for (index, a) in value.allowed.iter_mut().enumerate() {
            let problem = |problem: String| OverridesError::Entry {
                field: "allowed",
                index,
                problem,
            };
            if a.list.is_empty() {
                return Err(problem("list is empty (use \"*\" for every list)".into()));
            }
            a.sha256.make_ascii_lowercase();
            if !is_hex(&a.sha256, 64) {
                return Err(problem("sha256 is not 64 hex digits".into()));
            }
            if let Some(pdq) = &mut a.pdq {
                pdq.make_ascii_lowercase();
                if !is_hex(pdq, 64) {
                    return Err(problem("pdq is not 64 hex digits or null".into()));
                }
            }
        }
        Ok(value)
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.allowed.is_empty()
    }

    /// Whether the image with SHA-256 `sha256` is cleared on `list`.
    pub fn is_allowed(&self, list: &str, sha256: &str) -> bool {
        self.allowed.iter().any(|a| {
            (a.list == EVERY_LIST || a.list == list) && a.sha256.eq_ignore_ascii_case(sha256)
        })
    }

    /// How a list entry is turned off, if it is.
    pub fn entry_state(&self, list: &str, kind: &str, hash: &str) -> Option<EntryState> {
        self.entries
            .iter()
            .find(|e| e.list == list && e.kind == kind && e.hash.eq_ignore_ascii_case(hash))
            .map(|e| e.state)
    }

    /// Whether a list entry is disabled (matches nothing).
    pub fn is_entry_off(&self, list: &str, kind: &str, hash: &str) -> bool {
        self.entry_state(list, kind, hash) == Some(EntryState::Disabled)
    }

    /// The matches of the image with SHA-256 `sha256` that still count:
    /// those on entries not disabled, on lists the image is not cleared
    /// on. Order (closest first) is kept; empty means the image is clean.
    pub fn apply(&self, sha256: &str, matches: Vec<MatchRecord>) -> Vec<MatchRecord> {
        if self.is_empty() {
            return matches;
        }
        matches
            .into_iter()
            .filter(|m| {
                !self.is_allowed(&m.list, sha256) && !self.is_entry_off(&m.list, &m.kind, &m.hash)
            })
            .collect()
    }

    /// Whether every one of `matches` is on a suspended entry: the image
    /// is then flagged, not blocked. False for no matches.
    pub fn only_suspended(&self, matches: &[MatchRecord]) -> bool {
        !matches.is_empty()
            && matches
                .iter()
                .all(|m| self.entry_state(&m.list, &m.kind, &m.hash) == Some(EntryState::Suspended))
    }

    /// Adds (or replaces, for the same list and image) an `allowed` entry.
    pub fn allow(&mut self, entry: Allowed, now_unix: u64) {
        let mut entry = entry;
        entry.sha256.make_ascii_lowercase();
        self.allowed
            .retain(|a| !(a.list == entry.list && a.sha256 == entry.sha256));
        self.allowed.push(entry);
        self.touch(now_unix);
    }

    /// Turns a list entry off (or updates how it is off): one entry per
    /// list, type and hash. Returns whether it was on before.
    pub fn turn_off(&mut self, entry: EntryOverride, now_unix: u64) -> bool {
        let mut entry = entry;
        entry.hash.make_ascii_lowercase();
        let before = self.entries.len();
        self.entries
            .retain(|e| !(e.list == entry.list && e.kind == entry.kind && e.hash == entry.hash));
        let was_on = self.entries.len() == before;
        self.entries.push(entry);
        self.touch(now_unix);
        was_on
    }

    /// Turns a list entry on again, as `decision` says (its list, type,
    /// hash, who, when, why): a disabled entry is removed, a suspended one
    /// becomes [`EntryState::Reviewed`] so the flood guard does not
    /// suspend it again. Returns whether it was off.
    pub fn turn_on(&mut self, decision: EntryOverride, now_unix: u64) -> bool {
        let same = |e: &EntryOverride| {
            e.list == decision.list
                && e.kind == decision.kind
                && e.hash.eq_ignore_ascii_case(&decision.hash)
        };
        let Some(at) = self.entries.iter().position(same) else {
            return false;
        };
        match self.entries[at].state {
            EntryState::Reviewed => return false,
            EntryState::Disabled => {
                self.entries.remove(at);
            }
            EntryState::Suspended => {
                let mut reviewed = decision;
                reviewed.hash.make_ascii_lowercase();
                reviewed.state = EntryState::Reviewed;
                self.entries[at] = reviewed;
            }
        }
        self.touch(now_unix);
        true
    }

    /// Moves `updated_unix` forward: strictly increasing even when this
    /// writer's clock is behind the last writer's, because readers tell
    /// versions apart by it.
    fn touch(&mut self, now_unix: u64) {
        self.updated_unix = now_unix.max(self.updated_unix.saturating_add(1));
    }

    /// The value as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(list: &str, kind: &str, hash: &str) -> MatchRecord {
        MatchRecord {
            list: list.into(),
            id: Some(format!("{list}-1")),
            kind: kind.into(),
            hash: hash.into(),
            distance: 3,
            variant: None,
        }
    }

    const IMG: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const PDQ: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn allowed(list: &str, sha: &str) -> Allowed {
        Allowed {
            list: list.into(),
            sha256: sha.into(),
            pdq: None,
            at: "2026-01-01T00:00:00Z".into(),
            by: "a@example.com".into(),
            reason: "false positive".into(),
        }
    }

    #[test]
    fn parses_the_contract_example() {
        let text = format!(
            r#"{{"v":1,"updated_unix":5,
              "entries":[{{"list":"L","type":"pdq","hash":"{PDQ}","state":"suspended","at":"t","by":"flood guard","reason":"r"}}],
              "allowed":[{{"list":"*","sha256":"{}","pdq":null,"at":"t","by":"w","reason":"fp"}}]}}"#,
            IMG.to_uppercase()
        );
        let o = Overrides::parse(&text).unwrap();
        assert_eq!(o.entries[0].state, EntryState::Suspended);
        assert_eq!(o.allowed[0].sha256, IMG, "kept lowercase");
        let round = Overrides::parse(&o.to_json()).unwrap();
        assert_eq!(round, o);
    }

    #[test]
    fn an_allowed_image_is_clean_on_its_list_only() {
        let mut o = Overrides::default();
        o.allow(allowed("demo", IMG), 7);
        assert_eq!(o.updated_unix, 7);
        let ms = vec![m("demo", "pdq", PDQ), m("other", "pdq", PDQ)];
        let left = o.apply(IMG, ms.clone());
        assert_eq!(left, vec![m("other", "pdq", PDQ)]);
        // Another image with the same PDQ match is still a match.
        assert_eq!(o.apply(OTHER, ms.clone()), ms);
        // Upper-case digests from a caller compare equal.
        assert_eq!(o.apply(&IMG.to_uppercase(), ms).len(), 1);
    }

    #[test]
    fn star_clears_every_list() {
        let mut o = Overrides::default();
        o.allow(allowed("*", IMG), 1);
        assert!(o
            .apply(IMG, vec![m("demo", "pdq", PDQ), m("x", "sha256", IMG)])
            .is_empty());
    }

    #[test]
    fn a_disabled_entry_matches_nothing() {
        let o = Overrides {
            entries: vec![EntryOverride {
                list: "demo".into(),
                kind: "pdq".into(),
                hash: PDQ.into(),
                state: EntryState::Disabled,
                at: "t".into(),
                by: "w".into(),
                reason: String::new(),
            }],
            ..Overrides::default()
        };
        let left = o.apply(
            OTHER,
            vec![m("demo", "pdq", PDQ), m("demo", "md5", &"d".repeat(32))],
        );
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].kind, "md5");
    }

    #[test]
    fn a_suspended_entry_still_matches_but_only_flags() {
        let mut o = Overrides::default();
        o.turn_off(
            EntryOverride {
                list: "demo".into(),
                kind: "pdq".into(),
                hash: PDQ.to_uppercase(),
                state: EntryState::Suspended,
                at: "t".into(),
                by: "flood-guard".into(),
                reason: String::new(),
            },
            1,
        );
        let md5 = m("demo", "md5", &"d".repeat(32));
        let left = o.apply(OTHER, vec![m("demo", "pdq", PDQ), md5.clone()]);
        assert_eq!(left.len(), 2, "suspension removes no match");
        assert!(!o.only_suspended(&left), "the md5 entry still blocks");
        assert!(o.only_suspended(&left[..1]));
        assert!(!o.only_suspended(&[]));
        assert_eq!(
            o.entry_state("demo", "pdq", PDQ),
            Some(EntryState::Suspended)
        );
        let decision = EntryOverride {
            list: "demo".into(),
            kind: "pdq".into(),
            hash: PDQ.into(),
            state: EntryState::Disabled,
            at: "t2".into(),
            by: "reviewer".into(),
            reason: "a real list entry".into(),
        };
        assert!(o.turn_on(decision.clone(), 2));
        assert_eq!(
            o.entry_state("demo", "pdq", PDQ),
            Some(EntryState::Reviewed),
            "kept on, and the guard leaves it alone"
        );
        assert_eq!(o.apply(OTHER, vec![m("demo", "pdq", PDQ)]).len(), 1);
        assert!(!o.only_suspended(&[m("demo", "pdq", PDQ)]));
        assert!(!o.turn_on(decision.clone(), 3));
        // A disabled entry turned on is simply gone.
        o.turn_off(decision.clone(), 4);
        assert!(o.turn_on(decision, 5));
        assert_eq!(o.entry_state("demo", "pdq", PDQ), None);
    }

    #[test]
    fn updated_unix_only_moves_forward() {
        let mut o = Overrides {
            updated_unix: 500,
            ..Overrides::default()
        };
        o.allow(
            Allowed {
                list: "*".into(),
                sha256: OTHER.into(),
                pdq: None,
                at: "t".into(),
                by: "w".into(),
                reason: String::new(),
            },
            100,
        );
        assert_eq!(o.updated_unix, 501);
    }

    #[test]
    fn allow_replaces_the_same_list_and_image() {
        let mut o = Overrides::default();
        o.allow(allowed("demo", IMG), 1);
        o.allow(allowed("demo", &IMG.to_uppercase()), 2);
        o.allow(allowed("other", IMG), 3);
        assert_eq!(o.allowed.len(), 2);
    }

    fn refused(text: &str) -> OverridesError {
        Overrides::parse(text).unwrap_err()
    }

    #[test]
    fn refuses_what_is_not_the_format() {
        assert!(matches!(refused("nope"), OverridesError::Json(_)));
        assert!(matches!(refused(r#"{"v":1}"#), OverridesError::Json(_)));
        assert_eq!(
            refused(r#"{"v":2,"updated_unix":0}"#),
            OverridesError::Version(2)
        );
        let bad_state = format!(
            r#"{{"v":1,"updated_unix":0,"entries":[{{"list":"L","type":"pdq","hash":"{PDQ}","state":"off","at":"t","by":"w"}}]}}"#
        );
        assert!(matches!(refused(&bad_state), OverridesError::Json(_)));
    }

    #[test]
    fn refuses_bad_entries() {
        let entry = |list: &str, kind: &str, hash: &str| {
            format!(
                r#"{{"v":1,"updated_unix":0,"entries":[{{"list":"{list}","type":"{kind}","hash":"{hash}","state":"disabled","at":"t","by":"w"}}]}}"#
            )
        };
        for text in [
            entry("*", "pdq", PDQ),
            entry("", "pdq", PDQ),
            entry("L", "vec72", PDQ),
            entry("L", "md5", PDQ),
            entry("L", "pdq", "zz"),
        ] {
            assert!(
                matches!(
                    refused(&text),
                    OverridesError::Entry {
                        field: "entries",
                        index: 0,
                        ..
                    }
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_allowed() {
        let allowed = |list: &str, sha: &str, pdq: &str| {
            format!(
                r#"{{"v":1,"updated_unix":0,"allowed":[{{"list":"{list}","sha256":"{sha}","pdq":{pdq},"at":"t","by":"w"}}]}}"#
            )
        };
        for text in [
            allowed("", IMG, "null"),
            allowed("L", "abc", "null"),
            allowed("L", IMG, "\"xyz\""),
        ] {
            assert!(
                matches!(
                    refused(&text),
                    OverridesError::Entry {
                        field: "allowed",
                        index: 0,
                        ..
                    }
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_too_many() {
        let one = format!(r#"{{"list":"L","sha256":"{IMG}","pdq":null,"at":"t","by":"w"}}"#);
        let text = format!(
            r#"{{"v":1,"updated_unix":0,"allowed":[{}]}}"#,
            vec![one; MAX_OVERRIDES + 1].join(",")
        );
        assert_eq!(refused(&text), OverridesError::TooMany(MAX_OVERRIDES + 1));
    }
}
