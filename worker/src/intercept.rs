//! The request path, as named phases.
//!
//! ```text
//! route        which policy applies (most specific pattern); none or disabled: pass through
//! exempt       HEAD and websocket upgrades: pass through
//! upload       PUT/POST on a route scanning uploads: read (raw or multipart) -> check each image
//!              -> 451 before the origin sees it, or forward the same bytes
//! origin       fetch upstream (redirects not followed)
//! inspect      should this response be looked at? (status, Content-Type, whole-range 206)
//! cache        URL + ETag seen before? decide without reading
//! read         read a clone of the body under the route's cap (a peek for non-image types)
//! hash         PDQ + 8 dihedral variants + views (alpha, frames, SVG images) + MD5/SHA-1/SHA-256,
//!              in wasm (verdict cache by SHA-256 first)
//! look up      KV bulk reads of the keys the index plans, resolved to matches
//! verdict      clean or match
//! respond      clean: the origin's response object itself; block: 451; flag: original + event;
//!              failure: fail open (original + "unscanned" event) or closed (503 + event);
//!              an undecodable format (AVIF, HEIF, JPEG XL) as the route's `undecodable`
//!              says; an SVG with no raster image in it: original, no event
//! ```
//!
//! Passing responses are the origin's own `Response` objects: the scan reads
//! a clone (a tee of the body), so status, status text, headers and bytes
//! are exactly the origin's, and anything not inspected is never buffered.
//! Nothing here panics on input: every failure is a [`ScanError`] handled by
//! the fail mode, or a `JsValue` error for the runtime itself.

use hashgate::index::QueryPlan;
use wasm_bindgen::JsValue;
use web_sys::{Request, Response};
use worker::{Context, Env};

use crate::body::{self, BodyRead};
use crate::config::{self, with_cache, Config, HASH_INDEX};
use crate::digests;
use crate::error::ScanError;
use crate::events::{ActionTaken, Direction, Event, EventContext};
use crate::lookup::lookup;
use crate::origin;
use crate::outbox;
use crate::pattern::host_and_path;
use crate::policy::{Action, Route};
use crate::respond;
use crate::runtime::{header, js_error_text, log_error, log_warn, now_ms, uuid, wasm_memory_bytes};
use crate::sniff::{self, Inspect};
use crate::upload::{self, UploadPlan};
use crate::verdict::{self, Fallback, ImageSummary, Verdict};
use crate::verdict_cache::{CacheKey, Cached};

/// Handles one request.
pub async fn handle(request: Request, env: Env, ctx: Context) -> Result<Response, JsValue> {
    if header(&request.headers(), origin::LOOP_GUARD).is_some() {
        return respond::loop_detected();
    }
    let request_id = request_id(&request);
    // Events this isolate could not queue earlier go out now, after the
    // response, once the queue takes them again.
    if outbox::due() {
        let env = env.clone();
        ctx.wait_until(async move { outbox::drain_and_log(&env).await });
    }
    let config = match config::load(&env).await {
        Ok(config) => config,
        Err(e) => {
            log_error(&format!("hashgate: {e}"));
            return respond::config_error(&e.to_string());
        }
    };

    // Phase: route.
    let url = request.url();
    let (host, path) = host_and_path(&url);
    let route = config
        .policy
        .route_for(host, path)
        .filter(|r| r.enabled)
        .cloned();
    let Some(route) = route else {
        return pass_through(&request, &config, &request_id).await;
    };

    // Phase: exempt.
    let method = request.method();
    let upgrade =
        header(&request.headers(), "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if upgrade || method.eq_ignore_ascii_case("HEAD") {
        return pass_through(&request, &config, &request_id).await;
    }

    let scope = Scope {
        env,
        ctx,
        config,
        route,
        request_id,
        url,
    };

    // Phase: upload.
    let upstream = if scope.route.scan_uploads {
        match scope.check_upload(&request).await? {
            Upload::Refused(response) => return Ok(response),
            Upload::Forward(upstream) => upstream,
        }
    } else {
        origin::upstream(&request, scope.config.origin.as_deref())?
    };

    // Phase: origin.
    let response = match origin::fetch(&upstream).await {
        Ok(response) => response,
        Err(e) => {
            log_warn(&format!(
                "hashgate: origin fetch failed for {}: {}",
                scope.url,
                js_error_text(&e)
            ));
            return respond::bad_gateway(&scope.request_id);
        }
    };
    if !scope.route.scan_responses {
        return Ok(response);
    }
    scope.check_response(response).await
}

