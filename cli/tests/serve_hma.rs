//! `hashgate serve`'s HMA-shaped endpoints and its OpenAPI document, on the
//! real binary: an HMA client (scripts/hma_client.py) gets the verdicts
//! `/v1/match` gives, and every documented path answers as documented.

use std::collections::BTreeSet;
use std::process::Command;

use hashgate_testkit::http::*;
use serde_json::Value;

const TOKEN: &str = "hma-test-token";
const CHELSEA_PDQ: &str = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";
const ROCKET_SHA256: &str = "96677f79beb3872970f2d3d907e5063b9e42aa5b1fba85fa2d55e7f2ad681ff6";

fn server(dir: &std::path::Path) -> Server {
    let index = demo_index(dir);
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    Server::start(&index, &["--token-file", token.to_str().unwrap()])
}

fn call(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let auth = format!("Bearer {TOKEN}");
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    request(server.addr, method, path, &all, body)
}

fn multipart(field: &str, data: &[u8]) -> (Vec<u8>, String) {
    let boundary = "hashgate-test-boundary-7d1";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

#[test]
fn hma_endpoints_answer_in_hma_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let chelsea = read_fixture("photos/chelsea.jpg");
    let (form, content_type) = multipart("photo", &chelsea);

    // POST /h/hash: multipart (what HMA takes) and raw give the same hashes.
    let reply = call(
        &server,
        "POST",
        "/h/hash",
        &[("Content-Type", &content_type)],
        &form,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let hashes = reply.json();
    let raw = call(
        &server,
        "POST",
        "/h/hash",
        &[("Content-Type", "image/jpeg")],
        &chelsea,
    )
    .json();
    assert_eq!(hashes, raw);
    let cli: Value =
        serde_json::from_slice(&hashgate(&["hash", "-"], Some(&chelsea)).stdout).unwrap();
    for kind in ["pdq", "md5", "sha1", "sha256"] {
        assert_eq!(hashes[kind], cli[kind], "{kind}");
    }
    // A form without the file, or with it under another name, is a 400.
    let (wrong, wrong_type) = multipart("video", &chelsea);
    call(
        &server,
        "POST",
        "/h/hash",
        &[("Content-Type", &wrong_type)],
        &wrong,
    )
    .assert_error(400, "bad_query");
    // No token, no answer.
    assert_eq!(
        request(server.addr, "POST", "/h/hash", &[], &chelsea).status,
        401
    );
    assert_eq!(
        request(
            server.addr,
            "GET",
            "/m/lookup?signal_type=pdq&signal=00",
            &[],
            b""
        )
        .status,
        401
    );

    // GET /m/lookup and /m/raw_lookup by signal.
    let lookup = |query: &str| call(&server, "GET", query, &[], b"");
    assert_eq!(
        lookup(&format!("/m/lookup?signal_type=pdq&signal={CHELSEA_PDQ}")).json(),
        serde_json::json!(["demo"])
    );
    assert_eq!(
        lookup(&format!(
            "/m/lookup?signal_type=sha256&signal={ROCKET_SHA256}"
        ))
        .json(),
        serde_json::json!(["demo"])
    );
    assert_eq!(
        lookup(&format!(
            "/m/lookup?signal_type=pdq&signal={}",
            "0".repeat(64)
        ))
        .json(),
        serde_json::json!([])
    );
    assert_eq!(
        lookup(&format!(
            "/m/raw_lookup?signal_type=pdq&signal={CHELSEA_PDQ}"
        ))
        .json(),
        serde_json::json!({"matches": ["demo-chelsea"]})
    );
    assert_eq!(
        lookup(&format!(
            "/m/raw_lookup?signal_type=pdq&signal={CHELSEA_PDQ}&include_distance=true"
        ))
        .json(),
        serde_json::json!({"matches": [{"content_id": "demo-chelsea", "distance": "0", "bank": "demo"}]})
    );
    // Bank filters; unknown banks and signal types are 400s.
    assert_eq!(
        lookup(&format!(
            "/m/lookup?signal_type=pdq&signal={CHELSEA_PDQ}&banks=demo"
        ))
        .json(),
        serde_json::json!(["demo"])
    );
    lookup(&format!(
        "/m/lookup?signal_type=pdq&signal={CHELSEA_PDQ}&banks=nope"
    ))
    .assert_error(400, "unknown_list");
    assert_eq!(
        lookup(&format!("/m/lookup?signal_type=tmk&signal={CHELSEA_PDQ}")).status,
        400
    );
    assert_eq!(lookup("/m/lookup?signal_type=pdq&signal=xyz").status, 400);
    assert_eq!(lookup("/m/lookup?signal_type=pdq").status, 400);

    // POST /m/lookup: the banks per signal type of an image.
    let reply = call(
        &server,
        "POST",
        "/m/lookup",
        &[("Content-Type", &content_type)],
        &form,
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"pdq": ["demo"], "md5": [], "sha1": [], "sha256": []})
    );
}

