//! `type`, `enum` and `const`: which JSON values a subschema can accept.
use serde_json::Value;

use super::error::CompatError;
use super::example;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::walk::{Ctx, Node, Pending, Side};

/// A set of JSON types; `number` is split into integers and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u8);

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const OBJECT: u8 = 4;
const ARRAY: u8 = 8;
const INTEGER: u8 = 16;
const FRACTION: u8 = 32;
const STRING: u8 = 64;
const ALL: u8 = 127;

impl TypeSet {
    pub(crate) const ALL: TypeSet = TypeSet(ALL);

    fn from_name(name: &str) -> TypeSet {
        TypeSet(match name {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "object" => OBJECT,
            "array" => ARRAY,
            "integer" => INTEGER,
            "number" => INTEGER | FRACTION,
            "string" => STRING,
            _ => 0,
        })
    }

    /// The type of one JSON value.
    pub(crate) fn of_value(v: &Value) -> TypeSet {
        TypeSet(match v {
            Value::Null => NULL,
            Value::Bool(_) => BOOLEAN,
            Value::Object(_) => OBJECT,
            Value::Array(_) => ARRAY,
            Value::String(_) => STRING,
            Value::Number(n) => {
                if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                    INTEGER
                } else {
                    FRACTION
                }
            }
        })
    }

    pub(crate) fn intersect(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 & o.0)
    }
    pub(crate) fn minus(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 & !o.0)
    }
    pub(crate) fn union(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 | o.0)
    }
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub(crate) fn has_string(self) -> bool {
        self.0 & STRING != 0
    }
    pub(crate) fn has_number(self) -> bool {
        self.0 & (INTEGER | FRACTION) != 0
    }
    pub(crate) fn has_array(self) -> bool {
        self.0 & ARRAY != 0
    }
    pub(crate) fn is_integer_only(self) -> bool {
        self.0 & FRACTION == 0
    }
    pub(crate) fn has_object(self) -> bool {
        self.0 & OBJECT != 0
    }

    /// JSON Schema type names covering this set (`number` for both numeric parts).
    pub(crate) fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, name) in [
            (NULL, "null"),
            (BOOLEAN, "boolean"),
            (OBJECT, "object"),
            (ARRAY, "array"),
            (STRING, "string"),
        ] {
            if self.0 & bit != 0 {
                out.push(name);
            }
        }
        match self.0 & (INTEGER | FRACTION) {
            x if x == INTEGER | FRACTION => out.push("number"),
            INTEGER => out.push("integer"),
            FRACTION => out.push("non-integer number"),
            _ => {}
        }
        out
    }

    /// The names as a `type` keyword value (a non-integer part becomes `number`).
    pub(crate) fn as_type_keyword(self) -> Value {
        let mut names: Vec<Value> = Vec::new();
        for n in self.names() {
            names.push(Value::String(if n == "non-integer number" {
                "number".into()
            } else {
                n.into()
            }));
        }
        Value::Array(names)
    }
}

/// The conjunction of two `type` keyword values.
pub(crate) fn intersect_type_values(a: &Value, b: &Value) -> Value {
    let set = |v: &Value| match v {
        Value::String(s) => TypeSet::from_name(s),
        Value::Array(xs) => xs
            .iter()
            .filter_map(Value::as_str)
            .map(TypeSet::from_name)
            .fold(TypeSet(0), TypeSet::union),
        _ => TypeSet::ALL,
    };
    set(a).intersect(set(b)).as_type_keyword()
}

/// The declared `type` of a node (all types when absent or malformed).
pub(crate) fn declared(node: &Node) -> TypeSet {
    match node.get("type") {
        Some(Value::String(s)) => TypeSet::from_name(s),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(TypeSet::from_name)
            .fold(TypeSet(0), TypeSet::union),
        _ => TypeSet::ALL,
    }
}

/// The `enum` values of a node, with `const` as a one-value enum.
pub(crate) fn enum_values(node: &Node) -> Option<Vec<Value>> {
    if let Some(c) = node.get("const") {
        let mut values = vec![c.clone()];
        if let Some(Value::Array(e)) = node.get("enum") {
            values.retain(|v| e.iter().any(|x| json_eq(x, v)));
        }
        return Some(values);
    }
    match node.get("enum") {
        Some(Value::Array(e)) => Some(e.clone()),
        _ => None,
    }
}

fn enum_ptr(node: &Node) -> String {
    if node.get("const").is_some() {
        node.kw_ptr("const")
    } else {
        node.kw_ptr("enum")
    }
}

