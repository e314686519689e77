//! Who is asking, and may they: the pure half of the console's sign-in.
//!
//! * Cloudflare Access puts a signed token (JWT, RS256) in the
//!   `Cf-Access-Jwt-Assertion` header of every request it lets through.
//!   [`Jwt::parse`] splits it; the runtime checks the RS256 signature with
//!   Web Crypto against the team's published keys ([`Jwks`]); then
//!   [`Jwt::identity`] checks issuer, audience and lifetime here. A token
//!   is checked on every request: Access, not the console, keeps the
//!   session.
//! * For local runs only, a development token (the secret
//!   `CONSOLE_DEV_TOKEN`, accepted only with `console.dev_login: true`)
//!   opens a session cookie signed with `CONSOLE_SECRET`
//!   ([`session_cookie`]), `HttpOnly; SameSite=Strict`, 8 hours.
//! * Every action (POST) carries a CSRF token bound to the identity
//!   ([`csrf_token`], HMAC-SHA256 under `CONSOLE_SECRET`) and must come
//!   from the console's own origin ([`same_origin`]).
//!
//! Secrets and tokens are compared in constant time (HMAC verification).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use thiserror::Error;

use super::settings::AccessSettings;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hashgate_console";
/// How long a development session lasts.
pub const SESSION_MS: u64 = 8 * 3600 * 1000;
/// Leeway for clock differences when checking a token's lifetime.
pub const LEEWAY_SECONDS: u64 = 60;
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a request is not signed in.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("the Access token is not a JWT: {0}")]
    Malformed(&'static str),
    #[error("the Access token's algorithm is {0:?}, not RS256")]
    Algorithm(String),
    #[error("the Access token names key {0:?}, which the team's keys do not hold")]
    UnknownKey(String),
    #[error("the Access token's signature does not verify")]
    Signature,
    #[error("the Access token was issued by {0:?}, not this team")]
    Issuer(String),
    #[error("the Access token is for another application (aud)")]
    Audience,
    #[error("the Access token has expired")]
    Expired,
    #[error("the Access token is not valid yet")]
    NotYetValid,
    #[error("the Access token names no email")]
    NoEmail,
    #[error("the team's keys could not be read: {0}")]
    Keys(String),
}

/// Someone signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub groups: Vec<String>,
    /// `access` or `dev-token`.
    pub via: &'static str,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<serde_json::Value>,
}

/// A parsed (not yet verified) JWT.
#[derive(Debug)]
pub struct Jwt {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    pub kid: Option<String>,
    claims: Claims,
}

impl Jwt {
    /// Splits and decodes a compact JWT; only RS256 is accepted.
    pub fn parse(token: &str) -> Result<Jwt, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("too long"));
        }
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three parts"));
        };
        let decode = |part: &str, what: &'static str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| AuthError::Malformed(what))
        };
        let header: Header = serde_json::from_slice(&decode(h, "header is not base64url")?)
            .map_err(|_| AuthError::Malformed("header is not JSON"))?;
        if header.alg != "RS256" {
            return Err(AuthError::Algorithm(header.alg));
        }
        let claims: Claims = serde_json::from_slice(&decode(p, "payload is not base64url")?)
            .map_err(|_| AuthError::Malformed("payload is not JSON claims"))?;
        let signature = decode(s, "signature is not base64url")?;
        Ok(Jwt {
            signing_input: format!("{h}.{p}").into_bytes(),
            signature,
            kid: header.kid,
            claims,
        })
    }

    /// Checks issuer, audience and lifetime (the signature is checked by
    /// the caller first) and gives who it is.
    pub fn identity(&self, access: &AccessSettings, now_s: u64) -> Result<Identity, AuthError> {
        let c = &self.claims;
        let iss = c.iss.clone().unwrap_or_default();
        if iss.trim_end_matches('/') != access.issuer {
            return Err(AuthError::Issuer(iss));
        }
        let aud_ok = match &c.aud {
            Some(Audience::One(a)) => *a == access.aud,
            Some(Audience::Many(all)) => all.contains(&access.aud),
            None => false,
        };
        if !aud_ok {
            return Err(AuthError::Audience);
        }
        match c.exp {
            Some(exp) if exp.saturating_add(LEEWAY_SECONDS) > now_s => {}
            _ => return Err(AuthError::Expired),
        }
        if c.nbf
            .is_some_and(|nbf| nbf > now_s.saturating_add(LEEWAY_SECONDS))
        {
            return Err(AuthError::NotYetValid);
        }
        let email = c
            .email
            .clone()
            .filter(|e| e.contains('@'))
            .ok_or(AuthError::NoEmail)?;
        let groups = c
            .groups
            .iter()
            .filter_map(|g| match g {
                serde_json::Value::String(s) => Some(s.clone()),
                // Access groups may arrive as objects with a name.
                serde_json::Value::Object(o) => {
                    o.get("name").and_then(|n| n.as_str()).map(str::to_owned)
                }
                _ => None,
            })
            .collect();
        Ok(Identity {
            email,
            groups,
            via: "access",
        })
    }
}

