//! `tidings generate --out DIR`: the code the `events` crate's build.rs
//! generates, written to a file for teams that prefer a checked-in crate.
//!
//! It writes `DIR/events.rs`; the crate that owns `DIR` includes it
//! (`include!("events.rs");` in `src/lib.rs`, or save it as a module) and
//! depends on `tidings`, `serde`, `serde_json`, `uuid` (feature `serde`),
//! `chrono` (feature `serde`) and `regress`. The generated
//! `#[domain_event(schema = "...")]` attributes name the schema files
//! relative to that crate's manifest directory, so the derive re-checks
//! each type against its schema when the crate compiles. `--check` fails
//! when the file is out of date (for CI), without writing it.
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tidings_codegen::generate::{generate_dir, GenerateError, Options};

/// The file written into `--out`.
pub const FILE: &str = "events.rs";

/// Arguments of `tidings generate`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory to write `events.rs` into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// The manifest directory of the crate that compiles the file (schema
    /// paths in the generated attributes are relative to it). Default: the
    /// nearest directory at or above `--out` holding a Cargo.toml.
    #[arg(long, value_name = "DIR")]
    pub manifest_dir: Option<PathBuf>,
    /// Do not write: exit 1 if `events.rs` is missing or differs.
    #[arg(long)]
    pub check: bool,
}

/// Runs `tidings generate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.schemas.is_dir() {
        anyhow::bail!(
            "registry directory {} not found (use --schemas DIR)",
            args.schemas.display()
        );
    }
    let schemas = std::fs::canonicalize(&args.schemas)
        .with_context(|| format!("cannot resolve {}", args.schemas.display()))?;
    if !args.check {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    let out_abs = absolute(&args.out)?;
    let manifest = match &args.manifest_dir {
        Some(m) => absolute(m)?,
        None => out_abs
            .ancestors()
            .find(|d| d.join("Cargo.toml").is_file())
            .map(Path::to_path_buf)
            .with_context(|| {
                format!(
                    "no Cargo.toml at or above {}: say which crate compiles the file with --manifest-dir DIR",
                    args.out.display()
                )
            })?,
    };
    let options = Options {
        schemas_from_manifest: relative(&manifest, &schemas),
    };
    let generated = match generate_dir(&args.schemas, &options) {
        Ok(g) => g,
        Err(e @ GenerateError::Io { .. }) => return Err(e.into()),
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("{}/{d}", args.schemas.display());
            }
            eprintln!(
                "tidings generate: {} problem(s); nothing written (run `tidings check` for the full report)",
                e.diagnostics().len()
            );
            return Ok(ExitCode::from(1));
        }
    };
    let path = args.out.join(FILE);
    let current = std::fs::read_to_string(&path).ok();
    if args.check {
        if current.as_deref() == Some(generated.code.as_str()) {
            println!("{} is up to date", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} is {}: run `tidings generate --out {}` and commit the result",
            path.display(),
            if current.is_some() {
                "out of date"
            } else {
                "missing"
            },
            args.out.display()
        );
        return Ok(ExitCode::from(1));
    }
    if current.as_deref() != Some(generated.code.as_str()) {
        std::fs::write(&path, &generated.code)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote {}: {} event types, {} versions (schemas at \"{}\" from {})",
        path.display(),
        generated.event_types,
        generated.versions,
        options.schemas_from_manifest,
        manifest.display()
    );
    for (from, to, reason) in &generated.hand_written {
        println!("note: write `impl From<{from}> for {to}` by hand ({reason})");
    }
    Ok(ExitCode::SUCCESS)
}

/// `path` made absolute against the current directory, `.`/`..` resolved
/// lexically (it may not exist yet).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    if let Ok(c) = std::fs::canonicalize(&joined) {
        return Ok(c);
    }
    Ok(tidings_codegen::bundle::normalize(&joined))
}

/// `to` relative to directory `from`, `/`-separated (`../schemas`).
fn relative(from: &Path, to: &Path) -> String {
    let f: Vec<Component<'_>> = from.components().collect();
    let t: Vec<Component<'_>> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b/schemas")),
            "schemas"
        );
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/schemas")),
            "../../schemas"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a")), ".");
    }
}
