//! The wasm32-only half of the worker: everything that touches the Workers
//! runtime (requests, KV, the Cache API, Queues), beside the pure modules of
//! the crate root, which build and test natively.
//!
//! * [`intercept`]: the fetch path (route -> upload -> origin -> inspect ->
//!   read -> generation -> remembered -> hash -> look up -> verdict ->
//!   respond), with [`body`] and [`ranged`] reading bodies, [`digests`] the
//!   runtime's native digests;
//! * [`current_index`] and [`lookup`]: the index generation an isolate holds,
//!   and look-ups in it or in KV; [`shared_verdicts`]: the Cache API tier of
//!   the verdict cache;
//! * [`overrides_store`]: the operator's overrides (`hg2/overrides`), read
//!   with the generation; [`penalties`]: the per-client limit on 451s;
//! * [`stored`] and [`stored_admin`]: objects in R2 buckets (notifications,
//!   backfills, retroactive passes) and their admin endpoints;
//! * [`consumer`]: the queue handler, with [`flood`] (the flood guard's
//!   counts); [`config`]: bindings and the policy.
//!
//! This file itself holds the small bridges to the JavaScript host: clock,
//! ids, errors, memory, and reading headers, so that the rest of the
//! runtime code reads like Rust.

pub mod body;
pub mod config;
pub mod consumer;
pub mod current_index;
pub mod digests;
pub mod flood;
pub mod intercept;
pub mod lookup;
pub mod overrides_store;
pub mod penalties;
pub mod ranged;
pub mod shared_verdicts;
pub mod stored;
pub mod stored_admin;

use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds since the Unix epoch. In Workers the clock only advances
/// across I/O (a timing side-channel mitigation), which is precise enough
/// for timestamps and cache expiry.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A random UUID (v4) from the runtime's `crypto.randomUUID()`, or a
/// time-based fallback if that is unavailable.
pub fn uuid() -> String {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok();
    let uuid = crypto.and_then(|crypto| {
        let f = js_sys::Reflect::get(&crypto, &JsValue::from_str("randomUUID")).ok()?;
        let f: js_sys::Function = f.dyn_into().ok()?;
        f.call0(&crypto).ok()?.as_string()
    });
    uuid.unwrap_or_else(|| {
        format!(
            "t{}-{}",
            now_ms() as u64,
            (js_sys::Math::random() * 1e9) as u64
        )
    })
}

/// The text of a thrown JavaScript value (an `Error`'s message, or the
/// value itself).
pub fn js_error_text(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        return text;
    }
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    format!("{value:?}")
}

/// The wasm module's linear memory in bytes. Linear memory only grows, so
/// this is the peak reached so far by this isolate.
pub fn wasm_memory_bytes() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}

/// A header's value, if present.
pub fn header(headers: &web_sys::Headers, name: &str) -> Option<String> {
    headers.get(name).ok().flatten()
}

/// Logs an error to the Workers console (visible in `wrangler tail`,
/// `wrangler dev` and Workers Logs) as one JSON line ([`crate::logging`]).
pub fn log_error(message: &str) {
    crate::logging::emit(&crate::logging::message(
        crate::logging::Level::Error,
        message,
    ));
}

/// Logs a warning (one JSON line).
pub fn log_warn(message: &str) {
    crate::logging::emit(&crate::logging::message(
        crate::logging::Level::Warn,
        message,
    ));
}
