//! A per-client limit on 451 answers: the distance oracle, closed at the
//! edge.
//!
//! A gate that answers 451 or 200 tells whoever asks whether an image
//! matches. Someone who holds a listed image can alter it a little at a
//! time (crop, noise, re-encode) and ask again until it passes: the 451s
//! measure the distance for them. Limiting how many 451s one client gets
//! makes that search slow; a client past the limit gets `429 Too Many
//! Requests` for *every* request on a scanning route for
//! [`PENALTY_SECONDS`], matching or not, so the 429 itself says nothing
//! about the image that triggered it or the ones after it.
//!
//! Optional: on only when the worker has the rate-limiting binding
//! [`BINDING`] (`[[ratelimits]]` in `wrangler.toml`, whose `simple.limit`
//! and `simple.period` set how many 451s per period one client may get).
//! Trade-offs, said where operators read them (docs/worker.md):
//! * the key is the client's address (`CF-Connecting-IP`; an IPv6 address
//!   by its /64, which one subscriber usually holds whole), so clients
//!   behind one address (a carrier NAT, an office proxy) share a limit: set
//!   the limit well above what one person sees in a period;
//! * Cloudflare's rate limits count per location and eventually: a client
//!   spread over locations gets more, never fewer;
//! * a request without a client address (local development) is not
//!   limited.
//!
//! Pure: the key and the names; the runtime half is
//! `runtime::penalties`.

use std::net::IpAddr;

/// The rate-limiting binding (`[[ratelimits]]` `name`).
pub const BINDING: &str = "BLOCK_LIMIT";
/// How long a client past the limit gets 429 on scanning routes.
pub const PENALTY_SECONDS: u32 = 60;

/// The limit's key for a client address: `v4:<address>`, or `v6:` and the
/// first four groups (the /64) of an IPv6 address; an IPv4 address mapped
/// into IPv6 counts as the IPv4 address. `None` when there is no usable
/// address.
pub fn client_key(address: Option<&str>) -> Option<String> {
    let ip: IpAddr = address?.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V4(v4) => format!("v4:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("v4:{v4}"),
            None => {
                let s = v6.segments();
                format!("v6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    })
}

/// The Cache API URL under which a penalty is remembered in a location.
pub fn penalty_url(key: &str) -> String {
    format!(
        "https://hashgate.internal/block-limit/{}",
        hex::encode(key.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_addresses() {
        assert_eq!(
            client_key(Some("203.0.113.9")).as_deref(),
            Some("v4:203.0.113.9")
        );
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1")).as_deref(),
            Some("v6:2001:db8:1:2::/64")
        );
        assert_eq!(
            client_key(Some("2001:db8:1:2:ffff::9")),
            client_key(Some("2001:db8:1:2::1")),
            "one /64, one key"
        );
        assert_ne!(
            client_key(Some("2001:db8:1:3::1")),
            client_key(Some("2001:db8:1:2::1"))
        );
        assert_eq!(
            client_key(Some("::ffff:203.0.113.9")).as_deref(),
            Some("v4:203.0.113.9")
        );
        assert_eq!(
            client_key(Some(" 198.51.100.1 ")).as_deref(),
            Some("v4:198.51.100.1")
        );
    }

    #[test]
    fn no_key_without_a_usable_address() {
        assert_eq!(client_key(None), None);
        assert_eq!(client_key(Some("")), None);
        assert_eq!(client_key(Some("not an address")), None);
        assert_eq!(client_key(Some("203.0.113.9, 10.0.0.1")), None);
    }

    #[test]
    fn penalty_urls_differ_per_key_and_are_urls() {
        let a = penalty_url("v4:203.0.113.9");
        assert!(a.starts_with("https://hashgate.internal/block-limit/"));
        let path = a.trim_start_matches("https://");
        assert!(
            path.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/' || b == b'-'),
            "{a}"
        );
        assert_ne!(a, penalty_url("v4:203.0.113.10"));
    }
}
