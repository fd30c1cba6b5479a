//! `tidings check` (being built in the schema-registry issue).
use std::process::ExitCode;

/// Arguments of `tidings check`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `tidings check`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`tidings check` is not available yet")
}
