//! Keywords the Rust generator (typify 0.8) cannot turn into Rust: it
//! panics on some, silently ignores others, and gets `prefixItems` wrong.
//! Reported before generation so a schema never reaches it.
use serde_json::Value;

use crate::schema_walk::{each_schema, SchemaAt};

/// One unsupported use of a keyword in a schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// JSON pointer of the keyword.
    pub pointer: String,
    /// The keyword.
    pub keyword: &'static str,
    /// What the generator would do with it.
    pub message: String,
    /// How to express the same thing.
    pub help: &'static str,
    /// Rule id: `schema/unsupported-keyword`, or `schema/closed-model` for
    /// the `additionalProperties: false` warning.
    pub rule: &'static str,
    /// Whether it is only a warning (the schema still generates, with a
    /// weaker type).
    pub warning: bool,
}

/// Every unsupported keyword use in `schema`, in document order.
pub fn find_unsupported(schema: &Value) -> Vec<Unsupported> {
    let mut out = Vec::new();
    each_schema(schema, |at| check_schema(at, &mut out));
    out
}

/// The unsupported keyword uses of one schema object (not its subschemas).
fn check_schema(at: SchemaAt<'_>, out: &mut Vec<Unsupported>) {
    let m = at.schema;
    let mut report = |keyword: &'static str, message: String, help: &'static str, warning: bool| {
        out.push(Unsupported {
            pointer: at.pointer_to(keyword),
            keyword,
            rule: if warning {
                "schema/closed-model"
            } else {
                "schema/unsupported-keyword"
            },
            message,
            help,
            warning,
        })
    };
    for k in ["if", "then", "else"] {
        if m.contains_key(k) {
            report(
                    k_static(k),
                    format!("`{k}`: the Rust generator (typify) panics on if/then/else"),
                    "express the alternatives with `oneOf` of object variants, or move the condition into code",
                    false,
                );
        }
    }
    if let Some(why) = pattern_properties_ignored(m) {
        report(
                "patternProperties",
                format!("`patternProperties` {why}: the Rust generator (typify) silently ignores it"),
                "give the pattern-named members an object of their own holding only `patternProperties` (one value schema), optionally with `additionalProperties: false`; typify makes it a map",
                false,
            );
    }
    if let Some(Value::String(r)) = m.get("$ref") {
        if r.split_once('#')
            .is_some_and(|(_, f)| !f.is_empty() && !f.starts_with('/'))
        {
            report(
                    "$ref",
                    format!("`$ref` to the anchor {r:?}: the Rust generator (typify) resolves only JSON pointers and panics on anchors"),
                    "refer to the definition by its pointer, e.g. \"#/$defs/Name\"",
                    false,
                );
        }
    }
    if let Some(not) = m.get("not") {
        if !not_is_generated(not) {
            report(
                    "not",
                    "`not`: the Rust generator (typify) panics on it, except around an `enum` of values of one type".into(),
                    "drop `not` and check the condition in code, or express the allowed values positively (`enum`, `pattern`, `oneOf`)",
                    false,
                );
        }
    }
    if let Some(Value::Array(values)) = m.get("enum") {
        if !m.contains_key("type") && !m.contains_key("$ref") && json_kinds(values) > 1 {
            report(
                    "enum",
                    "untyped `enum` mixing value types: the Rust generator (typify) panics on it".into(),
                    "give the values one type (e.g. all strings: [\"1\", \"one\"]), or use `oneOf` of typed `const`s",
                    false,
                );
        }
    }
    if m.get("additionalProperties") == Some(&Value::Bool(false))
        && !m.contains_key("patternProperties")
    {
        report(
                "additionalProperties",
                "closed content model (`additionalProperties: false`): the schema refuses members it does not declare (the publisher validates against it), so under FULL compatibility no property can ever be added; generated readers ignore unknown members, the schema does not".into(),
                "leave the object open (remove `additionalProperties: false`); readers ignore members they do not know",
                true,
            );
    }
    let ignored: [(&'static str, &'static str); 8] = [
        (
            "unevaluatedProperties",
            "use `additionalProperties` on the object instead",
        ),
        ("unevaluatedItems", "use `items` instead"),
        (
            "dependentRequired",
            "make the properties required together in a nested object, or check in code",
        ),
        (
            "dependentSchemas",
            "use a nested object or `oneOf` variants",
        ),
        ("dependencies", "use a nested object or `oneOf` variants"),
        (
            "prefixItems",
            "use an object with named properties instead of a positional tuple",
        ),
        ("$dynamicRef", "use a plain `$ref` to a `$defs` entry"),
        ("$recursiveRef", "use a plain `$ref` to a `$defs` entry"),
    ];
    for (k, help) in ignored {
        if m.contains_key(k) {
            let what = if k == "prefixItems" {
                "gets 2020-12 `prefixItems` wrong"
            } else {
                "cannot express it and would silently ignore it"
            };
            report(
                k,
                format!("`{k}`: the Rust generator (typify) {what}"),
                help,
                false,
            );
        }
    }
}

