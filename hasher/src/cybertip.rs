//! CyberTipline report documents: the XML that NCMEC's ESP reporting API
//! takes at `/submit` (a `<report>`) and `/fileinfo` (a `<fileDetails>`),
//! built from an incident (a report record), its evidence manifests and
//! the operator's configuration. Shared by the worker's reporting job and
//! `hashgate report build`, so what is checked offline is what is sent.
//!
//! NCMEC validates documents against its schema, where every element is
//! part of an `xs:sequence`: children out of order are rejected. So the
//! documents are written element by element in the schema's order (the
//! order below, from NCMEC's ESP API documentation), never from a map, and
//! [`ELEMENT_ORDER`] states it once for the tests and the stand-in to
//! check. Only the elements hashgate can fill are written; every value is
//! escaped, and text XML 1.0 cannot carry (control characters) is refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::evidence::Manifest;
use crate::matching::MatchRecord;

/// The schema location NCMEC's documents name.
pub const SCHEMA_LOCATION: &str = "https://report.cybertip.org/ispws/xsd";
/// The incident type of an apparent child sexual abuse image.
pub const INCIDENT_TYPE: &str = "Child Pornography (possession, manufacture, and distribution)";
/// NCMEC's production base URL.
pub const PRODUCTION_URL: &str = "https://report.cybertip.org/ispws";
/// NCMEC's test environment (reports there are never acted on).
pub const TEST_URL: &str = "https://exttest.cybertip.org/ispws";
/// Distinct URLs written into a report.
pub const MAX_URLS: usize = 20;
/// Upload IP capture events written into a report.
pub const MAX_IP_EVENTS: usize = 20;

/// The schema's order of the children hashgate writes, per parent.
pub const ELEMENT_ORDER: &[(&str, &[&str])] = &[
    (
        "report",
        &[
            "incidentSummary",
            "internetDetails",
            "lawEnforcement",
            "reporter",
            "personOrUserReported",
            "intendedRecipient",
            "victim",
            "additionalInfo",
        ],
    ),
    (
        "incidentSummary",
        &[
            "incidentType",
            "escalateToHighPriority",
            "reportAnnotations",
            "incidentDateTime",
            "incidentDateTimeDescription",
        ],
    ),
    (
        "webPageIncident",
        &["url", "additionalInfo", "thirdPartyHostedContent"],
    ),
    (
        "reporter",
        &[
            "reportingPerson",
            "contactPerson",
            "companyTemplate",
            "termsOfService",
            "legalURL",
        ],
    ),
    (
        "reportingPerson",
        &["firstName", "lastName", "phone", "email", "address"],
    ),
    (
        "personOrUserReported",
        &[
            "personOrUserReportedPerson",
            "espIdentifier",
            "espService",
            "screenName",
            "displayName",
            "profileUrl",
            "ipCaptureEvent",
        ],
    ),
    (
        "ipCaptureEvent",
        &[
            "ipAddress",
            "eventName",
            "dateTime",
            "possibleProxy",
            "port",
        ],
    ),
    (
        "fileDetails",
        &[
            "reportId",
            "fileId",
            "originalFileName",
            "locationOfFile",
            "fileViewedByEsp",
            "exifViewedByEsp",
            "publiclyAvailable",
            "fileRelevance",
            "fileAnnotations",
            "industryClassification",
            "originalFileHash",
            "ipCaptureEvent",
            "deviceId",
            "details",
            "additionalInfo",
        ],
    ),
];

/// Why a document could not be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ReportError {
    ReportError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// The person NCMEC contacts about reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// The operator's reporting configuration (the worker's `REPORTING`
/// variable; `hashgate report build --config`). Credentials are not here:
/// they are secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingConfig {
    /// `test` (NCMEC's test environment, the default) or `production`.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Overrides the environment's URL (a local stand-in in tests).
    #[serde(default)]
    pub base_url: Option<String>,
    pub reporter: Person,
    #[serde(default)]
    pub company_template: Option<String>,
    #[serde(default)]
    pub terms_of_service: Option<String>,
    #[serde(default)]
    pub legal_url: Option<String>,
}

