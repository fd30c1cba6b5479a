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
mod junit;
mod output;
mod sarif;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `path:line: rule: message` and `help:` lines, then a summary.
    Text,
    /// One JSON object with the summary and every finding.
    Json,
    /// GitHub Actions workflow annotations (`::error file=...,line=...`).
    Github,
    /// JUnit XML: one testcase per schema file (and per other file with
    /// findings), failed by its errors.
    Junit,
    /// SARIF 2.1.0 (code scanning): one result per finding, file URIs
    /// relative to the repository root.
    Sarif,
}

/// Arguments of `tidings check`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// Also compare with the registry at this git ref (branch, tag, commit),
    /// or in this directory (a registry checked out elsewhere): added
    /// versions are judged against its versions, edited or deleted
    /// published versions are errors. An existing directory wins over a ref
    /// of the same name.
    #[arg(long, value_name = "GIT_REF|DIR")]
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
        Some(dir) if Path::new(dir).is_dir() => Some(
            Source::from_dir(Path::new(dir))
                .with_context(|| format!("cannot read --against directory {dir}"))?,
        ),
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

/// The registry directory relative to the root of the git repository that
/// holds it (`schemas/`), or to the working directory outside a repository
/// (empty when it is the root), with `/` separators and a final `/`.
fn repo_prefix(dir: &Path) -> String {
    let Ok(abs) = dir.canonicalize() else {
        return relative_prefix(dir);
    };
    let top = std::process::Command::new("git")
        .arg("-C")
        .arg(&abs)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| PathBuf::from(t.trim()).canonicalize().ok());
    match top.as_deref().and_then(|t| abs.strip_prefix(t).ok()) {
        Some(rel) => with_slash(rel),
        None => relative_prefix(dir),
    }
}

fn relative_prefix(dir: &Path) -> String {
    if dir.as_os_str().is_empty() || dir == Path::new(".") {
        String::new()
    } else {
        with_slash(dir)
    }
}

fn with_slash(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    }
}

/// A relative URI reference for `prefix` + `file`: every byte outside the
/// unreserved set and `/` is percent-encoded.
fn uri(prefix: &str, file: &str) -> String {
    let mut out = String::new();
    for b in format!("{prefix}{file}").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
