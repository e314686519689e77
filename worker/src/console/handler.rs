//! The console's requests: sign-in, pages, actions (wasm only).
//!
//! ```text
//! <path>                GET  overview
//! <path>sightings       GET  sightings, filtered (?route=&list=&status=&days=)
//! <path>sighting?key=   GET  one sighting with its actions
//! <path>audit           GET  the audit log
//! <path>health          GET  list health
//! <path>action          POST confirm | false-positive | release | note | reveal
//!                            (reveal answers the sighting page with the
//!                            blurred rendering inline: [`super::reveal`])
//! <path>login           GET/POST development sign-in (console.dev_login only)
//! <path>logout          POST ends a development session
//! <path>console.css     GET  the stylesheet
//! ```
//!
//! Every page answers with a strict Content-Security-Policy (no script at
//! all, no image; only the page of a reveal allows `data:` images),
//! `no-store`, `DENY` framing and no referrer off the console's origin. Every POST checks the
//! origin, and every action the CSRF token bound to the identity.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, Response, ResponseInit};
use worker::{Context, Env, KvStore};

use super::audit::{self, Action, AuditEntry, Review, ReviewState};
use super::auth::{self, AuthError, Identity, Jwks, Jwt};
use super::reveal::{self, Rendering};
use super::settings::{AccessSettings, ConsoleSettings, Role};
use super::stats::{self, Filter, Sighting};
use super::view::{self, Backlog, IndexInfo, Revealed, Viewer};
use crate::budget::{BudgetSettings, Reservation};
use crate::config::{Config, HASH_INDEX, REPORTS};
use crate::events::rfc3339;
use crate::logging::{self, Level, Line};
use crate::overrides::{Allowed, Overrides, EVERY_LIST, OVERRIDES_KEY};
use crate::overrides_store;
use crate::report::{ReportRecord, DEAD_PREFIX, REPORT_PREFIX, UNSCANNED_PREFIX};
use crate::runtime::{header, js_error_text, now_ms, uuid};

/// Secret: the key of session cookies and CSRF tokens (required).
pub const CONSOLE_SECRET: &str = "CONSOLE_SECRET";
/// Secret: the development token (used only with `console.dev_login`).
pub const CONSOLE_DEV_TOKEN: &str = "CONSOLE_DEV_TOKEN";
/// The header Cloudflare Access adds.
pub const ACCESS_HEADER: &str = "cf-access-jwt-assertion";
/// Records read for a page (KV allows 1,000 operations per request).
const MATCH_RECORDS: u64 = 300;
const UNSCANNED_RECORDS: u64 = 100;
/// Rows on the sightings page.
const PAGE_ROWS: usize = 100;
/// Audit entries on the audit page.
const AUDIT_ROWS: u64 = 200;
/// How long the team's keys are reused.
const KEYS_TTL_MS: f64 = 3_600_000.0;
/// How soon an unknown key id may fetch the keys again.
const KEYS_RETRY_MS: f64 = 60_000.0;
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The policy of the one page that carries a blurred rendering, inline.
const REVEAL_CSP: &str = "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const MAX_FORM_BYTES: usize = 16 * 1024;

thread_local! {
    static KEYS: RefCell<Option<(String, Jwks, f64)>> = const { RefCell::new(None) };
}

/// Whether `url` is the console's (the policy has one, and the host and
/// path are its).
pub fn claims(config: &Config, url: &str) -> bool {
    let Some(console) = &config.policy.console else {
        return false;
    };
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    console.claims(parsed.host_str().unwrap_or(""), parsed.path())
}

