//! Request handling. Each request goes through named phases, in order, and
//! any phase may end it with an [`ApiError`]:
//!
//! 1. **route**: method and path to an endpoint (404, 405);
//! 2. **authorize**: the bearer token, when one is configured (401);
//!    `/healthz` is exempt so load balancers can probe it;
//! 3. **admit**: take one of `max_inflight` slots without waiting (503 with
//!    `Retry-After` when none is free); the slot is held to the answer;
//! 4. **read body** under the size cap (413), the byte budget (503 with
//!    `Retry-After` when the bodies held would go past `max_buffered`; see
//!    [`super::memory`]) and the request deadline (408);
//! 5. **hash** on one of `workers` blocking threads, waiting for a free one
//!    only until the deadline (503);
//! 6. **look up** in the current index snapshot (for `/v1/match`);
//! 7. **answer** with the same JSON the command line prints, and count it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::ServeConfig;
use super::error::ApiError;
use super::memory::{BodyBudget, Reserved};
use super::metrics::Metrics;
use super::params::Params;
use super::reload::IndexHolder;
use crate::hash_cmd::hash_options;
use crate::lines::{HashLine, MatchOutput};
use hashgate::index::{TypedHash, MAX_PDQ_THRESHOLD};
use hashgate::matching::MatchRecord;
use hashgate::matching::{check_lists, MatchSettings};
use hashgate::{hash_image, HashKind, HashOptions, ImageHashes, QuerySet};

/// What every response body is.
pub type Body = Full<Bytes>;

/// The name the request body goes by in answers: `-`, as for standard input
/// on the command line (`hashgate hash -`).
const BODY_NAME: &str = "-";

/// The service: configuration, index, counters and the two limits.
pub struct App {
    pub(super) config: ServeConfig,
    pub(super) index: Arc<IndexHolder>,
    metrics: Arc<Metrics>,
    /// Requests admitted at once (phase 3).
    admission: Arc<Semaphore>,
    /// Images hashed at once (phase 5).
    workers: Arc<Semaphore>,
    /// Bytes of bodies held at once (phase 4).
    budget: BodyBudget,
    /// Matching requests per token (phase 2).
    rate_limit: super::ratelimit::RateLimit,
}

/// A request body, and its bytes' share of the budget: freed together.
pub struct HeldBody {
    bytes: Vec<u8>,
    _reserved: Reserved,
}

impl HeldBody {
    /// The bytes read.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A part of the body (a multipart file) in its place, under the same
    /// share of the budget.
    pub(super) fn with_bytes(self, bytes: Vec<u8>) -> HeldBody {
        HeldBody {
            bytes,
            _reserved: self._reserved,
        }
    }
}

/// An admission slot; counted in the in-flight gauge while held.
pub(super) struct Admitted {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.metrics.inflight(-1);
    }
}

/// The endpoint label for counting, from a fixed set.
fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/v1/hash" => "/v1/hash",
        "/v1/match" => "/v1/match",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        path => super::hma::endpoint_label(path).unwrap_or("other"),
    }
}

/// A JSON answer: one line, as the command line prints it.
pub(super) fn json<T: Serialize>(
    status: StatusCode,
    value: &T,
) -> Result<Response<Body>, ApiError> {
    let mut body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// Compares in time that tells neither how much of a guessed token was
/// right nor whether its length was: `subtle`'s constant-time equality on
/// the SHA-256 digests of both (equal digests, equal tokens).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a)
        .as_slice()
        .ct_eq(Sha256::digest(b).as_slice())
        .into()
}

impl App {
    pub fn new(config: ServeConfig, index: Arc<IndexHolder>, metrics: Arc<Metrics>) -> Self {
        App {
            admission: Arc::new(Semaphore::new(config.max_inflight)),
            workers: Arc::new(Semaphore::new(config.workers)),
            budget: BodyBudget::new(config.max_buffered),
            rate_limit: super::ratelimit::RateLimit::new(config.rate_limit),
            config,
            index,
            metrics,
        }
    }

