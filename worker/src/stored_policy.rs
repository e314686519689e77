//! The policy for stored content: per R2 bucket and key prefix, which
//! lists an object is matched against, how strictly, and what happens to a
//! listed object (quarantine, delete, or report only).
//!
//! The `stored` section of the policy document ([`crate::policy`]), one rule
//! per bucket and prefix, validated like the routes: unknown fields are
//! refused, every problem names the rule and the field, one test per
//! rejection. The most specific rule (longest prefix) of an object's bucket
//! applies; an object no rule covers is not scanned.
//!
//! ```json
//! "stored": [{"bucket": "user-uploads", "binding": "UPLOADS", "prefix": "images/",
//!             "action": "quarantine", "quarantine_binding": "QUARANTINE",
//!             "lists": ["ncmec"], "pdq_threshold": 31, "max_bytes": 16777216}]
//! ```
//!
//! * `bucket` (required): the R2 bucket's name, as event notifications name
//!   it (3..=63 of `a-z`, `0-9`, `-`, not starting or ending with `-`);
//! * `binding` (required): the worker's R2 binding of that bucket
//!   (wrangler.toml `[[r2_buckets]]`); one bucket, one binding;
//! * `prefix` (default `""`, the whole bucket): key prefix, at most 1,024
//!   bytes, not starting with `/`, no control characters;
//! * `action` (required): `quarantine` copies the object to the quarantine
//!   bucket (key `<bucket>/<key>`, out of public reach) and deletes the
//!   original; `delete` deletes it; `report` only records the sighting;
//! * `quarantine_binding`: the R2 binding of the quarantine bucket;
//!   required with `quarantine`, refused otherwise, never the rule's own
//!   binding (a copy in the same bucket is not out of reach);
//! * `lists` (required), `pdq_threshold` (default 31, 0..=31), `variants`
//!   (default `dihedral`), `max_bytes` (default 16 MiB, at most 25 MiB),
//!   `min_pdq_quality` (default 50), `list_distance`, `negative_lists`: as
//!   for routes. An object larger than `max_bytes` is recorded as failed,
//!   never silently clean.

use hashgate::index::lists::ListNameError;
use hashgate::index::{Hygiene, ListFilter, MAX_PDQ_THRESHOLD};
use serde::Deserialize;
use thiserror::Error;

use crate::policy::{
    subscribed_lists, validate_hygiene, HygieneDoc, HygieneProblem, ListsProblem,
    DEFAULT_MAX_BYTES, MAX_MAX_BYTES,
};
use hashgate::QuerySet;

/// Longest key prefix (R2 keys are at most 1,024 bytes).
pub const MAX_PREFIX_BYTES: usize = 1024;

/// What happens to a listed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredAction {
    /// Copy to the quarantine bucket, then delete the original.
    Quarantine,
    /// Delete the original.
    Delete,
    /// Record the sighting only.
    Report,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    pub bucket: String,
    pub binding: String,
    pub prefix: String,
    pub action: StoredAction,
    pub quarantine_binding: Option<String>,
    pub lists: ListFilter,
    pub pdq_threshold: u32,
    pub variants: QuerySet,
    pub max_bytes: usize,
    /// PDQ quality, per-list distance, negative lists, as for routes.
    pub hygiene: Hygiene,
}

impl StoredRule {
    /// The rule's name in events and report records (their `route`):
    /// `r2://<bucket>/<prefix>*`.
    pub fn pattern(&self) -> String {
        format!("r2://{}/{}*", self.bucket, self.prefix)
    }
}

