//! `hashgate scan --resume` killed with SIGKILL at random moments, again and
//! again, then run to the end: the output must be what one clean run
//! writes, as a set of lines: every file exactly once, no line cut, names
//! exact (two names that differ only in bytes that are not UTF-8 stay two
//! files, told apart by `file_base64`).
//!
//! The kill points come from a fixed seed (printed), and the loop is
//! bounded: at most `MAX_KILLS` kills, then a last run without one.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use hashgate_testkit::http::{demo_index, fixture, hashgate};
use hashgate_testkit::rng::Rng;

const MAX_KILLS: usize = 40;

/// A tree of mostly clean images and non-images under long folder names
/// (so that buffers fill between flushes), one listed image, broken ones,
/// and two files whose names are not UTF-8 and read alike.
fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("tree");
    let sources = [
        "photos/coffee.jpg",
        "photos/camera.jpg",
        "photos/astronaut.jpg",
        "formats/coffee.gif",
        "formats/coffee-lossless.webp",
        "formats/coffee-rgba.png",
        "formats/coffee.bmp",
        "errors/truncated.jpg",
        "errors/not-an-image.html",
    ];
    for folder in 0..FOLDERS {
        let sub = root.join(format!(
            "uploads-kept-for-the-scan-{folder}/year-2024/a-folder-with-a-long-name"
        ));
        std::fs::create_dir_all(&sub).unwrap();
        for (n, source) in sources.iter().enumerate() {
            let name = format!("f{n}-{}", source.rsplit('/').next().unwrap());
            std::fs::copy(fixture(source), sub.join(name)).unwrap();
        }
        for n in 0..TEXT_FILES {
            std::fs::write(sub.join(format!("notes-{n}.txt")), "plain text\n").unwrap();
        }
    }
    std::fs::copy(fixture("photos/chelsea.jpg"), root.join("listed.jpg")).unwrap();
    for bytes in [&b"odd-\xff.jpg"[..], b"odd-\xfe.jpg"] {
        let name = OsString::from_vec(bytes.to_vec());
        std::fs::copy(fixture("photos/coffee.jpg"), root.join(name)).unwrap();
    }
    root
}

const FOLDERS: usize = 20;
const TEXT_FILES: usize = 12;
const FILES: usize = FOLDERS * (9 + TEXT_FILES) + 3;

fn scan_command(index: &Path, tree: &Path, out: &Path, state: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hashgate"));
    command
        .args(["scan", "--all", "--no-progress", "-j", "2", "--index"])
        .arg(index)
        .arg("--out")
        .arg(out);
    if let Some(state) = state {
        command.arg("--resume").arg(state);
    }
    command
        .arg(tree)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn finished(output: &Output) -> bool {
    matches!(output.status.code(), Some(0 | 1))
}

/// The lines of an output file; panics on a line that is not whole JSON.
fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with(b"\n"),
        "the output ends in a cut line"
    );
    let text = String::from_utf8(text).expect("output is UTF-8");
    text.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("cut or broken line ({e}): {line:?}"));
            line.to_owned()
        })
        .collect()
}

fn key(line: &str) -> String {
    let value: Value = serde_json::from_str(line).unwrap();
    match value.get("file_base64") {
        Some(b64) => format!("b64:{}", b64.as_str().unwrap()),
        None => value["file"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn killed_at_random_points_and_resumed_the_output_is_a_clean_run_s() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let tree = tree(dir.path());

    let clean_out = dir.path().join("clean.jsonl");
    let started = Instant::now();
    let clean = scan_command(&index, &tree, &clean_out, None)
        .output()
        .unwrap();
    let clean_time = started.elapsed();
    assert!(
        finished(&clean),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let expected: Vec<String> = read_lines(&clean_out);
    let expected_set: BTreeSet<String> = expected.iter().cloned().collect();
    assert_eq!(expected.len(), FILES, "one line per file");
    let odd: Vec<&String> = expected
        .iter()
        .filter(|l| l.contains("file_base64"))
        .collect();
    assert_eq!(odd.len(), 2, "both names that are not UTF-8 have a line");

    let out = dir.path().join("out.jsonl");
    let state = dir.path().join("scan.state");
    let seed = 0x5eed_0000_0000_0001 ^ u64::from(std::process::id());
    let mut rng = Rng::new(seed);
    // Kill points within the first sixth of a clean run's time: runs make
    // progress (output flushed in 8 KiB pieces and every 500 ms) and many
    // kills land before the scan is done.
    let span = clean_time.as_millis().max(50) as u64;
    let mut kills = 0;
    let mut runs = 0;
    let killed_runs_wrote = loop {
        runs += 1;
        // What the killed runs left (whole lines), before this run starts.
        let lines_before =
            std::fs::read(&out).map_or(0, |t| t.iter().filter(|&&b| b == b'\n').count());
        let mut child = scan_command(&index, &tree, &out, Some(&state))
            .spawn()
            .unwrap();
        if kills < MAX_KILLS {
            let at = Duration::from_millis(5 + rng.below(span as usize / 6 + 1) as u64);
            let deadline = Instant::now() + at;
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                // A cut line may be left; the resumed run must repair it.
                continue;
            }
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            finished(&output),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        break lines_before;
    };
    println!(
        "scan_crash: seed {seed:#x}; clean run {:.2}s; {kills} kills over {runs} runs; \
         the killed runs wrote {killed_runs_wrote} of {FILES} lines",
        clean_time.as_secs_f64()
    );
    assert!(
        kills >= 3,
        "too few kills landed ({kills}) to test anything"
    );
    assert!(
        killed_runs_wrote > 0,
        "the killed runs wrote nothing: the kills tested only the start"
    );

    let got = read_lines(&out);
    let keys: Vec<String> = got.iter().map(|l| key(l)).collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a file has two lines");
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    let missing: Vec<&String> = expected_set.difference(&got_set).collect();
    let extra: Vec<&String> = got_set.difference(&expected_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );

    // And a further run finds nothing left to do.
    let again = hashgate(
        &[
            "scan",
            "--all",
            "--no-progress",
            "--index",
            index.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--resume",
            state.to_str().unwrap(),
            tree.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("scanned 0 files"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(read_lines(&out).len(), expected.len());
}