/// The types a node can accept, taking `enum`/`const` into account.
pub(crate) fn effective(node: &Node) -> TypeSet {
    let d = declared(node);
    match enum_values(node) {
        Some(values) => d.intersect(
            values
                .iter()
                .map(TypeSet::of_value)
                .fold(TypeSet(0), TypeSet::union),
        ),
        None => d,
    }
}

/// [`effective`], also intersected with the types of the `allOf`
/// subschemas left after flattening.
pub(crate) fn effective_deep(ctx: &mut Ctx<'_>, side: Side, node: &Node, depth: usize) -> TypeSet {
    let mut t = effective(node);
    if depth > 8 {
        return t;
    }
    if let Some(Value::Array(subs)) = node.get("allOf") {
        for (i, sub) in subs.iter().enumerate() {
            let ptr = super::walk::join(&super::walk::join(&node.ptr, "allOf"), &i.to_string());
            if let Ok(resolved) = ctx.normalize(side, &Node::new(ptr, sub.clone())) {
                if resolved.v.is_object() {
                    t = t.intersect(effective_deep(ctx, side, &resolved, depth + 1));
                }
            }
        }
    }
    t
}

/// JSON equality where `1` and `1.0` are the same number.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// What the type comparison learnt, for the other modules.
pub(crate) struct Typed {
    pub old_types: TypeSet,
    pub new_types: TypeSet,
    /// Old side is a finite set of scalars: its readers direction is checked
    /// value by value.
    pub old_exact: bool,
    /// Same for the new side and the writers direction.
    pub new_exact: bool,
    /// Index in `out` where this node's own changes start.
    pub start: usize,
}