fn default_environment() -> String {
    "test".to_owned()
}

impl ReportingConfig {
    /// Checks the configuration (contact fields, environment, URLs).
    pub fn validate(&self) -> Result<(), ReportError> {
        self.api_url()?;
        check_person(&self.reporter)?;
        if let Some(url) = &self.legal_url {
            check_url("legal_url", url)?;
        }
        Ok(())
    }

    /// The API's base URL, without a trailing slash.
    pub fn api_url(&self) -> Result<String, ReportError> {
        let url = match (&self.base_url, self.environment.as_str()) {
            (Some(url), _) => {
                check_url("base_url", url)?;
                url.trim_end_matches('/').to_owned()
            }
            (None, "test") => TEST_URL.to_owned(),
            (None, "production") => PRODUCTION_URL.to_owned(),
            (None, other) => {
                return Err(invalid(
                    "environment",
                    format!("{other:?} is neither \"test\" nor \"production\""),
                ))
            }
        };
        Ok(url)
    }
}

/// What a report needs from an incident's record (a `REPORTS` record; only
/// these fields are read, so older and newer records both do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub key: String,
    pub route: String,
    pub sha256: Option<String>,
    pub first_seen: String,
    #[serde(default)]
    pub last_seen: Option<String>,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub matches: Vec<MatchRecord>,
}

/// Builds the `<report>` document for an incident and its sightings
/// (evidence manifests, oldest first).
pub fn report_xml(
    incident: &Incident,
    sightings: &[Manifest],
    config: &ReportingConfig,
) -> Result<String, ReportError> {
    config.validate()?;
    check_time("incident first_seen", &incident.first_seen)?;
    let mut urls: Vec<&str> = Vec::new();
    for url in incident
        .urls
        .iter()
        .map(String::as_str)
        .chain(sightings.iter().map(|s| s.url.as_str()))
    {
        if !urls.contains(&url) && urls.len() < MAX_URLS {
            check_url("incident url", url)?;
            urls.push(url);
        }
    }
    if urls.is_empty() {
        return Err(ReportError::Missing("incident url"));
    }
    let mut x = Xml::document("report");
    x.open("incidentSummary");
    x.text("incidentType", INCIDENT_TYPE)?;
    x.text("incidentDateTime", &incident.first_seen)?;
    x.text(
        "incidentDateTimeDescription",
        "First time the image was seen by the reporter's edge filter (hashgate)",
    )?;
    x.close("incidentSummary");

    x.open("internetDetails");
    x.open("webPageIncident");
    for url in &urls {
        x.text("url", url)?;
    }
    x.text("additionalInfo", &describe_matches(incident, sightings))?;
    x.close("webPageIncident");
    x.close("internetDetails");

    x.open("reporter");
    x.open("reportingPerson");
    let person = &config.reporter;
    x.text("firstName", &person.first_name)?;
    x.text("lastName", &person.last_name)?;
    if let Some(phone) = &person.phone {
        x.text("phone", phone)?;
    }
    x.text("email", &person.email)?;
    x.close("reportingPerson");
    if let Some(template) = &config.company_template {
        x.text("companyTemplate", template)?;
    }
    if let Some(tos) = &config.terms_of_service {
        x.text("termsOfService", tos)?;
    }
    if let Some(legal) = &config.legal_url {
        x.text("legalURL", legal)?;
    }
    x.close("reporter");

    let uploads: Vec<(&str, &str)> = sightings
        .iter()
        .filter(|s| s.direction == "upload")
        .filter_map(|s| {
            let ip = s.uploader.as_ref()?.ip.as_deref()?;
            Some((ip, s.time.as_str()))
        })
        .take(MAX_IP_EVENTS)
        .collect();
    if !uploads.is_empty() {
        x.open("personOrUserReported");
        for (ip, time) in uploads {
            check_time("upload time", time)?;
            x.open("ipCaptureEvent");
            x.text("ipAddress", ip)?;
            x.text("eventName", "Upload")?;
            x.text("dateTime", time)?;
            x.close("ipCaptureEvent");
        }
        x.close("personOrUserReported");
    }
    x.text(
        "additionalInfo",
        &format!(
            "Detected by hash matching at the edge; sightings: {}; hashgate incident {}",
            incident.count.max(1),
            incident.key
        ),
    )?;
    Ok(x.finish("report"))
}

