//! The console's part of the policy (`"console": {...}`), validated like
//! the rest of it ([`crate::policy`]): unknown fields refused, every
//! problem named.
//!
//! ```json
//! "console": {
//!   "path": "/_hashgate/console/",
//!   "host": "ops.example.com",
//!   "access": {"team_domain": "example.cloudflareaccess.com", "aud": "4714c1358e65..."},
//!   "dev_login": false,
//!   "roles": {"admin": ["lead@example.com"],
//!             "reviewer": ["group:trust-and-safety", "*@example.com"],
//!             "viewer": ["*"]},
//!   "health": {"distinct_images": 10}
//! }
//! ```
//!
//! * `path` (default `/_hashgate/console/`): where the console answers; it
//!   must start and end with `/` and never reaches the origin or a scan.
//! * `host` (optional): answer only on this hostname (e.g. a hostname of
//!   its own behind its own Access application); without it, every host
//!   the worker serves has the console at `path`.
//! * `access`: Cloudflare Access. `team_domain` gives the issuer
//!   (`https://<team_domain>`) and the keys
//!   (`https://<team_domain>/cdn-cgi/access/certs`, or `certs_url`, which
//!   may be `http://` only to a loopback address, for tests); `aud` is the
//!   Access application's audience tag.
//! * `dev_login` (default `false`): also accept the development token (the
//!   secret `CONSOLE_DEV_TOKEN`) on a sign-in page. Only for local runs:
//!   it needs both this and the secret, so a production policy that does
//!   not say so never has it.
//! * `roles`: who is what. Each pattern is an email (`a@example.com`, any
//!   case), every address of a domain (`*@example.com`), an Access group
//!   (`group:<name>`, from the token's `groups` claim) or `*` (anyone
//!   signed in). The highest role a person matches wins; no match, no
//!   access.
//! * `health.distinct_images` (default 10, 2..=100000): a list entry that
//!   matched at least this many distinct images is shown on the list
//!   health page.

use serde::Deserialize;
use thiserror::Error;

/// Default `path`.
pub const DEFAULT_PATH: &str = "/_hashgate/console/";
/// Default `health.distinct_images`.
pub const DEFAULT_DISTINCT_IMAGES: usize = 10;
const MAX_PATTERNS: usize = 1000;

/// A role, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees everything the console shows.
    Viewer,
    /// Also confirms, marks false positives, adds notes, reveals images.
    Reviewer,
    /// Also releases URLs.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

/// Cloudflare Access settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// `https://<team_domain>`: the tokens' `iss`.
    pub issuer: String,
    /// Where the signing keys (JWKS) are.
    pub certs_url: String,
    /// The application's audience tag (`aud`).
    pub aud: String,
}

/// The validated console settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub path: String,
    pub host: Option<String>,
    pub access: Option<AccessSettings>,
    pub dev_login: bool,
    /// (role, pattern), highest role first.
    pub roles: Vec<(Role, String)>,
    pub distinct_images: usize,
}

