//! `hashgate report build` and `hashgate evidence get` run as an operator
//! would: the real binary on synthetic records, manifests and objects.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::Command;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hashgate::evidence::{object_bytes, Header};
use sha2::{Digest, Sha256};

fn hashgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hashgate"))
}

const SHA: &str = "3c1e0a3f5e0c4f1a9b2d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "reporting.json",
        r#"{"environment": "test",
            "reporter": {"first_name": "Rae", "last_name": "Porter", "email": "abuse@example.com"},
            "terms_of_service": "https://example.com/terms", "legal_url": "https://example.com/legal"}"#,
    )
}

fn record(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "record.json",
        &format!(
            r#"{{"v":1,"type":"match","key":"report/v1/{SHA}/5f1b0c2a9d3e4f60","route":"example.com/*",
               "sha256":"{SHA}","pdq":null,"first_seen":"2026-03-01T12:00:00.000Z","last_seen":"2026-03-01T12:05:00.000Z",
               "last_seen_ms":0,"count":2,"actions":{{"blocked":2}},"directions":["response","upload"],
               "matches":[{{"list":"demo","hash_type":"pdq","hash":"{SHA}","distance":6,"entry_id":"demo-7","matched_by":"pdq-rot90"}}],
               "urls":["https://example.com/images/a.jpg"],"request_ids":["r1"],"event_ids":["e1"],"notified_at":null,
               "retain_until":"2027-03-01T12:05:00.000Z"}}"#
        ),
    )
}

fn manifest(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "sighting.json",
        &format!(
            r#"{{"v":1,"sha256":"{SHA}","size":1234,"content_type":"image/jpeg","url":"https://example.com/upload",
               "route":"example.com/*","request_id":"r2","direction":"upload","action":"blocked",
               "time":"2026-03-01T12:05:00.000Z","time_ms":1772366700000,"matches":[],
               "uploader":{{"ip":"198.51.100.23","user_agent":"Mozilla/5.0","headers":{{"x-account-id":"u-981"}}}},
               "object_key":"evidence/v1/{SHA}/object","key_id":"k2026","retain_until":"2027-03-01T12:05:00.000Z"}}"#
        ),
    )
}

#[test]
fn report_build_writes_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.xml");
    let status = hashgate()
        .args(["report", "build", "--record"])
        .arg(record(dir.path()))
        .arg("--config")
        .arg(config(dir.path()))
        .arg("--manifest")
        .arg(manifest(dir.path()))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<report "));
    assert!(xml.contains(
        "<url>https://example.com/images/a.jpg</url><url>https://example.com/upload</url>"
    ));
    assert!(xml.contains("<ipCaptureEvent><ipAddress>198.51.100.23</ipAddress><eventName>Upload</eventName><dateTime>2026-03-01T12:05:00.000Z</dateTime></ipCaptureEvent>"));
    assert!(
        xml.contains("entry demo-7 (pdq distance 6, pdq-rot90)")
            || xml.contains("entry demo-7 (pdq distance 6, rot90)")
    );
    let order = [
        "<incidentSummary>",
        "<internetDetails>",
        "<reporter>",
        "<personOrUserReported>",
        "</personOrUserReported><additionalInfo>",
    ];
    let positions: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
}

#[test]
fn report_build_refuses_an_incomplete_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"reporter": {"first_name": "Rae", "last_name": "Porter", "email": "not-an-address"}}"#,
    );
    let output = hashgate()
        .args(["report", "build", "--record"])
        .arg(record(dir.path()))
        .arg("--config")
        .arg(bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("reporter.email"));
}

fn sealed(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let header = Header {
        key_id: "k2026".into(),
        nonce: [9; 12],
        sha256: hex::encode(Sha256::digest(plain)),
        size: plain.len() as u64,
        content_type: "image/jpeg".into(),
    };
    let line = header.line().unwrap();
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&header.nonce),
            Payload {
                msg: plain,
                aad: line.as_bytes(),
            },
        )
        .unwrap();
    object_bytes(&line, &ct)
}

#[test]
fn evidence_get_decrypts_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let key = [5u8; 32];
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let plain = b"\xff\xd8\xff\xe0 not really a jpeg".to_vec();
    let object = dir.path().join("object");
    std::fs::write(&object, sealed(&key, &plain)).unwrap();
    let out = dir.path().join("image.jpg");
    let status = hashgate()
        .args(["evidence", "get"])
        .arg(&object)
        .arg("--out")
        .arg(&out)
        .args([
            "--key-id",
            "k2026",
            "--sha256",
            &hex::encode(Sha256::digest(&plain)),
        ])
        .env("EVIDENCE_KEY", &key_b64)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), plain);

    // Another key, another key id, or an altered object: refused, nothing written.
    let other = base64::engine::general_purpose::STANDARD.encode([6u8; 32]);
    let refused = |args: &[&str], key: &str, object: &Path| {
        let out = dir.path().join("refused");
        let output = hashgate()
            .args(["evidence", "get"])
            .arg(object)
            .arg("--out")
            .arg(&out)
            .args(args)
            .env("EVIDENCE_KEY", key)
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(!out.exists());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(refused(&[], &other, &object).contains("does not decrypt"));
    assert!(refused(&["--key-id", "k2025"], &key_b64, &object).contains("k2025"));
    let mut altered = std::fs::read(&object).unwrap();
    let last = altered.len() - 20;
    altered[last] ^= 1;
    let altered_path = dir.path().join("altered");
    std::fs::write(&altered_path, altered).unwrap();
    assert!(refused(&[], &key_b64, &altered_path).contains("does not decrypt"));
}