/// No route, or the route is off: the request goes to the origin and the
/// origin's response comes back as it is, streaming.
async fn pass_through(
    request: &Request,
    config: &Config,
    request_id: &str,
) -> Result<Response, JsValue> {
    let upstream = origin::upstream(request, config.origin.as_deref())?;
    match origin::fetch(&upstream).await {
        Ok(response) => Ok(response),
        Err(e) => {
            log_warn(&format!(
                "hashgate: origin fetch failed for {}: {}",
                request.url(),
                js_error_text(&e)
            ));
            respond::bad_gateway(request_id)
        }
    }
}

/// `cf-ray` when Cloudflare set it (so operators can correlate with their
/// logs), else a fresh UUID.
fn request_id(request: &Request) -> String {
    header(&request.headers(), "cf-ray")
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .unwrap_or_else(uuid)
}

fn content_length(headers: &web_sys::Headers) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// Whether `Content-Length` counts the bytes a body stream yields: true
/// unless a `Content-Encoding` (which the runtime decodes) is present.
fn length_is_exact(headers: &web_sys::Headers) -> bool {
    header(headers, "content-encoding").is_none_or(|e| e.trim().eq_ignore_ascii_case("identity"))
}

/// What the upload phase decided.
enum Upload {
    /// Answer this instead of going to the origin.
    Refused(Response),
    /// Send this to the origin.
    Forward(Request),
}

/// An image that was checked.
struct Checked {
    image: ImageSummary,
    verdict: Verdict,
    cached: bool,
}

/// An image that could not be checked.
struct Unchecked {
    error: ScanError,
    sha256: Option<String>,
}

/// Everything one scanned request needs.
struct Scope {
    env: Env,
    ctx: Context,
    config: Config,
    route: Route,
    request_id: String,
    url: String,
}

impl Scope {
    fn event_context(
        &self,
        direction: Direction,
        field: Option<String>,
        filename: Option<String>,
    ) -> EventContext {
        EventContext {
            request_id: self.request_id.clone(),
            route: self.route.pattern.as_str().to_owned(),
            url: self.url.clone(),
            direction,
            field,
            filename,
        }
    }

    /// Puts an event on the queue without delaying the response; if the
    /// queue refuses it, it waits in the outbox ([`outbox`]).
    fn emit(&self, event: Event) {
        let env = self.env.clone();
        self.ctx.wait_until(async move {
            outbox::send(&env, &event).await;
        });
    }

    /// Phases hash -> look up -> verdict for one image, with the verdict
    /// cache keyed by the bytes' SHA-256 in front.
    async fn check_image(&self, bytes: &[u8]) -> Result<Checked, Unchecked> {
        let digests = digests::exact_digests(bytes).await;
        let sha256 = digests.sha256.to_string();
        let key = CacheKey::Digest {
            route: self.route.verdict_key(),
            sha256: sha256.clone(),
        };
        if let Some(hit) = with_cache(|cache| cache.get(&key, now_ms())) {
            return Ok(Checked {
                image: hit.image,
                verdict: hit.verdict,
                cached: true,
            });
        }
        let unchecked = |error: ScanError| Unchecked {
            error,
            sha256: Some(sha256.clone()),
        };
        // Phase: hash.
        let hashes = verdict::hash(bytes, &self.route, digests).map_err(unchecked)?;
        // Phase: look up.
        let plan = QueryPlan::new(&verdict::query(&hashes, &self.route))
            .map_err(|e| unchecked(e.into()))?;
        let kv = self.env.kv(HASH_INDEX).map_err(|e| {
            unchecked(ScanError::IndexUnavailable(format!(
                "{HASH_INDEX} is not bound: {e}"
            )))
        })?;
        let matches = lookup(&kv, &plan, self.route.kv_timeout_ms)
            .await
            .map_err(unchecked)?;
        // Phase: verdict.
        let checked = Checked {
            image: verdict::summarize(&hashes),
            verdict: verdict::verdict(&matches, &hashes),
            cached: false,
        };
        let value = Cached {
            image: checked.image.clone(),
            verdict: checked.verdict.clone(),
        };
        with_cache(|cache| cache.insert(key, value, now_ms()));
        Ok(checked)
    }

