//! SARIF 2.1.0 output (`--format sarif`), for code-scanning tools such as
//! GitHub's `upload-sarif`: one run, one rule per rule id found, one result
//! per finding, located by a file URI relative to the repository root
//! (`uriBaseId` `%SRCROOT%`), its line, and its JSON pointer as a logical
//! location.
use std::collections::BTreeMap;

use serde_json::{json, Value};
use tidings_codegen::registry::{Report, Severity};

/// The SARIF log for `report`; `uri` turns a registry-relative file into a
/// URI relative to the repository root.
pub fn render(report: &Report, uri: &dyn Fn(&str) -> String) -> String {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        let next = rules.len();
        rules.entry(f.rule.as_str()).or_insert(next);
    }
    let mut rule_list: Vec<(&str, usize)> = rules.iter().map(|(r, i)| (*r, *i)).collect();
    rule_list.sort_by_key(|(_, i)| *i);
    let rule_docs: Vec<Value> = rule_list
        .iter()
        .map(|(id, _)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": format!("tidings check rule {id} (docs/registry.md, Rules)")},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            if let Some(ex) = f.compat.as_ref().and_then(|c| c.example.as_ref()) {
                text.push_str(&format!("\nexample: {ex}"));
            }
            text.push_str(&format!("\nhelp: {}", f.help));
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": rules.get(f.rule.as_str()).copied().unwrap_or(0),
                "level": match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": {"text": text},
            });
            if !f.file.is_empty() {
                let mut location = json!({
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.file), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line.max(1)},
                    }
                });
                if !f.pointer.is_empty() {
                    location["logicalLocations"] =
                        json!([{"fullyQualifiedName": f.pointer, "kind": "member"}]);
                }
                result["locations"] = json!([location]);
            }
            if let Some(c) = &f.compat {
                result["properties"] = json!({"compat": c});
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "tidings",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_docs,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}
