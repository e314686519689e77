//! What people decided, and the record of who did what.
//!
//! Both live in the `REPORTS` KV namespace beside the report records they
//! are about, with the same retention (one year, KV expiration), so the
//! audit trail lasts exactly as long as the evidence it concerns:
//!
//! ```text
//! audit/v1/<13-digit inverted ms>-<id>   one entry per action: who, when, what, why;
//!                                        newest first in a key listing, the entry also
//!                                        as key metadata so one list call renders a page
//! review/v1/<record key>                 a sighting's review: state and notes
//! ```
//!
//! Why KV and not D1: the log is append-only and read as "the latest
//! page"; KV lists keys in order with their metadata (one call per page),
//! expires each entry on its own, needs no schema or migration, and is a
//! binding the worker already has. D1 would only win for ad-hoc queries
//! (by person, by sighting), which the structured log lines of every
//! action (Workers Logs) also answer.

use serde::{Deserialize, Serialize};

use crate::report::{DEAD_PREFIX, REPORT_PREFIX, REPORT_RETENTION_SECONDS, UNSCANNED_PREFIX};

pub const AUDIT_PREFIX: &str = "audit/v1/";
pub const REVIEW_PREFIX: &str = "review/v1/";
/// Audit entries and reviews are kept as long as the evidence: one year.
pub const AUDIT_RETENTION_SECONDS: u64 = REPORT_RETENTION_SECONDS;
/// Longest reason or note, in characters.
pub const MAX_WHY_CHARS: usize = 2000;
/// Notes kept per sighting (most recent).
pub const MAX_NOTES: usize = 50;
/// Of the reason, what goes into the key metadata (KV allows 1024 bytes).
const METADATA_WHY_CHARS: usize = 200;
const METADATA_FIELD_CHARS: usize = 160;
/// Largest metadata JSON written (KV's limit is 1024 bytes).
pub const METADATA_MAX_BYTES: usize = 1000;
const INVERT_FROM: u64 = 9_999_999_999_999;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The report goes to the reporting job.
    Confirm,
    /// The image is cleared on the matched lists (`hg2/overrides`).
    FalsePositive,
    /// The image is cleared on every list (`hg2/overrides`, list `*`).
    Release,
    /// A note on the sighting.
    Note,
    /// A blurred greyscale rendering of the image was asked for.
    Reveal,
    /// The flood guard suspended a list entry (never a person's action).
    Suspend,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::FalsePositive => "false-positive",
            Action::Release => "release",
            Action::Note => "note",
            Action::Reveal => "reveal",
            Action::Suspend => "suspend",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        [
            Action::Confirm,
            Action::FalsePositive,
            Action::Release,
            Action::Note,
            Action::Reveal,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Whether the action needs a reason (every decision does).
    pub fn needs_why(self) -> bool {
        !matches!(self, Action::Reveal)
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub v: u32,
    pub at: String,
    pub who: String,
    pub role: String,
    pub action: Action,
    /// The sighting (report record key).
    pub target: String,
    /// The first URL of the sighting, for the reader.
    pub url: String,
    pub why: String,
    /// What the action changed (e.g. the overrides entries written).
    #[serde(default)]
    pub detail: String,
}

fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars).collect();
    out.push('…');
    out
}

fn json_len(entry: &AuditEntry) -> usize {
    serde_json::to_string(entry).map_or(usize::MAX, |j| j.len())
}

impl AuditEntry {
    /// The key metadata: the entry with long fields clipped so that its
    /// JSON stays within [`METADATA_MAX_BYTES`] (KV allows 1024).
    pub fn metadata(&self) -> AuditEntry {
        let mut m = AuditEntry {
            v: self.v,
            at: clip(&self.at, 40),
            who: clip(&self.who, METADATA_FIELD_CHARS),
            role: clip(&self.role, 20),
            action: self.action,
            target: clip(&self.target, METADATA_FIELD_CHARS),
            url: clip(&self.url, METADATA_FIELD_CHARS),
            why: clip(&self.why, METADATA_WHY_CHARS),
            detail: String::new(),
        };
        // Escapes and multi-byte characters: halve the longest field until it fits.
        while json_len(&m) > METADATA_MAX_BYTES {
            let field = [&mut m.why, &mut m.url, &mut m.target, &mut m.who]
                .into_iter()
                .max_by_key(|f| f.len());
            match field {
                Some(f) if f.chars().count() > 1 => {
                    let half = f.chars().count() / 2;
                    *f = clip(f, half);
                }
                _ => break,
            }
        }
        m
    }
}

/// The key of an audit entry made at `at_ms` (newest sorts first).
pub fn audit_key(at_ms: u64, id: &str) -> String {
    let inverted = INVERT_FROM.saturating_sub(at_ms);
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{AUDIT_PREFIX}{inverted:013}-{id}")
}

/// Where a sighting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewState {
    #[default]
    Open,
    Confirmed,
    FalsePositive,
    Released,
}

impl ReviewState {
    pub fn name(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Confirmed => "confirmed",
            ReviewState::FalsePositive => "false-positive",
            ReviewState::Released => "released",
        }
    }
}

/// A note on a sighting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at: String,
    pub by: String,
    pub text: String,
}

