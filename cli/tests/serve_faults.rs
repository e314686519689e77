//! Faults at the service: `hashgate serve` under a bounded loopback load
//! while, at the same time, slow-loris clients hold connections, the
//! admission limit is overrun, and the index file is broken in the ways a
//! crashed or careless writer breaks it, then replaced.
//!
//! The faults run together on purpose: each one alone is covered in
//! `serve.rs`, but what matters in production is that none of them starves
//! or corrupts the others. The test asserts invariants, not timings:
//!
//! * every answer to a normal client is a correct 200 (the JSON `hashgate
//!   match` prints against the old index, or the new one once it loaded,
//!   never going back) or a 503 with `Retry-After`; no request hangs past a
//!   client deadline, none is refused or reset;
//! * every slow-loris connection (a head or a body sent a byte at a time,
//!   or nothing sent at all) is cut off (408 or closed) within a bound
//!   derived from `--timeout`, and `/healthz` keeps answering, also when
//!   silent clients hold every connection;
//! * each broken index file counts one failed reload and changes no answer;
//! * long unfinished request heads on every connection hold little memory,
//!   the server's peak resident memory stays under a bound derived from its
//!   limits, and the server is still up and idle at the end.
//!
//! Bounds carry wide margins (the machine may be loaded), and the run prints
//! one summary line with the counts:
//! `cargo test -p hashgate-cli --test serve_faults -- --nocapture`.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hashgate_testkit::http::*;
use serde_json::Value;

/// The server's limits for this run: small, so that they are reached.
const TIMEOUT: Duration = Duration::from_secs(2);
const WORKERS: usize = 2;
const MAX_INFLIGHT: usize = 4;
const MAX_CONNECTIONS: usize = 48;
const MAX_BODY: usize = 1 << 20;
const RELOAD_INTERVAL: &str = "100ms";

const RELOAD_ERRORS: &str = "hashgate_index_reloads_total{result=\"error\"}";
const RELOAD_OKS: &str = "hashgate_index_reloads_total{result=\"ok\"}";

/// What a connection may hold in the server before its request is
/// admitted: its 64 KiB read buffer cap, which the buffer's growth may
/// round up to twice that.
const PER_CONNECTION: u64 = 128 << 10;
/// The size of the request heads sent to test it.
const BIG_HEAD: usize = 384 << 10;

/// Normal clients, each cycling through every request case.
const LOAD_CLIENTS: usize = 6;
/// Slow-loris clients of each kind, reconnecting after each cut-off.
/// Together they hold all but two of the connections the server takes, so
/// that the normal clients keep reaching the connection limit. (Holding
/// every connection is checked on its own at the end.)
const HEADER_DRIPS: usize = 10;
const BODY_DRIPS: usize = 3;
const IDLE_CONNECTIONS: usize = MAX_CONNECTIONS - 2 - HEADER_DRIPS - BODY_DRIPS;
/// Pause between the bytes a slow-loris client sends.
const DRIP: Duration = Duration::from_millis(100);

/// Longest any normal request may take, from connect to the last byte.
const CLIENT_DEADLINE: Duration = Duration::from_secs(10);
/// Longest a slow-loris connection may live: a connection may first wait
/// in the accept backlog while the others hold every connection slot (up to
/// one timeout), then gets its own timeout; plus a wide margin.
fn cut_off_bound() -> Duration {
    TIMEOUT * 2 + Duration::from_secs(3)
}
/// Longest a health check may take: the same wait for a connection slot.
fn health_bound() -> Duration {
    TIMEOUT + Duration::from_secs(3)
}

/// One request a normal client sends, with the answers it may get.
struct Case {
    name: String,
    method: &'static str,
    path: String,
    body: Option<Arc<Vec<u8>>>,
    /// `hashgate match` against the index the server starts with...
    old: Value,
    /// ...and against the one that replaces it.
    new: Value,
}