/// One RSA signing key of the team.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    pub kty: String,
    pub n: String,
    pub e: String,
}

/// The team's published keys (`/cdn-cgi/access/certs`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct Jwks {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses the certs document, keeping the RSA keys.
    pub fn parse(text: &str) -> Result<Jwks, AuthError> {
        let mut jwks: Jwks =
            serde_json::from_str(text).map_err(|e| AuthError::Keys(e.to_string()))?;
        jwks.keys.retain(|k| k.kty == "RSA");
        if jwks.keys.is_empty() {
            return Err(AuthError::Keys("no RSA key in the document".into()));
        }
        Ok(jwks)
    }

    /// The key a token names (or the only key, for a token naming none).
    pub fn key_for(&self, kid: Option<&str>) -> Result<&Jwk, AuthError> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or_else(|| AuthError::UnknownKey(kid.to_owned())),
            None if self.keys.len() == 1 => Ok(&self.keys[0]),
            None => Err(AuthError::UnknownKey(String::new())),
        }
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Option<HmacSha256> {
    // HMAC takes keys of any length: this is never None.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    Some(mac)
}

fn tag(secret: &[u8], parts: &[&[u8]]) -> String {
    mac(secret, parts).map_or_else(String::new, |m| hex::encode(m.finalize().into_bytes()))
}

fn verify(secret: &[u8], parts: &[&[u8]], given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex) else {
        return false;
    };
    mac(secret, parts).is_some_and(|m| m.verify_slice(&given).is_ok())
}

/// Whether `given` equals the development token, in constant time.
pub fn dev_token_ok(expected: &str, given: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let key = b"hashgate console dev token";
    verify(key, &[given.as_bytes()], &tag(key, &[expected.as_bytes()]))
}

/// A development session cookie value for `email`, valid until `until_ms`.
pub fn session_cookie(secret: &str, email: &str, until_ms: u64) -> String {
    let email64 = URL_SAFE_NO_PAD.encode(email);
    let until = until_ms.to_string();
    let t = tag(
        secret.as_bytes(),
        &[b"session", email64.as_bytes(), until.as_bytes()],
    );
    format!("{email64}.{until}.{t}")
}