fn scalar_enum(node: &Node) -> Option<Vec<Value>> {
    let values = enum_values(node)?;
    if values.iter().all(|v| !v.is_object() && !v.is_array()) {
        Some(values)
    } else {
        None
    }
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// Compares `type`, `enum` and `const`.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<Typed, CompatError> {
    let start = out.len();
    let old_types = effective_deep(ctx, Side::Old, o, 0);
    let new_types = effective_deep(ctx, Side::New, n, 0);
    let old_enum = enum_values(o);
    let new_enum = enum_values(n);
    let typed = Typed {
        old_types,
        new_types,
        old_exact: scalar_enum(o).is_some(),
        new_exact: scalar_enum(n).is_some(),
        start,
    };
    if old_enum.is_none() || new_enum.is_none() {
        let lost = old_types.minus(new_types);
        if !lost.is_empty() {
            let reject = serde_json::json!({ "type": new_types.as_type_keyword() });
            let candidates = example::scalar_witnesses(ctx, Side::Old, o, n, &reject);
            out.push(Pending::new(
                ChangeKind::TypeNarrowed,
                o.kw_ptr("type"),
                n.kw_ptr("type"),
                Breaks::Readers,
                format!(
                    "type narrowed: {} no longer accepted, so old documents holding one are rejected",
                    lost.names().join(", ")
                ),
                candidates,
            ));
        }
        let gained = new_types.minus(old_types);
        if !gained.is_empty() {
            let reject = serde_json::json!({ "type": old_types.as_type_keyword() });
            let candidates = example::scalar_witnesses(ctx, Side::New, n, o, &reject);
            out.push(Pending::new(
                ChangeKind::TypeWidened,
                o.kw_ptr("type"),
                n.kw_ptr("type"),
                Breaks::Writers,
                format!(
                    "type widened: {} now accepted, which old readers reject",
                    gained.names().join(", ")
                ),
                candidates,
            ));
        }
    }
    match (&old_enum, &new_enum) {
        (None, Some(_)) if !typed.old_exact => {
            let reject = serde_json::json!({ "enum": new_enum.clone().unwrap_or_default() });
            let candidates = example::scalar_witnesses(ctx, Side::Old, o, n, &reject);
            out.push(Pending::new(
                ChangeKind::EnumAdded,
                o.ptr.clone(),
                enum_ptr(n),
                Breaks::Readers,
                "values are now restricted to an enum/const: old documents with other values are rejected",
                candidates,
            ));
        }
        (Some(_), None) if !typed.new_exact => {
            let reject = serde_json::json!({ "enum": old_enum.clone().unwrap_or_default() });
            let candidates = example::scalar_witnesses(ctx, Side::New, n, o, &reject);
            out.push(Pending::new(
                ChangeKind::EnumRemoved,
                enum_ptr(o),
                n.ptr.clone(),
                Breaks::Writers,
                "the enum/const restriction was dropped: new documents may carry values old readers reject",
                candidates,
            ));
        }
        (Some(ov), Some(nv)) => {
            // Values the side's own `type` rules out can never occur.
            let (odecl, ndecl) = (declared(o), declared(n));
            let ov: Vec<Value> = ov
                .iter()
                .filter(|v| !TypeSet::of_value(v).intersect(odecl).is_empty())
                .cloned()
                .collect();
            let nv: Vec<Value> = nv
                .iter()
                .filter(|v| !TypeSet::of_value(v).intersect(ndecl).is_empty())
                .cloned()
                .collect();
            let (ov, nv) = (&ov, &nv);
            if !typed.old_exact {
                for v in ov.iter().filter(|v| !nv.iter().any(|w| json_eq(v, w))) {
                    out.push(Pending::new(
                        ChangeKind::EnumValueRemoved,
                        enum_ptr(o),
                        enum_ptr(n),
                        Breaks::Readers,
                        format!(
                            "enum value {} removed: old documents holding it are rejected",
                            describe(v)
                        ),
                        vec![v.clone()],
                    ));
                }
            }
            if !typed.new_exact {
                for v in nv.iter().filter(|v| !ov.iter().any(|w| json_eq(v, w))) {
                    out.push(Pending::new(
                        ChangeKind::EnumValueAdded,
                        enum_ptr(o),
                        enum_ptr(n),
                        Breaks::Writers,
                        format!(
                            "enum value {} added: old readers reject documents holding it",
                            describe(v)
                        ),
                        vec![v.clone()],
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(typed)
}

/// Where a side is a finite set of scalars, replaces the structural verdict
/// of this node's own keywords in that direction by a value-by-value check.
pub(crate) fn apply_exact_enums(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    typed: &Typed,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    if typed.old_exact {
        let mut i = typed.start;
        while i < out.len() {
            if out[i].breaks == Breaks::Readers {
                out.remove(i);
            } else {
                i += 1;
            }
        }
        exact(ctx, Side::Old, o, n, out);
    }
    if typed.new_exact {
        let mut i = typed.start;
        while i < out.len() {
            if out[i].breaks == Breaks::Writers {
                out.remove(i);
            } else {
                i += 1;
            }
        }
        exact(ctx, Side::New, n, o, out);
    }
    Ok(())
}

/// Each value of `from`'s enum that `from` accepts and `to` rejects.
fn exact(ctx: &mut Ctx<'_>, side: Side, from: &Node, to: &Node, out: &mut Vec<Pending>) {
    let Some(values) = scalar_enum(from) else {
        return;
    };
    let to_enum = enum_values(to);
    let from_view = example::scalar_view(ctx, side, from);
    let to_side = if side == Side::Old {
        Side::New
    } else {
        Side::Old
    };
    let to_view = example::scalar_view(ctx, to_side, to);
    for v in values {
        if example::view_accepts(&from_view, &v) == Some(false) {
            continue;
        }
        let in_to_enum = to_enum
            .as_ref()
            .is_none_or(|e| e.iter().any(|w| json_eq(w, &v)));
        let rejected = !in_to_enum || example::view_accepts(&to_view, &v) == Some(false);
        if !rejected {
            continue;
        }
        let (kind, breaks, message) = match (side, in_to_enum) {
            (Side::Old, false) => (
                ChangeKind::EnumValueRemoved,
                Breaks::Readers,
                format!("value {} is no longer allowed: old documents holding it are rejected", describe(&v)),
            ),
            (Side::Old, true) => (
                ChangeKind::EnumValueRejected,
                Breaks::Readers,
                format!(
                    "old enum value {} is rejected by the new schema's other keywords: old documents holding it are rejected",
                    describe(&v)
                ),
            ),
            (Side::New, false) if to_enum.is_some() => (
                ChangeKind::EnumValueAdded,
                Breaks::Writers,
                format!("value {} is newly allowed: old readers reject documents holding it", describe(&v)),
            ),
            (Side::New, _) => (
                ChangeKind::EnumValueNewlyAccepted,
                Breaks::Writers,
                format!("new value {} is rejected by the old schema: old readers reject documents holding it", describe(&v)),
            ),
        };
        let (old_path, new_path) = match side {
            Side::Old => (enum_ptr(from), to.ptr.clone()),
            Side::New => (to.ptr.clone(), enum_ptr(from)),
        };
        let (old_path, new_path) = match side {
            Side::Old if to_enum.is_some() => (old_path, enum_ptr(to)),
            Side::New if to_enum.is_some() => (enum_ptr(to), new_path),
            _ => (old_path, new_path),
        };
        out.push(Pending::new(
            kind,
            old_path,
            new_path,
            breaks,
            message,
            vec![v],
        ));
    }
}
