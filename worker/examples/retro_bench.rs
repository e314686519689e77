//! Time of a retroactive pass, natively: 10^6 hash-log rows matched
//! against the hashes a new generation added (10^4: half PDQ, half
//! SHA-256), with the worker's own code (`hashgate_worker::retro`).
//!
//!   cargo run --release -p hashgate-worker --example retro_bench [ROWS] [ADDED]
//!
//! Prints the time to build the index of added hashes, the time to match
//! every row, and the candidates found (100 rows are planted near added
//! hashes, so the answer is checked). Deterministic (a fixed-seed
//! generator); in workerd the match runs the same wasm code in pages of 500
//! rows, plus the D1 page reads.

use std::time::Instant;

use hashgate::HashKind;
use hashgate_worker::hash_log::PageRow;
use hashgate_worker::retro::{added_index, candidates, Added};

/// xorshift64*: enough randomness for hashes, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.next() as u8))
            .collect()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let added_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let added: Vec<Added> = (0..added_n)
        .map(|i| {
            let (kind, bytes) = if i % 2 == 0 {
                (HashKind::Pdq, 32)
            } else {
                (HashKind::Sha256, 32)
            };
            Added {
                list: "later".into(),
                kind,
                hash: rng.hex(bytes),
                id: Some(format!("e{i}")),
            }
        })
        .collect();
    let started = Instant::now();
    let index = added_index(&added).expect("index").expect("not empty");
    let build = started.elapsed();

    let planted = 100;
    let mut log: Vec<PageRow> = (0..rows)
        .map(|i| PageRow {
            row: i as i64 + 1,
            location: format!("r2://user-uploads/objects/{i:08}.jpg"),
            etag: rng.hex(16),
            generation: "0123456789abcdef".into(),
            route: "r2://user-uploads/*".into(),
            direction: "stored".into(),
            pdq: Some(rng.hex(32)),
            pdq_quality: Some(100),
            md5: Some(rng.hex(16)),
            sha1: Some(rng.hex(20)),
            sha256: Some(rng.hex(32)),
        })
        .collect();
    // Plant rows: half near an added PDQ (first byte changed: <= 8 bits),
    // half with an added SHA-256.
    for p in 0..planted {
        let target = &added[p * 2 + (p % 2)];
        let row = &mut log[p * (rows / planted)];
        match target.kind {
            HashKind::Pdq => row.pdq = Some(format!("{:02x}{}", 0x5a, &target.hash[2..])),
            _ => row.sha256 = Some(target.hash.clone()),
        }
    }

    let started = Instant::now();
    let mut found = 0;
    for page in log.chunks(500) {
        found += candidates(&index, page).len();
    }
    let matching = started.elapsed();
    println!("rows {rows}, added hashes {added_n} (half PDQ, half SHA-256)");
    println!(
        "index of added hashes built in {:.1} ms",
        build.as_secs_f64() * 1e3
    );
    println!(
        "matched {rows} rows in {:.2} s ({:.2} us a row), {found} candidates ({planted} planted)",
        matching.as_secs_f64(),
        matching.as_secs_f64() * 1e6 / rows as f64
    );
    assert_eq!(found, planted, "every planted row, nothing else");
}
