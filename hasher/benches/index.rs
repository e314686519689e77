//! Index benchmark: builds indexes of N random PDQ hashes and prints, per N,
//! the build time and KV size, and per query the KV keys, bulk reads, bytes
//! read and match CPU time, next to a brute-force scan of the same hashes in
//! the same run. Then the alternative bucket layouts measured on the same
//! hashes, and figures computed for N = 10^7.
//!
//! Run: `cargo bench -p hashgate --bench index` (all of 10^4, 10^5, 10^6;
//! `-- 10000 100000` for other sizes). Not a timed test: it prints figures,
//! and fails only if the index and the scan disagree.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use hashgate::index::layout::{self, CHUNKS};
use hashgate::index::lists::ListEntry;
use hashgate::index::{IndexBuilder, Query, QueryPlan, ResidentIndex, TypedHash};
use hashgate::PdqHash;

use hashgate_testkit::rng::Rng;

const QUERIES: usize = 300;
const THRESHOLDS: [u32; 4] = [31, 20, 15, 10];

struct QueryFigures {
    label: String,
    keys: f64,
    batches: f64,
    bytes: f64,
    cpu_mean: Duration,
    cpu_p99: Duration,
    resident_mean: Duration,
    resident_p99: Duration,
    scan_mean: Duration,
    matches: usize,
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len().max(1) as u32
}

fn p99(times: &mut [Duration]) -> Duration {
    times.sort();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}

fn brute_force(hashes: &[PdqHash], query: &[PdqHash], threshold: u32) -> usize {
    let words: Vec<[u64; 4]> = query.iter().map(PdqHash::words).collect();
    let mut found = 0;
    for hash in hashes {
        let w = hash.words();
        let near = words.iter().any(|q| {
            (q[0] ^ w[0]).count_ones()
                + (q[1] ^ w[1]).count_ones()
                + (q[2] ^ w[2]).count_ones()
                + (q[3] ^ w[3]).count_ones()
                <= threshold
        });
        found += usize::from(near);
    }
    found
}

/// Runs `QUERIES` queries of `per_query` PDQ hashes at `threshold`; half of
/// them near a list hash so that resolving finds something.
fn measure(
    label: String,
    hashes: &[PdqHash],
    records: &std::collections::BTreeMap<String, String>,
    resident: &ResidentIndex,
    threshold: u32,
    per_query: usize,
    rng: &mut Rng,
) -> QueryFigures {
    let (mut keys, mut batches, mut bytes, mut matches) = (0usize, 0usize, 0usize, 0usize);
    let (mut cpu, mut scan, mut in_memory) = (Vec::new(), Vec::new(), Vec::new());
    for q in 0..QUERIES {
        let pdq: Vec<PdqHash> = (0..per_query)
            .map(|_| {
                if q % 2 == 0 {
                    let target = hashes[(rng.next() % hashes.len() as u64) as usize];
                    let bits = (rng.next() % u64::from(threshold + 1)) as u32;
                    rng.near(&target, bits)
                } else {
                    rng.pdq()
                }
            })
            .collect();
        let query = Query {
            pdq: pdq.clone(),
            pdq_threshold: threshold,
            ..Query::default()
        };
        // What KV would return: fetched outside the timed part.
        let plan = QueryPlan::new(&query).expect("threshold in range");
        let fetched: HashMap<&str, &[u8]> = plan
            .keys()
            .iter()
            .filter_map(|k| {
                records
                    .get_key_value(k)
                    .map(|(k, v)| (k.as_str(), v.as_bytes()))
            })
            .collect();
        keys += plan.keys().len();
        batches += plan.batches().count();
        bytes += fetched.values().map(|v| v.len()).sum::<usize>();

        let start = Instant::now();
        let plan = QueryPlan::new(black_box(&query)).expect("threshold in range");
        let found = plan
            .resolve(|k| fetched.get(k).copied())
            .expect("values are well formed");
        cpu.push(start.elapsed());

        let start = Instant::now();
        let held = resident
            .find(black_box(&query))
            .expect("threshold in range");
        in_memory.push(start.elapsed());

        let start = Instant::now();
        let expected = brute_force(black_box(hashes), &pdq, threshold);
        scan.push(start.elapsed());
        let shape = |m: &hashgate::index::Match| (m.list.clone(), m.hash, m.distance, m.id.clone());
        assert!(
            held.iter().map(shape).eq(found.iter().map(shape)),
            "resident and bucket layouts disagree at T = {threshold}"
        );

        let distinct: BTreeSet<String> = found.iter().map(|m| m.hash.to_string()).collect();
        assert_eq!(
            distinct.len(),
            expected,
            "index and scan disagree at T = {threshold}"
        );
        matches += expected;
    }
    let n = QUERIES as f64;
    QueryFigures {
        label,
        keys: keys as f64 / n,
        batches: batches as f64 / n,
        bytes: bytes as f64 / n,
        cpu_mean: mean(&cpu),
        cpu_p99: p99(&mut cpu),
        resident_mean: mean(&in_memory),
        resident_p99: p99(&mut in_memory),
        scan_mean: mean(&scan),
        matches,
    }
}

