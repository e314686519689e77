//! `hashgate`: the native command line. Thin: parsing and output here, all
//! hashing and matching in the library.

mod evidence_cmd;
mod exit;
mod hash_cmd;
mod index_cmd;
mod lines;
mod list_input;
mod match_cmd;
mod matching;
mod overrides_cmd;
mod report_cmd;
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
    /// CyberTipline report documents.
    #[command(subcommand)]
    Report(report_cmd::ReportCommand),
    /// Evidence objects from the worker's EVIDENCE bucket.
    #[command(subcommand)]
    Evidence(evidence_cmd::EvidenceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        die_quietly_on_a_closed_pipe();
    }
    let result = match cli.command {
        Command::Hash(args) => hash_cmd::run(args),
        Command::Index(command) => index_cmd::run(command),
        Command::Match(args) => match_cmd::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(command) => report_cmd::run(command),
        Command::Evidence(command) => evidence_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hashgate: {error:#}");
            ExitCode::from(exit::CANNOT_RUN)
        }
    }
}

/// Output piped into a reader that stops early (`hashgate index build |
/// head`) ends the command as it ends `cat`: by SIGPIPE, silently, instead
/// of a panic in `println!` (Rust ignores SIGPIPE by default). Not for
/// `serve`, whose sockets report a closed peer as an error instead.
fn die_quietly_on_a_closed_pipe() {
    // SAFETY: restoring the default disposition of one signal, before any
    // thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
