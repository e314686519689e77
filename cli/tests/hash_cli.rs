//! `hashgate hash` run as a user would: the real binary on fixture files.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn manifest_case(file: &str) -> Value {
    let manifest: Value =
        serde_json::from_str(include_str!("../../fixtures/manifest.json")).expect("manifest");
    manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["file"] == file)
        .cloned()
        .expect("case")
}

fn lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn prints_one_json_line_per_file_in_order() {
    let files = [
        "exact/chelsea.png",
        "formats/coffee.gif",
        "exact/rocket.png",
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .arg("hash")
        .args(files.iter().map(|f| fixture(f)))
        .output()
        .expect("runs");
    assert!(output.status.success());
    let lines = lines(&output.stdout);
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(files) {
        let case = manifest_case(file);
        assert!(line["file"].as_str().expect("file").ends_with(file));
        for key in ["width", "height", "pdq", "quality", "md5", "sha1", "sha256"] {
            assert_eq!(line[key], case[key], "{file}: {key}");
        }
        assert!(line.get("dihedral").is_none());
    }
}

#[test]
fn failing_files_get_an_error_line_and_a_failure_status() {
    let output = Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .arg("hash")
        .arg(fixture("errors/bomb-50000.png"))
        .arg(fixture("photos/chelsea.jpg"))
        .arg(fixture("does-not-exist.jpg"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let lines = lines(&output.stdout);
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["error"]
        .as_str()
        .expect("error")
        .contains("50000x50000"));
    assert_eq!(
        lines[1]["sha256"],
        manifest_case("photos/chelsea.jpg")["sha256"]
    );
    assert!(lines[2]["error"]
        .as_str()
        .expect("error")
        .contains("cannot read"));
}

#[test]
fn reads_standard_input_and_prints_dihedral_hashes() {
    let bytes = std::fs::read(fixture("exact/astronaut.png")).expect("fixture");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(["hash", "--dihedral", "--full", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success());
    let line = &lines(&output.stdout)[0];
    let case = manifest_case("exact/astronaut.png");
    assert_eq!(line["file"], "-");
    assert_eq!(line["pdq"], case["pdq"]);
    assert_eq!(line["dihedral"], case["dihedral"]);
}

/// Peak resident memory of the children waited for so far, in bytes.
fn children_max_rss() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn an_input_over_the_limit_is_refused_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    // A 2 GiB file that takes no disk: a PNG signature, then a hole.
    let path = dir.path().join("huge.png");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"\x89PNG\r\n\x1a\n").unwrap();
    file.set_len(2 << 30).unwrap();
    drop(file);
    for command in [
        vec!["hash", path.to_str().unwrap()],
        vec!["match", "--index", "unused", path.to_str().unwrap()],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_hashgate"))
            .args(&command)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?}: {text}");
        if command[0] == "hash" {
            assert!(text.contains("over the limit"), "{text}");
        }
    }
    // Both read at most the 64 MiB input limit, not 2 GiB.
    let rss = children_max_rss();
    assert!(rss < 160 << 20, "a child held {} MiB", rss >> 20);
}
