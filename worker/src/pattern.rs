//! Route patterns in Cloudflare's route syntax, and which one is most
//! specific.
//!
//! The operator attaches the worker to routes in `wrangler.toml`; the policy
//! then says, per pattern, what the worker does. Patterns are written the
//! same way as Cloudflare routes so that one can be copied into the other:
//! `host/path`, no scheme, no port, no query, with `*` as a wildcard
//! (`*.example.com/images/*`, `example.com/avatar.png`, and `*/*` for every
//! host and path). Cloudflare only allows `*` at the start of the host and
//! the end of the path; we accept it anywhere, which is a superset.
//!
//! A pattern matches the request's host (case-insensitive, port ignored) and
//! path (case-sensitive, query ignored), as [`crate::canonical`] reads them
//! from the request: decoded, dot segments resolved, read every way an
//! origin may read it. Write patterns decoded (`/café/*`, not
//! `/caf%C3%A9/*`). When several match, the most
//! specific wins, as on Cloudflare: first by host (a host with more literal
//! characters, then one without a wildcard), then by path in the same way.
//! `www.example.com/*` beats `*.example.com/*`, and `example.com/hello/*`
//! beats `example.com/*`. Ties go to the route listed first.

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

/// Why a pattern was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PatternError {
    #[error("pattern is empty")]
    Empty,
    #[error(
        "pattern {0:?} has a scheme; route patterns are host/path only (e.g. example.com/images/*)"
    )]
    Scheme(String),
    #[error("pattern {0:?} has no '/' between host and path (use `*/*` for every host and path, `example.com/*` for a whole site)")]
    NoPath(String),
    #[error("pattern {0:?} has an empty host (use `*` for any host)")]
    EmptyHost(String),
    #[error("pattern {0:?} has a port; Cloudflare routes match any port")]
    Port(String),
    #[error("pattern {pattern:?}: host may only contain letters, digits, '-', '.' and '*', found {found:?}")]
    BadHostChar { pattern: String, found: char },
    #[error("pattern {pattern:?}: path may not contain {found:?} (routes ignore the query string and fragment)")]
    BadPathChar { pattern: String, found: char },
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    text: String,
    host: String,
    path: String,
}

/// How specific a pattern is; larger is more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    host_literal: usize,
    host_exact: bool,
    path_literal: usize,
    path_exact: bool,
}

