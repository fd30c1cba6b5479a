//! Finds where in the schemas a typify failure (a panic or an error)
//! comes from, by bisection: a named schema, then ever smaller subschemas,
//! are replaced by `{}` (accept anything) until typify succeeds. The last
//! replacement that made it succeed is the culprit; its JSON pointer is
//! mapped back to the file it was written in (a version's file, or the
//! shared file a copied definition came from).
use std::collections::BTreeMap;

use serde_json::Value;

use super::typify_run;
use crate::bundle::push_token;
use crate::registry::load::EventFile;

/// Keywords whose value is a map of subschemas.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a subschema (or, for `items`, a list of them).
const SCHEMA_ONE: [&str; 11] = [
    "items",
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// The named schema and the pointer inside it whose replacement by `{}`
/// makes typify succeed, or `None` when no single one does.
pub(crate) fn culprit(
    types: &BTreeMap<String, Value>,
    common: &typify_run::Impls,
) -> Option<(String, String)> {
    let fails = |t: &BTreeMap<String, Value>| typify_run::run(t, common).is_err();
    let name = types.keys().find(|name| {
        let mut t = types.clone();
        t.insert((*name).clone(), Value::Object(Default::default()));
        !fails(&t)
    })?;
    let mut at = String::new();
    'descend: loop {
        let node = types.get(name)?.pointer(&at)?;
        for child in children(node, &at) {
            let mut t = types.clone();
            if let Some(slot) = t.get_mut(name).and_then(|v| v.pointer_mut(&child)) {
                *slot = Value::Object(Default::default());
            }
            if !fails(&t) {
                at = child;
                continue 'descend;
            }
        }
        return Some((name.clone(), at));
    }
}

/// The pointers of the direct subschemas of `node` (at `at`).
fn children(node: &Value, at: &str) -> Vec<String> {
    let Value::Object(m) = node else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |parts: &[&str]| {
        let mut p = at.to_string();
        for part in parts {
            p.push('/');
            push_token(&mut p, part);
        }
        out.push(p);
    };
    for (k, v) in m {
        match v {
            Value::Object(entries) if SCHEMA_MAPS.contains(&k.as_str()) => {
                for name in entries.keys() {
                    push(&[k, name]);
                }
            }
            Value::Array(items) if SCHEMA_LISTS.contains(&k.as_str()) || k == "items" => {
                for i in 0..items.len() {
                    push(&[k, &i.to_string()]);
                }
            }
            Value::Object(_) if SCHEMA_ONE.contains(&k.as_str()) => push(&[k]),
            _ => {}
        }
    }
    out
}

/// Maps a pointer inside named schema `name` to the file and pointer it
/// was written at: a version's root is its file; a definition is the
/// shared file it was copied from, or the `$defs` of a version's file.
pub(crate) fn source_of(
    name: &str,
    pointer: &str,
    roots: &[(String, String)],
    files: &[&EventFile],
) -> Option<(String, String)> {
    if let Some((_, file)) = roots.iter().find(|(n, _)| n == name) {
        return Some((file.clone(), pointer.to_string()));
    }
    for f in files.iter().rev() {
        let Some(b) = &f.bundled else { continue };
        if let Some(o) = b.origins.get(name) {
            return Some((
                o.file.to_string_lossy().into_owned(),
                format!("{}{pointer}", o.pointer),
            ));
        }
        for container in ["$defs", "definitions"] {
            let mut p = format!("/{container}");
            p.push('/');
            push_token(&mut p, name);
            if f.value.pointer(&p).is_some() {
                return Some((f.path.clone(), format!("{p}{pointer}")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// typify panics on a `$ref` to an anchor (the lint refuses it before
    /// generation; here it stands for any subschema typify cannot take).
    fn panicking() -> Value {
        json!({"$ref": "#name"})
    }

    #[test]
    fn bisects_to_the_subschema_typify_cannot_take() {
        let mut types = BTreeMap::new();
        types.insert(
            "UserCreatedV1".to_string(),
            json!({"type": "object", "properties": {
                "ok": {"type": "string"},
                "list": {"type": "array", "items": {"anyOf": [{"type": "integer"}, panicking()]}}
            }}),
        );
        types.insert("Money".to_string(), json!({"type": "string"}));
        assert!(typify_run::run(&types, &Default::default()).is_err());
        assert_eq!(
            culprit(&types, &Default::default()),
            Some((
                "UserCreatedV1".to_string(),
                "/properties/list/items/anyOf/1".to_string()
            ))
        );
        // In a definition.
        types.insert(
            "UserCreatedV1".to_string(),
            json!({"type": "object", "properties": {"m": {"$ref": "#/$defs/Money"}}}),
        );
        types.insert(
            "Money".to_string(),
            json!({"type": "object", "properties": {"x": panicking()}}),
        );
        assert_eq!(
            culprit(&types, &Default::default()),
            Some(("Money".to_string(), "/properties/x".to_string()))
        );
    }

    #[test]
    fn maps_roots_to_their_files() {
        let roots = vec![(
            "UserCreatedV1".to_string(),
            "auth/user.created.v1.json".to_string(),
        )];
        assert_eq!(
            source_of("UserCreatedV1", "/properties/a", &roots, &[]),
            Some((
                "auth/user.created.v1.json".to_string(),
                "/properties/a".to_string()
            ))
        );
        assert_eq!(source_of("Unknown", "", &roots, &[]), None);
    }
}
