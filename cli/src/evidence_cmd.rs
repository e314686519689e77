//! `hashgate evidence get`: decrypts an evidence object (as kept in the
//! worker's `EVIDENCE` R2 bucket, e.g. fetched with
//! `npx wrangler r2 object get hashgate-evidence/evidence/v1/<sha256>/object --file obj`)
//! to a file, with the operator's key, and checks the plaintext's SHA-256
//! against the object's header (and the name it was asked for).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use hashgate::evidence::{parse_key, Envelope};
use sha2::{Digest, Sha256};

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Decrypt an evidence object to a file and check its digest.
    Get(GetArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The evidence object (bytes as stored in R2).
    object: PathBuf,
    /// Where to write the plaintext (`-`: standard output).
    #[arg(short, long)]
    out: PathBuf,
    /// A file holding the key: base64 of 32 bytes, as set with
    /// `wrangler secret put EVIDENCE_KEY` (or EVIDENCE_KEY_<ID> for a retired one).
    #[arg(long, conflicts_with = "key_env")]
    key_file: Option<PathBuf>,
    /// An environment variable holding the key (default EVIDENCE_KEY).
    #[arg(long)]
    key_env: Option<String>,
    /// The key's id; refused if the object names another (default: not checked).
    #[arg(long)]
    key_id: Option<String>,
    /// The SHA-256 the plaintext must have (e.g. from the object's key).
    #[arg(long)]
    sha256: Option<String>,
}

pub fn run(command: EvidenceCommand) -> Result<ExitCode> {
    match command {
        EvidenceCommand::Get(args) => get(args),
    }
}

fn get(args: GetArgs) -> Result<ExitCode> {
    let object =
        fs::read(&args.object).with_context(|| format!("reading {}", args.object.display()))?;
    let envelope = Envelope::parse(&object)
        .with_context(|| format!("{} is not an evidence object", args.object.display()))?;
    let header = &envelope.header;
    if let Some(id) = &args.key_id {
        if id != &header.key_id {
            bail!(
                "the object is encrypted with key {:?}, not {id:?}",
                header.key_id
            );
        }
    }
    let key_text = match (&args.key_file, &args.key_env) {
        (Some(path), _) => fs::read_to_string(path)
            .with_context(|| format!("reading the key from {}", path.display()))?,
        (None, env) => {
            let name = env.clone().unwrap_or_else(|| "EVIDENCE_KEY".to_owned());
            std::env::var(&name).with_context(|| format!("the key: ${name} is not set"))?
        }
    };
    let key = parse_key(&key_text).context("the key")?;
    let cipher = Aes256Gcm::new_from_slice(&key).context("the key")?;
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&header.nonce),
            Payload {
                msg: envelope.ciphertext,
                aad: envelope.aad,
            },
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "the object does not decrypt with this key (key id {:?}), or was altered",
                header.key_id
            )
        })?;
    let digest = hex::encode(Sha256::digest(&plain));
    if digest != header.sha256 {
        bail!(
            "decrypted SHA-256 {digest} differs from the header's {}",
            header.sha256
        );
    }
    if let Some(want) = &args.sha256 {
        if !want.eq_ignore_ascii_case(&digest) {
            bail!("decrypted SHA-256 {digest} is not the expected {want}");
        }
    }
    if args.out.as_os_str() == "-" {
        std::io::stdout().write_all(&plain)?;
    } else {
        fs::write(&args.out, &plain).with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!(
            "{}: {} bytes, {}, sha256 {digest} (verified), key {}",
            args.out.display(),
            plain.len(),
            header.content_type,
            header.key_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
