//! `hashgate scan`, run as the real binary over a tree generated here from
//! the fixtures: nested folders, listed images (one under a misleading
//! name), clean images, non-images (one named `.jpg`), corrupt files and a
//! dangling link.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn fixture(name: &str) -> PathBuf {
    Path::new(ROOT).join("fixtures").join(name)
}

fn hashgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(args)
        .output()
        .expect("the hashgate binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// What each generated file is, relative to the tree, and its expected
/// status with `--all --follow-links`.
const TREE: [(&str, Option<&str>, &str); 11] = [
    (
        "uploads/2024/01/cat.jpg",
        Some("photos/chelsea.jpg"),
        "match",
    ),
    (
        "uploads/2024/02/launch.bin",
        Some("photos/rocket.jpg"),
        "match",
    ),
    (
        "uploads/2024/02/coffee.jpg",
        Some("photos/coffee.jpg"),
        "clean",
    ),
    ("uploads/readme.txt", None, "skipped"),
    (
        "uploads/fake.jpg",
        Some("errors/not-an-image.html"),
        "skipped",
    ),
    ("uploads/empty.jpg", Some("errors/empty.bin"), "skipped"),
    (
        "backups/deep/er/still/astronaut.png",
        Some("exact/astronaut.png"),
        "clean",
    ),
    (
        "backups/chelsea-lossless.png",
        Some("exact/chelsea.png"),
        "match",
    ),
    ("backups/broken.jpg", Some("errors/truncated.jpg"), "error"),
    ("backups/bomb.png", Some("errors/bomb-50000.png"), "error"),
    ("backups/gone.jpg", None, "error"),
];

/// Writes the tree under `dir/tree` and the demo index under `dir/index`.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let tree = dir.join("tree");
    for (name, source, _) in TREE {
        let path = tree.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match (name, source) {
            (_, Some(source)) => {
                std::fs::copy(fixture(source), &path).unwrap();
            }
            ("backups/gone.jpg", None) => {
                std::os::unix::fs::symlink(dir.join("nowhere.jpg"), &path).unwrap();
            }
            _ => std::fs::write(&path, "plain text, not an image\n").unwrap(),
        }
    }
    let index = dir.join("index");
    let list = format!("demo={}", fixture("lists/demo.csv").display());
    let output = hashgate(&["index", "build", "--list", &list, "--out", arg(&index)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (tree, index)
}

fn lines(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Lines by file, relative to `tree`.
fn by_file(tree: &Path, lines: &[Value]) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|line| {
            let file = line["file"].as_str().expect("every line names its file");
            let relative = Path::new(file).strip_prefix(tree).expect("under the tree");
            (relative.display().to_string(), line.clone())
        })
        .collect()
}

#[test]
fn scan_reports_every_file_with_all_and_agrees_with_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, index) = setup(dir.path());
    let out = dir.path().join("out.jsonl");
    let output = hashgate(&[
        "scan",
        "--index",
        arg(&index),
        "--all",
        "--follow-links",
        "--out",
        arg(&out),
        arg(&tree),
    ]);
    // 1: some files could not be handled (the broken images).
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty(), "--out takes the lines");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("scanned 11 files")
            && stderr.contains("5 images")
            && stderr.contains("3 matched"),
        "{stderr}"
    );
    assert!(stderr.contains("3 not images, 3 errors"), "{stderr}");
    // No progress bar when standard error is not a terminal.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );

    let found = by_file(&tree, &lines(&std::fs::read_to_string(&out).unwrap()));
    assert_eq!(found.len(), TREE.len(), "{found:#?}");
    for (name, _, status) in TREE {
        assert_eq!(found[name]["status"], status, "{name}: {}", found[name]);
    }
    let matches = |name: &str| found[name]["matches"].clone();
    assert_eq!(matches("uploads/2024/01/cat.jpg")[0]["id"], "demo-chelsea");
    assert_eq!(matches("uploads/2024/01/cat.jpg")[0]["variant"], "orig");
    assert_eq!(
        matches("uploads/2024/02/launch.bin")[0]["id"],
        "demo-rocket-exact"
    );
    assert_eq!(matches("uploads/2024/02/launch.bin")[0]["type"], "sha256");
    let lossless = matches("backups/chelsea-lossless.png");
    assert_eq!(lossless[0]["type"], "pdq");
    assert!(
        lossless[0]["distance"].as_u64().unwrap() <= 10,
        "{lossless}"
    );
    assert_eq!(found["backups/broken.jpg"]["kind"], "truncated");
    assert_eq!(found["backups/bomb.png"]["kind"], "dimensions_too_large");
    assert_eq!(found["backups/gone.jpg"]["kind"], "unreadable");
    assert_eq!(found["uploads/fake.jpg"]["reason"], "not an image");

    // A scan line carries the same hashes as `hashgate hash`.
    let cat = tree.join("uploads/2024/01/cat.jpg");
    let hashed: Value = serde_json::from_slice(&hashgate(&["hash", arg(&cat)]).stdout).unwrap();
    let line = &found["uploads/2024/01/cat.jpg"];
    for field in [
        "file", "width", "height", "pdq", "quality", "md5", "sha1", "sha256",
    ] {
        assert_eq!(line[field], hashed[field], "{field}");
    }

    // The same results whatever the number of workers (order may differ).
    let single = hashgate(&[
        "scan",
        "--index",
        arg(&index),
        "--all",
        "--follow-links",
        "-j",
        "1",
        arg(&tree),
    ]);
    assert_eq!(by_file(&tree, &lines(&text(&single.stdout))), found);
}

