//! The hashgate edge worker: scans images on the routes a policy enables,
//! answers 451 when one matches a subscribed hash list, and reports through
//! a queue.
//!
//! This file is only the event glue. The pure modules (policy, routes,
//! sniffing, multipart, verdicts, verdict cache, events, report records,
//! signing) sit at the crate root, build everywhere and are unit-tested
//! natively with `cargo test -p hashgate-worker`; the runtime modules are
//! wasm32-only and sit in `src/runtime/`.
//!
//! * fetch: [`intercept`] (phases console -> route -> upload -> origin ->
//!   inspect -> read -> generation -> remembered -> hash -> look up ->
//!   verdict (less [`overrides`]) -> respond), each match and failure
//!   logged and counted ([`telemetry`]); the console ([`console`]) on its
//!   admin path;
//! * queue: [`consumer`] (report records in `REPORTS`, signed webhooks,
//!   dead letters);
//! * queue `hashgate-stored-objects`: `stored` (objects in R2 buckets:
//!   notifications, backfills, retroactive passes over the hash log);
//! * scheduled (cron): [`outbox`] drain (events the queue refused when
//!   they happened go to the queue now), and the retroactive check (a new
//!   index generation starts a pass, see [`retro`]).
//!
//! Panic policy: panics are for logic errors only. Input (requests, origin
//! responses, images, multipart bodies, queue messages, KV values) is
//! handled with typed errors and the route's fail mode; the crate denies
//! `unwrap`/`expect` outside tests.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod address;
pub mod block_limit;
pub mod budget;
pub mod canonical;
pub mod console;
pub mod embedded;
pub mod encoding;
pub mod error;
pub mod events;
pub mod evidence;
pub mod flood_guard;
pub mod hash_log;
pub mod logging;
pub mod multipart;
pub mod notify;
pub mod origin;
pub mod outbox;
pub use hashgate::overrides;
pub mod pattern;
pub mod policy;
pub mod range;
pub mod report;
pub mod reporting;
pub mod respond;
pub mod retro;
pub mod sniff;
pub mod stored_message;
pub mod stored_policy;
pub mod telemetry;
pub mod upload;
pub mod verdict;
pub mod verdict_cache;

// The runtime half (wasm32 only), in a folder of its own; its modules are
// also named from the crate root, as the pure ones are.
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
use runtime::{
    body, config, consumer, current_index, digests, flood, intercept, lookup, overrides_store,
    penalties, ranged, shared_verdicts, stored, stored_admin,
};

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
        crate::outbox::drain_marked_and_log(&env).await;
        crate::evidence::drain_and_log(&env).await;
        crate::reporting::run_due_and_log(&env).await;
        if let Ok(config) = crate::config::load(&env).await {
            if let Err(e) = crate::flood::prune(&env, config.policy.flood_guard).await {
                crate::runtime::log_warn(&format!("hashgate: {e}"));
            }
        }
        // A new index generation: match the hash log against what it added.
        if let Err(e) = crate::stored::check_generation(&env).await {
            crate::runtime::log_warn(&format!("hashgate: retroactive check failed: {e}"));
        }
    }
}
