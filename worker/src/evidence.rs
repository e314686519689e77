//! The evidence store: an encrypted copy of every matched image, kept one
//! year in the `EVIDENCE` R2 bucket, never served.
//!
//! A provider that reports apparent CSAM must preserve the report's
//! contents, the content included, for one year, stored securely (18
//! U.S.C. 2258A(h), as amended by the REPORT Act of 2024). A blocked upload
//! never reaches the origin, so the worker is the only place a copy can be
//! made. On a match (block or flag; responses and uploads) the fetch
//! handler calls [`preserve_later`], which does everything inside
//! `waitUntil`: the verdict never waits for evidence.
//!
//! * **Encryption.** AES-256-GCM through Web Crypto (the wasm carries no
//!   cipher), with the operator's key (secret `EVIDENCE_KEY`, base64 of 32
//!   bytes) named by `EVIDENCE_KEY_ID`; a random 96-bit nonce per object;
//!   the object's header line is the additional data. Layout:
//!   [`hashgate::evidence`]. Rotation: set a new `EVIDENCE_KEY` and
//!   `EVIDENCE_KEY_ID`, and keep the old key as the secret
//!   `EVIDENCE_KEY_<OLD ID>` ([`retired_key_name`]) for as long as objects
//!   under it are kept: objects are opened with the key they name.
//! * **One copy per SHA-256.** The image is `evidence/v1/<sha256>/object`,
//!   written only if a `head` finds none (and this isolate has not written
//!   it already). Each sighting adds a small encrypted manifest
//!   ([`hashgate::evidence::Manifest`]: digest and size, content type, URL,
//!   route, request id, time, matches, and for uploads the client IP
//!   (`CF-Connecting-IP`), user agent and the headers the policy's
//!   `evidence.headers` lists) under `.../sighting/<ms>-<request id>`: an
//!   object of its own rather than an append to one manifest, because R2
//!   has no conditional append and two isolates seeing the image at once
//!   would overwrite each other's sighting.
//! * **Never lost silently.** Each write is tried [`PUT_ATTEMPTS`] times
//!   with a short backoff. An object R2 still refuses goes, already
//!   encrypted, to the evidence outbox in `REPORTS` KV
//!   (`evidence-outbox/v1/<object key>`, with the marker
//!   [`OUTBOX_MARKER`]), which the cron tick drains into R2 ([`drain`]).
//!   Not a queue message: a queue message holds 128 KB and images are
//!   larger. KV takes values up to 25 MiB, and costs one write per object,
//!   which is fine on this failure path only: evidence goes to R2, KV is
//!   the fallback. Only an object that KV refuses too (or larger than KV's
//!   limit) is lost, and that is logged as an error naming the digest.
//! * **Retention.** Every manifest carries `retain_until` (one year after
//!   the sighting) and objects carry it as custom metadata; deletion is the
//!   bucket's lifecycle rule (`evidence-lifecycle.json`, applied with
//!   `wrangler r2 bucket lifecycle set`; docs/reporting.md), since a Worker
//!   cannot set an expiry on an R2 object. The rule deletes objects under
//!   `evidence/` [`LIFECYCLE_DELETE_DAYS`] days after they were written.

use hashgate::evidence::{Manifest, Uploader};

use crate::events::Direction;
use crate::policy::Action;
use hashgate::matching::MatchRecord;

