//! Endpoints in the shapes of Meta's Hasher-Matcher-Actioner (HMA) REST API,
//! so a client written for HMA can switch to `hashgate serve`. From HMA's
//! public description (its `hashing` and `matching` blueprints):
//!
//! | endpoint | request | answer |
//! |---|---|---|
//! | `POST /h/hash` | multipart form with one file in field `photo` (or the raw image as the body) | `{"pdq": HEX, "md5": HEX, "sha1": HEX, "sha256": HEX}` |
//! | `GET /m/raw_lookup` | `signal_type`, `signal`, optional `include_distance`, `banks` | `{"matches": [ID, ...]}`, or with `include_distance=true` `{"matches": [{"content_id", "distance", "bank"}]}` |
//! | `GET /m/lookup` | `signal_type`, `signal`, optional `banks` | `["BANK", ...]`: the lists that match |
//! | `POST /m/lookup` | as `POST /h/hash`, optional `banks` | `{"pdq": ["BANK", ...], "md5": [...], ...}` |
//!
//! Banks are hashgate's lists; content ids are the lists' entry ids (or
//! the list's hash when an entry has none). Signal types are `pdq`, `md5`
//! (HMA's `video_md5` is accepted as `md5`), `sha1`, `sha256`. `banks=A,B`
//! restricts a look-up to those lists (a hashgate extension; HMA's own
//! filter is per-bank configuration). An image is looked up exactly as
//! `POST /v1/match` looks it up (its variants, digests, the hygiene rules),
//! so the two give the same verdict. Answers to bad requests are hashgate's
//! JSON errors with HMA's status codes (400). Fetching a URL (`GET /h/hash?url=`)
//! is not offered: the service makes no outgoing requests.
//!
//! Every endpoint needs the bearer token, like `/v1/match`.

use std::collections::BTreeSet;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::api::{json, App, Body, HeldBody};
use super::error::ApiError;
use super::params::Params;
use hashgate::index::{Match, TypedHash};
use hashgate::matching::MatchSettings;
use hashgate::{HashKind, ImageHashes};

/// The counting label of an HMA path, `None` for any other path.
pub fn endpoint_label(path: &str) -> Option<&'static str> {
    match path {
        "/h/hash" => Some("/h/hash"),
        "/m/raw_lookup" => Some("/m/raw_lookup"),
        "/m/lookup" => Some("/m/lookup"),
        _ => None,
    }
}

/// Routes an HMA request (already authorized and admitted).
pub async fn route(app: &App, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match (path.as_str(), method) {
        ("/h/hash", Method::POST) => hash(app, request).await,
        ("/h/hash", Method::GET) => Err(ApiError::bad_query(
            "hashing a URL is not offered: POST the image (raw, or multipart field `photo`)",
        )),
        ("/m/raw_lookup", Method::GET) => raw_lookup(app, &request),
        ("/m/lookup", Method::GET) => lookup_signal(app, &request),
        ("/m/lookup", Method::POST) => lookup_image(app, request).await,
        ("/h/hash", _) | ("/m/lookup", _) => Err(ApiError::method_not_allowed("GET or POST")),
        _ => Err(ApiError::method_not_allowed("GET")),
    }
}

/// The image of a POST: the file of a multipart form (field `photo`, one
/// file), or the body itself.
async fn image_body(
    app: &App,
    request: Request<Incoming>,
    deadline: std::time::Instant,
) -> Result<HeldBody, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = app.read_body(request, deadline).await?;
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(body);
    }
    let boundary = multer::parse_boundary(&content_type)
        .map_err(|e| ApiError::bad_query(format!("multipart body: {e}")))?;
    let bytes = Bytes::copy_from_slice(body.bytes());
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut file: Option<Vec<u8>> = None;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_query(format!("multipart body: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_none() && name != "photo" {
            continue; // an ordinary form value
        }
        if name != "photo" {
            return Err(ApiError::bad_query(format!(
                "multipart field {name:?}: expected the file in field \"photo\" (content type photo)"
            )));
        }
        if file.is_some() {
            return Err(ApiError::bad_query("only one file per request"));
        }
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_query(format!("multipart body: {e}")))?;
        file = Some(data.to_vec());
    }
    let file = file.ok_or_else(|| {
        ApiError::bad_query("missing multipart/form-data file upload (field \"photo\")")
    })?;
    Ok(body.with_bytes(file))
}

async fn hash_image_of(
    app: &App,
    request: Request<Incoming>,
    settings: &MatchSettings,
) -> Result<ImageHashes, ApiError> {
    let deadline = std::time::Instant::now() + app.config.timeout;
    let body = image_body(app, request, deadline).await?;
    app.hash_bytes(body, settings.hash_options(), deadline)
        .await
}

