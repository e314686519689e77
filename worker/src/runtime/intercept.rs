//! The request path, as named phases.
//!
//! ```text
//! console      the policy's console path (and host): the console answers (crate::console),
//!              never the origin
//! route        which policy applies: the path read as origins read it (decoded, dot segments,
//!              every ambiguous reading; see crate::canonical), most specific pattern per
//!              reading, most protective across readings; none or disabled: pass through
//! exempt       HEAD and websocket upgrades: pass through
//! penalty      with the BLOCK_LIMIT binding: a client past its limit of 451s gets 429 for
//!              everything on the route (crate::block_limit)
//! upload       any request with a body on a route scanning uploads: read, decode, find every image
//!              an origin could extract (upload.rs) -> 451 before the origin sees it, fail mode for
//!              what cannot be read, or forward the same bytes
//! origin       fetch upstream (redirects not followed)
//! inspect      should this response be looked at? (status, Content-Type)
//! whole        a 206: fetch the whole object, check it, answer the range from the checked
//!              bytes (crate::ranged)
//! read         read a clone of the body under the route's cap and the isolate's memory
//!              budget (a peek for non-image types), decoding any Content-Encoding left
//! generation   the current index generation (hg2/current, one KV read per refresh interval)
//! remembered   a verdict for these bytes (SHA-256), route and generation: this isolate's, then the colo's Cache API
//! hash         PDQ + 8 dihedral variants + views (alpha, frames, SVG images) + MD5/SHA-1/SHA-256,
//!              in wasm
//! look up      the resident index in memory (loaded once per isolate and generation), or KV bucket reads
//! verdict      clean or match, less what hg2/overrides clears (crate::overrides); matches
//!              only on suspended entries are flagged (crate::flood_guard)
//! respond      clean: the origin's response object itself; block: 451 (429 past the client's
//!              limit); flag: original + event;
//!              failure: fail open (original + "unscanned" event) or closed (503 + event);
//!              an undecodable format (AVIF, HEIF, JPEG XL) as the route's `undecodable`
//!              says; an SVG with no raster image in it: original, no event
//! ```
//!
//! Responses and uploads share one path after their own first steps:
//! `Scope::read` (phase read, under the memory budget), `Scope::judge`
//! (phases generation to verdict for one image, then the outcome: evidence,
//! log line, counter and event for a match, and the 451 of a `block` route,
//! made only in `Scope::blocked`), and `Scope::fail_mode` (what the fail
//! mode says for an image that could not be checked, logged and queued).
//! What differs is only how an [`Outcome`] is delivered: a response passes
//! the origin's object or answers 451/503 (`respond_to_response`,
//! `fail_response`); an upload answers 451 at its first match, or applies
//! the fail mode once, after every image was checked, and else forwards the
//! bytes it read (`check_upload`, `fail_upload`).
//!
//! Passing responses are the origin's own `Response` objects: the scan reads
//! a clone (a tee of the body), so status, status text, headers and bytes
//! are exactly the origin's, and anything not inspected is never buffered.
//! Nothing here panics on input: every failure is a [`ScanError`] handled by
//! the fail mode, or a `JsValue` error for the runtime itself.

use wasm_bindgen::JsValue;
use web_sys::{Request, Response};
use worker::{Context, Env};

use crate::body::{self, BodyRead, ReadPlan};
use crate::budget::Reservation;
use crate::canonical::RequestTarget;
use crate::config::{self, with_cache, Config};
use crate::current_index;
use crate::digests;
use crate::encoding;
use crate::error::ScanError;
use crate::events::{ActionTaken, Direction, Event, EventContext};
use crate::evidence::{self, EvidenceContext};
use crate::origin;
use crate::outbox;
use crate::overrides_store;
use crate::penalties;
use crate::policy::{Action, Route};
use crate::ranged;
use crate::respond;
use crate::runtime::{header, js_error_text, log_error, log_warn, now_ms, uuid, wasm_memory_bytes};
use crate::shared_verdicts;
use crate::sniff::{self, Inspect};
use crate::telemetry;
use crate::upload::{self, FormImage, UploadPlan};
use crate::verdict::{self, Fallback, ImageSummary, Verdict};
use crate::verdict_cache::{CacheKey, Cached};