fn describe_matches(incident: &Incident, sightings: &[Manifest]) -> String {
    let matches = if incident.matches.is_empty() {
        sightings
            .first()
            .map(|s| s.matches.as_slice())
            .unwrap_or(&[])
    } else {
        incident.matches.as_slice()
    };
    let listed: Vec<String> = matches
        .iter()
        .take(5)
        .map(|m| {
            format!(
                "list {} entry {} ({} distance {}, {})",
                m.list,
                m.id.as_deref().unwrap_or("-"),
                m.kind,
                m.distance,
                m.variant.as_deref().unwrap_or("orig")
            )
        })
        .collect();
    format!(
        "Image matched a known-CSAM hash list: {}",
        if listed.is_empty() {
            "(no match details)".to_owned()
        } else {
            listed.join("; ")
        }
    )
}

/// What `/fileinfo` says about an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDetails<'a> {
    pub report_id: &'a str,
    pub file_id: &'a str,
    pub original_file_name: Option<&'a str>,
    pub location_of_file: Option<&'a str>,
    /// Whether a person at the provider viewed the file before reporting.
    pub viewed_by_esp: bool,
    /// Whether the file was publicly reachable (served on a URL).
    pub publicly_available: bool,
    /// SHA-256 of the original file, lowercase hex.
    pub sha256: &'a str,
    /// Upload of this file, if it was one: IP and time.
    pub upload: Option<(&'a str, &'a str)>,
}

/// Builds the `<fileDetails>` document.
pub fn file_details_xml(d: &FileDetails<'_>) -> Result<String, ReportError> {
    if d.report_id.is_empty() {
        return Err(ReportError::Missing("reportId"));
    }
    if d.file_id.is_empty() {
        return Err(ReportError::Missing("fileId"));
    }
    if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("originalFileHash", "not a SHA-256"));
    }
    let mut x = Xml::document("fileDetails");
    x.text("reportId", d.report_id)?;
    x.text("fileId", d.file_id)?;
    if let Some(name) = d.original_file_name {
        x.text("originalFileName", name)?;
    }
    if let Some(location) = d.location_of_file {
        x.text("locationOfFile", location)?;
    }
    x.text("fileViewedByEsp", bool_text(d.viewed_by_esp))?;
    x.text("publiclyAvailable", bool_text(d.publicly_available))?;
    x.raw(&format!(
        "<originalFileHash hashType=\"SHA256\">{}</originalFileHash>",
        d.sha256
    ));
    if let Some((ip, time)) = d.upload {
        check_time("upload time", time)?;
        x.open("ipCaptureEvent");
        x.text("ipAddress", ip)?;
        x.text("eventName", "Upload")?;
        x.text("dateTime", time)?;
        x.close("ipCaptureEvent");
    }
    Ok(x.finish("fileDetails"))
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn check_person(p: &Person) -> Result<(), ReportError> {
    if p.first_name.trim().is_empty() {
        return Err(ReportError::Missing("reporter.first_name"));
    }
    if p.last_name.trim().is_empty() {
        return Err(ReportError::Missing("reporter.last_name"));
    }
    let email_ok = p
        .email
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !p.email.contains(' '));
    if !email_ok {
        return Err(invalid("reporter.email", "not an email address"));
    }
    Ok(())
}

fn check_url(field: &'static str, url: &str) -> Result<(), ReportError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("r2://"));
    match rest {
        Some(rest) if !rest.is_empty() && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(invalid(field, format!("{url:?} is not an absolute URL"))),
    }
}

