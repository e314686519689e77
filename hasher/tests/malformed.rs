//! The generated malformed-image corpus (`tests/malformed/corpus.rs`)
//! against the hasher with the edge's options: every case must give a
//! typed error or a hash as it expects, and stay within a memory bound.
//!
//! Runs natively (`cargo test -p hashgate --test malformed`) and in wasm
//! under node (`scripts/test.sh`), where the edge actually runs it. Time is
//! not asserted here (machines differ); `examples/malformed_report.rs`
//! measures it.
//!
//! The memory bound: one `hash_image` under [`Limits::edge`] may hold at
//! most [`alloc::PEAK_BOUND`] bytes at once. The decoders' pixel buffers are
//! capped by `max_alloc` (48 MiB) before they are allocated; around them
//! the hasher keeps the luma plane (4 bytes a sample, at most 4 MP at full
//! resolution, reduced beyond) and a converted copy for formats decoded
//! to other than 8-bit RGB/grey (at most half the decoder buffer). A case
//! over the bound is a decoder allocating what the limits did not allow.

use hashgate::variants::VariantOptions;
use hashgate::{hash_image, DecodeOptions, HashError, HashOptions, Limits, PdqHash, Reduction};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use hashgate_testkit::{alloc, corpus};

use corpus::{Case, Expect};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

fn edge_options(variants: VariantOptions) -> HashOptions {
    HashOptions {
        decode: DecodeOptions {
            limits: Limits::edge(),
            reduction: Reduction::DEFAULT,
            apply_exif: false,
        },
        dihedral: true,
        variants,
    }
}

fn reference(file: &str, options: &HashOptions) -> PdqHash {
    hash_image(hashgate_testkit::fixtures::fixture(file), options)
        .unwrap_or_else(|e| panic!("fixture {file} hashes: {e}"))
        .pdq
}

/// Why `result` does not meet `case.expect`, if it does not.
fn check(
    case: &Case,
    result: &Result<hashgate::ImageHashes, HashError>,
    options: &HashOptions,
) -> Option<String> {
    let ok = match (case.expect, result) {
        (Expect::Either, _) => true,
        (Expect::Error, result) => result.is_err(),
        (
            Expect::Refused,
            Err(HashError::DimensionsTooLarge { .. } | HashError::MemoryLimit { .. }),
        ) => true,
        (Expect::Refused, _) => false,
        (Expect::Unsupported, result) => matches!(result, Err(HashError::UnsupportedFormat)),
        (Expect::Hash, result) => result.is_ok(),
        (Expect::SameAs(file) | Expect::SameOrError(file), Ok(hashes)) => {
            hashes.pdq == reference(file, options)
        }
        (Expect::SameOrError(_), Err(_)) => true,
        (Expect::Near(file, bits), Ok(hashes)) => {
            hashes.pdq.distance(&reference(file, options)) <= bits
        }
        (Expect::SameAs(_) | Expect::Near(..), Err(_)) => false,
    };
    if ok {
        return None;
    }
    let got = match result {
        Ok(hashes) => match case.expect {
            Expect::SameAs(file) | Expect::SameOrError(file) | Expect::Near(file, _) => {
                format!(
                    "hash at distance {}",
                    hashes.pdq.distance(&reference(file, options))
                )
            }
            _ => format!("hash {}", hashes.pdq),
        },
        Err(e) => format!("error {e:?}"),
    };
    Some(format!(
        "{} / {}: expected {:?}, got {got}",
        case.group, case.name, case.expect
    ))
}

