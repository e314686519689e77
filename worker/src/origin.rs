//! Talking to the origin.
//!
//! The request goes out as it came in (method, headers, body), to the
//! request's own URL, or to `ORIGIN` + path + query when that variable is
//! set (local development and tests). Redirects are never followed here:
//! the client gets the origin's 3xx as is, exactly as without the worker.
//! The origin's response object is what callers hand back when an image
//! passes, so status, status text, headers and body stay the origin's own.

//!
//! Loop guard: with `ORIGIN` unset, the worker fetches the URL it was asked
//! for. On Cloudflare that reaches the origin (a worker's subrequests skip
//! itself), but under `wrangler dev` a URL on 127.0.0.1 is the worker
//! itself, and each request would recurse until workerd runs out of
//! sockets. Requests to a loopback host therefore carry [`LOOP_GUARD`]; a
//! request arriving with it is answered 508 with how to set `ORIGIN`.
//! Production traffic never goes to loopback, so it is never marked.

#[cfg(target_arch = "wasm32")]
pub use runtime::*;

/// Header marking a request the worker sent to a loopback host.
pub const LOOP_GUARD: &str = "X-Hashgate-Loop-Guard";

/// Request headers a fetch of the whole object leaves out.
pub const WHOLE_DROPS: [&str; 7] = [
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "content-length",
];

/// Where a request goes: its own URL, or the same path and query on `origin`.
pub fn target_url(request_url: &str, origin: Option<&str>) -> String {
    let Some(origin) = origin else {
        return request_url.to_owned();
    };
    format!("{origin}{}", crate::address::path_and_query(request_url))
}

#[cfg(target_arch = "wasm32")]
mod runtime {
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Request, RequestInit, RequestRedirect, Response};

    use super::target_url;

    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        /// The runtime's global `fetch`.
        #[wasm_bindgen(js_name = fetch)]
        fn global_fetch(request: &Request) -> js_sys::Promise;
    }

    /// The request to send upstream: the original, retargeted, redirects manual.
    pub fn upstream(request: &Request, origin: Option<&str>) -> Result<Request, JsValue> {
        let target = target_url(&request.url(), origin);
        // `new Request(target, request)`: the incoming request is the init
        // dictionary (method, headers, body stream, signal).
        let init: &RequestInit = request.unchecked_ref();
        let retargeted = Request::new_with_str_and_init(&target, init)?;
        let manual = RequestInit::new();
        manual.set_redirect(RequestRedirect::Manual);
        let upstream = Request::new_with_request_and_init(&retargeted, &manual)?;
        guard(&upstream, &target)?;
        Ok(upstream)
    }

    /// The request to send upstream with a body already read (an upload that
    /// was checked): the same method and headers, the bytes as the body, so the
    /// origin sees the exact bytes with their `Content-Length`.
    pub fn upstream_with_body(
        request: &Request,
        origin: Option<&str>,
        body: &[u8],
    ) -> Result<Request, JsValue> {
        let target = target_url(&request.url(), origin);
        let init = RequestInit::new();
        init.set_method(&request.method());
        init.set_headers(&request.headers());
        init.set_redirect(RequestRedirect::Manual);
        let bytes = js_sys::Uint8Array::new_with_length(body.len() as u32);
        bytes.copy_from(body);
        init.set_body(&bytes);
        let upstream = Request::new_with_str_and_init(&target, &init)?;
        guard(&upstream, &target)?;
        Ok(upstream)
    }

    /// A `GET` for the whole object a ranged request names: the same URL and
    /// headers without `Range` and the conditional headers (the ranged
    /// request already passed them), asking for the identity coding so that
    /// ranges of the checked bytes are ranges of the representation.
    pub fn upstream_whole(request: &Request, origin: Option<&str>) -> Result<Request, JsValue> {
        let target = target_url(&request.url(), origin);
        let headers = web_sys::Headers::new_with_headers(&request.headers())?;
        for name in super::WHOLE_DROPS {
            headers.delete(name)?;
        }
        headers.set("Accept-Encoding", "identity")?;
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_headers(&headers);
        init.set_redirect(RequestRedirect::Manual);
        let upstream = Request::new_with_str_and_init(&target, &init)?;
        guard(&upstream, &target)?;
        Ok(upstream)
    }

    /// Marks requests to loopback hosts (see the module docs).
    fn guard(request: &Request, target: &str) -> Result<(), JsValue> {
        if crate::address::is_loopback(target) {
            request.headers().set(super::LOOP_GUARD, "1")?;
        }
        Ok(())
    }

    /// Sends a request.
    pub async fn fetch(request: &Request) -> Result<Response, JsValue> {
        let response = JsFuture::from(global_fetch(request)).await?;
        response.dyn_into::<Response>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retargets_path_and_query() {
        assert_eq!(
            target_url("http://a.test/x/y.jpg?v=1", Some("http://127.0.0.1:9")),
            "http://127.0.0.1:9/x/y.jpg?v=1"
        );
        assert_eq!(target_url("http://a.test", Some("http://o")), "http://o/");
        assert_eq!(
            target_url("http://a.test/p#frag", Some("http://o")),
            "http://o/p"
        );
        assert_eq!(target_url("http://a.test/p", None), "http://a.test/p");
    }
}
