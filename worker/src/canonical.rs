//! The request's host and path as an origin reads them, for route matching.
//!
//! A route scoped to `example.com/photos/*` must see `GET /%70hotos/x.jpg`,
//! `/photos//x.jpg`, `/a/%2e%2e/photos/x.jpg` and `/photos;v=1/x.jpg` as the
//! `/photos/x.jpg` that an origin serves for them; otherwise the route is
//! skipped by a spelling. This module is the one place that turns a request
//! URL into what routes are matched against ([`RequestTarget`]); the
//! intercept's route phase and nothing else matches routes, through
//! [`RequestTarget::route`].
//!
//! Host: the URL parser's host (lowercase, IDNA to punycode, IPv4 in any
//! notation to dotted decimal, percent-escapes decoded), without a port and
//! without trailing dots (`Example.COM.:443` is `example.com`).
//!
//! Path: the URL parser has already turned `\` into `/` and removed literal
//! and `%2e` dot segments. Then every percent-escape is decoded (escapes of
//! unreserved characters are how `/%70hotos/` hides `/photos/`; origins
//! decode the others too before they look up a file or a route), repeated
//! slashes are merged and dot segments are resolved again. Three escapes
//! stay escaped (upper case) because origins disagree on them: `%2F` and
//! `%5C` (a path separator for some origins, a character of a file name
//! for others) and `%25` (decoded once more by origins that decode twice).
//! Those are read both ways: the *strict* view keeps them, the *loose* view
//! decodes them (repeatedly, so `%252F` is `/` too, and IIS's `%uXXXX`)
//! and re-resolves the result. Each view also exists without
//! `;parameters` on its segments (Java servlet containers serve
//! `/photos;jsessionid=1/x.jpg` as `/photos/x.jpg`) and without trailing
//! dots and spaces on them (Windows: `/photos./x.jpg`), and is also matched
//! ignoring case (Windows and macOS origins serve `/PHOTOS/x.jpg` from
//! `/photos/x.jpg`).
//!
//! Every view picks its most specific route; when they pick different
//! routes, the most protective one wins ([`protection`]): a path one origin
//! may read as `/photos/x.jpg` is scanned as if it were. Views only ever add
//! routes to consider, so a request spelled plainly is routed exactly as
//! before.

use std::cmp::Reverse;

use crate::address::host_and_path;
use crate::policy::{Action, FailMode, Policy, Route};
use hashgate::index::ListFilter;
use hashgate::QuerySet;

/// A request's host and the ways its path may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// Lowercase, no port, no trailing dot.
    pub host: String,
    /// Distinct readings of the path, the strict one first.
    pub paths: Vec<PathView>,
}

/// One reading of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathView {
    /// Starts with `/`; may hold bytes that are not UTF-8 (decoded escapes).
    pub path: Vec<u8>,
    /// Match ignoring ASCII case.
    pub fold_case: bool,
}

impl RequestTarget {
    /// Reads an absolute request URL.
    pub fn parse(url: &str) -> Self {
        let (host, raw_path) = match url::Url::parse(url) {
            Ok(parsed) => (
                parsed.host_str().unwrap_or_default().to_owned(),
                parsed.path().to_owned(),
            ),
            // The runtime hands us parsed URLs; keep going on the raw text.
            Err(_) => {
                let (host, path) = host_and_path(url);
                (
                    crate::address::without_port(host).to_ascii_lowercase(),
                    path.to_owned(),
                )
            }
        };
        let host = host.trim_end_matches('.').to_owned();
        let strict = decode(raw_path.as_bytes(), false);
        let loose = decode(raw_path.as_bytes(), true);
        let mut paths: Vec<PathView> = Vec::new();
        for base in [strict, loose] {
            for params in [false, true] {
                let mut path = base.clone();
                if params {
                    path = strip_params(&path);
                }
                let path = resolve(&path);
                for fold_case in [false, true] {
                    let view = PathView {
                        path: path.clone(),
                        fold_case,
                    };
                    if !paths.contains(&view) {
                        paths.push(view);
                    }
                }
            }
        }
        RequestTarget { host, paths }
    }

