//! What hashgate's tests share, in one dev-only crate instead of copies and
//! `#[path]` includes.
//!
//! * [`fixtures`]: every fixture file, embedded, so the same cases run
//!   natively and in wasm;
//! * [`corpus`]: the malformed-image corpus made from those fixtures;
//! * [`rng`]: the one seeded generator the tests and benches use;
//! * [`alloc`]: peak heap use of a piece of code;
//! * [`http`] (native only): the `hashgate` binary started as a service, and
//!   a plain HTTP/1.1 client that can also misbehave.

pub mod alloc;
pub mod corpus;
pub mod fixtures;
#[cfg(not(target_arch = "wasm32"))]
pub mod http;
pub mod rng;
