//! Objects in S3-API stores (R2, S3, MinIO and the like) as scan inputs:
//! `s3://bucket/prefix` names every object whose key starts with `prefix`.
//!
//! The store is reached through the `object_store` crate: credentials,
//! region and endpoint from the standard `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, ...), overridden by
//! `--s3-endpoint`, `--s3-region` and `--s3-allow-http`.
//!
//! Why it looks like this:
//! - Listing goes page by page ([`Lister`]): only one page of keys (at
//!   most `--s3-page-size`) is held at a time, however large the bucket. A
//!   key the client cannot name fails its whole page in `object_store`; the
//!   lister narrows the page down to it, reports it as one error line and
//!   goes on after it, so one uploaded key cannot stop a bucket's scan.
//! - The scan's workers are threads, as for files; each fetches one object
//!   at a time on a shared tokio runtime and reads its body as a
//!   [`std::io::Read`] ([`Body`]), so an object goes through the very check a
//!   file does (`check::check`): the first bytes decide whether it is an
//!   image, and no more than the hasher's input limit is ever read. An
//!   object the listing says is over the limit is fetched by a ranged
//!   request for its first bytes only (enough to tell an image from not).
//! - A bucket that cannot be listed (endpoint unreachable, credentials
//!   refused, no such bucket) is a scan that cannot run: [`S3Source::connect`]
//!   probes it before the scan starts. One object that cannot be fetched is
//!   an error line like an unreadable file.
//! - An object's identity for `--resume` is its URL and [`Object::version`]
//!   (its ETag), so an object replaced since the last run is scanned again.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as KeyPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};
use tokio::runtime::Runtime;

/// Bytes fetched of an object over the size limit: enough to sniff.
const SNIFF_BYTES: u64 = 32;

/// How to reach the store, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `--s3-endpoint`: the S3 API's base URL (R2:
    /// `https://<account>.r2.cloudflarestorage.com`).
    pub endpoint: Option<String>,
    /// `--s3-region` (R2: `auto`).
    pub region: Option<String>,
    /// `--s3-allow-http`: permit a plain-HTTP endpoint (a local server).
    pub allow_http: bool,
    /// `--s3-page-size`: keys asked for per listing request.
    pub page_size: usize,
}

/// A source spelled `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub bucket: String,
    pub prefix: String,
}