    /// The route for this request: each view's most specific route, and
    /// of those the most protective (see the module docs). `None`: no
    /// route matches any view.
    pub fn route<'a>(&self, policy: &'a Policy) -> Option<&'a Route> {
        let mut found: Vec<(usize, &Route)> = Vec::new();
        for view in &self.paths {
            let hit = policy.routes().iter().enumerate().find(|(_, r)| {
                r.pattern
                    .matches_bytes(&self.host, &view.path, view.fold_case)
            });
            if let Some((index, route)) = hit {
                if !found.iter().any(|(i, _)| *i == index) {
                    found.push((index, route));
                }
            }
        }
        // Stable: equally protective routes keep the strict view's first.
        found.sort_by_key(|(_, route)| Reverse(protection(route)));
        found.first().map(|(_, route)| *route)
    }
}

/// How much a route protects, for choosing between the routes different
/// readings of one path fall on: enabled first, then what it scans, then
/// blocking over flagging, failing closed over open, every list over named
/// ones, the larger threshold, all query variants.
pub fn protection(route: &Route) -> (bool, u8, bool, bool, bool, u32, u8) {
    (
        route.enabled,
        u8::from(route.scan_responses) + u8::from(route.scan_uploads),
        route.action == Action::Block,
        route.fail == FailMode::Closed,
        matches!(route.lists, ListFilter::All),
        route.pdq_threshold,
        match route.variants {
            QuerySet::Own => 0,
            QuerySet::Dihedral => 1,
            QuerySet::All => 2,
        },
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Bytes that stay escaped in the strict view.
fn ambiguous(b: u8) -> bool {
    matches!(b, b'/' | b'\\' | b'%')
}

/// One pass of percent-decoding. `loose`: the ambiguous bytes are decoded
/// too. Escapes kept are written in upper case; `\` becomes `/`.
fn decode_once(path: &[u8], loose: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        // IIS also reads `%uXXXX` (a UTF-16 unit): the loose view does too.
        if loose && b == b'%' && i + 5 < path.len() && matches!(path[i + 1], b'u' | b'U') {
            let unit = path[i + 2..i + 6].iter().try_fold(0u32, |acc, &d| {
                hex_value(d).map(|v| acc * 16 + u32::from(v))
            });
            if let Some(c) = unit.and_then(char::from_u32) {
                let mut utf8 = [0u8; 4];
                let c = if c == '\\' { '/' } else { c };
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                i += 6;
                continue;
            }
        }
        if b == b'%' && i + 2 < path.len() {
            if let (Some(h), Some(l)) = (hex_value(path[i + 1]), hex_value(path[i + 2])) {
                let byte = h * 16 + l;
                if loose || !ambiguous(byte) {
                    out.push(if byte == b'\\' { b'/' } else { byte });
                } else {
                    out.extend_from_slice(format!("%{byte:02X}").as_bytes());
                }
                i += 3;
                continue;
            }
        }
        out.push(if b == b'\\' { b'/' } else { b });
        i += 1;
    }
    out
}

/// Decodes a path: once (strict), or until nothing changes, at most four
/// passes (loose: origins that decode twice).
fn decode(path: &[u8], loose: bool) -> Vec<u8> {
    let mut current = decode_once(path, loose);
    if loose {
        for _ in 0..3 {
            let next = decode_once(&current, true);
            if next == current {
                break;
            }
            current = next;
        }
    }
    current
}

/// Drops `;parameters` from every segment (servlet containers), and the
/// trailing dots and spaces Windows drops from file names
/// (`/photos./x.jpg`), leaving `.` and `..` as they are.
fn strip_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let end = segment
            .iter()
            .position(|&b| b == b';')
            .unwrap_or(segment.len());
        let mut segment = &segment[..end];
        if segment != b"." && segment != b".." {
            while let [rest @ .., b'.' | b' '] = segment {
                segment = rest;
            }
        }
        out.extend_from_slice(segment);
    }
    out
}