/// Why typify 0.8 would ignore this object's `patternProperties`, if it
/// would: it turns them into a map only when they are the object's only
/// members (no `properties`, no `required`, no `propertyNames`), every
/// pattern has the same value schema, and `additionalProperties` is absent
/// or `false`.
fn pattern_properties_ignored(m: &serde_json::Map<String, Value>) -> Option<&'static str> {
    let Some(Value::Object(patterns)) = m.get("patternProperties") else {
        return None;
    };
    if patterns.is_empty() {
        return None;
    }
    let non_empty = |k: &str| match m.get(k) {
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
        None => false,
    };
    if non_empty("properties") {
        Some("beside `properties`")
    } else if non_empty("required") {
        Some("beside `required`")
    } else if m.contains_key("propertyNames") {
        Some("beside `propertyNames`")
    } else if patterns
        .values()
        .skip(1)
        .any(|v| Some(v) != patterns.values().next())
    {
        Some("with different value schemas per pattern")
    } else if matches!(
        m.get("additionalProperties"),
        Some(Value::Object(_) | Value::Bool(true))
    ) {
        Some("beside an `additionalProperties` schema")
    } else {
        None
    }
}

/// Whether typify 0.8 generates a `not`: `true`/`false`, `{}`, or an `enum`
/// (with at most one `type`) whose values share one scalar type.
fn not_is_generated(not: &Value) -> bool {
    match not {
        Value::Bool(_) => true,
        Value::Object(o) if o.keys().all(|k| is_annotation(k)) => true,
        Value::Object(o) => {
            let Some(Value::Array(values)) = o.get("enum") else {
                return false;
            };
            let typed = matches!(o.get("type"), None | Some(Value::String(_)));
            let scalars = values
                .iter()
                .all(|v| matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_)));
            typed
                && scalars
                && json_kinds(values) == 1
                && o.keys()
                    .all(|k| k == "enum" || k == "type" || is_annotation(k))
        }
        _ => false,
    }
}

fn is_annotation(k: &str) -> bool {
    matches!(k, "description" | "title" | "$comment" | "examples") || k.starts_with("x-")
}

/// How many JSON value kinds (boolean, number, string, array, object) the
/// values use, `null` aside.
fn json_kinds(values: &[Value]) -> usize {
    let mut kinds = [false; 5];
    for v in values {
        match v {
            Value::Null => {}
            Value::Bool(_) => kinds[0] = true,
            Value::Number(_) => kinds[1] = true,
            Value::String(_) => kinds[2] = true,
            Value::Array(_) => kinds[3] = true,
            Value::Object(_) => kinds[4] = true,
        }
    }
    kinds.iter().filter(|k| **k).count()
}

fn k_static(k: &str) -> &'static str {
    match k {
        "if" => "if",
        "then" => "then",
        _ => "else",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_each_keyword() {
        let s = json!({
            "properties": {
                "if": {"type": "string"},
                "a": {"if": {}, "then": {}},
                "m": {"patternProperties": {"^x": {}}, "additionalProperties": false},
                "n": {"properties": {"a": {}}, "patternProperties": {"^x": {}}},
                "t": {"prefixItems": [{}]}
            },
            "unevaluatedProperties": false,
            "dependentRequired": {"a": ["b"]},
            "examples": [{"if": 1}]
        });
        let found: Vec<(String, &str)> = find_unsupported(&s)
            .into_iter()
            .map(|u| (u.pointer, u.keyword))
            .collect();
        assert!(found.contains(&("/properties/a/if".into(), "if")));
        assert!(found.contains(&("/properties/a/then".into(), "then")));
        assert!(!found.iter().any(|(p, _)| p.starts_with("/properties/m/")));
        assert!(found.contains(&(
            "/properties/n/patternProperties".into(),
            "patternProperties"
        )));
        assert!(found.contains(&("/properties/t/prefixItems".into(), "prefixItems")));
        assert!(found.contains(&("/unevaluatedProperties".into(), "unevaluatedProperties")));
        assert!(found.contains(&("/dependentRequired".into(), "dependentRequired")));
        assert_eq!(found.len(), 6, "{found:?}");
        let closed = find_unsupported(
            &json!({"properties": {"a": {"type": "object", "additionalProperties": false}}}),
        );
        assert_eq!(closed.len(), 1);
        assert!(closed[0].warning);
        assert_eq!(closed[0].pointer, "/properties/a/additionalProperties");
    }
}
