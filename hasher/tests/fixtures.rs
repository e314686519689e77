//! The fixture manifest (`fixtures/manifest.json`, made by
//! `fixtures/generate.py` with the reference `pdqhash`) run against the
//! hasher. The same tests run natively (`cargo test`) and in wasm under node
//! (`wasm-bindgen-test`), with the files embedded by `include_bytes!`.

use hashgate::{hash_image, DecodeOptions, HashError, HashOptions, PdqHash, Reduction};
use serde::Deserialize;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use hashgate_testkit::fixtures::fixture as bytes_of;

const MANIFEST: &str = include_str!("../../fixtures/manifest.json");

#[derive(Deserialize)]
struct Manifest {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    file: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    width: u32,
    #[serde(default)]
    height: u32,
    #[serde(default)]
    pdq: Option<PdqHash>,
    #[serde(default)]
    quality: u8,
    #[serde(default)]
    dihedral: Vec<PdqHash>,
    md5: String,
    sha1: String,
    sha256: String,
    #[serde(default)]
    exact: bool,
}

fn cases() -> Vec<Case> {
    serde_json::from_str::<Manifest>(MANIFEST)
        .expect("manifest parses")
        .cases
}

fn options(reduction: Reduction) -> HashOptions {
    HashOptions {
        decode: DecodeOptions {
            reduction,
            ..DecodeOptions::default()
        },
        dihedral: true,
        ..HashOptions::default()
    }
}

#[test]
fn lossless_fixtures_hash_exactly_as_the_reference() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.exact) {
        let hashes = hash_image(bytes_of(&case.file), &options(Reduction::Full))
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(Some(hashes.pdq), case.pdq, "{}: pdq", case.file);
        assert_eq!(hashes.quality, case.quality, "{}: quality", case.file);
        let dihedral = hashes.dihedral.expect("asked for dihedral");
        // The reference's dihedral entry point always blurs, even at 64x64,
        // while its plain hash skips the blur there; ours derives all eight
        // from the plain hash's DCT.
        if (case.width, case.height) != (64, 64) {
            assert_eq!(dihedral.to_vec(), case.dihedral, "{}: dihedral", case.file);
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} exact cases");
}

#[test]
fn lossy_fixtures_land_near_the_reference() {
    for case in cases().iter().filter(|c| c.error.is_none() && !c.exact) {
        let expected = case.pdq.expect("image case has a pdq");
        for reduction in [Reduction::Full, Reduction::DEFAULT] {
            let hashes = hash_image(bytes_of(&case.file), &options(reduction))
                .unwrap_or_else(|e| panic!("{}: {e}", case.file));
            let distance = hashes.pdq.distance(&expected);
            // ThreatExchange's criterion for whole files: within 10 bits
            // when quality >= 80.
            assert!(
                distance <= 10,
                "{} ({reduction:?}): distance {distance}",
                case.file
            );
            assert!(
                hashes.quality.abs_diff(case.quality) <= 5,
                "{}: quality {}",
                case.file,
                hashes.quality
            );
        }
    }
}

#[test]
fn dimensions_and_digests_match_the_manifest() {
    for case in cases().iter().filter(|c| c.error.is_none()) {
        let hashes =
            hash_image(bytes_of(&case.file), &options(Reduction::DEFAULT)).expect("hashes");
        assert_eq!(
            (hashes.width, hashes.height),
            (case.width, case.height),
            "{}",
            case.file
        );
        assert_eq!(hashes.md5.to_string(), case.md5, "{}", case.file);
        assert_eq!(hashes.sha1.to_string(), case.sha1, "{}", case.file);
        assert_eq!(hashes.sha256.to_string(), case.sha256, "{}", case.file);
    }
}

#[test]
fn bad_inputs_give_the_named_error() {
    for case in cases().iter().filter(|c| c.error.is_some()) {
        let expected = case.error.as_deref().unwrap_or_default();
        let error = hash_image(bytes_of(&case.file), &options(Reduction::DEFAULT))
            .expect_err(&format!("{} must fail", case.file));
        let matches = match expected {
            "truncated" => matches!(error, HashError::Truncated(_) | HashError::Malformed(_)),
            "dimensions" => matches!(error, HashError::DimensionsTooLarge { .. }),
            "unsupported" => error == HashError::UnsupportedFormat,
            "empty" => error == HashError::Empty,
            other => panic!("unknown expected error {other}"),
        };
        assert!(matches, "{}: expected {expected}, got {error:?}", case.file);
    }
}

#[test]
fn truncated_images_are_never_hashed_as_clean() {
    // Cut a valid image at many offsets: every cut must fail, or (when the
    // decoder can still fill every pixel) never panic.
    let whole = bytes_of("photos/chelsea.jpg");
    for cut in (2..whole.len()).step_by(whole.len() / 37) {
        let _ = hash_image(&whole[..cut], &options(Reduction::DEFAULT));
    }
    let png = bytes_of("exact/chelsea.png");
    for cut in (8..png.len()).step_by(png.len() / 29) {
        assert!(
            hash_image(&png[..cut], &options(Reduction::DEFAULT)).is_err(),
            "PNG cut at {cut} hashed"
        );
    }
}