/// The R2 bucket binding.
pub const EVIDENCE: &str = "EVIDENCE";
/// Secret: the current key, base64 of 32 bytes.
pub const KEY_SECRET: &str = "EVIDENCE_KEY";
/// Variable or secret: the current key's id.
pub const KEY_ID_VAR: &str = "EVIDENCE_KEY_ID";
/// Writes of one object before it goes to the outbox.
pub const PUT_ATTEMPTS: usize = 3;
/// Pause before each retry, in milliseconds.
pub const PUT_BACKOFF_MS: [u64; PUT_ATTEMPTS - 1] = [100, 500];
/// Key prefix of the evidence outbox in `REPORTS`.
pub const OUTBOX_PREFIX: &str = "evidence-outbox/v1/";
/// Present in `REPORTS` while the evidence outbox may hold entries.
pub const OUTBOX_MARKER: &str = "evidence-outbox/pending";
/// How long an outbox entry waits for R2 (KV expiration).
pub const OUTBOX_RETENTION_SECONDS: u64 = 30 * 24 * 60 * 60;
/// The lifecycle rule deletes evidence this many days after it was written:
/// the year the law asks for, and a day's margin.
pub const LIFECYCLE_DELETE_DAYS: u64 = hashgate::evidence::RETENTION_DAYS + 1;
/// One year, in milliseconds.
pub const RETENTION_MS: u64 = hashgate::evidence::RETENTION_DAYS * 24 * 60 * 60 * 1000;

/// What a handler knows about the sighting of matched bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceContext {
    /// SHA-256 of the bytes (the verdict's, lowercase hex).
    pub sha256: String,
    pub url: String,
    pub route: String,
    pub request_id: String,
    pub direction: Direction,
    pub action: Action,
    /// The `Content-Type` the bytes came with.
    pub content_type: Option<String>,
    /// Best first.
    pub matches: Vec<MatchRecord>,
    /// For uploads.
    pub uploader: Option<Uploader>,
}

/// Where the evidence of a sighting is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRef {
    pub object_key: String,
    pub sighting_key: String,
    /// Whether this call wrote the image (false: it was there already).
    pub stored_object: bool,
}

/// The manifest of one sighting.
pub fn manifest(cx: &EvidenceContext, size: u64, key_id: &str, time_ms: u64) -> Manifest {
    Manifest {
        v: 1,
        sha256: cx.sha256.clone(),
        size,
        content_type: hashgate::evidence::media_type(cx.content_type.as_deref()),
        url: cx.url.clone(),
        route: cx.route.clone(),
        request_id: cx.request_id.clone(),
        direction: cx.direction.name().to_owned(),
        action: match cx.action {
            Action::Block => "blocked",
            Action::Flag => "flagged",
        }
        .to_owned(),
        time: crate::events::rfc3339(time_ms),
        time_ms,
        matches: cx.matches.clone(),
        uploader: cx.uploader.clone(),
        object_key: hashgate::evidence::object_key(&cx.sha256),
        key_id: key_id.to_owned(),
        retain_until: crate::events::rfc3339(time_ms.saturating_add(RETENTION_MS)),
    }
}

/// The secret that holds a retired key: `EVIDENCE_KEY_` and the id in
/// upper case, `.` and `-` as `_`.
pub fn retired_key_name(key_id: &str) -> String {
    let id: String = key_id
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("{KEY_SECRET}_{id}")
}

/// The outbox key of an evidence object.
pub fn outbox_key(object_key: &str) -> String {
    format!("{OUTBOX_PREFIX}{object_key}")
}

/// The lifecycle rule document the project ships (`evidence-lifecycle.json`),
/// as `wrangler r2 bucket lifecycle set --file` reads it.
pub fn lifecycle_rules() -> serde_json::Value {
    serde_json::json!({
        "rules": [{
            "id": "hashgate-evidence-retention",
            "enabled": true,
            "conditions": {"prefix": hashgate::evidence::PREFIX},
            "deleteObjectsTransition": {
                "condition": {"type": "Age", "maxAge": LIFECYCLE_DELETE_DAYS * 24 * 60 * 60}
            }
        }]
    })
}

#[cfg(target_arch = "wasm32")]
pub use runtime::*;