/// The email of a valid, unexpired development session cookie.
pub fn session_email(secret: &str, cookie: &str, now_ms: u64) -> Option<String> {
    let mut parts = cookie.split('.');
    let (Some(email64), Some(until), Some(t), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !verify(
        secret.as_bytes(),
        &[b"session", email64.as_bytes(), until.as_bytes()],
        t,
    ) {
        return None;
    }
    let until: u64 = until.parse().ok()?;
    if until <= now_ms {
        return None;
    }
    String::from_utf8(URL_SAFE_NO_PAD.decode(email64).ok()?).ok()
}

/// The CSRF token of `identity`'s forms.
pub fn csrf_token(secret: &str, identity: &Identity) -> String {
    tag(
        secret.as_bytes(),
        &[b"csrf", identity.via.as_bytes(), identity.email.as_bytes()],
    )
}

/// Whether a submitted CSRF token is `identity`'s.
pub fn csrf_ok(secret: &str, identity: &Identity, given: &str) -> bool {
    verify(
        secret.as_bytes(),
        &[b"csrf", identity.via.as_bytes(), identity.email.as_bytes()],
        given,
    )
}

/// Whether a POST comes from the console's own origin: `Origin` equals the
/// request URL's origin, or, without `Origin`, `Sec-Fetch-Site` says
/// `same-origin`. Neither: refused.
pub fn same_origin(request_url: &str, origin: Option<&str>, fetch_site: Option<&str>) -> bool {
    let Ok(url) = url::Url::parse(request_url) else {
        return false;
    };
    let own = url.origin().ascii_serialization();
    match origin {
        Some(origin) => origin == own,
        None => fetch_site == Some("same-origin"),
    }
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> AccessSettings {
        AccessSettings {
            issuer: "https://t.cloudflareaccess.com".into(),
            certs_url: "https://t.cloudflareaccess.com/cdn-cgi/access/certs".into(),
            aud: "tag".into(),
        }
    }

    fn jwt(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }

    const RS: &str = r#"{"alg":"RS256","kid":"k1"}"#;

    #[test]
    fn a_good_token_gives_its_identity() {
        let t = jwt(
            RS,
            r#"{"iss":"https://t.cloudflareaccess.com","aud":["tag"],"exp":2000,"nbf":900,"email":"a@example.com","groups":["tns",{"name":"ops"}]}"#,
        );
        let parsed = Jwt::parse(&t).unwrap();
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.signature, b"sig");
        let id = parsed.identity(&access(), 1000).unwrap();
        assert_eq!(id.email, "a@example.com");
        assert_eq!(id.groups, vec!["tns", "ops"]);
    }

    #[test]
    fn refuses_other_algorithms() {
        for alg in ["none", "HS256", "ES256"] {
            let t = jwt(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert_eq!(
                Jwt::parse(&t).unwrap_err(),
                AuthError::Algorithm(alg.into())
            );
        }
    }

    #[test]
    fn refuses_malformed_tokens() {
        for t in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(
                matches!(Jwt::parse(t), Err(AuthError::Malformed(_))),
                "{t:.20}"
            );
        }
    }

    #[test]
    fn refuses_wrong_claims() {
        let check = |claims: &str| {
            Jwt::parse(&jwt(RS, claims))
                .unwrap()
                .identity(&access(), 1000)
        };
        assert!(matches!(
            check(
                r#"{"iss":"https://evil.cloudflareaccess.com","aud":"tag","exp":2000,"email":"a@x.com"}"#
            ),
            Err(AuthError::Issuer(_))
        ));
        assert_eq!(
            check(
                r#"{"iss":"https://t.cloudflareaccess.com","aud":"other","exp":2000,"email":"a@x.com"}"#
            ),
            Err(AuthError::Audience)
        );
        assert_eq!(
            check(
                r#"{"iss":"https://t.cloudflareaccess.com","aud":"tag","exp":10,"email":"a@x.com"}"#
            ),
            Err(AuthError::Expired)
        );
        assert_eq!(
            check(r#"{"iss":"https://t.cloudflareaccess.com","aud":"tag","email":"a@x.com"}"#),
            Err(AuthError::Expired)
        );
        assert_eq!(
            check(
                r#"{"iss":"https://t.cloudflareaccess.com","aud":"tag","exp":2000,"nbf":5000,"email":"a@x.com"}"#
            ),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            check(r#"{"iss":"https://t.cloudflareaccess.com","aud":"tag","exp":2000}"#),
            Err(AuthError::NoEmail)
        );
    }

    #[test]
    fn keys_by_id() {
        let jwks = Jwks::parse(
            r#"{"keys":[{"kid":"k1","kty":"RSA","n":"AQAB","e":"AQAB","alg":"RS256"},{"kid":"k2","kty":"EC","n":"","e":""}]}"#,
        )
        .unwrap();
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.key_for(Some("k1")).unwrap().kid, "k1");
        assert!(matches!(
            jwks.key_for(Some("k2")),
            Err(AuthError::UnknownKey(_))
        ));
        assert!(matches!(
            Jwks::parse(r#"{"keys":[]}"#),
            Err(AuthError::Keys(_))
        ));
    }

    #[test]
    fn sessions_are_signed_and_expire() {
        let c = session_cookie("s3cret", "dev@example.com", 5000);
        assert_eq!(
            session_email("s3cret", &c, 1000).as_deref(),
            Some("dev@example.com")
        );
        assert_eq!(session_email("s3cret", &c, 5000), None, "expired");
        assert_eq!(session_email("other", &c, 1000), None, "another key");
        let forged = c.replacen(
            &URL_SAFE_NO_PAD.encode("dev@example.com"),
            &URL_SAFE_NO_PAD.encode("admin@example.com"),
            1,
        );
        assert_eq!(session_email("s3cret", &forged, 1000), None);
        let longer = c.replacen(".5000.", ".9999999999999.", 1);
        assert_eq!(session_email("s3cret", &longer, 1000), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_identity() {
        let a = Identity {
            email: "a@x.com".into(),
            groups: vec![],
            via: "access",
        };
        let b = Identity {
            email: "b@x.com".into(),
            ..a.clone()
        };
        let t = csrf_token("k", &a);
        assert!(csrf_ok("k", &a, &t));
        assert!(!csrf_ok("k", &b, &t));
        assert!(!csrf_ok("other", &a, &t));
        assert!(!csrf_ok("k", &a, ""));
        assert!(!csrf_ok("k", &a, "zz"));
    }

    #[test]
    fn dev_tokens_compare_whole() {
        assert!(dev_token_ok("tok", "tok"));
        assert!(!dev_token_ok("tok", "to"));
        assert!(!dev_token_ok("tok", "tok2"));
        assert!(!dev_token_ok("", ""));
    }

    #[test]
    fn origin_checks() {
        let url = "https://ops.example.com/_hashgate/console/action";
        assert!(same_origin(url, Some("https://ops.example.com"), None));
        assert!(!same_origin(
            url,
            Some("https://evil.example"),
            Some("same-origin")
        ));
        assert!(!same_origin(url, Some("null"), None));
        assert!(same_origin(url, None, Some("same-origin")));
        assert!(!same_origin(url, None, Some("cross-site")));
        assert!(!same_origin(url, None, None));
        assert!(same_origin(
            "http://127.0.0.1:8787/x",
            Some("http://127.0.0.1:8787"),
            None
        ));
    }

    #[test]
    fn cookies_by_name() {
        assert_eq!(
            cookie("a=1; hashgate_console=v.1.t; b=2", SESSION_COOKIE),
            Some("v.1.t")
        );
        assert_eq!(cookie("xhashgate_console=1", SESSION_COOKIE), None);
    }
}
