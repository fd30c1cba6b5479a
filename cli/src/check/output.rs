//! Renders a [`Report`] as text, JSON or GitHub workflow annotations
//! (JUnit and SARIF have their own modules).
use std::fmt::Write as _;
use std::path::Path;

use tidings_codegen::registry::{Report, Severity};

use super::{shown, Format};

/// The whole output for `format`.
pub fn render(report: &Report, dir: &Path, format: Format, against: Option<&str>) -> String {
    match format {
        Format::Text => text(report, dir, against),
        Format::Json => json(report, dir),
        Format::Github => github(report, dir, against),
        Format::Junit => super::junit::render(report, &|file| shown(dir, file)),
        Format::Sarif => {
            let prefix = super::repo_prefix(dir);
            super::sarif::render(report, &|file| super::uri(&prefix, file))
        }
    }
}

fn summary(report: &Report, against: Option<&str>) -> String {
    let s = &report.summary;
    format!(
        "tidings check: {} files, {} event types, {} versions{}: {} error{}, {} warning{}",
        s.files,
        s.event_types,
        s.versions,
        against
            .map(|r| format!(" (against {r})"))
            .unwrap_or_default(),
        s.errors,
        if s.errors == 1 { "" } else { "s" },
        s.warnings,
        if s.warnings == 1 { "" } else { "s" },
    )
}

fn text(report: &Report, dir: &Path, against: Option<&str>) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let sev = match f.severity {
            Severity::Error => "",
            Severity::Warning => " (warning)",
        };
        let _ = writeln!(
            out,
            "{}:{}: {}{}: {}",
            shown(dir, &f.file),
            f.line,
            f.rule,
            sev,
            f.message
        );
        if !f.pointer.is_empty() {
            let _ = writeln!(out, "  at: {}", f.pointer);
        }
        if let Some(c) = &f.compat {
            if c.new_path != f.pointer {
                let _ = writeln!(out, "  in the bundled schema: {}", c.new_path);
            }
            if let Some(ex) = &c.example {
                let (accepts, rejects) = if c.breaks == "writers" {
                    (c.new_version, c.old_version)
                } else {
                    (c.old_version, c.new_version)
                };
                let _ = writeln!(
                    out,
                    "  example: v{accepts} accepts, v{rejects} rejects: {ex}"
                );
            }
        }
        let _ = writeln!(out, "  help: {}", f.help);
    }
    let _ = writeln!(out, "{}", summary(report, against));
    out
}

fn json(report: &Report, dir: &Path) -> String {
    let mut findings = Vec::new();
    for f in &report.findings {
        let mut v = serde_json::to_value(f).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("path".into(), shown(dir, &f.file).into());
        }
        findings.push(v);
    }
    let doc = serde_json::json!({
        "ok": !report.has_errors(),
        "summary": report.summary,
        "findings": findings,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// Escapes workflow-command data.
fn esc_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes workflow-command properties.
fn esc_prop(s: &str) -> String {
    esc_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn github(report: &Report, dir: &Path, against: Option<&str>) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut msg = f.message.clone();
        if let Some(ex) = f.compat.as_ref().and_then(|c| c.example.as_ref()) {
            let _ = write!(msg, "\nexample: {ex}");
        }
        let _ = write!(msg, "\nhelp: {}", f.help);
        let _ = writeln!(
            out,
            "::{level} file={},line={},title={}::{}",
            esc_prop(&shown(dir, &f.file)),
            f.line,
            esc_prop(&f.rule),
            esc_data(&msg)
        );
    }
    let _ = writeln!(out, "{}", summary(report, against));
    out
}
