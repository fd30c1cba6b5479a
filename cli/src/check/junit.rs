//! JUnit XML output (`--format junit`), for CI systems that show test
//! reports: one `<testsuite>`, one `<testcase>` per schema file (named by
//! its path, classed by its event type and version), plus one per other
//! file with findings (`tidings.toml`, `registry.lock`). A testcase fails
//! with its error findings; warnings go to its `<system-out>`.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use tidings_codegen::registry::{Finding, Report, Severity};

/// The JUnit XML document for `report`; `shown` gives a file's displayed
/// path.
pub fn render(report: &Report, shown: &dyn Fn(&str) -> String) -> String {
    // file -> (classname, findings)
    let mut cases: BTreeMap<&str, (String, Vec<&Finding>)> = BTreeMap::new();
    for f in &report.files {
        let class = match (&f.event_type, f.version) {
            (Some(t), Some(v)) => format!("{t}.v{v}"),
            _ => "shared".to_string(),
        };
        cases.insert(&f.file, (class, Vec::new()));
    }
    for f in &report.findings {
        cases
            .entry(f.file.as_str())
            .or_insert_with(|| ("registry".to_string(), Vec::new()))
            .1
            .push(f);
    }
    let failures = cases
        .values()
        .filter(|(_, fs)| fs.iter().any(|f| f.severity == Severity::Error))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tidings check\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"tidings check\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
        n = cases.len()
    );
    for (file, (class, findings)) in &cases {
        let name = if file.is_empty() {
            "(registry)".to_string()
        } else {
            shown(file)
        };
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\"",
            esc(&name),
            esc(class)
        );
        if findings.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let errors: Vec<&&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if let Some(first) = errors.first() {
            let body: String = errors.iter().map(|f| describe(f)).collect();
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                esc(&format!(
                    "{}{}",
                    first.message,
                    if errors.len() > 1 {
                        format!(" (and {} more)", errors.len() - 1)
                    } else {
                        String::new()
                    }
                )),
                esc(&first.rule),
                esc(&body)
            );
        }
        let warnings: String = findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| describe(f))
            .collect();
        if !warnings.is_empty() {
            let _ = writeln!(out, "      <system-out>{}</system-out>", esc(&warnings));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn describe(f: &Finding) -> String {
    let mut s = format!("line {}: {}: {}\n", f.line, f.rule, f.message);
    if !f.pointer.is_empty() {
        let _ = writeln!(s, "  at: {}", f.pointer);
    }
    let _ = writeln!(s, "  help: {}", f.help);
    s
}

/// Escapes text for XML content and attribute values; drops characters
/// XML 1.0 cannot carry.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
