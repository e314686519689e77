//! `hashgate index build`, `hashgate index diff` and `hashgate match`, run
//! as the real binary on lists written here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hashgate::{hash_image, HashOptions, PdqHash};
use serde_json::Value;

const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn hashgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(args)
        .output()
        .expect("the hashgate binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file is writable");
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// `PDQ` with its lowest `bits` bits flipped.
fn near(bits: usize) -> String {
    let mut hash: PdqHash = PDQ.parse().unwrap();
    for bit in 0..bits {
        hash.0[31 - bit / 8] ^= 1 << (bit % 8);
    }
    hash.to_string()
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// Builds lists `ncmec` and `iwf` into `dir/out` and returns that path.
fn build_demo(dir: &Path) -> PathBuf {
    let ncmec = write(
        dir,
        "ncmec.csv",
        &format!("# ncmec export\npdq,{PDQ},N-1\nmd5,{MD5},N-2\nsha1,{SHA1}\npdq,{PDQ},N-1\n"),
    );
    let iwf = write(
        dir,
        "iwf.csv",
        &format!("pdq,{PDQ},I-1\nsha256,{SHA256},I-2\npdq,{},I-3\n", near(20)),
    );
    let out = dir.join("out");
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("ncmec={}", arg(&ncmec)),
        "--list",
        &format!("iwf={}", arg(&iwf)),
        "--out",
        arg(&out),
        "--layout",
        "buckets",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("list ncmec: pdq 1, md5 1, sha1 1"), "{text}");
    assert!(text.contains("list iwf: pdq 2, sha256 1"), "{text}");
    assert!(text.contains("duplicate lines merged: 1"), "{text}");
    assert!(text.contains("kv: "), "{text}");
    out
}

#[test]
fn build_writes_bulk_json_and_match_finds_entries() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_demo(dir.path());

    let bulk: Value =
        serde_json::from_slice(&std::fs::read(out.join("kv-bulk.json")).unwrap()).unwrap();
    let entries = bulk.as_array().expect("bulk file is an array");
    // Two PDQ hashes differing only in their last two chunks share 14 of
    // their 16 buckets: 18 buckets, 3 digest records and meta.
    assert_eq!(entries.len(), 18 + 3 + 1);
    for entry in entries {
        assert!(entry["key"].as_str().unwrap().starts_with("hg1/"));
        assert!(entry["value"].is_string());
        assert_eq!(entry["base64"], false);
    }

    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--threshold",
        "5",
        "--pdq",
        &near(3),
        "--md5",
        MD5,
        "--sha256",
        SHA256,
        "--sha1",
        &"0".repeat(40),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["query"], format!("pdq:{}", near(3)));
    assert_eq!(
        lines[0]["matches"],
        serde_json::json!([
            {"list": "iwf", "type": "pdq", "hash": PDQ, "distance": 3, "id": "I-1"},
            {"list": "ncmec", "type": "pdq", "hash": PDQ, "distance": 3, "id": "N-1"},
        ])
    );
    assert_eq!(
        lines[1]["matches"],
        serde_json::json!([{"list": "ncmec", "type": "md5", "hash": MD5, "distance": 0, "id": "N-2"}])
    );
    // Lines come in kind order (files, pdq, md5, sha1, sha256), each named.
    assert_eq!(lines[2]["query"], format!("sha1:{}", "0".repeat(40)));
    assert_eq!(lines[2]["matches"], serde_json::json!([]));
    assert_eq!(lines[3]["query"], format!("sha256:{SHA256}"));
    assert_eq!(lines[3]["matches"][0]["id"], "I-2");
}

#[test]
fn match_threshold_and_list_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_demo(dir.path());
    let query = near(10);
    let run = |extra: &[&str]| {
        let mut args = vec!["match", "--index", arg(&out), "--pdq", &query];
        args.extend_from_slice(extra);
        let output = hashgate(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        json_lines(&output).remove(0)["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{}:{}", m["list"].as_str().unwrap(), m["distance"]))
            .collect::<Vec<_>>()
    };
    // Default threshold 31: both lists at 10, iwf's second hash at 10 too.
    assert_eq!(run(&[]), vec!["iwf:10", "iwf:10", "ncmec:10"]);
    assert_eq!(run(&["--threshold", "9"]), Vec::<String>::new());
    assert_eq!(run(&["--lists", "ncmec"]), vec!["ncmec:10"]);
    assert_eq!(run(&["--lists", "ncmec,iwf", "--threshold", "10"]).len(), 3);

    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--threshold",
        "32",
        "--pdq",
        &query,
    ]);
    assert!(!output.status.success());
}