/// Answers a console request.
pub async fn handle(
    request: Request,
    env: Env,
    _ctx: Context,
    config: Config,
    request_id: String,
) -> Result<Response, JsValue> {
    let Some(settings) = config.policy.console.clone() else {
        return page(
            404,
            &view::message(None, "Not found", "No console here.", None),
        );
    };
    let url = request.url();
    let path = url::Url::parse(&url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let sub = path.strip_prefix(&settings.path).map(str::to_owned);
    let Some(sub) = sub else {
        // The bare path without its slash.
        return redirect(&settings.path, None);
    };
    if sub == "console.css" {
        return respond(200, "text/css; charset=utf-8", view::STYLESHEET, &[]);
    }
    let Some(secret) = secret(&env, CONSOLE_SECRET) else {
        log(Level::Error, "console-error", &request_id)
            .str(
                "message",
                "CONSOLE_SECRET is not set: npx wrangler secret put CONSOLE_SECRET",
            )
            .pipe(|l| logging::emit(&l));
        return page(
            503,
            &view::message(
                None,
                "Console not configured",
                "The console is not configured yet.",
                None,
            ),
        );
    };
    let method = request.method().to_ascii_uppercase();
    let headers = request.headers();
    if method == "POST"
        && !auth::same_origin(
            &url,
            header(&headers, "origin").as_deref(),
            header(&headers, "sec-fetch-site").as_deref(),
        )
    {
        log(Level::Warn, "console-refused", &request_id)
            .str("reason", "cross-origin")
            .pipe(|l| logging::emit(&l));
        return page(
            403,
            &view::message(
                None,
                "Refused",
                "This form did not come from the console.",
                None,
            ),
        );
    }

    if sub == "login" {
        return login(
            &request,
            &env,
            &settings,
            &secret,
            &method,
            &url,
            &request_id,
        )
        .await;
    }
    if sub == "logout" && method == "POST" {
        return redirect(
            &format!("{}login", settings.path),
            Some(&clear_cookie(&settings, &url)),
        );
    }

    let identity = match authenticate(&request, &env, &settings, &secret).await {
        Ok(Some(identity)) => identity,
        Ok(None) if settings.dev_login => {
            return redirect(&format!("{}login", settings.path), None);
        }
        Ok(None) => {
            return page(
                401,
                &view::message(None, "Sign in", "Sign in through Cloudflare Access.", None),
            );
        }
        Err(e) => {
            log(Level::Warn, "console-refused", &request_id)
                .str("reason", "access-token")
                .str("message", e.to_string())
                .pipe(|l| logging::emit(&l));
            return page(
                401,
                &view::message(
                    None,
                    "Not signed in",
                    "Your sign-in could not be verified.",
                    None,
                ),
            );
        }
    };
    let Some(role) = settings.role_of(&identity.email, &identity.groups) else {
        log(Level::Warn, "console-refused", &request_id)
            .str("reason", "no-role")
            .str("who", identity.email.as_str())
            .pipe(|l| logging::emit(&l));
        return page(
            403,
            &view::message(
                None,
                "No access",
                "Your account has no role in this console.",
                None,
            ),
        );
    };
    let csrf = auth::csrf_token(&secret, &identity);
    let viewer = Viewer {
        email: &identity.email,
        role,
        csrf: &csrf,
        base: &settings.path,
    };
    let query: BTreeMap<String, String> = url::Url::parse(&url)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let reports = env
        .kv(REPORTS)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;

    match (method.as_str(), sub.as_str()) {
        ("GET", "") => overview(&env, &reports, &viewer).await,
        ("GET", "sightings") => {
            let filter = Filter {
                route: query.get("route").cloned().unwrap_or_default(),
                list: query.get("list").cloned().unwrap_or_default(),
                status: query.get("status").cloned().unwrap_or_default(),
                days: query
                    .get("days")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0)
                    .min(366),
            };
            let (all, _) = sightings(&reports).await;
            let now = now_ms() as u64;
            let mut shown: Vec<&Sighting> = all.iter().filter(|s| filter.keeps(s, now)).collect();
            shown.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen_ms));
            shown.truncate(PAGE_ROWS);
            let routes: BTreeSet<String> = all.iter().map(|s| s.record.route.clone()).collect();
            let lists: BTreeSet<String> = all
                .iter()
                .flat_map(|s| s.record.matches.iter().map(|m| m.list.clone()))
                .collect();
            let routes: Vec<String> = routes.into_iter().collect();
            let lists: Vec<String> = lists.into_iter().collect();
            page(
                200,
                &view::sightings(&viewer, &shown, &filter, &routes, &lists),
            )
        }
        ("GET", "sighting") => {
            let key = query.get("key").cloned().unwrap_or_default();
            match one_sighting(&reports, &key).await {
                Some(s) => page(200, &view::sighting(&viewer, &s, None)),
                None => page(
                    404,
                    &view::message(Some(&viewer), "Not found", "No such sighting.", None),
                ),
            }
        }
        ("GET", "audit") => {
            let entries = audit_page(&reports).await;
            page(200, &view::audit(&viewer, &entries))
        }
        ("GET", "health") => {
            let (all, _) = sightings(&reports).await;
            let health = stats::list_health(&all, settings.distinct_images);
            // Entries turned off, suspended by the flood guard, or reviewed.
            let turned_off = match env.kv(HASH_INDEX) {
                Ok(kv) => match kv.get(OVERRIDES_KEY).text().await {
                    Ok(Some(text)) => Overrides::parse(&text).map(|o| o.entries).ok(),
                    Ok(None) => Some(Vec::new()),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            page(
                200,
                &view::health(
                    &viewer,
                    &health,
                    settings.distinct_images,
                    all.len(),
                    turned_off.as_deref(),
                ),
            )
        }
        ("POST", "action") => {
            act(
                &request,
                &env,
                &reports,
                &viewer,
                &identity,
                &secret,
                &request_id,
                config.policy.memory,
            )
            .await
        }
        _ => page(
            404,
            &view::message(Some(&viewer), "Not found", "No such page.", None),
        ),
    }
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl Pipe for Line {}

fn log(level: Level, event: &str, request_id: &str) -> Line {
    Line::new(level, event).str("request_id", request_id)
}

fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|s| s.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

fn respond(
    status: u16,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Result<Response, JsValue> {
    respond_csp(CSP, status, content_type, body, extra)
}

fn respond_csp(
    csp: &str,
    status: u16,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    headers.set("Content-Type", content_type)?;
    headers.set("Content-Security-Policy", csp)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("X-Frame-Options", "DENY")?;
    // Not no-referrer: with it, browsers send `Origin: null` on form posts,
    // and the origin check needs the real one.
    headers.set("Referrer-Policy", "same-origin")?;
    headers.set("Cross-Origin-Opener-Policy", "same-origin")?;
    for (name, value) in extra {
        headers.append(name, value)?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(body), &init)
}

fn page(status: u16, html: &str) -> Result<Response, JsValue> {
    respond(status, "text/html; charset=utf-8", html, &[])
}

fn redirect(to: &str, cookie: Option<&str>) -> Result<Response, JsValue> {
    let mut extra = vec![("Location", to)];
    if let Some(cookie) = cookie {
        extra.push(("Set-Cookie", cookie));
    }
    respond(303, "text/plain; charset=utf-8", "", &extra)
}

fn secure(url: &str) -> &'static str {
    if url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    }
}

