//! `hashgate report build`: validates and writes the CyberTipline report
//! document for an incident offline, with the same code the worker's
//! reporting job submits with ([`hashgate::cybertip`]). Inputs are JSON as
//! the worker keeps them: the `REPORTS` record
//! (`npx wrangler kv key get --binding REPORTS "report/v1/<sha256>/<route id>"`),
//! the reporting configuration (the `REPORTING` variable), and optionally
//! decrypted sighting manifests (`hashgate evidence get`).

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hashgate::cybertip::{report_xml, Incident, ReportingConfig};
use hashgate::evidence::Manifest;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Build (and validate) the <report> document of an incident.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The incident's record (JSON, as in the REPORTS namespace).
    #[arg(long)]
    record: PathBuf,
    /// The reporting configuration (JSON, as the REPORTING variable).
    #[arg(long)]
    config: PathBuf,
    /// Sighting manifests (JSON), oldest first.
    #[arg(long = "manifest")]
    manifests: Vec<PathBuf>,
    /// Where to write the document (default: standard output).
    #[arg(short, long)]
    out: Option<PathBuf>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf, what: &str) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{what} {}", path.display()))
}

pub fn run(command: ReportCommand) -> Result<ExitCode> {
    match command {
        ReportCommand::Build(args) => {
            let incident: Incident = read_json(&args.record, "record")?;
            let config: ReportingConfig = read_json(&args.config, "configuration")?;
            let mut sightings: Vec<Manifest> = args
                .manifests
                .iter()
                .map(|p| read_json(p, "manifest"))
                .collect::<Result<_>>()?;
            sightings.sort_by_key(|m| m.time_ms);
            let xml = report_xml(&incident, &sightings, &config).context("the report")?;
            match args.out {
                Some(path) => {
                    fs::write(&path, xml).with_context(|| format!("writing {}", path.display()))?
                }
                None => print!("{xml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
