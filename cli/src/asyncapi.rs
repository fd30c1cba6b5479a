//! `tidings asyncapi`: the registry as an AsyncAPI 3.0 document (a channel
//! per event type, a message per schema version, send and receive
//! operations, NATS bindings), for tools and teams outside Rust.
//!
//! Exit 0 written (or up to date with `--check`), 1 `--check` found the
//! file missing or stale, 2 usage or I/O error, or a registry that does not
//! load (run `tidings check`).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `tidings asyncapi`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// The file to write (JSON); `-` for stdout.
    #[arg(long, default_value = "-", value_name = "FILE")]
    pub out: PathBuf,
    /// Do not write: exit 1 if FILE is missing or differs (for CI).
    #[arg(long)]
    pub check: bool,
}

/// Runs `tidings asyncapi`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = crate::loaded::load_clean(&args.schemas)?;
    let text = serde_json::to_string_pretty(&tidings_codegen::asyncapi::document(&loaded))? + "\n";
    let stdout = args.out.as_os_str() == "-";
    if args.check {
        anyhow::ensure!(!stdout, "--check needs --out FILE");
        return Ok(match std::fs::read_to_string(&args.out) {
            Ok(existing) if existing == text => ExitCode::SUCCESS,
            Ok(_) => {
                eprintln!(
                    "{} is stale: run `tidings asyncapi --out {}` and commit it",
                    args.out.display(),
                    args.out.display()
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!(
                    "{} cannot be read ({e}): run `tidings asyncapi --out {}`",
                    args.out.display(),
                    args.out.display()
                );
                ExitCode::from(1)
            }
        });
    }
    if stdout {
        print!("{text}");
    } else {
        std::fs::write(&args.out, text)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!("wrote {}", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
