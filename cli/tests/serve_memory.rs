//! `hashgate serve` at its default limits under 200 concurrent uploads of
//! 31 MiB each (loopback): the resident memory must stay within the
//! documented bound while they run, and fall back once the service is idle.
//!
//! The bound (docs/service.md): `--max-buffered` bytes of bodies, plus one
//! decode per worker (each hashes a 1 MP photo here: a few MiB), plus 64
//! KiB per open connection, plus the resident baseline and 64 MiB of slack
//! for the allocator, threads and stacks.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashgate_testkit::http::{connect, demo_index, read_fixture, send_head, Reply, Server};

const CLIENTS: usize = 200;
const BODY: usize = 31 << 20;
const MAX_BUFFERED: u64 = 512 << 20;
const WORKERS: u64 = 2;
const MIB: f64 = 1048576.0;

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// One upload; the status, or 0 when the connection was reset before an
/// answer could be read (a refused upload still sending).
fn upload(addr: std::net::SocketAddr, body: &[u8]) -> u16 {
    let mut stream = connect(addr);
    send_head(&mut stream, "POST", "/v1/hash", &[], body.len());
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut raw);
    if raw.windows(4).any(|w| w == b"\r\n\r\n") {
        Reply::parse(&raw).status
    } else {
        0
    }
}

#[test]
fn two_hundred_concurrent_31_mib_uploads_stay_within_the_bound_and_memory_returns() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &["--workers", &WORKERS.to_string()]);
    let pid = server.pid();
    let mut body = read_fixture("photos/chelsea.jpg");
    body.resize(BODY, 0);
    let body = Arc::new(body);
    let first = server.post("/v1/hash", &body);
    assert_eq!(first.status, 200, "{}", first.text());
    std::thread::sleep(Duration::from_secs(1));
    let baseline = proc_status(pid, "VmRSS");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(proc_status(pid, "VmRSS"));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (body, statuses, addr) = (Arc::clone(&body), Arc::clone(&statuses), server.addr);
            std::thread::spawn(move || {
                let status = upload(addr, &body);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let took = started.elapsed();
    server.await_metric("hashgate_inflight_requests", 0.0);
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.join().unwrap();
    let peak = sampled.max(proc_status(pid, "VmHWM"));
    // The service trims its heaps within a second of going idle.
    std::thread::sleep(Duration::from_secs(2));
    let idle = proc_status(pid, "VmRSS");

    let connections = CLIENTS as u64 * (64 << 10);
    let decode = WORKERS * (16 << 20);
    let slack = 64 << 20;
    let bound = baseline + MAX_BUFFERED + decode + connections + slack;
    let idle_bound = baseline + (48 << 20);
    let statuses = statuses.lock().unwrap().clone();
    println!(
        "serve_memory: {CLIENTS} uploads of {} MiB in {:.1}s: answers {statuses:?} \
         (0: reset while sending); RSS baseline {:.1} MiB, peak {:.1} MiB (bound {:.1} = \
         baseline + bodies {:.0} + decode {:.0} + connections {:.1} + slack {:.0}), \
         idle {:.1} MiB (bound {:.1})",
        BODY >> 20,
        took.as_secs_f64(),
        baseline as f64 / MIB,
        peak as f64 / MIB,
        bound as f64 / MIB,
        MAX_BUFFERED as f64 / MIB,
        decode as f64 / MIB,
        connections as f64 / MIB,
        slack as f64 / MIB,
        idle as f64 / MIB,
        idle_bound as f64 / MIB,
    );
    assert!(
        statuses.get(&200).copied().unwrap_or(0) >= 10,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) + statuses.get(&0).copied().unwrap_or(0) > 0,
        "the budget was never reached: {statuses:?}"
    );
    assert!(
        peak <= bound,
        "peak RSS {:.1} MiB over the bound {:.1} MiB",
        peak as f64 / MIB,
        bound as f64 / MIB
    );
    assert!(
        idle <= idle_bound,
        "idle RSS {:.1} MiB over {:.1} MiB",
        idle as f64 / MIB,
        idle_bound as f64 / MIB
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}
