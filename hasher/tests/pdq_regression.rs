//! Agreement with Meta's PDQ regression data, when it is present beside the
//! repository (`../shared/pdq-regression`, or `PDQ_REGRESSION_DIR`).
//!
//! The table `expected/pdqhash-reference.csv` was made with the reference
//! C++ PDQ (`pdqhash` on PyPI) on PIL-decoded pixels. ThreatExchange's
//! criterion for whole files: quality >= 80 lands within Hamming distance 10;
//! we also require a median of at most 2 on the full-resolution path.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use hashgate::{hash_image, DecodeOptions, HashOptions, PdqHash, Reduction};

fn regression_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PDQ_REGRESSION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pdq-regression")
        });
    dir.join("expected/pdqhash-reference.csv")
        .is_file()
        .then_some(dir)
}

struct Row {
    image: String,
    pdq: PdqHash,
    quality: u8,
    dihedral: Vec<PdqHash>,
}

fn rows(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("expected/pdqhash-reference.csv")).expect("csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| h.starts_with(name)).expect(name);
    let (image, pdq, quality, dihedral) = (
        column("image"),
        column("full_pdq_hex"),
        column("full_quality"),
        column("full_dihedral"),
    );
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| dir.join(fields[image]).is_file())
        .map(|fields| Row {
            image: fields[image].to_owned(),
            pdq: fields[pdq].parse().expect("pdq hex"),
            quality: fields[quality].parse().expect("quality"),
            dihedral: fields[dihedral]
                .split_whitespace()
                .map(|h| h.parse().expect("hex"))
                .collect(),
        })
        .collect()
}

fn distances(dir: &Path, reduction: Reduction) -> Vec<(String, u32, u8)> {
    let options = HashOptions {
        decode: DecodeOptions {
            reduction,
            ..DecodeOptions::default()
        },
        dihedral: true,
        ..HashOptions::default()
    };
    rows(dir)
        .into_iter()
        .map(|row| {
            let bytes = std::fs::read(dir.join(&row.image)).expect("read");
            let hashes =
                hash_image(&bytes, &options).unwrap_or_else(|e| panic!("{}: {e}", row.image));
            let distance = hashes.pdq.distance(&row.pdq);
            if row.quality >= 80 {
                assert!(
                    distance <= 10,
                    "{} ({reduction:?}): distance {distance}",
                    row.image
                );
                for (ours, theirs) in hashes.dihedral.expect("dihedral").iter().zip(&row.dihedral) {
                    assert!(ours.distance(theirs) <= 10, "{} dihedral", row.image);
                }
            }
            (row.image, distance, row.quality)
        })
        .collect()
}

fn median(mut values: Vec<u32>) -> u32 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[test]
fn whole_files_agree_with_the_reference() {
    let Some(dir) = regression_dir() else {
        eprintln!("pdq-regression data not found; skipping");
        return;
    };
    let full = distances(&dir, Reduction::Full);
    assert!(
        full.len() >= 25,
        "only {} regression images found",
        full.len()
    );
    let good: Vec<u32> = full
        .iter()
        .filter(|(_, _, q)| *q >= 80)
        .map(|(_, d, _)| *d)
        .collect();
    assert!(median(good) <= 2);
    let reduced = distances(&dir, Reduction::DEFAULT);
    let good: Vec<u32> = reduced
        .iter()
        .filter(|(_, _, q)| *q >= 80)
        .map(|(_, d, _)| *d)
        .collect();
    assert!(median(good) <= 2);
}