#[test]
fn by_default_only_matches_and_errors_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, index) = setup(dir.path());
    // A single file given directly is scanned too.
    let extra = fixture("photos/chelsea.jpg");
    let output = hashgate(&[
        "scan",
        "--index",
        arg(&index),
        "--threshold",
        "0",
        arg(&tree),
        arg(&extra),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let all = lines(&text(&output.stdout));
    let statuses: Vec<(&str, &str)> = all
        .iter()
        .map(|l| (l["file"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    // Without --follow-links the dangling link is not followed (not a file);
    // at threshold 0 the lossless PNG (distance 2) no longer matches.
    assert_eq!(all.len(), 5, "{statuses:?}");
    assert_eq!(
        all.iter().filter(|l| l["status"] == "match").count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        all.iter().filter(|l| l["status"] == "error").count(),
        2,
        "{statuses:?}"
    );
    assert!(statuses.contains(&(arg(&extra), "match")));

    // Nothing listed: exit 0.
    let clean = tree.join("uploads/2024/02/coffee.jpg");
    let output = hashgate(&["scan", "--index", arg(&index), arg(&clean)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
    // A missing index is an error (2), not a clean scan.
    let output = hashgate(&[
        "scan",
        "--index",
        arg(&dir.path().join("nope")),
        arg(&clean),
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn resume_skips_finished_files_and_appends_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, index) = setup(dir.path());
    let out = dir.path().join("out.jsonl");
    let state = dir.path().join("scan.state");
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--index", arg(&index), "--all", "--follow-links"];
        args.extend(["--out", arg(&out), "--resume", arg(&state)]);
        args.extend(extra);
        args.push(arg(&tree));
        hashgate(&args)
    };

    let first = scan(&[]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let state_text = std::fs::read_to_string(&state).unwrap();
    let recorded: Vec<&str> = state_text.lines().collect();
    assert_eq!(
        recorded.len(),
        1 + TREE.len(),
        "a header and every file:\n{state_text}"
    );

    // As if interrupted: three files recorded, the fourth torn mid-write,
    // and their output lines already written.
    let kept: Vec<String> = recorded[1..4]
        .iter()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect();
    std::fs::write(
        &state,
        format!(
            "{}\n{}{}",
            recorded[..4].join("\n"),
            "\"",
            &recorded[4][1..6]
        ),
    )
    .unwrap();
    let before: Vec<Value> = lines(&std::fs::read_to_string(&out).unwrap())
        .into_iter()
        .filter(|l| kept.iter().any(|k| l["file"] == k.as_str()))
        .collect();
    std::fs::write(
        &out,
        before.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();

    let second = scan(&[]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = text(&second.stderr);
    assert!(
        stderr.contains("scanned 8 files") && stderr.contains("3 already done"),
        "{stderr}"
    );
    // Every file has exactly one line: the three kept, the rest appended.
    let found = lines(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(by_file(&tree, &found).len(), TREE.len());
    assert_eq!(found.len(), TREE.len());

    // Finished: a third run has nothing left to do.
    let third = scan(&[]);
    assert_eq!(third.status.code(), Some(0));
    assert!(
        text(&third.stderr).contains("scanned 0 files"),
        "{}",
        text(&third.stderr)
    );

    // A state file is only good for the settings that wrote it.
    let other = scan(&["--threshold", "10"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("another scan"),
        "{}",
        text(&other.stderr)
    );
}
