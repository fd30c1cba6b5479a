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
/// (old, new) pairs are reported; `prefix` starts each message.
pub fn compare(
    event_type: &str,
    versions: &[Version<'_>],
    mode: Mode,
    policy: Policy,
    prefix: &str,
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
            let (breaks, help) = match c.breaks {
                Breaks::Readers => (
                    "readers",
                    format!(
                        "consumers upgraded to v{} cannot read events written as v{} (replays, lagging producers); {} forbids this. Undo the change, or make it compatible (e.g. an added property optional, a constraint no tighter)",
                        f.new_version, f.old_version, mode
                    ),
                ),
                Breaks::Writers => (
                    "writers",
                    format!(
                        "consumers still on v{} reject events written as v{}; {} forbids this. Undo the change, or make it compatible (e.g. keep accepting what v{} accepted, loosen instead of tighten)",
                        f.old_version, f.new_version, mode, f.old_version
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
                    "{prefix}{event_type} v{} -> v{} breaks {breaks} under {mode} ({policy}): {}{within}",
                    f.old_version, f.new_version, c.message
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