    /// Answers one request; never fails (errors become JSON answers).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let endpoint = endpoint_label(request.uri().path());
        let response = match self.route(request).await {
            Ok(response) => response,
            Err(error) => {
                self.metrics.error(error.kind);
                error.into_response()
            }
        };
        self.metrics.request(endpoint, response.status().as_u16());
        Ok(response)
    }

    /// Phase 1: route.
    async fn route(&self, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let method = request.method().clone();
        match request.uri().path() {
            "/healthz" => match method {
                Method::GET | Method::HEAD => self.healthz(),
                _ => Err(ApiError::method_not_allowed("GET")),
            },
            "/metrics" => match method {
                Method::GET => {
                    self.authorize(&request)?;
                    self.metrics_text()
                }
                _ => Err(ApiError::method_not_allowed("GET")),
            },
            "/v1/hash" => match method {
                Method::POST => {
                    self.authorize(&request)?;
                    let _slot = self.admit()?;
                    self.hash(request).await
                }
                _ => Err(ApiError::method_not_allowed("POST")),
            },
            "/v1/match" => match method {
                Method::POST => {
                    self.authorize(&request)?;
                    self.limit(&request)?;
                    let _slot = self.admit()?;
                    self.match_image(request).await
                }
                Method::GET => {
                    self.authorize(&request)?;
                    self.limit(&request)?;
                    let _slot = self.admit()?;
                    self.match_hash(&request)
                }
                _ => Err(ApiError::method_not_allowed("GET or POST")),
            },
            "/openapi.json" => match method {
                Method::GET => super::openapi::answer(),
                _ => Err(ApiError::method_not_allowed("GET")),
            },
            path if super::hma::endpoint_label(path).is_some() => {
                self.authorize(&request)?;
                self.limit(&request)?;
                let _slot = self.admit()?;
                super::hma::route(self, request).await
            }
            path => Err(ApiError::not_found(path)),
        }
    }

    /// Phase 2: the bearer token.
    pub(super) fn authorize(&self, request: &Request<Incoming>) -> Result<(), ApiError> {
        let Some(token) = &self.config.token else {
            return Ok(());
        };
        let given = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, given)| given.trim());
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Phase 2, for the matching endpoints: the caller's rate limit (per
    /// bearer token; one shared bucket when none is configured).
    fn limit(&self, request: &Request<Incoming>) -> Result<(), ApiError> {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        self.rate_limit
            .take(token, Instant::now())
            .map_err(ApiError::rate_limited)
    }

    /// Phase 3: a slot, or 503 at once.
    pub(super) fn admit(&self) -> Result<Admitted, ApiError> {
        let permit = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| ApiError::overloaded())?;
        self.metrics.inflight(1);
        Ok(Admitted {
            _permit: permit,
            metrics: Arc::clone(&self.metrics),
        })
    }

    /// Phase 4: the whole body, under the size cap, the byte budget and
    /// the deadline, into one buffer.
    pub(super) async fn read_body(
        &self,
        request: Request<Incoming>,
        deadline: Instant,
    ) -> Result<HeldBody, ApiError> {
        let limit = self.config.max_body;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::body_too_large(limit));
        }
        // Take a declared length from the budget before reading a byte.
        let declared = declared.map_or(0, |len| len as usize);
        let mut reserved = BodyBudget::empty();
        if !self.budget.grow(&mut reserved, declared) {
            return Err(ApiError::over_budget());
        }
        let mut bytes: Vec<u8> = Vec::with_capacity(declared);
        let mut body = request.into_body();
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|error| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_body",
                        format!("reading the request body: {error}"),
                    )
                })?;
                let Ok(data) = frame.into_data() else {
                    continue; // trailers
                };
                let len = bytes.len() + data.len();
                if len > limit {
                    return Err(ApiError::body_too_large(limit));
                }
                if len > bytes.capacity() {
                    // A body without a length grows by doubling, each step
                    // taken from the budget first.
                    let want = (bytes.capacity() * 2).max(len).min(limit);
                    if !self.budget.grow(&mut reserved, want) {
                        return Err(ApiError::over_budget());
                    }
                    bytes.reserve_exact(want - bytes.len());
                }
                bytes.extend_from_slice(&data);
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline.into(), read).await {
            Err(_) => Err(ApiError::body_timeout()),
            Ok(Err(error)) => Err(error),
            Ok(Ok(())) => Ok(HeldBody {
                bytes,
                _reserved: reserved,
            }),
        }
    }

    /// Phase 5: hash on a worker thread, waiting for one until the deadline.
    pub(super) async fn hash_bytes(
        &self,
        body: HeldBody,
        mut options: HashOptions,
        deadline: Instant,
    ) -> Result<ImageHashes, ApiError> {
        options.decode.limits = self.config.limits();
        let metrics = Arc::clone(&self.metrics);
        let work = async {
            let permit = Arc::clone(&self.workers)
                .acquire_owned()
                .await
                .map_err(|_| ApiError::internal("worker pool closed"))?;
            // Once started, hashing runs to the end even if the deadline
            // passes; the worker slot is held until then, so CPU stays bounded.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let start = Instant::now();
                let result = hash_image(&body.bytes, &options);
                metrics.hashed(start.elapsed());
                // The body and its share of the budget go here, on the
                // worker, even when the request has timed out.
                drop(body);
                result
            })
            .await
            .map_err(|_| ApiError::internal("hashing failed unexpectedly"))
        };
        match tokio::time::timeout_at(deadline.into(), work).await {
            Err(_) => Err(ApiError::busy_timeout()),
            Ok(Err(error)) => Err(error),
            Ok(Ok(Err(error))) => Err(ApiError::from_hash(&error)),
            Ok(Ok(Ok(hashes))) => Ok(hashes),
        }
    }

    /// `POST /v1/hash[?dihedral=true][&variants=own|dihedral|all][&exif=true][&full=true]`.
    async fn hash(&self, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let deadline = Instant::now() + self.config.timeout;
        let params = Params::parse(
            request.uri().query(),
            &["dihedral", "variants", "exif", "full"],
        )?;
        let options = hash_options(
            params.flag("dihedral", false)?,
            params.query_set("variants", QuerySet::Own)?,
            params.flag("exif", false)?,
            params.flag("full", false)?,
        );
        let body = self.read_body(request, deadline).await?;
        let hashes = self.hash_bytes(body, options, deadline).await?;
        json(StatusCode::OK, &HashLine::new(BODY_NAME, &hashes))
    }

    /// The match settings for one request: the service's, with `threshold`
    /// and `lists` overridden by parameters.
    pub(super) fn settings(&self, params: &Params) -> Result<MatchSettings, ApiError> {
        let mut settings = self.config.matching.clone();
        settings.threshold = params.number("threshold", settings.threshold, MAX_PDQ_THRESHOLD)?;
        if let Some(lists) = params.get("lists") {
            settings.lists = MatchSettings::list_filter(&[lists]);
            // Checked before any body is read; the index may still be
            // swapped before the look-up, which checks again.
            check_lists(&settings.lists, &self.index.current().index.list_names())
                .map_err(|e| ApiError::unknown_list(e.to_string()))?;
        }
        Ok(settings)
    }

    /// Phase 6 and 7 for `/v1/match`: look up and answer; matches of an
    /// image are labelled with the variant that found them.
    fn answer_match(
        &self,
        name: String,
        query: &hashgate::index::Query,
        image: Option<&ImageHashes>,
    ) -> Result<Response<Body>, ApiError> {
        let matches = self.find_matches(query, image)?;
        let matches: Vec<MatchRecord> = match image {
            Some(hashes) => MatchRecord::for_image(hashes, matches),
            None => matches.into_iter().map(MatchRecord::from).collect(),
        };
        json(
            StatusCode::OK,
            &MatchOutput::Matched {
                query: name,
                matches,
            },
        )
    }

    /// Phase 6: the matches of `query` in the current index, after the
    /// hygiene rules, counted.
    pub(super) fn find_matches(
        &self,
        query: &hashgate::index::Query,
        image: Option<&ImageHashes>,
    ) -> Result<Vec<hashgate::index::Match>, ApiError> {
        let index = self.index.current();
        // The service's own --lists were checked at start; a reloaded index
        // without one of them is the service's fault, not the client's.
        check_lists(&query.lists, &index.index.list_names()).map_err(|e| {
            if query.lists == self.config.matching.lists {
                ApiError::internal(format!("the loaded index lacks a list of --lists: {e}"))
            } else {
                ApiError::unknown_list(e.to_string())
            }
        })?;
        let matches = index
            .index
            .find(query)
            .map_err(|e| ApiError::internal(format!("index lookup failed: {e}")))?;
        let matches = self.config.matching.apply_hygiene(matches, image);
        self.metrics
            .matched(matches.iter().map(|m| (m.list.as_str(), m.kind.name())));
        Ok(matches)
    }

    /// `POST /v1/match[?threshold=N][&lists=A,B][&variants=own|dihedral|all]`.
    async fn match_image(&self, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let deadline = Instant::now() + self.config.timeout;
        let params = Params::parse(request.uri().query(), &["threshold", "lists", "variants"])?;
        let mut settings = self.settings(&params)?;
        settings.variants = params.query_set("variants", settings.variants)?;
        let body = self.read_body(request, deadline).await?;
        let hashes = self
            .hash_bytes(body, settings.hash_options(), deadline)
            .await?;
        self.answer_match(
            BODY_NAME.to_owned(),
            &settings.image_query(&hashes),
            Some(&hashes),
        )
    }

    /// `GET /v1/match?pdq=HEX` (or `md5`, `sha1`, `sha256`, `vec72`: exactly
    /// one), with optional `threshold`, `lists`, `vec72_threshold`.
    fn match_hash(&self, request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
        const KINDS: [(&str, HashKind); 5] = [
            ("pdq", HashKind::Pdq),
            ("md5", HashKind::Md5),
            ("sha1", HashKind::Sha1),
            ("sha256", HashKind::Sha256),
            ("vec72", HashKind::Vec72),
        ];
        let params = Params::parse(
            request.uri().query(),
            &[
                "pdq",
                "md5",
                "sha1",
                "sha256",
                "vec72",
                "threshold",
                "lists",
                "vec72_threshold",
            ],
        )?;
        let mut settings = self.settings(&params)?;
        settings.vec72_threshold =
            params.number("vec72_threshold", settings.vec72_threshold, u32::MAX)?;
        let given: Vec<(&str, HashKind, &str)> = KINDS
            .iter()
            .filter_map(|&(name, kind)| params.get(name).map(|text| (name, kind, text)))
            .collect();
        let [(name, kind, text)] = given[..] else {
            return Err(ApiError::bad_query(
                "give exactly one of pdq, md5, sha1, sha256 or vec72 (one hash per request)",
            ));
        };
        let hash = TypedHash::parse(kind, text.trim())
            .map_err(|e| ApiError::bad_hash(format!("{name}={text:?}: {e}")))?;
        self.answer_match(format!("{name}:{hash}"), &settings.hash_query(hash), None)
    }

    /// `GET /healthz`: up, and what index is loaded.
    fn healthz(&self) -> Result<Response<Body>, ApiError> {
        #[derive(Serialize)]
        struct Health {
            status: &'static str,
            index_records: usize,
            index_loaded_at: f64,
        }
        let index = self.index.current();
        json(
            StatusCode::OK,
            &Health {
                status: "ok",
                index_records: index.index.distinct_hashes(),
                index_loaded_at: index.loaded_unix_seconds(),
            },
        )
    }

    /// `GET /metrics`.
    fn metrics_text(&self) -> Result<Response<Body>, ApiError> {
        let text = self.metrics.render(&self.index.current());
        let mut response = Response::new(Full::new(Bytes::from(text)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn endpoint_labels_are_a_fixed_set() {
        assert_eq!(endpoint_label("/v1/hash"), "/v1/hash");
        assert_eq!(endpoint_label("/v1/hash/../x"), "other");
        assert_eq!(endpoint_label("/anything-a-client-sends"), "other");
    }
}