#[test]
fn match_image_files_with_and_without_dihedral() {
    let dir = tempfile::tempdir().unwrap();
    // A picture with structure in both directions, so rotating it changes its hash.
    let picture =
        image::GrayImage::from_fn(96, 64, |x, y| image::Luma([((x * x + 3 * y) % 251) as u8]));
    let image_path = dir.path().join("picture.png");
    picture.save(&image_path).unwrap();
    let bytes = std::fs::read(&image_path).unwrap();
    let hashes = hash_image(
        &bytes,
        &HashOptions {
            dihedral: true,
            ..HashOptions::default()
        },
    )
    .unwrap();
    let rotated = hashes.dihedral.unwrap()[1];
    assert!(
        rotated.distance(&hashes.pdq) > 31,
        "the rotation must not match by itself"
    );

    let list = write(
        dir.path(),
        "list.csv",
        &format!(
            "pdq,{rotated},rotated-copy\nsha256,{},exact-copy\n",
            hashes.sha256
        ),
    );
    let out = dir.path().join("out");
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("internal={}", arg(&list)),
        "--out",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    // The default query set includes rotations: the rotated copy matches,
    // labelled with the variant that found it.
    let whole_set = hashgate(&["match", "--index", arg(&out), arg(&image_path)]);
    assert!(whole_set.status.success(), "{}", stderr(&whole_set));
    let matches = json_lines(&whole_set)[0]["matches"]
        .as_array()
        .unwrap()
        .clone();
    let rotated_match = matches
        .iter()
        .find(|m| m["id"] == "rotated-copy")
        .expect("rotated copy found");
    assert_eq!(rotated_match["variant"], "rot90");
    assert_eq!(rotated_match["distance"], 0);

    let plain = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--variants",
        "own",
        arg(&image_path),
    ]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let ids: Vec<Value> = json_lines(&plain)[0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![Value::from("exact-copy")]);

    let dihedral = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--variants",
        "dihedral",
        arg(&image_path),
    ]);
    let line = &json_lines(&dihedral)[0];
    assert_eq!(line["query"], arg(&image_path));
    let ids: Vec<&str> = line["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // Both at distance 0; PDQ sorts before SHA-256.
    assert_eq!(ids, vec!["rotated-copy", "exact-copy"]);
}

#[test]
fn failing_queries_give_an_error_line_and_a_failure_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_demo(dir.path());
    let not_an_image = write(dir.path(), "notes.txt", "hello");
    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        arg(&not_an_image),
        "--md5",
        MD5,
    ]);
    assert!(!output.status.success());
    let lines = json_lines(&output);
    assert!(lines[0]["error"].is_string(), "{:?}", lines[0]);
    assert_eq!(lines[1]["matches"][0]["id"], "N-2");

    let output = hashgate(&[
        "match",
        "--index",
        arg(&dir.path().join("missing")),
        "--md5",
        MD5,
    ]);
    assert!(!output.status.success());
    let output = hashgate(&["match", "--index", arg(&out), "--pdq", "abc"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("expected 64 hex digits"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_lines_fail_the_build_with_their_line_numbers_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "list.csv",
        &format!(
            "md5,{MD5}\nmd5,{}\nsha1,{}\nnonsense\nwhirlpool,{MD5}\n",
            &MD5[..31],
            "g".repeat(40)
        ),
    );
    let out = dir.path().join("out");
    let args = [
        "index",
        "build",
        "--list",
        &format!("l={}", arg(&list)),
        "--out",
        arg(&out),
    ];
    let output = hashgate(&args);
    assert!(!output.status.success());
    let errors = stderr(&output);
    for expected in [
        ":2: bad md5 hash: expected 32 hex digits, found 31",
        ":3: bad sha1 hash: not hex",
        ":4: expected TYPE,HASH[,ID]",
        ":5: unknown hash type \"whirlpool\"",
        "4 bad lines (use --skip-bad",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in {errors}"
        );
    }
    assert!(!out.join("kv-bulk.json").exists());

    let mut skipping = args.to_vec();
    skipping.push("--skip-bad");
    let output = hashgate(&skipping);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("list l: md5 1"));
    assert!(stderr(&output).contains("skipped 4 bad lines"));
}

