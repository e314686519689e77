//! The operator's policy: per route, what to scan, how strictly, against
//! which lists, and what to do on a match or a failure.
//!
//! One JSON document, from the `POLICY` variable (or a KV key it names, see
//! [`PolicySource`]), parsed once per isolate and validated before any
//! request is served: a typo must not silently turn scanning off, so every
//! problem is an error that names the route and the field, and unknown
//! fields are refused rather than ignored. The error goes to the log; the
//! isolate then serves with its last good policy or the safe default
//! ([`SAFE_DEFAULT_POLICY`]), never with no scanning and never with the
//! error in a public body.
//!
//! ```json
//! {"routes": [{"pattern": "example.com/images/*", "action": "block",
//!              "pdq_threshold": 31, "lists": ["ncmec"], "scan": ["responses", "uploads"],
//!              "fail": "open", "max_bytes": 16777216,
//!              "notify": {"webhook": "https://ops.example.com/hashgate"}}],
//!  "blocked_by": "https://example.com/legal/blocking",
//!  "verdict_cache": {"ttl_seconds": 300, "max_entries": 4096, "shared": true},
//!  "index": {"refresh_seconds": 30},
//!  "memory_budget": {"bytes": 33554432, "wait_ms": 5000},
//!  "kv_refresh_seconds": 60}
//! ```
//!
//! Policy-wide fields besides `routes`:
//! * `blocked_by`: the `Link: rel="blocked-by"` target of a 451;
//! * `verdict_cache` (remembered verdicts): `ttl_seconds` (default 300, 0
//!   turns remembering off), `max_entries` per isolate (default 4096),
//!   `shared` (default `true`: also through the colo's Cache API, see
//!   [`crate::verdict_cache`]);
//! * `index.refresh_seconds` (default 30, 1..=3600): how often an isolate
//!   looks for a new index generation;
//! * `memory_budget.bytes` (default 32 MiB, 1 MiB..=96 MiB, at least every
//!   route's `max_bytes`): the bytes of bodies read for scanning that one
//!   isolate holds at once (see [`crate::budget`]);
//!   `memory_budget.wait_ms` (default 5000, at most 30000): how long a read
//!   waits for room before it is a failure (see `fail`);
//! * `kv_refresh_seconds` (default 60, 1..=3600): with `POLICY` set to
//!   `kv:<key>`, how often the isolate reads the key again. A policy that
//!   cannot be used (key missing, unreadable, invalid) is logged, never
//!   shown to clients; the isolate keeps its last good policy or, with
//!   none, serves [`SAFE_DEFAULT_POLICY`] (see [`crate::config`]);
//! * `block_messages`: per list, the sentence a 451 gives as its reason
//!   (lists are not all CSAM lists: NCII and terrorist-content lists
//!   exist too), e.g. `{"ncii": "This image was reported as shared without
//!   consent."}`; 1..=1000 characters, no control characters but newlines;
//!   a list without one gets the CSAM wording of [`crate::respond`];
//! * `console`: the console for the people on duty, see
//!   [`crate::console::settings`].
//! * `flood_guard` (default `{"max_images": 100, "window_seconds": 3600}`):
//!   a list entry that matches more distinct images than that within the
//!   window is suspended (flagged, not blocked) for review, see
//!   [`crate::flood_guard`]; `max_images: 0` turns it off.
//! * `stored` (default none): rules for objects in R2 buckets, per bucket
//!   and key prefix, see [`crate::stored_policy`].
//!
//! Route fields and defaults:
//! * `pattern` (required): Cloudflare route syntax, see [`crate::pattern`];
//! * `enabled` (default `true`): `false` sends the route's traffic through
//!   untouched (a more specific disabled route carves a hole in a broader one);
//! * `action` (required): `block` answers 451, `flag` passes the original and
//!   reports;
//! * `pdq_threshold` (default 31): largest PDQ Hamming distance that matches,
//!   0..=31 (the index answers exactly up to 31);
//! * `variants` (default `dihedral`): which altered copies the query covers
//!   ([`hashgate::QuerySet`], the same names as the command's `--variants`).
//!   `own`: the image's PDQ only. `dihedral`: the image's PDQ and its 7
//!   rotations/mirrors derived from the DCT (nearly free). `all`: also PDQ of the actually rotated/mirrored
//!   pixels and of the content inside uniform added borders (a border is a
//!   common evasion; costs more CPU and KV reads per image);
//! * `lists` (required): the hash lists the route subscribes to, or `["*"]`
//!   for every list in the index;
//! * `scan` (default `["responses"]`): `responses` (images served) and/or
//!   `uploads` (images in request bodies of any method, decoded and read
//!   as every origin might, see [`crate::upload`]);
//! * `fail` (default `open`): when an image cannot be checked, `open`
//!   passes it and reports it unscanned, `closed` answers 503;
//! * `undecodable` (default `fail`): an image in a format hashgate
//!   recognises but cannot decode (AVIF, HEIF, JPEG XL): `fail` treats it
//!   as any image that could not be checked (the `fail` mode applies);
//!   `pass` passes it and reports it unscanned even on a `closed` route
//!   (for sites that serve such images and accept that they are not
//!   checked);
//! * `max_bytes` (default 16 MiB, at most 25 MiB): the largest body read for
//!   scanning, and the largest an upload may decode to; a larger one is a
//!   failure (see `fail`);
//! * `kv_timeout_ms` (default 1000, 1..=30000): how long the index look-up
//!   may take; KV that errors or does not answer in time is a failure (see
//!   `fail`), never a clean verdict. A healthy KV read answers in tens of
//!   milliseconds (hot) to a few hundred (cold); a second is ample, and
//!   short enough that a stalled KV does not hold every image request;
//! * `notify.webhook`: where the report consumer posts signed notifications
//!   (`https://`, or `http://` to a loopback address for local testing);
//! * `min_pdq_quality` (default 50, 0..=100): images of lower PDQ quality
//!   get no PDQ match (their digests still match; 0 turns the rule off);
//! * `list_distance` (default none): `{"LIST": D}`, the largest PDQ distance
//!   that matches on that list (0..=31, below `pdq_threshold` to matter);
//! * `negative_lists` (default none): lists of known-innocent hashes; an
//!   image matching one of them matches nothing (see
//!   [`hashgate::index::hygiene`]);
//! * `report.auto` (default `false`): file the CyberTipline report of this
//!   route's incidents without a person's confirmation (see
//!   `crate::reporting`).
//!
//! Top level, `evidence.headers` (default none): request headers kept with
//! the evidence of a matched upload besides its IP and user agent (e.g. an
//! account id header the site sets); see `crate::evidence`.

