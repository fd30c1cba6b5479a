//! Applying a compatibility mode to a history of versions.
use serde_json::Value;

use super::error::CompatError;
use super::model::{Breaks, Finding, Mode, Policy};

/// The findings that break `mode` in a history of versions (ascending).
///
/// Every version is checked when it is the latest: against the one before
/// it, or against every earlier one when the mode is transitive. Only
/// changes whose direction the mode checks are returned (never
/// informational ones). [`Mode::None`] returns nothing.
pub fn check_versions(
    versions: &[(u32, &Value)],
    mode: Mode,
    policy: Policy,
) -> Result<Vec<Finding>, CompatError> {
    let mut out = Vec::new();
    if mode == Mode::None {
        return Ok(out);
    }
    for (j, (new_version, new)) in versions.iter().enumerate() {
        let earlier = if mode.is_transitive() {
            0..j
        } else {
            j.saturating_sub(1)..j
        };
        for (old_version, old) in &versions[earlier] {
            for change in super::diff(old, new, policy)? {
                let counts = match change.breaks {
                    Breaks::Readers => mode.checks_backward(),
                    Breaks::Writers => mode.checks_forward(),
                    Breaks::None => false,
                };
                if counts {
                    out.push(Finding {
                        old_version: *old_version,
                        new_version: *new_version,
                        change,
                    });
                }
            }
        }
    }
    Ok(out)
}