/// Merges repeated slashes and resolves `.` and `..` segments; the result
/// starts with `/`, and keeps a trailing `/` (`/a/b/..` is `/a/`).
fn resolve(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split(|&b| b == b'/') {
        trailing_slash = false;
        match segment {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(url: &str) -> Vec<String> {
        RequestTarget::parse(url)
            .paths
            .into_iter()
            .filter(|v| !v.fold_case)
            .map(|v| String::from_utf8_lossy(&v.path).into_owned())
            .collect()
    }

    fn strict(url: &str) -> String {
        views(url).swap_remove(0)
    }

    #[test]
    fn unreserved_escapes_and_case() {
        assert_eq!(strict("http://a.test/%70hotos/x.jpg"), "/photos/x.jpg");
        assert_eq!(
            strict("http://a.test/%70%68%6F%74%6f%73/x.jpg"),
            "/photos/x.jpg"
        );
        assert_eq!(
            strict("http://a.test/photos/%7Ex%2D1.jpg"),
            "/photos/~x-1.jpg"
        );
        // Other characters an origin decodes before looking up the file.
        assert_eq!(strict("http://a.test/caf%C3%A9/x"), "/café/x");
        assert_eq!(strict("http://a.test/caf%c3%a9/x"), "/café/x");
        assert_eq!(strict("http://a.test/a%20b"), "/a b");
        // Not escapes: kept as they are.
        assert_eq!(strict("http://a.test/100%zz/x"), "/100%zz/x");
        assert_eq!(strict("http://a.test/x%"), "/x%");
        assert_eq!(strict("http://a.test/x%4"), "/x%4");
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(strict("http://a.test/a/../photos/x.jpg"), "/photos/x.jpg");
        assert_eq!(
            strict("http://a.test/a/%2e%2e/photos/x.jpg"),
            "/photos/x.jpg"
        );
        assert_eq!(
            strict("http://a.test/a/.%2E/photos/./x.jpg"),
            "/photos/x.jpg"
        );
        assert_eq!(strict("http://a.test//photos///x.jpg"), "/photos/x.jpg");
        assert_eq!(strict("http://a.test/photos/x/.."), "/photos/");
        assert_eq!(strict("http://a.test/../../x"), "/x");
        assert_eq!(strict("http://a.test"), "/");
        // Escaped dots that only become a segment after decoding.
        assert_eq!(strict("http://a.test/a/%252e%252e/x"), "/a/%252e%252e/x");
        // The URL parser turns a literal backslash into a slash.
        assert_eq!(strict("http://a.test/photos\\x.jpg"), "/photos/x.jpg");
    }

    #[test]
    fn ambiguous_separators_are_read_both_ways() {
        assert_eq!(
            views("http://a.test/photos%2fx.jpg"),
            ["/photos%2Fx.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/photos%5Cx.jpg"),
            ["/photos%5Cx.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/x/..%2fphotos/y.jpg"),
            ["/x/..%2Fphotos/y.jpg", "/photos/y.jpg"]
        );
        // Decoded twice by some origins.
        assert_eq!(
            views("http://a.test/photos%252fx.jpg"),
            ["/photos%252fx.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/%2570hotos/x"),
            ["/%2570hotos/x", "/photos/x"]
        );
    }

    #[test]
    fn windows_spellings() {
        assert_eq!(
            views("http://a.test/%u0070hotos/x.jpg"),
            ["/%u0070hotos/x.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/photos%u005cx.jpg"),
            ["/photos%u005cx.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/photos./x.jpg"),
            ["/photos./x.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/photos%20%20/x.jpg"),
            ["/photos  /x.jpg", "/photos/x.jpg"]
        );
    }

    #[test]
    fn path_parameters() {
        assert_eq!(
            views("http://a.test/photos;v=1/x.jpg"),
            ["/photos;v=1/x.jpg", "/photos/x.jpg"]
        );
        assert_eq!(
            views("http://a.test/x/..;/photos/y.jpg"),
            ["/x/..;/photos/y.jpg", "/photos/y.jpg"]
        );
    }

    #[test]
    fn hosts() {
        let host = |url: &str| RequestTarget::parse(url).host;
        assert_eq!(host("http://Example.COM./x"), "example.com");
        assert_eq!(host("http://example.com:8443/x"), "example.com");
        assert_eq!(host("http://EXAMPLE.com.:80/x"), "example.com");
        assert_eq!(host("http://ex%61mple.com/x"), "example.com");
        assert_eq!(host("http://0x7f.1/x"), "127.0.0.1");
        assert_eq!(host("http://[::1]:8787/x"), "[::1]");
        assert_eq!(host("http://bücher.example/x"), "xn--bcher-kva.example");
    }

    fn policy(routes: &str) -> Policy {
        Policy::parse(&format!("{{\"routes\": [{routes}]}}")).unwrap()
    }

    fn routed(policy: &Policy, url: &str) -> Option<String> {
        RequestTarget::parse(url)
            .route(policy)
            .map(|r| r.pattern.as_str().to_owned())
    }

    #[test]
    fn encoded_spellings_reach_the_route() {
        let p = policy(r#"{"pattern": "example.com/photos/*", "action": "block", "lists": ["*"]}"#);
        for url in [
            "http://example.com/photos/x.jpg",
            "http://example.com/%70hotos/x.jpg",
            "http://example.com/%70%68%6f%74%6f%73/x.jpg",
            "http://example.com/photos%2fx.jpg",
            "http://example.com/photos%2Fx.jpg",
            "http://example.com/photos%5cx.jpg",
            "http://example.com//photos/x.jpg",
            "http://example.com/a/../photos/x.jpg",
            "http://example.com/a/%2e%2e/photos/x.jpg",
            "http://example.com/a/..%2fphotos/x.jpg",
            "http://example.com/photos;x=1/y.jpg",
            "http://example.com/PHOTOS/x.jpg",
            "http://example.com/Ph%4Ftos/x.jpg",
            "http://EXAMPLE.com./photos/x.jpg",
            "http://example.com:8080/photos/x.jpg",
            "http://example.com/photos%252fx.jpg",
            "http://example.com/%u0070hotos/x.jpg",
            "http://example.com/photos.%20/x.jpg",
        ] {
            assert_eq!(
                routed(&p, url).as_deref(),
                Some("example.com/photos/*"),
                "{url}"
            );
        }
        assert_eq!(routed(&p, "http://example.com/photo/x.jpg"), None);
        assert_eq!(routed(&p, "http://example.com/photos"), None);
    }

    #[test]
    fn the_most_protective_reading_wins() {
        // A disabled hole for /photos%2F... read literally, an enabled route
        // for what an origin that splits on %2F serves.
        let p = policy(
            r#"{"pattern": "example.com/*", "enabled": false, "action": "block", "lists": ["*"]},
               {"pattern": "example.com/photos/*", "action": "flag", "lists": ["*"]},
               {"pattern": "example.com/photos/public/*", "action": "flag", "lists": ["*"], "enabled": false}"#,
        );
        assert_eq!(
            routed(&p, "http://example.com/photos%2fx.jpg").as_deref(),
            Some("example.com/photos/*")
        );
        // A plainly spelled request still finds its own (disabled) route.
        assert_eq!(
            routed(&p, "http://example.com/photos/public/x.jpg").as_deref(),
            Some("example.com/photos/public/*")
        );
        assert_eq!(
            routed(&p, "http://example.com/other").as_deref(),
            Some("example.com/*")
        );
        // Read one way it is public, the other way it is scanned: scanned.
        assert_eq!(
            routed(&p, "http://example.com/photos/public%2f..%2fx.jpg").as_deref(),
            Some("example.com/photos/*")
        );
    }

    #[test]
    fn protection_order() {
        let p = policy(
            r#"{"pattern": "a.com/1", "action": "flag", "lists": ["x"]},
               {"pattern": "a.com/2", "action": "block", "lists": ["x"]},
               {"pattern": "a.com/3", "action": "block", "lists": ["x"], "fail": "closed"},
               {"pattern": "a.com/4", "action": "block", "lists": ["x"], "enabled": false}"#,
        );
        let get = |path: &str| {
            p.routes()
                .iter()
                .find(|r| r.pattern.as_str() == path)
                .unwrap()
        };
        assert!(protection(get("a.com/2")) > protection(get("a.com/1")));
        assert!(protection(get("a.com/3")) > protection(get("a.com/2")));
        assert!(protection(get("a.com/1")) > protection(get("a.com/4")));
    }
}
