//! The hygiene rules in `hashgate serve` (and `hashgate match`, the same
//! settings): PDQ quality, per-list distance, negative lists, run as the
//! real binary against an index built here.

use std::path::Path;

use hashgate::PdqHash;
use hashgate_testkit::http::*;
use serde_json::Value;

// fixtures/manifest.json: exact/synthetic-5x5.png has PDQ quality 20.
const LOW_Q_PDQ: &str = "64d96c5b9b269b26318c6e5b318c91a4ce7364d964d96c5b9b269b26318c6e5b";
const LOW_Q_SHA256: &str = "46b7d7585e408ff66e30a457082b2b164ea6dc456755568735c198092dc95ea0";
// fixtures/lists/demo.csv: chelsea by PDQ.
const CHELSEA_PDQ: &str = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";

fn flip(hash: &str, bits: usize) -> String {
    let mut hash: PdqHash = hash.parse().unwrap();
    for bit in 0..bits {
        hash.0[31 - bit / 8] ^= 1 << (bit % 8);
    }
    hash.to_string()
}

fn index(dir: &Path) -> std::path::PathBuf {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        format!("{}={}", name.trim_end_matches(".csv"), path.display())
    };
    let lists = [
        write(
            "lowq.csv",
            format!("pdq,{LOW_Q_PDQ},lowq-1\nsha256,{LOW_Q_SHA256},lowq-2\n"),
        ),
        write("far.csv", format!("pdq,{},far-1\n", flip(CHELSEA_PDQ, 12))),
        write("stock.csv", format!("pdq,{CHELSEA_PDQ},stock-1\n")),
    ];
    let out = dir.join("index");
    let mut args = vec!["index".to_owned(), "build".to_owned()];
    for list in lists {
        args.push("--list".into());
        args.push(list);
    }
    args.extend(["--out".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = hashgate(&args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn found(reply: &Reply) -> Vec<(String, String)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json();
    body["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["list"].as_str().unwrap().to_owned(),
                m["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn low_quality_images_match_by_digest_only_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let index = index(dir.path());
    let image = read_fixture("exact/synthetic-5x5.png");
    let server = Server::start(&index, &["--lists", "lowq"]);
    assert_eq!(
        found(&server.post("/v1/match", &image)),
        pairs(&[("lowq", "sha256")])
    );
    // By hash there is no image and no quality: the PDQ hash matches.
    assert_eq!(
        found(&server.get(&format!("/v1/match?pdq={LOW_Q_PDQ}"))),
        pairs(&[("lowq", "pdq")])
    );
    let server = Server::start(&index, &["--lists", "lowq", "--min-quality", "0"]);
    assert_eq!(
        found(&server.post("/v1/match", &image)),
        pairs(&[("lowq", "pdq"), ("lowq", "sha256")])
    );
}

#[test]
fn a_per_list_distance_caps_that_list() {
    let dir = tempfile::tempdir().unwrap();
    let index = index(dir.path());
    let query = format!("/v1/match?pdq={CHELSEA_PDQ}");
    let server = Server::start(&index, &["--lists", "far"]);
    assert_eq!(found(&server.get(&query)), pairs(&[("far", "pdq")]));
    let server = Server::start(&index, &["--lists", "far", "--list-distance", "far=11"]);
    assert_eq!(found(&server.get(&query)), Vec::<(String, String)>::new());
    let server = Server::start(&index, &["--lists", "far", "--list-distance", "far=12"]);
    assert_eq!(found(&server.get(&query)), pairs(&[("far", "pdq")]));
    // Refused at start: a distance out of range.
    let output = hashgate(
        &[
            "match",
            "--index",
            index.to_str().unwrap(),
            "--list-distance",
            "far=32",
            "--pdq",
            CHELSEA_PDQ,
        ],
        None,
    );
    assert!(!output.status.success());
}

#[test]
fn a_negative_list_match_cancels_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let index = index(dir.path());
    let query = format!("/v1/match?pdq={CHELSEA_PDQ}");
    let server = Server::start(&index, &["--lists", "far"]);
    assert_eq!(found(&server.get(&query)), pairs(&[("far", "pdq")]));
    let server = Server::start(&index, &["--lists", "far", "--negative-lists", "stock"]);
    assert_eq!(found(&server.get(&query)), Vec::<(String, String)>::new());
    // Another image is untouched by the negative list.
    let other = format!("/v1/match?pdq={}", flip(CHELSEA_PDQ, 12));
    assert_eq!(
        found(&server.get(&other)),
        Vec::<(String, String)>::new(),
        "12 bits from stock's entry: within its distance, cancelled too"
    );
    let server = Server::start(
        &index,
        &[
            "--lists",
            "far",
            "--negative-lists",
            "stock",
            "--list-distance",
            "stock=4",
        ],
    );
    assert_eq!(found(&server.get(&other)), pairs(&[("far", "pdq")]));
}
