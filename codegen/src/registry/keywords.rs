//! Keywords the Rust generator (typify 0.8) cannot turn into Rust: it
//! panics on some, silently ignores others, and gets `prefixItems` wrong.
//! Reported before generation so a schema never reaches it.
use serde_json::Value;

use crate::bundle::push_token;

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
    let mut ptr = String::new();
    walk(schema, &mut ptr, false, &mut out);
    out
}

const DATA: [&str; 6] = [
    "enum", "const", "default", "examples", "example", "$comment",
];
const NAMES_MAPS: [&str; 6] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

fn walk(value: &Value, ptr: &mut String, names_map: bool, out: &mut Vec<Unsupported>) {
    match value {
        Value::Object(m) if names_map => {
            for (k, v) in m {
                let len = ptr.len();
                ptr.push('/');
                push_token(ptr, k);
                walk(v, ptr, false, out);
                ptr.truncate(len);
            }
        }
        Value::Object(m) => {
            let at = |k: &str| {
                let mut p = ptr.clone();
                p.push('/');
                push_token(&mut p, k);
                p
            };
            let mut report =
                |keyword: &'static str, message: String, help: &'static str, warning: bool| {
                    out.push(Unsupported {
                        pointer: at(keyword),
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
            if m.contains_key("patternProperties") {
                if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                    report(
                        "patternProperties",
                        "`patternProperties` with `additionalProperties: false`: the Rust generator (typify) panics on this combination".into(),
                        "use a map (`additionalProperties` with a value schema and `propertyNames` with a pattern) or drop `additionalProperties: false`",
                        false,
                    );
                } else if m.contains_key("properties") {
                    report(
                        "patternProperties",
                        "`patternProperties` beside `properties`: the Rust generator (typify) silently ignores it".into(),
                        "move the pattern-named members into a nested map property (`additionalProperties` with a value schema)",
                        false,
                    );
                }
            }
            if m.get("additionalProperties") == Some(&Value::Bool(false))
                && !m.contains_key("patternProperties")
            {
                report(
                    "additionalProperties",
                    "closed content model (`additionalProperties: false`): generated readers reject unknown members, and under FULL compatibility no property can ever be added".into(),
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
            for (k, v) in m {
                if DATA.contains(&k.as_str())
                    || k.starts_with("x-")
                    || !(v.is_object() || v.is_array())
                {
                    continue;
                }
                let len = ptr.len();
                ptr.push('/');
                push_token(ptr, k);
                walk(v, ptr, NAMES_MAPS.contains(&k.as_str()), out);
                ptr.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                walk(v, ptr, false, out);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
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
                "n": {"properties": {}, "patternProperties": {"^x": {}}},
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
        assert!(found.contains(&(
            "/properties/m/patternProperties".into(),
            "patternProperties"
        )));
        assert!(found.contains(&(
            "/properties/n/patternProperties".into(),
            "patternProperties"
        )));
        assert!(found.contains(&("/properties/t/prefixItems".into(), "prefixItems")));
        assert!(found.contains(&("/unevaluatedProperties".into(), "unevaluatedProperties")));
        assert!(found.contains(&("/dependentRequired".into(), "dependentRequired")));
        assert_eq!(found.len(), 7, "{found:?}");
        let closed = find_unsupported(
            &json!({"properties": {"a": {"type": "object", "additionalProperties": false}}}),
        );
        assert_eq!(closed.len(), 1);
        assert!(closed[0].warning);
        assert_eq!(closed[0].pointer, "/properties/a/additionalProperties");
    }
}
