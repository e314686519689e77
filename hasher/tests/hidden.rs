//! What a viewer sees is hashed, whatever the container hides: alpha
//! composited over white and black, every frame of an animation (GIF,
//! APNG, WebP, composited), ICO and TIFF decoded, rasters embedded in SVG,
//! and AVIF recognised as an image that cannot be decoded.
//!
//! The images are `python3 tests/support/images.py hidden` (Pillow), made
//! from `fixtures/photos/chelsea.jpg`, which stands in for a listed image;
//! they are generated into `target/e2e/hidden` on first use (the end-to-end
//! tests use the same files). Each test asserts that the image's own
//! (reference) hash is far from the listed one, so it would pass unmatched
//! without the views, and that a view is near it, named as it should be.
//! Native only (it reads generated files); the worker's end-to-end test
//! `tests/hidden.test.mjs` runs the same images through the wasm build.

#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use hashgate::decode::FramesRead;
use hashgate::variants::VariantOptions;
use hashgate::{
    hash_image, DecodeOptions, HashError, HashOptions, ImageFormat, ImageHashes, Limits, PdqHash,
    Reduction,
};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// `fixtures/photos/chelsea.jpg`, as the reference hashes it (manifest.json).
const LISTED: &str = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";
/// The demo list's threshold.
const THRESHOLD: u32 = 31;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(ROOT).join("target/e2e/hidden");
        let status = Command::new("python3")
            .arg(PathBuf::from(ROOT).join("tests/support/images.py"))
            .arg("hidden")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3 runs tests/support/images.py (needs Pillow)");
        assert!(status.success(), "images.py hidden failed");
        dir
    })
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn edge() -> HashOptions {
    HashOptions {
        decode: DecodeOptions {
            limits: Limits::edge(),
            reduction: Reduction::DEFAULT,
            apply_exif: false,
        },
        dihedral: true,
        variants: VariantOptions::NONE,
    }
}

fn listed() -> PdqHash {
    LISTED.parse().expect("hex")
}

fn hashed(name: &str) -> ImageHashes {
    hash_image(&read(name), &edge()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The query hash nearest the listed one: (label, distance).
fn nearest(hashes: &ImageHashes) -> (String, u32) {
    hashes
        .query_pdq()
        .into_iter()
        .map(|(variant, hash)| (variant.to_string(), hash.distance(&listed())))
        .min_by_key(|(_, d)| *d)
        .expect("at least the image's own hash")
}

/// The image's own hash misses; a view named `label` (a prefix) matches.
fn assert_found_by_view(name: &str, label: &str, within: u32) -> ImageHashes {
    let hashes = hashed(name);
    let own = hashes.pdq.distance(&listed());
    assert!(
        own > THRESHOLD,
        "{name}: the reference hash is already at {own}: not hidden"
    );
    let (found, distance) = nearest(&hashes);
    assert!(
        distance <= within && found.starts_with(label),
        "{name}: nearest query hash {found} at {distance} (want {label}.. within {within}); own hash at {own}; views {:?}",
        hashes.views
    );
    hashes
}

#[test]
fn alpha_whose_picture_shows_over_white() {
    let hashes = assert_found_by_view("alpha-ink.png", "over-white", 8);
    assert!(hashes.views.len() <= 2);
}

#[test]
fn alpha_whose_picture_shows_over_black() {
    assert_found_by_view("alpha-dark.png", "over-black", 8);
}

#[test]
fn fully_transparent_pixels_carrying_another_photo() {
    let hashes = hashed("alpha-holes.png");
    let own = hashes.pdq.distance(&listed());
    let (found, distance) = nearest(&hashes);
    assert!(own > THRESHOLD, "own hash at {own}");
    assert!(
        distance <= 16 && found.starts_with("over-"),
        "{found} at {distance}"
    );
}

#[test]
fn the_second_frame_of_a_gif() {
    let hashes = assert_found_by_view("frame2.gif", "frame-2", 16);
    assert_eq!(
        hashes.frames,
        Some(FramesRead {
            frames: 2,
            complete: true
        })
    );
}

#[test]
fn a_gif_frame_that_is_the_picture_only_once_composited() {
    // Frame 2 is only the bottom half; over frame 1 (whose top half is the
    // picture) it is the whole picture.
    assert_found_by_view("partial.gif", "frame-2", 16);
}

#[test]
fn an_apng_with_a_blank_default_image() {
    let hashes = assert_found_by_view("apng.png", "frame-2", 8);
    assert_eq!(hashes.format, ImageFormat::Png);
}

#[test]
fn the_second_frame_of_an_animated_webp() {
    assert_found_by_view("frame2.webp", "frame-2", 8);
}

#[test]
fn a_frame_bomb_is_read_to_the_bound_only() {
    let hashes = hashed("many-frames.gif");
    let frames = hashes.frames.expect("an animation");
    assert_eq!(frames.frames, Limits::edge().max_frames);
    assert!(!frames.complete);
    assert!(hashes.views.len() <= hashgate::views::MAX_VIEW_HASHES);
}

#[test]
fn ico_and_tiff_are_decoded() {
    for (name, format) in [
        ("chelsea.ico", ImageFormat::Ico),
        ("chelsea-bmp.ico", ImageFormat::Ico),
        ("chelsea.tiff", ImageFormat::Tiff),
    ] {
        let hashes = hashed(name);
        assert_eq!(hashes.format, format, "{name}");
        let distance = hashes.pdq.distance(&listed());
        assert!(distance <= 16, "{name}: at {distance}");
    }
}

#[test]
fn rasters_embedded_in_svg_are_hashed() {
    let png = hashed("chelsea.svg");
    assert_eq!(png.format, ImageFormat::Svg);
    assert!(png.pdq.distance(&listed()) <= 8);
    // Entity-escaped `data:`, base64 over several lines, xlink:href: the
    // very JPEG inside, so its digests are queried too.
    let jpeg = hashed("chelsea-jpeg.svg");
    assert!(jpeg.pdq.distance(&listed()) <= 8);
    let original = std::fs::read(PathBuf::from(ROOT).join("fixtures/photos/chelsea.jpg")).unwrap();
    let digests = hashgate::digest::ExactDigests::of(&original);
    assert_eq!(jpeg.embedded, vec![digests]);
    let query = hashgate::index::Query::for_image(&jpeg, 31, Default::default());
    assert!(query
        .exact
        .contains(&hashgate::index::ExactDigest::Sha256(digests.sha256)));
}

#[test]
fn an_svg_without_raster_has_nothing_to_hash() {
    assert_eq!(
        hash_image(&read("vector.svg"), &edge()),
        Err(HashError::NoRaster)
    );
}

#[test]
fn avif_is_recognised_as_undecodable() {
    assert_eq!(
        hash_image(&read("chelsea.avif"), &edge()),
        Err(HashError::UndecodableFormat(ImageFormat::Avif))
    );
}

#[test]
fn views_are_in_the_index_query() {
    let hashes = hashed("frame2.gif");
    let query = hashgate::index::Query::for_image(&hashes, 31, Default::default());
    for view in &hashes.views {
        assert!(query.pdq.contains(&view.pdq), "{:?}", view.variant);
    }
}
