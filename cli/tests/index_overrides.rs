//! `hashgate index disable` / `enable`: the overrides value they write
//! (read, modify, write; other writers' overrides kept) and what they
//! refuse.

use std::process::Output;

use serde_json::Value;

const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn hashgate(args: &[&str]) -> Output {
    hashgate_testkit::http::hashgate(args, None)
}

fn run(verb: &str, file: &str, list: &str, hash: &str) -> Output {
    hashgate(&[
        "index", verb, "--list", list, "--type", "pdq", "--hash", hash, "--by", "alice",
        "--reason", "logo", "--file", file,
    ])
}

#[test]
fn disable_and_enable_edit_the_overrides_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overrides.json");
    let file = path.to_str().unwrap();
    // Start from a value another writer made, with an allowed image.
    std::fs::write(
        &path,
        r#"{"v":1,"updated_unix":4000000000,"entries":[],"allowed":[{"list":"*","sha256":"00000000000000000000000000000000000000000000000000000000000000aa","pdq":null,"at":"t","by":"console","reason":"fp"}]}"#,
    )
    .unwrap();
    let output = run("disable", file, "ncmec", &PDQ.to_uppercase());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .contains("npx wrangler kv key put --binding HASH_INDEX --remote hg2/overrides --path"),
        "{stdout}"
    );
    // Twice is still one entry.
    assert!(run("disable", file, "ncmec", PDQ).status.success());
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["entries"].as_array().unwrap().len(), 1);
    let entry = &doc["entries"][0];
    assert_eq!(entry["list"], "ncmec");
    assert_eq!(entry["type"], "pdq");
    assert_eq!(entry["hash"], PDQ);
    assert_eq!(entry["state"], "disabled");
    assert_eq!(entry["by"], "alice");
    assert!(entry["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        doc["allowed"][0]["by"], "console",
        "other writers' overrides are kept"
    );
    // Strictly increasing, even past a clock behind the last writer's.
    assert_eq!(doc["updated_unix"], 4_000_000_002u64);

    assert!(run("enable", file, "ncmec", PDQ).status.success());
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["entries"], serde_json::json!([]));
    let again = run("enable", file, "ncmec", PDQ);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not turned off"));

    // Refused: a bad hash, a bad list name, another version.
    assert!(!run("disable", file, "ncmec", "abc").status.success());
    assert!(!run("disable", file, "bad list", PDQ).status.success());
    std::fs::write(&path, r#"{"v":2}"#).unwrap();
    assert!(!run("disable", file, "ncmec", PDQ).status.success());
}