/// Entries read at T = 31 by other layouts, counted on the same hashes:
/// 16-bit chunks keyed by their top `bits` bits, and 32 chunks of 8 bits.
fn alternative_layouts(hashes: &[PdqHash], rng: &mut Rng) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for bits in [16u32, 14, 12] {
        let shift = 16 - bits;
        let mut counts: HashMap<(usize, u16), usize> = HashMap::new();
        for hash in hashes {
            for chunk in 0..CHUNKS {
                *counts
                    .entry((chunk, hash.chunk16(chunk) >> shift))
                    .or_default() += 1;
            }
        }
        let mut entries = 0usize;
        let mut keys = 0usize;
        for _ in 0..QUERIES {
            let query = rng.pdq();
            for chunk in 0..CHUNKS {
                let prefix = query.chunk16(chunk) >> shift;
                let mut read = BTreeSet::from([prefix]);
                for bit in 0..bits {
                    read.insert(prefix ^ (1 << bit));
                }
                keys += read.len();
                entries += read
                    .iter()
                    .map(|p| counts.get(&(chunk, *p)).copied().unwrap_or(0))
                    .sum::<usize>();
            }
        }
        out.push((
            format!("16 x 16-bit chunks, key = top {bits} bits"),
            keys as f64 / QUERIES as f64,
            entries as f64 / QUERIES as f64,
        ));
    }
    // 32 chunks of 8 bits: 31 differences leave one chunk equal.
    let mut counts: HashMap<(usize, u8), usize> = HashMap::new();
    for hash in hashes {
        for (chunk, byte) in hash.0.iter().enumerate() {
            *counts.entry((chunk, *byte)).or_default() += 1;
        }
    }
    let mut entries = 0usize;
    for _ in 0..QUERIES {
        let query = rng.pdq();
        entries += query
            .0
            .iter()
            .enumerate()
            .map(|(c, b)| counts.get(&(c, *b)).copied().unwrap_or(0))
            .sum::<usize>();
    }
    out.push((
        "32 x 8-bit chunks, exact".to_owned(),
        32.0,
        entries as f64 / QUERIES as f64,
    ));
    out
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: f64) -> String {
    format!("{:.3} MB", bytes / 1e6)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    // (entries read, match CPU ns) at T = 31 per size, for the 10^7 model.
    let mut t31_points: Vec<(f64, f64)> = Vec::new();
    let mut scan_ns_per_hash = 0.0;
    let mut text_bytes_per_entry = 0.0;

    for &n in &sizes {
        let mut rng = Rng::new(n as u64);
        let hashes: Vec<PdqHash> = (0..n).map(|_| rng.pdq()).collect();
        let entries: Vec<ListEntry> = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| ListEntry {
                hash: TypedHash::Pdq(*h),
                id: None,
                line: i + 1,
            })
            .collect();
        let start = Instant::now();
        let mut builder = IndexBuilder::new();
        builder.add_list("bench", entries).expect("valid list");
        let merged = builder.merge().expect("build succeeds");
        let snapshot = merged.snapshot().expect("snapshot encodes");
        let snapshot_time = start.elapsed();
        let snapshot_bytes = snapshot.len();
        let start = Instant::now();
        let resident = ResidentIndex::load(snapshot).expect("snapshot loads");
        let load_time = start.elapsed();
        let start = Instant::now();
        let built = merged.records().expect("build succeeds");
        let build_time = start.elapsed();
        let s = &built.summary;
        let bucket_bytes: usize = built
            .records
            .iter()
            .filter(|(k, _)| k.starts_with("hg1/mih/"))
            .map(|(_, v)| v.len())
            .sum();
        text_bytes_per_entry = bucket_bytes as f64 / (16.0 * n as f64);

        println!("\n## N = {n} random PDQ hashes, one list, no ids\n");
        println!(
            "build {:.2} s; {} KV keys, {} ({:.0} bytes per hash, {:.1} text bytes per bucket entry); largest value {} bytes",
            build_time.as_secs_f64(),
            s.keys,
            mb(s.bytes as f64),
            s.bytes as f64 / n as f64,
            text_bytes_per_entry,
            s.largest_value.0
        );
        println!(
            "resident: snapshot {} ({:.1} bytes per hash) built in {:.2} s; loaded (checksum, tables) in {:.0} ms; {} in memory ({:.1} bytes per hash)",
            mb(snapshot_bytes as f64),
            snapshot_bytes as f64 / n as f64,
            snapshot_time.as_secs_f64(),
            load_time.as_secs_f64() * 1e3,
            mb(resident.memory_bytes() as f64),
            resident.memory_bytes() as f64 / n as f64
        );
        println!();
        println!("| query | keys | bulk reads | bytes read | match CPU mean | p99 | resident mean | p99 | buckets / resident | brute-force scan | scan / match | matches |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut rows = Vec::new();
        for t in THRESHOLDS {
            rows.push(measure(
                format!("T = {t}"),
                &hashes,
                &built.records,
                &resident,
                t,
                1,
                &mut rng,
            ));
        }
        rows.push(measure(
            "T = 31, 8 dihedral".into(),
            &hashes,
            &built.records,
            &resident,
            31,
            8,
            &mut rng,
        ));
        rows.push(measure(
            "T = 10, 8 dihedral".into(),
            &hashes,
            &built.records,
            &resident,
            10,
            8,
            &mut rng,
        ));
        for r in &rows {
            println!(
                "| {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.1}x | {} | {:.0}x | {} |",
                r.label,
                r.keys,
                r.batches,
                mb(r.bytes),
                ms(r.cpu_mean),
                ms(r.cpu_p99),
                ms(r.resident_mean),
                ms(r.resident_p99),
                r.cpu_mean.as_secs_f64() / r.resident_mean.as_secs_f64(),
                ms(r.scan_mean),
                r.scan_mean.as_secs_f64() / r.cpu_mean.as_secs_f64(),
                r.matches
            );
        }
        let t31 = &rows[0];
        t31_points.push((
            t31.bytes / text_bytes_per_entry,
            t31.cpu_mean.as_secs_f64() * 1e9,
        ));
        scan_ns_per_hash = t31.scan_mean.as_secs_f64() * 1e9 / n as f64;

        println!("\nAlternative layouts at T = 31 on the same hashes (entries read x {text_bytes_per_entry:.1} bytes):\n");
        println!("| layout | keys | entries read | bytes read |");
        println!("|---|---|---|---|");
        for (name, keys, entries) in alternative_layouts(&hashes, &mut rng) {
            println!(
                "| {name} | {keys:.0} | {entries:.0} | {} |",
                mb(entries * text_bytes_per_entry)
            );
        }
    }

    // Match CPU = fixed (planning, per-key work) + per entry scanned, fitted
    // on the two largest runs.
    let (fixed_ns, per_entry_ns) = match t31_points.as_slice() {
        [.., (e1, c1), (e2, c2)] if e2 > e1 => {
            let slope = ((c2 - c1) / (e2 - e1)).max(0.0);
            (c2 - slope * e2, slope)
        }
        [.., (e, c)] => (0.0, c / e.max(1.0)),
        [] => (0.0, 0.0),
    };
    let n = 1e7;
    let keys_total = (16.0 * 65_536.0f64).min(16.0 * n);
    let per_bucket = n / 65_536.0;
    println!("\n## N = 10^7, computed from the largest run above\n");
    println!(
        "KV: about {keys_total:.0} bucket keys, {} of values; average bucket {per_bucket:.0} entries ({:.1} KB)",
        mb(16.0 * n * text_bytes_per_entry),
        per_bucket * text_bytes_per_entry / 1e3
    );
    println!(
        "match CPU model: {:.1} us fixed + {per_entry_ns:.1} ns per bucket entry scanned\n",
        fixed_ns / 1e3
    );
    println!("| query | keys | bulk reads | bytes read | match CPU | brute-force scan |");
    println!("|---|---|---|---|---|---|");
    for t in THRESHOLDS {
        let keys = layout::pdq_keys_for_threshold(t).unwrap_or(0) as f64 + 1.0;
        let entries = (keys - 1.0) * per_bucket;
        println!(
            "| T = {t} | {keys:.0} | {:.0} | {} | {:.3} ms | {:.1} ms |",
            (keys / 100.0).ceil(),
            mb(entries * text_bytes_per_entry),
            (fixed_ns * keys / 273.0 + entries * per_entry_ns) / 1e6,
            n * scan_ns_per_hash / 1e6
        );
    }
}