/// An RFC 3339 UTC time as the worker writes it (`2026-01-02T03:04:05.678Z`
/// or without the fraction).
fn check_time(field: &'static str, t: &str) -> Result<(), ReportError> {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b.last() == Some(&b'Z');
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{t:?} is not an RFC 3339 UTC time")))
    }
}

/// A tiny writer for documents of elements and text.
struct Xml {
    out: String,
}

impl Xml {
    fn document(root: &str) -> Self {
        Xml {
            out: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"{SCHEMA_LOCATION}\">"
            ),
        }
    }
    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }
    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }
    fn text(&mut self, name: &'static str, value: &str) -> Result<(), ReportError> {
        if value.trim().is_empty() {
            return Err(ReportError::Missing(name));
        }
        self.open(name);
        for c in value.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '&' => self.out.push_str("&amp;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&apos;"),
                '\t' | '\n' | '\r' => self.out.push(c),
                c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                    return Err(invalid(name, "contains a control character"))
                }
                c => self.out.push(c),
            }
        }
        self.close(name);
        Ok(())
    }
    fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out.push('\n');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Uploader;

    pub(crate) fn config() -> ReportingConfig {
        ReportingConfig {
            environment: "test".into(),
            base_url: None,
            reporter: Person {
                first_name: "Ada".into(),
                last_name: "Trust & Safety".into(),
                email: "tns@example.com".into(),
                phone: None,
            },
            company_template: None,
            terms_of_service: Some("https://example.com/terms".into()),
            legal_url: Some("https://example.com/legal".into()),
        }
    }

    fn incident() -> Incident {
        Incident {
            key: format!("report/v1/{}/0123456789abcdef", "ab".repeat(32)),
            route: "*/*".into(),
            sha256: Some("ab".repeat(32)),
            first_seen: "2026-01-02T03:04:05.678Z".into(),
            last_seen: None,
            count: 2,
            urls: vec!["https://example.com/a.jpg?x=<1>".into()],
            matches: vec![MatchRecord {
                list: "demo".into(),
                kind: "pdq".into(),
                hash: "cc".repeat(32),
                distance: 4,
                id: Some("demo-1".into()),
                variant: Some("orig".into()),
            }],
        }
    }

    fn upload_sighting() -> Manifest {
        Manifest {
            v: 1,
            sha256: "ab".repeat(32),
            size: 10,
            content_type: "image/jpeg".into(),
            url: "https://example.com/upload".into(),
            route: "*/*".into(),
            request_id: "r1".into(),
            direction: "upload".into(),
            action: "blocked".into(),
            time: "2026-01-02T03:04:06.000Z".into(),
            time_ms: 0,
            matches: vec![],
            uploader: Some(Uploader {
                ip: Some("203.0.113.7".into()),
                ..Uploader::default()
            }),
            object_key: "k".into(),
            key_id: "k1".into(),
            retain_until: "2027-01-02T03:04:06.000Z".into(),
        }
    }

    /// The children of `parent` in `xml`, in document order (a scan of
    /// this module's own output: no attributes with `>`, no CDATA).
    fn children(xml: &str, parent: &str) -> Vec<String> {
        let start = xml.find(&format!("<{parent}")).unwrap();
        let end = xml.rfind(&format!("</{parent}>")).unwrap();
        let inner = &xml[xml[start..].find('>').unwrap() + start + 1..end];
        let mut depth = 0;
        let mut out = Vec::new();
        let mut rest = inner;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let tag_end = rest.find('>').unwrap();
            let tag = &rest[..tag_end];
            if let Some(_name) = tag.strip_prefix('/') {
                depth -= 1;
            } else {
                if depth == 0 {
                    out.push(
                        tag.split(' ')
                            .next()
                            .unwrap()
                            .trim_end_matches('/')
                            .to_owned(),
                    );
                }
                if !tag.ends_with('/') {
                    depth += 1;
                }
            }
            rest = &rest[tag_end + 1..];
        }
        out
    }

    fn in_schema_order(parent: &str, found: &[String]) -> bool {
        let order = ELEMENT_ORDER
            .iter()
            .find(|(p, _)| *p == parent)
            .map(|(_, o)| *o)
            .unwrap();
        let positions: Vec<usize> = found
            .iter()
            .map(|c| order.iter().position(|o| o == c).unwrap())
            .collect();
        positions.windows(2).all(|w| w[0] <= w[1])
    }

    #[test]
    fn a_report_is_in_schema_order_and_escaped() {
        let xml = report_xml(&incident(), &[upload_sighting()], &config()).unwrap();
        for parent in [
            "report",
            "incidentSummary",
            "reporter",
            "personOrUserReported",
        ] {
            let found = children(&xml, parent);
            assert!(
                in_schema_order(parent, &found),
                "{parent}: {found:?}\n{xml}"
            );
        }
        assert_eq!(
            children(&xml, "report"),
            [
                "incidentSummary",
                "internetDetails",
                "reporter",
                "personOrUserReported",
                "additionalInfo"
            ]
        );
        assert!(xml.contains("<url>https://example.com/a.jpg?x=&lt;1&gt;</url>"));
        assert!(xml.contains("<lastName>Trust &amp; Safety</lastName>"));
        assert!(xml.contains("<ipAddress>203.0.113.7</ipAddress>"));
        assert!(xml.contains("<legalURL>https://example.com/legal</legalURL>"));
    }

    #[test]
    fn responses_only_have_no_person_reported() {
        let mut s = upload_sighting();
        s.direction = "response".into();
        let xml = report_xml(&incident(), &[s], &config()).unwrap();
        assert!(!xml.contains("personOrUserReported"));
    }

    #[test]
    fn missing_or_bad_fields_are_refused() {
        let mut c = config();
        c.reporter.email = "nobody".into();
        assert!(report_xml(&incident(), &[], &c).is_err());
        let mut c = config();
        c.environment = "prod".into();
        assert!(matches!(
            report_xml(&incident(), &[], &c),
            Err(ReportError::Invalid {
                field: "environment",
                ..
            })
        ));
        let mut i = incident();
        i.urls.clear();
        assert_eq!(
            report_xml(&i, &[], &config()),
            Err(ReportError::Missing("incident url"))
        );
        let mut i = incident();
        i.first_seen = "yesterday".into();
        assert!(report_xml(&i, &[], &config()).is_err());
        let mut c = config();
        c.reporter.first_name = "A\u{1}".into();
        assert!(report_xml(&incident(), &[], &c).is_err());
    }

    #[test]
    fn file_details_are_in_schema_order() {
        let sha = "ab".repeat(32);
        let xml = file_details_xml(&FileDetails {
            report_id: "42",
            file_id: "f1",
            original_file_name: Some("a.jpg"),
            location_of_file: Some("https://example.com/a.jpg"),
            viewed_by_esp: false,
            publicly_available: true,
            sha256: &sha,
            upload: Some(("203.0.113.7", "2026-01-02T03:04:06.000Z")),
        })
        .unwrap();
        let found = children(&xml, "fileDetails");
        assert!(in_schema_order("fileDetails", &found), "{found:?}");
        assert!(xml.contains("<fileViewedByEsp>false</fileViewedByEsp>"));
        assert!(xml.contains(&format!(
            "<originalFileHash hashType=\"SHA256\">{sha}</originalFileHash>"
        )));
    }

    #[test]
    fn the_environment_switch_picks_the_url() {
        let mut c = config();
        assert_eq!(c.api_url().unwrap(), TEST_URL);
        c.environment = "production".into();
        assert_eq!(c.api_url().unwrap(), PRODUCTION_URL);
        c.base_url = Some("http://127.0.0.1:9/ispws/".into());
        assert_eq!(c.api_url().unwrap(), "http://127.0.0.1:9/ispws");
    }
}
