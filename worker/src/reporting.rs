//! The reporting job: an incident, once confirmed, is filed with NCMEC's
//! CyberTipline through its ESP API, in the documented sequence
//!
//! ```text
//! submit (the <report> document)  -> reportId
//! upload (the image, multipart)   -> fileId
//! fileinfo (<fileDetails>: the original file's SHA-256, whether anyone at the provider viewed it)
//! finish                          -> the report is filed
//! retract                         only after an unrecoverable failure, for a report that was opened
//! ```
//!
//! An incident is a `REPORTS` record ([`crate::report`]), named by its key.
//! [`confirm`] (a person's decision; the admin endpoint below, and the
//! console later) writes a [`Filing`] next to it under `filing/v1/...`; a
//! route whose policy has `report.auto` is confirmed by the queue consumer
//! when its record is created. Nothing is sent before that.
//!
//! **Durable and resumable.** Workers run no long jobs, so the filing is a
//! state machine in KV driven by one driver, the cron trigger (every
//! minute; [`run_due`]): each tick reads the filings that are due, does
//! their next steps, and writes the state after every step (report id,
//! file id, stage). A restart, a crash or a timeout between steps loses at
//! most the step under way, and the next tick resumes from the last
//! recorded stage. Failures are retried with exponential backoff
//! ([`backoff_ms`]); an answer that retrying cannot fix (NCMEC's 4xxx
//! validation codes) or [`MAX_ATTEMPTS`] failures of one step end the
//! filing: a report that was opened is retracted, and the filing stays in
//! KV as `retracted`/`failed` with the reason, for a person to see.
//!
//! **Never filed twice.** Each step is idempotent as NCMEC's API allows:
//! `finish` of a finished report (code 5102) and `retract` of a retracted
//! one (5101) count as done; `fileinfo` may be sent again. `submit` and
//! `upload` create a new report or file each time, so a step whose answer
//! was lost is repeated, which may leave an unfinished report (never
//! processed by NCMEC) or a second copy of the file in the same report,
//! never a second finished report: only the report id recorded in the
//! filing is ever finished.
//!
//! **Why KV and the cron, not D1 or a Durable Object.** A filing is one
//! small value written a handful of times, next to the record it files,
//! with the same one-year expiration; one driver (the cron, whose ticks
//! are a minute apart and each bounded to [`TICK_BUDGET_MS`]) means no two
//! writers race on it, and KV's own consistency (a write is visible where
//! it was made at once, elsewhere within 60 s) is within a tick's spacing.
//! A Durable Object per filing would give strict serialization and
//! alarms, at the cost of a class binding and migrations; D1 a queryable
//! table. Both are natural next steps if filings ever need more than one
//! driver (docs/reporting.md).

use serde::{Deserialize, Serialize};

/// Key prefix of filings in `REPORTS`.
pub const FILING_PREFIX: &str = "filing/v1/";
/// Present while a filing may be due (the cron lists only then).
pub const FILING_MARKER: &str = "filing/active";
/// Failures of one step before the filing gives up.
pub const MAX_ATTEMPTS: u32 = 8;
/// Longest pause between attempts.
pub const MAX_BACKOFF_MS: u64 = 60 * 60 * 1000;
/// Default first pause (the cron's own interval).
pub const DEFAULT_RETRY_BASE_MS: u64 = 60_000;
/// A tick stops starting steps after this long.
pub const TICK_BUDGET_MS: f64 = 20_000.0;
/// Secret names of the API credentials.
pub const USERNAME_SECRET: &str = "NCMEC_USERNAME";
pub const PASSWORD_SECRET: &str = "NCMEC_PASSWORD";
/// Variable: the reporting configuration ([`hashgate::cybertip::ReportingConfig`]).
pub const CONFIG_VAR: &str = "REPORTING";
/// Variable: the first retry pause in ms (tests set it low).
pub const RETRY_BASE_VAR: &str = "REPORTING_RETRY_BASE_MS";
/// Secret: bearer token of the admin endpoint.
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
/// Path prefix of the admin endpoint (only when `ADMIN_TOKEN` is set).
pub const ADMIN_PREFIX: &str = "/.hashgate/admin/";

/// Where a filing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Confirmed; nothing sent yet.
    Confirmed,
    /// NCMEC opened a report (`report_id`).
    Submitted,
    /// The file is in the report (`file_id`).
    Uploaded,
    /// The file's details are in.
    Described,
    /// Filed.
    Finished,
    /// Given up after opening a report; the report was retracted.
    Retracted,
    /// Given up before a report was opened.
    Failed,
}

/// A step of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Submit,
    Upload,
    FileInfo,
    Finish,
    Retract,
}

