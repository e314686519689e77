//! The hashgate edge worker: scans images on the routes a policy enables,
//! answers 451 when one matches a subscribed hash list, and reports through
//! a queue.
//!
//! This file is only the event glue. The pure modules (policy, routes,
//! sniffing, multipart, verdicts, verdict cache, events, report records,
//! signing) build everywhere and are unit-tested natively with
//! `cargo test -p hashgate-worker`; the runtime modules are wasm32-only.
//!
//! * fetch: [`intercept`] (phases route -> upload -> origin -> inspect ->
//!   read -> generation -> remembered -> hash -> look up -> verdict ->
//!   respond);
//! * queue: [`consumer`] (report records in `REPORTS`, signed webhooks,
//!   dead letters);
//! * scheduled (cron): [`outbox`] drain (events the queue refused when
//!   they happened go to the queue now).
//!
//! Panic policy: panics are for logic errors only. Input (requests, origin
//! responses, images, multipart bodies, queue messages, KV values) is
//! handled with typed errors and the route's fail mode; the crate denies
//! `unwrap`/`expect` outside tests.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
pub mod canonical;
pub mod embedded;
pub mod encoding;
pub mod error;
pub mod events;
pub mod multipart;
pub mod notify;
pub mod origin;
pub mod outbox;
pub mod overrides;
pub mod pattern;
pub mod policy;
pub mod range;
pub mod report;
pub mod respond;
pub mod sniff;
pub mod upload;
pub mod verdict;
pub mod verdict_cache;

#[cfg(target_arch = "wasm32")]
mod body;
#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod consumer;
#[cfg(target_arch = "wasm32")]
mod current_index;
#[cfg(target_arch = "wasm32")]
mod current_overrides;
#[cfg(target_arch = "wasm32")]
mod digests;
#[cfg(target_arch = "wasm32")]
mod intercept;
#[cfg(target_arch = "wasm32")]
mod lookup;
#[cfg(target_arch = "wasm32")]
mod ranged;
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
mod shared_verdicts;

#[cfg(target_arch = "wasm32")]
mod glue {
    use wasm_bindgen::JsValue;
    use worker::{event, Context, Env, MessageBatch, ScheduleContext, ScheduledEvent};

    #[event(fetch)]
    async fn fetch(
        request: web_sys::Request,
        env: Env,
        ctx: Context,
    ) -> worker::Result<web_sys::Response> {
        match crate::intercept::handle(request, env, ctx).await {
            Ok(response) => Ok(response),
            // A fault of the runtime: the details go to the log, the client
            // gets a bare 500 with an id to quote.
            Err(e) => {
                let id = crate::runtime::uuid();
                crate::runtime::log_error(&format!(
                    "hashgate: request {id} failed: {}",
                    crate::runtime::js_error_text(&e)
                ));
                crate::respond::internal_error(&id).map_err(worker::Error::from)
            }
        }
    }

    #[event(queue)]
    async fn queue(batch: MessageBatch<JsValue>, env: Env, _ctx: Context) -> worker::Result<()> {
        crate::consumer::handle(batch, env).await
    }

    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        crate::outbox::drain_marked_and_log(&env).await
    }
}
