//! `[[lint.ignore]]` in `tidings.toml`: a rule turned off for the files a
//! glob matches, with a reason. An entry that matches no finding is itself
//! a finding (`config/lint-ignore-unused`), so ignores do not outlive the
//! problem they excused. Rules that protect published history (`lock/*`,
//! `against/*`), checker bugs (`internal/*`) and configuration errors
//! (`config/*`) cannot be ignored.
use glob::{MatchOptions, Pattern};

use super::config::{Config, LintIgnore, CONFIG_FILE};
use super::finding::Finding;

/// Rule prefixes no ignore may turn off.
const PROTECTED: [&str; 4] = ["lock/", "against/", "internal/", "config/"];

/// `*` stays within a directory; `**` crosses directories.
const PATHS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Removes the findings the config's ignores match and returns how many
/// were removed; adds a finding for every invalid or unused ignore.
/// `config_text` is `tidings.toml` (for lines).
pub(crate) fn apply(config: &Config, config_text: &str, findings: &mut Vec<Finding>) -> usize {
    let entries = &config.lint.ignore;
    if entries.is_empty() {
        return 0;
    }
    let lines = entry_lines(config_text);
    let line = |i: usize| lines.get(i).copied().unwrap_or(1);
    let mut problems = Vec::new();
    let mut compiled: Vec<Option<(Pattern, Pattern)>> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match compile(e) {
            Ok(p) => compiled.push(Some(p)),
            Err(why) => {
                compiled.push(None);
                problems.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "config/lint-ignore",
                        format!("[[lint.ignore]] entry {} is not valid: {why}", i + 1),
                        "write rule = \"<rule id or glob>\", path = \"<glob over registry paths>\", reason = \"<why>\"",
                    )
                    .at_line(line(i)),
                );
            }
        }
    }
    let mut used = vec![false; entries.len()];
    let before = findings.len();
    findings.retain(|f| {
        if PROTECTED.iter().any(|p| f.rule.starts_with(p)) {
            return true;
        }
        let hit = compiled.iter().position(|c| {
            c.as_ref().is_some_and(|(rule, path)| {
                rule.matches(&f.rule) && path.matches_with(&f.file, PATHS)
            })
        });
        if let Some(i) = hit {
            used[i] = true;
        }
        hit.is_none()
    });
    let removed = before - findings.len();
    for (i, e) in entries.iter().enumerate() {
        if !used[i] && compiled[i].is_some() {
            problems.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "config/lint-ignore-unused",
                    format!(
                        "[[lint.ignore]] rule {:?} path {:?} matches no finding",
                        e.rule, e.path
                    ),
                    "remove the entry: the problem it excused is gone (or fix the rule id or path glob)",
                )
                .at_line(line(i)),
            );
        }
    }
    findings.extend(problems);
    removed
}

fn compile(e: &LintIgnore) -> Result<(Pattern, Pattern), String> {
    if e.reason.trim().is_empty() {
        return Err("reason is empty; say why the rule does not apply there".into());
    }
    if let Some(p) = PROTECTED.iter().find(|p| e.rule.starts_with(**p)) {
        return Err(format!(
            "rule {:?}: {p}* rules cannot be ignored (they protect published versions or the configuration)",
            e.rule
        ));
    }
    let rule =
        Pattern::new(&e.rule).map_err(|err| format!("rule {:?} is not a glob: {err}", e.rule))?;
    let path =
        Pattern::new(&e.path).map_err(|err| format!("path {:?} is not a glob: {err}", e.path))?;
    Ok((rule, path))
}

/// The 1-based line of each `[[lint.ignore]]` header, in order.
fn entry_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.trim_start()
                .strip_prefix("[[")
                .and_then(|r| r.split(']').next())
                .is_some_and(|h| h.trim() == "lint.ignore")
        })
        .map(|(i, _)| i + 1)
        .collect()
}
