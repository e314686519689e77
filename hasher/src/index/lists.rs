//! Hash-list and allowlist files: one `TYPE,HASH[,THIRD]` per line.
//!
//! The lists hashgate ingests (NCMEC, IWF, internal) come as text exports,
//! so the parser is forgiving about spelling (type in any case, CRLF line
//! ends, a leading byte-order mark, blanks around fields, `#` comment lines)
//! and strict about content: a wrong hash length or a non-hex digit is never
//! guessed around. Every refusal carries its 1-based line number, and the
//! parser keeps going after a bad line so that one run reports all of them;
//! whether a bad line fails the build is the caller's choice (`--skip-bad`).
//!
//! In a hash list the third field is the entry id (it may itself contain
//! commas: the line is split at the first two commas only). In an allowlist
//! it names the one list the allowance applies to; empty or `*` means every
//! list.

use thiserror::Error;

use super::{ListName, TypedHash};
use crate::hashes::{HashKind, ParseHashError};

/// The longest entry id kept, in bytes. Ids are copied into each of the 16
/// PDQ buckets an entry lives in, so a runaway field would cost 16 times.
pub const MAX_ID_BYTES: usize = 200;

/// One entry of a hash list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub hash: TypedHash,
    /// The list's own id for the entry, if it gives one.
    pub id: Option<String>,
    /// 1-based line number in the file.
    pub line: usize,
}

/// What an allowlist entry covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AllowScope {
    /// Every list.
    AllLists,
    /// One named list.
    List(ListName),
}

/// One allowlist entry: content with this hash is known not to be abuse
/// material (a known false positive) for the lists in `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub hash: TypedHash,
    pub scope: AllowScope,
    /// 1-based line number in the file.
    pub line: usize,
}

/// Why one line was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LineProblem {
    #[error("expected TYPE,HASH[,ID], found no comma")]
    MissingHash,
    #[error("unknown hash type {0:?} (expected pdq, md5, sha1, sha256 or vec72)")]
    UnknownType(String),
    #[error("bad {kind} hash: {source}")]
    BadHash {
        kind: HashKind,
        #[source]
        source: ParseHashError,
    },
    #[error("id is {0} bytes, over the limit of {MAX_ID_BYTES}")]
    IdTooLong(usize),
    #[error("id contains a control character")]
    IdControlCharacter,
    #[error("bad list name in allowlist: {0}")]
    BadScope(#[from] ListNameError),
}

/// A refused line and where it is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub problem: LineProblem,
}

/// Why a list name was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ListNameError {
    #[error("list name is empty")]
    Empty,
    #[error("list name {0:?} is longer than 64 bytes")]
    TooLong(String),
    #[error("list name {0:?} may only use ASCII letters, digits, '-', '_' and '.'")]
    BadCharacter(String),
}