/// What is wrong with one rule.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoredProblem {
    #[error("bucket {0:?} is not an R2 bucket name (3..=63 of a-z, 0-9, '-', not starting or ending with '-')")]
    Bucket(String),
    #[error("binding {0:?} is not a binding name (a letter or '_', then letters, digits, '_')")]
    Binding(String),
    #[error("prefix: {0}")]
    Prefix(String),
    #[error("pdq_threshold {0} is out of range 0..={MAX_PDQ_THRESHOLD}")]
    Threshold(u32),
    #[error(
        "lists is empty: name the lists to match (e.g. [\"ncmec\"]) or [\"*\"] for every list"
    )]
    NoLists,
    #[error("lists: {0}")]
    BadList(#[from] ListNameError),
    #[error("lists: \"*\" (every list) cannot be combined with named lists")]
    StarWithOthers,
    #[error("max_bytes {0} is out of range 1..={MAX_MAX_BYTES}")]
    MaxBytes(usize),
    #[error(
        "action quarantine needs quarantine_binding (the R2 binding of the quarantine bucket)"
    )]
    NoQuarantineBinding,
    #[error(transparent)]
    Hygiene(#[from] HygieneProblem),
    #[error("quarantine_binding is only used with action quarantine")]
    UnusedQuarantineBinding,
    #[error("quarantine_binding {0:?} is the rule's own binding: a copy in the same bucket is not out of reach")]
    QuarantineInPlace(String),
}

/// Why the `stored` section was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoredError {
    #[error("stored[{index}] (bucket {bucket:?}, prefix {prefix:?}): {problem}")]
    Rule {
        index: usize,
        bucket: String,
        prefix: String,
        problem: StoredProblem,
    },
    #[error("stored[{second}] repeats bucket {bucket:?} and prefix {prefix:?} of stored[{first}]")]
    Duplicate {
        bucket: String,
        prefix: String,
        first: usize,
        second: usize,
    },
    #[error("stored[{second}] binds bucket {bucket:?} as {binding:?}, stored[{first}] as {other:?}: one bucket, one binding")]
    TwoBindings {
        bucket: String,
        binding: String,
        other: String,
        first: usize,
        second: usize,
    },
}

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredDoc {
    bucket: String,
    binding: String,
    #[serde(default)]
    prefix: String,
    action: StoredAction,
    #[serde(default)]
    quarantine_binding: Option<String>,
    lists: Vec<String>,
    #[serde(default = "default_threshold")]
    pdq_threshold: u32,
    #[serde(default = "default_variants")]
    variants: QuerySet,
    #[serde(default = "default_max_bytes")]
    max_bytes: usize,
    #[serde(default = "default_min_quality")]
    min_pdq_quality: u32,
    #[serde(default)]
    list_distance: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    negative_lists: Vec<String>,
}

fn default_min_quality() -> u32 {
    HygieneDoc::default().min_pdq_quality
}

fn default_threshold() -> u32 {
    MAX_PDQ_THRESHOLD
}

fn default_variants() -> QuerySet {
    QuerySet::Dihedral
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

/// The validated `stored` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredPolicy {
    /// Most specific (longest prefix) first within each bucket.
    rules: Vec<StoredRule>,
}

impl StoredPolicy {
    /// Validates the section.
    pub fn validate(docs: Vec<StoredDoc>) -> Result<Self, StoredError> {
        let mut rules: Vec<StoredRule> = Vec::with_capacity(docs.len());
        for (index, doc) in docs.into_iter().enumerate() {
            let (bucket, prefix) = (doc.bucket.clone(), doc.prefix.clone());
            let rule = validate_rule(doc).map_err(|problem| StoredError::Rule {
                index,
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                problem,
            })?;
            if let Some(first) = rules
                .iter()
                .position(|r| r.bucket == rule.bucket && r.prefix == rule.prefix)
            {
                return Err(StoredError::Duplicate {
                    bucket,
                    prefix,
                    first,
                    second: index,
                });
            }
            if let Some((first, other)) = rules
                .iter()
                .enumerate()
                .find(|(_, r)| r.bucket == rule.bucket && r.binding != rule.binding)
            {
                return Err(StoredError::TwoBindings {
                    bucket,
                    binding: rule.binding.clone(),
                    other: other.binding.clone(),
                    first,
                    second: index,
                });
            }
            rules.push(rule);
        }
        // Longest prefix first, so the first rule that covers a key is the
        // most specific one.
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(StoredPolicy { rules })
    }

