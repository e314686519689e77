//! `hashgate match`: look images or hashes up in a built index, one JSON
//! line per query, answered in memory by the same library code the worker
//! runs ([`hashgate::index::ResidentIndex`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hashgate::index::{Query, TypedHash};
use hashgate::{hash_image, ImageHashes, Md5Digest, PdqHash, Sha1Digest, Sha256Digest, Vec72};

use crate::exit::Outcome;
use crate::hash_cmd::read_input;
use crate::lines::{print_lines, MatchOutput};
use crate::matching::MatchFlags;
use hashgate::matching::MatchRecord;
use hashgate::matching::{check_lists, MatchSettings, MemoryIndex};

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Directory made by `hashgate index build`.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    #[command(flatten)]
    matching: MatchFlags,
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

impl MatchArgs {
    fn settings(&self) -> MatchSettings {
        self.matching.settings()
    }
}

pub fn run(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings();

    // Queries in order: files, then --pdq, --md5, --sha1, --sha256, --vec72.
    let mut queries: Vec<(String, Result<Query, String>)> = Vec::new();
    // For image files: their hashes, to label matches with the variant.
    let mut images: Vec<Option<ImageHashes>> = Vec::new();
    let options = settings.hash_options();
    for path in &args.files {
        let hashes = read_input(path, options.decode.limits.max_input_bytes)
            .and_then(|bytes| hash_image(&bytes, &options).map_err(|e| e.to_string()));
        let query = hashes
            .as_ref()
            .map(|h| settings.image_query(h))
            .map_err(Clone::clone);
        images.push(hashes.ok());
        queries.push((path.display().to_string(), query));
    }
    let typed = (args.pdq.iter().copied().map(TypedHash::Pdq))
        .chain(args.md5.iter().copied().map(TypedHash::Md5))
        .chain(args.sha1.iter().copied().map(TypedHash::Sha1))
        .chain(args.sha256.iter().copied().map(TypedHash::Sha256))
        .chain(args.vec72.iter().copied().map(TypedHash::Vec72));
    for hash in typed {
        queries.push((
            format!("{}:{hash}", hash.kind()),
            Ok(settings.hash_query(hash)),
        ));
    }
    if queries.is_empty() {
        anyhow::bail!("nothing to match: give image files or --pdq/--md5/--sha1/--sha256/--vec72");
    }

    let index = MemoryIndex::load(&args.index)?;
    check_lists(&settings.lists, &index.list_names())?;
    print_lines(queries.into_iter().enumerate().map(|(i, (name, query))| {
        let image = images.get(i).and_then(Option::as_ref);
        let resolved = query
            .and_then(|query| index.find(&query))
            .map(|matches| settings.apply_hygiene(matches, image));
        match resolved {
            Ok(matches) => {
                let matches = match images.get(i) {
                    Some(Some(hashes)) => MatchRecord::for_image(hashes, matches),
                    _ => matches.into_iter().map(MatchRecord::from).collect(),
                };
                (
                    MatchOutput::Matched {
                        query: name,
                        matches,
                    },
                    Outcome::Done,
                )
            }
            Err(error) => (MatchOutput::Failed { query: name, error }, Outcome::Failed),
        }
    }))
}
