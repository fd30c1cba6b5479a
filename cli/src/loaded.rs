//! The registry as the documentation commands read it: loaded, and refused
//! with every error finding when it does not load cleanly.
use std::path::Path;

use anyhow::Context;
use tidings_codegen::registry::finding::Severity;
use tidings_codegen::registry::load::{load, Loaded};
use tidings_codegen::registry::Source;

/// Loads the registry at `dir`; an error lists its error findings and
/// points at `tidings check`.
pub fn load_clean(dir: &Path) -> anyhow::Result<Loaded> {
    let source =
        Source::from_dir(dir).with_context(|| format!("reading the registry {}", dir.display()))?;
    let loaded = load(&source);
    let errors: Vec<String> = loaded
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| {
            format!(
                "  {}:{} {} [{}] {}",
                f.file, f.line, f.pointer, f.rule, f.message
            )
        })
        .collect();
    anyhow::ensure!(
        loaded.config_ok && errors.is_empty(),
        "the registry {} does not load cleanly; run `tidings check` and fix:\n{}",
        dir.display(),
        errors.join("\n")
    );
    Ok(loaded)
}
