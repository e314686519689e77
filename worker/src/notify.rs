//! Webhook notifications to the site operator, signed with HMAC-SHA256.
//!
//! The receiver must be able to tell a notification from hashgate from a
//! forgery, so every body is signed with a secret shared with the operator
//! (the worker secret `WEBHOOK_SECRET`, set with `wrangler secret put`):
//!
//! ```text
//! POST <notify.webhook>
//! Content-Type: application/json
//! X-Hashgate-Event: match | unscanned
//! X-Hashgate-Delivery: <event id>
//! X-Hashgate-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
//! ```
//!
//! The signature covers the exact body bytes; the body carries `sent_at`
//! and the event id, so a receiver can refuse stale or replayed deliveries.
//! Verify by recomputing the HMAC over the raw body and comparing in
//! constant time (as [`verify`] does).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::events::Event;
use crate::report::ReportRecord;

pub const SIGNATURE_HEADER: &str = "X-Hashgate-Signature";
pub const EVENT_HEADER: &str = "X-Hashgate-Event";
pub const DELIVERY_HEADER: &str = "X-Hashgate-Delivery";
/// The worker secret holding the HMAC key.
pub const SECRET_NAME: &str = "WEBHOOK_SECRET";

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header against `body`, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The JSON a webhook receives.
#[derive(Debug, Serialize)]
pub struct Notification<'a> {
    pub v: u32,
    /// `hashgate.match` or `hashgate.unscanned`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sent_at: String,
    /// The event that created the record.
    pub event: &'a Event,
    /// Where the record is kept in `REPORTS`, and its state.
    pub report: ReportRef<'a>,
}

/// The part of the record a notification carries.
#[derive(Debug, Serialize)]
pub struct ReportRef<'a> {
    pub key: &'a str,
    pub count: u64,
    pub first_seen: &'a str,
    pub retain_until: &'a str,
}

/// The body for `event` and its record.
pub fn body(event: &Event, record: &ReportRecord, now_ms: u64) -> String {
    let kind = match event.kind {
        crate::events::EventKind::Match => "hashgate.match",
        crate::events::EventKind::Unscanned => "hashgate.unscanned",
    };
    let notification = Notification {
        v: 1,
        kind: kind.to_owned(),
        sent_at: crate::events::rfc3339(now_ms),
        event,
        report: ReportRef {
            key: &record.key,
            count: record.count,
            first_seen: &record.first_seen,
            retain_until: &record.retain_until,
        },
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string(&notification).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_test_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
    }

    #[test]
    fn verify_refuses_tampering() {
        let sig = sign(b"secret", b"{\"a\":1}");
        assert!(!verify(b"secret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":1}", "sha1=00"));
        assert!(!verify(b"secret", b"{\"a\":1}", "sha256=zz"));
    }
}
