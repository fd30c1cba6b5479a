//! Helpers shared by the registry tests: small in-memory registries.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use tidings_codegen::registry::lock::{fingerprint, LockedShared, LockedVersion};
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
    let lock = lock_all(&s);
    s.files.insert("registry.lock".into(), lock);
    s
}

/// The lock `--update-lock` writes, plus every version and shared file it
/// leaves out because the check finds errors in them: tests of other rules
/// want a fully locked registry, broken or not.
pub fn lock_all(s: &Source) -> String {
    let mut lock = registry::updated_lock(s, None).unwrap();
    for (path, text) in &s.files {
        let Some(value) = path
            .ends_with(".json")
            .then(|| serde_json::from_str::<Value>(text).ok())
            .flatten()
        else {
            continue;
        };
        let sha256 = fingerprint(&value);
        if path.starts_with("common/") {
            if !lock.shared.iter().any(|l| l.file == *path) {
                lock.shared.push(LockedShared {
                    file: path.clone(),
                    sha256,
                });
            }
            continue;
        }
        let (Some(ty), Some(v)) = (
            value["x-event-type"].as_str(),
            value["x-schema-version"].as_u64(),
        ) else {
            continue;
        };
        let v = u32::try_from(v).unwrap();
        if lock.find(ty, v).is_none() {
            lock.events.push(LockedVersion {
                event_type: ty.to_string(),
                version: v,
                file: path.clone(),
                sha256,
                deprecated: value["x-deprecated"] == json!(true),
                removed: false,
                entity_key: value["x-entity-key"].as_str().map(str::to_string),
            });
        }
    }
    lock.to_text()
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
