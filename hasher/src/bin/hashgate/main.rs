//! `hashgate`: the native command line. Thin: parsing and output here, all
//! hashing and matching in the library.

mod hash_cmd;
mod index_cmd;
mod index_store;
mod lines;
mod list_input;
mod match_cmd;
mod matching;
mod overrides_cmd;
mod scan;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hash images with PDQ and exact digests, build hash indexes, match and scan.
#[derive(Debug, Parser)]
#[command(name = "hashgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print PDQ, quality and MD5/SHA-1/SHA-256 of images, one JSON line each.
    Hash(hash_cmd::HashArgs),
    /// Build the Workers KV hash index from hash lists, or diff two builds.
    #[command(subcommand)]
    Index(index_cmd::IndexCommand),
    /// Look images or hashes up in a built index, one JSON line per query.
    Match(match_cmd::MatchArgs),
    /// Walk files and folders, hash every image and report the ones an
    /// index matches, one JSON line each.
    Scan(scan::ScanArgs),
    /// Serve /v1/hash, /v1/match, /healthz and /metrics over HTTP.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hash(args) => hash_cmd::run(args),
        Command::Index(command) => index_cmd::run(command),
        Command::Match(args) => match_cmd::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hashgate: {error:#}");
            ExitCode::from(2)
        }
    }
}
