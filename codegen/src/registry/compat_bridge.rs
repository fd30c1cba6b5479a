//! The one place the registry calls the compatibility engine, turning its
//! findings into registry findings.
use std::path::Path;

use serde_json::Value;

use super::finding::{CompatDetail, Finding};
use crate::bundle::Bundled;
use crate::compat::{self, Breaks, Mode, Policy};

/// One version of an event type, ready for comparison.
pub struct Version<'a> {
    /// Schema version.
    pub version: u32,
    /// Bundled schema.
    pub bundled: &'a Bundled,
    /// Registry-relative file (where findings about it are reported).
    pub file: &'a str,
}

/// Compares `versions` (ascending) under `mode` and `policy`. Findings are
/// reported on the newer version's file, at the engine's `new_path`
/// (lines are filled in by the caller). `keep` filters which
/// (old, new) pairs are reported; `prefix` starts each message. `base`:
/// the two entries are the same version, as it was at git ref `base` and as
/// it bundles today (a shared definition changed under it).
pub fn compare(
    event_type: &str,
    versions: &[Version<'_>],
    mode: Mode,
    policy: Policy,
    prefix: &str,
    base: Option<&str>,
    keep: &dyn Fn(u32, u32) -> bool,
) -> Vec<Finding> {
    if mode == Mode::None || versions.len() < 2 {
        return Vec::new();
    }
    let input: Vec<(u32, &Value)> = versions
        .iter()
        .map(|v| (v.version, &v.bundled.value))
        .collect();
    // The file of a version, and the place in it for a bundled pointer: a
    // pointer into a copied shared definition is reported at the `$ref`
    // that pulled it in, naming the definition.
    let place = |ver: u32, pointer: &str| -> (&str, String, Option<String>) {
        let Some(v) = versions.iter().rev().find(|v| v.version == ver) else {
            return ("", pointer.to_string(), None);
        };
        match v.bundled.root_site(Path::new(v.file), pointer) {
            Some((site, def)) => (v.file, site, Some(def)),
            None => (v.file, pointer.to_string(), None),
        }
    };
    // The engine must not take the whole check down: a panic becomes a finding.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compat::check_versions(&input, mode, policy)
    }));
    let found = match outcome {
        Ok(Ok(f)) => f,
        Err(_) => {
            let last = versions.last().map(|v| v.file).unwrap_or_default();
            return vec![Finding::error(
                last,
                "",
                "compat/error",
                format!("{prefix}{event_type}: the compatibility engine failed (a bug) comparing these versions"),
                "please report this with the schemas that trigger it",
            )];
        }
        Ok(Err(e)) => {
            let last = versions.last().map(|v| v.file).unwrap_or_default();
            return vec![Finding::error(
                last,
                "",
                "compat/error",
                format!("{prefix}{event_type}: the compatibility engine could not compare the versions: {e}"),
                "fix the schema so it can be compared (the message names the place)",
            )];
        }
    };
    found
        .into_iter()
        .filter(|f| keep(f.old_version, f.new_version))
        .map(|f| {
            let c = f.change;
            let kind = c.kind.as_str().to_string();
            let (old_l, new_l) = match base {
                Some(r) => (
                    format!("v{} as at {r}", f.old_version),
                    format!("v{} as it bundles now", f.new_version),
                ),
                None => (format!("v{}", f.old_version), format!("v{}", f.new_version)),
            };
            let fix = if base.is_some() {
                "Undo the shared-definition change, or give the event types that need it a new version with their own definition"
            } else {
                "Undo the change, or make it compatible"
            };
            let (breaks, help) = match c.breaks {
                Breaks::Readers => (
                    "readers",
                    format!(
                        "consumers built from {new_l} cannot read events written as {old_l} (replays, lagging producers); {mode} forbids this. {fix} (e.g. an added property optional, a constraint no tighter)"
                    ),
                ),
                Breaks::Writers => (
                    "writers",
                    format!(
                        "consumers still on {old_l} reject events written as {new_l}; {mode} forbids this. {fix} (e.g. keep accepting what {old_l} accepted, loosen instead of tighten)"
                    ),
                ),
                Breaks::None => ("none", "informational".to_string()),
            };
            let (file, pointer, def) = place(f.new_version, &c.new_path);
            let within = def
                .map(|d| format!(" (in shared definition {d})"))
                .unwrap_or_default();
            let mut finding = Finding::error(
                file,
                pointer,
                &format!("compat/{kind}"),
                format!(
                    "{prefix}{event_type} {old_l} -> {new_l} breaks {breaks} under {mode} ({policy}): {}{within}",
                    c.message
                ),
                help,
            );
            if c.breaks == Breaks::None {
                finding = finding.warning();
            }
            finding.compat = Some(CompatDetail {
                event_type: event_type.to_string(),
                old_version: f.old_version,
                new_version: f.new_version,
                mode: mode.to_string(),
                policy: policy.to_string(),
                kind,
                old_path: c.old_path,
                new_path: c.new_path,
                breaks: breaks.to_string(),
                example: c.example,
            });
            finding
        })
        .collect()
}

/// Every change between two bundled versions, in both directions, for
/// display (the catalog): the engine's error, or a panic, becomes a message.
pub fn changes(
    old: &Bundled,
    new: &Bundled,
    policy: Policy,
) -> Result<Vec<compat::Change>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compat::diff(&old.value, &new.value, policy)
    }))
    .map_err(|_| "the compatibility engine failed on these schemas (a Tidings bug)".to_string())?
    .map_err(|e| e.to_string())
}