/// What is wrong with the console settings.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConsoleConfigError {
    #[error("console.path {0:?} must start and end with \"/\", be at least 3 characters and hold only letters, digits and -_./")]
    Path(String),
    #[error("console.host {0:?} is not a hostname")]
    Host(String),
    #[error(
        "console.access.team_domain {0:?} is not a hostname (e.g. example.cloudflareaccess.com)"
    )]
    TeamDomain(String),
    #[error("console.access.aud is empty: give the Access application's audience tag")]
    Aud,
    #[error("console.access.certs_url: {0}")]
    CertsUrl(String),
    #[error("console: neither access nor dev_login is set, so nobody could sign in")]
    NoSignIn,
    #[error(
        "console.roles.{role}: pattern {pattern:?} is not an email, *@domain, group:<name> or *"
    )]
    RolePattern { role: &'static str, pattern: String },
    #[error("console.roles: no pattern in any role, so nobody would have access")]
    NoRoles,
    #[error("console.roles: more than {MAX_PATTERNS} patterns")]
    TooManyPatterns,
    #[error("console.health.distinct_images {0} is out of range 2..=100000")]
    DistinctImages(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsoleDoc {
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    access: Option<AccessDoc>,
    #[serde(default)]
    dev_login: bool,
    #[serde(default)]
    roles: RolesDoc,
    #[serde(default)]
    health: Option<HealthDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessDoc {
    team_domain: String,
    aud: String,
    #[serde(default)]
    certs_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RolesDoc {
    #[serde(default)]
    admin: Vec<String>,
    #[serde(default)]
    reviewer: Vec<String>,
    #[serde(default)]
    viewer: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthDoc {
    distinct_images: usize,
}

fn default_path() -> String {
    DEFAULT_PATH.to_owned()
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(group) = pattern.strip_prefix("group:") {
        return !group.is_empty() && !group.chars().any(char::is_control);
    }
    let Some((local, domain)) = pattern.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.chars().any(|c| c.is_whitespace() || c.is_control())
        && is_hostname(domain)
        && (local == "*" || !local.contains('*'))
}

impl ConsoleDoc {
    pub(crate) fn validate(
        self,
        check_url: impl Fn(&str) -> Result<(), String>,
    ) -> Result<ConsoleSettings, ConsoleConfigError> {
        let path_ok = self.path.len() >= 3
            && self.path.starts_with('/')
            && self.path.ends_with('/')
            && !self.path.contains("//")
            && !self.path.contains("/../")
            && !self.path.contains("/./")
            && self
                .path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !path_ok {
            return Err(ConsoleConfigError::Path(self.path));
        }
        if let Some(host) = &self.host {
            if !is_hostname(host) {
                return Err(ConsoleConfigError::Host(host.clone()));
            }
        }
        let access = match self.access {
            None => None,
            Some(a) => {
                if !is_hostname(&a.team_domain) {
                    return Err(ConsoleConfigError::TeamDomain(a.team_domain));
                }
                if a.aud.trim().is_empty() {
                    return Err(ConsoleConfigError::Aud);
                }
                let certs_url = match a.certs_url {
                    Some(url) => {
                        check_url(&url).map_err(ConsoleConfigError::CertsUrl)?;
                        url
                    }
                    None => format!("https://{}/cdn-cgi/access/certs", a.team_domain),
                };
                Some(AccessSettings {
                    issuer: format!("https://{}", a.team_domain),
                    certs_url,
                    aud: a.aud,
                })
            }
        };
        if access.is_none() && !self.dev_login {
            return Err(ConsoleConfigError::NoSignIn);
        }
        let mut roles = Vec::new();
        for (role, patterns) in [
            (Role::Admin, self.roles.admin),
            (Role::Reviewer, self.roles.reviewer),
            (Role::Viewer, self.roles.viewer),
        ] {
            for pattern in patterns {
                if !valid_pattern(&pattern) {
                    return Err(ConsoleConfigError::RolePattern {
                        role: role.name(),
                        pattern,
                    });
                }
                roles.push((role, pattern));
            }
        }
        if roles.is_empty() {
            return Err(ConsoleConfigError::NoRoles);
        }
        if roles.len() > MAX_PATTERNS {
            return Err(ConsoleConfigError::TooManyPatterns);
        }
        let distinct_images = self
            .health
            .map_or(DEFAULT_DISTINCT_IMAGES, |h| h.distinct_images);
        if !(2..=100_000).contains(&distinct_images) {
            return Err(ConsoleConfigError::DistinctImages(distinct_images));
        }
        Ok(ConsoleSettings {
            path: self.path,
            host: self.host.map(|h| h.to_ascii_lowercase()),
            access,
            dev_login: self.dev_login,
            roles,
            distinct_images,
        })
    }
}

impl ConsoleSettings {
    /// Whether a request for `host` and `path` is the console's.
    pub fn claims(&self, host: &str, path: &str) -> bool {
        let host_ok = self
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host));
        let bare = self.path.trim_end_matches('/');
        host_ok && (path == bare || path.starts_with(&self.path))
    }

    /// The highest role of a person with this email and these groups.
    pub fn role_of(&self, email: &str, groups: &[String]) -> Option<Role> {
        let email = email.to_ascii_lowercase();
        self.roles
            .iter()
            .filter(|(_, pattern)| {
                if pattern == "*" {
                    return true;
                }
                if let Some(group) = pattern.strip_prefix("group:") {
                    return groups.iter().any(|g| g == group);
                }
                let pattern = pattern.to_ascii_lowercase();
                match pattern.strip_prefix("*@") {
                    Some(domain) => email.rsplit_once('@').is_some_and(|(_, d)| d == domain),
                    None => email == pattern,
                }
            })
            .map(|(role, _)| *role)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyError};

    fn with(console: &str) -> Result<Policy, PolicyError> {
        Policy::parse(&format!(
            r#"{{"routes": [{{"pattern": "*/*", "action": "block", "lists": ["*"]}}], "console": {console}}}"#
        ))
    }

    fn refused(console: &str) -> ConsoleConfigError {
        match with(console) {
            Err(PolicyError::Console(e)) => e,
            other => panic!("expected a console error, got {other:?}"),
        }
    }

    const DEV: &str = r#""dev_login": true, "roles": {"admin": ["a@example.com"]}"#;

    #[test]
    fn defaults_and_roles() {
        let policy = with(
            r#"{"access": {"team_domain": "t.cloudflareaccess.com", "aud": "tag"},
                "roles": {"admin": ["Lead@Example.com"], "reviewer": ["group:tns", "*@example.com"], "viewer": ["*"]}}"#,
        )
        .unwrap();
        let c = policy.console.as_ref().unwrap();
        assert_eq!(c.path, DEFAULT_PATH);
        assert!(!c.dev_login);
        let access = c.access.as_ref().unwrap();
        assert_eq!(access.issuer, "https://t.cloudflareaccess.com");
        assert_eq!(
            access.certs_url,
            "https://t.cloudflareaccess.com/cdn-cgi/access/certs"
        );
        assert_eq!(c.role_of("lead@example.com", &[]), Some(Role::Admin));
        assert_eq!(c.role_of("x@example.com", &[]), Some(Role::Reviewer));
        assert_eq!(
            c.role_of("x@other.org", &["tns".into()]),
            Some(Role::Reviewer)
        );
        assert_eq!(c.role_of("x@other.org", &[]), Some(Role::Viewer));
        assert_eq!(c.distinct_images, DEFAULT_DISTINCT_IMAGES);
    }

    #[test]
    fn no_match_no_role() {
        let policy = with(&format!("{{{DEV}}}")).unwrap();
        let c = policy.console.unwrap();
        assert_eq!(c.role_of("a@example.com", &[]), Some(Role::Admin));
        assert_eq!(c.role_of("b@example.com", &[]), None);
        assert_eq!(c.role_of("a@example.com.evil", &[]), None);
    }

    #[test]
    fn claims_its_path_and_host_only() {
        let policy = with(&format!(r#"{{"host": "ops.example.com", {DEV}}}"#)).unwrap();
        let c = policy.console.unwrap();
        assert!(c.claims("ops.example.com", "/_hashgate/console/"));
        assert!(c.claims("OPS.example.com", "/_hashgate/console"));
        assert!(c.claims("ops.example.com", "/_hashgate/console/sightings"));
        assert!(!c.claims("www.example.com", "/_hashgate/console/"));
        assert!(!c.claims("ops.example.com", "/_hashgate/consoleX"));
        assert!(!c.claims("ops.example.com", "/images/a.jpg"));
    }

    #[test]
    fn refuses_a_bad_path() {
        for path in ["console/", "/console", "/", "/a b/", "/a/../b/", "//x/"] {
            assert!(
                matches!(
                    refused(&format!(r#"{{"path": "{path}", {DEV}}}"#)),
                    ConsoleConfigError::Path(_)
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn refuses_a_bad_host() {
        assert!(matches!(
            refused(&format!(r#"{{"host": "a b", {DEV}}}"#)),
            ConsoleConfigError::Host(_)
        ));
    }

    #[test]
    fn refuses_a_bad_team_domain() {
        assert!(matches!(
            refused(
                r#"{"access": {"team_domain": "https://x", "aud": "a"}, "roles": {"viewer": ["*"]}}"#
            ),
            ConsoleConfigError::TeamDomain(_)
        ));
    }

    #[test]
    fn refuses_an_empty_aud() {
        assert_eq!(
            refused(
                r#"{"access": {"team_domain": "t.cloudflareaccess.com", "aud": " "}, "roles": {"viewer": ["*"]}}"#
            ),
            ConsoleConfigError::Aud
        );
    }

    #[test]
    fn refuses_a_plain_http_certs_url_off_loopback() {
        assert!(matches!(
            refused(
                r#"{"access": {"team_domain": "t.cloudflareaccess.com", "aud": "a", "certs_url": "http://keys.example.com/"}, "roles": {"viewer": ["*"]}}"#
            ),
            ConsoleConfigError::CertsUrl(_)
        ));
        assert!(with(r#"{"access": {"team_domain": "t.cloudflareaccess.com", "aud": "a", "certs_url": "http://127.0.0.1:9/certs"}, "roles": {"viewer": ["*"]}}"#).is_ok());
    }

    #[test]
    fn refuses_no_way_to_sign_in() {
        assert_eq!(
            refused(r#"{"roles": {"viewer": ["*"]}}"#),
            ConsoleConfigError::NoSignIn
        );
    }

    #[test]
    fn refuses_a_bad_role_pattern() {
        for pattern in [
            "nobody",
            "a@",
            "@example.com",
            "a*@example.com",
            "group:",
            "a @x.com",
        ] {
            assert!(
                matches!(
                    refused(&format!(
                        r#"{{"dev_login": true, "roles": {{"reviewer": ["{pattern}"]}}}}"#
                    )),
                    ConsoleConfigError::RolePattern {
                        role: "reviewer",
                        ..
                    }
                ),
                "{pattern}"
            );
        }
    }

    #[test]
    fn refuses_no_roles() {
        assert_eq!(
            refused(r#"{"dev_login": true}"#),
            ConsoleConfigError::NoRoles
        );
    }

    #[test]
    fn refuses_too_many_patterns() {
        let many = vec!["\"*\""; MAX_PATTERNS + 1].join(",");
        assert_eq!(
            refused(&format!(
                r#"{{"dev_login": true, "roles": {{"viewer": [{many}]}}}}"#
            )),
            ConsoleConfigError::TooManyPatterns
        );
    }

    #[test]
    fn refuses_a_bad_health_threshold() {
        assert_eq!(
            refused(&format!(r#"{{"health": {{"distinct_images": 1}}, {DEV}}}"#)),
            ConsoleConfigError::DistinctImages(1)
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        assert!(matches!(
            with(&format!(r#"{{"dev_token": "x", {DEV}}}"#)),
            Err(PolicyError::Json(_))
        ));
    }
}