#[test]
fn empty_lists_and_bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.csv", "# nothing yet\n");
    let out = dir.path().join("out");
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("iwf={}", arg(&empty)),
        "--out",
        arg(&out),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("has no entries"),
        "{}",
        stderr(&output)
    );

    let output = hashgate(&[
        "index",
        "build",
        "--list",
        "no-equals-sign",
        "--out",
        arg(&out),
    ]);
    assert!(!output.status.success());
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("bad name={}", arg(&empty)),
        "--out",
        arg(&out),
    ]);
    assert!(!output.status.success());
}

#[test]
fn allowlist_suppresses_known_false_positives() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "list.csv",
        &format!("pdq,{PDQ},P\nmd5,{MD5},M\n"),
    );
    let allow = write(
        dir.path(),
        "allow.csv",
        &format!("# reviewed false positives\npdq,{}\n", near(2)),
    );
    let out = dir.path().join("out");
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("ncmec={}", arg(&list)),
        "--allow",
        arg(&allow),
        "--out",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("allowlisted hashes: 1"));

    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--pdq",
        &near(2),
        "--pdq",
        &near(4),
        "--md5",
        MD5,
    ]);
    let lines = json_lines(&output);
    assert_eq!(
        lines[0]["matches"],
        serde_json::json!([]),
        "the allowlisted hash itself"
    );
    assert_eq!(
        lines[1]["matches"][0]["id"], "P",
        "a different image near the same list hash"
    );
    assert_eq!(lines[2]["matches"][0]["id"], "M");
}

#[test]
fn diff_gives_only_the_changed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let before = write(dir.path(), "before.csv", &format!("pdq,{PDQ}\nmd5,{MD5}\n"));
    let after = write(
        dir.path(),
        "after.csv",
        &format!("pdq,{PDQ}\npdq,{}\nsha1,{SHA1}\n", "0f".repeat(32)),
    );
    let build = |list: &Path, out: &str| {
        let out = dir.path().join(out);
        let output = hashgate(&[
            "index",
            "build",
            "--list",
            &format!("x={}", arg(list)),
            "--out",
            arg(&out),
            "--layout",
            "buckets",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        out
    };
    let (old, new) = (build(&before, "old"), build(&after, "new"));
    let delta = dir.path().join("delta");
    let output = hashgate(&[
        "index",
        "diff",
        "--from",
        arg(&old),
        "--to",
        arg(&new),
        "--out",
        arg(&delta),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("puts: 18"), "{}", stdout(&output));

    let puts: Value =
        serde_json::from_slice(&std::fs::read(delta.join("kv-bulk.json")).unwrap()).unwrap();
    let keys: Vec<&str> = puts
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    // 16 buckets of the new PDQ hash, the new SHA-1 record, and meta.
    assert_eq!(keys.len(), 18);
    assert!(keys.contains(&format!("hg1/sha1/{SHA1}").as_str()));
    assert!(keys.contains(&"hg1/meta"));
    let deletes: Value =
        serde_json::from_slice(&std::fs::read(delta.join("kv-delete.json")).unwrap()).unwrap();
    assert_eq!(deletes, serde_json::json!([format!("hg1/md5/{MD5}")]));

    // A build diffed against itself changes nothing.
    let same = dir.path().join("same");
    let output = hashgate(&[
        "index",
        "diff",
        "--from",
        arg(&new),
        "--to",
        arg(&new),
        "--out",
        arg(&same),
    ]);
    assert!(output.status.success());
    let puts: Value =
        serde_json::from_slice(&std::fs::read(same.join("kv-bulk.json")).unwrap()).unwrap();
    assert_eq!(puts, serde_json::json!([]));
}

/// The printed upload steps for a resident build: every part, then the
/// manifest last, all with `--remote`; the files they name exist.
#[test]
fn build_prints_upload_commands_in_order_with_remote() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(dir.path(), "x.csv", &format!("pdq,{PDQ},x-1\nmd5,{MD5}\n"));
    let out = dir.path().join("out");
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("x={}", arg(&list)),
        "--out",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let commands: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("npx wrangler kv "))
        .collect();
    assert_eq!(commands.len(), 2, "{text}");
    assert!(commands
        .iter()
        .all(|c| c.contains("--remote") && c.contains("--binding HASH_INDEX")));
    assert!(commands[0].contains("/part/0"), "{text}");
    assert!(
        commands[1].contains("hg2/current"),
        "the manifest goes last: {text}"
    );
    for command in &commands {
        let path = command.split("--path ").nth(1).unwrap();
        assert!(Path::new(path).is_file(), "{path}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("kv-current.json")).unwrap()).unwrap();
    assert_eq!(manifest["layout"], "resident");
    assert_eq!(manifest["lists"]["x"]["pdq"], 1);

    // Building again into the same directory names the previous generation's
    // parts to delete, once it differs.
    let list2 = write(dir.path(), "y.csv", &format!("pdq,{PDQ},x-2\n"));
    let output = hashgate(&[
        "index",
        "build",
        "--list",
        &format!("x={}", arg(&list2)),
        "--out",
        arg(&out),
    ]);
    let text = stdout(&output);
    let old_part = manifest["parts"][0].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "kv key delete --binding HASH_INDEX --remote {old_part}"
        )),
        "{text}"
    );
}

