//! `hashgate serve`, run as the real binary on a free loopback port and
//! talked to over HTTP/1.1 with a plain TCP client (in the `hashgate-testkit` crate, shared
//! with `serve_faults.rs`), so a test can also send half a body, stall, or
//! lie about lengths.
//!
//! Every server is started with `--listen 127.0.0.1:0` and announces the
//! port it got on standard error; every server is killed when its test ends.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hashgate_testkit::http::*;
use serde_json::Value;

#[test]
fn hash_and_match_answers_are_the_cli_output() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &[]);
    let photos = ["chelsea.jpg", "rocket.jpg", "coffee.jpg", "astronaut.jpg"];

    for photo in photos {
        let bytes = read_fixture(&format!("photos/{photo}"));
        // POST /v1/hash is `hashgate hash -`, byte for byte.
        for (query, flags) in [("", &[][..]), ("?dihedral=true", &["--dihedral"][..])] {
            let reply = server.post(&format!("/v1/hash{query}"), &bytes);
            assert_eq!(reply.status, 200, "{}", reply.text());
            assert_eq!(reply.header("content-type"), Some("application/json"));
            let mut args = vec!["hash"];
            args.extend(flags);
            args.push("-");
            let cli = hashgate(&args, Some(&bytes));
            assert!(cli.status.success());
            assert_eq!(
                reply.text(),
                String::from_utf8_lossy(&cli.stdout),
                "{photo}{query}"
            );
        }

        // POST /v1/match is `hashgate match FILE`, named `-`.
        let path = fixture(&format!("photos/{photo}"));
        let cli = hashgate(
            &[
                "match",
                "--index",
                index.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        let mut expected: Value = serde_json::from_slice(&cli.stdout).unwrap();
        expected["query"] = "-".into();
        let reply = server.post("/v1/match", &bytes);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json(), expected, "{photo}");
    }

    // The demo list's two entries are found, one by PDQ, one by SHA-256.
    let chelsea = server
        .post("/v1/match", &read_fixture("photos/chelsea.jpg"))
        .json();
    assert_eq!(chelsea["matches"][0]["id"], "demo-chelsea");
    assert_eq!(chelsea["matches"][0]["variant"], "orig");
    let rocket = server
        .post("/v1/match?variants=own", &read_fixture("photos/rocket.jpg"))
        .json();
    assert_eq!(rocket["matches"][0]["id"], "demo-rocket-exact");
    assert_eq!(
        server
            .post("/v1/match", &read_fixture("photos/coffee.jpg"))
            .json()["matches"],
        serde_json::json!([])
    );

    // GET /v1/match?KIND=HEX is `hashgate match --KIND HEX`.
    for (kind, hash, threshold) in [
        ("pdq", CHELSEA_PDQ, "31"),
        ("sha256", ROCKET_SHA256, "31"),
        ("pdq", CHELSEA_PDQ, "0"),
    ] {
        let cli = hashgate(
            &[
                "match",
                "--index",
                index.to_str().unwrap(),
                "--threshold",
                threshold,
                &format!("--{kind}"),
                hash,
            ],
            None,
        );
        let reply = server.get(&format!("/v1/match?{kind}={hash}&threshold={threshold}"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), String::from_utf8_lossy(&cli.stdout));
    }
    // Lists filter: the demo entries are in list `demo` only, and a list
    // the index does not hold is refused rather than matching nothing.
    let demo = server
        .get(&format!("/v1/match?pdq={CHELSEA_PDQ}&lists=demo"))
        .json();
    assert_eq!(demo["matches"][0]["list"], "demo");
    let other = server.get(&format!("/v1/match?pdq={CHELSEA_PDQ}&lists=ncmec"));
    other.assert_error(400, "unknown_list");
    let message = other.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("\"demo\""), "{message}");

    let metrics = server.get("/metrics");
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text();
    for sample in [
        "hashgate_requests_total{endpoint=\"/v1/hash\",code=\"200\"} 8",
        "hashgate_matches_total{list=\"demo\",type=\"pdq\"} ",
        "hashgate_hash_duration_seconds_count ",
        "hashgate_index_records 2",
        "hashgate_index_hashes{type=\"pdq\"} 1",
    ] {
        assert!(text.contains(sample), "{sample} missing from\n{text}");
    }
}

