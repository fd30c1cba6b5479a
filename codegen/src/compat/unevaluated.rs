//! `unevaluatedProperties` and `unevaluatedItems` (2019-09, 2020-12).
//!
//! They apply to the properties (items) that no other keyword of the same
//! schema object, or of a subschema an in-place applicator applied
//! successfully, evaluated. Where nothing but the node's own keywords can
//! evaluate (no applicator left after `allOf` merging), they are rewritten
//! exactly: `unevaluatedProperties` becomes `additionalProperties` (or has
//! no effect beside one), `unevaluatedItems` becomes the rest of the tuple
//! (or has no effect beside it). What remains cannot be compared keyword by
//! keyword: [`irreducible`] nodes are compared as a whole (see
//! [`super::walk::Ctx::compare`]).
use serde_json::{Map, Value};

use super::walk::{is_trivially_true, join, ref_to, Draft, Node};

/// The keywords of this module.
pub(crate) const KEYWORDS: [&str; 2] = ["unevaluatedProperties", "unevaluatedItems"];

/// In-place applicators whose subschemas' evaluations count for
/// `unevaluated*` (`not` never contributes: it passes only when its
/// subschema fails).
const APPLICATORS: &[&str] = &[
    "allOf",
    "anyOf",
    "oneOf",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependencies",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
];

fn has_applicator(m: &Map<String, Value>) -> bool {
    APPLICATORS.iter().any(|k| m.contains_key(*k))
}

/// The value moved to `key`: booleans as they are, schemas as a `$ref` to
/// where they really live (so reported pointers stay true).
fn moved(m: &Map<String, Value>, ptr: &str, from: &str) -> Option<Value> {
    let v = m.get(from)?;
    Some(match v {
        Value::Object(o) if !(o.len() == 1 && o.contains_key("$ref")) => ref_to(&join(ptr, from)),
        other => other.clone(),
    })
}

/// Rewrites the node's `unevaluated*` keywords into the keywords they equal
/// where that is exact; leaves them where it is not. Returns whether the
/// node changed.
pub(crate) fn reduce(node: &mut Node, draft: Draft) -> bool {
    let ptr = node.ptr.clone();
    let Some(m) = node.v.as_object_mut() else {
        return false;
    };
    if !KEYWORDS.iter().any(|k| m.contains_key(*k)) {
        return false;
    }
    if draft <= Draft::D7 {
        // Not a keyword before 2019-09: validators ignore it.
        for k in KEYWORDS {
            m.remove(k);
        }
        return true;
    }
    let before = m.clone();
    let applied = has_applicator(m);
    if let Some(up) = m.get("unevaluatedProperties") {
        if is_trivially_true(up) || m.contains_key("additionalProperties") {
            m.remove("unevaluatedProperties");
        } else if !applied {
            if let Some(v) = moved(m, &ptr, "unevaluatedProperties") {
                m.insert("additionalProperties".into(), v);
            }
            m.remove("unevaluatedProperties");
        }
    }
    if let Some(ui) = m.get("unevaluatedItems") {
        let tuple = m.get("items").is_some_and(Value::is_array);
        let rest_given = match draft {
            Draft::D2019 => {
                (m.contains_key("items") && !tuple) || (tuple && m.contains_key("additionalItems"))
            }
            _ => m.contains_key("items") && !tuple,
        };
        if is_trivially_true(ui) || rest_given {
            m.remove("unevaluatedItems");
        } else if !applied && !m.contains_key("contains") {
            let target = match draft {
                Draft::D2019 if m.contains_key("prefixItems") => None,
                Draft::D2019 if tuple => Some("additionalItems"),
                Draft::D2019 => Some("items"),
                _ if tuple => None,
                _ => Some("items"),
            };
            if let Some(target) = target {
                if let Some(v) = moved(m, &ptr, "unevaluatedItems") {
                    m.insert(target.into(), v);
                }
                m.remove("unevaluatedItems");
            }
        }
    }
    let changed = *m != before;
    if changed {
        node.pure = false;
    }
    changed
}

/// Whether a (reduced) node still holds an `unevaluated*` keyword.
pub(crate) fn irreducible(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| KEYWORDS.iter().any(|k| m.contains_key(*k)))
}
