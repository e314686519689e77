//! A list name the index does not hold (`--lists dmeo` for `demo`) is an
//! error that names the lists it has: exit status 2 for `match`, `scan`
//! and `serve`, 400 `unknown_list` for a request's `lists`. Before, such a
//! filter silently matched nothing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hashgate_testkit::http::{demo_index, fixture, hashgate, Server, CHELSEA_PDQ};

fn assert_refused(output: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
    assert!(
        stderr.contains("unknown list \"dmeo\"") && stderr.contains("\"demo\""),
        "{what}: {stderr}"
    );
}

#[test]
fn match_and_scan_refuse_an_unknown_list_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let index = index.to_str().unwrap();
    let chelsea = fixture("photos/chelsea.jpg");
    let chelsea = chelsea.to_str().unwrap();

    let known = hashgate(
        &["match", "--index", index, "--lists", "demo", chelsea],
        None,
    );
    assert!(known.status.success());
    assert!(String::from_utf8_lossy(&known.stdout).contains("\"list\":\"demo\""));

    for lists in ["dmeo", "demo,dmeo"] {
        let output = hashgate(
            &["match", "--index", index, "--lists", lists, chelsea],
            None,
        );
        assert_refused(&output, &format!("match --lists {lists}"));
        let output = hashgate(
            &[
                "match",
                "--index",
                index,
                "--lists",
                lists,
                "--pdq",
                CHELSEA_PDQ,
            ],
            None,
        );
        assert_refused(&output, &format!("match --pdq --lists {lists}"));
        let output = hashgate(
            &[
                "scan",
                "--no-progress",
                "--index",
                index,
                "--lists",
                lists,
                chelsea,
            ],
            None,
        );
        assert_refused(&output, &format!("scan --lists {lists}"));
    }
}

#[test]
fn serve_refuses_to_start_with_an_unknown_list() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--lists",
            "dmeo",
            "--index",
        ])
        .arg(&index)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with --lists dmeo");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_refused(&child.wait_with_output().unwrap(), "serve --lists dmeo");
}

#[test]
fn a_request_naming_an_unknown_list_gets_400_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let server = Server::start(&index, &[]);
    let chelsea = hashgate_testkit::http::read_fixture("photos/chelsea.jpg");

    let known = server.get(&format!("/v1/match?pdq={CHELSEA_PDQ}&lists=demo"));
    assert_eq!(known.status, 200, "{}", known.text());
    assert_eq!(known.json()["matches"][0]["list"], "demo");

    for lists in ["dmeo", "demo,dmeo", "demo%2Cdmeo"] {
        let reply = server.get(&format!("/v1/match?pdq={CHELSEA_PDQ}&lists={lists}"));
        reply.assert_error(400, "unknown_list");
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(
            message.contains("\"dmeo\"") && message.contains("\"demo\""),
            "{message}"
        );
        server
            .post(&format!("/v1/match?lists={lists}"), &chelsea)
            .assert_error(400, "unknown_list");
    }
    // The server keeps answering.
    assert_eq!(server.post("/v1/match", &chelsea).status, 200);
}
