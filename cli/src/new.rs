//! `tidings new` (being built in the schema-registry issue).
use std::process::ExitCode;

/// Arguments of `tidings new`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `tidings new`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`tidings new` is not available yet")
}