/// Checks a list name: 1..=64 bytes of ASCII letters, digits, `-`, `_`, `.`.
/// Names travel in JSON output, KV values and command lines, so they are
/// kept to characters that need no quoting anywhere.
pub fn validate_list_name(name: &str) -> Result<ListName, ListNameError> {
    if name.is_empty() {
        return Err(ListNameError::Empty);
    }
    if name.len() > 64 {
        return Err(ListNameError::TooLong(name.to_owned()));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !name.chars().all(allowed) {
        return Err(ListNameError::BadCharacter(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// What parsing a file gave: the good entries and every bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub errors: Vec<LineError>,
}

/// Parses a hash list (`TYPE,HASH[,ID]` lines).
pub fn parse_hash_list(text: &str) -> Parsed<ListEntry> {
    parse_lines(text, |hash, third, line| {
        let id = match third {
            Some(id) => check_id(id)?,
            None => None,
        };
        Ok(ListEntry { hash, id, line })
    })
}

/// Parses an allowlist (`TYPE,HASH[,LIST]` lines; no list or `*` means all).
pub fn parse_allowlist(text: &str) -> Parsed<AllowEntry> {
    parse_lines(text, |hash, third, line| {
        let scope = match third {
            None | Some("") | Some("*") => AllowScope::AllLists,
            Some(name) => AllowScope::List(validate_list_name(name)?),
        };
        Ok(AllowEntry { hash, scope, line })
    })
}

fn check_id(id: &str) -> Result<Option<String>, LineProblem> {
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(LineProblem::IdTooLong(id.len()));
    }
    if id.chars().any(char::is_control) {
        return Err(LineProblem::IdControlCharacter);
    }
    Ok(Some(id.to_owned()))
}

fn parse_lines<T>(
    text: &str,
    mut entry: impl FnMut(TypedHash, Option<&str>, usize) -> Result<T, LineProblem>,
) -> Parsed<T> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = Parsed {
        entries: Vec::new(),
        errors: Vec::new(),
    };
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let result = split_line(trimmed).and_then(|(hash, third)| entry(hash, third, line));
        match result {
            Ok(value) => parsed.entries.push(value),
            Err(problem) => parsed.errors.push(LineError { line, problem }),
        }
    }
    parsed
}

/// `TYPE,HASH[,REST]` into a typed hash and the trimmed rest.
fn split_line(line: &str) -> Result<(TypedHash, Option<&str>), LineProblem> {
    let mut fields = line.splitn(3, ',');
    let kind_text = fields.next().unwrap_or_default().trim();
    let hash_text = fields.next().ok_or(LineProblem::MissingHash)?.trim();
    let third = fields.next().map(str::trim);
    let kind: HashKind = kind_text
        .parse()
        .map_err(|_| LineProblem::UnknownType(kind_text.to_owned()))?;
    let hash = TypedHash::parse(kind, hash_text)
        .map_err(|source| LineProblem::BadHash { kind, source })?;
    Ok((hash, third))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

    #[test]
    fn parses_entries_comments_blanks_and_ids() {
        let text = format!(
            "\u{feff}# exported list\n\npdq,{PDQ},case-17\r\nMD5 , {MD5} \nsha1,da39a3ee5e6b4b0d3255bfef95601890afd80709,id,with,commas\n"
        );
        let parsed = parse_hash_list(&text);
        assert_eq!(parsed.errors, vec![]);
        assert_eq!(parsed.entries.len(), 3);
        assert_eq!(parsed.entries[0].hash.kind(), HashKind::Pdq);
        assert_eq!(parsed.entries[0].id.as_deref(), Some("case-17"));
        assert_eq!(parsed.entries[0].line, 3);
        assert_eq!(parsed.entries[1].hash.to_string(), MD5);
        assert_eq!(parsed.entries[1].id, None);
        assert_eq!(parsed.entries[2].id.as_deref(), Some("id,with,commas"));
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let text = format!(
            "pdq,{PDQ}\njust-a-word\ncrc32,{MD5}\nmd5,{}\nsha256,{}\nmd5,{MD5},{}\nmd5,{MD5},a\tb\nmd5,{MD5}\n",
            &MD5[..30],
            "zz".repeat(32),
            "x".repeat(MAX_ID_BYTES + 1),
        );
        let parsed = parse_hash_list(&text);
        assert_eq!(parsed.entries.len(), 2);
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(parsed.errors[0].problem, LineProblem::MissingHash);
        assert_eq!(
            parsed.errors[1].problem,
            LineProblem::UnknownType("crc32".into())
        );
        assert_eq!(
            parsed.errors[2].problem,
            LineProblem::BadHash {
                kind: HashKind::Md5,
                source: ParseHashError::WrongLength {
                    expected: 32,
                    found: 30
                }
            }
        );
        assert!(matches!(
            parsed.errors[3].problem,
            LineProblem::BadHash {
                kind: HashKind::Sha256,
                source: ParseHashError::NotHex(_)
            }
        ));
        assert_eq!(
            parsed.errors[4].problem,
            LineProblem::IdTooLong(MAX_ID_BYTES + 1)
        );
        assert_eq!(parsed.errors[5].problem, LineProblem::IdControlCharacter);
        assert_eq!(
            parsed.errors[0].to_string(),
            "line 2: expected TYPE,HASH[,ID], found no comma"
        );
    }

    #[test]
    fn empty_and_comment_only_files_have_no_entries() {
        for text in ["", "\n\n", "# nothing here\n  # indented comment\n"] {
            let parsed = parse_hash_list(text);
            assert!(parsed.entries.is_empty() && parsed.errors.is_empty());
        }
    }

    #[test]
    fn allowlist_scopes() {
        let text = format!("pdq,{PDQ}\npdq,{PDQ},*\nmd5,{MD5},ncmec\nmd5,{MD5},not ok\n");
        let parsed = parse_allowlist(&text);
        let scopes: Vec<&AllowScope> = parsed.entries.iter().map(|e| &e.scope).collect();
        assert_eq!(
            scopes,
            vec![
                &AllowScope::AllLists,
                &AllowScope::AllLists,
                &AllowScope::List("ncmec".into())
            ]
        );
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 4);
    }

    #[test]
    fn list_names() {
        assert!(validate_list_name("ncmec").is_ok());
        assert!(validate_list_name("iwf-2024.v2_x").is_ok());
        assert_eq!(validate_list_name(""), Err(ListNameError::Empty));
        assert!(matches!(
            validate_list_name("a b"),
            Err(ListNameError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_list_name("a,b"),
            Err(ListNameError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_list_name(&"a".repeat(65)),
            Err(ListNameError::TooLong(_))
        ));
    }
}