impl RoutePattern {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(PatternError::Empty);
        }
        if trimmed.contains("://") {
            return Err(PatternError::Scheme(trimmed.to_owned()));
        }
        let Some(slash) = trimmed.find('/') else {
            return Err(PatternError::NoPath(trimmed.to_owned()));
        };
        let (host, path) = trimmed.split_at(slash);
        if host.is_empty() {
            return Err(PatternError::EmptyHost(trimmed.to_owned()));
        }
        if host.contains(':') {
            return Err(PatternError::Port(trimmed.to_owned()));
        }
        if let Some(found) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')))
        {
            return Err(PatternError::BadHostChar {
                pattern: trimmed.to_owned(),
                found,
            });
        }
        if let Some(found) = path
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace())
        {
            return Err(PatternError::BadPathChar {
                pattern: trimmed.to_owned(),
                found,
            });
        }
        Ok(RoutePattern {
            text: trimmed.to_owned(),
            host: host.to_ascii_lowercase(),
            path: path.to_owned(),
        })
    }

    /// The pattern as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a request for `host` (any case, port allowed) and `path`
    /// (without the query) is on this route.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        let host = crate::address::without_port(host);
        let host = host.to_ascii_lowercase();
        let path = if path.is_empty() { "/" } else { path };
        glob(self.host.as_bytes(), host.as_bytes()) && glob(self.path.as_bytes(), path.as_bytes())
    }

    /// Whether a request for `host` (lowercase, no port) and `path` (bytes,
    /// as [`crate::canonical`] reads them) is on this route; `fold_case`
    /// compares the path ignoring ASCII case.
    pub fn matches_bytes(&self, host: &str, path: &[u8], fold_case: bool) -> bool {
        if !glob(self.host.as_bytes(), host.as_bytes()) {
            return false;
        }
        if fold_case {
            let pattern = self.path.to_ascii_lowercase();
            glob(pattern.as_bytes(), &path.to_ascii_lowercase())
        } else {
            glob(self.path.as_bytes(), path)
        }
    }

    /// See the module docs.
    pub fn specificity(&self) -> Specificity {
        let literal = |s: &str| s.chars().filter(|&c| c != '*').count();
        Specificity {
            host_literal: literal(&self.host),
            host_exact: !self.host.contains('*'),
            path_literal: literal(&self.path),
            path_exact: !self.path.contains('*'),
        }
    }

    /// Orders by specificity (more specific first).
    pub fn cmp_specificity(&self, other: &Self) -> Ordering {
        other.specificity().cmp(&self.specificity())
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `*` matches any run of bytes (including none and `/`); everything else
/// matches itself. Backtracks only to the last star, so the cost is at
/// worst pattern length x text length, never exponential.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> RoutePattern {
        RoutePattern::parse(text).expect(text)
    }

    #[test]
    fn matches_hosts_and_paths() {
        assert!(p("*/*").matches("anything.example", "/a/b.jpg"));
        assert!(p("*/*").matches("localhost:8787", "/"));
        assert!(p("example.com/images/*").matches("example.com", "/images/a.jpg"));
        assert!(p("example.com/images/*").matches("EXAMPLE.com:443", "/images/"));
        assert!(!p("example.com/images/*").matches("example.com", "/images"));
        assert!(!p("example.com/images/*").matches("example.com", "/Images/a.jpg"));
        assert!(!p("example.com/images/*").matches("www.example.com", "/images/a.jpg"));
        assert!(p("*.example.com/*").matches("www.example.com", "/x"));
        assert!(!p("*.example.com/*").matches("example.com", "/x"));
        assert!(p("*example.com/*").matches("example.com", "/x"));
        assert!(p("example.com/a.png").matches("example.com", "/a.png"));
        assert!(!p("example.com/a.png").matches("example.com", "/a.png.html"));
        assert!(p("example.com/*/thumbs/*").matches("example.com", "/u/1/thumbs/x.jpg"));
        assert!(p("example.com/*").matches("example.com", ""));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert_eq!(RoutePattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(
            RoutePattern::parse("*"),
            Err(PatternError::NoPath(_))
        ));
        assert!(matches!(
            RoutePattern::parse("example.com"),
            Err(PatternError::NoPath(_))
        ));
        assert!(matches!(
            RoutePattern::parse("https://example.com/*"),
            Err(PatternError::Scheme(_))
        ));
        assert!(matches!(
            RoutePattern::parse("/images/*"),
            Err(PatternError::EmptyHost(_))
        ));
        assert!(matches!(
            RoutePattern::parse("example.com:8080/*"),
            Err(PatternError::Port(_))
        ));
        assert!(matches!(
            RoutePattern::parse("exa_mple.com/*"),
            Err(PatternError::BadHostChar { found: '_', .. })
        ));
        assert!(matches!(
            RoutePattern::parse("example.com/*?a=b"),
            Err(PatternError::BadPathChar { found: '?', .. })
        ));
    }

    #[test]
    fn most_specific_first() {
        let mut routes = [
            p("*/*"),
            p("*.example.com/*"),
            p("www.example.com/*"),
            p("www.example.com/hello/*"),
        ];
        routes.sort_by(|a, b| a.cmp_specificity(b));
        let order: Vec<&str> = routes.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            order,
            [
                "www.example.com/hello/*",
                "www.example.com/*",
                "*.example.com/*",
                "*/*"
            ]
        );
        // An exact path beats a wildcard of the same literal length.
        assert_eq!(p("a.com/x").cmp_specificity(&p("a.com/x*")), Ordering::Less);
    }

    #[test]
    fn glob_stays_fast_on_pathological_input() {
        let pattern = "*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(10_000);
        assert!(!glob(pattern.as_bytes(), text.as_bytes()));
    }
}
