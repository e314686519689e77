//! Messages on the stored-objects queue (`hashgate-stored-objects`), and
//! the names derived from an object (its location, its sighting's event id,
//! its quarantine key).
//!
//! Two kinds of message share the queue:
//! * R2 event notifications, exactly as R2 sends them for an
//!   object-create rule (`wrangler r2 bucket notification create BUCKET
//!   --event-type object-create --queue hashgate-stored-objects`):
//!   `{"account", "action": "PutObject" | "CopyObject" |
//!   "CompleteMultipartUpload", "bucket", "object": {"key", "size",
//!   "eTag"}, "eventTime", "copySource"?}`. Other actions (deletes,
//!   lifecycle) are acknowledged and ignored.
//! * the worker's own work items, tagged `"hashgate"`: `scan` (one object,
//!   from a backfill page or a retroactive candidate), `list` (the next page
//!   of a backfill), `retro` (the next page of the hash log to match against
//!   the hashes a new index generation added).
//!
//! Everything here is pure, so what a message means is tested natively.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An R2 event notification's object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NotifiedObject {
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, rename = "eTag")]
    pub etag: Option<String>,
}

/// An R2 event notification (the documented message body).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub account: Option<String>,
    pub action: String,
    pub bucket: String,
    pub object: NotifiedObject,
    #[serde(default, rename = "eventTime")]
    pub event_time: Option<String>,
}

impl Notification {
    /// Whether the notification is for an object being created (the only
    /// actions that bring new content).
    pub fn creates_object(&self) -> bool {
        matches!(
            self.action.as_str(),
            "PutObject" | "CopyObject" | "CompleteMultipartUpload"
        )
    }
}

/// The worker's own work items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hashgate", rename_all = "lowercase")]
pub enum Work {
    /// Scan one object.
    Scan {
        bucket: String,
        key: String,
        /// The version listed or notified (a scan of the same version with
        /// the same generation is skipped without reading the object).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
        /// The backfill it belongs to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<String>,
    },
    /// List the next page of a backfill (from its stored cursor).
    List { backfill: String },
    /// Match the next page of the hash log (rows after `after`) against
    /// the hashes generation `to` added to generation `from`.
    Retro { pass: String, after: i64 },
}

/// A message from the stored-objects queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMessage {
    Notification(Notification),
    Work(Work),
}

/// Why a message could not be read (it goes to the dead letters at once:
/// retrying cannot fix it).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("not a stored-objects message: {0}")]
pub struct MessageError(pub String);

impl StoredMessage {
    /// Reads a message body.
    pub fn parse(body: &serde_json::Value) -> Result<Self, MessageError> {
        if body.get("hashgate").is_some() {
            return serde_json::from_value(body.clone())
                .map(StoredMessage::Work)
                .map_err(|e| MessageError(e.to_string()));
        }
        serde_json::from_value(body.clone())
            .map(StoredMessage::Notification)
            .map_err(|e| MessageError(e.to_string()))
    }
}

/// Where an object is, as events and the hash log name it.
pub fn location(bucket: &str, key: &str) -> String {
    format!("r2://{bucket}/{key}")
}

/// The bucket and key of an `r2://` location.
pub fn parse_location(location: &str) -> Option<(&str, &str)> {
    location.strip_prefix("r2://")?.split_once('/')
}

/// The key of an object's copy in the quarantine bucket: `<bucket>/<key>`,
/// so one quarantine bucket serves every scanned bucket.
pub fn quarantine_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// The id of the event for a sighting of one object version (`etag`)
/// under one index generation: the same on every retry and re-run, so the
/// report consumer counts it once however often it is sent.
pub fn sighting_id(location: &str, etag: &str, generation: &str) -> String {
    let digest = Sha256::digest(format!("{location}\n{etag}\n{generation}").as_bytes());
    format!("st-{}", hex::encode(&digest[..16]))
}

/// The id of a backfill: one per bucket, prefix and index generation, so
/// starting the same backfill again resumes it.
pub fn backfill_id(bucket: &str, prefix: &str, generation: &str) -> String {
    let digest = Sha256::digest(format!("{bucket}\n{prefix}\n{generation}").as_bytes());
    format!("bf-{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_r2_notifications() {
        let body = json!({
            "account": "3f4b7e3dcab231cbfdaa90a6a28bd548",
            "action": "PutObject",
            "bucket": "user-uploads",
            "object": {"key": "images/a b.jpg", "size": 1234, "eTag": "e8d0bc8f"},
            "eventTime": "2024-05-24T19:36:44.379Z"
        });
        let StoredMessage::Notification(n) = StoredMessage::parse(&body).unwrap() else {
            panic!("not a notification")
        };
        assert!(n.creates_object());
        assert_eq!(n.bucket, "user-uploads");
        assert_eq!(n.object.key, "images/a b.jpg");
        assert_eq!(n.object.etag.as_deref(), Some("e8d0bc8f"));
        for action in ["CopyObject", "CompleteMultipartUpload"] {
            let mut b = body.clone();
            b["action"] = json!(action);
            let StoredMessage::Notification(n) = StoredMessage::parse(&b).unwrap() else {
                panic!()
            };
            assert!(n.creates_object(), "{action}");
        }
        let mut b = body.clone();
        b["action"] = json!("DeleteObject");
        let StoredMessage::Notification(n) = StoredMessage::parse(&b).unwrap() else {
            panic!()
        };
        assert!(!n.creates_object());
    }

    #[test]
    fn reads_work_items() {
        for work in [
            Work::Scan {
                bucket: "b".into(),
                key: "k".into(),
                etag: Some("e".into()),
                backfill: Some("bf-1".into()),
            },
            Work::List {
                backfill: "bf-1".into(),
            },
            Work::Retro {
                pass: "p".into(),
                after: 42,
            },
        ] {
            let body = serde_json::to_value(&work).unwrap();
            assert_eq!(
                StoredMessage::parse(&body).unwrap(),
                StoredMessage::Work(work)
            );
        }
    }

    #[test]
    fn refuses_other_messages() {
        assert!(StoredMessage::parse(&json!({"hello": 1})).is_err());
        assert!(StoredMessage::parse(&json!({"hashgate": "explode"})).is_err());
        assert!(StoredMessage::parse(&json!("text")).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(location("b", "a/c.jpg"), "r2://b/a/c.jpg");
        assert_eq!(parse_location("r2://b/a/c.jpg"), Some(("b", "a/c.jpg")));
        assert_eq!(parse_location("https://x/y"), None);
        assert_eq!(quarantine_key("b", "a/c.jpg"), "b/a/c.jpg");
        let id = sighting_id("r2://b/k", "e1", "g1");
        assert_eq!(id, sighting_id("r2://b/k", "e1", "g1"));
        assert_ne!(id, sighting_id("r2://b/k", "e2", "g1"));
        assert_ne!(id, sighting_id("r2://b/k", "e1", "g2"));
        assert!(id.len() <= 64 && id.starts_with("st-"));
        assert_ne!(backfill_id("b", "", "g"), backfill_id("b", "x", "g"));
    }
}