    /// Phases inspect -> cache -> read -> check -> respond for a response.
    async fn check_response(&self, response: Response) -> Result<Response, JsValue> {
        let headers = response.headers();
        // Phase: inspect.
        let inspect = sniff::inspect_response(
            response.status(),
            header(&headers, "content-type").as_deref(),
            header(&headers, "content-range").as_deref(),
        );
        if let Inspect::Skip(_) = inspect {
            return self.debug(response, "skip", None);
        }

        // Phase: cache (URL + ETag).
        let url_key = header(&headers, "etag").map(|etag| CacheKey::Url {
            route: self.route.verdict_key(),
            url: self.url.clone(),
            etag,
        });
        if let Some(key) = &url_key {
            if let Some(hit) = with_cache(|cache| cache.get(key, now_ms())) {
                let checked = Checked {
                    image: hit.image,
                    verdict: hit.verdict,
                    cached: true,
                };
                return self.respond_to_response(response, checked);
            }
        }

        // Phase: read (a clone; the original stays intact).
        let probe = response.clone()?;
        let read = body::read(
            probe.body(),
            inspect,
            content_length(&headers),
            length_is_exact(&headers),
            self.route.max_bytes,
        )
        .await;
        let bytes = match read {
            Ok(BodyRead::NotImage) => return self.debug(response, "not-image", None),
            Ok(BodyRead::Complete(bytes)) => bytes,
            Err(error) => {
                return self.fail_response(
                    response,
                    Unchecked {
                        error,
                        sha256: None,
                    },
                )
            }
        };

        // Phases: hash, look up, verdict.
        match self.check_image(&bytes).await {
            Ok(checked) => {
                if let Some(key) = url_key {
                    let value = Cached {
                        image: checked.image.clone(),
                        verdict: checked.verdict.clone(),
                    };
                    with_cache(|cache| cache.insert(key, value, now_ms()));
                }
                self.respond_to_response(response, checked)
            }
            Err(unchecked) => self.fail_response(response, unchecked),
        }
    }

    /// Phase: respond, for a checked response.
    fn respond_to_response(
        &self,
        response: Response,
        checked: Checked,
    ) -> Result<Response, JsValue> {
        let Verdict::Match(matches) = &checked.verdict else {
            let state = if checked.cached {
                "clean (cached)"
            } else {
                "clean"
            };
            return self.debug(response, state, None);
        };
        let cx = self.event_context(Direction::Response, None, None);
        self.emit(Event::matched(
            uuid(),
            now_ms(),
            &cx,
            self.route.action,
            &checked.image,
            matches,
            checked.cached,
        ));
        match self.route.action {
            Action::Block => {
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                let link =
                    respond::blocked_by_link(self.config.policy.blocked_by.as_deref(), &self.url);
                let blocked =
                    respond::unavailable_for_legal_reasons(&link, &self.request_id, false)?;
                self.debug(blocked, "match", Some(&checked))
            }
            Action::Flag => self.debug(response, "match (flagged)", Some(&checked)),
        }
    }

    /// The fail mode, for a response that could not be checked.
    fn fail_response(&self, response: Response, unchecked: Unchecked) -> Result<Response, JsValue> {
        let fallback = verdict::fallback(&self.route, &unchecked.error);
        let taken = match fallback {
            Fallback::Nothing => return self.debug(response, unchecked.error.reason(), None),
            Fallback::Pass => ActionTaken::Passed,
            Fallback::Refuse => ActionTaken::Refused,
        };
        log_warn(&format!(
            "hashgate: not checked ({}), {:?}: {} [{}]",
            unchecked.error.reason(),
            fallback,
            self.url,
            unchecked.error
        ));
        let cx = self.event_context(Direction::Response, None, None);
        self.emit(Event::unscanned(
            uuid(),
            now_ms(),
            &cx,
            taken,
            &unchecked.error,
            unchecked.sha256,
        ));
        match fallback {
            Fallback::Nothing | Fallback::Pass => {
                self.debug(response, unchecked.error.reason(), None)
            }
            Fallback::Refuse => {
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                respond::not_checked(&self.request_id)
            }
        }
    }

