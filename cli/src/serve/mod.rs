//! `hashgate serve`: the hasher and an index behind a small HTTP API, for
//! back ends that hash and check images themselves.
//!
//! * `POST /v1/hash`: image bytes in, the `hashgate hash` JSON out;
//! * `POST /v1/match`, `GET /v1/match?pdq=HEX`: the `hashgate match` JSON;
//! * `GET /healthz`, `GET /metrics` (Prometheus text).
//!
//! Built on hyper directly (HTTP/1.1): five routes do not need a framework,
//! and every limit below is then one visible line. Hashing is CPU-bound and
//! runs on blocking threads, so the async threads only move bytes.
//!
//! Modules: [`config`] (settings and their checks), [`api`] (request
//! phases), [`error`] (the JSON error answers), [`params`] (query strings),
//! [`metrics`], [`reload`] (the index, swapped without downtime). This file
//! holds the accept loop and the signals: SIGTERM or SIGINT stops accepting
//! and lets in-flight requests finish (up to `--drain-timeout`), SIGHUP
//! reloads the index.

mod api;
mod config;
mod error;
mod hma;
mod memory;
mod metrics;
mod openapi;
mod params;
mod ratelimit;
mod reload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Semaphore};

use crate::matching::MatchFlags;
use api::App;
use config::ServeConfig;
use hashgate::matching::check_lists;
use metrics::Metrics;
use reload::IndexHolder;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port). Anything
    /// but loopback requires --token-file.
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_LISTEN)]
    listen: String,
    /// Directory made by `hashgate index build`; reloaded when it changes.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Matching defaults; a request may pass `threshold`, `lists`,
    /// `dihedral` and `variants` of its own.
    #[command(flatten)]
    matching: MatchFlags,
    /// File holding the bearer token every request but /healthz must send
    /// (`Authorization: Bearer TOKEN`).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Requests a second per token to /v1/match and the HMA endpoints,
    /// with bursts of as many; beyond, 429 with Retry-After. Slows a caller
    /// tuning an altered image against the matcher. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rate_limit: u32,
    /// Largest request body (K, M, G suffixes); larger ones get 413.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = config::parse_size)]
    max_body: usize,
    /// Time to answer one request (e.g. 30s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration)]
    timeout: Duration,
    /// Images hashed at once [default: number of cores].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Bytes of request bodies held at once (K, M, G suffixes); a body that
    /// would go past it gets 503 with Retry-After. At least --max-body
    /// [default: 512M, or --max-body if larger].
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    max_buffered: Option<usize>,
    /// Requests admitted at once; further ones get 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_inflight: usize,
    /// Open connections at once; further ones wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// How often to check the index for changes, or `off` (SIGHUP always
    /// reloads).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval)]
    reload_interval: Interval,
    /// How long SIGTERM waits for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration)]
    drain_timeout: Duration,
}

/// `--reload-interval`: a duration or `off`.
#[derive(Debug, Clone, Copy)]
struct Interval(Option<Duration>);

fn parse_interval(text: &str) -> Result<Interval, String> {
    config::parse_interval(text).map(Interval)
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<ServeConfig> {
        let mut config = ServeConfig::new(self.index);
        config.listen = config::parse_listen(&self.listen)?;
        config.matching = self.matching.settings();
        if let Some(path) = &self.token_file {
            config.token = Some(config::read_token_file(path)?);
        }
        config.rate_limit = self.rate_limit;
        config.max_body = self.max_body;
        config.max_buffered = self
            .max_buffered
            .unwrap_or(config::DEFAULT_MAX_BUFFERED.max(self.max_body));
        config.timeout = self.timeout;
        if let Some(workers) = self.workers {
            config.workers = workers;
        }
        config.max_inflight = self.max_inflight;
        config.max_connections = self.max_connections;
        config.reload_interval = self.reload_interval.0;
        config.drain_timeout = self.drain_timeout;
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.into_config()?;
    config.validate()?;
    memory::tune_allocator();
    let index = Arc::new(IndexHolder::load(&config.index_dir)?);
    check_lists(&config.matching.lists, &index.current().index.list_names())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Hashing holds one blocking thread per worker; one more for reloads.
        .max_blocking_threads(config.workers + 2)
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(config, index));
    // Everything was drained above; a reload still reading may be dropped.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(config: ServeConfig, index: Arc<IndexHolder>) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let metrics = Arc::new(Metrics::default());

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(reload::watch(
        Arc::clone(&index),
        Arc::clone(&metrics),
        config.reload_interval,
        reload_rx,
    ));
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            // A reload already queued covers this signal too.
            let _ = reload_tx.try_send(());
        }
    });

    tokio::spawn(memory::release_when_idle(Arc::clone(&metrics)));

    let records = index.current().index.distinct_hashes();
    let app = Arc::new(App::new(config.clone(), index, metrics));
    eprintln!(
        "hashgate serve: listening on http://{local} (index {}: {records} records; {} workers, \
         {} in flight at most, body limit {} bytes, {} bytes of bodies at once{})",
        config.index_dir.display(),
        config.workers,
        config.max_inflight,
        config.max_body,
        config.max_buffered,
        if config.token.is_some() {
            ", bearer token required"
        } else {
            ""
        },
    );

    let connections = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let shutdown = async {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    };
    tokio::pin!(shutdown);
    let reason = loop {
        // At the connection limit, stop accepting: new connections wait in
        // the kernel's backlog instead of in this process.
        let permit = tokio::select! {
            reason = &mut shutdown => break reason,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break "connection limit closed",
            },
        };
        let stream = tokio::select! {
            reason = &mut shutdown => break reason,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, usually: back off briefly.
                    eprintln!("hashgate serve: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.timeout)
            .max_header_size(config::CONNECTION_BUFFER)
            .max_buf_size(config::CONNECTION_BUFFER)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |request| Arc::clone(&app).handle(request)),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Client resets and timeouts end a connection; nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    };

    drop(listener);
    eprintln!(
        "hashgate serve: {reason}: not accepting; finishing in-flight requests (up to {:?})",
        config.drain_timeout
    );
    tokio::select! {
        () = graceful.shutdown() => {
            eprintln!("hashgate serve: drained, exiting");
            Ok(ExitCode::SUCCESS)
        }
        () = tokio::time::sleep(config.drain_timeout) => {
            eprintln!("hashgate serve: drain timeout passed with requests still open; exiting");
            Ok(ExitCode::FAILURE)
        }
    }
}