#[test]
fn an_hma_client_gets_the_verdicts_of_v1_match() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let images = [
        "photos/chelsea.jpg",
        "photos/rocket.jpg",
        "photos/coffee.jpg",
        "photos/astronaut.jpg",
        "exact/synthetic-5x5.png",
    ];
    let paths: Vec<String> = images
        .iter()
        .map(|i| fixture(i).display().to_string())
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/hma_client.py");
    let output = Command::new("python3")
        .arg(script)
        .args([
            "--url",
            &format!("http://{}", server.addr),
            "--token",
            TOKEN,
        ])
        .args(&paths)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), images.len());
    let mut blocked = 0;
    for (line, image) in lines.iter().zip(images) {
        let bytes = read_fixture(image);
        let reply = call(&server, "POST", "/v1/match", &[], &bytes);
        assert_eq!(reply.status, 200, "{}", reply.text());
        let v1: BTreeSet<String> = reply.json()["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["list"].as_str().unwrap().to_owned())
            .collect();
        let hma: BTreeSet<String> = line["banks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(hma, v1, "{image}");
        blocked += usize::from(!v1.is_empty());
    }
    // chelsea (PDQ) and rocket (SHA-256) are on the demo list; the others not.
    assert_eq!(blocked, 2);
    // The two-step flow (hash, then look up each signal) agrees for them.
    assert_eq!(lines[0]["by_hash"]["pdq"], serde_json::json!(["demo"]));
    assert_eq!(lines[1]["by_hash"]["sha256"], serde_json::json!(["demo"]));
}

/// Checks `value` against an OpenAPI schema (the subset the document uses).
fn check(value: &Value, schema: &Value, doc: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return check(value, &doc["components"]["schemas"][name], doc, at);
    }
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_u64() || value.is_i64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        return Err(format!("{at}: {value} is not {}", schema["type"]));
    }
    if let (Some(pattern), Some(text)) = (schema["pattern"].as_str(), value.as_str()) {
        // Patterns here are all ^[0-9a-f]{N}$.
        let digits: usize = pattern
            .trim_start_matches("^[0-9a-f]{")
            .trim_end_matches("}$")
            .parse()
            .unwrap();
        if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{at}: {text:?} does not match {pattern}"));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            return Err(format!("{at}: {value} not in {values:?}"));
        }
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        if value.get(name.as_str().unwrap()).is_none() {
            return Err(format!("{at}: missing {name}"));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(field) = value.get(name) {
                check(field, property, doc, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            check(item, items, doc, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn every_documented_path_answers_as_the_openapi_document_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let doc = request(server.addr, "GET", "/openapi.json", &[], b"").json();
    assert_eq!(doc["openapi"], "3.0.3");
    let chelsea = read_fixture("photos/chelsea.jpg");
    let (form, form_type) = multipart("photo", &chelsea);
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            // Required query parameters get a value of their schema.
            let mut query = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["required"] == true {
                    let name = parameter["name"].as_str().unwrap();
                    let value = match name {
                        "signal_type" => "pdq",
                        "signal" => CHELSEA_PDQ,
                        other => panic!("no sample for required parameter {other}"),
                    };
                    query.push(format!("{name}={value}"));
                }
            }
            if path == "/v1/match" && method == "get" {
                query.push(format!("pdq={CHELSEA_PDQ}"));
            }
            let target = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{}", query.join("&"))
            };
            let bodies: Vec<(Option<&str>, &[u8])> =
                match operation["requestBody"]["content"].as_object() {
                    None => vec![(None, &b""[..])],
                    Some(content) => content
                        .keys()
                        .map(|kind| match kind.as_str() {
                            "multipart/form-data" => (Some(form_type.as_str()), &form[..]),
                            "image/*" => (Some("image/jpeg"), &chelsea[..]),
                            other => (Some(other), &chelsea[..]),
                        })
                        .collect(),
                };
            for (content_type, body) in bodies {
                let headers: Vec<(&str, &str)> = content_type
                    .map(|t| ("Content-Type", t))
                    .into_iter()
                    .collect();
                let reply = call(&server, &method.to_uppercase(), &target, &headers, body);
                let status = reply.status.to_string();
                let documented = &operation["responses"][&status];
                assert!(
                    documented.is_object(),
                    "{method} {target}: status {status} is not documented: {}",
                    reply.text()
                );
                assert_eq!(
                    status,
                    "200",
                    "{method} {target} ({content_type:?}): {}",
                    reply.text()
                );
                if let Some(schema) = documented["content"]["application/json"].get("schema") {
                    check(&reply.json(), schema, &doc, &format!("{method} {path}")).unwrap();
                }
                // Without the token, protected paths say 401 as documented.
                if operation.get("security").is_some() {
                    let reply =
                        request(server.addr, &method.to_uppercase(), &target, &headers, body);
                    assert_eq!(reply.status, 401, "{method} {target}");
                    let schema =
                        &operation["responses"]["401"]["content"]["application/json"]["schema"];
                    check(&reply.json(), schema, &doc, "401").unwrap();
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "{checked}");
    // And nothing the server answers is missing from the document.
    for path in [
        "/v1/hash",
        "/v1/match",
        "/h/hash",
        "/m/lookup",
        "/m/raw_lookup",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
}

#[test]
fn matching_is_rate_limited_per_token() {
    let dir = tempfile::tempdir().unwrap();
    let index = demo_index(dir.path());
    let tokens = dir.path().join("token");
    std::fs::write(&tokens, TOKEN).unwrap();
    let server = Server::start(
        &index,
        &[
            "--token-file",
            tokens.to_str().unwrap(),
            "--rate-limit",
            "2",
        ],
    );
    let lookup = format!("/m/lookup?signal_type=pdq&signal={CHELSEA_PDQ}");
    let v1 = format!("/v1/match?pdq={CHELSEA_PDQ}");
    assert_eq!(call(&server, "GET", &lookup, &[], b"").status, 200);
    assert_eq!(call(&server, "GET", &v1, &[], b"").status, 200);
    // The burst (2) is spent: both kinds of endpoint answer 429 now.
    let limited = call(&server, "GET", &v1, &[], b"");
    limited.assert_error(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    call(&server, "GET", &lookup, &[], b"").assert_error(429, "rate_limited");
    // Health checks and the document are not limited.
    assert_eq!(
        request(server.addr, "GET", "/healthz", &[], b"").status,
        200
    );
    assert_eq!(
        request(server.addr, "GET", "/openapi.json", &[], b"").status,
        200
    );
    // A second later the bucket has refilled.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(call(&server, "GET", &v1, &[], b"").status, 200);
}
