//! Inputs that once crashed, hung or allocated beyond the limits, replayed
//! through the code they broke: `fixtures/regressions/<target>/` holds what
//! `scripts/fuzz.sh` (or the malformed corpus) found for fuzz target
//! `<target>`, and each file must now give a typed error or a result, within
//! the memory bound the malformed-image test states.
//!
//! New inputs are picked up by name: drop a file into the directory of the
//! target that found it. A directory this test does not know fails it, so
//! nothing is kept without being replayed. Native only (it reads the
//! directory); the image cases that matter at the edge are also in the
//! generated corpus, which runs in wasm.

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use hashgate::index::{parse_allowlist, parse_hash_list, record, IndexBuilder};
use hashgate::variants::VariantOptions;
use hashgate::{hash_image, DecodeOptions, HashOptions, Limits, Reduction};

use hashgate_testkit::alloc;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/regressions")
}

/// Every file under `fixtures/regressions/<target>/`, sorted.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = regressions().join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                format!(
                    "{target}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                bytes,
            )
        })
        .collect()
}

/// Fuzz targets whose inputs are replayed: here, or (the worker's targets,
/// listed after the hasher's) in the worker crate's own tests.
const TARGETS: &[&str] = &[
    "hash_image",
    "hash_variants",
    "hash_list",
    "index_record",
    // worker/tests/multipart_reference.rs
    "multipart_reference",
];

#[test]
fn every_regression_directory_is_replayed() {
    let Ok(entries) = std::fs::read_dir(regressions()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.contains(&name.as_str()),
            "fixtures/regressions/{name}/ is replayed by no test"
        );
    }
}

#[test]
fn images_give_a_typed_error_or_a_hash_within_the_memory_bound() {
    let _serial = alloc::serial();
    let edge = |variants: VariantOptions, apply_exif: bool| HashOptions {
        decode: DecodeOptions {
            limits: Limits::edge(),
            reduction: Reduction::DEFAULT,
            apply_exif,
        },
        dihedral: true,
        variants,
    };
    let plain = edge(VariantOptions::NONE, false);
    let all = edge(VariantOptions::ALL, true);
    let cases: Vec<_> = inputs("hash_image")
        .into_iter()
        .chain(inputs("hash_variants"))
        .collect();
    for (name, bytes) in &cases {
        for options in [&plain, &all] {
            let (result, peak) = alloc::peak_bytes(|| hash_image(bytes, options));
            assert!(
                peak <= alloc::PEAK_BOUND,
                "{name}: held {} MiB at once ({:?})",
                peak >> 20,
                result.map(|h| h.pdq)
            );
        }
    }
}

#[test]
fn hash_lists_parse_and_build() {
    for (_name, bytes) in inputs("hash_list") {
        let text = String::from_utf8_lossy(&bytes);
        let list = parse_hash_list(&text);
        let allow = parse_allowlist(&text);
        let mut builder = IndexBuilder::new();
        if builder.add_list("fuzz", list.entries).is_ok() {
            builder.add_allowlist(allow.entries);
            let _ = builder.build();
        }
    }
}

#[test]
fn index_values_decode_or_give_a_record_error() {
    for (_name, bytes) in inputs("index_record") {
        for binary in [Some(bytes.clone()), record::decode_text(&bytes).ok()]
            .into_iter()
            .flatten()
        {
            if let Ok(view) = record::TableView::bucket(&binary) {
                (0..=view.len()).for_each(|i| drop(view.memberships(i)));
            }
            if let Ok(view) = record::TableView::vec72(&binary) {
                (0..=view.len()).for_each(|i| drop(view.memberships(i)));
            }
            let _ = record::decode_exact(&binary);
        }
    }
}