    /// The rule for an object, if any covers it.
    pub fn rule_for(&self, bucket: &str, key: &str) -> Option<&StoredRule> {
        self.rules
            .iter()
            .find(|r| r.bucket == bucket && key.starts_with(&r.prefix))
    }

    /// The binding of a bucket some rule names.
    pub fn binding_of(&self, bucket: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.bucket == bucket)
            .map(|r| r.binding.as_str())
    }

    /// Every rule, most specific first.
    pub fn rules(&self) -> &[StoredRule] {
        &self.rules
    }
}

/// Whether `name` is a valid R2 bucket name.
pub fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_binding_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn validate_rule(doc: StoredDoc) -> Result<StoredRule, StoredProblem> {
    if !is_bucket_name(&doc.bucket) {
        return Err(StoredProblem::Bucket(doc.bucket));
    }
    if !is_binding_name(&doc.binding) {
        return Err(StoredProblem::Binding(doc.binding));
    }
    if doc.prefix.len() > MAX_PREFIX_BYTES {
        return Err(StoredProblem::Prefix(format!(
            "{} bytes, more than {MAX_PREFIX_BYTES}",
            doc.prefix.len()
        )));
    }
    if doc.prefix.starts_with('/') {
        return Err(StoredProblem::Prefix(format!(
            "{:?} starts with '/': R2 keys have no leading slash",
            doc.prefix
        )));
    }
    if doc.prefix.chars().any(char::is_control) {
        return Err(StoredProblem::Prefix(format!(
            "{:?} contains a control character",
            doc.prefix
        )));
    }
    if doc.pdq_threshold > MAX_PDQ_THRESHOLD {
        return Err(StoredProblem::Threshold(doc.pdq_threshold));
    }
    let lists = subscribed_lists(&doc.lists).map_err(|problem| match problem {
        ListsProblem::None => StoredProblem::NoLists,
        ListsProblem::StarWithOthers => StoredProblem::StarWithOthers,
        ListsProblem::Name(e) => StoredProblem::BadList(e),
    })?;
    if doc.max_bytes == 0 || doc.max_bytes > MAX_MAX_BYTES {
        return Err(StoredProblem::MaxBytes(doc.max_bytes));
    }
    let hygiene = validate_hygiene(
        &HygieneDoc {
            min_pdq_quality: doc.min_pdq_quality,
            list_distance: doc.list_distance,
            negative_lists: doc.negative_lists,
        },
        &lists,
    )?;
    match (&doc.action, &doc.quarantine_binding) {
        (StoredAction::Quarantine, None) => return Err(StoredProblem::NoQuarantineBinding),
        (StoredAction::Quarantine, Some(q)) if !is_binding_name(q) => {
            return Err(StoredProblem::Binding(q.clone()))
        }
        (StoredAction::Quarantine, Some(q)) if *q == doc.binding => {
            return Err(StoredProblem::QuarantineInPlace(q.clone()))
        }
        (StoredAction::Delete | StoredAction::Report, Some(_)) => {
            return Err(StoredProblem::UnusedQuarantineBinding)
        }
        _ => {}
    }
    Ok(StoredRule {
        bucket: doc.bucket,
        binding: doc.binding,
        prefix: doc.prefix,
        action: doc.action,
        quarantine_binding: doc.quarantine_binding,
        lists,
        pdq_threshold: doc.pdq_threshold,
        variants: doc.variants,
        max_bytes: doc.max_bytes,
        hygiene,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<StoredPolicy, StoredError> {
        let docs: Vec<StoredDoc> = serde_json::from_str(json).unwrap();
        StoredPolicy::validate(docs)
    }

    fn rule(extra: &str) -> String {
        format!(
            r#"[{{"bucket": "uploads", "binding": "UPLOADS", "action": "report", "lists": ["demo"]{extra}}}]"#
        )
    }

    fn problem(json: &str) -> StoredProblem {
        match parse(json) {
            Err(StoredError::Rule { problem, .. }) => problem,
            other => panic!("expected a rule problem, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let policy = parse(&rule("")).unwrap();
        let r = &policy.rules()[0];
        assert_eq!(r.prefix, "");
        assert_eq!(r.pdq_threshold, 31);
        assert_eq!(r.variants, QuerySet::Dihedral);
        assert_eq!(r.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(r.pattern(), "r2://uploads/*");
        assert_eq!(policy.binding_of("uploads"), Some("UPLOADS"));
        assert!(policy.binding_of("other").is_none());
    }

    #[test]
    fn most_specific_prefix_wins() {
        let policy = parse(
            r#"[{"bucket": "uploads", "binding": "U", "action": "report", "lists": ["*"]},
                {"bucket": "uploads", "binding": "U", "prefix": "img/", "action": "delete", "lists": ["*"]},
                {"bucket": "other", "binding": "O", "prefix": "img/", "action": "delete", "lists": ["*"]}]"#,
        )
        .unwrap();
        assert_eq!(
            policy.rule_for("uploads", "img/a.jpg").unwrap().action,
            StoredAction::Delete
        );
        assert_eq!(
            policy.rule_for("uploads", "doc/a.jpg").unwrap().action,
            StoredAction::Report
        );
        assert!(policy.rule_for("other", "doc/a.jpg").is_none());
        assert!(policy.rule_for("missing", "img/a.jpg").is_none());
    }

    #[test]
    fn refuses_unknown_fields() {
        let docs: Result<Vec<StoredDoc>, _> = serde_json::from_str(&rule(r#", "acton": "x""#));
        assert!(docs.is_err());
    }

    #[test]
    fn refuses_bad_bucket_names() {
        for name in ["ab", "Uploads", "-up", "up-", "up_loads", &"a".repeat(64)] {
            let json = rule("").replace("\"uploads\"", &format!("{name:?}"));
            assert!(matches!(problem(&json), StoredProblem::Bucket(_)), "{name}");
        }
    }

    #[test]
    fn refuses_bad_binding() {
        let json = rule("").replace("\"UPLOADS\"", "\"9UP\"");
        assert!(matches!(problem(&json), StoredProblem::Binding(_)));
    }

    #[test]
    fn refuses_leading_slash_prefix() {
        assert!(matches!(
            problem(&rule(r#", "prefix": "/img/""#)),
            StoredProblem::Prefix(_)
        ));
    }

    #[test]
    fn refuses_long_prefix() {
        let long = "a".repeat(MAX_PREFIX_BYTES + 1);
        assert!(matches!(
            problem(&rule(&format!(r#", "prefix": "{long}""#))),
            StoredProblem::Prefix(_)
        ));
    }

    #[test]
    fn refuses_control_characters_in_prefix() {
        assert!(matches!(
            problem(&rule(r#", "prefix": "img\n""#)),
            StoredProblem::Prefix(_)
        ));
    }

    #[test]
    fn refuses_threshold_over_31() {
        assert_eq!(
            problem(&rule(r#", "pdq_threshold": 32"#)),
            StoredProblem::Threshold(32)
        );
    }

    #[test]
    fn refuses_empty_lists() {
        let json = rule("").replace(r#"["demo"]"#, "[]");
        assert_eq!(problem(&json), StoredProblem::NoLists);
    }

    #[test]
    fn refuses_bad_list_name() {
        let json = rule("").replace(r#"["demo"]"#, r#"["a b"]"#);
        assert!(matches!(problem(&json), StoredProblem::BadList(_)));
    }

    #[test]
    fn refuses_star_with_others() {
        let json = rule("").replace(r#"["demo"]"#, r#"["*", "demo"]"#);
        assert_eq!(problem(&json), StoredProblem::StarWithOthers);
    }

    #[test]
    fn refuses_max_bytes_out_of_range() {
        assert_eq!(
            problem(&rule(r#", "max_bytes": 0"#)),
            StoredProblem::MaxBytes(0)
        );
        assert_eq!(
            problem(&rule(&format!(r#", "max_bytes": {}"#, MAX_MAX_BYTES + 1))),
            StoredProblem::MaxBytes(MAX_MAX_BYTES + 1)
        );
    }

    #[test]
    fn hygiene_fields_as_for_routes() {
        let policy = parse(&rule("")).unwrap();
        assert_eq!(policy.rules()[0].hygiene, Hygiene::default());
        let policy = parse(&rule(
            r#", "min_pdq_quality": 0, "list_distance": {"demo": 8}, "negative_lists": ["stock"]"#,
        ))
        .unwrap();
        let hygiene = &policy.rules()[0].hygiene;
        assert_eq!(hygiene.min_pdq_quality, 0);
        assert_eq!(hygiene.list_distance["demo"], 8);
        assert!(hygiene.negative_lists.contains("stock"));
    }

    #[test]
    fn refuses_bad_hygiene_fields() {
        assert_eq!(
            problem(&rule(r#", "min_pdq_quality": 101"#)),
            StoredProblem::Hygiene(HygieneProblem::MinQuality(101))
        );
        assert_eq!(
            problem(&rule(r#", "negative_lists": ["demo"]"#)),
            StoredProblem::Hygiene(HygieneProblem::NegativeAlsoListed("demo".into()))
        );
        assert_eq!(
            problem(&rule(r#", "list_distance": {"other": 3}"#)),
            StoredProblem::Hygiene(HygieneProblem::ListDistanceUnknown("other".into()))
        );
    }

    #[test]
    fn refuses_quarantine_without_binding() {
        let json = rule("").replace("\"report\"", "\"quarantine\"");
        assert_eq!(problem(&json), StoredProblem::NoQuarantineBinding);
    }

    #[test]
    fn refuses_quarantine_binding_without_quarantine() {
        assert_eq!(
            problem(&rule(r#", "quarantine_binding": "Q""#)),
            StoredProblem::UnusedQuarantineBinding
        );
    }

    #[test]
    fn refuses_quarantine_in_the_same_bucket() {
        let json =
            rule(r#", "quarantine_binding": "UPLOADS""#).replace("\"report\"", "\"quarantine\"");
        assert!(matches!(
            problem(&json),
            StoredProblem::QuarantineInPlace(_)
        ));
    }

    #[test]
    fn refuses_bad_quarantine_binding_name() {
        let json = rule(r#", "quarantine_binding": "q-1""#).replace("\"report\"", "\"quarantine\"");
        assert!(matches!(problem(&json), StoredProblem::Binding(_)));
    }

    #[test]
    fn refuses_duplicate_bucket_and_prefix() {
        let json = r#"[{"bucket": "uploads", "binding": "U", "action": "report", "lists": ["*"]},
                       {"bucket": "uploads", "binding": "U", "action": "delete", "lists": ["*"]}]"#;
        assert!(matches!(
            parse(json),
            Err(StoredError::Duplicate {
                first: 0,
                second: 1,
                ..
            })
        ));
    }

    #[test]
    fn refuses_two_bindings_for_one_bucket() {
        let json = r#"[{"bucket": "uploads", "binding": "U", "action": "report", "lists": ["*"]},
                       {"bucket": "uploads", "binding": "V", "prefix": "a/", "action": "delete", "lists": ["*"]}]"#;
        assert!(matches!(parse(json), Err(StoredError::TwoBindings { .. })));
    }

    #[test]
    fn errors_name_the_rule() {
        let json = rule("").replace("\"report\"", "\"quarantine\"");
        let text = parse(&json).unwrap_err().to_string();
        assert!(text.starts_with("stored[0] (bucket \"uploads\""), "{text}");
    }
}