impl Url {
    /// The bucket and prefix of `s3://bucket[/prefix]`, or `None` when the
    /// argument is not an `s3://` URL (then it is a path).
    pub fn parse(arg: &str) -> Option<anyhow::Result<Url>> {
        let rest = arg.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(anyhow::anyhow!(
                "{arg}: no bucket name (write s3://BUCKET/PREFIX)"
            )));
        }
        Some(Ok(Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Object {
    pub bucket: Arc<str>,
    pub key: KeyPath,
    pub size: u64,
    /// The ETag as listed, or the size and last-modified time for a store
    /// that gives none: changes when the object is replaced.
    pub version: String,
}

impl Object {
    /// `s3://bucket/key`, as output lines and the resume state name it.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// One bucket (and prefix) to scan, reachable.
pub struct S3Source {
    url: Url,
    rt: tokio::runtime::Handle,
    bucket: Arc<str>,
    store: Arc<AmazonS3>,
    page_size: usize,
}

/// The runtime the S3 client runs on (its own threads; scan workers block
/// on it).
pub fn runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hashgate-s3")
        .enable_all()
        .build()
        .context("starting the S3 client's runtime")
}

impl S3Source {
    /// Builds the client for `url` and lists one key, so that an
    /// unreachable endpoint, refused credentials or a missing bucket stop
    /// the scan before it starts.
    pub fn connect(url: Url, connection: &Connection, rt: &Runtime) -> anyhow::Result<S3Source> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            // A dead endpoint should fail in seconds, not after the
            // crate's default of 10 retries over 3 minutes.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = &connection.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &connection.region {
            builder = builder.with_region(region);
        }
        if connection.allow_http {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .with_context(|| format!("cannot set up the S3 client for {url}"))?;
        let source = S3Source {
            rt: rt.handle().clone(),
            bucket: url.bucket.as_str().into(),
            url,
            store: Arc::new(store),
            page_size: connection.page_size.max(1),
        };
        if let Err(e) = rt.block_on(source.page(&Start::First, 1)) {
            // A key the client cannot name is the lister's to report.
            if unnamable(&e).is_err() {
                bail!(
                    "cannot list {}: {} (check the bucket name, the endpoint (--s3-endpoint or \
                     AWS_ENDPOINT_URL; --s3-allow-http for an http:// one) and the credentials \
                     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY))",
                    source.url,
                    explain(&e)
                );
            }
        }
        Ok(source)
    }

    /// A lister of every object under the prefix, a page at a time.
    pub fn lister(&self) -> Lister<'_> {
        Lister {
            source: self,
            start: Start::First,
            done: false,
        }
    }

    async fn page(
        &self,
        start: &Start,
        max_keys: usize,
    ) -> object_store::Result<(Vec<Object>, Option<String>)> {
        let (page_token, offset) = match start {
            Start::First => (None, None),
            Start::Token(token) => (Some(token.clone()), None),
            Start::After(key) => (None, Some(key.clone())),
        };
        let prefix = (!self.url.prefix.is_empty()).then_some(self.url.prefix.as_str());
        let page = self
            .store
            .list_paginated(
                prefix,
                PaginatedListOptions {
                    max_keys: Some(max_keys),
                    page_token,
                    offset,
                    ..PaginatedListOptions::default()
                },
            )
            .await?;
        let objects = page
            .result
            .objects
            .into_iter()
            .map(|meta| Object {
                bucket: Arc::clone(&self.bucket),
                version: meta.e_tag.unwrap_or_else(|| {
                    format!("{}@{}", meta.size, meta.last_modified.to_rfc3339())
                }),
                key: meta.location,
                size: meta.size,
            })
            .collect();
        Ok((objects, page.page_token))
    }

    /// Opens `object` for reading: all of it when it is within `limit`
    /// bytes, else only its first bytes (the check then reports it as too
    /// large, or as not an image, without reading more).
    pub fn open(&self, object: &Object, limit: u64) -> Result<Body, String> {
        if object.size == 0 {
            // Nothing to fetch (and "folder" marker keys end in '/', which
            // the client's key type cannot name).
            return Ok(Body::empty(&self.rt));
        }
        let options = GetOptions {
            range: (object.size > limit).then_some(GetRange::Bounded(0..SNIFF_BYTES)),
            ..GetOptions::default()
        };
        let result = self
            .rt
            .block_on(self.store.get_opts(&object.key, options))
            .map_err(|e| format!("cannot read: {}", explain(&e)))?;
        Ok(Body {
            rt: self.rt.clone(),
            stream: Some(result.into_stream()),
            chunk: Bytes::new(),
        })
    }
}

/// Where the next listing request starts.
enum Start {
    First,
    /// The continuation token of the page before.
    Token(String),
    /// Just after a key (S3's `start-after`): past one the client cannot
    /// name, where the failed request left no token.
    After(String),
}

/// One entry of a listing.
pub enum Listed {
    Object(Object),
    /// A key the client cannot name (`object_store` refuses empty, `.`
    /// and `..` segments): its `s3://` URL and why, for an error line.
    Unnamable {
        url: String,
        error: String,
    },
}

/// The key of a listing error caused by a key the client cannot name, or
/// the error itself.
fn unnamable(error: &object_store::Error) -> Result<String, &object_store::Error> {
    use object_store::path::Error as KeyError;
    match error {
        object_store::Error::InvalidPath {
            source: KeyError::EmptySegment { path } | KeyError::BadSegment { path, .. },
        } => Ok(path.clone()),
        other => Err(other),
    }
}

