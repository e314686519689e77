//! URLs and hosts, read one way everywhere in the worker: route matching,
//! the origin a request goes to, the loopback guard, the `Link` of a 451,
//! and the check of the URLs an operator configures.
//!
//! The pieces of a URL the worker routes on are taken from the text as
//! received (the runtime hands over WHATWG-serialised URLs); what a host
//! *is* (a domain, an IPv4 or IPv6 address, loopback or not) is decided by
//! the `url` crate's host parser, so that `127.1`, `0x7f.0.0.1` and
//! `[::1]` are the loopback addresses a browser would take them for.

use url::Host;

/// Host (with port, if any) and path of an absolute URL, without user
/// info, query or fragment; `/` for an empty path.
pub fn host_and_path(url: &str) -> (&str, &str) {
    let rest = after_scheme(url);
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path
        .split(['?', '#'])
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    (host, path)
}

/// Path and query of an absolute URL (no fragment); `/` when there is none.
pub fn path_and_query(url: &str) -> &str {
    let rest = after_scheme(url);
    let from_path = rest.find('/').map_or("/", |i| &rest[i..]);
    from_path.split('#').next().unwrap_or("/")
}

/// `scheme://host[:port]` of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    let start = url.len() - after_scheme(url).len();
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// The host without a `:port` (`[v6]:port` keeps its brackets).
pub fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether a host (with or without port) names this machine: `localhost`
/// and its subdomains, 127.0.0.0/8 in any spelling, `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    match Host::parse(without_port(host)) {
        Ok(Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Ok(Host::Ipv4(ip)) => ip.is_loopback(),
        Ok(Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Whether `url`'s host is a loopback host.
pub fn is_loopback(url: &str) -> bool {
    is_loopback_host(host_and_path(url).0)
}

/// Checks an absolute URL an operator configures. With
/// `https_unless_loopback`, plain `http` is allowed only to this machine
/// (local development and tests).
pub fn check_configured_url(url: &str, https_unless_loopback: bool) -> Result<(), String> {
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} contains whitespace"));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| format!("{url:?} is not an absolute URL: {e}"))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("{url:?} has no host"));
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if !https_unless_loopback => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "{url:?} must use https:// (plain http is only allowed to loopback hosts: 127.0.0.1, localhost, [::1])"
        )),
        other => Err(format!("{url:?} has scheme {other:?}; expected https")),
    }
}

fn after_scheme(url: &str) -> &str {
    url.find("://").map_or(url, |i| &url[i + 3..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_path_of_urls() {
        assert_eq!(host_and_path("https://a.com/x/y?q=1"), ("a.com", "/x/y"));
        assert_eq!(
            host_and_path("http://127.0.0.1:8787"),
            ("127.0.0.1:8787", "/")
        );
        assert_eq!(host_and_path("http://u:p@h.test/p#f"), ("h.test", "/p"));
        assert_eq!(host_and_path("http://h.test?x"), ("h.test", "/"));
    }

    #[test]
    fn ports_are_stripped_but_not_from_names() {
        assert_eq!(without_port("[::1]:8787"), "[::1]");
        assert_eq!(without_port("127.0.0.1:8787"), "127.0.0.1");
        assert_eq!(without_port("example.com"), "example.com");
    }

    #[test]
    fn path_query_and_origin() {
        assert_eq!(path_and_query("https://a.com/x?y=1#f"), "/x?y=1");
        assert_eq!(path_and_query("https://a.com"), "/");
        assert_eq!(origin_of("https://a.com:8443/x?y"), "https://a.com:8443");
        assert_eq!(origin_of("https://a.com?y"), "https://a.com");
    }

    #[test]
    fn loopback_hosts_in_every_spelling() {
        for url in [
            "http://127.0.0.1:8787/x",
            "http://localhost/",
            "http://[::1]:8080/",
            "http://LOCALHOST:1",
            "http://app.localhost/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://127.255.255.254/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://example.com/127.0.0.1",
            "https://127.example.com/",
            "https://localhost.example.com/",
            "http://128.0.0.1/",
            "http://[::2]/",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn configured_urls_use_tls_except_to_loopback() {
        assert!(check_configured_url("https://hooks.example/x", true).is_ok());
        assert!(check_configured_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_configured_url("http://127.1:9/x", true).is_ok());
        assert!(check_configured_url("http://[::1]/x", true).is_ok());
        assert!(check_configured_url("http://hooks.example/x", true).is_err());
        assert!(check_configured_url("http://hooks.example/x", false).is_ok());
        assert!(check_configured_url("ftp://hooks.example/x", true).is_err());
        assert!(check_configured_url("hooks.example/x", true).is_err());
        assert!(check_configured_url("https://hooks.example/ x", true).is_err());
        assert!(check_configured_url("https://", true).is_err());
    }
}
