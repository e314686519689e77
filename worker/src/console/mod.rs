//! The console for the people on duty: what was stopped, and the decisions
//! on it (confirm, false positive, release, notes), each in the audit log.
//!
//! Served by the same worker, on the policy's `console.path` (and
//! `console.host`, if set), routed before any scan ([`crate::intercept`],
//! phase console). The same worker rather than a second one because the
//! console reads and writes exactly what the worker uses (the policy, the
//! index manifest, `hg2/overrides`, the report records), with the same
//! bindings and the same code for each format; a second worker would
//! duplicate the bindings and the configuration and could drift from the
//! formats. The cost is the console's code in the scanning worker's wasm
//! (measured in docs/console.md); none of it runs on a scanned request.
//! An own hostname is one `console.host` away, behind its own Access
//! application.
//!
//! ```text
//! settings   the policy's "console" section, validated (pure)
//! auth       Access JWT checks, dev sessions, CSRF tokens, origin check (pure)
//! audit      audit entries, sighting reviews, their keys (pure)
//! reveal     evidence bytes -> a small blurred greyscale PNG (pure)
//! stats      overview figures, list health (pure)
//! view       the HTML pages, everything escaped (pure)
//! handler    requests -> pages and actions, KV, Web Crypto (wasm)
//! ```

pub mod audit;
pub mod auth;
pub mod reveal;
pub mod settings;
pub mod stats;
pub mod view;

#[cfg(target_arch = "wasm32")]
mod handler;
#[cfg(target_arch = "wasm32")]
pub use handler::{claims, handle};