/// What everyone running at once writes down.
#[derive(Default)]
struct Tally {
    sent: u64,
    statuses: BTreeMap<u16, u64>,
    overloaded_503: u64,
    timeout_503: u64,
    old_answers: u64,
    new_answers: u64,
    /// Slow-loris connections cut off, by kind, with the time each lived.
    cut_off: BTreeMap<&'static str, Vec<Duration>>,
    /// What slow-loris connections got before closing, by status (0: none).
    cut_off_statuses: BTreeMap<u16, u64>,
    health_checks: u64,
    health_worst: Duration,
    failures: Vec<String>,
}

struct Shared {
    addr: SocketAddr,
    stop: AtomicBool,
    tally: Mutex<Tally>,
    /// When the server was seen serving the new index (set once).
    new_loaded_at: Mutex<Option<Instant>>,
}

impl Shared {
    fn fail(&self, message: String) {
        let mut tally = self.tally.lock().unwrap();
        if tally.failures.len() < 50 {
            tally.failures.push(message);
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// `hashgate match` output for one case against `index`, as the service
/// names it.
fn oracle(index: &Path, args: &[&str]) -> Value {
    let mut all = vec!["match", "--index", index.to_str().unwrap()];
    all.extend(args);
    let output = hashgate(&all, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The cases: every fixture photo posted, one photo padded to the body
/// limit (so that bodies in flight take the memory the limit allows), and
/// two hashes looked up.
fn cases(old: &Path, new: &Path, scratch: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut padded = read_fixture("photos/hubble.jpg");
    padded.resize(MAX_BODY, 0);
    let padded_path = scratch.join("hubble-padded.jpg");
    std::fs::write(&padded_path, &padded).unwrap();
    let photos = [
        "chelsea.jpg",
        "coffee.jpg",
        "rocket.jpg",
        "astronaut.jpg",
        "camera.jpg",
        "hubble.jpg",
    ]
    .map(|photo| (photo, fixture(&format!("photos/{photo}"))));
    for (photo, path) in photos
        .into_iter()
        .chain([("hubble.jpg padded to --max-body", padded_path)])
    {
        let path = path.to_str().unwrap();
        let answer = |index| {
            let mut value = oracle(index, &[path]);
            value["query"] = "-".into();
            value
        };
        cases.push(Case {
            name: format!("POST {photo}"),
            method: "POST",
            path: "/v1/match".into(),
            body: Some(Arc::new(std::fs::read(path).unwrap())),
            old: answer(old),
            new: answer(new),
        });
    }
    for (kind, hash) in [("pdq", CHELSEA_PDQ), ("sha256", ROCKET_SHA256)] {
        let flag = format!("--{kind}");
        cases.push(Case {
            name: format!("GET {kind}"),
            method: "GET",
            path: format!("/v1/match?{kind}={hash}"),
            body: None,
            old: oracle(old, &[&flag, hash]),
            new: oracle(new, &[&flag, hash]),
        });
    }
    cases
}

/// Reads until the server closes, or fails past `deadline`.
fn read_to_close(
    stream: &mut TcpStream,
    raw: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), String> {
    let mut buf = [0u8; 16 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no complete answer within {CLIENT_DEADLINE:?}"));
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
}

/// Where the first head in `raw` ends, if it is all there.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// One request as a well-behaved client sends it: a body only after
/// `100 Continue` (so a refusal is read instead of reset), the whole
/// exchange under [`CLIENT_DEADLINE`].
fn exchange(addr: SocketAddr, case: &Case) -> Result<Reply, String> {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let mut stream = TcpStream::connect_timeout(&addr, CLIENT_DEADLINE)
        .map_err(|e| format!("connecting: {e}"))?;
    stream.set_write_timeout(Some(CLIENT_DEADLINE)).unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n",
        case.method, case.path
    );
    if let Some(body) = &case.body {
        head.push_str(&format!(
            "Content-Length: {}\r\nExpect: 100-continue\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending the head: {e}"))?;
    let mut raw = Vec::new();
    if let Some(body) = &case.body {
        // Wait for the interim answer or the final one.
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(end) = head_end(&raw) {
                break end;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no 100 Continue or answer in time".into());
            }
            stream.set_read_timeout(Some(left)).unwrap();
            match stream.read(&mut buf) {
                Ok(0) => return Err(format!("closed before any answer ({} bytes)", raw.len())),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("waiting for 100 Continue: {e}")),
            }
        };
        if raw.starts_with(b"HTTP/1.1 100") {
            raw.drain(..end);
            stream
                .write_all(body)
                .map_err(|e| format!("sending the body: {e}"))?;
        }
    }
    read_to_close(&mut stream, &mut raw, deadline)?;
    if head_end(&raw).is_none() {
        return Err(format!("closed after {} bytes of answer", raw.len()));
    }
    Ok(Reply::parse(&raw))
}

/// A normal client: cycles through the cases until told to stop, checking
/// every answer.
fn load_client(shared: Arc<Shared>, cases: Arc<Vec<Case>>, first: usize) {
    // Once this client saw the new index, the old one must not come back.
    let mut saw_new = false;
    let mut i = first;
    while shared.running() {
        let case = &cases[i % cases.len()];
        i += 1;
        let started = Instant::now();
        let result = exchange(shared.addr, case);
        let took = started.elapsed();
        shared.tally.lock().unwrap().sent += 1;
        let reply = match result {
            Ok(reply) => reply,
            Err(error) => {
                shared.fail(format!("{}: {error} after {took:?}", case.name));
                continue;
            }
        };
        let mut tally = shared.tally.lock().unwrap();
        *tally.statuses.entry(reply.status).or_default() += 1;
        match reply.status {
            200 => {
                let body: Value = match serde_json::from_slice(&reply.body) {
                    Ok(body) => body,
                    Err(e) => {
                        drop(tally);
                        shared.fail(format!("{}: 200 that is not JSON: {e}", case.name));
                        continue;
                    }
                };
                let new_since = *shared.new_loaded_at.lock().unwrap();
                if body == case.new && body != case.old {
                    saw_new = true;
                    tally.new_answers += 1;
                } else if body == case.old {
                    tally.old_answers += 1;
                    drop(tally);
                    if saw_new && case.old != case.new {
                        shared.fail(format!("{}: the old index answered again", case.name));
                    }
                    if new_since.is_some_and(|at| at < started) && case.old != case.new {
                        shared.fail(format!(
                            "{}: old answer after the new index was serving",
                            case.name
                        ));
                    }
                } else {
                    drop(tally);
                    shared.fail(format!(
                        "{}: wrong verdict {body}\n  old index: {}\n  new index: {}",
                        case.name, case.old, case.new
                    ));
                }
            }
            503 => {
                let kind = reply.json()["kind"].as_str().unwrap_or_default().to_owned();
                match kind.as_str() {
                    "overloaded" => tally.overloaded_503 += 1,
                    "timeout" => tally.timeout_503 += 1,
                    _ => {}
                }
                drop(tally);
                if reply.header("retry-after") != Some("1") || kind.is_empty() {
                    shared.fail(format!("{}: 503 {kind:?} without Retry-After", case.name));
                }
                // Back off briefly (less than Retry-After, to keep the
                // pressure on).
                std::thread::sleep(Duration::from_millis(20));
            }
            status => {
                drop(tally);
                shared.fail(format!("{}: {status} {}", case.name, reply.text()));
            }
        }
    }
}

/// How a slow-loris connection misbehaves.
#[derive(Clone, Copy)]
enum Loris {
    /// Sends a request head one byte at a time, never finishing it.
    Header,
    /// Sends a complete head, then its body one byte at a time.
    Body,
    /// Connects and sends nothing.
    Idle,
}

impl Loris {
    fn name(self) -> &'static str {
        match self {
            Loris::Header => "header",
            Loris::Body => "body",
            Loris::Idle => "idle",
        }
    }
}

/// One slow-loris connection, until the server cuts it off: returns how
/// long it lived and the status it was answered with (0: closed without an
/// answer).
fn slow_loris(addr: SocketAddr, kind: Loris, image: &[u8]) -> Result<(Duration, u16), String> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
    stream.set_read_timeout(Some(DRIP)).unwrap();
    let mut drip: Vec<u8> = match kind {
        Loris::Header => b"POST /v1/match HTTP/1.1\r\nHost: test\r\nX-Padding: ".to_vec(),
        Loris::Body => {
            let head = format!(
                "POST /v1/match HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
                image.len()
            );
            stream
                .write_all(head.as_bytes())
                .map_err(|e| format!("sending the head: {e}"))?;
            image.to_vec()
        }
        Loris::Idle => Vec::new(),
    };
    drip.reverse();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if start.elapsed() > cut_off_bound() {
            return Err(format!("still open after {:?}", start.elapsed()));
        }
        if !matches!(kind, Loris::Idle) {
            // A header never ends: pad it with more of the same.
            let byte = drip.pop().unwrap_or(b'a');
            if stream.write_all(&[byte]).is_err() {
                // Reset: the server closed the connection.
                break;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let lived = start.elapsed();
    let status = if head_end(&raw).is_some() {
        Reply::parse(&raw).status
    } else {
        0
    };
    Ok((lived, status))
}

fn loris_client(shared: Arc<Shared>, kind: Loris, image: Arc<Vec<u8>>) {
    while shared.running() {
        match slow_loris(shared.addr, kind, &image) {
            Ok((lived, status)) => {
                let mut tally = shared.tally.lock().unwrap();
                tally.cut_off.entry(kind.name()).or_default().push(lived);
                *tally.cut_off_statuses.entry(status).or_default() += 1;
                // A cut-off is a close or a timeout; a slow body may also
                // be turned away at once when every slot is taken.
                drop(tally);
                if ![0, 408, 503].contains(&status) {
                    shared.fail(format!("slow-loris {}: answered {status}", kind.name()));
                }
                if status == 503 {
                    std::thread::sleep(DRIP);
                }
            }
            Err(error) => shared.fail(format!("slow-loris {}: {error}", kind.name())),
        }
    }
}

fn health_checker(shared: Arc<Shared>) {
    let case = Case {
        name: "GET /healthz".into(),
        method: "GET",
        path: "/healthz".into(),
        body: None,
        old: Value::Null,
        new: Value::Null,
    };
    while shared.running() {
        let start = Instant::now();
        let result = exchange(shared.addr, &case);
        let took = start.elapsed();
        {
            let mut tally = shared.tally.lock().unwrap();
            tally.health_checks += 1;
            tally.health_worst = tally.health_worst.max(took);
        }
        match result {
            Ok(reply) if reply.status == 200 && reply.json()["status"] == "ok" => {}
            Ok(reply) => shared.fail(format!("healthz: {} {}", reply.status, reply.text())),
            Err(error) => shared.fail(format!("healthz: {error}")),
        }
        if took > health_bound() {
            shared.fail(format!("healthz took {took:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A field of `/proc/PID/status`, in bytes (the kernel gives kB).
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let kib: u64 = line
            .strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    })
}

/// Samples the server's resident memory until told to stop; returns the
/// peak (the kernel's high-water mark, which also catches spikes between
/// samples).
fn memory_sampler(shared: Arc<Shared>, pid: u32) -> u64 {
    let mut peak = 0;
    while shared.running() {
        for field in ["VmRSS", "VmHWM"] {
            peak = peak.max(proc_status(pid, field).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    peak.max(proc_status(pid, "VmHWM").unwrap_or(0))
}

/// Every connection sends a large request head and stalls: what the server
/// buffers per connection must stay within its allowance. Returns the
/// growth of resident memory and its bound.
fn large_heads_on_every_connection(server: &Server, baseline: u64) -> (u64, u64) {
    let big_heads: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            // One long header line: many short ones would pass the header
            // count limit first.
            let mut head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: ".to_vec();
            head.resize(BIG_HEAD, b'a');
            // The server may refuse the head and close before it is all sent.
            let _ = stream.write_all(&head);
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let rss = proc_status(server.pid(), "VmRSS").unwrap();
    drop(big_heads);
    (
        rss.saturating_sub(baseline),
        MAX_CONNECTIONS as u64 * PER_CONNECTION + (4 << 20),
    )
}

/// Breaks the records file in each way a crashed or careless writer can,
/// one after the other: each must count one failed reload and leave the old
/// index answering. Then writes the new index whole, and marks when it was
/// seen loaded. Returns the number of faults.
fn break_then_replace_the_index(
    server: &Server,
    shared: &Shared,
    records_file: &Path,
    next_file: &[u8],
) -> usize {
    let middle = next_file.len() / 2;
    let mut huge_length = b"HGSNAP2\n".to_vec();
    huge_length.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_length.extend_from_slice(b"a list table that is much shorter than it claims");
    let mut one_byte_changed = next_file.to_vec();
    one_byte_changed[middle] ^= 0x01;
    let faults: [(&str, Option<Vec<u8>>); 7] = [
        ("truncated to nothing", Some(Vec::new())),
        ("garbage", Some(b"\x89PNG not an index at all".repeat(100))),
        ("a list table claiming 4 G entries", Some(huge_length)),
        ("removed", None),
        ("cut in the middle", Some(next_file[..middle].to_vec())),
        (
            "cut before its checksum",
            Some(next_file[..next_file.len() - 32].to_vec()),
        ),
        ("one byte changed", Some(one_byte_changed)),
    ];
    for (n, (fault, content)) in faults.iter().enumerate() {
        match content {
            Some(bytes) => std::fs::write(records_file, bytes).unwrap(),
            None => std::fs::remove_file(records_file).unwrap(),
        }
        let expected = Some(n as f64 + 1.0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.metric(RELOAD_ERRORS) != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (errors, oks) = (server.metric(RELOAD_ERRORS), server.metric(RELOAD_OKS));
        if errors != expected || oks != Some(0.0) {
            shared.fail(format!(
                "index {fault}: reloads error {errors:?} (expected {expected:?}), ok {oks:?} (expected 0)"
            ));
        }
        // Keep the broken file in place for a few polls under load.
        std::thread::sleep(Duration::from_millis(300));
    }
    std::fs::write(records_file, next_file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metric(RELOAD_OKS) != Some(1.0) {
        if Instant::now() > deadline {
            shared.fail("the valid new index was not loaded within 5s".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    *shared.new_loaded_at.lock().unwrap() = Some(Instant::now());
    faults.len()
}

/// Every connection held by a silent client: a new one waits in the
/// backlog until the server cuts the silent ones off, then is answered.
/// Returns how long `/healthz` took.
fn every_connection_held(server: &Server) -> Duration {
    let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let health = server.get("/healthz");
    let waited = start.elapsed();
    drop(silent);
    assert_eq!(health.status, 200);
    assert!(
        waited <= health_bound(),
        "with every connection held, /healthz took {waited:?}"
    );
    waited
}

fn spawn<F: FnOnce() + Send + 'static>(threads: &mut Vec<JoinHandle<()>>, f: F) {
    threads.push(std::thread::spawn(f));
}

#[test]
fn under_load_slow_loris_overload_and_a_broken_index_the_server_keeps_answering() {
    let run_start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let demo_list = format!("demo={}", fixture("lists/demo.csv").display());
    let extra_list = format!("extra={}", fixture("lists/demo.csv").display());
    let live = dir.path().join("live");
    build_index(&live, std::slice::from_ref(&demo_list));
    // The replacement: the same entries in a second list as well.
    let next = dir.path().join("next");
    build_index(&next, &[demo_list, extra_list]);
    let next_file = std::fs::read(next.join("index.snapshot")).unwrap();
    let records_file = live.join("index.snapshot");

    let cases = Arc::new(cases(&live, &next, dir.path()));
    assert!(
        cases.iter().any(|c| c.old != c.new),
        "the new index must change some answer"
    );
    let chelsea = Arc::clone(cases[0].body.as_ref().unwrap());

    let server = Server::start(
        &live,
        &[
            "--workers",
            &WORKERS.to_string(),
            "--max-inflight",
            &MAX_INFLIGHT.to_string(),
            "--max-connections",
            &MAX_CONNECTIONS.to_string(),
            "--max-body",
            &MAX_BODY.to_string(),
            "--timeout",
            &format!("{}ms", TIMEOUT.as_millis()),
            "--reload-interval",
            RELOAD_INTERVAL,
        ],
    );
    let pid = server.pid();
    assert_eq!(server.post("/v1/match", &chelsea).json(), cases[0].old);
    let baseline = proc_status(pid, "VmRSS").expect("/proc/PID/status has VmRSS");

    let (big_heads_growth, big_heads_bound) = large_heads_on_every_connection(&server, baseline);

    let shared = Arc::new(Shared {
        addr: server.addr,
        stop: AtomicBool::new(false),
        tally: Mutex::default(),
        new_loaded_at: Mutex::new(None),
    });
    let mut threads = Vec::new();
    let sampler = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || memory_sampler(shared, pid))
    };
    for first in 0..LOAD_CLIENTS {
        let (shared, cases) = (Arc::clone(&shared), Arc::clone(&cases));
        spawn(&mut threads, move || load_client(shared, cases, first));
    }
    let shared_ = Arc::clone(&shared);
    spawn(&mut threads, move || health_checker(shared_));
    for (kind, n) in [
        (Loris::Header, HEADER_DRIPS),
        (Loris::Body, BODY_DRIPS),
        (Loris::Idle, IDLE_CONNECTIONS),
    ] {
        for _ in 0..n {
            let (shared, image) = (Arc::clone(&shared), Arc::clone(&chelsea));
            spawn(&mut threads, move || loris_client(shared, kind, image));
        }
    }

    // Meanwhile, break the index file, then replace it.
    std::thread::sleep(Duration::from_secs(1));
    let faults = break_then_replace_the_index(&server, &shared, &records_file, &next_file);
    // Let every slow-loris kind be cut off a few times, and the load see
    // the new index for a while.
    let run_until = run_start + TIMEOUT * 4 + Duration::from_secs(2);
    std::thread::sleep(
        run_until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(2)),
    );

    shared.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a client thread panicked");
    }
    let peak = sampler.join().unwrap();

    // Still up, idle, and serving the new index.
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited\n{}",
        server.log()
    );
    server.await_metric("hashgate_inflight_requests", 0.0);
    assert_eq!(server.post("/v1/match", &chelsea).json(), cases[0].new);
    let exhausted_wait = every_connection_held(&server);

    let reload_errors = server.metric(RELOAD_ERRORS).unwrap_or(-1.0);
    let reload_oks = server.metric(RELOAD_OKS).unwrap_or(-1.0);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");

    // Memory: bodies in flight (held once as chunks, once joined), one
    // decode per worker (the largest photo as RGBA), a read buffer per
    // connection, both indexes during a swap, and the resident baseline
    // plus room for the allocator and threads.
    let largest_pixels = largest_photo_pixels();
    let bodies = (MAX_INFLIGHT * MAX_BODY * 2) as u64;
    let decode = WORKERS as u64 * largest_pixels * 4;
    let connections = MAX_CONNECTIONS as u64 * PER_CONNECTION;
    let indexes = 2 * (next_file.len() as u64) * 4;
    let slack = 32 << 20;
    let bound = baseline + bodies + decode + connections + indexes + slack;

    let tally = shared.tally.lock().unwrap();
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let cut_offs: Vec<String> = tally
        .cut_off
        .iter()
        .map(|(kind, lived)| {
            let max = lived.iter().max().copied().unwrap_or_default();
            let min = lived.iter().min().copied().unwrap_or_default();
            format!(
                "{kind} {} ({:.1}-{:.1}s)",
                lived.len(),
                min.as_secs_f64(),
                max.as_secs_f64()
            )
        })
        .collect();
    let total_cut: usize = tally.cut_off.values().map(Vec::len).sum();
    println!(
        "serve_faults: {:.1}s; sent {}, answered {:?} (503 overloaded {}, 503 timeout {}; \
         verdicts old {} new {}); slow-loris cut off {total_cut}: {} (answers {:?}, bound {:?}); \
         healthz {} checks, worst {:.3}s, {:.3}s with every connection held; \
         reloads ok {reload_oks} error {reload_errors}; \
         large heads on every connection: RSS +{:.1} MiB (bound {:.1}); \
         peak RSS {:.1} MiB (baseline {:.1}, bound {:.1} = baseline + bodies {:.1} + decode {:.1} \
         + connections {:.1} + indexes {:.1} + slack {:.1})",
        run_start.elapsed().as_secs_f64(),
        tally.sent,
        tally.statuses,
        tally.overloaded_503,
        tally.timeout_503,
        tally.old_answers,
        tally.new_answers,
        cut_offs.join(", "),
        tally.cut_off_statuses,
        cut_off_bound(),
        tally.health_checks,
        tally.health_worst.as_secs_f64(),
        exhausted_wait.as_secs_f64(),
        mib(big_heads_growth),
        mib(big_heads_bound),
        mib(peak),
        mib(baseline),
        mib(bound),
        mib(bodies),
        mib(decode),
        mib(connections),
        mib(indexes),
        mib(slack),
    );

    assert!(
        tally.failures.is_empty(),
        "{} failures:\n{}\n--- server log ---\n{log}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    assert!(
        tally.statuses.get(&200).copied().unwrap_or(0) >= 20,
        "too few answered"
    );
    assert!(
        tally.overloaded_503 > 0,
        "the admission limit was never reached"
    );
    assert!(tally.new_answers > 0, "no answer from the new index");
    for kind in [Loris::Header, Loris::Body, Loris::Idle] {
        assert!(
            tally
                .cut_off
                .get(kind.name())
                .is_some_and(|l| !l.is_empty()),
            "no {} slow-loris connection was cut off",
            kind.name()
        );
    }
    assert!(tally.health_checks > 0);
    assert_eq!(reload_errors, faults as f64);
    assert_eq!(reload_oks, 1.0);
    assert!(
        big_heads_growth <= big_heads_bound,
        "large request heads on {MAX_CONNECTIONS} connections grew RSS by {:.1} MiB (bound {:.1} MiB)",
        mib(big_heads_growth),
        mib(big_heads_bound)
    );
    assert!(
        peak <= bound,
        "peak RSS {:.1} MiB over the bound {:.1} MiB",
        mib(peak),
        mib(bound)
    );
}

/// Width x height of the largest fixture photo, from `hashgate hash`.
fn largest_photo_pixels() -> u64 {
    let dir = fixture("photos");
    let mut largest = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let output = hashgate(&["hash", path.to_str().unwrap()], None);
        let line: Value = serde_json::from_slice(&output.stdout).unwrap();
        let pixels = line["width"].as_u64().unwrap() * line["height"].as_u64().unwrap();
        largest = largest.max(pixels);
    }
    largest
}