/// Lists a source page by page.
///
/// A key the client cannot name fails the whole page it is in, so such a
/// page is asked for again with half as many keys until the keys before
/// it come back, and then the key alone is reported ([`Listed::Unnamable`])
/// and listing goes on just after it: one such key costs about log2(page
/// size) extra requests and one error line, never the rest of the bucket.
pub struct Lister<'a> {
    source: &'a S3Source,
    start: Start,
    done: bool,
}

impl Lister<'_> {
    /// The next page of objects, `Ok(None)` after the last.
    pub fn next_page(&mut self) -> anyhow::Result<Option<Vec<Listed>>> {
        if self.done {
            return Ok(None);
        }
        let url = &self.source.url;
        let mut max_keys = self.source.page_size;
        loop {
            let page = self
                .source
                .rt
                .block_on(self.source.page(&self.start, max_keys));
            let (objects, token) = match page {
                Ok(page) => page,
                Err(e) => match unnamable(&e) {
                    Ok(_) if max_keys > 1 => {
                        max_keys /= 2;
                        continue;
                    }
                    Ok(key) => {
                        let error = format!("cannot be listed or fetched: {}", explain(&e));
                        self.start = Start::After(key.clone());
                        let url = format!("s3://{}/{key}", self.source.bucket);
                        return Ok(Some(vec![Listed::Unnamable { url, error }]));
                    }
                    Err(e) => bail!("listing {url} failed: {}", explain(e)),
                },
            };
            match token {
                None => self.done = true,
                Some(_) if objects.is_empty() => bail!(
                    "listing {url} failed: the store returned an empty page that is not the last"
                ),
                Some(token) => self.start = Start::Token(token),
            }
            return Ok(Some(objects.into_iter().map(Listed::Object).collect()));
        }
    }
}

/// What went wrong, in one line: the innermost cause (the crate's errors
/// repeat their sources in their text), with an S3 error body's code and
/// message instead of its XML.
fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(source) = root.source() {
        root = source;
    }
    let text = root.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find('<')?;
        Some(&text[start..start + len])
    };
    match (text.find('<'), tag("Code")) {
        (Some(at), Some(code)) => {
            let status = text[..at].trim_end_matches([' ', ':']);
            let message = tag("Message").unwrap_or("");
            format!("{status}: {code}: {message}")
        }
        _ => text.lines().next().unwrap_or_default().to_owned(),
    }
}

/// An object's bytes as they arrive, read from a scan worker's thread.
pub struct Body {
    rt: tokio::runtime::Handle,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    chunk: Bytes,
}

impl Body {
    fn empty(rt: &tokio::runtime::Handle) -> Body {
        Body {
            rt: rt.clone(),
            stream: None,
            chunk: Bytes::new(),
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            match self.rt.block_on(stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => {
                    self.stream = None;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose text repeats its source's, as the crate's do.
    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "listing failed: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_is_its_innermost_cause_and_an_s3_code() {
        let body = "Server returned non-2xx status code: 404 Not Found: \
                    <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message>\
                    <RequestId>x</RequestId></Error>";
        assert_eq!(
            explain(&Wrapped(io::Error::other(body))),
            "Server returned non-2xx status code: 404 Not Found: NoSuchBucket: \
             The specified bucket does not exist"
        );
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(explain(&Wrapped(refused)), "Connection refused");
    }

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        assert!(Url::parse("photos/a.jpg").is_none());
        assert!(Url::parse("/s3://x").is_none());
        let url = |s| Url::parse(s).unwrap().unwrap();
        assert_eq!(
            url("s3://media/uploads/2024/"),
            Url {
                bucket: "media".into(),
                prefix: "uploads/2024/".into()
            }
        );
        assert_eq!(url("s3://media").prefix, "");
        assert_eq!(url("s3://media/").prefix, "");
        assert_eq!(url("s3://media/x").to_string(), "s3://media/x");
        assert!(Url::parse("s3://").unwrap().is_err());
        assert!(Url::parse("s3:///key").unwrap().is_err());
    }
}
