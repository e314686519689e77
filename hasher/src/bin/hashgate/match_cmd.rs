//! `hashgate match`: look images or hashes up in a built index, one JSON
//! line per query. It plans every query, reads the keys they need from the
//! local index file in one pass, and resolves with the same library code the
//! worker runs against Workers KV.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hashgate::index::{ExactDigest, ListFilter, Match, MatchedBy, Query, QueryPlan, MAX_PDQ_THRESHOLD};
use hashgate::variants::VariantOptions;
use hashgate::{hash_image, HashOptions, Md5Digest, PdqHash, Sha1Digest, Sha256Digest, Vec72};
use serde::Serialize;

use crate::index_store::RecordReader;

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Directory made by `hashgate index build`.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Largest PDQ Hamming distance that matches.
    #[arg(long, default_value_t = 31, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PDQ_THRESHOLD)))]
    threshold: u32,
    /// Only these lists (comma-separated); all lists by default.
    #[arg(long, value_delimiter = ',', value_name = "LIST,...")]
    lists: Vec<String>,
    /// For image files, match at least the 8 rotations and mirrors (they are
    /// part of the default query set too; with --no-variants, only these).
    #[arg(long)]
    dihedral: bool,
    /// For image files, query with the image's own PDQ hash only (plus the
    /// 8 orientations with --dihedral), not the whole query set (rotations,
    /// mirrors, content inside added borders).
    #[arg(long)]
    no_variants: bool,
    /// Largest squared distance that matches a --vec72 hash. The default sits
    /// between an altered copy (about 5,000) and unrelated images (about
    /// 700,000) in Cloudflare's published examples.
    #[arg(long, default_value_t = 50_000)]
    vec72_threshold: u32,
    /// A PDQ hash (64 hex digits) to look up.
    #[arg(long, value_name = "HEX")]
    pdq: Vec<PdqHash>,
    /// An MD5 digest to look up.
    #[arg(long, value_name = "HEX")]
    md5: Vec<Md5Digest>,
    /// A SHA-1 digest to look up.
    #[arg(long, value_name = "HEX")]
    sha1: Vec<Sha1Digest>,
    /// A SHA-256 digest to look up.
    #[arg(long, value_name = "HEX")]
    sha256: Vec<Sha256Digest>,
    /// A vec72 hash (144 hex digits) to look up.
    #[arg(long, value_name = "HEX")]
    vec72: Vec<Vec72>,
    /// Image files: their PDQ hash and exact digests are looked up. Output
    /// lines come in this order: files, then --pdq, --md5, --sha1, --sha256
    /// and --vec72 values, each named in its `query` field.
    files: Vec<PathBuf>,
}

/// One output line.
#[derive(Serialize)]
#[serde(untagged)]
enum Line {
    Matched {
        query: String,
        matches: Vec<MatchLine>,
    },
    Failed {
        query: String,
        error: String,
    },
}

