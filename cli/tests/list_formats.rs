//! `hashgate index build` on the list formats exchanges publish: each
//! synthetic sample in `fixtures/lists/formats/` builds an index whose
//! entries match, and feeds with deletions reach KV through `index diff`.

use std::path::{Path, PathBuf};
use std::process::Output;

use hashgate::index::layout::bucket_key;
use hashgate::PdqHash;
use serde_json::Value;

fn hashgate(args: &[&str]) -> Output {
    hashgate_testkit::http::hashgate(args, None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/lists/formats")
        .join(name);
    path.to_str().expect("UTF-8 path").to_owned()
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(sample("expected.json")).unwrap()).unwrap()
}

/// `hash` with its lowest `bits` bits flipped.
fn near(hash: &str, bits: usize) -> String {
    let mut hash: PdqHash = hash.parse().unwrap();
    for bit in 0..bits {
        hash.0[31 - bit / 8] ^= 1 << (bit % 8);
    }
    hash.to_string()
}

fn build(out: &Path, lists: &[(&str, &str)], layout: &str) -> Output {
    let mut args = vec!["index".to_owned(), "build".to_owned()];
    for (name, path) in lists {
        args.push("--list".into());
        args.push(format!("{name}={path}"));
    }
    args.extend([
        "--out".into(),
        out.to_str().unwrap().into(),
        "--layout".into(),
        layout.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hashgate(&args)
}

fn matches(index: &Path, flag: &str, hash: &str) -> Vec<Value> {
    let output = hashgate(&["match", "--index", index.to_str().unwrap(), flag, hash]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: Value = serde_json::from_str(text(&output.stdout).lines().next().unwrap()).unwrap();
    line["matches"].as_array().unwrap().clone()
}

#[test]
fn every_format_builds_an_index_that_matches_its_entries() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    for (name, want) in expected.as_object().unwrap() {
        let out = dir.path().join(name.replace('.', "-"));
        let output = build(&out, &[("x", &sample(name))], "resident");
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        let format = want["format"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("is {format} (")),
            "{name}: the format is said: {stdout}"
        );
        for (kind, count) in want["skipped"].as_object().unwrap() {
            assert!(
                stdout.contains(&format!("{kind} {count}")),
                "{name}: {stdout}"
            );
        }
        // A synthetic image hash 6 bits from the listed PDQ hash matches it.
        let pdq = want["pdq"].as_str().unwrap();
        let found = matches(&out, "--pdq", &near(pdq, 6));
        let ids: Vec<&Value> = found
            .iter()
            .filter(|m| m["hash"] == pdq)
            .map(|m| &m["id"])
            .collect();
        assert!(ids.contains(&&want["id"]), "{name}: {found:?}");
        assert!(found.iter().all(|m| m["distance"] == 6 && m["list"] == "x"));
        if let Some(all) = want.get("ids") {
            // Every id the list gives the hash comes back.
            let all: Vec<&Value> = all.as_array().unwrap().iter().collect();
            assert_eq!(ids, all, "{name}");
        }
        if let Some(md5) = want["md5"].as_str() {
            let found = matches(&out, "--md5", md5);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert_eq!(found[0]["type"], "md5");
        }
        if let Some(absent) = want.get("absent").and_then(Value::as_str) {
            assert_eq!(
                matches(&out, "--pdq", absent),
                Vec::<Value>::new(),
                "{name}"
            );
        }
    }
}

#[test]
fn a_feed_with_a_deletion_removes_the_entry_from_kv_through_index_diff() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before");
    let after = dir.path().join("after");
    let diff = dir.path().join("diff");
    let output = build(&before, &[("ncmec", &sample("ncmec.xml"))], "buckets");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = build(
        &after,
        &[
            ("ncmec", &sample("ncmec.xml")),
            ("ncmec", &sample("ncmec-feed.xml")),
        ],
        "buckets",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("ncmec-feed.xml is ncmec (NCMEC hash-sharing XML): 0 entries, 1 deletions; 1 entries removed, 0 deletions matched nothing"),
        "{stdout}"
    );
    let output = hashgate(&[
        "index",
        "diff",
        "--from",
        before.to_str().unwrap(),
        "--to",
        after.to_str().unwrap(),
        "--out",
        diff.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let deletes: Vec<String> =
        serde_json::from_slice(&std::fs::read(diff.join("kv-delete.json")).unwrap()).unwrap();
    // img-3002's PDQ hash was alone in its 16 buckets: all 16 go.
    let gone: PdqHash = expected()["ncmec.xml"]["deleted_by_feed"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for chunk in 0..16 {
        let key = bucket_key(chunk, gone.chunk16(chunk));
        assert!(deletes.contains(&key), "{key} not deleted: {deletes:?}");
    }
    assert_eq!(matches(&before, "--pdq", &gone.to_string()).len(), 1);
    assert_eq!(
        matches(&after, "--pdq", &gone.to_string()),
        Vec::<Value>::new()
    );
    // The entry kept is still there.
    let kept = expected()["ncmec.xml"]["pdq"].as_str().unwrap().to_owned();
    assert_eq!(matches(&after, "--pdq", &kept)[0]["id"], "img-3001");
}

#[test]
fn a_file_in_no_known_format_names_its_line_and_the_format_flag_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("odd.txt");
    std::fs::write(&path, "# list\nnot a list at all\n").unwrap();
    let out = dir.path().join("out");
    let output = build(&out, &[("x", path.to_str().unwrap())], "resident");
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("line 2: cannot tell the list format from \"not a list at all\""),
        "{stderr}"
    );

    // Bare 64-digit hashes are python-threatexchange PDQ signals unless the
    // operator says they are SHA-256 digests in hashgate's format... which
    // needs a type, so the forced reading names the line and what it wanted.
    let hex = "ab".repeat(32);
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    let output = build(&out, &[("x", path.to_str().unwrap())], "resident");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("is tx-signals"));
    let output = hashgate(&[
        "index",
        "build",
        "--format",
        "hashgate",
        "--list",
        &format!("x={}", path.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains(":1: expected TYPE,HASH[,ID]"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_hash_repeated_under_several_ids_reports_every_list_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(
        &a,
        format!("pdq,{pdq},case-1\npdq,{pdq},case-2\npdq,{pdq},case-1\npdq,{pdq},case-3\n"),
    )
    .unwrap();
    std::fs::write(&b, format!("HASH_PDQ,{pdq},b-9\n")).unwrap();
    for layout in ["resident", "buckets"] {
        let out = dir.path().join(layout);
        let output = build(
            &out,
            &[("a", a.to_str().unwrap()), ("b", b.to_str().unwrap())],
            layout,
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(stdout.contains("list a: pdq 1"), "{stdout}");
        assert!(stdout.contains("duplicate lines merged: 1"), "{stdout}");
        let found: Vec<(String, String)> = matches(&out, "--pdq", &near(pdq, 2))
            .iter()
            .map(|m| {
                (
                    m["list"].as_str().unwrap().to_owned(),
                    m["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("a", "case-1"),
            ("a", "case-2"),
            ("a", "case-3"),
            ("b", "b-9"),
        ]
        .iter()
        .map(|(l, i)| (l.to_string(), i.to_string()))
        .collect();
        assert_eq!(found, want, "{layout}");
    }
}
