//! The pure middle of a scan: bytes to hashes, hashes to an index query,
//! matches to a verdict.
//!
//! Kept free of runtime types so that the decision itself (what is hashed,
//! with which limits, what counts as a match) is tested natively; the
//! runtime glue in [`crate::intercept`] only adds the I/O around it.

use hashgate::digest::ExactDigests;
use hashgate::index::{Match, Query};
use hashgate::matching::MatchRecord;
use hashgate::{
    hash_image_with_digests, DecodeOptions, HashOptions, ImageHashes, Limits, Reduction,
};
use serde::{Deserialize, Serialize};

use crate::error::ScanError;
use crate::policy::{FailMode, Route, Undecodable};
use hashgate::HashError;

/// What is kept about a scanned image: its identity, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub sha256: String,
    pub pdq: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
}

/// The outcome of checking one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// Matches, closest first (never empty).
    Match(Vec<MatchRecord>),
}

/// The hasher's options at the edge: the isolate's limits with the
/// route's byte cap, reduced-scale decoding, and the route's query set
/// (by default the 8 dihedral hashes, so that rotated and mirrored copies
/// match; with `variants: all` the pixel orientations and border trimming
/// too).
pub fn hash_options(route: &Route) -> HashOptions {
    let mut limits = Limits::edge();
    limits.max_input_bytes = limits.max_input_bytes.min(route.max_bytes);
    let decode = DecodeOptions {
        limits,
        reduction: Reduction::DEFAULT,
        apply_exif: false,
    };
    HashOptions::for_query(route.variants, decode)
}

/// Hash phase, with the body's exact digests already taken.
pub fn hash(bytes: &[u8], route: &Route, digests: ExactDigests) -> Result<ImageHashes, ScanError> {
    Ok(hash_image_with_digests(
        bytes,
        &hash_options(route),
        digests,
    )?)
}

/// The index query for an image on a route.
pub fn query(hashes: &ImageHashes, route: &Route) -> Query {
    // The route's negative lists are looked up too: their matches cancel
    // the others (see `after_hygiene`).
    let lists = route.hygiene.lookup_lists(&route.lists);
    Query::for_image(hashes, route.pdq_threshold, lists)
}

/// The matches that count under the route's hygiene rules (PDQ quality,
/// per-list distance, negative lists). Overrides (entries turned off,
/// images cleared) come after the remembered verdict, in the runtime.
pub fn after_hygiene(matches: Vec<Match>, hashes: &ImageHashes, route: &Route) -> Vec<Match> {
    route.hygiene.apply(matches, &hashes.query_qualities()).0
}

/// What happens to an image that could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Pass it on with no event: there was nothing to check (an SVG with no
    /// raster image in it; vectors are not rendered).
    Nothing,
    /// Pass it on and report it unscanned.
    Pass,
    /// Refuse it (503, or the upload is not forwarded) and report it.
    Refuse,
}

/// Decides what a route does with an image that could not be checked:
/// the fail mode, except that a recognised but undecodable format follows
/// the route's `undecodable` option, and a vector-only SVG has nothing to
/// check.
pub fn fallback(route: &Route, error: &ScanError) -> Fallback {
    let by_fail_mode = match route.fail {
        FailMode::Open => Fallback::Pass,
        FailMode::Closed => Fallback::Refuse,
    };
    match error {
        ScanError::Hash(HashError::NoRaster) => Fallback::Nothing,
        ScanError::Hash(HashError::UndecodableFormat(_)) => match route.undecodable {
            Undecodable::Pass => Fallback::Pass,
            Undecodable::Fail => by_fail_mode,
        },
        _ => by_fail_mode,
    }
}

/// What is kept of the hashes.
pub fn summarize(hashes: &ImageHashes) -> ImageSummary {
    ImageSummary {
        sha256: hashes.sha256.to_string(),
        pdq: hashes.pdq.to_string(),
        format: hashes.format.name().to_owned(),
        width: hashes.width,
        height: hashes.height,
    }
}

