//! Policy parsing (`POLICY` variable or KV document) and route selection.
//!
//! The policy is operator input, but it is read by every isolate at start
//! and after every change through KV; a malformed document must be a
//! `PolicyError` naming the problem, never a panic that takes the worker
//! (and the site's image routes) down.
//!
//! Input: the policy text, optionally followed by a NUL byte and a request
//! URL to select a route for.

#![no_main]

use hashgate_worker::pattern::{host_and_path, RoutePattern};
use hashgate_worker::policy::{Policy, PolicySource};
use hashgate_worker::verdict::hash_options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (doc, url) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"https://example.com/images/cat.jpg"[..]),
    };
    let doc = String::from_utf8_lossy(doc);
    let url = String::from_utf8_lossy(url);

    if let Ok(PolicySource::Kv(key)) = PolicySource::from_var(&doc) {
        assert!(!key.is_empty());
    }
    let _ = RoutePattern::parse(&doc);
    let Ok(policy) = Policy::parse(&doc) else { return };

    let (host, path) = host_and_path(&url);
    if let Some(route) = policy.route_for(host, path) {
        assert!(route.pattern.matches(host, path));
        // The most specific matching route wins.
        for other in policy.routes().iter().filter(|r| r.pattern.matches(host, path)) {
            assert!(other.pattern.cmp_specificity(&route.pattern).is_le());
        }
        let options = hash_options(route);
        assert!(options.decode.limits.max_input_bytes <= hashgate::Limits::edge().max_input_bytes);
        let _ = route.verdict_key();
    }
    for route in policy.routes() {
        let found = policy.route_by_pattern(route.pattern.as_str()).expect("every route is found by its pattern");
        assert_eq!(found.pattern, route.pattern);
    }
});
