//! The hashgate edge worker.
//!
//! PLACEHOLDER: this only proves the build toolchain (workers-rs -> wasm ->
//! worker-build -> wrangler/miniflare). It proxies every request to the
//! origin unchanged and acks queue messages. The real worker (scan, index
//! lookup, 451, report events) replaces it.

use worker::wasm_bindgen::JsCast;
use worker::{event, web_sys, Context, Env, Fetch, MessageBatch, Request, Response, Result};

/// Proxy to the origin: `ORIGIN` + path + query when the `ORIGIN` var is set,
/// else the request goes out unchanged to the host it names (as on a
/// Cloudflare route in front of the origin). The origin's response is
/// returned as is.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = env.var("ORIGIN").map(|v| v.to_string()).unwrap_or_default();
    if origin.is_empty() {
        return Fetch::Request(req).send().await;
    }
    let url = req.url()?;
    let mut target = format!("{}{}", origin.trim_end_matches('/'), url.path());
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    // `new Request(target, req)`, the usual Workers idiom: the incoming request
    // serves as the init dictionary (same method, headers, body, redirect mode).
    let init: &web_sys::RequestInit = req.inner().unchecked_ref();
    let upstream = web_sys::Request::new_with_str_and_init(&target, init)?;
    Fetch::Request(upstream.into()).send().await
}

/// Queue consumer for `MATCH_EVENTS`: acknowledge everything (placeholder).
#[event(queue)]
async fn queue(
    batch: MessageBatch<worker::wasm_bindgen::JsValue>,
    _env: Env,
    _ctx: Context,
) -> Result<()> {
    batch.ack_all();
    Ok(())
}