impl Step {
    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            Step::Submit => "/submit",
            Step::Upload => "/upload",
            Step::FileInfo => "/fileinfo",
            Step::Finish => "/finish",
            Step::Retract => "/retract",
        }
    }
}

/// The state of one incident's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    pub v: u32,
    /// The `REPORTS` record key.
    pub incident: String,
    pub stage: Stage,
    pub reviewer: String,
    pub note: String,
    /// Whether the reviewer viewed the image (`fileViewedByEsp`).
    pub viewed: bool,
    pub confirmed_at: String,
    pub report_id: Option<String>,
    pub file_id: Option<String>,
    /// Set when the filing gave up: the next step is a retraction.
    #[serde(default)]
    pub retracting: bool,
    /// Failures of the current step.
    pub attempts: u32,
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
    pub updated_at: String,
    /// What happened, oldest first (bounded).
    pub history: Vec<String>,
}

/// Entries kept in `history`.
pub const MAX_HISTORY: usize = 40;

/// Why a confirmation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("{0:?} is not an incident key (report/v1/<sha256>/<route id>)")]
    NotAnIncident(String),
    #[error("reviewer is required")]
    NoReviewer,
}

/// The filing key of an incident key.
pub fn filing_key(incident: &str) -> Result<String, ConfirmError> {
    let rest = incident
        .strip_prefix(crate::report::REPORT_PREFIX)
        .filter(|rest| {
            let mut parts = rest.split('/');
            let sha = parts.next().unwrap_or_default();
            let route = parts.next().unwrap_or_default();
            parts.next().is_none()
                && sha.len() == 64
                && sha.bytes().all(|b| b.is_ascii_hexdigit())
                && route.len() == 16
                && route.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| ConfirmError::NotAnIncident(incident.to_owned()))?;
    Ok(format!("{FILING_PREFIX}{rest}"))
}

/// The confirmation: a new filing, or the existing one unchanged (a second
/// confirmation never starts a second report).
pub fn confirm_transition(
    existing: Option<Filing>,
    incident: &str,
    reviewer: &str,
    note: &str,
    viewed: bool,
    now_ms: u64,
) -> Result<(Filing, bool), ConfirmError> {
    filing_key(incident)?;
    if reviewer.trim().is_empty() {
        return Err(ConfirmError::NoReviewer);
    }
    if let Some(filing) = existing {
        return Ok((filing, false));
    }
    let now = crate::events::rfc3339(now_ms);
    let filing = Filing {
        v: 1,
        incident: incident.to_owned(),
        stage: Stage::Confirmed,
        reviewer: reviewer.trim().chars().take(200).collect(),
        note: note.chars().take(2000).collect(),
        viewed,
        confirmed_at: now.clone(),
        report_id: None,
        file_id: None,
        retracting: false,
        attempts: 0,
        next_attempt_ms: now_ms,
        last_error: None,
        updated_at: now.clone(),
        history: vec![format!("{now} confirmed by {}", reviewer.trim())],
    };
    Ok((filing, true))
}

/// The step a filing needs next, if any.
pub fn next_step(f: &Filing) -> Option<Step> {
    if f.retracting {
        return f.report_id.as_ref().map(|_| Step::Retract);
    }
    match f.stage {
        Stage::Confirmed => Some(Step::Submit),
        Stage::Submitted => Some(Step::Upload),
        Stage::Uploaded => Some(Step::FileInfo),
        Stage::Described => Some(Step::Finish),
        Stage::Finished | Stage::Retracted | Stage::Failed => None,
    }
}

/// Whether the filing is over.
pub fn is_done(f: &Filing) -> bool {
    next_step(f).is_none()
}

/// What a step's answer was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; with the ids the answer carried.
    Done {
        report_id: Option<String>,
        file_id: Option<String>,
    },
    /// May succeed later (network, 5xx, NCMEC's server error codes).
    Transient(String),
    /// Retrying cannot fix it (validation, malformed document).
    Permanent(String),
}

/// Reads an API answer: HTTP status and the XML body's `responseCode`.
pub fn classify(step: Step, status: u16, body: &str) -> Outcome {
    let code = element(body, "responseCode").and_then(|c| c.trim().parse::<u32>().ok());
    let description = element(body, "responseDescription").unwrap_or_default();
    let done = || Outcome::Done {
        report_id: element(body, "reportId").map(str::to_owned),
        file_id: element(body, "fileId").map(str::to_owned),
    };
    match (status, code) {
        (200..=299, Some(0)) => done(),
        // Already finished / retracted: the step's goal holds.
        (_, Some(5102)) if step == Step::Finish => done(),
        (_, Some(5101)) if step == Step::Retract => done(),
        (_, Some(code @ (4000..=4999))) => {
            Outcome::Permanent(format!("{} answered {code} {description}", step.path()))
        }
        (_, Some(code)) => {
            Outcome::Transient(format!("{} answered {code} {description}", step.path()))
        }
        (400 | 404 | 405 | 413 | 415 | 422, None) => {
            Outcome::Permanent(format!("{} answered HTTP {status}", step.path()))
        }
        (_, None) => Outcome::Transient(format!(
            "{} answered HTTP {status} without a responseCode",
            step.path()
        )),
    }
}

