//! `x-entity-key`: the property whose value is the last token of the
//! event's subject (`<event type>.<organization>.<entity key>`), so that
//! events of one entity share a subject and keep their order.
//!
//! Rule `schema/entity-key`: the keyword is a string naming a property of
//! the root `properties` that is `required` and string-like (`type`
//! `string` or `integer`, or an `enum`/`const` of strings), following
//! `$ref`s through the bundled document. An optional or structured key
//! would leave the subject without a token, or with one the runtime
//! refuses.
use serde_json::Value;

use super::finding::Finding;
use super::lock::ENTITY_KEY;
use crate::bundle::push_token;

/// Reads `x-entity-key` of a schema file and checks it. Returns the key
/// when the keyword is a string (even if it names a bad property: the lock
/// and version comparison judge what the file declares).
pub(crate) fn check(
    path: &str,
    own: &Value,
    bundled: Option<&Value>,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    let declared = own.get(ENTITY_KEY)?;
    let pointer = format!("/{ENTITY_KEY}");
    let Value::String(key) = declared else {
        findings.push(Finding::error(
            path,
            pointer,
            "schema/entity-key",
            format!("{ENTITY_KEY} must name a property (a string), not {declared}"),
            format!("write \"{ENTITY_KEY}\": \"<property>\", e.g. \"user_id\""),
        ));
        return None;
    };
    let problem = problem(own, bundled.unwrap_or(own), key);
    if let Some((what, help)) = problem {
        findings.push(Finding::error(
            path,
            pointer,
            "schema/entity-key",
            format!("{ENTITY_KEY} {key:?} {what}"),
            help,
        ));
    }
    Some(key.clone())
}

/// What is wrong with `key` as the entity key of `own`, and how to fix it.
fn problem(own: &Value, bundled: &Value, key: &str) -> Option<(String, String)> {
    let props = own.get("properties").and_then(Value::as_object);
    let names = || {
        props
            .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let Some(prop) = props.and_then(|p| p.get(key)) else {
        return Some((
            "is not a property of the schema".into(),
            format!(
                "name one of its properties ({}) whose value identifies the entity, or remove {ENTITY_KEY}",
                names()
            ),
        ));
    };
    let required = own
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(key)));
    if !required {
        return Some((
            "names an optional property: an event without it would have no subject key".into(),
            format!("add {key:?} to \"required\", or key the event by a required property"),
        ));
    }
    let mut ptr = String::from("/properties/");
    push_token(&mut ptr, key);
    let resolved = bundled.pointer(&ptr).map(|p| resolve(bundled, p));
    // The bundled form rewrote refs; fall back to the file's own property.
    let schema = resolved.unwrap_or_else(|| resolve(own, prop));
    if string_like(schema) {
        None
    } else {
        Some((
            "names a property that is not a string or an integer: its value cannot be a subject token".into(),
            "key the event by an id property (`\"type\": \"string\"`, e.g. a uuid), or remove x-entity-key".into(),
        ))
    }
}

/// Follows local `$ref`s (`#/...`) from `schema`, at most a few steps.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| doc.pointer(p))
        else {
            break;
        };
        if schema.get("type").is_some() {
            break;
        }
        schema = target;
    }
    schema
}

fn string_like(schema: &Value) -> bool {
    let scalar = |t: &str| matches!(t, "string" | "integer");
    match schema.get("type") {
        Some(Value::String(t)) => scalar(t),
        Some(Value::Array(ts)) => {
            !ts.is_empty() && ts.iter().all(|t| t.as_str().is_some_and(scalar))
        }
        Some(_) => false,
        None => {
            let strings = |v: &Value| v.is_string();
            match (schema.get("const"), schema.get("enum")) {
                (Some(c), _) => strings(c),
                (None, Some(Value::Array(vs))) => !vs.is_empty() && vs.iter().all(strings),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(schema: &Value) -> Vec<String> {
        let mut f = Vec::new();
        check("a/b.c.v1.json", schema, None, &mut f);
        f.into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn judges_the_named_property() {
        let ok = json!({"x-entity-key": "id", "properties": {"id": {"$ref": "#/$defs/Id"}},
            "required": ["id"], "$defs": {"Id": {"type": "string", "format": "uuid"}}});
        assert!(rules(&ok).is_empty());
        let optional = json!({"x-entity-key": "id", "properties": {"id": {"type": "string"}}});
        assert!(rules(&optional)[0].contains("optional"));
        let missing = json!({"x-entity-key": "nope", "properties": {"id": {"type": "string"}}});
        assert!(rules(&missing)[0].contains("not a property"));
        let object = json!({"x-entity-key": "id", "properties": {"id": {"type": "object"}}, "required": ["id"]});
        assert!(rules(&object)[0].contains("not a string"));
        let nullable = json!({"x-entity-key": "id", "properties": {"id": {"type": ["string", "null"]}}, "required": ["id"]});
        assert!(rules(&nullable)[0].contains("not a string"));
        assert!(rules(&json!({"x-entity-key": 3}))[0].contains("must name a property"));
    }
}
