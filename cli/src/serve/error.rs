//! One error type for every answer that is not a success, saying whose fault
//! it was through its status: 4xx for the client's input (with a stable
//! `kind` a client can branch on), 503 for load the service sheds, 500 for
//! faults of the service itself.
//!
//! Every error answer has the body `{"error": MESSAGE, "kind": KIND}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::lines::hash_error_kind;
use hashgate::HashError;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// An answer other than success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    kind: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// Over the caller's rate limit (`--rate-limit`).
    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this token; try again in {retry_after} s"),
        )
    }

    /// The image could not be hashed: the client's input, except for the
    /// (input-driven) memory limit, which is still the input's fault.
    pub fn from_hash(error: &HashError) -> Self {
        let status = match error {
            HashError::Empty => StatusCode::BAD_REQUEST,
            HashError::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HashError::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, hash_error_kind(error), error.to_string())
    }

    pub fn bad_query(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message)
    }

    /// `lists` names a list the index does not hold.
    pub fn unknown_list(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_list", message)
    }

    pub fn bad_hash(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_hash", message)
    }

    pub fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is over the limit of {limit} bytes"),
        )
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint at {path}"),
        )
    }

    pub fn method_not_allowed(allowed: &'static str) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {allowed}"),
        )
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
    }

    /// Every admission slot is taken.
    pub fn overloaded() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry later",
        )
    }

    /// The bodies already held leave no room for this one in the budget
    /// (`--max-buffered`).
    pub fn over_budget() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many request body bytes in flight; retry later",
        )
    }

    /// The request's time ran out while the body was still arriving.
    pub fn body_timeout() -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request body did not arrive in time",
        )
    }

    /// The request's time ran out waiting for or during hashing.
    pub fn busy_timeout() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "hashing did not finish in time; retry later",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON answer.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut body = serde_json::to_vec(&Body {
            error: &self.message,
            kind: self.kind,
        })
        .unwrap_or_else(|_| b"{\"error\":\"internal\",\"kind\":\"internal\"}".to_vec());
        body.push(b'\n');
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_errors_are_client_errors_with_stable_kinds() {
        let cases = [
            (HashError::Empty, 400, "empty"),
            (HashError::UnsupportedFormat, 415, "unsupported_format"),
            (
                HashError::InputTooLarge {
                    actual: 2,
                    limit: 1,
                },
                413,
                "input_too_large",
            ),
            (
                HashError::DimensionsTooLarge {
                    width: 50_000,
                    height: 50_000,
                    reason: "width",
                },
                422,
                "dimensions_too_large",
            ),
            (HashError::Truncated("eof".into()), 422, "truncated"),
            (HashError::Malformed("bad".into()), 422, "malformed"),
        ];
        for (error, status, kind) in cases {
            let api = ApiError::from_hash(&error);
            assert_eq!(api.status.as_u16(), status, "{error}");
            assert_eq!(api.kind, kind);
        }
    }

    #[test]
    fn overload_answers_carry_retry_after() {
        let response = ApiError::overloaded().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