/// The text of the first `<name>` element (the API's answers are flat).
pub fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// Pause before attempt `attempts + 1`.
pub fn backoff_ms(attempts: u32, base_ms: u64) -> u64 {
    base_ms
        .saturating_mul(1u64 << attempts.min(20))
        .min(MAX_BACKOFF_MS)
}

fn log(f: &mut Filing, now_ms: u64, what: String) {
    let now = crate::events::rfc3339(now_ms);
    f.history.push(format!("{now} {what}"));
    if f.history.len() > MAX_HISTORY {
        let excess = f.history.len() - MAX_HISTORY;
        f.history.drain(..excess);
    }
    f.updated_at = now;
}

/// Applies a step's outcome to the filing.
pub fn apply(f: &mut Filing, step: Step, outcome: Outcome, now_ms: u64, base_ms: u64) {
    match outcome {
        Outcome::Done { report_id, file_id } => {
            f.attempts = 0;
            // A retraction keeps the reason the filing gave up.
            if step != Step::Retract {
                f.last_error = None;
            }
            f.next_attempt_ms = now_ms;
            match step {
                Step::Submit => {
                    f.report_id = report_id;
                    f.stage = Stage::Submitted;
                }
                Step::Upload => {
                    f.file_id = file_id;
                    f.stage = Stage::Uploaded;
                }
                Step::FileInfo => f.stage = Stage::Described,
                Step::Finish => f.stage = Stage::Finished,
                Step::Retract => {
                    f.stage = Stage::Retracted;
                    f.retracting = false;
                }
            }
            let ids = match (&f.report_id, &f.file_id) {
                (Some(r), Some(file)) => format!(" (report {r}, file {file})"),
                (Some(r), None) => format!(" (report {r})"),
                _ => String::new(),
            };
            log(f, now_ms, format!("{} done{ids}", step.path()));
            // An answer without the id the next step needs is no answer.
            let missing = match step {
                Step::Submit => f.report_id.is_none(),
                Step::Upload => f.file_id.is_none(),
                _ => false,
            };
            if missing {
                f.stage = match step {
                    Step::Submit => Stage::Confirmed,
                    _ => Stage::Submitted,
                };
                apply(
                    f,
                    step,
                    Outcome::Transient(format!("{} answered without an id", step.path())),
                    now_ms,
                    base_ms,
                );
            }
        }
        Outcome::Transient(reason) if f.attempts + 1 < MAX_ATTEMPTS => {
            f.attempts += 1;
            f.next_attempt_ms = now_ms.saturating_add(backoff_ms(f.attempts - 1, base_ms));
            log(
                f,
                now_ms,
                format!("{} failed (attempt {}): {reason}", step.path(), f.attempts),
            );
            f.last_error = Some(reason);
        }
        Outcome::Transient(reason) | Outcome::Permanent(reason) => {
            log(
                f,
                now_ms,
                format!("{} failed for good: {reason}", step.path()),
            );
            f.last_error = Some(reason);
            f.attempts = 0;
            f.next_attempt_ms = now_ms;
            if step == Step::Retract {
                // Nothing more can be done: visible as failed, with the reason.
                f.retracting = false;
                f.stage = Stage::Failed;
            } else if f.report_id.is_some() && f.stage != Stage::Finished {
                f.retracting = true;
            } else {
                f.stage = Stage::Failed;
            }
        }
    }
}