    /// Phase: upload. Reads the body of a `PUT`/`POST` (from a clone) and
    /// checks every image in it before anything reaches the origin.
    async fn check_upload(&self, request: &Request) -> Result<Upload, JsValue> {
        let origin = self.config.origin.as_deref();
        let headers = request.headers();
        let plan = upload::plan(
            &request.method(),
            header(&headers, "content-type").as_deref(),
        );
        let (inspect, boundary) = match plan {
            UploadPlan::Skip(_) | UploadPlan::Raw(Inspect::Skip(_)) => {
                return Ok(Upload::Forward(origin::upstream(request, origin)?));
            }
            UploadPlan::BadMultipart(e) => {
                return self.fail_upload(
                    request,
                    Unchecked {
                        error: e.into(),
                        sha256: None,
                    },
                    None,
                );
            }
            UploadPlan::Raw(inspect) => (inspect, None),
            UploadPlan::Multipart { boundary } => (Inspect::Read, Some(boundary)),
        };

        let probe = request.clone()?;
        let read = body::read(
            probe.body(),
            inspect,
            content_length(&headers),
            length_is_exact(&headers),
            self.route.max_bytes,
        )
        .await;
        let bytes = match read {
            Ok(BodyRead::NotImage) => {
                return Ok(Upload::Forward(origin::upstream(request, origin)?))
            }
            Ok(BodyRead::Complete(bytes)) => bytes,
            Err(error) => {
                return self.fail_upload(
                    request,
                    Unchecked {
                        error,
                        sha256: None,
                    },
                    None,
                )
            }
        };

        // The images in the body: the body itself, or a form's image parts.
        let images: Vec<(Option<String>, Option<String>, &[u8])> = match &boundary {
            None => vec![(None, None, bytes.as_slice())],
            Some(boundary) => match upload::images_in_form(&bytes, boundary) {
                Ok(found) => found
                    .into_iter()
                    .map(|i| (i.field, i.filename, i.bytes))
                    .collect(),
                Err(e) => {
                    return self.fail_upload(
                        request,
                        Unchecked {
                            error: e.into(),
                            sha256: None,
                        },
                        None,
                    )
                }
            },
        };

        let mut failure: Option<(Unchecked, Option<String>, Option<String>)> = None;
        for (field, filename, image) in images {
            match self.check_image(image).await {
                Ok(Checked {
                    verdict: Verdict::Match(matches),
                    image: summary,
                    cached,
                }) => {
                    let cx = self.event_context(Direction::Upload, field, filename);
                    self.emit(Event::matched(
                        uuid(),
                        now_ms(),
                        &cx,
                        self.route.action,
                        &summary,
                        &matches,
                        cached,
                    ));
                    if self.route.action == Action::Block {
                        let link = respond::blocked_by_link(
                            self.config.policy.blocked_by.as_deref(),
                            &self.url,
                        );
                        return Ok(Upload::Refused(respond::unavailable_for_legal_reasons(
                            &link,
                            &self.request_id,
                            true,
                        )?));
                    }
                }
                Ok(_) => {}
                Err(unchecked) => {
                    let nothing =
                        verdict::fallback(&self.route, &unchecked.error) == Fallback::Nothing;
                    if failure.is_none() && !nothing {
                        failure = Some((unchecked, field, filename));
                    }
                }
            }
        }
        if let Some((unchecked, field, filename)) = failure {
            return self.fail_upload(request, unchecked, Some((field, filename, &bytes)));
        }
        Ok(Upload::Forward(origin::upstream_with_body(
            request, origin, &bytes,
        )?))
    }

    /// The fail mode, for an upload that could not be checked. `read` is
    /// the part's name and the whole body, when the body was read.
    fn fail_upload(
        &self,
        request: &Request,
        unchecked: Unchecked,
        read: Option<(Option<String>, Option<String>, &[u8])>,
    ) -> Result<Upload, JsValue> {
        let fallback = verdict::fallback(&self.route, &unchecked.error);
        let taken = match fallback {
            Fallback::Pass | Fallback::Nothing => ActionTaken::Passed,
            Fallback::Refuse => ActionTaken::Refused,
        };
        log_warn(&format!(
            "hashgate: upload not checked ({}), {:?}: {} [{}]",
            unchecked.error.reason(),
            fallback,
            self.url,
            unchecked.error
        ));
        let (field, filename, body) = match read {
            Some((field, filename, body)) => (field, filename, Some(body)),
            None => (None, None, None),
        };
        if fallback != Fallback::Nothing {
            let cx = self.event_context(Direction::Upload, field, filename);
            self.emit(Event::unscanned(
                uuid(),
                now_ms(),
                &cx,
                taken,
                &unchecked.error,
                unchecked.sha256,
            ));
        }
        match (fallback, body) {
            (Fallback::Refuse, _) => Ok(Upload::Refused(respond::not_checked(&self.request_id)?)),
            (_, Some(body)) => Ok(Upload::Forward(origin::upstream_with_body(
                request,
                self.config.origin.as_deref(),
                body,
            )?)),
            (_, None) => Ok(Upload::Forward(origin::upstream(
                request,
                self.config.origin.as_deref(),
            )?)),
        }
    }

    /// With `DEBUG` set, adds headers saying what happened (never in
    /// production: they change the origin's headers).
    fn debug(
        &self,
        response: Response,
        state: &str,
        checked: Option<&Checked>,
    ) -> Result<Response, JsValue> {
        if !self.config.debug {
            return Ok(response);
        }
        let init = web_sys::ResponseInit::new();
        init.set_status(response.status());
        init.set_status_text(&response.status_text());
        let headers = web_sys::Headers::new_with_headers(&response.headers())?;
        headers.set("X-Hashgate-Verdict", state)?;
        headers.set("X-Hashgate-Wasm-Memory", &wasm_memory_bytes().to_string())?;
        if let Some(Checked {
            verdict: Verdict::Match(m),
            ..
        }) = checked
        {
            if let Some(best) = m.first() {
                headers.set(
                    "X-Hashgate-Match",
                    &format!("{} {} d={}", best.list, best.matched_by, best.distance),
                )?;
            }
        }
        init.set_headers(&headers);
        web_sys::Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
    }
}