#[cfg(target_arch = "wasm32")]
mod runtime {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};
    use std::time::Duration;

    use hashgate::evidence::{self as format, Envelope, Header, Uploader};
    use sha2::{Digest, Sha256};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use worker::{Bucket, Context, Delay, Env, KvStore};

    use super::*;
    use crate::config::REPORTS;
    use crate::runtime::{header, js_error_text, log_error, log_warn, now_ms};

    /// Image objects this isolate wrote or found (skips the `head`).
    const MAX_KNOWN: usize = 4096;

    thread_local! {
        static KNOWN: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    }

    /// The current key and its id.
    pub struct Key {
        pub id: String,
        pub bytes: [u8; format::KEY_BYTES],
    }

    fn secret(env: &Env, name: &str) -> Option<String> {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|s| s.to_string()))
            .ok()
            .filter(|s| !s.trim().is_empty())
    }

    /// The key objects are written with.
    pub fn current_key(env: &Env) -> Result<Key, String> {
        let text = secret(env, KEY_SECRET).ok_or_else(|| {
            format!("{KEY_SECRET} is not set (npx wrangler secret put {KEY_SECRET})")
        })?;
        let id = secret(env, KEY_ID_VAR).ok_or_else(|| format!("{KEY_ID_VAR} is not set"))?;
        format::check_key_id(&id).map_err(|e| e.to_string())?;
        let bytes = format::parse_key(&text).map_err(|e| format!("{KEY_SECRET}: {e}"))?;
        Ok(Key { id, bytes })
    }

    /// The key an object names: the current one, or a retired one.
    pub fn key_for(env: &Env, key_id: &str) -> Result<[u8; format::KEY_BYTES], String> {
        let current = current_key(env)?;
        if current.id == key_id {
            return Ok(current.bytes);
        }
        let name = retired_key_name(key_id);
        let text = secret(env, &name)
            .ok_or_else(|| format!("no key for key id {key_id:?} (secret {name})"))?;
        format::parse_key(&text).map_err(|e| format!("{name}: {e}"))
    }

    fn subtle() -> Result<(web_sys::Crypto, web_sys::SubtleCrypto), String> {
        let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
            .ok()
            .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
            .ok_or("Web Crypto is not available")?;
        let subtle = crypto.subtle();
        Ok((crypto, subtle))
    }

    async fn aes_key(
        subtle: &web_sys::SubtleCrypto,
        key: &[u8; format::KEY_BYTES],
        usage: &str,
    ) -> Result<web_sys::CryptoKey, String> {
        let algorithm = js_sys::Object::new();
        js_sys::Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into())
            .map_err(|e| js_error_text(&e))?;
        let usages = js_sys::Array::of1(&JsValue::from_str(usage));
        let raw = js_sys::Uint8Array::from(&key[..]);
        let promise = subtle
            .import_key_with_object("raw", &raw, &algorithm, false, &usages)
            .map_err(|e| js_error_text(&e))?;
        JsFuture::from(promise)
            .await
            .map_err(|e| js_error_text(&e))?
            .dyn_into::<web_sys::CryptoKey>()
            .map_err(|_| "importKey returned no key".to_owned())
    }

    fn gcm_params(nonce: &[u8], aad: &[u8]) -> web_sys::AesGcmParams {
        let params =
            web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &js_sys::Uint8Array::from(nonce));
        params.set_additional_data_u8_array(&js_sys::Uint8Array::from(aad));
        params
    }

    /// Encrypts `plain` into an evidence object (a small one, in wasm
    /// memory: manifests).
    pub async fn seal(
        key: &Key,
        plain: &[u8],
        sha256: &str,
        content_type: &str,
    ) -> Result<Vec<u8>, String> {
        let plain = js_sys::Uint8Array::from(plain);
        Ok(seal_js(key, &plain, sha256, content_type).await?.to_vec())
    }

    /// Encrypts `plain` into an evidence object, all in JavaScript memory:
    /// an image is never copied into the wasm heap (whose linear memory
    /// only grows, and is budgeted for scanning).
    pub async fn seal_js(
        key: &Key,
        plain: &js_sys::Uint8Array,
        sha256: &str,
        content_type: &str,
    ) -> Result<js_sys::Uint8Array, String> {
        let (crypto, subtle) = subtle()?;
        let mut nonce = [0u8; format::NONCE_BYTES];
        crypto
            .get_random_values_with_u8_array(&mut nonce)
            .map_err(|e| js_error_text(&e))?;
        let header = Header {
            key_id: key.id.clone(),
            nonce,
            sha256: sha256.to_owned(),
            size: u64::from(plain.length()),
            content_type: content_type.to_owned(),
        };
        let line = header.line().map_err(|e| e.to_string())?;
        let aes = aes_key(&subtle, &key.bytes, "encrypt").await?;
        let promise = subtle
            .encrypt_with_object_and_buffer_source(
                &gcm_params(&nonce, line.as_bytes()),
                &aes,
                plain,
            )
            .map_err(|e| js_error_text(&e))?;
        let sealed = JsFuture::from(promise)
            .await
            .map_err(|e| js_error_text(&e))?;
        let sealed = js_sys::Uint8Array::new(&sealed);
        let head = line.len() as u32;
        let object = js_sys::Uint8Array::new_with_length(head + sealed.length());
        object.set(&js_sys::Uint8Array::from(line.as_bytes()), 0);
        object.set(&sealed, head);
        Ok(object)
    }

    /// Decrypts an evidence object with the key it names, and checks the
    /// plaintext's digest against its header.
    pub async fn open(env: &Env, object: &[u8]) -> Result<(Header, Vec<u8>), String> {
        let envelope = Envelope::parse(object).map_err(|e| e.to_string())?;
        let key = key_for(env, &envelope.header.key_id)?;
        let (_, subtle) = subtle()?;
        let aes = aes_key(&subtle, &key, "decrypt").await?;
        let promise = subtle
            .decrypt_with_object_and_u8_array(
                &gcm_params(&envelope.header.nonce, envelope.aad),
                &aes,
                envelope.ciphertext,
            )
            .map_err(|e| js_error_text(&e))?;
        let plain = JsFuture::from(promise)
            .await
            .map_err(|_| "the object does not authenticate with its key".to_owned())?;
        let plain = js_sys::Uint8Array::new(&plain).to_vec();
        let digest = hex::encode(Sha256::digest(&plain));
        if digest != envelope.header.sha256 {
            return Err(format!(
                "decrypted digest {digest} differs from the header's {}",
                envelope.header.sha256
            ));
        }
        Ok((envelope.header, plain))
    }

    /// Reads and decrypts the sighting manifests of a digest, oldest first.
    pub async fn sightings(env: &Env, sha256: &str, limit: usize) -> Result<Vec<Manifest>, String> {
        let bucket = env
            .bucket(EVIDENCE)
            .map_err(|e| format!("{EVIDENCE}: {e}"))?;
        let listed = bucket
            .list()
            .prefix(format::sightings_prefix(sha256))
            .limit(limit.min(1000) as u32)
            .execute()
            .await
            .map_err(|e| format!("listing sightings: {e}"))?;
        let mut out = Vec::new();
        for object in listed.objects() {
            let bytes = read(&bucket, &object.key()).await?.unwrap_or_default();
            match open(env, &bytes).await {
                Ok((_, plain)) => match serde_json::from_slice::<Manifest>(&plain) {
                    Ok(m) => out.push(m),
                    Err(e) => log_warn(&format!(
                        "hashgate: sighting {} unreadable: {e}",
                        object.key()
                    )),
                },
                Err(e) => log_warn(&format!(
                    "hashgate: sighting {} unreadable: {e}",
                    object.key()
                )),
            }
        }
        Ok(out)
    }

    /// Reads an object's bytes.
    pub async fn read(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(object) = bucket
            .get(key)
            .execute()
            .await
            .map_err(|e| format!("reading {key}: {e}"))?
        else {
            return Ok(None);
        };
        let Some(body) = object.body() else {
            return Ok(Some(Vec::new()));
        };
        body.bytes()
            .await
            .map(Some)
            .map_err(|e| format!("reading {key}: {e}"))
    }

    /// The uploader of a request: client IP, user agent and the listed
    /// headers.
    pub fn uploader(
        request: &web_sys::Request,
        keep: &[String],
        field: Option<String>,
        filename: Option<String>,
    ) -> Uploader {
        let headers = request.headers();
        Uploader {
            ip: header(&headers, "cf-connecting-ip"),
            user_agent: header(&headers, "user-agent"),
            headers: keep
                .iter()
                .filter_map(|name| Some((name.clone(), header(&headers, name)?)))
                .collect(),
            field,
            filename,
        }
    }

    /// Preserves the evidence of a sighting after the response
    /// (`waitUntil`); failures are logged and kept in the outbox.
    pub fn preserve_later(env: &Env, ctx: &Context, bytes: &[u8], cx: EvidenceContext) {
        let env = env.clone();
        // Copied out of the wasm heap at once (see seal_js).
        let plain = js_sys::Uint8Array::from(bytes);
        ctx.wait_until(async move {
            if let Err(e) = preserve_js(&env, &plain, &cx).await {
                log_error(&format!(
                    "hashgate: evidence of {} ({}) was NOT preserved: {e}",
                    cx.sha256, cx.url
                ));
            }
        });
    }

    /// Stores the image (once per SHA-256) and this sighting's manifest.
    pub async fn preserve(
        env: &Env,
        bytes: &[u8],
        cx: &EvidenceContext,
    ) -> Result<EvidenceRef, String> {
        preserve_js(env, &js_sys::Uint8Array::from(bytes), cx).await
    }

    async fn preserve_js(
        env: &Env,
        bytes: &js_sys::Uint8Array,
        cx: &EvidenceContext,
    ) -> Result<EvidenceRef, String> {
        if cx.sha256.len() != 64 {
            return Err(format!("{:?} is not a SHA-256", cx.sha256));
        }
        let key = current_key(env)?;
        let bucket = env
            .bucket(EVIDENCE)
            .map_err(|e| format!("{EVIDENCE} is not bound: {e}"))?;
        let time_ms = now_ms() as u64;
        let manifest = manifest(cx, u64::from(bytes.length()), &key.id, time_ms);
        let object_key = manifest.object_key.clone();
        let metadata = HashMap::from([
            ("key_id".to_owned(), key.id.clone()),
            ("sha256".to_owned(), cx.sha256.clone()),
            ("retain_until".to_owned(), manifest.retain_until.clone()),
        ]);

        let known = KNOWN.with(|k| k.borrow().contains(&object_key));
        let mut stored_object = false;
        if !known {
            let exists = match bucket.head(object_key.as_str()).await {
                Ok(found) => found.is_some(),
                // Unknown: write it (the same bytes again at worst).
                Err(e) => {
                    log_warn(&format!(
                        "hashgate: head {object_key} failed ({e}); writing it"
                    ));
                    false
                }
            };
            if !exists {
                let sealed = seal_js(&key, bytes, &cx.sha256, &manifest.content_type).await?;
                put_or_keep(env, &bucket, &object_key, sealed, &metadata).await?;
                stored_object = true;
            }
            KNOWN.with(|k| {
                let mut k = k.borrow_mut();
                if k.len() >= MAX_KNOWN {
                    k.clear();
                }
                k.insert(object_key.clone());
            });
        }

        let json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
        let digest = hex::encode(Sha256::digest(&json));
        let sighting_key = format::sighting_key(&cx.sha256, time_ms, &cx.request_id);
        let json = js_sys::Uint8Array::from(json.as_slice());
        let sealed = seal_js(&key, &json, &digest, "application/json").await?;
        put_or_keep(env, &bucket, &sighting_key, sealed, &metadata).await?;
        Ok(EvidenceRef {
            object_key,
            sighting_key,
            stored_object,
        })
    }

    /// `put` through the binding itself, with a JavaScript buffer (no copy
    /// into the wasm heap).
    async fn put_js(
        bucket: &Bucket,
        key: &str,
        sealed: &js_sys::Uint8Array,
        metadata: &HashMap<String, String>,
    ) -> Result<(), String> {
        let js = |e: JsValue| js_error_text(&e);
        let binding: &JsValue = bucket.as_ref();
        let custom = js_sys::Object::new();
        for (k, v) in metadata {
            js_sys::Reflect::set(&custom, &k.into(), &v.into()).map_err(js)?;
        }
        let http = js_sys::Object::new();
        js_sys::Reflect::set(
            &http,
            &"contentType".into(),
            &"application/octet-stream".into(),
        )
        .map_err(js)?;
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"customMetadata".into(), &custom).map_err(js)?;
        js_sys::Reflect::set(&options, &"httpMetadata".into(), &http).map_err(js)?;
        let put: js_sys::Function = js_sys::Reflect::get(binding, &"put".into())
            .map_err(js)?
            .dyn_into()
            .map_err(|_| "the bucket has no put".to_owned())?;
        let promise: js_sys::Promise = put
            .call3(binding, &key.into(), sealed, &options)
            .map_err(js)?
            .dyn_into()
            .map_err(|_| "put returned no promise".to_owned())?;
        JsFuture::from(promise).await.map(|_| ()).map_err(js)
    }

    async fn put(
        bucket: &Bucket,
        key: &str,
        sealed: &[u8],
        metadata: &HashMap<String, String>,
    ) -> Result<(), String> {
        bucket
            .put(key, sealed.to_vec())
            .custom_metadata(metadata.clone())
            .http_metadata(worker::HttpMetadata {
                content_type: Some("application/octet-stream".into()),
                ..Default::default()
            })
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Writes an object, retrying; if R2 refuses every attempt, keeps it in
    /// the outbox. An error means the object is lost.
    async fn put_or_keep(
        env: &Env,
        bucket: &Bucket,
        key: &str,
        sealed: js_sys::Uint8Array,
        metadata: &HashMap<String, String>,
    ) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..PUT_ATTEMPTS {
            if attempt > 0 {
                let pause = PUT_BACKOFF_MS[(attempt - 1).min(PUT_BACKOFF_MS.len() - 1)];
                Delay::from(Duration::from_millis(pause)).await;
            }
            match put_js(bucket, key, &sealed, metadata).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        log_warn(&format!(
            "hashgate: writing evidence {key} failed {PUT_ATTEMPTS} times ({last}); keeping it in the evidence outbox"
        ));
        let reports = env
            .kv(REPORTS)
            .map_err(|e| format!("R2 refused it ({last}) and {REPORTS} is not bound: {e}"))?;
        let keep = async {
            reports
                .put_bytes(&outbox_key(key), &sealed.to_vec())
                .map_err(|e| e.to_string())?
                .expiration_ttl(OUTBOX_RETENTION_SECONDS)
                .execute()
                .await
                .map_err(|e| e.to_string())?;
            reports
                .put(OUTBOX_MARKER, "1")
                .map_err(|e| e.to_string())?
                .execute()
                .await
                .map_err(|e| e.to_string())
        };
        keep.await
            .map_err(|e| format!("R2 refused it ({last}) and the outbox too ({e})"))
    }

    /// Moves the evidence outbox into R2 (cron). Entries are deleted only
    /// once R2 has them.
    pub async fn drain(env: &Env) -> Result<usize, String> {
        let reports = env.kv(REPORTS).map_err(|e| e.to_string())?;
        match reports.get(OUTBOX_MARKER).text().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(0),
            Err(e) => return Err(e.to_string()),
        }
        // Delete the marker first: an entry written during the drain puts
        // it back, or is seen by the list below.
        reports
            .delete(OUTBOX_MARKER)
            .await
            .map_err(|e| e.to_string())?;
        let bucket = env.bucket(EVIDENCE).map_err(|e| e.to_string())?;
        let list = reports
            .list()
            .prefix(OUTBOX_PREFIX.to_owned())
            .limit(20)
            .execute()
            .await
            .map_err(|e| e.to_string())?;
        let mut moved = 0;
        let mut left = !list.list_complete;
        for name in list.keys.into_iter().map(|k| k.name) {
            let object_key = name.trim_start_matches(OUTBOX_PREFIX).to_owned();
            let result = move_one(&reports, &bucket, &name, &object_key).await;
            match result {
                Ok(()) => moved += 1,
                Err(e) => {
                    left = true;
                    log_warn(&format!("hashgate: evidence outbox {object_key}: {e}"));
                }
            }
        }
        if left {
            if let Ok(put) = reports.put(OUTBOX_MARKER, "1") {
                let _ = put.execute().await;
            }
        }
        Ok(moved)
    }

    async fn move_one(
        reports: &KvStore,
        bucket: &Bucket,
        name: &str,
        object_key: &str,
    ) -> Result<(), String> {
        let Some(sealed) = reports.get(name).bytes().await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let header = Envelope::parse(&sealed).map_err(|e| e.to_string())?.header;
        let exists = bucket
            .head(object_key)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !exists {
            let metadata = HashMap::from([
                ("key_id".to_owned(), header.key_id.clone()),
                ("sha256".to_owned(), header.sha256.clone()),
            ]);
            put(bucket, object_key, &sealed, &metadata).await?;
        }
        reports.delete(name).await.map_err(|e| e.to_string())
    }

    /// The cron's part: drain, logging.
    pub async fn drain_and_log(env: &Env) {
        match drain(env).await {
            Ok(0) => {}
            Ok(n) => log_warn(&format!(
                "hashgate: evidence outbox: {n} objects moved to {EVIDENCE}"
            )),
            Err(e) => log_warn(&format!("hashgate: evidence outbox not drained: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(kind: &str, variant: &str) -> MatchRecord {
        MatchRecord {
            list: "demo".into(),
            id: Some("demo-1".into()),
            kind: kind.into(),
            hash: "cc".repeat(32),
            distance: 2,
            variant: Some(variant.into()),
        }
    }

    #[test]
    fn a_manifest_is_kept_a_year() {
        let cx = EvidenceContext {
            sha256: "ab".repeat(32),
            url: "https://example.com/u".into(),
            route: "*/*".into(),
            request_id: "r1".into(),
            direction: Direction::Upload,
            action: Action::Block,
            content_type: Some("image/png; q=1".into()),
            matches: vec![summary("pdq", "orig")],
            uploader: Some(Uploader {
                ip: Some("203.0.113.9".into()),
                ..Uploader::default()
            }),
        };
        let m = manifest(&cx, 10, "k1", 0);
        assert_eq!(m.time, "1970-01-01T00:00:00.000Z");
        assert_eq!(m.retain_until, "1971-01-01T00:00:00.000Z");
        assert_eq!(m.content_type, "image/png");
        assert_eq!(
            (m.direction.as_str(), m.action.as_str()),
            ("upload", "blocked")
        );
        assert_eq!(
            m.object_key,
            format!("evidence/v1/{}/object", "ab".repeat(32))
        );
    }

    #[test]
    fn retired_keys_and_the_lifecycle_rule() {
        assert_eq!(retired_key_name("k-2025.1"), "EVIDENCE_KEY_K_2025_1");
        let rules = lifecycle_rules();
        let rule = &rules["rules"][0];
        assert_eq!(rule["conditions"]["prefix"], "evidence/v1/");
        assert_eq!(
            rule["deleteObjectsTransition"]["condition"]["maxAge"],
            366 * 86400
        );
        // The file the project ships is this document.
        let shipped: serde_json::Value =
            serde_json::from_str(include_str!("../../evidence-lifecycle.json")).unwrap();
        assert_eq!(shipped, rules);
        assert!(outbox_key("evidence/v1/x/object").starts_with(OUTBOX_PREFIX));
        assert!(!OUTBOX_MARKER.starts_with(OUTBOX_PREFIX));
    }
}