use std::collections::{BTreeMap, BTreeSet};

use hashgate::index::lists::{validate_list_name, ListNameError};
use hashgate::index::{Hygiene, ListFilter, DEFAULT_MIN_PDQ_QUALITY, MAX_PDQ_THRESHOLD};
use hashgate::matching::DEFAULT_PDQ_THRESHOLD;
use hashgate::QuerySet;
use serde::Deserialize;
use thiserror::Error;

use crate::budget::{BudgetSettings, MAX_BUDGET_BYTES, MAX_WAIT_MS, MIN_BUDGET_BYTES};
use crate::console::settings::{ConsoleConfigError, ConsoleDoc, ConsoleSettings};
use crate::pattern::{PatternError, RoutePattern};

/// The policy an isolate serves with when the configured one is missing
/// or invalid and it has no earlier good one: every host and path, both
/// directions, every list, block, fail closed. A broken configuration must
/// not turn scanning off, and must not take the site down either: pages
/// and other non-images pass as usual, images are checked, and what cannot
/// be checked is withheld (503).
pub const SAFE_DEFAULT_POLICY: &str = r#"{"routes": [{"pattern": "*/*", "action": "block", "lists": ["*"], "scan": ["responses", "uploads"], "fail": "closed"}]}"#;

/// Default `kv_refresh_seconds`.
pub const DEFAULT_KV_REFRESH_SECONDS: u32 = 60;
/// Largest `kv_refresh_seconds`.
pub const MAX_KV_REFRESH_SECONDS: u32 = 3600;

/// Default `max_bytes`: 16 MiB.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
/// Largest `max_bytes`: what the hasher's edge limits accept.
pub const MAX_MAX_BYTES: usize = 25 << 20;
/// Default verdict cache lifetime.
pub const DEFAULT_CACHE_TTL_SECONDS: u32 = 300;
/// Default verdict cache size.
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;
/// Largest verdict cache size (each entry is about 200 bytes).
pub const MAX_CACHE_ENTRIES: usize = 100_000;
/// Default `kv_timeout_ms`: how long an index look-up may take.
pub const DEFAULT_KV_TIMEOUT_MS: u32 = 1000;
/// Largest `kv_timeout_ms`.
pub const MAX_KV_TIMEOUT_MS: u32 = 30_000;

/// What to do with a matching image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Block,
    Flag,
}

/// What to do with an image that could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Open,
    Closed,
}

/// What to do with an image in a format that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Undecodable {
    /// Pass it and report it unscanned.
    Pass,
    /// The route's fail mode applies.
    Fail,
}

/// What a route scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanTarget {
    Responses,
    Uploads,
}

/// One route's policy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub pattern: RoutePattern,
    pub enabled: bool,
    pub action: Action,
    pub pdq_threshold: u32,
    pub variants: QuerySet,
    pub lists: ListFilter,
    pub scan_responses: bool,
    pub scan_uploads: bool,
    pub fail: FailMode,
    /// What to do with an image that cannot be decoded.
    pub undecodable: Undecodable,
    pub max_bytes: usize,
    /// How long the index look-up may take, in milliseconds.
    pub kv_timeout_ms: u32,
    pub webhook: Option<String>,
    /// `report.auto`: a CyberTipline report of this route's incidents is
    /// filed without waiting for a person's confirmation (default: wait).
    pub auto_report: bool,
    /// Quality, per-list distance and negative lists (`min_pdq_quality`,
    /// `list_distance`, `negative_lists`; see [`hashgate::index::hygiene`]).
    pub hygiene: Hygiene,
}

impl Route {
    /// What the verdict on an image depends on besides the image and the
    /// index: the threshold, the query variants, the lists and the hygiene
    /// rules (left out when they are the defaults). Two routes
    /// with the same key can share cached verdicts.
    pub fn verdict_key(&self) -> String {
        let variants = match self.variants {
            QuerySet::Own => "o",
            QuerySet::Dihedral => "d",
            QuerySet::All => "a",
        };
        let lists = match &self.lists {
            ListFilter::All => "*".to_owned(),
            ListFilter::Only(lists) => lists
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(","),
        };
        let key = format!("t{}:{variants}:{lists}", self.pdq_threshold);
        if self.hygiene == Hygiene::default() {
            key
        } else {
            format!("{key}:{}", self.hygiene.key())
        }
    }
}

/// Verdict cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// 0 turns the cache off (both tiers).
    pub ttl_seconds: u32,
    pub max_entries: usize,
    /// Whether verdicts are also shared through the colo's Cache API.
    pub shared: bool,
}

/// How the isolate follows index generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSettings {
    /// How often an isolate reads `hg2/current` to learn of a new
    /// generation: with KV's own propagation (up to 60 s), the bound on how
    /// long after an upload a newly listed image is blocked everywhere.
    pub refresh_seconds: u32,
}

/// Default `index.refresh_seconds`.
pub const DEFAULT_INDEX_REFRESH_SECONDS: u32 = 30;
/// Largest `index.refresh_seconds`.
pub const MAX_INDEX_REFRESH_SECONDS: u32 = 3600;

