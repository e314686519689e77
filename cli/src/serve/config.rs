//! What `hashgate serve` runs with: a plain struct with documented fields
//! and defaults, built from the command line, then checked by
//! [`ServeConfig::validate`] before anything is bound or loaded.
//!
//! The limits are what keeps one service up under bad or heavy traffic:
//! memory is bounded by `max_buffered` (request bodies) plus `workers`
//! times the hasher's `max_memory` (decoding and hashing) plus
//! [`CONNECTION_BUFFER`] per open connection, CPU by `workers`, and the
//! number of open sockets by `max_connections`.
//! Nothing waits in an unbounded queue: past `max_inflight` requests or
//! `max_buffered` bytes a request is answered 503 at once, past
//! `max_connections` new connections wait in the kernel's accept backlog.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use hashgate::Limits;

use hashgate::matching::MatchSettings;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Largest body accepted by default: 32 MiB, more than any photo a site
/// serves, and half the hasher's own default input limit.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// Largest body that can be configured.
pub const MAX_MAX_BODY: usize = 1 << 30;
/// Bytes of request bodies held at once by default: 512 MiB, sixteen
/// bodies of the default largest size.
pub const DEFAULT_MAX_BUFFERED: usize = 512 << 20;
/// What one connection may buffer of what it reads: a request head must
/// fit (a longer one gets 431), and body bytes pass through in pieces of at
/// most about this size. Without it hyper buffers up to about 400 KiB per
/// connection, so `max_connections` clients sending long unfinished heads
/// could hold 400 MiB at the defaults before any request is admitted.
pub const CONNECTION_BUFFER: usize = 64 << 10;

/// The service's settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on. Anything but loopback needs a `token`.
    pub listen: SocketAddr,
    /// Directory made by `hashgate index build`; reloaded when its records
    /// file changes.
    pub index_dir: PathBuf,
    /// Thresholds and lists for `/v1/match` (each request may override
    /// threshold and lists).
    pub matching: MatchSettings,
    /// Bearer token every request but `/healthz` must carry, if set.
    pub token: Option<String>,
    /// Requests a second per token on the matching endpoints (0: no limit;
    /// see [`super::ratelimit`]).
    pub rate_limit: u32,
    /// Largest request body in bytes; larger ones get 413 without being read.
    pub max_body: usize,
    /// Bytes of request bodies held at once (at least `max_body`); a body
    /// that would go past it gets 503.
    pub max_buffered: usize,
    /// Time from a request's start to its answer. Reading the body past it
    /// gives 408, hashing past it 503.
    pub timeout: Duration,
    /// Images hashed at once (CPU-bound work); the number of cores by default.
    pub workers: usize,
    /// Requests admitted at once (reading, waiting for a worker, hashing).
    /// The next one gets 503 with `Retry-After`.
    pub max_inflight: usize,
    /// Open connections at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// How often the index file is checked for changes; `None` for never
    /// (SIGHUP still reloads).
    pub reload_interval: Option<Duration>,
    /// How long shutdown waits for in-flight requests after SIGTERM.
    pub drain_timeout: Duration,
}

impl ServeConfig {
    /// The defaults for an index directory.
    pub fn new(index_dir: PathBuf) -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            index_dir,
            matching: MatchSettings::default(),
            token: None,
            rate_limit: 0,
            max_body: DEFAULT_MAX_BODY,
            max_buffered: DEFAULT_MAX_BUFFERED,
            timeout: Duration::from_secs(30),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_inflight: 64,
            max_connections: 1024,
            reload_interval: Some(Duration::from_secs(2)),
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// Refuses settings the service cannot run safely with.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !is_loopback(&self.listen) && self.token.is_none() {
            bail!(
                "listening on {} (not loopback) requires --token-file: \
                 the service would otherwise answer anyone who can reach it",
                self.listen
            );
        }
        if let Some(token) = &self.token {
            if token.is_empty() {
                bail!("the bearer token is empty");
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("the bearer token must be printable ASCII without spaces");
            }
        }
        if self.max_body == 0 || self.max_body > MAX_MAX_BODY {
            bail!("--max-body must be between 1 byte and {MAX_MAX_BODY} bytes");
        }
        if self.max_buffered < self.max_body {
            bail!(
                "--max-buffered ({}) must be at least --max-body ({})",
                self.max_buffered,
                self.max_body
            );
        }
        if self.timeout.is_zero() {
            bail!("--timeout must be above zero");
        }
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if self.max_inflight == 0 {
            bail!("--max-inflight must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        if self.reload_interval.is_some_and(|d| d.is_zero()) {
            bail!("--reload-interval must be above zero (or `off`)");
        }
        self.matching.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// What the hasher accepts: its defaults, with the body limit as input
    /// limit.
    pub fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_body,
            ..Limits::default()
        }
    }
}

