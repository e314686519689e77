//! `hashgate scan s3://bucket/prefix`, run as the real binary against a
//! local S3-compatible server that the test starts (moto's, from PyPI:
//! `scripts/setup.sh` installs it): a bucket of fixture images under nested
//! prefixes (listed ones, clean ones, a non-image, a truncated image, an
//! image over the input limit) and more objects than one listing page.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(ROOT).join("fixtures").join(name)).expect("fixture exists")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// moto's S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server, flask, flask_cors"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            installed,
            "moto's S3 server is not installed: run scripts/setup.sh \
             (it runs pip install 'moto[server]')"
        );
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request; the status. moto does not check signatures, but takes
    /// a request with no `Authorization` as anonymous, which may create
    /// an object and not replace it.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Content-Type: application/octet-stream\r\nConnection: close\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\r\n",
            self.port,
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let status = text(&reply)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok());
        status.unwrap_or_else(|| panic!("no status in {:?}", text(&reply)))
    }

    fn create_bucket(&self, bucket: &str) {
        assert_eq!(self.request("PUT", &format!("/{bucket}"), b""), 200);
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let status = self.request("PUT", &format!("/{bucket}/{key}"), body);
        assert_eq!(status, 200, "PUT {key}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hashgate ARGS` with the S3 settings of a test: credentials moto
/// accepts, and none of the caller's AWS settings.
fn hashgate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hashgate"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("the hashgate binary runs")
}

fn demo_index(dir: &Path) -> PathBuf {
    let index = dir.join("index");
    let list = format!("demo={ROOT}/fixtures/lists/demo.csv");
    let output = hashgate(&["index", "build", "--list", &list, "--out", arg(&index)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    index
}

fn lines(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Lines by object URL; every line names one object once, with a version.
fn by_object(lines: &[Value]) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for line in lines {
        let url = line["file"].as_str().expect("every line names its object");
        assert!(line["version"].is_string(), "no version: {line}");
        assert!(
            found.insert(url.to_owned(), line.clone()).is_none(),
            "{url} twice"
        );
    }
    found
}

/// The bucket's objects: key, content, expected status with `--all`.
fn objects() -> Vec<(String, Vec<u8>, &'static str)> {
    let mut over_limit = fixture("photos/chelsea.jpg");
    over_limit.resize((64 << 20) + 1, 0);
    let mut objects = vec![
        (
            "uploads/2024/01/cat.jpg".into(),
            fixture("photos/chelsea.jpg"),
            "match",
        ),
        (
            "uploads/2024/02/launch.bin".into(),
            fixture("photos/rocket.jpg"),
            "match",
        ),
        (
            "uploads/2024/02/coffee.jpg".into(),
            fixture("photos/coffee.jpg"),
            "clean",
        ),
        (
            "uploads/notes.txt".into(),
            b"plain text, not an image\n".to_vec(),
            "skipped",
        ),
        (
            "uploads/fake.jpg".into(),
            fixture("errors/not-an-image.html"),
            "skipped",
        ),
        ("uploads/empty.jpg".into(), Vec::new(), "skipped"),
        (
            "backups/deep/er/still/astronaut.png".into(),
            fixture("exact/astronaut.png"),
            "clean",
        ),
        (
            "backups/chelsea-lossless.png".into(),
            fixture("exact/chelsea.png"),
            "match",
        ),
        (
            "backups/broken.jpg".into(),
            fixture("errors/truncated.jpg"),
            "error",
        ),
        ("backups/huge.jpg".into(), over_limit, "error"),
    ];
    // More objects than a few listing pages of 7.
    for n in 0..30 {
        objects.push((
            format!("logs/{n:02}.txt"),
            format!("log {n}\n").into_bytes(),
            "skipped",
        ));
    }
    objects
}

/// A moto server holding `objects()` in bucket `media`.
fn bucket() -> Moto {
    let moto = Moto::start();
    moto.create_bucket("media");
    for (key, body, _) in objects() {
        moto.put("media", &key, &body);
    }
    moto
}

fn scan(moto: &Moto, index: &Path, extra: &[&str]) -> Output {
    let endpoint = moto.endpoint();
    let mut args = vec![
        "scan",
        "--index",
        arg(index),
        "--s3-endpoint",
        &endpoint,
        "--s3-allow-http",
        "--s3-page-size",
        "7",
    ];
    args.extend(extra);
    hashgate(&args)
}

#[test]
fn a_bucket_is_scanned_like_files_and_resumed_by_etag() {
    let moto = bucket();
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let (out, state) = (dir.path().join("out.jsonl"), dir.path().join("state"));
    let resumable = [
        "--all",
        "--out",
        arg(&out),
        "--resume",
        arg(&state),
        "s3://media",
    ];
    let output = scan(&moto, &index, &resumable);
    // 1: some objects could not be checked (the broken and the huge one).
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    let total = objects().len();
    assert!(
        stderr.contains(&format!("scanned {total} files"))
            && stderr.contains("5 images")
            && stderr.contains("3 matched")
            && stderr.contains("33 not images, 2 errors"),
        "{stderr}"
    );

    let found = by_object(&lines(&std::fs::read_to_string(&out).unwrap()));
    assert_eq!(found.len(), total, "{found:#?}");
    for (key, _, status) in objects() {
        let line = &found[&format!("s3://media/{key}")];
        assert_eq!(line["status"], status, "{key}: {line}");
    }
    let line = |key: &str| found[&format!("s3://media/{key}")].clone();
    let cat = line("uploads/2024/01/cat.jpg");
    assert_eq!(cat["matches"][0]["list"], "demo");
    assert_eq!(cat["matches"][0]["id"], "demo-chelsea");
    assert_eq!(
        line("uploads/2024/02/launch.bin")["matches"][0]["id"],
        "demo-rocket-exact"
    );
    assert_eq!(
        line("backups/chelsea-lossless.png")["matches"][0]["type"],
        "pdq"
    );
    assert_eq!(line("backups/broken.jpg")["kind"], "truncated");
    assert_eq!(line("backups/huge.jpg")["kind"], "input_too_large");
    assert_eq!(line("uploads/fake.jpg")["reason"], "not an image");
    // The version is the ETag: for a single-part upload, the MD5 in quotes.
    assert_eq!(
        cat["version"],
        format!("\"{}\"", cat["md5"].as_str().unwrap())
    );

    // An object's line is the line of a file with the same bytes.
    let file = dir.path().join("cat.jpg");
    std::fs::write(&file, fixture("photos/chelsea.jpg")).unwrap();
    let local = hashgate(&["scan", "--index", arg(&index), arg(&file)]);
    let local = &lines(&text(&local.stdout))[0];
    for field in [
        "width", "height", "pdq", "quality", "md5", "sha1", "sha256", "matches",
    ] {
        assert_eq!(cat[field], local[field], "{field}");
    }

    // Run again: everything was done, nothing is fetched or written.
    let before = std::fs::read_to_string(&out).unwrap();
    let again = scan(&moto, &index, &resumable);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("scanned 0 files")
            && stderr.contains(&format!("{total} already done by an earlier run")),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);

    // A replaced object (new ETag) and a new one are scanned; nothing else.
    moto.put(
        "media",
        "uploads/2024/02/coffee.jpg",
        &fixture("photos/chelsea.jpg"),
    );
    moto.put(
        "media",
        "uploads/2024/03/new.jpg",
        &fixture("photos/camera.jpg"),
    );
    let third = scan(&moto, &index, &resumable);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    let all = lines(&std::fs::read_to_string(&out).unwrap());
    let added = &all[total..];
    assert_eq!(added.len(), 2, "{added:#?}");
    let added = by_object(added);
    let coffee = &added["s3://media/uploads/2024/02/coffee.jpg"];
    assert_eq!(coffee["status"], "match");
    assert_eq!(coffee["matches"][0]["id"], "demo-chelsea");
    assert_ne!(
        coffee["version"],
        line("uploads/2024/02/coffee.jpg")["version"]
    );
    assert_eq!(
        added["s3://media/uploads/2024/03/new.jpg"]["status"],
        "clean"
    );
    let stderr = text(&third.stderr);
    assert!(
        stderr.contains(&format!("{} already done by an earlier run", total - 1)),
        "{stderr}"
    );
}

#[test]
fn a_prefix_limits_the_scan() {
    let moto = bucket();
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    // By default only matches and errors are written.
    let output = scan(&moto, &index, &["-j", "2", "s3://media/uploads/2024/"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let found = by_object(&lines(&text(&output.stdout)));
    let urls: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        urls,
        [
            "s3://media/uploads/2024/01/cat.jpg",
            "s3://media/uploads/2024/02/launch.bin"
        ]
    );
    assert!(
        text(&output.stderr).contains("scanned 3 files"),
        "{}",
        text(&output.stderr)
    );
    // A prefix is a key prefix, not a folder: "logs/1" is 10 objects.
    let logs = scan(&moto, &index, &["--all", "s3://media/logs/1"]);
    assert_eq!(lines(&text(&logs.stdout)).len(), 10);
}

#[test]
fn a_bucket_that_cannot_be_listed_stops_the_scan_with_status_2() {
    let moto = Moto::start();
    moto.create_bucket("media");
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let out = dir.path().join("out.jsonl");

    let missing = scan(
        &moto,
        &index,
        &["--out", arg(&out), "s3://no-such-bucket/x/"],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("cannot list s3://no-such-bucket/x/") && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );
    assert!(!out.exists(), "the scan stopped before writing anything");

    // Nothing listens on the endpoint: a clear error, in seconds.
    let started = Instant::now();
    let refused = hashgate(&[
        "scan",
        "--index",
        arg(&index),
        "--s3-endpoint",
        &format!("http://127.0.0.1:{}", free_port()),
        "--s3-allow-http",
        "s3://media/",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("cannot list s3://media/") && stderr.to_lowercase().contains("connect"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // An https-only client refuses a plain-HTTP endpoint unless allowed.
    let plain = hashgate(&[
        "scan",
        "--index",
        arg(&index),
        "--s3-endpoint",
        &moto.endpoint(),
        "s3://media/",
    ]);
    assert_eq!(plain.status.code(), Some(2), "{}", text(&plain.stderr));
    assert!(
        text(&plain.stderr).contains("--s3-allow-http"),
        "{}",
        text(&plain.stderr)
    );

    // A key the client cannot name (an empty segment) is one error line,
    // wherever it falls in a page; the keys around it are scanned.
    moto.create_bucket("odd");
    for n in 0..7 {
        moto.put("odd", &format!("k{n}.txt"), b"not an image");
    }
    moto.put("odd", "k7//b.jpg", &fixture("photos/chelsea.jpg"));
    moto.put("odd", "k8.jpg", &fixture("photos/chelsea.jpg"));
    moto.put("odd", "a//first.jpg", &fixture("photos/chelsea.jpg"));
    let odd = scan(&moto, &index, &["--all", "s3://odd/"]);
    assert_eq!(odd.status.code(), Some(1), "{}", text(&odd.stderr));
    let found = by_object(&lines(&text(&odd.stdout)));
    assert_eq!(found.len(), 10, "{found:#?}");
    for key in ["a//first.jpg", "k7//b.jpg"] {
        let line = &found[&format!("s3://odd/{key}")];
        assert_eq!(line["status"], "error", "{line}");
        assert!(
            line["error"]
                .as_str()
                .unwrap()
                .contains("empty path segment"),
            "{line}"
        );
    }
    assert_eq!(found["s3://odd/k8.jpg"]["status"], "match");
    assert_eq!(found["s3://odd/k6.txt"]["status"], "skipped");
}
