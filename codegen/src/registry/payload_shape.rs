//! The root of an event schema must generate a struct with named fields:
//! the payload type, its derive and its upcasts are built from them. A root
//! that is a choice (`oneOf`, `anyOf`) or a map (an object without
//! `properties`) generates an enum or a map, which the generator refuses.
use serde_json::Value;

use super::finding::Finding;

const RULE: &str = "schema/payload-shape";

/// Findings for an event schema whose root is not an object with named
/// properties.
pub(crate) fn check(path: &str, schema: &Value, findings: &mut Vec<Finding>) {
    let Some(root) = schema.as_object() else {
        return;
    };
    for keyword in ["oneOf", "anyOf"] {
        if root.contains_key(keyword) {
            findings.push(Finding::error(
                path,
                format!("/{keyword}"),
                RULE,
                format!("the payload root is a `{keyword}`: it generates an enum, and an event payload must be a struct with named fields"),
                format!("make the root an object with `properties`, and move the alternatives into a property (`\"detail\": {{\"{keyword}\": [...]}}`)"),
            ));
        }
    }
    let named = matches!(root.get("properties"), Some(Value::Object(p)) if !p.is_empty());
    if !named && !root.contains_key("oneOf") && !root.contains_key("anyOf") {
        findings.push(Finding::error(
            path,
            "",
            RULE,
            "the payload root has no `properties`: it generates a map or a plain value, and an event payload must be a struct with named fields",
            "declare the payload's members in `properties` (\"type\": \"object\", \"properties\": {...}); put a map inside a property",
        ));
    }
}