/// Whether only this machine can reach `addr`.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Resolves `host:port` to the first address it names.
pub fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    let mut addrs = text
        .to_socket_addrs()
        .with_context(|| format!("--listen {text}: expected HOST:PORT"))?;
    addrs
        .next()
        .with_context(|| format!("--listen {text}: names no address"))
}

/// Reads a bearer token: the file's text without surrounding whitespace.
/// Warns when others may read the file.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "hashgate serve: warning: {} is readable by other users (chmod 600 it)",
                    path.display()
                );
            }
        }
    }
    let token = text.trim().to_owned();
    if token.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(token)
}

/// Parses a byte size: a number with an optional `K`, `M` or `G` suffix
/// (binary units; `KiB`, `MiB`, `GiB` and a trailing `B` also accepted).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 32M)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?}: unknown unit (use K, M or G)")),
    };
    number
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration: a number with `ms`, `s` (the default) or `m`.
/// Not `humantime`: it takes neither a bare number of seconds (`30`) nor a
/// fraction (`1.5s`), which the flags have always accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 30s or 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        _ => return Err(format!("{text:?}: unknown unit (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

/// Parses `--reload-interval`: a duration, or `off`.
pub fn parse_interval(text: &str) -> Result<Option<Duration>, String> {
    if text.trim() == "off" {
        Ok(None)
    } else {
        parse_duration(text).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServeConfig {
        ServeConfig::new(PathBuf::from("index"))
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = config();
        c.validate().unwrap();
        assert!(is_loopback(&c.listen));
        assert_eq!(c.limits().max_input_bytes, DEFAULT_MAX_BODY);
    }

    #[test]
    fn refuses_other_addresses_without_a_token() {
        let mut c = config();
        c.listen = "0.0.0.0:8080".parse().unwrap();
        let error = c.validate().unwrap_err().to_string();
        assert!(error.contains("--token-file"), "{error}");
        c.token = Some("s3cret".into());
        c.validate().unwrap();

        for loopback in ["127.0.0.2:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            c.listen = loopback.parse().unwrap();
            c.token = None;
            c.validate().unwrap();
        }
        c.listen = "[::]:1".parse().unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn refuses_bad_tokens_and_zero_limits() {
        let mut c = config();
        c.token = Some("has space".into());
        assert!(c.validate().is_err());

        let cases: [fn(&mut ServeConfig); 8] = [
            |c| c.max_body = 0,
            |c| c.max_buffered = c.max_body - 1,
            |c| {
                c.max_body = MAX_MAX_BODY + 1;
                c.max_buffered = usize::MAX;
            },
            |c| c.timeout = Duration::ZERO,
            |c| c.workers = 0,
            |c| c.max_inflight = 0,
            |c| c.max_connections = 0,
            |c| c.matching.threshold = 32,
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut c = config();
            break_it(&mut c);
            assert!(c.validate().is_err(), "case {i} should be refused");
        }
    }

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("32M"), Ok(32 << 20));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_interval("off"), Ok(None));
    }

    #[test]
    fn resolves_listen_addresses() {
        assert!(is_loopback(&parse_listen("localhost:0").unwrap()));
        assert!(parse_listen("no-port").is_err());
    }
}