/// `POST /h/hash`.
async fn hash(app: &App, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    #[derive(Serialize)]
    struct Hashes {
        pdq: String,
        md5: String,
        sha1: String,
        sha256: String,
    }
    Params::parse(request.uri().query(), &[])?;
    let settings = app.config.matching.clone();
    let hashes = hash_image_of(app, request, &settings).await?;
    json(
        StatusCode::OK,
        &Hashes {
            pdq: hashes.pdq.to_string(),
            md5: hashes.md5.to_string(),
            sha1: hashes.sha1.to_string(),
            sha256: hashes.sha256.to_string(),
        },
    )
}

/// The settings of a look-up: the service's, restricted to `banks`.
fn settings(app: &App, params: &Params) -> Result<MatchSettings, ApiError> {
    // `banks` is `lists` under HMA's name; the service's own parameter
    // checks apply.
    let lists = params.get("banks").map(str::to_owned);
    let mut settings = app.settings(&Params::parse(None, &[])?)?;
    if let Some(lists) = lists {
        settings.lists = MatchSettings::list_filter(&[lists]);
        hashgate::matching::check_lists(&settings.lists, &app.index.current().index.list_names())
            .map_err(|e| ApiError::unknown_list(e.to_string()))?;
    }
    Ok(settings)
}

/// `signal_type` and `signal` as a typed hash.
fn signal(params: &Params) -> Result<TypedHash, ApiError> {
    let kind_text = params
        .get("signal_type")
        .ok_or_else(|| ApiError::bad_query("signal_type is required"))?;
    let text = params
        .get("signal")
        .ok_or_else(|| ApiError::bad_query("signal is required"))?;
    let kind = match kind_text.trim().to_ascii_lowercase().as_str() {
        "pdq" => HashKind::Pdq,
        "md5" | "video_md5" | "photo_md5" => HashKind::Md5,
        "sha1" => HashKind::Sha1,
        "sha256" => HashKind::Sha256,
        _ => {
            return Err(ApiError::bad_query(format!(
                "No such SignalType '{kind_text}' (expected pdq, md5, sha1 or sha256)"
            )))
        }
    };
    TypedHash::parse(kind, text.trim())
        .map_err(|e| ApiError::bad_hash(format!("invalid signal: {e}")))
}

fn banks(matches: &[Match]) -> Vec<String> {
    let banks: BTreeSet<&str> = matches.iter().map(|m| m.list.as_str()).collect();
    banks.into_iter().map(str::to_owned).collect()
}

/// `GET /m/raw_lookup?signal_type=T&signal=S[&include_distance=true][&banks=A,B]`.
fn raw_lookup(app: &App, request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    #[derive(Serialize)]
    struct WithDistance {
        content_id: String,
        distance: String,
        bank: String,
    }
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Matches {
        Ids(Vec<String>),
        WithDistance(Vec<WithDistance>),
    }
    #[derive(Serialize)]
    struct Answer {
        matches: Matches,
    }
    let params = Params::parse(
        request.uri().query(),
        &["signal_type", "signal", "include_distance", "banks"],
    )?;
    let settings = settings(app, &params)?;
    let hash = signal(&params)?;
    let found = app.find_matches(&settings.hash_query(hash), None)?;
    let id = |m: &Match| m.id.clone().unwrap_or_else(|| m.hash.to_string());
    let matches = if params.flag("include_distance", false)? {
        Matches::WithDistance(
            found
                .iter()
                .map(|m| WithDistance {
                    content_id: id(m),
                    distance: m.distance.to_string(),
                    bank: m.list.clone(),
                })
                .collect(),
        )
    } else {
        Matches::Ids(found.iter().map(id).collect())
    };
    json(StatusCode::OK, &Answer { matches })
}

/// `GET /m/lookup?signal_type=T&signal=S[&banks=A,B]`: the banks matched.
fn lookup_signal(app: &App, request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let params = Params::parse(
        request.uri().query(),
        &["signal_type", "signal", "banks", "seed", "url"],
    )?;
    if params.get("url").is_some() {
        return Err(ApiError::bad_query("looking up a URL is not offered"));
    }
    let settings = settings(app, &params)?;
    let hash = signal(&params)?;
    let found = app.find_matches(&settings.hash_query(hash), None)?;
    json(StatusCode::OK, &banks(&found))
}

/// `POST /m/lookup[?banks=A,B]`: the banks an image matches, per signal type.
async fn lookup_image(app: &App, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    #[derive(Serialize)]
    struct PerType {
        pdq: Vec<String>,
        md5: Vec<String>,
        sha1: Vec<String>,
        sha256: Vec<String>,
    }
    let params = Params::parse(request.uri().query(), &["banks", "seed"])?;
    let settings = settings(app, &params)?;
    let hashes = hash_image_of(app, request, &settings).await?;
    let found = app.find_matches(&settings.image_query(&hashes), Some(&hashes))?;
    let of = |kind: HashKind| {
        let matches: Vec<Match> = found.iter().filter(|m| m.kind == kind).cloned().collect();
        banks(&matches)
    };
    json(
        StatusCode::OK,
        &PerType {
            pdq: of(HashKind::Pdq),
            md5: of(HashKind::Md5),
            sha1: of(HashKind::Sha1),
            sha256: of(HashKind::Sha256),
        },
    )
}