#[derive(Serialize)]
struct MatchLine {
    list: String,
    #[serde(rename = "type")]
    kind: String,
    hash: String,
    distance: u32,
    id: Option<String>,
    /// Which of the image's query hashes matched (`orig`, `rot90`,
    /// `pixels-flipx`, `trimmed`, ...), for PDQ matches of image files.
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl From<Match> for MatchLine {
    fn from(m: Match) -> Self {
        MatchLine {
            list: m.list,
            kind: m.kind.to_string(),
            hash: m.hash.to_string(),
            distance: m.distance,
            id: m.id,
            variant: None,
        }
    }
}

pub fn run(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let lists = if args.lists.is_empty() {
        ListFilter::All
    } else {
        ListFilter::Only(
            args.lists
                .iter()
                .map(|l| l.trim().to_owned())
                .collect::<BTreeSet<_>>(),
        )
    };
    let base = Query {
        pdq_threshold: args.threshold,
        vec72_threshold: args.vec72_threshold,
        lists: lists.clone(),
        ..Query::default()
    };

    // Queries in order: files, then --pdq, --md5, --sha1, --sha256, --vec72.
    let mut queries: Vec<(String, Result<Query, String>)> = Vec::new();
    // For image files: the label of each PDQ query hash, in query order.
    let mut labels: Vec<Vec<String>> = Vec::new();
    let options = HashOptions {
        dihedral: args.dihedral,
        variants: if args.no_variants { VariantOptions::NONE } else { VariantOptions::ALL },
        ..HashOptions::default()
    };
    for path in &args.files {
        let hashes = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| hash_image(&bytes, &options).map_err(|e| e.to_string()));
        labels.push(match &hashes {
            Ok(hashes) => hashes.query_pdq().iter().map(|(variant, _)| variant.to_string()).collect(),
            Err(_) => Vec::new(),
        });
        let query = hashes.map(|hashes| Query {
            vec72_threshold: args.vec72_threshold,
            ..Query::for_image(&hashes, args.threshold, lists.clone())
        });
        queries.push((path.display().to_string(), query));
    }
    let with = |f: &dyn Fn(&mut Query)| {
        let mut query = base.clone();
        f(&mut query);
        Ok(query)
    };
    for hash in &args.pdq {
        queries.push((format!("pdq:{hash}"), with(&|q| q.pdq = vec![*hash])));
    }
    for hash in &args.md5 {
        queries.push((
            format!("md5:{hash}"),
            with(&|q| q.exact = vec![ExactDigest::Md5(*hash)]),
        ));
    }
    for hash in &args.sha1 {
        queries.push((
            format!("sha1:{hash}"),
            with(&|q| q.exact = vec![ExactDigest::Sha1(*hash)]),
        ));
    }
    for hash in &args.sha256 {
        queries.push((
            format!("sha256:{hash}"),
            with(&|q| q.exact = vec![ExactDigest::Sha256(*hash)]),
        ));
    }
    for hash in &args.vec72 {
        queries.push((format!("vec72:{hash}"), with(&|q| q.vec72 = Some(*hash))));
    }
    if queries.is_empty() {
        anyhow::bail!("nothing to match: give image files or --pdq/--md5/--sha1/--sha256/--vec72");
    }

    let plans: Vec<Result<QueryPlan, String>> = queries
        .iter()
        .map(|(_, query)| {
            let query = query.as_ref().map_err(Clone::clone)?;
            QueryPlan::new(query).map_err(|e| e.to_string())
        })
        .collect();
    let wanted: HashSet<&str> = plans
        .iter()
        .flatten()
        .flat_map(|plan| plan.keys().iter().map(String::as_str))
        .collect();
    let values = read_values(&args.index, &wanted)?;

    let mut failures = 0usize;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for (index, ((name, _), plan)) in queries.into_iter().zip(plans).enumerate() {
        let label_of = |m: &Match| match m.matched_by {
            MatchedBy::Pdq(i) => labels.get(index).and_then(|l| l.get(i)).cloned(),
            _ => None,
        };
        let resolved = plan.and_then(|plan| {
            plan.resolve(|key| values.get(key).map(|v| v.as_bytes()))
                .map_err(|e| e.to_string())
        });
        let line = match resolved {
            Ok(matches) => Line::Matched {
                query: name,
                matches: matches
                    .into_iter()
                    .map(|m| {
                        let variant = label_of(&m);
                        MatchLine { variant, ..MatchLine::from(m) }
                    })
                    .collect(),
            },
            Err(error) => {
                failures += 1;
                Line::Failed { query: name, error }
            }
        };
        serde_json::to_writer(&mut out, &line).context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    out.flush().context("writing output")?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One pass over the local index file, keeping the values of `wanted` keys.
fn read_values(
    dir: &std::path::Path,
    wanted: &HashSet<&str>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut reader = RecordReader::open(dir)?;
    let mut values = HashMap::new();
    while let Some((key, value)) = reader.next_record()? {
        if wanted.contains(key.as_str()) {
            values.insert(key, value);
        }
    }
    Ok(values)
}
