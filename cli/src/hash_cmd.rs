//! `hashgate hash`: one JSON line per input, in input order, computed on all
//! cores. A failing input gets an `error` line; the others still run and the
//! exit status says something failed.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hashgate::{hash_image, DecodeOptions, HashOptions, ImageHashes, QuerySet, Reduction};
use rayon::prelude::*;
use serde::Serialize;

use crate::exit::Outcome;
use crate::lines::{print_lines, HashLine};

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Also print the 8 dihedral PDQ hashes (orig, rot90, rot180, rot270,
    /// flipx, flipy, flipp, flipm).
    #[arg(long)]
    dihedral: bool,
    /// Also print the extra query hashes of this query set, that catch
    /// altered copies: none (own), the derived rotations and mirrors
    /// (dihedral), those, the pixel rotations and mirrors and the content
    /// inside added borders (all).
    #[arg(long, value_name = "own|dihedral|all", default_value_t = QuerySet::Own)]
    variants: QuerySet,
    /// Apply the EXIF orientation before hashing (the reference does not).
    #[arg(long)]
    exif: bool,
    /// Decode every pixel instead of decoding large images at reduced scale
    /// (slower; identical to the reference pipeline's decode).
    #[arg(long)]
    full: bool,
    /// Image files; `-` reads one image from standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl HashArgs {
    fn options(&self) -> HashOptions {
        hash_options(self.dihedral, self.variants, self.exif, self.full)
    }
}

/// What `--dihedral`, `--variants`, `--exif` and `--full` ask for (also the
/// `/v1/hash` parameters of `hashgate serve`).
pub fn hash_options(dihedral: bool, variants: QuerySet, exif: bool, full: bool) -> HashOptions {
    let decode = DecodeOptions {
        reduction: if full {
            Reduction::Full
        } else {
            Reduction::DEFAULT
        },
        apply_exif: exif,
        ..DecodeOptions::default()
    };
    HashOptions {
        dihedral,
        ..HashOptions::for_query(variants, decode)
    }
}

/// One output line.
#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Hashed(HashLine<'a>),
    Failed { file: &'a str, error: String },
}

/// Reads one input (`-` for standard input), holding at most one byte more
/// than `limit`: a larger input is refused by the hasher's input limit
/// without being read whole. A file's size is checked before reading.
pub fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let cannot = |e: io::Error| format!("cannot read: {e}");
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        return Ok(bytes);
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    if len > limit as u64 {
        return Err(format!(
            "input is {len} bytes, over the limit of {limit} bytes"
        ));
    }
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

pub fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    let options = args.options();
    let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let results: Vec<Result<ImageHashes, String>> = args
        .files
        .par_iter()
        .map(|path| {
            let bytes = read_input(path, options.decode.limits.max_input_bytes)?;
            hash_image(&bytes, &options).map_err(|e| e.to_string())
        })
        .collect();
    print_lines(
        names
            .iter()
            .zip(results)
            .map(|(name, result)| match result {
                Ok(hashes) => (Line::Hashed(HashLine::new(name, &hashes)), Outcome::Done),
                Err(error) => (Line::Failed { file: name, error }, Outcome::Failed),
            }),
    )
}