/// Verdict phase: the index's matches (already filtered to the route's
/// lists and threshold, closest first) become the verdict. `hashes` are the
/// ones [`query`] was made from (they name the query hashes).
pub fn verdict(matches: &[Match], hashes: &ImageHashes) -> Verdict {
    if matches.is_empty() {
        return Verdict::Clean;
    }
    Verdict::Match(MatchRecord::for_image(hashes, matches.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closest match of a verdict.
    fn best(verdict: &Verdict) -> Option<&MatchRecord> {
        match verdict {
            Verdict::Clean => None,
            Verdict::Match(matches) => matches.first(),
        }
    }

    /// The hash phase with the hasher's own digests.
    fn hashed(bytes: &[u8], route: &Route) -> Result<ImageHashes, ScanError> {
        hash(bytes, route, ExactDigests::of(bytes))
    }
    use crate::policy::Policy;
    use hashgate::index::lists::parse_hash_list;
    use hashgate::index::{IndexBuilder, QueryPlan};

    fn route(extra: &str) -> Route {
        let json = format!(
            r#"{{"routes": [{{"pattern": "*/*", "action": "block", "lists": ["demo"]{extra}}}]}}"#
        );
        Policy::parse(&json).unwrap().routes()[0].clone()
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The whole pure path against an index built in memory by the
    /// hasher's own builder, reading "KV" from the built records.
    fn check(bytes: &[u8], route: &Route, list: &str) -> Verdict {
        let mut builder = IndexBuilder::new();
        builder
            .add_list("demo", parse_hash_list(list).entries)
            .unwrap();
        let index = builder.build().unwrap();
        let hashes = hashed(bytes, route).unwrap();
        let plan = QueryPlan::new(&query(&hashes, route)).unwrap();
        let matches = plan
            .resolve(|key| index.records.get(key).map(|v| v.as_bytes()))
            .unwrap();
        verdict(&matches, &hashes)
    }

    #[test]
    fn listed_pdq_matches_and_others_do_not() {
        let chelsea = fixture("photos/chelsea.jpg");
        let list = std::fs::read_to_string(format!(
            "{}/../fixtures/lists/demo.csv",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let v = check(&chelsea, &route(""), &list);
        let chelsea = best(&v).expect("chelsea is on the demo list");
        assert_eq!(chelsea.list, "demo");
        assert_eq!(chelsea.id.as_deref(), Some("demo-chelsea"));
        assert_eq!(chelsea.kind, "pdq");
        assert!(chelsea.distance <= 31);
        assert_eq!(
            check(&fixture("photos/coffee.jpg"), &route(""), &list),
            Verdict::Clean
        );
        let rocket = check(&fixture("photos/rocket.jpg"), &route(""), &list);
        assert_eq!(best(&rocket).map(|m| m.kind.as_str()), Some("sha256"));
        assert_eq!(best(&rocket).and_then(|m| m.variant.as_deref()), None);
    }

    #[test]
    fn the_route_cap_limits_hashing() {
        let chelsea = fixture("photos/chelsea.jpg");
        let err = hashed(&chelsea, &route(r#", "max_bytes": 1000"#)).unwrap_err();
        assert_eq!(err.reason(), "over-limits");
        let bomb = fixture("errors/bomb-50000.png");
        assert_eq!(
            hashed(&bomb, &route("")).unwrap_err().reason(),
            "over-limits"
        );
        assert_eq!(
            hashed(b"<html>", &route("")).unwrap_err().reason(),
            "unsupported-format"
        );
        assert_eq!(
            hashed(&fixture("errors/truncated.jpg"), &route(""))
                .unwrap_err()
                .reason(),
            "undecodable"
        );
    }

    #[test]
    fn undecodable_formats_follow_the_route_option() {
        let avif = ScanError::Hash(HashError::UndecodableFormat(hashgate::ImageFormat::Avif));
        let corrupt = ScanError::Hash(HashError::Truncated("x".into()));
        let vector = ScanError::Hash(HashError::NoRaster);
        let closed = route(r#", "fail": "closed""#);
        let lenient = route(r#", "fail": "closed", "undecodable": "pass""#);
        let open = route("");
        assert_eq!(fallback(&closed, &avif), Fallback::Refuse);
        assert_eq!(fallback(&lenient, &avif), Fallback::Pass);
        assert_eq!(fallback(&lenient, &corrupt), Fallback::Refuse);
        assert_eq!(fallback(&open, &avif), Fallback::Pass);
        assert_eq!(fallback(&open, &corrupt), Fallback::Pass);
        assert_eq!(fallback(&closed, &vector), Fallback::Nothing);
    }

    #[test]
    fn summary_has_no_bytes() {
        let hashes = hashed(&fixture("photos/chelsea.jpg"), &route("")).unwrap();
        let s = summarize(&hashes);
        assert_eq!(s.sha256.len(), 64);
        assert_eq!(s.pdq.len(), 64);
        assert_eq!(s.format, "jpeg");
    }
}
