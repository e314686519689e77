//! `hashgate hash`: one JSON line per input, in input order, computed on all
//! cores. A failing input gets an `error` line; the others still run and the
//! exit status says something failed.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hashgate::variants::{VariantHash, VariantOptions};
use hashgate::{hash_image, DecodeOptions, HashOptions, ImageHashes, Reduction};
use rayon::prelude::*;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Also print the 8 dihedral PDQ hashes (orig, rot90, rot180, rot270,
    /// flipx, flipy, flipp, flipm).
    #[arg(long)]
    dihedral: bool,
    /// Also print the extra query hashes that catch altered copies: derived
    /// and pixel rotations/mirrors, and the content inside added borders.
    #[arg(long)]
    variants: bool,
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
        HashOptions {
            decode: DecodeOptions {
                reduction: if self.full { Reduction::Full } else { Reduction::DEFAULT },
                apply_exif: self.exif,
                ..DecodeOptions::default()
            },
            dihedral: self.dihedral,
            variants: if self.variants { VariantOptions::ALL } else { VariantOptions::NONE },
        }
    }
}

/// One output line.
#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Hashed {
        file: &'a str,
        width: u32,
        height: u32,
        pdq: String,
        quality: u8,
        md5: String,
        sha1: String,
        sha256: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        dihedral: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        variants: Vec<VariantHash>,
    },
    Failed {
        file: &'a str,
        error: String,
    },
}

impl<'a> Line<'a> {
    fn hashed(file: &'a str, h: ImageHashes) -> Self {
        Line::Hashed {
            file,
            width: h.width,
            height: h.height,
            pdq: h.pdq.to_string(),
            quality: h.quality,
            md5: h.md5.to_string(),
            sha1: h.sha1.to_string(),
            sha256: h.sha256.to_string(),
            dihedral: h.dihedral.map(|all| all.iter().map(ToString::to_string).collect()),
            variants: h.variants,
        }
    }
}

fn read_input(path: &PathBuf) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

pub fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    let options = args.options();
    let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let results: Vec<Result<ImageHashes, String>> = args
        .files
        .par_iter()
        .map(|path| {
            let bytes = read_input(path).map_err(|e| format!("cannot read: {e}"))?;
            hash_image(&bytes, &options).map_err(|e| e.to_string())
        })
        .collect();
    let mut failures = 0usize;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for (name, result) in names.iter().zip(results) {
        let line = match result {
            Ok(hashes) => Line::hashed(name, hashes),
            Err(error) => {
                failures += 1;
                Line::Failed { file: name, error }
            }
        };
        serde_json::to_writer(&mut out, &line).context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    out.flush().context("writing output")?;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