/// `kill -9` at any moment of `index build` leaves `--out` wholly the old
/// build or wholly the new one: never a mix, never a cut file.
#[test]
fn a_killed_build_leaves_the_old_build_or_the_new_one() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let lines = |seed: u64, n: usize| -> String {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|i| {
                format!(
                    "pdq,{:016x}{:016x}{:016x}{:016x},id-{i}\n",
                    next(),
                    next(),
                    next(),
                    next()
                )
            })
            .collect()
    };
    let old_list = write(dir.path(), "old.csv", &lines(1, 20_000));
    let new_list = write(dir.path(), "new.csv", &lines(2, 60_000));
    let out = dir.path().join("out");
    let build = |list: &Path| {
        Command::new(env!("CARGO_BIN_EXE_hashgate"))
            .args([
                "index",
                "build",
                "--list",
                &format!("x={}", arg(list)),
                "--out",
                arg(&out),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let snapshot_of = |path: &Path| std::fs::read(path.join("index.snapshot")).unwrap();
    assert!(build(&old_list).wait().unwrap().success());
    let old = snapshot_of(&out);
    let new = {
        let other = dir.path().join("reference");
        let status = Command::new(env!("CARGO_BIN_EXE_hashgate"))
            .args([
                "index",
                "build",
                "--list",
                &format!("x={}", arg(&new_list)),
                "--out",
                arg(&other),
            ])
            .output()
            .unwrap();
        assert!(status.status.success());
        snapshot_of(&other)
    };
    // How long a whole build takes, to spread the kills over it.
    let start = Instant::now();
    assert!(build(&new_list).wait().unwrap().success());
    let whole = start.elapsed();
    assert!(build(&old_list).wait().unwrap().success());

    let (mut saw_old, mut saw_new) = (0, 0);
    for round in 0..16u32 {
        let mut child = build(if round % 2 == 0 { &new_list } else { &old_list });
        std::thread::sleep(whole.mul_f64(f64::from(round) / 16.0) + Duration::from_millis(2));
        let _ = child.kill();
        let _ = child.wait();
        let now = snapshot_of(&out);
        assert!(
            now == old || now == new,
            "round {round}: --out holds a mix or a cut file"
        );
        // The directory's files agree with each other: the manifest names
        // the snapshot's generation and its parts are all there.
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("kv-current.json")).unwrap()).unwrap();
        let parts = manifest["parts"].as_array().unwrap().len();
        let joined: Vec<u8> = (0..parts)
            .flat_map(|i| std::fs::read(out.join(format!("kv-part-{i}.bin"))).unwrap())
            .collect();
        assert_eq!(joined, now, "round {round}: parts and snapshot disagree");
        if now == old {
            saw_old += 1
        } else {
            saw_new += 1
        }
        // Put the old build back for the next round.
        if now == new {
            assert!(build(&old_list).wait().unwrap().success());
        }
    }
    // Whatever was left beside it is cleaned up by the next build.
    assert!(build(&old_list).wait().unwrap().success());
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".out.building-")
        })
        .collect();
    assert!(strays.is_empty(), "staging directories left behind");
    assert!(saw_old + saw_new == 16);
}

/// A list name the index does not hold is an error naming the lists it has
/// (exit status 2), not a silent miss.
#[test]
fn match_refuses_unknown_list_names() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(dir.path(), "x.csv", &format!("pdq,{PDQ}\n"));
    let out = dir.path().join("out");
    assert!(hashgate(&[
        "index",
        "build",
        "--list",
        &format!("demo={}", arg(&list)),
        "--out",
        arg(&out)
    ])
    .status
    .success());
    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--lists",
        "dmeo",
        "--pdq",
        PDQ,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("dmeo") && message.contains("demo"),
        "{message}"
    );
    let output = hashgate(&[
        "match",
        "--index",
        arg(&out),
        "--lists",
        "demo",
        "--pdq",
        PDQ,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}
