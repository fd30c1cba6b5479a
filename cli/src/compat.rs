//! `tidings compat` (being built in the schema-registry issue).
use std::process::ExitCode;

/// Arguments of `tidings compat`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `tidings compat`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`tidings compat` is not available yet")
}
