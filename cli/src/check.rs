//! `tidings check`: lint the registry, check every event type's
//! compatibility under its mode, verify the lock, and optionally compare
//! with the registry at a git ref.
//!
//! Exit 0 clean (warnings allowed), 1 findings, 2 usage or I/O error.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use tidings_codegen::registry::lock::LOCK_FILE;
use tidings_codegen::registry::{self, Against, Source};

mod generate;
mod output;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `path:line: rule: message` and `help:` lines, then a summary.
    Text,
    /// One JSON object with the summary and every finding.
    Json,
    /// GitHub Actions workflow annotations (`::error file=...,line=...`).
    Github,
}

/// Arguments of `tidings check`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// Also compare with the registry at this git ref (branch, tag, commit):
    /// added versions are judged against its versions, edited or deleted
    /// published versions are errors.
    #[arg(long, value_name = "GIT_REF")]
    pub against: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Record new versions, shared files and deprecations in
    /// registry.lock before checking; only what has no error finding is
    /// recorded, and a published version is never overwritten (with
    /// --against, versions absent from the ref's lock are drafts and are
    /// re-recorded as they are now).
    #[arg(long)]
    pub update_lock: bool,
    /// Benchmark helper: write a synthetic registry of TYPESxVERSIONS
    /// (e.g. 500x5) into --schemas DIR and exit.
    #[arg(long, hide = true, value_name = "TYPESxVERSIONS")]
    pub generate_bench: Option<String>,
}

/// Runs `tidings check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &args.generate_bench {
        generate::write(&args.schemas, spec)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.schemas.is_dir() {
        anyhow::bail!(
            "registry directory {} not found (use --schemas DIR)",
            args.schemas.display()
        );
    }
    let mut source = Source::from_dir(&args.schemas)
        .with_context(|| format!("cannot read {}", args.schemas.display()))?;
    let base = match &args.against {
        Some(r) => Some(Source::from_git(&args.schemas, r)?),
        None => None,
    };
    if args.update_lock {
        let lock = registry::updated_lock(&source, base.as_ref())?.to_text();
        if source.get(LOCK_FILE) != Some(lock.as_str()) {
            let path = args.schemas.join(LOCK_FILE);
            std::fs::write(&path, &lock)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("updated {}", path.display());
            source.files.insert(LOCK_FILE.to_string(), lock);
        }
    }
    let report = registry::check(
        &source,
        args.against
            .as_deref()
            .zip(base.as_ref())
            .map(|(name, source)| Against { name, source }),
    );
    let rendered = output::render(&report, &args.schemas, args.format, args.against.as_deref());
    // A closed pipe (`tidings check | head`) is not an error worth a panic.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), rendered.as_bytes()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write the report");
        }
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The path to show for a registry-relative file.
fn shown(dir: &Path, file: &str) -> String {
    if dir.as_os_str().is_empty() || dir == Path::new(".") {
        file.to_string()
    } else {
        dir.join(file).to_string_lossy().into_owned()
    }
}
