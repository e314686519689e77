//! The responses the worker makes itself (everything else is the origin's).
//!
//! * 451 Unavailable For Legal Reasons, as RFC 7725 describes it: a short
//!   body saying why, `Link: <...>; rel="blocked-by"` naming who blocks
//!   (the policy's `blocked_by`, else the site itself), and
//!   `Cache-Control: no-store` so no cache keeps serving the original or
//!   the refusal. The body gives a request id for appeals and nothing about
//!   which list or entry matched.
//! * 503 when an image could not be checked on a `fail: closed` route.
//! * 500 when the worker cannot serve at all (an unusable `ORIGIN`, or a
//!   fault of the runtime).
//! * 429 to a client past its limit of 451 answers
//!   ([`crate::block_limit`]), for every request on a scanning route.
//! * 502 when the origin could not be reached.
//! * 508 when the worker receives its own request (see [`crate::origin`]).
//!
//! Every body here is public: it says what happened in general terms and
//! gives a request id, never a configuration detail, a KV key, a parse
//! error or a list. What an operator needs to fix goes to the log with the
//! same request id (`console.error`/`console.warn`, seen in `wrangler tail`).

#[cfg(target_arch = "wasm32")]
pub use runtime::*;

/// The `Link` target for `rel="blocked-by"`: the policy's URL, or the
/// site's own origin.
pub fn blocked_by_link(blocked_by: Option<&str>, request_url: &str) -> String {
    match blocked_by {
        Some(url) => url.to_owned(),
        None => format!("{}/", crate::address::origin_of(request_url)),
    }
}

/// The 451 body. `reason` is the policy's `block_messages` sentence for
/// the matched list; without one, the CSAM wording.
pub fn legal_body(request_id: &str, upload: bool, reason: Option<&str>) -> String {
    let what = if upload {
        "This upload was refused"
    } else {
        "This image is not available"
    };
    let reason = reason.unwrap_or(
        "it matches a list of known child sexual abuse material, and \
         this site does not serve or accept it.",
    );
    format!(
        "451 Unavailable For Legal Reasons\n\n\
         {what}: {reason}\n\n\
         If you believe this is a mistake, contact the site operator and quote request id {request_id}.\n"
    )
}

#[cfg(target_arch = "wasm32")]
mod runtime {
    use wasm_bindgen::JsValue;
    use web_sys::{Headers, Response, ResponseInit};

    use super::legal_body;

    fn build(
        status: u16,
        status_text: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Result<Response, JsValue> {
        let headers = Headers::new()?;
        headers.set("Content-Type", "text/plain; charset=utf-8")?;
        headers.set("Cache-Control", "no-store")?;
        headers.set("X-Content-Type-Options", "nosniff")?;
        for (name, value) in extra {
            headers.set(name, value)?;
        }
        let init = ResponseInit::new();
        init.set_status(status);
        init.set_status_text(status_text);
        init.set_headers(&headers);
        Response::new_with_opt_str_and_init(Some(body), &init)
    }

    /// 451 for a blocked image (or upload).
    pub fn unavailable_for_legal_reasons(
        link: &str,
        request_id: &str,
        upload: bool,
        reason: Option<&str>,
    ) -> Result<Response, JsValue> {
        let link_header = format!("<{link}>; rel=\"blocked-by\"");
        build(
            451,
            "Unavailable For Legal Reasons",
            &legal_body(request_id, upload, reason),
            &[("Link", &link_header)],
        )
    }

    /// 503 for an image that could not be checked on a `fail: closed` route.
    pub fn not_checked(request_id: &str) -> Result<Response, JsValue> {
        let body = format!(
            "503 Service Unavailable\n\nThis content could not be checked and is withheld. \
             Request id {request_id}.\n"
        );
        build(503, "Service Unavailable", &body, &[("Retry-After", "60")])
    }

    /// 429 to a client past its limit of 451 answers, whatever it asked
    /// for on a scanning route.
    pub fn too_many_requests(request_id: &str, retry_after: u32) -> Result<Response, JsValue> {
        let body = format!(
            "429 Too Many Requests\n\nToo many requests from your network. Try again later. \
             Request id {request_id}.\n"
        );
        build(
            429,
            "Too Many Requests",
            &body,
            &[("Retry-After", &retry_after.to_string())],
        )
    }

    /// 500 when the worker cannot serve; the reason is in the log.
    pub fn internal_error(request_id: &str) -> Result<Response, JsValue> {
        build(
            500,
            "Internal Server Error",
            &format!("500 Internal Server Error. Request id {request_id}.\n"),
            &[],
        )
    }

    /// 508 when the worker received its own request (no `ORIGIN` locally);
    /// how to fix it is in the log.
    pub fn loop_detected(request_id: &str) -> Result<Response, JsValue> {
        build(
            508,
            "Loop Detected",
            &format!("508 Loop Detected. Request id {request_id}.\n"),
            &[],
        )
    }

    /// 502 when the origin could not be reached.
    pub fn bad_gateway(request_id: &str) -> Result<Response, JsValue> {
        build(
            502,
            "Bad Gateway",
            &format!(
                "502 Bad Gateway: the origin could not be reached. Request id {request_id}.\n"
            ),
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_lists() {
        let csam = legal_body("r1", false, None);
        assert!(csam.contains(
            "This image is not available: it matches a list of known child sexual abuse material"
        ));
        assert!(csam.contains("request id r1"));
        let ncii = legal_body(
            "r2",
            true,
            Some("it was reported as shared without consent."),
        );
        assert!(
            ncii.contains("This upload was refused: it was reported as shared without consent.")
        );
        assert!(!ncii.contains("child sexual abuse"));
    }

    #[test]
    fn link_defaults_to_the_site() {
        assert_eq!(
            blocked_by_link(None, "https://example.com/images/a.jpg?x"),
            "https://example.com/"
        );
        assert_eq!(
            blocked_by_link(None, "http://127.0.0.1:8787"),
            "http://127.0.0.1:8787/"
        );
        assert_eq!(
            blocked_by_link(Some("https://legal.example/"), "https://a/b"),
            "https://legal.example/"
        );
    }
}