/// A sighting's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Review {
    pub v: u32,
    pub state: ReviewState,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<String>,
    #[serde(default)]
    pub notes: Vec<Note>,
}

impl Review {
    /// The review after `action` by `who` at `at`, with its reason as a note.
    pub fn after(mut self, action: Action, who: &str, at: &str, why: &str) -> Review {
        self.v = 1;
        let state = match action {
            Action::Confirm => Some(ReviewState::Confirmed),
            Action::FalsePositive => Some(ReviewState::FalsePositive),
            Action::Release => Some(ReviewState::Released),
            Action::Note | Action::Reveal | Action::Suspend => None,
        };
        if let Some(state) = state {
            self.state = state;
            self.decided_by = Some(who.to_owned());
            self.decided_at = Some(at.to_owned());
        }
        if !why.is_empty() {
            let text = match state {
                Some(state) => format!("[{}] {why}", state.name()),
                None => why.to_owned(),
            };
            self.notes.push(Note {
                at: at.to_owned(),
                by: who.to_owned(),
                text,
            });
            if self.notes.len() > MAX_NOTES {
                let excess = self.notes.len() - MAX_NOTES;
                self.notes.drain(..excess);
            }
        }
        self
    }
}

/// The key of a sighting's review.
pub fn review_key(record_key: &str) -> String {
    format!("{REVIEW_PREFIX}{record_key}")
}

/// Whether `key` names a sighting (a report or unscanned record key).
pub fn is_record_key(key: &str) -> bool {
    (key.starts_with(REPORT_PREFIX) || key.starts_with(UNSCANNED_PREFIX))
        && !key.starts_with(DEAD_PREFIX)
        && key.len() <= 200
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/-".contains(&b))
}

/// A submitted reason or note: trimmed, 1..=[`MAX_WHY_CHARS`] characters
/// (empty allowed where the action needs none).
pub fn check_why(text: &str, needed: bool) -> Result<String, String> {
    let text = text.trim();
    if needed && text.is_empty() {
        return Err("say why: the reason goes to the audit log".into());
    }
    if text.chars().count() > MAX_WHY_CHARS {
        return Err(format!(
            "the reason is longer than {MAX_WHY_CHARS} characters"
        ));
    }
    Ok(text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_entries_sort_first() {
        let old = audit_key(1_000, "a");
        let new = audit_key(2_000, "b");
        assert!(new < old);
        assert!(old.starts_with(AUDIT_PREFIX));
        assert_eq!(
            audit_key(5, "x/../y<z>"),
            format!("{AUDIT_PREFIX}9999999999994-xyz")
        );
    }

    #[test]
    fn metadata_stays_under_the_kv_limit() {
        let long = "é\"\u{1}".repeat(5000);
        let e = AuditEntry {
            v: 1,
            at: "2026-01-01T00:00:00.000Z".into(),
            who: long.clone(),
            role: "reviewer".into(),
            action: Action::FalsePositive,
            target: long.clone(),
            url: long.clone(),
            why: long.clone(),
            detail: long,
        };
        let json = serde_json::to_string(&e.metadata()).unwrap();
        assert!(json.len() <= 1024, "{}", json.len());
    }

    #[test]
    fn decisions_move_the_state_and_keep_the_reason() {
        let r = Review::default()
            .after(Action::Note, "a@x", "t1", "looked at it")
            .after(Action::FalsePositive, "b@x", "t2", "a cat, not abuse");
        assert_eq!(r.state, ReviewState::FalsePositive);
        assert_eq!(r.decided_by.as_deref(), Some("b@x"));
        assert_eq!(r.notes.len(), 2);
        assert_eq!(r.notes[1].text, "[false-positive] a cat, not abuse");
        let r = r.after(Action::Reveal, "c@x", "t3", "");
        assert_eq!(r.state, ReviewState::FalsePositive);
        assert_eq!(r.notes.len(), 2);
    }

    #[test]
    fn notes_stay_bounded() {
        let mut r = Review::default();
        for i in 0..(MAX_NOTES + 5) {
            r = r.after(Action::Note, "a", "t", &format!("n{i}"));
        }
        assert_eq!(r.notes.len(), MAX_NOTES);
        assert_eq!(r.notes.last().unwrap().text, format!("n{}", MAX_NOTES + 4));
    }

    #[test]
    fn record_keys_only() {
        assert!(is_record_key(&format!(
            "report/v1/{}/0123456789abcdef",
            "a".repeat(64)
        )));
        assert!(is_record_key("unscanned/v1/url-ab/0123"));
        assert!(!is_record_key("audit/v1/1"));
        assert!(!is_record_key("hg2/overrides"));
        assert!(!is_record_key("report/v1/A B"));
    }

    #[test]
    fn reasons() {
        assert!(check_why("  ", true).is_err());
        assert_eq!(check_why("", false).unwrap(), "");
        assert_eq!(check_why(" a\u{7}b ", true).unwrap(), "a b");
        assert!(check_why(&"x".repeat(MAX_WHY_CHARS + 1), true).is_err());
        assert_eq!(
            Action::from_name("false-positive"),
            Some(Action::FalsePositive)
        );
        assert_eq!(Action::from_name("delete"), None);
    }
}
