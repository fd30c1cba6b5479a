//! The one walk over the schemas of a JSON Schema document, on the keyword
//! table of [`crate::schema_keywords`]: every lint rule that looks at each
//! subschema (patterns, unsupported keywords, reserved names) and the
//! registry matcher of `tidings::testing` visit the same schemas, so none
//! of them reads an `enum` value or an example as a schema, or misses a
//! subschema another one sees.
use serde_json::{Map, Value};

use crate::bundle::push_token;
use crate::schema_keywords::{is_data, is_names_map};

/// One schema object met by [`each_schema`].
#[derive(Debug, Clone, Copy)]
pub struct SchemaAt<'a> {
    /// JSON pointer of the schema in the document (`""` for the root).
    pub pointer: &'a str,
    /// The schema's members.
    pub schema: &'a Map<String, Value>,
    /// Whether it is the document's root schema.
    pub root: bool,
}

impl SchemaAt<'_> {
    /// The pointer of member `keyword` of this schema (escaped).
    pub fn pointer_to(&self, keyword: &str) -> String {
        let mut p = self.pointer.to_string();
        p.push('/');
        push_token(&mut p, keyword);
        p
    }
}

/// Calls `f` for every schema object of `doc`, parents before their
/// subschemas (siblings in the order `serde_json` keeps members): the root
/// and every subschema reached through a keyword that does not hold data
/// (see [`is_data`]: `enum`, `const`, `default`, `examples`, `x-…` are
/// skipped), through arrays of schemas (`allOf`, `items` tuples) and
/// through each member of a map from names to schemas (`properties`,
/// `$defs`, `patternProperties`, …).
pub fn each_schema(doc: &Value, mut f: impl FnMut(SchemaAt<'_>)) {
    let mut ptr = String::new();
    walk(doc, &mut ptr, true, &mut f);
}

fn walk(v: &Value, ptr: &mut String, root: bool, f: &mut impl FnMut(SchemaAt<'_>)) {
    match v {
        Value::Object(m) => {
            f(SchemaAt {
                pointer: ptr,
                schema: m,
                root,
            });
            for (k, child) in m {
                if is_data(k) {
                    continue;
                }
                let len = ptr.len();
                ptr.push('/');
                push_token(ptr, k);
                match child {
                    Value::Object(entries) if is_names_map(k) => {
                        for (name, schema) in entries {
                            let len = ptr.len();
                            ptr.push('/');
                            push_token(ptr, name);
                            walk(schema, ptr, false, f);
                            ptr.truncate(len);
                        }
                    }
                    _ => walk(child, ptr, false, f),
                }
                ptr.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                walk(item, ptr, false, f);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}

/// [`each_schema`] for changing the schemas in place: `f` gets every schema
/// object [`each_schema`] would visit, before its subschemas.
pub fn each_schema_mut(doc: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    match doc {
        Value::Object(m) => {
            f(m);
            for (k, child) in m.iter_mut() {
                if is_data(k) {
                    continue;
                }
                match child {
                    Value::Object(entries) if is_names_map(k) => {
                        entries.values_mut().for_each(|s| each_schema_mut(s, f));
                    }
                    _ => each_schema_mut(child, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| each_schema_mut(item, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        each_schema(doc, |s| out.push(s.pointer.to_string()));
        out.sort();
        out
    }

    #[test]
    fn visits_subschemas_and_never_data() {
        let doc = json!({
            "properties": {
                "a/b": {"items": [{"type": "string"}], "enum": [{"type": "x"}]},
                "pattern": {"not": {"const": {"properties": {}}}}
            },
            "$defs": {"D": {"allOf": [{}, {"examples": [{}]}]}},
            "default": {"properties": {}},
            "x-meta": {"type": "object"}
        });
        assert_eq!(
            pointers(&doc),
            [
                "",
                "/$defs/D",
                "/$defs/D/allOf/0",
                "/$defs/D/allOf/1",
                "/properties/a~1b",
                "/properties/a~1b/items/0",
                "/properties/pattern",
                "/properties/pattern/not",
            ]
        );
        let mut seen = 0;
        let mut copy = doc.clone();
        each_schema_mut(&mut copy, &mut |_| seen += 1);
        assert_eq!(seen, 8, "the mutable walk visits the same schemas");
    }
}
