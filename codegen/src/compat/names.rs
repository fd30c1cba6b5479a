//! `propertyNames` (draft 6 on): a schema every property name (a string)
//! must meet.
//!
//! Where a side's documents can only carry the names it declares (a closed
//! model without `patternProperties`; under the lenient policy also an open
//! one without applicators), the names are checked one by one with a
//! validator. Otherwise the two `propertyNames` schemas are compared as
//! string schemas, and each change is reported with an object carrying a
//! name that shows it.
use serde_json::{json, Map, Value};

use super::error::CompatError;
use super::example::{self, with_property};
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::walk::{is_false, is_trivially_true, relocated_child, Ctx, Draft, Node, Pending, Side};

/// Applicators through which a subschema may declare more names.
const APPLICATORS: &[&str] = &[
    "allOf",
    "anyOf",
    "oneOf",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependencies",
];

/// The side's `propertyNames` as a string schema (`{"type": "string"}`
/// when it has none).
fn names_schema(ctx: &Ctx<'_>, side: Side, node: &Node) -> Node {
    match node.child("propertyNames") {
        Some(p) if ctx.draft(side) >= Draft::D6 => {
            let mut m = Map::new();
            m.insert("type".into(), json!("string"));
            m.insert(
                "allOf".into(),
                json!([relocated_child(&p.v, p.ptr.clone())]),
            );
            Node::new(p.ptr, Value::Object(m))
        }
        _ => Node::new(node.ptr.clone(), json!({"type": "string"})),
    }
}

/// The only names the side's documents carry, when they are known.
fn finite_names(ctx: &Ctx<'_>, node: &Node) -> Option<Vec<String>> {
    if node.get("patternProperties").is_some() {
        return None;
    }
    let extras = node.get("additionalProperties");
    let closed = extras.is_some_and(is_false);
    let lenient_closed = !ctx.strict()
        && extras.is_none_or(|e| is_trivially_true(e) || is_false(e))
        && APPLICATORS.iter().all(|k| node.get(k).is_none());
    if !closed && !lenient_closed {
        return None;
    }
    Some(
        node.get("properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    )
}

/// A validator for a side's `propertyNames` alone; `None` when it refers
/// elsewhere or does not compile.
fn names_validator(ctx: &Ctx<'_>, side: Side, node: &Node) -> Option<jsonschema::Validator> {
    let p = match node.get("propertyNames") {
        Some(p) if ctx.draft(side) >= Draft::D6 => p.clone(),
        _ => Value::Bool(true),
    };
    if super::walk::contains_ref(&p) {
        return None;
    }
    let schema = match p {
        Value::Object(mut m) => {
            if let Some(s) = ctx.root(side).get("$schema") {
                m.insert("$schema".into(), s.clone());
            }
            Value::Object(m)
        }
        other => other,
    };
    example::compile(&schema)
}

/// A value for property `name` in a document of `node`.
fn value_for(ctx: &mut Ctx<'_>, side: Side, node: &Node, name: &str) -> Value {
    let schema = node
        .child2("properties", name)
        .or_else(|| node.child("additionalProperties"));
    schema
        .and_then(|s| example::generate(ctx, side, &s))
        .unwrap_or(Value::Null)
}

/// Compares the `propertyNames` of two object nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    if o.get("propertyNames") == n.get("propertyNames") && ctx.old_draft == ctx.new_draft {
        return Ok(());
    }
    let (on, nn) = (
        names_schema(ctx, Side::Old, o),
        names_schema(ctx, Side::New, n),
    );
    let mut general: Option<Vec<Pending>> = None;
    for breaks in [Breaks::Readers, Breaks::Writers] {
        let (side, from, to, other_side) = match breaks {
            Breaks::Writers => (Side::New, n, o, Side::Old),
            _ => (Side::Old, o, n, Side::New),
        };
        let base = example::generate(ctx, side, from).filter(Value::is_object);
        let exact = finite_names(ctx, from).and_then(|names| {
            let accept = names_validator(ctx, side, from)?;
            let reject = names_validator(ctx, other_side, to)?;
            Some(
                names
                    .into_iter()
                    .filter(|name| {
                        let s = Value::String(name.clone());
                        accept.is_valid(&s) && !reject.is_valid(&s)
                    })
                    .collect::<Vec<String>>(),
            )
        });
        if let Some(rejected) = exact {
            for name in rejected {
                let v = value_for(ctx, side, from, &name);
                let (kind, message) = match breaks {
                    Breaks::Writers => (
                        ChangeKind::PropertyNamesWidened,
                        format!("property name {name:?} is allowed by the new propertyNames only: old readers reject new documents that carry it"),
                    ),
                    _ => (
                        ChangeKind::PropertyNamesNarrowed,
                        format!("property name {name:?} is rejected by the new propertyNames: old documents that carry it are rejected"),
                    ),
                };
                out.push(Pending::new(
                    kind,
                    o.kw_ptr("propertyNames"),
                    n.kw_ptr("propertyNames"),
                    breaks,
                    message,
                    vec![with_property(&base, &name, v)],
                ));
            }
            continue;
        }
        if general.is_none() {
            general = Some(ctx.compare(&on, &nn)?);
        }
        for p in general.iter().flatten().filter(|p| p.breaks == breaks) {
            let mut p = p.clone();
            let mut candidates = Vec::new();
            for c in std::mem::take(&mut p.candidates) {
                if let Value::String(name) = c {
                    let v = value_for(ctx, side, from, &name);
                    candidates.push(with_property(&base, &name, v));
                    candidates.push(with_property(&base, &name, Value::Null));
                }
            }
            p.candidates = candidates;
            p.message = format!("property names: {}", p.message);
            out.push(p);
        }
    }
    Ok(())
}
