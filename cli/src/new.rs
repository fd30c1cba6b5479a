//! `tidings new EVENT_TYPE`: scaffolds the next version of an event type
//! from its latest version, or a first version from a template.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tidings_codegen::registry::lock::LOCK_FILE;
use tidings_codegen::registry::{scaffold, ScaffoldError, Source};

/// Arguments of `tidings new`.
#[derive(clap::Args)]
pub struct Args {
    /// The event type, `service.entity.action` (e.g. `auth.user.created`).
    pub event_type: String,
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
}

/// Runs `tidings new`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.schemas.is_dir() {
        anyhow::bail!(
            "registry directory {} not found (use --schemas DIR)",
            args.schemas.display()
        );
    }
    let source = Source::from_dir(&args.schemas)
        .with_context(|| format!("cannot read {}", args.schemas.display()))?;
    let s = match scaffold(&source, &args.event_type) {
        Ok(s) => s,
        Err(e @ ScaffoldError::InvalidEventType(_)) => anyhow::bail!("{e}"),
        Err(e) => return Err(e.into()),
    };
    let path = args.schemas.join(&s.path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, &s.text).with_context(|| format!("cannot write {}", path.display()))?;
    match &s.copied_from {
        Some(from) => println!(
            "created {} (v{}, copied from {})",
            path.display(),
            s.version,
            args.schemas.join(from).display()
        ),
        None => println!("created {} (v1 template)", path.display()),
    }
    println!(
        "next: edit it (keep it compatible: add optional properties, don't remove or retype), then run `tidings check --update-lock`"
    );
    println!(
        "it is a draft until then: --update-lock records it in {LOCK_FILE} only once the check finds no error in it, and a version absent from the base branch's lock stays a draft (`tidings check --against <base branch> --update-lock` re-records it after an edit); once merged it is published and immutable"
    );
    Ok(ExitCode::SUCCESS)
}