#[test]
fn every_case_gives_a_typed_error_or_a_hash_as_expected_within_the_memory_bound() {
    let _serial = alloc::serial();
    let options = edge_options(VariantOptions::NONE);
    let cases = corpus::corpus();
    assert!(cases.len() >= 700, "corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut most = (0, String::new());
    for case in &cases {
        let (result, peak) = alloc::peak_bytes(|| hash_image(&case.bytes, &options));
        if let Some(failure) = check(case, &result, &options) {
            failures.push(failure);
        }
        if peak > alloc::PEAK_BOUND {
            failures.push(format!(
                "{} / {}: held {} MiB at once (bound {} MiB)",
                case.group,
                case.name,
                peak >> 20,
                alloc::PEAK_BOUND >> 20
            ));
        }
        if peak > most.0 {
            most = (peak, format!("{} / {}", case.group, case.name));
        }
    }
    println!(
        "{} cases; most memory held at once: {:.1} MiB ({})",
        cases.len(),
        most.0 as f64 / 1048576.0,
        most.1
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn disguised_and_animated_images_hash_as_themselves_with_every_variant() {
    // The query-side variants crop, rotate and mirror the decoded pixels:
    // the cases whose pixels are valid must go through that path too.
    let _serial = alloc::serial();
    let options = edge_options(VariantOptions::ALL);
    let cases: Vec<Case> = corpus::corpus()
        .into_iter()
        .filter(|c| matches!(c.group, "polyglot" | "animated" | "deep" | "zipbomb"))
        .collect();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case, &hash_image(&case.bytes, &options), &options))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_zip_bomb_is_tiny_and_hashed_in_bounded_memory() {
    let _serial = alloc::serial();
    let raw = corpus::png_raw_len(4_096, 4_096, 4);
    let bomb = corpus::png_zeros(4_096, 4_096, 8, 6, raw);
    assert!(
        bomb.len() * 900 < raw,
        "{} bytes inflating to {raw}",
        bomb.len()
    );
    // Within the pixel limits, and over the allocation limit if decoded
    // whole (64 MiB): read row by row, it never needs that buffer.
    let limits = Limits::edge();
    assert!(limits.check_dimensions(4_096, 4_096).is_ok());
    assert!(raw > limits.max_alloc);
    let (result, peak) =
        alloc::peak_bytes(|| hash_image(&bomb, &edge_options(VariantOptions::NONE)));
    let hashes = result.expect("a black 4096x4096 PNG hashes");
    assert_eq!((hashes.width, hashes.height), (4_096, 4_096));
    assert_eq!(hashes.quality, 0, "one grey level has no gradients");
    assert!(peak < 4 << 20, "hashed while holding {peak} bytes");
}

#[test]
fn generated_streams_are_what_they_claim() {
    let _serial = alloc::serial();
    // The deflate writer: a small stream of zeros inflates as a PNG would.
    let png = corpus::png_zeros(16, 16, 8, 0, corpus::png_raw_len(16, 16, 1));
    let hashes =
        hash_image(&png, &edge_options(VariantOptions::NONE)).expect("a 16x16 black PNG hashes");
    assert_eq!((hashes.width, hashes.height), (16, 16));
    // The lossless JPEG writer: 8-bit samples decode to the same pixels.
    let samples: Vec<u16> = (0..64 * 48)
        .map(|i| ((i % 64) * 3 + (i / 64) * 2) as u16)
        .collect();
    let jpeg = corpus::lossless_jpeg(64, 48, 1, 8, &samples);
    let grey: Vec<u8> = samples.iter().map(|&v| v as u8).collect();
    let png = grey_png(64, 48, &grey);
    let options = edge_options(VariantOptions::NONE);
    assert_eq!(
        hash_image(&jpeg, &options).expect("lossless JPEG").pdq,
        hash_image(&png, &options).expect("PNG").pdq
    );
}

/// A PNG of 8-bit grey rows, stored without compression.
fn grey_png(width: u32, height: u32, grey: &[u8]) -> Vec<u8> {
    let mut png = corpus::PNG_SIGNATURE.to_vec();
    corpus::png_chunk(&mut png, b"IHDR", &corpus::ihdr(width, height, 8, 0));
    let rows: Vec<u8> = grey
        .chunks(width as usize)
        .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
        .collect();
    corpus::png_chunk(&mut png, b"IDAT", &corpus::zlib_stored(&rows));
    corpus::png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn lossless_jpeg_of_any_precision_hashes_as_its_8_bit_pixels() {
    // Lossless JPEG has no DCT to scale, so even a large one is decoded at
    // full resolution; its 9- to 16-bit samples are read by their top bits,
    // like 16-bit PNG.
    let _serial = alloc::serial();
    let options = edge_options(VariantOptions::NONE);
    let (width, height) = (1_200u16, 800u16);
    let grey: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .map(|i| {
            let (x, y) = ((i % 1_200) as f32, (i / 1_200) as f32);
            (128.0
                + 60.0 * (x / 37.0).sin() * (y / 23.0).cos()
                + 40.0 * ((x + 2.0 * y) / 151.0).sin()) as u8
        })
        .collect();
    let expected = hash_image(&grey_png(1_200, 800, &grey), &options)
        .expect("PNG hashes")
        .pdq;
    for precision in [16u8, 12, 8, 6] {
        let samples: Vec<u16> = grey
            .iter()
            .map(|&v| match precision {
                16 => u16::from(v) << 8 | u16::from(v ^ 0x5A),
                12 => u16::from(v) << 4 | u16::from(v & 0x0F),
                8 => u16::from(v),
                _ => u16::from(v >> 2),
            })
            .collect();
        let jpeg = corpus::lossless_jpeg(width, height, 1, precision, &samples);
        let hashes = hash_image(&jpeg, &options).unwrap_or_else(|e| panic!("{precision}-bit: {e}"));
        // 6 bits lose the 2 low bits of each sample: a few bits of drift.
        let allowed = if precision == 6 { 8 } else { 0 };
        assert!(
            hashes.pdq.distance(&expected) <= allowed,
            "{precision}-bit: distance {}",
            hashes.pdq.distance(&expected)
        );
    }
}