/// A `multipart/form-data` body of text fields and at most one file.
pub fn multipart(
    boundary: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, &str, &[u8])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, filename, content_type, bytes)) = file {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// Whether a bearer token matches, in time independent of where they differ
/// and of whether their lengths agree: the SHA-256 digests of both are
/// compared with `subtle`'s constant-time equality (equal digests, equal
/// tokens). An empty expected token matches nothing.
pub fn token_matches(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    if expected.is_empty() {
        return false;
    }
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
pub use runtime::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> String {
        format!("report/v1/{}/0123456789abcdef", "ab".repeat(32))
    }

    fn confirmed() -> Filing {
        confirm_transition(None, &incident(), "ana", "seen", false, 0)
            .unwrap()
            .0
    }

    fn done(report: Option<&str>, file: Option<&str>) -> Outcome {
        Outcome::Done {
            report_id: report.map(str::to_owned),
            file_id: file.map(str::to_owned),
        }
    }

    #[test]
    fn the_sequence_in_order() {
        let mut f = confirmed();
        assert_eq!(
            filing_key(&incident()).unwrap(),
            format!("filing/v1/{}/0123456789abcdef", "ab".repeat(32))
        );
        let mut steps = Vec::new();
        while let Some(step) = next_step(&f) {
            steps.push(step);
            apply(&mut f, step, done(Some("42"), Some("f1")), 1, 1000);
        }
        assert_eq!(
            steps,
            [Step::Submit, Step::Upload, Step::FileInfo, Step::Finish]
        );
        assert_eq!(f.stage, Stage::Finished);
        assert_eq!(f.report_id.as_deref(), Some("42"));
        assert!(is_done(&f));
    }

    #[test]
    fn a_second_confirmation_changes_nothing() {
        let mut f = confirmed();
        apply(&mut f, Step::Submit, done(Some("42"), None), 1, 1000);
        let (again, created) =
            confirm_transition(Some(f.clone()), &incident(), "bo", "", true, 5).unwrap();
        assert!(!created);
        assert_eq!(again, f);
        assert!(confirm_transition(None, "report/v1/x/y", "a", "", false, 0).is_err());
        assert!(confirm_transition(None, &incident(), " ", "", false, 0).is_err());
    }

    #[test]
    fn transient_failures_back_off_then_give_up_and_retract() {
        let mut f = confirmed();
        apply(&mut f, Step::Submit, done(Some("42"), None), 0, 1000);
        for attempt in 1..MAX_ATTEMPTS {
            apply(
                &mut f,
                Step::Upload,
                Outcome::Transient("503".into()),
                0,
                1000,
            );
            assert_eq!(f.attempts, attempt);
            assert_eq!(f.next_attempt_ms, backoff_ms(attempt - 1, 1000));
            assert_eq!(next_step(&f), Some(Step::Upload));
        }
        apply(
            &mut f,
            Step::Upload,
            Outcome::Transient("503".into()),
            0,
            1000,
        );
        assert_eq!(next_step(&f), Some(Step::Retract));
        apply(&mut f, Step::Retract, done(Some("42"), None), 0, 1000);
        assert_eq!(f.stage, Stage::Retracted);
        assert!(is_done(&f));
        assert!(f.last_error.is_some());
    }

    #[test]
    fn permanent_failures_before_a_report_fail_without_retracting() {
        let mut f = confirmed();
        apply(
            &mut f,
            Step::Submit,
            Outcome::Permanent("4100".into()),
            0,
            1000,
        );
        assert_eq!(f.stage, Stage::Failed);
        assert_eq!(next_step(&f), None);
    }

    #[test]
    fn an_answer_without_an_id_is_retried() {
        let mut f = confirmed();
        apply(&mut f, Step::Submit, done(None, None), 0, 1000);
        assert_eq!(f.stage, Stage::Confirmed);
        assert_eq!(f.attempts, 1);
    }

    #[test]
    fn answers_are_classified() {
        let ok = "<reportResponse><responseCode>0</responseCode><responseDescription>Success</responseDescription><reportId>7</reportId></reportResponse>";
        assert_eq!(classify(Step::Submit, 200, ok), done(Some("7"), None));
        let invalid = "<reportResponse><responseCode>4100</responseCode><responseDescription>Validation failed</responseDescription></reportResponse>";
        assert!(matches!(
            classify(Step::Submit, 200, invalid),
            Outcome::Permanent(_)
        ));
        let server = "<reportResponse><responseCode>1000</responseCode></reportResponse>";
        assert!(matches!(
            classify(Step::Upload, 500, server),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(Step::Finish, 502, "bad gateway"),
            Outcome::Transient(_)
        ));
        let finished = "<reportDoneResponse><responseCode>5102</responseCode><reportId>7</reportId></reportDoneResponse>";
        assert!(matches!(
            classify(Step::Finish, 200, finished),
            Outcome::Done { .. }
        ));
        assert!(matches!(
            classify(Step::Submit, 200, finished),
            Outcome::Transient(_)
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(0, 1000), 1000);
        assert_eq!(backoff_ms(3, 1000), 8000);
        assert_eq!(backoff_ms(40, 60_000), MAX_BACKOFF_MS);
    }

    #[test]
    fn tokens_and_multipart() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("", ""));
        let body = multipart(
            "b",
            &[("id", "7")],
            Some(("file", "x.jpg", "image/jpeg", b"JPEG")),
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("--b\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n7\r\n"));
        assert!(text
            .contains("filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEG\r\n--b--\r\n"));
    }
}