#[test]
fn bad_input_gets_a_json_4xx_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &["--max-body", "200K"]);

    // The fixture manifest's error cases.
    let manifest: Value = serde_json::from_slice(&read_fixture("manifest.json")).unwrap();
    let mut cases = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let Some(error) = case["error"].as_str() else {
            continue;
        };
        let (status, kind) = match error {
            "empty" => (400, "empty"),
            "unsupported" => (415, "unsupported_format"),
            "truncated" => (422, "truncated"),
            "dimensions" => (422, "dimensions_too_large"),
            other => panic!("manifest error {other:?} has no expected answer here"),
        };
        let bytes = read_fixture(case["file"].as_str().unwrap());
        for path in ["/v1/hash", "/v1/match"] {
            server.post(path, &bytes).assert_error(status, kind);
        }
        cases += 1;
    }
    assert_eq!(cases, 5);

    // Oversize body: refused by its declared length without reading it...
    let mut stream = connect(server.addr);
    send_head(&mut stream, "POST", "/v1/hash", &[], 10 << 20);
    read_reply(stream).assert_error(413, "body_too_large");
    // ...or, when chunked, once it passes the limit (only a little more is
    // sent, so the server has read everything when it answers and closes).
    let mut stream = connect(server.addr);
    send_head(
        &mut stream,
        "POST",
        "/v1/hash",
        &[("Transfer-Encoding", "chunked")],
        0,
    );
    stream
        .write_all(format!("{:x}\r\n", 1 << 20).as_bytes())
        .unwrap();
    stream.write_all(&vec![0xFFu8; (200 << 10) + 100]).unwrap();
    read_reply(stream).assert_error(413, "body_too_large");

    // Bad hash text and bad parameters.
    server
        .get("/v1/match?pdq=xyz")
        .assert_error(400, "bad_hash");
    server
        .get(&format!("/v1/match?pdq={}", &CHELSEA_PDQ[1..]))
        .assert_error(400, "bad_hash");
    server
        .get("/v1/match?sha256=00")
        .assert_error(400, "bad_hash");
    server.get("/v1/match").assert_error(400, "bad_query");
    server
        .get(&format!(
            "/v1/match?pdq={CHELSEA_PDQ}&sha256={ROCKET_SHA256}"
        ))
        .assert_error(400, "bad_query");
    server
        .get(&format!("/v1/match?pdq={CHELSEA_PDQ}&threshold=32"))
        .assert_error(400, "bad_query");
    server
        .post("/v1/hash?dihedal=true", b"x")
        .assert_error(400, "bad_query");
    server
        .post("/v1/hash?dihedral=maybe", b"x")
        .assert_error(400, "bad_query");
    server.get("/nothing-here").assert_error(404, "not_found");
    server
        .get("/v1/hash")
        .assert_error(405, "method_not_allowed");
    request(server.addr, "DELETE", "/v1/match", &[], b"").assert_error(405, "method_not_allowed");

    // Still up, still right.
    assert_eq!(server.get("/healthz").json()["status"], "ok");
    let reply = server.post("/v1/hash", &read_fixture("photos/chelsea.jpg"));
    assert_eq!(reply.json()["pdq"], CHELSEA_PDQ);
    assert_eq!(
        server.metric("hashgate_errors_total{kind=\"truncated\"}"),
        Some(4.0)
    );
    assert_eq!(
        server.metric("hashgate_errors_total{kind=\"body_too_large\"}"),
        Some(2.0)
    );
}

#[test]
fn saturation_answers_503_at_once_instead_of_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &["--max-inflight", "2", "--workers", "1"]);
    let image = read_fixture("photos/chelsea.jpg");

    // Two requests take both slots and stall halfway through their bodies.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(server.addr);
        send_head(&mut stream, "POST", "/v1/hash", &[], image.len());
        stream.write_all(&image[..100]).unwrap();
        stalled.push(stream);
    }
    server.await_metric("hashgate_inflight_requests", 2.0);

    // The third is turned away at once, with a hint when to retry. (Its
    // body is not sent: answered unread, it could reset the connection.)
    let start = Instant::now();
    let mut third = connect(server.addr);
    send_head(&mut third, "POST", "/v1/hash", &[], image.len());
    let reply = read_reply(third);
    reply.assert_error(503, "overloaded");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    // Health checks are not admission-limited.
    assert_eq!(server.get("/healthz").status, 200);

    // The stalled ones finish normally, and the slots come back.
    for mut stream in stalled {
        stream.write_all(&image[100..]).unwrap();
        let reply = read_reply(stream);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["pdq"], CHELSEA_PDQ);
    }
    server.await_metric("hashgate_inflight_requests", 0.0);
    assert_eq!(server.post("/v1/hash", &image).status, 200);
    assert_eq!(
        server.metric("hashgate_errors_total{kind=\"overloaded\"}"),
        Some(1.0)
    );
}

