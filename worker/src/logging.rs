//! Structured logs: one JSON object per line, the shape Workers Logs
//! (`[observability]`) and `wrangler tail` index field by field.
//!
//! ```json
//! {"level":"info","event":"match","route":"example.com/images/*","list":"ncmec",
//!  "reason":null,"request_id":"8c1f...","action":"block","entry":"ncmec-17",...}
//! ```
//!
//! Every line has `level`, `event`, `route`, `list`, `reason` and
//! `request_id` (null where they do not apply), then fields of its own.
//! The worker logs one line for every match (`event: "match"`), every image
//! that could not be checked (`event: "unscanned"`, `reason` the failure's
//! short name) and every other failure (`event: "error"`/`"warning"`, the
//! text in `message`). Values that came from a request (URLs, file names)
//! are JSON-escaped like any string, so a log line is always one line.
//!
//! The line is built here, purely, and tested natively; the runtime part
//! only hands it to `console.log`/`warn`/`error`.

use serde_json::{Map, Value};

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One log line being built.
#[derive(Debug, Clone)]
pub struct Line {
    level: Level,
    fields: Map<String, Value>,
}

impl Line {
    /// A line for `event`, with the common fields null.
    pub fn new(level: Level, event: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("level".into(), level.name().into());
        fields.insert("event".into(), event.into());
        for key in ["route", "list", "reason", "request_id"] {
            fields.insert(key.into(), Value::Null);
        }
        Line { level, fields }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// Sets a string field (any name, common or not).
    pub fn str(mut self, key: &str, value: impl Into<String>) -> Self {
        self.fields.insert(key.into(), Value::String(value.into()));
        self
    }

    /// Sets a string field when there is a value.
    pub fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Sets a number field.
    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.fields.insert(key.into(), Value::from(value));
        self
    }

    /// Sets a boolean field.
    pub fn flag(mut self, key: &str, value: bool) -> Self {
        self.fields.insert(key.into(), Value::Bool(value));
        self
    }

    /// The line as JSON (no newline in it).
    pub fn to_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }
}

/// A free-text message as a line (`event` `error`/`warning`/`info`).
pub fn message(level: Level, text: &str) -> Line {
    let event = match level {
        Level::Info => "info",
        Level::Warn => "warning",
        Level::Error => "error",
    };
    Line::new(level, event).str("message", text)
}

#[cfg(target_arch = "wasm32")]
pub use runtime::emit;

#[cfg(target_arch = "wasm32")]
mod runtime {
    use super::{Level, Line};
    use wasm_bindgen::JsValue;

    /// Writes the line to the Workers console.
    pub fn emit(line: &Line) {
        let text = JsValue::from_str(&line.to_json());
        match line.level() {
            Level::Info => web_sys::console::log_1(&text),
            Level::Warn => web_sys::console::warn_1(&text),
            Level::Error => web_sys::console::error_1(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_fields_are_always_there() {
        let v: Value = serde_json::from_str(&Line::new(Level::Info, "match").to_json()).unwrap();
        for key in ["level", "event", "route", "list", "reason", "request_id"] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["level"], "info");
        assert_eq!(v["route"], Value::Null);
    }

    #[test]
    fn attacker_text_stays_on_one_line() {
        let line = Line::new(Level::Warn, "unscanned")
            .str("url", "https://x/a\n{\"level\":\"info\"}\u{2028}<script>")
            .opt("list", Some("demo"))
            .opt("reason", None)
            .num("distance", 3)
            .flag("cached", false)
            .to_json();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["url"],
            "https://x/a\n{\"level\":\"info\"}\u{2028}<script>"
        );
        assert_eq!(v["list"], "demo");
        assert_eq!(v["reason"], Value::Null);
        assert_eq!(v["distance"], 3);
    }

    #[test]
    fn messages_name_their_level() {
        let v: Value = serde_json::from_str(&message(Level::Error, "boom").to_json()).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["level"], "error");
        assert_eq!(v["message"], "boom");
    }
}
