//! `tidings docs --out DIR`: the registry as a static HTML catalog that
//! works offline (an index with a search box, a page per event type), or,
//! with `--check`, whether DIR holds exactly the catalog of the registry.
//!
//! Exit 0 written (or current with `--check`), 1 `--check` found a page
//! missing, stale or left over, 2 usage or I/O error, or a registry that
//! does not load (run `tidings check`).
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `tidings docs`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// The directory to write the catalog into (created if missing; other
    /// `.html` files in it are removed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Do not write: exit 1 if a page is missing, differs or is left over (for CI).
    #[arg(long)]
    pub check: bool,
}

/// Runs `tidings docs`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = crate::loaded::load_clean(&args.schemas)?;
    let pages = tidings_codegen::catalog::pages(&loaded);
    let names: BTreeSet<&str> = pages.iter().map(|p| p.name.as_str()).collect();
    let existing: BTreeSet<String> = match std::fs::read_dir(&args.out) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".html"))
            .collect(),
        Err(_) => BTreeSet::new(),
    };
    let left_over: Vec<&String> = existing
        .iter()
        .filter(|name| !names.contains(name.as_str()))
        .collect();
    if args.check {
        let mut problems = Vec::new();
        for page in &pages {
            match std::fs::read_to_string(args.out.join(&page.name)) {
                Ok(text) if text == page.html => {}
                Ok(_) => problems.push(format!("{} is stale", page.name)),
                Err(_) => problems.push(format!("{} is missing", page.name)),
            }
        }
        problems.extend(
            left_over
                .iter()
                .map(|n| format!("{n} is left over (no such event type)")),
        );
        if problems.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "the catalog in {} is not current:\n  {}\nrun `tidings docs --out {}` and commit it",
            args.out.display(),
            problems.join("\n  "),
            args.out.display()
        );
        return Ok(ExitCode::from(1));
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for name in left_over {
        let path = args.out.join(name);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    for page in &pages {
        let path = args.out.join(&page.name);
        std::fs::write(&path, &page.html).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "wrote {} pages to {} (open {}/index.html)",
        pages.len(),
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