#[test]
fn a_body_that_stalls_past_the_deadline_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &["--timeout", "300ms"]);
    let mut stream = connect(server.addr);
    send_head(&mut stream, "POST", "/v1/hash", &[], 1000);
    stream.write_all(b"\xFF\xD8\xFF").unwrap();
    read_reply(stream).assert_error(408, "timeout");
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_request_head_over_64_kib_gets_431() {
    // A connection buffers at most 64 KiB of a head, so that clients
    // holding every connection with long unfinished heads cannot hold much
    // memory either.
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &[]);
    let long = "a".repeat(63 << 10);
    let reply = request(server.addr, "GET", "/healthz", &[("X-Long", &long)], b"");
    assert_eq!(reply.status, 200);
    let too_long = "a".repeat(65 << 10);
    let reply = request(
        server.addr,
        "GET",
        "/healthz",
        &[("X-Long", &too_long)],
        b"",
    );
    assert_eq!(reply.status, 431);
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn sigterm_stops_accepting_and_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let mut server = Server::start(&index, &[]);
    let image = read_fixture("photos/chelsea.jpg");

    let mut in_flight = connect(server.addr);
    send_head(&mut in_flight, "POST", "/v1/hash", &[], image.len());
    in_flight.write_all(&image[..1000]).unwrap();
    server.await_metric("hashgate_inflight_requests", 1.0);

    server.signal("TERM");
    // New connections are refused once the listener is closed...
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(server.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...while the request already in flight is answered in full.
    in_flight.write_all(&image[1000..]).unwrap();
    let reply = read_reply(in_flight);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["pdq"], CHELSEA_PDQ);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}\n{}", server.log());
    assert!(server.log().contains("drained"), "{}", server.log());
}

#[test]
fn bearer_token_guards_everything_but_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let server = Server::start(&index, &["--token-file", token_file.to_str().unwrap()]);
    let image = read_fixture("photos/chelsea.jpg");

    // Refused before the body is read: small bodies, so none is left unread.
    let reply = server.post("/v1/hash", b"x");
    reply.assert_error(401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    request(
        server.addr,
        "POST",
        "/v1/hash",
        &[("Authorization", "Bearer wrong")],
        b"x",
    )
    .assert_error(401, "unauthorized");
    request(
        server.addr,
        "POST",
        "/v1/hash",
        &[("Authorization", "Basic s3cret-token")],
        b"x",
    )
    .assert_error(401, "unauthorized");
    server.get("/metrics").assert_error(401, "unauthorized");
    server
        .get(&format!("/v1/match?pdq={CHELSEA_PDQ}"))
        .assert_error(401, "unauthorized");

    let auth = [("Authorization", "Bearer s3cret-token")];
    let reply = request(server.addr, "POST", "/v1/hash", &auth, &image);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["pdq"], CHELSEA_PDQ);
    assert_eq!(
        request(server.addr, "GET", "/metrics", &auth, b"").status,
        200
    );
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    // Checked before anything is bound.
    let output = hashgate(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--index",
            index.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--token-file"), "{stderr}");

    // A missing index stops it from starting too.
    let output = hashgate(
        &["serve", "--listen", "127.0.0.1:0", "--index", "no-such-dir"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
}

/// Asks for the PDQ hash of chelsea until the answer has `n` matches.
fn await_matches(server: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = server.get(&format!("/v1/match?pdq={CHELSEA_PDQ}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.json()["matches"].as_array().map(Vec::len) == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} matches\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn index_reloads_on_change_and_on_sighup_and_survives_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let rocket_only = dir.path().join("rocket.csv");
    std::fs::write(&rocket_only, format!("sha256,{ROCKET_SHA256},r-1\n")).unwrap();
    let rocket_list = format!("demo={}", rocket_only.display());
    let demo_list = format!("demo={}", fixture("lists/demo.csv").display());
    let extra_list = format!("extra={}", fixture("lists/demo.csv").display());

    // Polling: a rebuilt index is picked up without a restart.
    let index = dir.path().join("polled");
    build_index(&index, std::slice::from_ref(&rocket_list));
    let server = Server::start(&index, &["--reload-interval", "50ms"]);
    await_matches(&server, 0);
    build_index(&index, std::slice::from_ref(&demo_list));
    await_matches(&server, 1);

    // A corrupt file is refused; the previous index keeps answering.
    std::fs::write(index.join("index.snapshot"), b"not an index").unwrap();
    server.await_metric("hashgate_index_reloads_total{result=\"error\"}", 1.0);
    await_matches(&server, 1);
    build_index(&index, &[demo_list.clone(), extra_list.clone()]);
    await_matches(&server, 2);
    drop(server);

    // Polling off: only SIGHUP reloads.
    let index = dir.path().join("signalled");
    build_index(&index, &[rocket_list]);
    let server = Server::start(&index, &["--reload-interval", "off"]);
    build_index(&index, &[demo_list]);
    std::thread::sleep(Duration::from_millis(200));
    await_matches(&server, 0);
    server.signal("HUP");
    await_matches(&server, 1);
    // The log is read from the server's stderr by another thread, which may
    // not have the line yet when the new index already answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains("index reloaded (Signal)") && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.log().contains("index reloaded (Signal)"),
        "{}",
        server.log()
    );
}
