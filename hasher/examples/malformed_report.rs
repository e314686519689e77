//! Runs the generated malformed-image corpus (`tests/malformed/corpus.rs`)
//! through `hash_image` with the edge's options and reports its size, the
//! outcomes by error kind, and the time and memory of the worst cases: the
//! bounds `tests/malformed.rs` states, measured (time is not asserted in a
//! test, since machines differ). `scripts/bench-malformed.sh` runs it.
//!
//! Usage: malformed_report [--cases] [--repeat N] [FILTER]
//!   --cases      one line per case (group, name, outcome, ms, peak MiB)
//!   --repeat N   time each case N times and keep the fastest (default 3)
//!   FILTER       only cases whose group or name contains it

use std::collections::BTreeMap;
use std::time::Instant;

use hashgate::{hash_image, DecodeOptions, HashError, HashOptions, Limits, Reduction};

use hashgate_testkit::{alloc, corpus};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

fn outcome(result: &Result<hashgate::ImageHashes, HashError>) -> &'static str {
    match result {
        Ok(_) => "hash",
        Err(HashError::Empty) => "Empty",
        Err(HashError::UnsupportedFormat) => "UnsupportedFormat",
        Err(HashError::InputTooLarge { .. }) => "InputTooLarge",
        Err(HashError::DimensionsTooLarge { .. }) => "DimensionsTooLarge",
        Err(HashError::NoPixels { .. }) => "NoPixels",
        Err(HashError::Truncated(_)) => "Truncated",
        Err(HashError::Malformed(_)) => "Malformed",
        Err(HashError::MemoryLimit { .. }) => "MemoryLimit",
        Err(_) => "other",
    }
}

fn main() {
    let mut list_cases = false;
    let mut repeat = 3usize;
    let mut filter = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cases" => list_cases = true,
            "--repeat" => repeat = args.next().and_then(|n| n.parse().ok()).unwrap_or(3).max(1),
            other => filter = other.to_owned(),
        }
    }
    let options = HashOptions {
        decode: DecodeOptions {
            limits: Limits::edge(),
            reduction: Reduction::DEFAULT,
            apply_exif: false,
        },
        dihedral: true,
        ..HashOptions::default()
    };

    let started = Instant::now();
    let cases: Vec<corpus::Case> = corpus::corpus()
        .into_iter()
        .filter(|c| c.group.contains(&filter) || c.name.contains(&filter))
        .collect();
    let generated_ms = started.elapsed().as_secs_f64() * 1e3;
    let bytes: usize = cases.iter().map(|c| c.bytes.len()).sum();

    // (group, outcome) -> count; group -> (max ms, case); worst memory.
    let mut outcomes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut slowest: BTreeMap<&str, (f64, String)> = BTreeMap::new();
    let mut worst_memory = (0usize, String::new());
    let mut total_ms = 0.0;
    for case in &cases {
        let (result, peak) = alloc::peak_bytes(|| hash_image(&case.bytes, &options));
        let mut best = f64::INFINITY;
        for _ in 0..repeat {
            let start = Instant::now();
            let _ = std::hint::black_box(hash_image(std::hint::black_box(&case.bytes), &options));
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        total_ms += best;
        let kind = outcome(&result);
        *outcomes.entry((case.group, kind)).or_default() += 1;
        let entry = slowest.entry(case.group).or_insert((0.0, String::new()));
        if best > entry.0 {
            *entry = (best, case.name.clone());
        }
        if peak > worst_memory.0 {
            worst_memory = (peak, format!("{} / {}", case.group, case.name));
        }
        if list_cases {
            let detail = match &result {
                Err(e) => e.to_string(),
                Ok(h) => format!("{}x{} pdq {} q{}", h.width, h.height, h.pdq, h.quality),
            };
            println!(
                "{:<9} {:<60} {:<18} {:>9.3} ms {:>7.1} MiB  {detail}",
                case.group,
                case.name,
                kind,
                best,
                peak as f64 / 1048576.0
            );
        }
    }

    println!(
        "corpus: {} cases, {:.1} MB of input, generated in {generated_ms:.0} ms",
        cases.len(),
        bytes as f64 / 1e6
    );
    println!(
        "limits: Limits::edge() (max_alloc {} MiB), reduced-scale decoding, dihedral hashes",
        Limits::edge().max_alloc >> 20
    );
    println!("\noutcomes by group:");
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = outcomes.keys().map(|(_, kind)| *kind).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    print!("{:<10}", "group");
    for kind in &kinds {
        print!(" {:>18}", kind);
    }
    println!(" {:>7}", "total");
    let groups: Vec<&str> = slowest.keys().copied().collect();
    for group in groups.iter().copied().chain(["all"]) {
        print!("{group:<10}");
        let mut total = 0;
        for kind in &kinds {
            let n: usize = outcomes
                .iter()
                .filter(|((g, k), _)| (group == "all" || *g == group) && k == kind)
                .map(|(_, n)| n)
                .sum();
            total += n;
            print!(" {n:>18}");
        }
        println!(" {total:>7}");
    }
    println!("\nslowest case per group (fastest of {repeat} runs):");
    for (group, (ms, name)) in &slowest {
        println!("{group:<10} {ms:>9.3} ms  {name}");
    }
    println!("\nall cases: {total_ms:.0} ms");
    println!(
        "most memory held at once: {:.1} MiB ({})",
        worst_memory.0 as f64 / 1048576.0,
        worst_memory.1
    );
}