/// The whole policy, validated; routes most specific first.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    routes: Vec<Route>,
    pub blocked_by: Option<String>,
    pub cache: CacheSettings,
    pub index: IndexSettings,
    pub memory: BudgetSettings,
    /// How often a `kv:` policy is read again, in seconds.
    pub kv_refresh_seconds: u32,
    /// Per list, the reason a 451 gives.
    pub block_messages: BTreeMap<String, String>,
    /// The console, when configured.
    pub console: Option<ConsoleSettings>,
    /// `evidence.headers`: request headers (lowercase names) kept with the
    /// evidence of an upload, besides its IP and user agent.
    pub evidence_headers: Vec<String>,
    /// Stored content: per R2 bucket and prefix ([`crate::stored_policy`]).
    pub stored: crate::stored_policy::StoredPolicy,
    /// Entries that match too many distinct images are suspended
    /// ([`crate::flood_guard`]).
    pub flood_guard: crate::flood_guard::FloodGuard,
}

/// Why a policy was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("POLICY is empty: set it to a JSON policy ({{\"routes\": [...]}}) or kv:<key>")]
    Empty,
    #[error("POLICY is not a valid policy document: {0}")]
    Json(String),
    #[error("evidence.headers: {0:?} is not a header name")]
    EvidenceHeader(String),
    #[error("routes[{index}] ({pattern:?}): {problem}")]
    Route {
        index: usize,
        pattern: String,
        problem: RouteProblem,
    },
    #[error("routes[{second}] repeats the pattern {pattern:?} of routes[{first}]")]
    DuplicatePattern {
        pattern: String,
        first: usize,
        second: usize,
    },
    #[error("blocked_by: {0}")]
    BlockedBy(String),
    #[error("verdict_cache.max_entries {0} is out of range 1..={MAX_CACHE_ENTRIES}")]
    CacheEntries(usize),
    #[error("index.refresh_seconds {0} is out of range 1..={MAX_INDEX_REFRESH_SECONDS}")]
    IndexRefresh(u32),
    #[error("memory_budget.bytes {0} is out of range {MIN_BUDGET_BYTES}..={MAX_BUDGET_BYTES}")]
    BudgetBytes(usize),
    #[error("memory_budget.bytes {budget} is less than the max_bytes {max_bytes} of route {pattern:?}: its bodies could never be read")]
    BudgetBelowRoute {
        budget: usize,
        pattern: String,
        max_bytes: usize,
    },
    #[error("memory_budget.wait_ms {0} is out of range 0..={MAX_WAIT_MS}")]
    BudgetWait(u32),
    #[error("kv_refresh_seconds {0} is out of range 1..={MAX_KV_REFRESH_SECONDS}")]
    KvRefresh(u32),
    #[error("block_messages.{list}: {problem}")]
    BlockMessage { list: String, problem: String },
    #[error(transparent)]
    Console(#[from] ConsoleConfigError),
    /// The `stored` section (R2 buckets), see [`crate::stored_policy`].
    #[error(transparent)]
    Stored(#[from] crate::stored_policy::StoredError),
    #[error(transparent)]
    FloodGuard(#[from] crate::flood_guard::FloodGuardError),
}

/// What is wrong with one route.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RouteProblem {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("pdq_threshold {0} is out of range 0..={MAX_PDQ_THRESHOLD}")]
    Threshold(u32),
    #[error(
        "lists is empty: name the lists to match (e.g. [\"ncmec\"]) or [\"*\"] for every list"
    )]
    NoLists,
    #[error("lists: {0}")]
    BadList(#[from] ListNameError),
    #[error("lists: \"*\" (every list) cannot be combined with named lists")]
    StarWithOthers,
    #[error("scan is empty: use [\"responses\"], [\"uploads\"] or both (set \"enabled\": false to turn a route off)")]
    EmptyScan,
    #[error("max_bytes {0} is out of range 1..={MAX_MAX_BYTES}")]
    MaxBytes(usize),
    #[error("kv_timeout_ms {0} is out of range 1..={MAX_KV_TIMEOUT_MS}")]
    KvTimeout(u32),
    #[error("notify.webhook: {0}")]
    Webhook(String),
    #[error(transparent)]
    Hygiene(#[from] HygieneProblem),
}

/// What is wrong with the hygiene fields of a route or a stored-content
/// rule (`min_pdq_quality`, `list_distance`, `negative_lists`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HygieneProblem {
    #[error("min_pdq_quality {0} is out of range 0..=100")]
    MinQuality(u32),
    #[error("list_distance.{list}: {distance} is out of range 0..={MAX_PDQ_THRESHOLD}")]
    ListDistance { list: String, distance: u32 },
    #[error("list_distance.{0}: not one of the lists matched against")]
    ListDistanceUnknown(String),
    #[error("negative_lists: {0:?} is also one of the lists matched against")]
    NegativeAlsoListed(String),
    #[error("negative_lists or list_distance: {0}")]
    BadList(#[from] ListNameError),
}

/// The hygiene fields as written, shared by routes and stored-content rules.
#[derive(Debug, Clone, Deserialize)]
pub struct HygieneDoc {
    #[serde(default = "default_min_quality")]
    pub min_pdq_quality: u32,
    #[serde(default)]
    pub list_distance: BTreeMap<String, u32>,
    #[serde(default)]
    pub negative_lists: Vec<String>,
}

impl Default for HygieneDoc {
    fn default() -> Self {
        HygieneDoc {
            min_pdq_quality: default_min_quality(),
            list_distance: BTreeMap::new(),
            negative_lists: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    routes: Vec<RouteDoc>,
    #[serde(default)]
    blocked_by: Option<String>,
    #[serde(default)]
    verdict_cache: Option<CacheDoc>,
    #[serde(default)]
    index: Option<IndexDoc>,
    memory_budget: Option<BudgetDoc>,
    #[serde(default = "default_kv_refresh")]
    kv_refresh_seconds: u32,
    #[serde(default)]
    stored: Vec<crate::stored_policy::StoredDoc>,
    #[serde(default)]
    block_messages: BTreeMap<String, String>,
    #[serde(default)]
    console: Option<ConsoleDoc>,
    evidence: Option<EvidenceDoc>,
    #[serde(default)]
    flood_guard: Option<crate::flood_guard::FloodGuardDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceDoc {
    #[serde(default)]
    headers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDoc {
    #[serde(default)]
    auto: bool,
}

fn default_kv_refresh() -> u32 {
    DEFAULT_KV_REFRESH_SECONDS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetDoc {
    #[serde(default = "default_budget_bytes")]
    bytes: usize,
    #[serde(default = "default_budget_wait")]
    wait_ms: u32,
}

fn default_budget_bytes() -> usize {
    crate::budget::DEFAULT_BUDGET_BYTES
}

fn default_budget_wait() -> u32 {
    crate::budget::DEFAULT_WAIT_MS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheDoc {
    #[serde(default = "default_ttl")]
    ttl_seconds: u32,
    #[serde(default = "default_entries")]
    max_entries: usize,
    #[serde(default = "default_true")]
    shared: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexDoc {
    #[serde(default = "default_refresh")]
    refresh_seconds: u32,
}

fn default_refresh() -> u32 {
    DEFAULT_INDEX_REFRESH_SECONDS
}

fn default_ttl() -> u32 {
    DEFAULT_CACHE_TTL_SECONDS
}

fn default_entries() -> usize {
    DEFAULT_CACHE_ENTRIES
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDoc {
    pattern: String,
    #[serde(default = "yes")]
    enabled: bool,
    action: Action,
    #[serde(default = "default_threshold")]
    pdq_threshold: u32,
    #[serde(default = "default_variants")]
    variants: QuerySet,
    lists: Vec<String>,
    #[serde(default = "default_scan")]
    scan: Vec<ScanTarget>,
    #[serde(default = "default_fail")]
    fail: FailMode,
    #[serde(default = "default_undecodable")]
    undecodable: Undecodable,
    #[serde(default = "default_max_bytes")]
    max_bytes: usize,
    #[serde(default = "default_kv_timeout")]
    kv_timeout_ms: u32,
    #[serde(default)]
    notify: Option<NotifyDoc>,
    #[serde(default)]
    report: Option<ReportDoc>,
    #[serde(default = "default_min_quality")]
    min_pdq_quality: u32,
    #[serde(default)]
    list_distance: BTreeMap<String, u32>,
    #[serde(default)]
    negative_lists: Vec<String>,
}

impl RouteDoc {
    fn hygiene(&self) -> HygieneDoc {
        HygieneDoc {
            min_pdq_quality: self.min_pdq_quality,
            list_distance: self.list_distance.clone(),
            negative_lists: self.negative_lists.clone(),
        }
    }
}

fn default_min_quality() -> u32 {
    u32::from(DEFAULT_MIN_PDQ_QUALITY)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyDoc {
    webhook: String,
}

fn yes() -> bool {
    true
}

fn default_threshold() -> u32 {
    DEFAULT_PDQ_THRESHOLD
}

fn default_variants() -> QuerySet {
    QuerySet::Dihedral
}

fn default_scan() -> Vec<ScanTarget> {
    vec![ScanTarget::Responses]
}

fn default_fail() -> FailMode {
    FailMode::Open
}

fn default_undecodable() -> Undecodable {
    Undecodable::Fail
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

fn default_kv_timeout() -> u32 {
    DEFAULT_KV_TIMEOUT_MS
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        if json.trim().is_empty() {
            return Err(PolicyError::Empty);
        }
        let doc: PolicyDoc =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        let mut routes = Vec::with_capacity(doc.routes.len());
        for (index, raw) in doc.routes.into_iter().enumerate() {
            let pattern_text = raw.pattern.clone();
            let route = validate_route(raw).map_err(|problem| PolicyError::Route {
                index,
                pattern: pattern_text,
                problem,
            })?;
            if let Some(first) = routes
                .iter()
                .position(|r: &Route| r.pattern == route.pattern)
            {
                return Err(PolicyError::DuplicatePattern {
                    pattern: route.pattern.as_str().to_owned(),
                    first,
                    second: index,
                });
            }
            routes.push(route);
        }
        // Stable: among equally specific patterns the first listed wins.
        routes.sort_by(|a, b| a.pattern.cmp_specificity(&b.pattern));

        if let Some(url) = &doc.blocked_by {
            crate::address::check_configured_url(url, false).map_err(PolicyError::BlockedBy)?;
        }
        let cache = match doc.verdict_cache {
            None => CacheSettings {
                ttl_seconds: DEFAULT_CACHE_TTL_SECONDS,
                max_entries: DEFAULT_CACHE_ENTRIES,
                shared: true,
            },
            Some(c) => {
                if c.max_entries == 0 || c.max_entries > MAX_CACHE_ENTRIES {
                    return Err(PolicyError::CacheEntries(c.max_entries));
                }
                CacheSettings {
                    ttl_seconds: c.ttl_seconds,
                    max_entries: c.max_entries,
                    shared: c.shared,
                }
            }
        };
        let refresh_seconds = doc
            .index
            .map_or(DEFAULT_INDEX_REFRESH_SECONDS, |i| i.refresh_seconds);
        if refresh_seconds == 0 || refresh_seconds > MAX_INDEX_REFRESH_SECONDS {
            return Err(PolicyError::IndexRefresh(refresh_seconds));
        }
        let memory = validate_budget(doc.memory_budget, &routes)?;
        if doc.kv_refresh_seconds == 0 || doc.kv_refresh_seconds > MAX_KV_REFRESH_SECONDS {
            return Err(PolicyError::KvRefresh(doc.kv_refresh_seconds));
        }
        for (list, message) in &doc.block_messages {
            check_block_message(list, message).map_err(|problem| PolicyError::BlockMessage {
                list: list.clone(),
                problem,
            })?;
        }
        let console = match doc.console {
            None => None,
            Some(console) => {
                Some(console.validate(|url| crate::address::check_configured_url(url, true))?)
            }
        };
        let mut evidence_headers = Vec::new();
        for name in doc.evidence.map(|e| e.headers).unwrap_or_default() {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(PolicyError::EvidenceHeader(name));
            }
            evidence_headers.push(name.to_ascii_lowercase());
        }
        let stored = crate::stored_policy::StoredPolicy::validate(doc.stored)?;
        let flood_guard = crate::flood_guard::FloodGuard::from_doc(doc.flood_guard)?;
        Ok(Policy {
            stored,
            flood_guard,
            routes,
            blocked_by: doc.blocked_by,
            cache,
            index: IndexSettings { refresh_seconds },
            memory,
            kv_refresh_seconds: doc.kv_refresh_seconds,
            block_messages: doc.block_messages,
            console,
            evidence_headers,
        })
    }

    /// The policy used when the configured one cannot be (missing, invalid,
    /// unreadable) and no earlier one was good: [`SAFE_DEFAULT_POLICY`].
    pub fn safe_default() -> Self {
        match Policy::parse(SAFE_DEFAULT_POLICY) {
            Ok(policy) => policy,
            // A constant that parses (tested); kept total rather than a panic.
            Err(_) => Policy {
                routes: Vec::new(),
                blocked_by: None,
                cache: CacheSettings {
                    ttl_seconds: DEFAULT_CACHE_TTL_SECONDS,
                    max_entries: DEFAULT_CACHE_ENTRIES,
                    shared: true,
                },
                index: IndexSettings {
                    refresh_seconds: DEFAULT_INDEX_REFRESH_SECONDS,
                },
                memory: BudgetSettings::default(),
                kv_refresh_seconds: DEFAULT_KV_REFRESH_SECONDS,
                block_messages: BTreeMap::new(),
                console: None,
                evidence_headers: Vec::new(),
                stored: Default::default(),
                flood_guard: Default::default(),
            },
        }
    }

    /// The most specific route matching the request, enabled or not.
    pub fn route_for(&self, host: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.pattern.matches(host, path))
    }

    /// The route with exactly this pattern (the report consumer finds a
    /// route's webhook by the pattern an event names).
    pub fn route_by_pattern(&self, pattern: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.pattern.as_str() == pattern)
    }

    /// Every route, most specific first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

fn validate_budget(
    doc: Option<BudgetDoc>,
    routes: &[Route],
) -> Result<BudgetSettings, PolicyError> {
    let Some(doc) = doc else {
        return Ok(BudgetSettings::default());
    };
    if !(MIN_BUDGET_BYTES..=MAX_BUDGET_BYTES).contains(&doc.bytes) {
        return Err(PolicyError::BudgetBytes(doc.bytes));
    }
    if doc.wait_ms > MAX_WAIT_MS {
        return Err(PolicyError::BudgetWait(doc.wait_ms));
    }
    if let Some(route) = routes.iter().find(|r| r.max_bytes > doc.bytes) {
        return Err(PolicyError::BudgetBelowRoute {
            budget: doc.bytes,
            pattern: route.pattern.as_str().to_owned(),
            max_bytes: route.max_bytes,
        });
    }
    Ok(BudgetSettings {
        bytes: doc.bytes,
        wait_ms: doc.wait_ms,
    })
}

/// Why a rule's `lists` cannot be used.
#[derive(Debug)]
pub(crate) enum ListsProblem {
    /// No list named.
    None,
    /// `"*"` beside named lists.
    StarWithOthers,
    Name(ListNameError),
}

/// The lists a route or a stored-content rule subscribes to: `["*"]` for
/// every list, or one or more valid names.
pub(crate) fn subscribed_lists(names: &[String]) -> Result<ListFilter, ListsProblem> {
    if names.is_empty() {
        return Err(ListsProblem::None);
    }
    if names.iter().any(|l| l == "*") {
        return if names.len() > 1 {
            Err(ListsProblem::StarWithOthers)
        } else {
            Ok(ListFilter::All)
        };
    }
    let mut valid = BTreeSet::new();
    for name in names {
        valid.insert(validate_list_name(name).map_err(ListsProblem::Name)?);
    }
    Ok(ListFilter::Only(valid))
}

fn validate_route(raw: RouteDoc) -> Result<Route, RouteProblem> {
    let pattern = RoutePattern::parse(&raw.pattern)?;
    if raw.pdq_threshold > MAX_PDQ_THRESHOLD {
        return Err(RouteProblem::Threshold(raw.pdq_threshold));
    }
    let lists = subscribed_lists(&raw.lists).map_err(|problem| match problem {
        ListsProblem::None => RouteProblem::NoLists,
        ListsProblem::StarWithOthers => RouteProblem::StarWithOthers,
        ListsProblem::Name(e) => RouteProblem::BadList(e),
    })?;
    if raw.scan.is_empty() {
        return Err(RouteProblem::EmptyScan);
    }
    if raw.max_bytes == 0 || raw.max_bytes > MAX_MAX_BYTES {
        return Err(RouteProblem::MaxBytes(raw.max_bytes));
    }
    if raw.kv_timeout_ms == 0 || raw.kv_timeout_ms > MAX_KV_TIMEOUT_MS {
        return Err(RouteProblem::KvTimeout(raw.kv_timeout_ms));
    }
    let hygiene = validate_hygiene(&raw.hygiene(), &lists)?;
    let webhook = match raw.notify {
        Some(n) => {
            crate::address::check_configured_url(&n.webhook, true)
                .map_err(RouteProblem::Webhook)?;
            Some(n.webhook)
        }
        None => None,
    };
    Ok(Route {
        pattern,
        enabled: raw.enabled,
        action: raw.action,
        pdq_threshold: raw.pdq_threshold,
        variants: raw.variants,
        lists,
        scan_responses: raw.scan.contains(&ScanTarget::Responses),
        scan_uploads: raw.scan.contains(&ScanTarget::Uploads),
        fail: raw.fail,
        undecodable: raw.undecodable,
        max_bytes: raw.max_bytes,
        kv_timeout_ms: raw.kv_timeout_ms,
        webhook,
        auto_report: raw.report.is_some_and(|r| r.auto),
        hygiene,
    })
}

/// Hygiene fields: quality 0..=100; a distance per list matched against
/// (or a negative list), each 0..=31; negative lists named like lists and
/// not among the lists matched against.
pub fn validate_hygiene(raw: &HygieneDoc, lists: &ListFilter) -> Result<Hygiene, HygieneProblem> {
    let min_pdq_quality = u8::try_from(raw.min_pdq_quality)
        .ok()
        .filter(|q| *q <= 100)
        .ok_or(HygieneProblem::MinQuality(raw.min_pdq_quality))?;
    let mut negative_lists = BTreeSet::new();
    for name in &raw.negative_lists {
        let name = validate_list_name(name)?;
        if matches!(lists, ListFilter::Only(names) if names.contains(&name)) {
            return Err(HygieneProblem::NegativeAlsoListed(name));
        }
        negative_lists.insert(name);
    }
    let mut list_distance = BTreeMap::new();
    for (name, &distance) in &raw.list_distance {
        let name = validate_list_name(name)?;
        if distance > MAX_PDQ_THRESHOLD {
            return Err(HygieneProblem::ListDistance {
                list: name,
                distance,
            });
        }
        if !lists.includes(&name) && !negative_lists.contains(&name) {
            return Err(HygieneProblem::ListDistanceUnknown(name));
        }
        list_distance.insert(name, distance);
    }
    Ok(Hygiene {
        min_pdq_quality,
        list_distance,
        negative_lists,
    })
}

/// Largest `block_messages` sentence, in characters.
pub const MAX_BLOCK_MESSAGE_CHARS: usize = 1000;

fn check_block_message(list: &str, message: &str) -> Result<(), String> {
    validate_list_name(list).map_err(|e| e.to_string())?;
    let chars = message.chars().count();
    if message.trim().is_empty() || chars > MAX_BLOCK_MESSAGE_CHARS {
        return Err(format!(
            "the message has {chars} characters; expected 1..={MAX_BLOCK_MESSAGE_CHARS}"
        ));
    }
    if message.chars().any(|c| c.is_control() && c != '\n') {
        return Err("the message holds a control character (only newlines are allowed)".into());
    }
    Ok(())
}

impl Policy {
    /// The reason a 451 gives for a match on `list`, if the policy sets one.
    pub fn block_message(&self, list: &str) -> Option<&str> {
        self.block_messages.get(list).map(String::as_str)
    }
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The `POLICY` variable holds the JSON itself.
    Inline(String),
    /// `POLICY` is `kv:<key>`: the JSON is in the `HASH_INDEX` namespace
    /// under `<key>` (so it can change without a deploy).
    Kv(String),
}

impl PolicySource {
    /// Reads the `POLICY` variable's value.
    pub fn from_var(value: &str) -> Result<Self, PolicyError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(PolicyError::Empty);
        }
        match value.strip_prefix("kv:") {
            Some(key) if key.trim().is_empty() => Err(PolicyError::Json("kv: names no key".into())),
            Some(key) => Ok(PolicySource::Kv(key.trim().to_owned())),
            None => Ok(PolicySource::Inline(value.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_json(extra: &str) -> String {
        format!(
            r#"{{"routes": [{{"pattern": "example.com/images/*", "action": "block", "lists": ["demo"]{extra}}}]}}"#
        )
    }

    fn problem(json: &str) -> RouteProblem {
        match Policy::parse(json) {
            Err(PolicyError::Route { problem, .. }) => problem,
            other => panic!("expected a route problem, got {other:?}"),
        }
    }

    fn block_message_problem(messages: &str) -> PolicyError {
        Policy::parse(&format!(
            r#"{{"routes": [{{"pattern": "*/*", "action": "block", "lists": ["*"]}}], "block_messages": {messages}}}"#
        ))
        .unwrap_err()
    }

    #[test]
    fn block_messages_per_list() {
        let policy = Policy::parse(
            r#"{"routes": [{"pattern": "*/*", "action": "block", "lists": ["*"]}], "block_messages": {"ncii": "Shared without consent.\nSee our policy."}}"#,
        )
        .unwrap();
        assert_eq!(
            policy.block_message("ncii"),
            Some("Shared without consent.\nSee our policy.")
        );
        assert_eq!(policy.block_message("ncmec"), None);
    }

    #[test]
    fn refuses_a_block_message_for_a_bad_list_name() {
        assert!(matches!(
            block_message_problem(r#"{"a b": "text"}"#),
            PolicyError::BlockMessage { .. }
        ));
    }

    #[test]
    fn refuses_an_empty_or_long_block_message() {
        assert!(matches!(
            block_message_problem(r#"{"ncii": " "}"#),
            PolicyError::BlockMessage { .. }
        ));
        let long = "x".repeat(MAX_BLOCK_MESSAGE_CHARS + 1);
        assert!(matches!(
            block_message_problem(&format!(r#"{{"ncii": "{long}"}}"#)),
            PolicyError::BlockMessage { .. }
        ));
    }

    #[test]
    fn refuses_control_characters_in_a_block_message() {
        assert!(matches!(
            block_message_problem(r#"{"ncii": "a\u001b[31mb"}"#),
            PolicyError::BlockMessage { .. }
        ));
    }

    #[test]
    fn hygiene_fields_and_their_defaults() {
        let policy = Policy::parse(&route_json("")).unwrap();
        assert_eq!(policy.routes()[0].hygiene, Hygiene::default());
        let policy = Policy::parse(&route_json(
            r#", "min_pdq_quality": 0, "list_distance": {"demo": 12, "stock": 4}, "negative_lists": ["stock"]"#,
        ))
        .unwrap();
        let hygiene = &policy.routes()[0].hygiene;
        assert_eq!(hygiene.min_pdq_quality, 0);
        assert_eq!(hygiene.list_distance["demo"], 12);
        assert!(hygiene.negative_lists.contains("stock"));
        assert_ne!(
            policy.routes()[0].verdict_key(),
            Policy::parse(&route_json("")).unwrap().routes()[0].verdict_key()
        );
    }

    #[test]
    fn refuses_a_quality_out_of_range() {
        assert_eq!(
            problem(&route_json(r#", "min_pdq_quality": 101"#)),
            RouteProblem::Hygiene(HygieneProblem::MinQuality(101))
        );
    }

    #[test]
    fn refuses_a_list_distance_out_of_range() {
        assert_eq!(
            problem(&route_json(r#", "list_distance": {"demo": 32}"#)),
            RouteProblem::Hygiene(HygieneProblem::ListDistance {
                list: "demo".into(),
                distance: 32
            })
        );
    }

    #[test]
    fn refuses_a_list_distance_for_a_list_the_route_does_not_use() {
        assert_eq!(
            problem(&route_json(r#", "list_distance": {"other": 3}"#)),
            RouteProblem::Hygiene(HygieneProblem::ListDistanceUnknown("other".into()))
        );
    }

    #[test]
    fn refuses_a_negative_list_that_is_also_listed() {
        assert_eq!(
            problem(&route_json(r#", "negative_lists": ["demo"]"#)),
            RouteProblem::Hygiene(HygieneProblem::NegativeAlsoListed("demo".into()))
        );
    }

    #[test]
    fn refuses_a_badly_named_negative_list() {
        assert!(matches!(
            problem(&route_json(r#", "negative_lists": ["a b"]"#)),
            RouteProblem::Hygiene(HygieneProblem::BadList(_))
        ));
    }

    #[test]
    fn defaults() {
        let policy = Policy::parse(&route_json("")).unwrap();
        let route = &policy.routes()[0];
        assert!(route.enabled);
        assert_eq!(route.action, Action::Block);
        assert_eq!(route.pdq_threshold, 31);
        assert!(route.scan_responses && !route.scan_uploads);
        assert_eq!(route.fail, FailMode::Open);
        assert_eq!(route.undecodable, Undecodable::Fail);
        assert_eq!(route.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(route.kv_timeout_ms, DEFAULT_KV_TIMEOUT_MS);
        assert_eq!(route.webhook, None);
        assert!(!route.auto_report, "reports wait for a person by default");
        assert_eq!(policy.cache.ttl_seconds, DEFAULT_CACHE_TTL_SECONDS);
        assert_eq!(route.variants, QuerySet::Dihedral);
        assert_eq!(route.verdict_key(), "t31:d:demo");
    }

    #[test]
    fn full_route() {
        let policy = Policy::parse(&route_json(
            r#", "enabled": false, "pdq_threshold": 10, "variants": "all", "scan": ["uploads", "responses"], "fail": "closed",
               "undecodable": "pass", "max_bytes": 1000, "kv_timeout_ms": 250, "notify": {"webhook": "https://ops.example.com/hook"}"#,
        ))
        .unwrap();
        let route = &policy.routes()[0];
        assert!(!route.enabled);
        assert_eq!(route.pdq_threshold, 10);
        assert_eq!(route.variants, QuerySet::All);
        assert_eq!(route.verdict_key(), "t10:a:demo");
        assert!(route.scan_responses && route.scan_uploads);
        assert_eq!(route.fail, FailMode::Closed);
        assert_eq!(route.undecodable, Undecodable::Pass);
        assert_eq!(route.max_bytes, 1000);
        assert_eq!(route.kv_timeout_ms, 250);
        assert_eq!(
            route.webhook.as_deref(),
            Some("https://ops.example.com/hook")
        );
    }

    #[test]
    fn memory_budget() {
        let policy = Policy::parse(&route_json("")).unwrap();
        assert_eq!(policy.memory, BudgetSettings::default());
        let with = |budget: &str| {
            Policy::parse(&format!(
                r#"{{"routes": [{{"pattern": "a.com/*", "action": "block", "lists": ["x"], "max_bytes": 2097152}}], "memory_budget": {budget}}}"#
            ))
        };
        let policy = with(r#"{"bytes": 4194304, "wait_ms": 0}"#).unwrap();
        assert_eq!(
            policy.memory,
            BudgetSettings {
                bytes: 4 << 20,
                wait_ms: 0
            }
        );
        assert_eq!(
            with(r#"{"bytes": 1000}"#),
            Err(PolicyError::BudgetBytes(1000))
        );
        assert_eq!(
            with(r#"{"bytes": 1048576}"#),
            Err(PolicyError::BudgetBelowRoute {
                budget: 1 << 20,
                pattern: "a.com/*".into(),
                max_bytes: 2 << 20
            })
        );
        assert_eq!(
            with(r#"{"wait_ms": 30001}"#),
            Err(PolicyError::BudgetWait(30_001))
        );
        assert!(with(r#"{"byte": 1}"#).is_err());
    }

    #[test]
    fn kv_refresh() {
        assert_eq!(
            Policy::parse(&route_json("")).unwrap().kv_refresh_seconds,
            DEFAULT_KV_REFRESH_SECONDS
        );
        let with =
            |n: u32| Policy::parse(&format!(r#"{{"routes": [], "kv_refresh_seconds": {n}}}"#));
        assert_eq!(with(5).unwrap().kv_refresh_seconds, 5);
        assert_eq!(with(0), Err(PolicyError::KvRefresh(0)));
        assert_eq!(with(3601), Err(PolicyError::KvRefresh(3601)));
    }

    #[test]
    fn the_safe_default_scans_everything_and_fails_closed() {
        let policy = Policy::safe_default();
        let route = &policy.routes()[0];
        assert_eq!(route.pattern.as_str(), "*/*");
        assert!(route.enabled && route.scan_responses && route.scan_uploads);
        assert_eq!(route.action, Action::Block);
        assert_eq!(route.fail, FailMode::Closed);
        assert_eq!(route.lists, ListFilter::All);
    }

    #[test]
    fn rejects_unknown_fields_with_their_name() {
        let err = Policy::parse(&route_json(r#", "treshold": 3"#)).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Json(m) if m.contains("unknown field `treshold`")),
            "{err}"
        );
        let err = Policy::parse(r#"{"routes": [], "route": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `route`"), "{err}");
        let err = Policy::parse(r#"{"routes": [], "verdict_cache": {"ttl": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `ttl`"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(
            problem(&route_json(r#", "pdq_threshold": 32"#)),
            RouteProblem::Threshold(32)
        );
        assert!(matches!(
            Policy::parse(&route_json(r#", "pdq_threshold": -1"#)),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            Policy::parse(&route_json(r#", "action": "delete""#)),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            Policy::parse(&route_json(r#", "fail": "maybe""#)),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            Policy::parse(&route_json(r#", "undecodable": "skip""#)),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            Policy::parse(&route_json(r#", "variants": "some""#)),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            Policy::parse(&route_json(r#", "scan": ["requests"]"#)),
            Err(PolicyError::Json(_))
        ));
        assert_eq!(
            problem(&route_json(r#", "scan": []"#)),
            RouteProblem::EmptyScan
        );
        assert_eq!(
            problem(&route_json(r#", "max_bytes": 0"#)),
            RouteProblem::MaxBytes(0)
        );
        assert_eq!(
            problem(&route_json(r#", "max_bytes": 26214401"#)),
            RouteProblem::MaxBytes(MAX_MAX_BYTES + 1)
        );
        assert_eq!(
            problem(&route_json(r#", "kv_timeout_ms": 0"#)),
            RouteProblem::KvTimeout(0)
        );
        assert_eq!(
            problem(&route_json(r#", "kv_timeout_ms": 30001"#)),
            RouteProblem::KvTimeout(MAX_KV_TIMEOUT_MS + 1)
        );
        assert!(matches!(
            problem(&route_json(r#", "notify": {"webhook": "http://ops.example.com/"}"#)),
            RouteProblem::Webhook(m) if m.contains("https")
        ));
        assert!(matches!(
            problem(&route_json(r#", "notify": {"webhook": "ops.example.com"}"#)),
            RouteProblem::Webhook(_)
        ));
        assert!(Policy::parse(&route_json(
            r#", "notify": {"webhook": "http://127.0.0.1:9/x"}"#
        ))
        .is_ok());
    }

    #[test]
    fn rejects_bad_lists_and_patterns() {
        let no_lists = r#"{"routes": [{"pattern": "a.com/*", "action": "flag", "lists": []}]}"#;
        assert_eq!(problem(no_lists), RouteProblem::NoLists);
        let star = r#"{"routes": [{"pattern": "a.com/*", "action": "flag", "lists": ["*", "x"]}]}"#;
        assert_eq!(problem(star), RouteProblem::StarWithOthers);
        let bad = r#"{"routes": [{"pattern": "a.com/*", "action": "flag", "lists": ["n c"]}]}"#;
        assert!(matches!(problem(bad), RouteProblem::BadList(_)));
        let missing_lists = r#"{"routes": [{"pattern": "a.com/*", "action": "flag"}]}"#;
        assert!(Policy::parse(missing_lists)
            .unwrap_err()
            .to_string()
            .contains("missing field `lists`"));
        let pattern = r#"{"routes": [{"pattern": "*", "action": "flag", "lists": ["*"]}]}"#;
        let err = Policy::parse(pattern).unwrap_err();
        assert!(matches!(
            &err,
            PolicyError::Route {
                index: 0,
                problem: RouteProblem::Pattern(_),
                ..
            }
        ));
        assert!(err.to_string().contains("*/*"), "{err}");
        let dup = r#"{"routes": [{"pattern": "a.com/*", "action": "flag", "lists": ["*"]},
                                {"pattern": "a.com/*", "action": "block", "lists": ["*"]}]}"#;
        assert!(matches!(
            Policy::parse(dup),
            Err(PolicyError::DuplicatePattern {
                first: 0,
                second: 1,
                ..
            })
        ));
        assert_eq!(Policy::parse("  "), Err(PolicyError::Empty));
        assert!(matches!(Policy::parse("{"), Err(PolicyError::Json(_))));
        assert!(matches!(
            Policy::parse(r#"{"routes": [], "verdict_cache": {"max_entries": 0}}"#),
            Err(PolicyError::CacheEntries(0))
        ));
        assert!(matches!(
            Policy::parse(r#"{"routes": [], "blocked_by": "nope"}"#),
            Err(PolicyError::BlockedBy(_))
        ));
    }

    #[test]
    fn most_specific_route_wins() {
        let policy = Policy::parse(
            r#"{"routes": [
                {"pattern": "*/*", "action": "flag", "lists": ["*"]},
                {"pattern": "example.com/images/*", "action": "block", "lists": ["demo"]},
                {"pattern": "example.com/images/public/*", "enabled": false, "action": "block", "lists": ["demo"]}
            ]}"#,
        )
        .unwrap();
        let at = |host, path| policy.route_for(host, path).map(|r| r.pattern.as_str());
        assert_eq!(
            at("example.com", "/images/a.jpg"),
            Some("example.com/images/*")
        );
        assert_eq!(
            at("example.com", "/images/public/a.jpg"),
            Some("example.com/images/public/*")
        );
        assert_eq!(at("other.org", "/x"), Some("*/*"));
        assert_eq!(
            policy.route_by_pattern("*/*").map(|r| r.action),
            Some(Action::Flag)
        );
        let only = Policy::parse(
            r#"{"routes": [{"pattern": "a.com/*", "action": "flag", "lists": ["x"]}]}"#,
        )
        .unwrap();
        assert!(only.route_for("b.com", "/").is_none());
    }

    #[test]
    fn policy_source() {
        assert_eq!(
            PolicySource::from_var(" kv:config/policy "),
            Ok(PolicySource::Kv("config/policy".into()))
        );
        assert!(matches!(
            PolicySource::from_var("{}"),
            Ok(PolicySource::Inline(_))
        ));
        assert_eq!(PolicySource::from_var(""), Err(PolicyError::Empty));
        assert!(PolicySource::from_var("kv:").is_err());
    }

    #[test]
    fn evidence_headers_and_auto_reports() {
        let policy = Policy::parse(
            r#"{"routes": [{"pattern": "a.com/*", "action": "block", "lists": ["*"], "report": {"auto": true}}],
                "evidence": {"headers": ["X-Account-Id"]}}"#,
        )
        .unwrap();
        assert!(policy.routes[0].auto_report);
        assert_eq!(policy.evidence_headers, ["x-account-id"]);
        let bad = Policy::parse(
            r#"{"routes": [{"pattern": "a.com/*", "action": "block", "lists": ["*"]}], "evidence": {"headers": ["a b"]}}"#,
        );
        assert!(matches!(bad, Err(PolicyError::EvidenceHeader(_))));
    }
}