fn clear_cookie(settings: &ConsoleSettings, url: &str) -> String {
    format!(
        "{}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0{}",
        auth::SESSION_COOKIE,
        settings.path,
        secure(url)
    )
}

async fn form(request: &Request) -> Result<BTreeMap<String, String>, JsValue> {
    let text = JsFuture::from(request.text()?).await?;
    let text = text.as_string().unwrap_or_default();
    if text.len() > MAX_FORM_BYTES {
        return Ok(BTreeMap::new());
    }
    Ok(url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn login(
    request: &Request,
    env: &Env,
    settings: &ConsoleSettings,
    secret: &str,
    method: &str,
    url: &str,
    request_id: &str,
) -> Result<Response, JsValue> {
    let dev_token = secret_if(settings.dev_login, env);
    let Some(dev_token) = dev_token else {
        return page(
            404,
            &view::message(
                None,
                "Not found",
                "Sign in through Cloudflare Access.",
                None,
            ),
        );
    };
    if method != "POST" {
        return page(200, &view::sign_in(&settings.path, None));
    }
    let fields = form(request).await?;
    let email = fields
        .get("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let token = fields.get("token").cloned().unwrap_or_default();
    if !auth::dev_token_ok(&dev_token, &token) {
        log(Level::Warn, "console-refused", request_id)
            .str("reason", "dev-token")
            .pipe(|l| logging::emit(&l));
        return page(
            401,
            &view::sign_in(
                &settings.path,
                Some("That token is not the development token."),
            ),
        );
    }
    if !email.contains('@') || settings.role_of(&email, &[]).is_none() {
        return page(
            403,
            &view::sign_in(
                &settings.path,
                Some("That email has no role in this console."),
            ),
        );
    }
    let until = now_ms() as u64 + auth::SESSION_MS;
    let cookie = format!(
        "{}={}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        auth::SESSION_COOKIE,
        auth::session_cookie(secret, &email, until),
        settings.path,
        auth::SESSION_MS / 1000,
        secure(url)
    );
    log(Level::Info, "console-sign-in", request_id)
        .str("who", email.as_str())
        .str("via", "dev-token")
        .pipe(|l| logging::emit(&l));
    redirect(&settings.path, Some(&cookie))
}

fn secret_if(enabled: bool, env: &Env) -> Option<String> {
    if enabled {
        secret(env, CONSOLE_DEV_TOKEN)
    } else {
        None
    }
}

/// Who is asking: an Access token first, then a development session.
/// `Ok(None)`: no credentials at all.
async fn authenticate(
    request: &Request,
    env: &Env,
    settings: &ConsoleSettings,
    secret: &str,
) -> Result<Option<Identity>, AuthError> {
    let headers = request.headers();
    if let Some(access) = &settings.access {
        if let Some(token) = header(&headers, ACCESS_HEADER) {
            return verify_access(access, &token).await.map(Some);
        }
    }
    if settings.dev_login && secret_if(true, env).is_some() {
        let cookies = header(&headers, "cookie").unwrap_or_default();
        if let Some(value) = auth::cookie(&cookies, auth::SESSION_COOKIE) {
            if let Some(email) = auth::session_email(secret, value, now_ms() as u64) {
                return Ok(Some(Identity {
                    email,
                    groups: Vec::new(),
                    via: "dev-token",
                }));
            }
        }
    }
    Ok(None)
}

async fn verify_access(access: &AccessSettings, token: &str) -> Result<Identity, AuthError> {
    let jwt = Jwt::parse(token)?;
    let jwks = team_keys(access, jwt.kid.as_deref()).await?;
    let key = jwks.key_for(jwt.kid.as_deref())?;
    let ok = rs256_verify(key, &jwt.signing_input, &jwt.signature)
        .await
        .map_err(|e| AuthError::Keys(js_error_text(&e)))?;
    if !ok {
        return Err(AuthError::Signature);
    }
    jwt.identity(access, (now_ms() / 1000.0) as u64)
}

/// The team's keys, from this isolate's copy (an hour) or fetched; a key
/// id not in the copy fetches again (at most once a minute).
async fn team_keys(access: &AccessSettings, kid: Option<&str>) -> Result<Jwks, AuthError> {
    let now = now_ms();
    let cached = KEYS.with(|cell| cell.borrow().clone());
    if let Some((url, jwks, fetched)) = &cached {
        let fresh = *url == access.certs_url && now - fetched < KEYS_TTL_MS;
        let has = jwks.key_for(kid).is_ok();
        if fresh && (has || now - fetched < KEYS_RETRY_MS) {
            return Ok(jwks.clone());
        }
    }
    let mut response = worker::Fetch::Url(
        access
            .certs_url
            .parse()
            .map_err(|e: url::ParseError| AuthError::Keys(e.to_string()))?,
    )
    .send()
    .await
    .map_err(|e| AuthError::Keys(e.to_string()))?;
    if response.status_code() != 200 {
        return Err(AuthError::Keys(format!(
            "{} answered {}",
            access.certs_url,
            response.status_code()
        )));
    }
    let text = response
        .text()
        .await
        .map_err(|e| AuthError::Keys(e.to_string()))?;
    let jwks = Jwks::parse(&text)?;
    KEYS.with(|cell| *cell.borrow_mut() = Some((access.certs_url.clone(), jwks.clone(), now)));
    Ok(jwks)
}

fn set(object: &Object, key: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(object, &JsValue::from_str(key), value).map(|_| ())
}

/// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) through Web Crypto.
async fn rs256_verify(key: &auth::Jwk, data: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
    let jwk = Object::new();
    set(&jwk, "kty", &JsValue::from_str("RSA"))?;
    set(&jwk, "n", &JsValue::from_str(&key.n))?;
    set(&jwk, "e", &JsValue::from_str(&key.e))?;
    set(&jwk, "alg", &JsValue::from_str("RS256"))?;
    set(&jwk, "ext", &JsValue::TRUE)?;
    let algorithm = Object::new();
    set(&algorithm, "name", &JsValue::from_str("RSASSA-PKCS1-v1_5"))?;
    let hash = Object::new();
    set(&hash, "name", &JsValue::from_str("SHA-256"))?;
    set(&algorithm, "hash", &hash)?;
    let import: Function = Reflect::get(&subtle, &JsValue::from_str("importKey"))?.dyn_into()?;
    let args = Array::of5(
        &JsValue::from_str("jwk"),
        &jwk,
        &algorithm,
        &JsValue::FALSE,
        &Array::of1(&JsValue::from_str("verify")),
    );
    let promise: js_sys::Promise = import.apply(&subtle, &args)?.dyn_into()?;
    let crypto_key = JsFuture::from(promise).await?;
    let verify: Function = Reflect::get(&subtle, &JsValue::from_str("verify"))?.dyn_into()?;
    let args = Array::of4(
        &algorithm,
        &crypto_key,
        &Uint8Array::from(signature),
        &Uint8Array::from(data),
    );
    let promise: js_sys::Promise = verify.apply(&subtle, &args)?.dyn_into()?;
    Ok(JsFuture::from(promise).await?.as_bool().unwrap_or(false))
}

/// Report records (match, then unscanned) with their review states; the
/// bool says whether there were more than were read.
async fn sightings(reports: &KvStore) -> (Vec<Sighting>, bool) {
    let states = review_states(reports).await;
    let mut out = Vec::new();
    let mut truncated = false;
    for (prefix, limit) in [
        (REPORT_PREFIX, MATCH_RECORDS),
        (UNSCANNED_PREFIX, UNSCANNED_RECORDS),
    ] {
        let Ok(list) = reports
            .list()
            .prefix(prefix.to_owned())
            .limit(limit)
            .execute()
            .await
        else {
            continue;
        };
        truncated |= !list.list_complete;
        let reads = list.keys.iter().map(|k| reports.get(&k.name).text());
        for text in join_all(reads).await.into_iter().flatten().flatten() {
            if let Ok(record) = serde_json::from_str::<ReportRecord>(&text) {
                let review = Review {
                    state: states.get(&record.key).copied().unwrap_or_default(),
                    ..Review::default()
                };
                out.push(Sighting { record, review });
            }
        }
    }
    (out, truncated)
}

/// Review states from the review keys' metadata (one list call).
async fn review_states(reports: &KvStore) -> BTreeMap<String, ReviewState> {
    let mut states = BTreeMap::new();
    if let Ok(list) = reports
        .list()
        .prefix(audit::REVIEW_PREFIX.to_owned())
        .limit(1000)
        .execute()
        .await
    {
        for key in list.keys {
            let state = key
                .metadata
                .and_then(|m| serde_json::from_value::<ReviewMeta>(m).ok())
                .map(|m| m.state);
            if let (Some(record), Some(state)) =
                (key.name.strip_prefix(audit::REVIEW_PREFIX), state)
            {
                states.insert(record.to_owned(), state);
            }
        }
    }
    states
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ReviewMeta {
    state: ReviewState,
}

async fn one_sighting(reports: &KvStore, key: &str) -> Option<Sighting> {
    if !audit::is_record_key(key) {
        return None;
    }
    let text = reports.get(key).text().await.ok()??;
    let record: ReportRecord = serde_json::from_str(&text).ok()?;
    let review = match reports.get(&audit::review_key(key)).text().await {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_default(),
        _ => Review::default(),
    };
    Some(Sighting { record, review })
}

async fn count(reports: &KvStore, prefix: &str) -> usize {
    reports
        .list()
        .prefix(prefix.to_owned())
        .limit(1000)
        .execute()
        .await
        .map_or(0, |l| l.keys.len())
}

async fn overview(env: &Env, reports: &KvStore, viewer: &Viewer<'_>) -> Result<Response, JsValue> {
    let (all, truncated) = sightings(reports).await;
    let figures = stats::overview(&all);
    let index = index_info(env).await;
    let backlog = Backlog {
        outbox: count(reports, crate::outbox::OUTBOX_PREFIX).await,
        dead: count(reports, DEAD_PREFIX).await,
        records_read: all.len(),
        truncated,
    };
    page(200, &view::overview(viewer, &figures, index, &backlog))
}

async fn index_info(env: &Env) -> Result<IndexInfo, String> {
    use hashgate::index::generation::{Layout, Manifest, CURRENT_KEY};
    let kv = env.kv(HASH_INDEX).map_err(|e| e.to_string())?;
    let text = kv
        .get(CURRENT_KEY)
        .text()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no index: {CURRENT_KEY} is missing"))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{CURRENT_KEY}: {e}"))?;
    let overrides = match kv.get(OVERRIDES_KEY).text().await {
        Ok(Some(text)) => match Overrides::parse(&text) {
            Ok(o) => format!(
                "{} entries turned off, {} images cleared",
                o.entries.len(),
                o.allowed.len()
            ),
            Err(e) => format!("unusable: {e}"),
        },
        Ok(None) => "none".to_owned(),
        Err(e) => format!("not readable: {e}"),
    };
    Ok(IndexInfo {
        generation: manifest.generation.clone(),
        built: rfc3339(manifest.built_unix.saturating_mul(1000)),
        layout: match manifest.layout {
            Layout::Resident => "resident".to_owned(),
            Layout::Buckets => "buckets".to_owned(),
        },
        bytes: manifest.bytes,
        lists: manifest
            .lists
            .iter()
            .map(|(list, counts)| {
                let counts: Vec<String> = counts
                    .iter()
                    .map(|(kind, n)| format!("{} {n}", kind.name()))
                    .collect();
                (list.to_string(), counts.join(", "))
            })
            .collect(),
        overrides,
    })
}

async fn audit_page(reports: &KvStore) -> Vec<AuditEntry> {
    let Ok(list) = reports
        .list()
        .prefix(audit::AUDIT_PREFIX.to_owned())
        .limit(AUDIT_ROWS)
        .execute()
        .await
    else {
        return Vec::new();
    };
    list.keys
        .into_iter()
        .filter_map(|k| k.metadata)
        .filter_map(|m| serde_json::from_value(m).ok())
        .collect()
}

fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// An action on a sighting.
#[allow(clippy::too_many_arguments)]
async fn act(
    request: &Request,
    env: &Env,
    reports: &KvStore,
    viewer: &Viewer<'_>,
    identity: &Identity,
    secret: &str,
    request_id: &str,
    memory: BudgetSettings,
) -> Result<Response, JsValue> {
    let fields = form(request).await?;
    let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
    if !auth::csrf_ok(secret, identity, &get("csrf")) {
        log(Level::Warn, "console-refused", request_id)
            .str("reason", "csrf")
            .str("who", identity.email.as_str())
            .pipe(|l| logging::emit(&l));
        return page(
            403,
            &view::message(
                Some(viewer),
                "Refused",
                "This form has expired or was not the console's. Reload the page and try again.",
                None,
            ),
        );
    }
    let Some(action) = Action::from_name(&get("action")) else {
        return page(
            400,
            &view::message(Some(viewer), "Refused", "Unknown action.", None),
        );
    };
    let needed = match action {
        Action::Release => Role::Admin,
        _ => Role::Reviewer,
    };
    if viewer.role < needed {
        return page(
            403,
            &view::message(Some(viewer), "Refused", "Your role cannot do this.", None),
        );
    }
    let key = get("key");
    let back = format!("{}sighting?key={}", viewer.base, view::q(&key));
    let why = match audit::check_why(&get("why"), action.needs_why()) {
        Ok(why) => why,
        Err(problem) => {
            return page(
                400,
                &view::message(
                    Some(viewer),
                    "Refused",
                    &problem,
                    Some((&back, "Back to the sighting")),
                ),
            );
        }
    };
    let Some(sighting) = one_sighting(reports, &key).await else {
        return page(
            404,
            &view::message(Some(viewer), "Not found", "No such sighting.", None),
        );
    };
    let record = &sighting.record;
    let now = now_ms() as u64;
    let at = rfc3339(now);
    let mut detail = String::new();
    let mut revealed: Option<Result<Rendering, String>> = None;
    match action {
        Action::FalsePositive | Action::Release => {
            let Some(sha256) = record.sha256.clone() else {
                return page(
                    400,
                    &view::message(
                        Some(viewer),
                        "Refused",
                        "This sighting has no image digest to clear.",
                        Some((&back, "Back")),
                    ),
                );
            };
            let lists: BTreeSet<String> = match action {
                Action::Release => [EVERY_LIST.to_owned()].into(),
                _ => record.matches.iter().map(|m| m.list.clone()).collect(),
            };
            let kv = env.kv(HASH_INDEX).map_err(js)?;
            let mut overrides = match kv.get(OVERRIDES_KEY).text().await.map_err(js)? {
                Some(text) => Overrides::parse(&text).map_err(js)?,
                None => Overrides::default(),
            };
            for list in &lists {
                overrides.allow(
                    Allowed {
                        list: list.clone(),
                        sha256: sha256.clone(),
                        pdq: record.pdq.clone(),
                        at: at.clone(),
                        by: identity.email.clone(),
                        reason: why.clone(),
                    },
                    now / 1000,
                );
            }
            kv.put(OVERRIDES_KEY, overrides.to_json())
                .map_err(js)?
                .execute()
                .await
                .map_err(js)?;
            overrides_store::forget();
            detail = format!(
                "{OVERRIDES_KEY}: allowed {sha256} on {}",
                lists.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        Action::Confirm => {
            // The report goes to the reporting job (docs/reporting.md); the
            // review state below stays the console's record.
            let filing = crate::reporting::confirm(env, &record.key, &identity.email, &why)
                .await
                .map_err(js)?;
            detail = format!("confirmed; the report is {:?}", filing.stage).to_lowercase();
        }
        Action::Reveal => {
            // Rendered first, so that the audit entry says what was shown;
            // served only after the entry is written (below).
            let result = reveal_evidence(env, record, memory).await;
            detail = match &result {
                Ok(r) => format!(
                    "shown a blurred greyscale rendering ({}x{}) of {}; not kept",
                    r.width,
                    r.height,
                    hashgate::evidence::object_key(record.sha256.as_deref().unwrap_or(""))
                ),
                Err(problem) => {
                    log(Level::Warn, "console-reveal-failed", request_id)
                        .str("route", record.route.as_str())
                        .str("who", identity.email.as_str())
                        .str("target", record.key.as_str())
                        .str("reason", problem.as_str())
                        .pipe(|l| logging::emit(&l));
                    format!("no rendering: {problem}")
                }
            };
            revealed = Some(result);
        }
        // Not a person's action: from_name never yields it.
        Action::Note | Action::Suspend => {}
    }
    let review = sighting
        .review
        .clone()
        .after(action, &identity.email, &at, &why);
    let retention = audit::AUDIT_RETENTION_SECONDS;
    reports
        .put(
            &audit::review_key(&record.key),
            serde_json::to_string(&review).map_err(js)?,
        )
        .map_err(js)?
        .metadata(ReviewMeta {
            state: review.state,
        })
        .map_err(js)?
        .expiration_ttl(retention)
        .execute()
        .await
        .map_err(js)?;
    let entry = AuditEntry {
        v: 1,
        at: at.clone(),
        who: identity.email.clone(),
        role: viewer.role.name().to_owned(),
        action,
        target: record.key.clone(),
        url: record.urls.first().cloned().unwrap_or_default(),
        why: why.clone(),
        detail: detail.clone(),
    };
    reports
        .put(
            &audit::audit_key(now, &uuid()),
            serde_json::to_string(&entry).map_err(js)?,
        )
        .map_err(js)?
        .metadata(entry.metadata())
        .map_err(js)?
        .expiration_ttl(retention)
        .execute()
        .await
        .map_err(js)?;
    Line::new(Level::Info, "console-action")
        .str("request_id", request_id)
        .str("route", record.route.as_str())
        .opt("list", record.matches.first().map(|m| m.list.as_str()))
        .str("action", action.name())
        .str("who", identity.email.as_str())
        .str("target", record.key.as_str())
        .str("why", why.as_str())
        .str("detail", detail.as_str())
        .pipe(|l| logging::emit(&l));
    if let Some(result) = revealed {
        // The audit entry is written: now the rendering may be served, in
        // this response only (no-store; never kept anywhere).
        let shown = Sighting {
            record: sighting.record.clone(),
            review,
        };
        return match result {
            Ok(rendering) => {
                let src = rendering.data_url();
                let html = view::sighting(
                    viewer,
                    &shown,
                    Some(Revealed::Image {
                        src: &src,
                        width: rendering.width,
                        height: rendering.height,
                    }),
                );
                respond_csp(REVEAL_CSP, 200, "text/html; charset=utf-8", &html, &[])
            }
            Err(problem) => page(
                200,
                &view::sighting(viewer, &shown, Some(Revealed::Unavailable(&problem))),
            ),
        };
    }
    redirect(&back, None)
}

/// A blurred rendering of a sighting's preserved evidence, or what to tell
/// the reviewer instead. Read from the `EVIDENCE` bucket only, never from
/// the URL the image was seen at (attacker-controlled).
async fn reveal_evidence(
    env: &Env,
    record: &ReportRecord,
    memory: BudgetSettings,
) -> Result<Rendering, String> {
    let sha256 = record
        .sha256
        .as_deref()
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("This sighting has no image digest, so there is no preserved evidence to show.")?;
    let key = hashgate::evidence::object_key(sha256);
    let bucket = env.bucket(crate::evidence::EVIDENCE).map_err(|_| {
        "No evidence store is bound (EVIDENCE in wrangler.toml): nothing was preserved.".to_owned()
    })?;
    let object = bucket
        .get(&key)
        .execute()
        .await
        .map_err(|e| format!("The evidence store could not be read: {e}."))?
        .ok_or_else(|| {
            format!(
                "No preserved evidence for this image ({key}): it was not preserved, is past its retention, \
                 or is still in the evidence outbox until the next cron tick moves it."
            )
        })?;
    if object.size() > reveal::max_object_bytes() {
        return Err(format!(
            "The evidence object is {} bytes, over the {} bytes a rendering reads.",
            object.size(),
            reveal::max_object_bytes()
        ));
    }
    // The object and its plaintext are in wasm memory at once: counted
    // against the isolate's budget like a scanned body (crate::budget).
    let mut held = Reservation::new(memory);
    let size = usize::try_from(object.size()).unwrap_or(usize::MAX);
    held.grow_to(size.saturating_mul(2)).await.map_err(|e| {
        format!(
            "Not rendered now: {e} (the policy's memory_budget; `hashgate evidence get` reads it)."
        )
    })?;
    let sealed = match object.body() {
        Some(body) => body
            .bytes()
            .await
            .map_err(|e| format!("The evidence store could not be read: {e}."))?,
        None => Vec::new(),
    };
    let (header, plain) = crate::evidence::open(env, &sealed)
        .await
        .map_err(|e| format!("The evidence could not be opened: {e}."))?;
    drop(sealed);
    if !header.sha256.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "The object at {key} holds another image (SHA-256 {}): not shown.",
            header.sha256
        ));
    }
    reveal::render(&plain).map_err(|e| format!("No rendering: {e}."))
}
