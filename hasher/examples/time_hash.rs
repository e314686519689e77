//! Times `hash_image` on one file, single thread, for the hasher benchmark
//! (`scripts/bench-hasher.sh`). Built natively and for wasm32-wasip1, so the
//! same code is timed in both. Prints one JSON line: `median_ms` for the
//! whole `hash_image` (PDQ and the MD5/SHA-1/SHA-256 digests), and
//! `pdq_median_ms` for decode + PDQ alone, the work the reference pipelines
//! do.
//!
//! Usage: time_hash FILE ITERATIONS [full|reduced]

use std::time::Instant;

use hashgate::{hash_image, DecodeOptions, HashOptions, Reduction};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(iterations)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: time_hash FILE ITERATIONS [full|reduced]");
        std::process::exit(2);
    };
    let reduction = match args.get(3).map(String::as_str) {
        Some("full") => Reduction::Full,
        _ => Reduction::DEFAULT,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("cannot read {path}: {error}");
            std::process::exit(2);
        }
    };
    let options = HashOptions {
        decode: DecodeOptions {
            reduction,
            ..DecodeOptions::default()
        },
        ..HashOptions::default()
    };
    if std::env::var_os("TIME_STAGES").is_some() {
        time_stages(&bytes, &options, iterations);
    }
    let mut times = Vec::with_capacity(iterations);
    let mut last = None;
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        let hashes = hash_image(&bytes, &options);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        last = Some(hashes);
    }
    times.sort_by(f64::total_cmp);
    let (median, min) = (times[times.len() / 2], times[0]);
    let pdq_median = pdq_only_median(&bytes, &options, iterations.max(1));
    let memory = peak_memory_bytes();
    match last {
        Some(Ok(hashes)) => println!(
            "{{\"median_ms\": {median:.6}, \"min_ms\": {min:.6}, \"pdq_median_ms\": {pdq_median:.6}, \"pdq\": \"{}\", \"quality\": {}, \"width\": {}, \"height\": {}, \"peak_memory_bytes\": {memory}}}",
            hashes.pdq, hashes.quality, hashes.width, hashes.height
        ),
        // Refusals are timed too (how fast a bomb is turned away).
        Some(Err(error)) => println!(
            "{{\"median_ms\": {median:.6}, \"min_ms\": {min:.6}, \"error\": \"{error}\", \"peak_memory_bytes\": {memory}}}"
        ),
        None => unreachable!("at least one iteration runs"),
    }
}

/// Median time of decode + PDQ, without the digests (0 if it fails).
fn pdq_only_median(bytes: &[u8], options: &HashOptions, iterations: usize) -> f64 {
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let Ok(decoded) = hashgate::decode::decode(bytes, &options.decode) else {
            return 0.0;
        };
        let full_scale = decoded.full_scale();
        hashgate::pdq::hash_luma_scaled(decoded.luma, Some(full_scale));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Linear memory of the wasm module: it only grows, so this is the peak.
/// Natively there is no such figure (0).
fn peak_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Prints the median time of each stage on stderr: decode, PDQ, digests.
fn time_stages(bytes: &[u8], options: &HashOptions, iterations: usize) {
    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64() * 1000.0
    };
    let (mut decode, mut pdq, mut digests) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations.max(1) {
        let mut decoded = None;
        decode.push(time(&mut || {
            decoded = hashgate::decode::decode(bytes, &options.decode).ok()
        }));
        let Some(decoded) = decoded else { return };
        let (w, h) = (decoded.luma.width, decoded.luma.height);
        let full_scale = decoded.full_scale();
        pdq.push(time(&mut || {
            hashgate::pdq::hash_luma_scaled(decoded.luma.clone(), Some(full_scale));
        }));
        digests.push(time(&mut || {
            hashgate::digest::ExactDigests::of(bytes);
        }));
        if decode.len() == 1 {
            eprintln!("decoded luma {w}x{h}");
        }
    }
    eprintln!(
        "decode {:.2} ms, pdq {:.2} ms, digests {:.2} ms",
        median(decode),
        median(pdq),
        median(digests)
    );
}
