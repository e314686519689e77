//! MD5, SHA-1 and SHA-256 of a body through the runtime's Web Crypto
//! (`crypto.subtle.digest`; workerd offers MD5 there too).
//!
//! The same digests compiled to wasm run without the CPU's SHA
//! instructions: about 3 ms of a 1 MP JPEG's CPU time, more than the
//! decode saved by scaling. The runtime's are native, are computed once per
//! body for both the verdict-cache key and the index look-up, and the
//! three run at once. If the runtime refuses (no Web Crypto, an algorithm
//! missing), the hasher's own digests are used: slower, never wrong.

use futures_util::future::try_join3;
use hashgate::digest::ExactDigests;
use hashgate::{Md5Digest, Sha1Digest, Sha256Digest};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The exact digests of `bytes`, natively when the runtime can.
pub async fn exact_digests(bytes: &[u8]) -> ExactDigests {
    match native_digests(bytes).await {
        Ok(digests) => digests,
        Err(_) => ExactDigests::of(bytes),
    }
}

async fn native_digests(bytes: &[u8]) -> Result<ExactDigests, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
    let digest: Function = Reflect::get(&subtle, &JsValue::from_str("digest"))?.dyn_into()?;
    // One copy of the body in JavaScript memory, read by all three.
    let data = Uint8Array::from(bytes);
    let start = |algorithm: &str| -> Result<JsFuture, JsValue> {
        let promise: Promise = digest
            .call2(&subtle, &JsValue::from_str(algorithm), &data)?
            .dyn_into()?;
        Ok(JsFuture::from(promise))
    };
    let (md5, sha1, sha256) = try_join3(start("MD5")?, start("SHA-1")?, start("SHA-256")?).await?;
    let raw = |buffer: JsValue| Uint8Array::new(&buffer).to_vec();
    let wrong_length =
        |name: &str| JsValue::from_str(&format!("{name} digest of the wrong length"));
    Ok(ExactDigests {
        md5: Md5Digest::from_slice(&raw(md5)).ok_or_else(|| wrong_length("MD5"))?,
        sha1: Sha1Digest::from_slice(&raw(sha1)).ok_or_else(|| wrong_length("SHA-1"))?,
        sha256: Sha256Digest::from_slice(&raw(sha256)).ok_or_else(|| wrong_length("SHA-256"))?,
    })
}
