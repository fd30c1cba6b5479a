//! Helpers shared by the registry tests: small in-memory registries.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use tidings_codegen::registry::{self, Report, Source};

/// A config with one stream per test service.
pub const CONFIG: &str = r#"
[compatibility]
mode = "FULL_TRANSITIVE"
policy = "lenient"
[streams.AUTH_EVENTS]
subjects = ["auth.>"]
[streams.CATALOG_EVENTS]
subjects = ["catalog.>"]
[streams.DLQ_EVENTS]
subjects = ["dlq.>"]
events = false
[profiles.dev]
replicas = 1
"#;

/// A valid event schema for `ty` version `v` with extra properties merged in.
pub fn event(ty: &str, v: u32, extra_props: Value) -> Value {
    let service = ty.split('.').next().unwrap();
    let mut props = json!({
        "user_id": {"$ref": "../common/ids.json#/$defs/UserId"},
        "name": {"type": "string"}
    });
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra_props.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "test event",
        "x-event-type": ty,
        "x-schema-version": v,
        "x-stream": format!("{}_EVENTS", service.to_ascii_uppercase()),
        "type": "object",
        "properties": props,
        "required": ["user_id"],
        "examples": [{"user_id": "0190f3a4-8c1e-7b2a-9d4f-1a2b3c4d5e6f", "name": "a"}]
    })
}

/// The shared ids file.
pub fn ids() -> Value {
    json!({"$defs": {"UserId": {"type": "string", "format": "uuid"}}})
}

/// A registry with config, ids and the given files (pretty-printed), and a
/// lock recording all of them.
pub fn registry(files: &[(&str, Value)]) -> Source {
    let mut s = unlocked(files);
    let lock = registry::updated_lock(&s).unwrap().to_text();
    s.files.insert("registry.lock".into(), lock);
    s
}

/// Like [`registry`] but without a lock.
pub fn unlocked(files: &[(&str, Value)]) -> Source {
    let mut s = Source::default();
    s.files.insert("tidings.toml".into(), CONFIG.into());
    s.files.insert(
        "common/ids.json".into(),
        serde_json::to_string_pretty(&ids()).unwrap(),
    );
    for (p, v) in files {
        s.files
            .insert((*p).into(), serde_json::to_string_pretty(v).unwrap());
    }
    s
}

/// Rules of the error findings of a check.
pub fn rules(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == registry::Severity::Error)
        .map(|f| f.rule.clone())
        .collect()
}

/// Runs the check and returns the report.
pub fn check(source: &Source) -> Report {
    registry::check(source, None)
}