/// Handles one request.
pub async fn handle(request: Request, env: Env, ctx: Context) -> Result<Response, JsValue> {
    let request_id = request_id(&request);
    if header(&request.headers(), origin::LOOP_GUARD).is_some() {
        log_error(&format!(
            "hashgate: request {request_id} came from this worker: ORIGIN is not set, so requests \
             go to the host they name, which under wrangler dev is the worker itself. Set the \
             origin, e.g. npx wrangler dev --var ORIGIN:http://127.0.0.1:8080"
        ));
        return respond::loop_detected(&request_id);
    }
    // Operator endpoints for stored content (only with ADMIN_TOKEN set).
    if let Some(response) = crate::stored_admin::handle(&request, &env).await? {
        return Ok(response);
    }
    // Events this isolate could not queue earlier go out now, after the
    // response, once the queue takes them again.
    if outbox::due() {
        let env = env.clone();
        ctx.wait_until(async move { outbox::drain_and_log(&env).await });
    }
    // The admin endpoint (only while ADMIN_TOKEN is set).
    if let Some(response) = crate::reporting::admin(&request, &env).await? {
        return Ok(response);
    }
    let config = match config::load(&env).await {
        Ok(config) => config,
        Err(e) => {
            log_error(&format!("hashgate: request {request_id}: {e}"));
            return respond::internal_error(&request_id);
        }
    };

    // Phase: console.
    let url = request.url();
    if crate::console::claims(&config, &url) {
        return crate::console::handle(request, env, ctx, config, request_id).await;
    }

    // Phase: route.
    let route = RequestTarget::parse(&url)
        .route(&config.policy)
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

    // Phase: penalty. A client past its limit of 451s gets 429 for
    // everything on a scanning route ([`crate::block_limit`]).
    let client = if penalties::enabled(&env) {
        crate::block_limit::client_key(header(&request.headers(), "cf-connecting-ip").as_deref())
    } else {
        None
    };
    if let Some(key) = &client {
        if penalties::is_penalized(key).await {
            return respond::too_many_requests(&request_id, crate::block_limit::PENALTY_SECONDS);
        }
    }

    let scope = Scope {
        env,
        ctx,
        config,
        route,
        request_id,
        url,
        client,
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
    scope.check_response(&request, response).await
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
/// unless the runtime decodes the `Content-Encoding` itself.
fn length_is_exact(headers: &web_sys::Headers) -> bool {
    header(headers, "content-encoding").is_none_or(|e| !encoding::runtime_decodes(&e))
}

/// What a response body is to be read as: [`ReadPlan`]'s codings, or, for a
/// coding that cannot be decoded, whether that is a failure (an image-typed
/// or untyped body, which a client may decode and show) or a pass.
fn codings_of(
    headers: &web_sys::Headers,
    inspect: Inspect,
) -> Result<Vec<encoding::Coding>, Option<ScanError>> {
    match encoding::remaining(header(headers, "content-encoding").as_deref()) {
        Ok(codings) => Ok(codings),
        Err(e) => {
            let untyped = matches!(
                sniff::media_type(header(headers, "content-type").as_deref()).as_deref(),
                None | Some("application/octet-stream") | Some("binary/octet-stream")
            );
            if inspect == Inspect::Read || untyped {
                Err(Some(e.into()))
            } else {
                Err(None)
            }
        }
    }
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
    /// Every match is on an entry the flood guard suspended: flagged, not
    /// blocked, whatever the route's action ([`crate::flood_guard`]).
    flag_only: bool,
}

impl Checked {
    /// What is done about a match: the route's action, or only a flag.
    fn action(&self, route: &Route) -> Action {
        if self.flag_only {
            Action::Flag
        } else {
            route.action
        }
    }

    fn remembered(hit: Cached) -> Self {
        Checked {
            image: hit.image,
            verdict: hit.verdict,
            cached: true,
            flag_only: false,
        }
    }
}

/// An image that could not be checked.
struct Unchecked {
    error: ScanError,
    sha256: Option<String>,
}

impl Unchecked {
    /// A failure before the bytes were read in full (so no digest).
    fn unread(error: impl Into<ScanError>) -> Self {
        Unchecked {
            error: error.into(),
            sha256: None,
        }
    }
}

/// A body read in full, with its share of the isolate's memory budget
/// (given back when this is dropped, after the check).
struct Held {
    bytes: Vec<u8>,
    _reservation: Reservation,
}

/// What one image's check came to (phase outcome), the same for a response
/// and for each image of an upload. By the time an outcome exists, a match
/// has been logged, counted, queued and its evidence preserved; a failure
/// has not met the fail mode yet (an upload applies it once, after every
/// image was checked, so a listed image still answers 451).
enum Outcome {
    /// No match (after overrides).
    Clean { cached: bool },
    /// A match on a `flag` route: the bytes go on.
    Flagged(Checked),
    /// A match on a `block` route: `answer` (the 451) goes back instead.
    Blocked { checked: Checked, answer: Response },
    /// Not checked: [`Scope::fail_mode`] decides.
    Unchecked(Unchecked),
}

/// The debug state of a clean or blocked check.
fn state(cached: bool, fresh: &'static str, remembered: &'static str) -> &'static str {
    if cached {
        remembered
    } else {
        fresh
    }
}

/// Everything one scanned request needs.
struct Scope {
    env: Env,
    ctx: Context,
    config: Config,
    route: Route,
    request_id: String,
    url: String,
    /// The client's key for the limit on 451s, when the limit is on.
    client: Option<String>,
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

    /// Evidence: a matched image is preserved (encrypted, in R2) after the
    /// response ([`evidence`]); anything else is not kept.
    fn preserve(
        &self,
        bytes: &[u8],
        checked: &Checked,
        content_type: Option<String>,
        uploader: Option<hashgate::evidence::Uploader>,
    ) {
        let Verdict::Match(matches) = &checked.verdict else {
            return;
        };
        let cx = EvidenceContext {
            sha256: checked.image.sha256.clone(),
            url: self.url.clone(),
            route: self.route.pattern.as_str().to_owned(),
            request_id: self.request_id.clone(),
            direction: if uploader.is_some() {
                Direction::Upload
            } else {
                Direction::Response
            },
            action: checked.action(&self.route),
            // An upload's part has no trusted type: the sniffed format's.
            content_type: content_type.or_else(|| Some(format!("image/{}", checked.image.format))),
            matches: matches.clone(),
            uploader,
        };
        evidence::preserve_later(&self.env, &self.ctx, bytes, cx);
    }

    /// Phases generation -> remembered -> hash -> look up -> verdict for one
    /// image, then the overrides in force (read only for a match): an
    /// entry disabled or an image cleared on a list is no match there, an
    /// image matched only by suspended entries is only flagged, whether
    /// the verdict was remembered or new.
    async fn check_image(&self, bytes: &[u8]) -> Result<Checked, Unchecked> {
        let mut checked = self.check_image_unfiltered(bytes).await?;
        if let Verdict::Match(matches) = &checked.verdict {
            let overrides = overrides_store::current(
                &self.env,
                self.config.policy.index.refresh_seconds,
                self.route.kv_timeout_ms,
            )
            .await;
            let left = overrides.apply(&checked.image.sha256, matches.clone());
            checked.flag_only = overrides.only_suspended(&left);
            checked.verdict = if left.is_empty() {
                Verdict::Clean
            } else {
                Verdict::Match(left)
            };
        }
        Ok(checked)
    }

    /// The verdict before overrides. A remembered verdict (this isolate's, then the colo's Cache
    /// API) is keyed by the bytes' SHA-256, the route and the current index
    /// generation.
    async fn check_image_unfiltered(&self, bytes: &[u8]) -> Result<Checked, Unchecked> {
        let digests = digests::exact_digests(bytes).await;
        let sha256 = digests.sha256.to_string();
        let unchecked = |error: ScanError| Unchecked {
            error,
            sha256: Some(sha256.clone()),
        };
        // Phase: generation (one small KV read per refresh interval).
        let manifest = current_index::manifest(
            &self.env,
            self.config.policy.index.refresh_seconds,
            self.route.kv_timeout_ms,
        )
        .await
        .map_err(unchecked)?;
        current_index::check_lists(&manifest, &self.route.lists).map_err(unchecked)?;
        // Phase: remembered.
        let key = CacheKey {
            route: self.route.verdict_key(),
            generation: manifest.generation.clone(),
            sha256: sha256.clone(),
        };
        let cache = self.config.policy.cache;
        if let Some(hit) = with_cache(|c| c.get(&key, now_ms())) {
            return Ok(Checked::remembered(hit));
        }
        if cache.shared && cache.ttl_seconds > 0 {
            if let Some(hit) = shared_verdicts::get(&key).await {
                with_cache(|c| c.insert(key.clone(), hit.clone(), now_ms()));
                return Ok(Checked::remembered(hit));
            }
        }
        // Phase: hash.
        let hashes = verdict::hash(bytes, &self.route, digests).map_err(unchecked)?;
        // Phase: look up.
        let query = verdict::query(&hashes, &self.route);
        let matches = current_index::find(&self.env, &manifest, &query, self.route.kv_timeout_ms)
            .await
            .map_err(unchecked)?;
        let matches = verdict::after_hygiene(matches, &hashes, &self.route);
        // Phase: verdict.
        let checked = Checked {
            image: verdict::summarize(&hashes),
            verdict: verdict::verdict(&matches, &hashes),
            cached: false,
            flag_only: false,
        };
        let value = Cached {
            image: checked.image.clone(),
            verdict: checked.verdict.clone(),
        };
        with_cache(|c| c.insert(key.clone(), value.clone(), now_ms()));
        // The hash log (retroactive matching), after the response.
        let row = crate::stored::edge_row(
            &self.url,
            &self.route,
            &manifest.generation,
            &hashes,
            &checked.verdict,
        );
        let env = self.env.clone();
        self.ctx
            .wait_until(async move { crate::stored::log_edge(&env, row).await });
        if cache.shared && cache.ttl_seconds > 0 {
            self.ctx.wait_until(async move {
                shared_verdicts::put(&key, &value, cache.ttl_seconds).await;
            });
        }
        Ok(checked)
    }

    /// How a body is read: the route's cap, the declared length, and for a
    /// peek what is worth reading on (`body::is_image` for responses,
    /// `upload::worth_reading` for uploads).
    fn read_plan<'a>(
        &self,
        inspect: Inspect,
        headers: &web_sys::Headers,
        codings: &'a [encoding::Coding],
        worth_reading: fn(&[u8]) -> bool,
    ) -> ReadPlan<'a> {
        ReadPlan {
            inspect,
            declared: content_length(headers),
            exact: length_is_exact(headers),
            cap: self.route.max_bytes,
            codings,
            worth_reading,
        }
    }

    /// Phase read, for responses and uploads alike: the body (of a clone,
    /// or of the whole object behind a 206) under `plan` and the isolate's
    /// memory budget. `None`: a peek found nothing worth checking.
    async fn read(
        &self,
        stream: Option<web_sys::ReadableStream>,
        plan: ReadPlan<'_>,
    ) -> Result<Option<Held>, ScanError> {
        let mut reservation = Reservation::new(self.config.policy.memory);
        match body::read(stream, plan, &mut reservation).await? {
            BodyRead::NotImage => Ok(None),
            BodyRead::Complete(bytes) => Ok(Some(Held {
                bytes,
                _reservation: reservation,
            })),
        }
    }

    /// Phases check -> outcome for one image, for responses and uploads
    /// alike: [`Scope::check_image`], then for a match the evidence
    /// ([`Scope::preserve`]), the log line and counter, the event, and on
    /// a `block` route the 451 ([`Scope::blocked`]). `cx` says where the
    /// image was seen; `content_type` (a response's) and `uploader` (an
    /// upload's) go into the evidence record.
    async fn judge(
        &self,
        bytes: &[u8],
        cx: &EventContext,
        content_type: Option<String>,
        uploader: Option<hashgate::evidence::Uploader>,
    ) -> Result<Outcome, JsValue> {
        let checked = match self.check_image(bytes).await {
            Ok(checked) => checked,
            Err(unchecked) => return Ok(Outcome::Unchecked(unchecked)),
        };
        self.preserve(bytes, &checked, content_type, uploader);
        let Verdict::Match(matches) = &checked.verdict else {
            return Ok(Outcome::Clean {
                cached: checked.cached,
            });
        };
        let action = checked.action(&self.route);
        self.record_match(cx, matches, checked.cached, action);
        self.emit(Event::matched(
            uuid(),
            now_ms(),
            cx,
            action,
            &checked.image,
            matches,
            checked.cached,
        ));
        match action {
            Action::Flag => Ok(Outcome::Flagged(checked)),
            Action::Block => {
                let answer = match &self.client {
                    Some(key) if !penalties::count_block(&self.env, key).await => {
                        respond::too_many_requests(
                            &self.request_id,
                            crate::block_limit::PENALTY_SECONDS,
                        )?
                    }
                    _ => self.blocked(cx, matches)?,
                };
                Ok(Outcome::Blocked { checked, answer })
            }
        }
    }

    /// The 451 for a match on a `block` route, for responses and uploads
    /// alike: the one place a block answer is made.
    fn blocked(
        &self,
        cx: &EventContext,
        matches: &[hashgate::matching::MatchRecord],
    ) -> Result<Response, JsValue> {
        let link = respond::blocked_by_link(self.config.policy.blocked_by.as_deref(), &self.url);
        respond::unavailable_for_legal_reasons(
            &link,
            &self.request_id,
            cx.direction == Direction::Upload,
            self.block_message(matches),
        )
    }

    /// The fail mode, for responses and uploads alike: what
    /// [`verdict::fallback`] says for the error. Unless there was nothing
    /// to check ([`Fallback::Nothing`]), the failure is logged, counted and
    /// queued as an unscanned event saying what was done. The caller then
    /// passes or refuses what it holds.
    fn fail_mode(&self, cx: &EventContext, unchecked: Unchecked) -> Fallback {
        let fallback = verdict::fallback(&self.route, &unchecked.error);
        let taken = match fallback {
            Fallback::Nothing => return fallback,
            Fallback::Pass => ActionTaken::Passed,
            Fallback::Refuse => ActionTaken::Refused,
        };
        telemetry::record(
            &self.env,
            telemetry::unscanned(
                cx,
                taken,
                unchecked.error.reason(),
                &unchecked.error.to_string(),
            ),
        );
        self.emit(Event::unscanned(
            uuid(),
            now_ms(),
            cx,
            taken,
            &unchecked.error,
            unchecked.sha256,
        ));
        fallback
    }

    /// Phases inspect -> read -> check -> outcome -> respond for a
    /// response (a 206 goes through [`Scope::check_partial`]).
    async fn check_response(
        &self,
        request: &Request,
        response: Response,
    ) -> Result<Response, JsValue> {
        // Phase: whole. A piece of an image is never passed unchecked.
        if response.status() == 206 {
            return self.check_partial(request, response).await;
        }
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

        // Phase: read (a clone; the original stays intact).
        let codings = match codings_of(&headers, inspect) {
            Ok(codings) => codings,
            Err(None) => return self.debug(response, "not-image (unknown encoding)", None),
            Err(Some(error)) => return self.fail_response(response, Unchecked::unread(error)),
        };
        let probe = response.clone()?;
        let plan = self.read_plan(inspect, &headers, &codings, body::is_image);
        let held = match self.read(probe.body(), plan).await {
            Ok(None) => return self.debug(response, "not-image", None),
            Ok(Some(held)) => held,
            Err(error) => return self.fail_response(response, Unchecked::unread(error)),
        };

        // Phases: check, outcome, respond.
        let cx = self.event_context(Direction::Response, None, None);
        let content_type = header(&headers, "content-type");
        let outcome = self.judge(&held.bytes, &cx, content_type, None).await?;
        self.respond_to_response(response, outcome)
    }

    /// Phase: whole, for a `206`: the whole object is fetched without
    /// `Range` and checked like any response; a clean one answers the
    /// client's range from the checked bytes ([`ranged::answer`]), so what
    /// the client gets is what was checked, whatever the origin's 206 held.
    /// A whole object that is not an image leaves the origin's 206 as it is.
    async fn check_partial(
        &self,
        request: &Request,
        partial: Response,
    ) -> Result<Response, JsValue> {
        let whole_request = origin::upstream_whole(request, self.config.origin.as_deref())?;
        let whole = match origin::fetch(&whole_request).await {
            Ok(whole) => whole,
            Err(e) => {
                let error = ScanError::Body(format!(
                    "fetching the whole object failed: {}",
                    js_error_text(&e)
                ));
                return self.fail_response(partial, Unchecked::unread(error));
            }
        };
        let headers = whole.headers();
        if whole.status() != 200 {
            if let Some(body) = whole.body() {
                let _ = body.cancel();
            }
            let error = ScanError::Body(format!(
                "the whole object answered {} to a request without Range",
                whole.status()
            ));
            return self.fail_response(partial, Unchecked::unread(error));
        }
        let inspect =
            sniff::inspect_response(200, header(&headers, "content-type").as_deref(), None);
        if let Inspect::Skip(_) = inspect {
            if let Some(body) = whole.body() {
                let _ = body.cancel();
            }
            return self.debug(partial, "skip", None);
        }
        let codings = match codings_of(&headers, inspect) {
            Ok(codings) => codings,
            Err(found) => {
                if let Some(body) = whole.body() {
                    let _ = body.cancel();
                }
                return match found {
                    None => self.debug(partial, "not-image (unknown encoding)", None),
                    Some(error) => self.fail_response(partial, Unchecked::unread(error)),
                };
            }
        };
        let plan = self.read_plan(inspect, &headers, &codings, body::is_image);
        let held = match self.read(whole.body(), plan).await {
            Ok(None) => return self.debug(partial, "not-image", None),
            Ok(Some(held)) => held,
            Err(error) => return self.fail_response(partial, Unchecked::unread(error)),
        };
        let cx = self.event_context(Direction::Response, None, None);
        let content_type = header(&headers, "content-type");
        match self.judge(&held.bytes, &cx, content_type, None).await? {
            Outcome::Clean { cached } => {
                if let Some(body) = partial.body() {
                    let _ = body.cancel();
                }
                let answer = ranged::answer(request, &headers, &held.bytes)?;
                self.debug(answer, state(cached, "clean", "clean (cached)"), None)
            }
            outcome => self.respond_to_response(partial, outcome),
        }
    }

    /// Phase: respond, for a response: the origin's own response when it
    /// passes, the 451 or the fail mode's 503 when it does not.
    fn respond_to_response(
        &self,
        response: Response,
        outcome: Outcome,
    ) -> Result<Response, JsValue> {
        match outcome {
            Outcome::Clean { cached } => {
                self.debug(response, state(cached, "clean", "clean (cached)"), None)
            }
            Outcome::Flagged(checked) => self.debug(response, "match (flagged)", Some(&checked)),
            Outcome::Blocked { checked, answer } => {
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                let state = state(checked.cached, "match", "match (cached)");
                self.debug(answer, state, Some(&checked))
            }
            Outcome::Unchecked(unchecked) => self.fail_response(response, unchecked),
        }
    }

    /// The fail mode ([`Scope::fail_mode`]), for a response: passed on as
    /// it is, or a 503.
    fn fail_response(&self, response: Response, unchecked: Unchecked) -> Result<Response, JsValue> {
        let reason = unchecked.error.reason();
        let cx = self.event_context(Direction::Response, None, None);
        match self.fail_mode(&cx, unchecked) {
            Fallback::Nothing | Fallback::Pass => self.debug(response, reason, None),
            Fallback::Refuse => {
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                respond::not_checked(&self.request_id)
            }
        }
    }

    /// The event context of an upload: the part's field and file name when
    /// one image is meant, none for the body as a whole.
    fn upload_context(&self, part: Option<&FormImage<'_>>) -> EventContext {
        self.event_context(
            Direction::Upload,
            part.and_then(|p| p.field.clone()),
            part.and_then(|p| p.filename.clone()),
        )
    }

    /// Phase: upload. Reads the body of any request that has one (from a
    /// clone), decodes it, and checks every image an origin could extract
    /// from it ([`upload`]) before anything reaches the origin: the first
    /// match on a `block` route answers 451; otherwise a body read only in
    /// part, or else the first image that could not be checked, meets the
    /// fail mode; otherwise the origin gets the same bytes.
    async fn check_upload(&self, request: &Request) -> Result<Upload, JsValue> {
        let headers = request.headers();
        let content_type = header(&headers, "content-type");
        let content_encoding = header(&headers, "content-encoding");
        let plan = upload::plan(
            request.body().is_some(),
            content_type.as_deref(),
            content_encoding.as_deref(),
        );
        let UploadPlan::Read(inspect) = plan else {
            return self.forward(request, None);
        };

        // Phase: read (a clone; the request's body goes on untouched).
        let probe = request.clone()?;
        let plan = self.read_plan(inspect, &headers, &[], upload::worth_reading);
        let held = match self.read(probe.body(), plan).await {
            Ok(None) => return self.forward(request, None),
            Ok(Some(held)) => held,
            Err(error) => {
                let cx = self.upload_context(None);
                return self.fail_upload(request, &cx, Unchecked::unread(error), None);
            }
        };
        let bytes = held.bytes.as_slice();

        // The body as the origin would read it, and every image in it.
        let decoded = match encoding::applied(content_encoding.as_deref()).and_then(|codings| {
            if codings.is_empty() {
                Ok(std::borrow::Cow::Borrowed(bytes))
            } else {
                encoding::decode(bytes.to_vec(), &codings, self.route.max_bytes)
                    .map(std::borrow::Cow::Owned)
            }
        }) {
            Ok(decoded) => decoded,
            Err(e) => {
                let cx = self.upload_context(None);
                return self.fail_upload(request, &cx, Unchecked::unread(e), Some(bytes));
            }
        };
        let findings = upload::find_images(content_type.as_deref(), &decoded);
        let keep = &self.config.policy.evidence_headers;

        // Phases: check, outcome, for each image.
        let mut first_failure: Option<(&FormImage<'_>, Unchecked)> = None;
        for part in &findings.images {
            let cx = self.upload_context(Some(part));
            let who = evidence::uploader(request, keep, part.field.clone(), part.filename.clone());
            match self.judge(&part.bytes, &cx, None, Some(who)).await? {
                Outcome::Blocked { answer, .. } => return Ok(Upload::Refused(answer)),
                Outcome::Clean { .. } | Outcome::Flagged(_) => {}
                Outcome::Unchecked(unchecked) => {
                    let nothing =
                        verdict::fallback(&self.route, &unchecked.error) == Fallback::Nothing;
                    if first_failure.is_none() && !nothing {
                        first_failure = Some((part, unchecked));
                    }
                }
            }
        }
        // A body read only in part is reported as such, before what its
        // parts' checks found.
        if let Some(error) = findings.unreadable {
            let cx = self.upload_context(None);
            return self.fail_upload(request, &cx, Unchecked::unread(error), Some(bytes));
        }
        if let Some((part, unchecked)) = first_failure {
            let cx = self.upload_context(Some(part));
            return self.fail_upload(request, &cx, unchecked, Some(bytes));
        }
        self.forward(request, Some(bytes))
    }

    /// The fail mode ([`Scope::fail_mode`]), for an upload: forwarded
    /// (`body`: the bytes read, when they were) or refused with a 503.
    fn fail_upload(
        &self,
        request: &Request,
        cx: &EventContext,
        unchecked: Unchecked,
        body: Option<&[u8]>,
    ) -> Result<Upload, JsValue> {
        match self.fail_mode(cx, unchecked) {
            Fallback::Refuse => Ok(Upload::Refused(respond::not_checked(&self.request_id)?)),
            Fallback::Nothing | Fallback::Pass => self.forward(request, body),
        }
    }

    /// The request for the origin: with `body`, the bytes that were read
    /// and checked, so the origin sees exactly those with their
    /// `Content-Length` ([`origin::upstream_with_body`]).
    fn forward(&self, request: &Request, body: Option<&[u8]>) -> Result<Upload, JsValue> {
        let origin = self.config.origin.as_deref();
        Ok(Upload::Forward(match body {
            Some(body) => origin::upstream_with_body(request, origin, body)?,
            None => origin::upstream(request, origin)?,
        }))
    }

    /// The log line and counter of a match ([`telemetry`]).
    fn record_match(
        &self,
        cx: &EventContext,
        matches: &[hashgate::matching::MatchRecord],
        cached: bool,
        action: Action,
    ) {
        let taken = match action {
            Action::Block => ActionTaken::Blocked,
            Action::Flag => ActionTaken::Flagged,
        };
        telemetry::record(&self.env, telemetry::matched(cx, taken, matches, cached));
    }

    /// The policy's 451 reason for the closest match's list, if it has one.
    fn block_message(&self, matches: &[hashgate::matching::MatchRecord]) -> Option<&str> {
        matches
            .first()
            .and_then(|m| self.config.policy.block_message(&m.list))
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
                    &format!(
                        "{} {} {} d={}",
                        best.list,
                        best.kind,
                        best.variant.as_deref().unwrap_or("-"),
                        best.distance
                    ),
                )?;
            }
        }
        init.set_headers(&headers);
        web_sys::Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
    }
}
