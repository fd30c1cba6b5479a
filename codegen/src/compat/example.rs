//! Example documents: generating values a subschema accepts, candidate
//! witnesses for a change, and wrapping a nested witness into its parent.
use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::types::{self, TypeSet};
use super::walk::{is_false, Ctx, Node, Side};

/// Most candidates kept per change.
const MAX_CANDIDATES: usize = 24;

/// Compiled `{"pattern": p}` validators, by pattern.
#[derive(Default)]
pub(crate) struct PatternCache(HashMap<String, Option<jsonschema::Validator>>);

impl PatternCache {
    /// Whether `s` matches `pattern`; `None` if the pattern does not compile.
    pub(crate) fn matches(&mut self, pattern: &str, s: &str) -> Option<bool> {
        let v = self
            .0
            .entry(pattern.to_string())
            .or_insert_with(|| jsonschema::validator_for(&json!({ "pattern": pattern })).ok());
        v.as_ref()
            .map(|v| v.is_valid(&Value::String(s.to_string())))
    }
}

/// A validator for a small schema; `None` if it does not compile.
pub(crate) fn compile(schema: &Value) -> Option<jsonschema::Validator> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .ok()
}

const SCALAR_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// The node's scalar keywords only, under its document's `$schema`.
pub(crate) fn scalar_view_schema(ctx: &Ctx<'_>, side: Side, node: &Node) -> Value {
    let mut m = Map::new();
    if let Some(s) = ctx.root(side).get("$schema") {
        m.insert("$schema".into(), s.clone());
    }
    for k in SCALAR_KEYWORDS {
        if let Some(v) = node.get(k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// A compiled [`scalar_view_schema`].
pub(crate) fn scalar_view(ctx: &Ctx<'_>, side: Side, node: &Node) -> Option<jsonschema::Validator> {
    compile(&scalar_view_schema(ctx, side, node))
}

/// Whether a view accepts a value; `None` if the view did not compile.
pub(crate) fn view_accepts(view: &Option<jsonschema::Validator>, v: &Value) -> Option<bool> {
    view.as_ref().map(|view| view.is_valid(v))
}

/// A schema made of `keys` of `node` only, under the document's `$schema`.
pub(crate) fn keywords_schema(ctx: &Ctx<'_>, side: Side, node: &Node, keys: &[&str]) -> Value {
    let mut m = Map::new();
    if let Some(s) = ctx.root(side).get("$schema") {
        m.insert("$schema".into(), s.clone());
    }
    for k in keys {
        if let Some(v) = node.get(k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// Candidate values that `accept`'s scalar keywords accept and the small
/// schema `reject` rejects.
pub(crate) fn scalar_witnesses(
    ctx: &mut Ctx<'_>,
    side: Side,
    accept: &Node,
    other: &Node,
    reject: &Value,
) -> Vec<Value> {
    if !ctx.examples {
        return Vec::new();
    }
    let mut pool = Vec::new();
    if let Some(g) = generate(ctx, side, accept) {
        pool.push(g);
    }
    pool.extend(scalar_pool(accept, other));
    let accept_view = scalar_view(ctx, side, accept);
    let mut reject = reject.clone();
    let other_side = if side == Side::Old {
        Side::New
    } else {
        Side::Old
    };
    if let (Some(m), Some(s)) = (reject.as_object_mut(), ctx.root(other_side).get("$schema")) {
        m.insert("$schema".into(), s.clone());
    }
    let Some(reject_view) = compile(&reject) else {
        pool.truncate(MAX_CANDIDATES);
        return pool;
    };
    let mut out: Vec<Value> = Vec::new();
    for c in pool {
        if view_accepts(&accept_view, &c) != Some(false)
            && !reject_view.is_valid(&c)
            && !out.contains(&c)
        {
            out.push(c);
            if out.len() >= MAX_CANDIDATES {
                break;
            }
        }
    }
    out
}

/// Values of every type, starting with one the node accepts.
pub(crate) fn any_values(ctx: &mut Ctx<'_>, side: Side, node: &Node) -> Vec<Value> {
    if !ctx.examples {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(g) = generate(ctx, side, node) {
        if g.is_object() {
            // The generated object with each declared property set to odd values.
            let names: Vec<String> = ctx
                .normalize(side, node)
                .ok()
                .and_then(|n| {
                    n.get("properties")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                })
                .unwrap_or_default();
            out.push(g.clone());
            let base = Some(g);
            for name in names.iter().take(8) {
                for v in generic_values().into_iter().take(9) {
                    out.push(with_property(&base, name, v));
                }
            }
        } else {
            out.push(g);
        }
    }
    out.extend(generic_values());
    out
}

/// A handful of values of every JSON type.
pub(crate) fn generic_values() -> Vec<Value> {
    vec![
        json!("x"),
        json!(0),
        json!(null),
        json!(true),
        json!(0.5),
        json!({}),
        json!([]),
        json!(-1),
        json!(""),
        json!({"x": null}),
        json!([null]),
        json!(1000000),
        json!("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
    ]
}

const FORMAT_SAMPLES: &[(&str, &str)] = &[
    ("date-time", "2024-01-02T03:04:05Z"),
    ("date", "2024-01-02"),
    ("time", "03:04:05Z"),
    ("email", "user@example.com"),
    ("idn-email", "user@example.com"),
    ("hostname", "example.com"),
    ("idn-hostname", "example.com"),
    ("ipv4", "192.0.2.1"),
    ("ipv6", "2001:db8::1"),
    ("uri", "https://example.com/x"),
    ("uri-reference", "/x"),
    ("iri", "https://example.com/x"),
    ("iri-reference", "/x"),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000"),
    ("duration", "P1D"),
    ("regex", "^a$"),
    ("json-pointer", "/a"),
    ("relative-json-pointer", "0/a"),
    ("uri-template", "https://example.com/{x}"),
];

fn format_sample(format: &str) -> Option<&'static str> {
    FORMAT_SAMPLES
        .iter()
        .find(|(f, _)| *f == format)
        .map(|(_, s)| *s)
}

const STRING_SAMPLES: &[&str] = &[
    "",
    "a",
    "A",
    "0",
    "abc",
    "ABC",
    "123",
    "a1",
    "A1",
    "a-b",
    "a_b",
    "a b",
    "aB3",
    "abc123",
    "hello world",
    "x",
    "-",
    "_",
    ".",
    "zz",
    "ab",
    "AB",
    "12",
    "1a",
    "a.b",
    "aaa-123",
    "abc-def",
    "ABC-123",
    "abc_def",
];

fn lengths(node: &Node, out: &mut Vec<u64>) {
    for k in ["minLength", "maxLength"] {
        if let Some(n) = node.get(k).and_then(Value::as_u64) {
            for d in [n, n.saturating_sub(1), n.saturating_add(1)] {
                if d <= 10_000 && !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
}

fn numbers(node: &Node, out: &mut Vec<f64>) {
    let m = node.f64_kw("multipleOf").filter(|m| *m > 0.0);
    let mut bounds = Vec::new();
    for k in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
        if let Some(b) = node.f64_kw(k) {
            bounds.push(b);
        }
    }
    for b in &bounds {
        for d in [0.0, 1.0, -1.0, 0.5, -0.5] {
            out.push(b + d);
        }
        out.push(b.floor());
        out.push(b.ceil());
        if let Some(m) = m {
            let k = (b / m).floor();
            for j in [-1.0, 0.0, 1.0, 2.0] {
                out.push((k + j) * m);
            }
        }
    }
    for i in 0..bounds.len() {
        for j in i + 1..bounds.len() {
            out.push((bounds[i] + bounds[j]) / 2.0);
        }
    }
    if let Some(m) = m {
        for j in [1.0, 2.0, 3.0, -1.0, 0.5] {
            out.push(j * m);
        }
    }
}

/// Strings built from a pattern's leading literal (`^usr_[a-z]+$` gives
/// `usr_a`, `usr_0`, ...).
pub(crate) fn pattern_strings(node: &Node) -> Vec<String> {
    let Some(p) = node.get("pattern").and_then(Value::as_str) else {
        return Vec::new();
    };
    let body = p.strip_prefix('^').unwrap_or(p);
    let prefix: String = body
        .chars()
        .take_while(|c| !"[(\\.*+?{|$^)".contains(*c))
        .collect();
    let mut out = vec![prefix.clone()];
    for s in ["a", "0", "a0", "A", "abc", "123", "aaa", "x1"] {
        out.push(format!("{prefix}{s}"));
    }
    out
}

/// Scalars chosen around the bounds, lengths, formats and values of two nodes.
pub(crate) fn scalar_pool(a: &Node, b: &Node) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for node in [a, b] {
        for k in ["examples", "enum"] {
            if let Some(Value::Array(xs)) = node.get(k) {
                out.extend(xs.iter().take(8).cloned());
            }
        }
        for k in ["const", "default"] {
            if let Some(v) = node.get(k) {
                out.push(v.clone());
            }
        }
    }
    let mut nums = vec![
        0.0, 1.0, -1.0, 0.5, 2.0, 1.5, 10.0, 100.0, -100.0, 0.25, 1e6,
    ];
    numbers(a, &mut nums);
    numbers(b, &mut nums);
    for f in nums {
        if f.is_finite() {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                out.push(json!(f as i64));
            } else {
                out.push(json!(f));
            }
        }
    }
    let mut lens = vec![0, 1, 3];
    lengths(a, &mut lens);
    lengths(b, &mut lens);
    for n in lens {
        out.push(Value::String("a".repeat(usize::try_from(n).unwrap_or(0))));
    }
    for node in [a, b] {
        if let Some(f) = node
            .get("format")
            .and_then(Value::as_str)
            .and_then(format_sample)
        {
            out.push(json!(f));
        }
    }
    for node in [a, b] {
        out.extend(pattern_strings(node).into_iter().map(Value::String));
    }
    out.extend(STRING_SAMPLES.iter().map(|s| json!(s)));
    for (_, s) in FORMAT_SAMPLES {
        out.push(json!(s));
    }
    out.extend([json!(null), json!(true), json!(false), json!({}), json!([])]);
    out
}

/// A value `node` (probably) accepts; every example is proven later anyway.
pub(crate) fn generate(ctx: &mut Ctx<'_>, side: Side, node: &Node) -> Option<Value> {
    generate_depth(ctx, side, node, 0)
}

fn generate_depth(ctx: &mut Ctx<'_>, side: Side, node: &Node, depth: usize) -> Option<Value> {
    if depth > 8 || !ctx.examples {
        return None;
    }
    let node = ctx.normalize(side, node).ok()?;
    match &node.v {
        Value::Bool(true) => return Some(Value::Null),
        v if is_false(v) => return None,
        Value::Object(_) => {}
        _ => return None,
    }
    if let Some(c) = node.get("const") {
        return Some(c.clone());
    }
    if let Some(Value::Array(e)) = node.get("enum") {
        return e.first().cloned();
    }
    if let Some(Value::Array(xs)) = node.get("examples") {
        if let Some(x) = xs.first() {
            return Some(x.clone());
        }
    }
    if let Some(d) = node.get("default") {
        return Some(d.clone());
    }
    for kw in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = node.get(kw) {
            for (i, _) in branches.iter().enumerate() {
                let branch = super::combinators::branch_with_own(ctx, side, &node, kw, i);
                if let Some(v) = branch.and_then(|b| generate_depth(ctx, side, &b, depth + 1)) {
                    return Some(v);
                }
            }
            return None;
        }
    }
    let t = types::declared(&node);
    let has = |keys: &[&str]| keys.iter().any(|k| node.get(k).is_some());
    type Test = fn(TypeSet) -> bool;
    let order: [(Test, &str); 4] = [
        (TypeSet::has_object, "object"),
        (TypeSet::has_array, "array"),
        (TypeSet::has_string, "string"),
        (TypeSet::has_number, "number"),
    ];
    let mut chosen = None;
    if t.has_object()
        && has(&[
            "properties",
            "required",
            "minProperties",
            "additionalProperties",
            "patternProperties",
        ])
    {
        chosen = Some("object");
    } else if t.has_array()
        && has(&[
            "items",
            "prefixItems",
            "minItems",
            "maxItems",
            "uniqueItems",
        ])
    {
        chosen = Some("array");
    } else if t.has_string() && has(&["minLength", "maxLength", "pattern", "format"]) {
        chosen = Some("string");
    } else if t.has_number()
        && has(&[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ])
    {
        chosen = Some("number");
    }
    if chosen.is_none() && t == TypeSet::ALL {
        chosen = Some("null");
    }
    if chosen.is_none() {
        for (test, name) in order {
            if test(t) {
                chosen = Some(name);
                break;
            }
        }
    }
    let names = t.names();
    let chosen = chosen.unwrap_or_else(|| names.first().copied().unwrap_or("null"));
    match chosen {
        "object" => Some(generate_object(ctx, side, &node, depth)),
        "array" => Some(generate_array(ctx, side, &node, depth)),
        "string" => Some(generate_string(ctx, &node)),
        "number" | "integer" | "non-integer number" => generate_number(&node, t),
        "boolean" => Some(json!(false)),
        _ => Some(Value::Null),
    }
}

fn generate_object(ctx: &mut Ctx<'_>, side: Side, node: &Node, depth: usize) -> Value {
    let mut m = Map::new();
    let required: Vec<String> = match node.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    for name in &required {
        let schema = node
            .child2("properties", name)
            .or_else(|| node.child("additionalProperties"))
            .unwrap_or_else(|| Node::new(node.ptr.clone(), Value::Bool(true)));
        let v = generate_depth(ctx, side, &schema, depth + 1).unwrap_or(Value::Null);
        m.insert(name.clone(), v);
    }
    let min = node
        .get("minProperties")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if (m.len() as u64) < min {
        let names: Vec<String> = node
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for name in names {
            if (m.len() as u64) >= min {
                break;
            }
            if m.contains_key(&name) {
                continue;
            }
            if let Some(schema) = node.child2("properties", &name) {
                let v = generate_depth(ctx, side, &schema, depth + 1).unwrap_or(Value::Null);
                m.insert(name, v);
            }
        }
        let mut i = 0;
        while (m.len() as u64) < min && i < 64 {
            m.insert(format!("extra{i}"), Value::Null);
            i += 1;
        }
    }
    Value::Object(m)
}

fn generate_array(ctx: &mut Ctx<'_>, side: Side, node: &Node, depth: usize) -> Value {
    let (prefix, rest) = super::arrays::tuple(node);
    let min = node.get("minItems").and_then(Value::as_u64).unwrap_or(0);
    let mut out = Vec::new();
    let mut i = 0usize;
    while (out.len() as u64) < min && i < 64 {
        let schema = prefix.get(i).cloned().or_else(|| rest.clone());
        let Some(schema) = schema else { break };
        match generate_depth(ctx, side, &schema, depth + 1) {
            Some(v) => out.push(v),
            None => break,
        }
        i += 1;
    }
    Value::Array(out)
}

fn generate_string(ctx: &mut Ctx<'_>, node: &Node) -> Value {
    let min = node.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let max = node
        .get("maxLength")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let fits = |s: &str| {
        let n = s.chars().count() as u64;
        n >= min && n <= max
    };
    let mut candidates: Vec<String> = Vec::new();
    if let Some(f) = node
        .get("format")
        .and_then(Value::as_str)
        .and_then(format_sample)
    {
        candidates.push(f.to_string());
    }
    candidates.extend(pattern_strings(node));
    candidates.extend(STRING_SAMPLES.iter().map(|s| (*s).to_string()));
    candidates.push("a".repeat(usize::try_from(min.min(10_000)).unwrap_or(0)));
    let pattern = node
        .get("pattern")
        .and_then(Value::as_str)
        .map(str::to_string);
    for c in &candidates {
        if !fits(c) {
            continue;
        }
        match &pattern {
            Some(p) if ctx.patterns.matches(p, c) != Some(true) => continue,
            _ => return Value::String(c.clone()),
        }
    }
    Value::String("a".repeat(usize::try_from(min.min(10_000)).unwrap_or(0)))
}

fn generate_number(node: &Node, t: TypeSet) -> Option<Value> {
    let mut candidates = vec![0.0, 1.0, 2.0, -1.0, 10.0, 100.0];
    numbers(node, &mut candidates);
    let integer_only = !t.names().contains(&"number");
    let lo = super::numbers::lower(node);
    let hi = super::numbers::upper(node);
    let m = node.f64_kw("multipleOf");
    for c in candidates {
        if integer_only && c.fract() != 0.0 {
            continue;
        }
        if super::numbers::within(c, lo, hi, m) {
            if c.fract() == 0.0 && c.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                return Some(json!(c as i64));
            }
            return Some(json!(c));
        }
    }
    None
}

/// An object with `name` set to `value`, built on `base` when it is an object.
pub(crate) fn with_property(base: &Option<Value>, name: &str, value: Value) -> Value {
    let mut m = match base {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    m.insert(name.to_string(), value);
    Value::Object(m)
}

/// An object without `name`, built on `base`.
pub(crate) fn without_property(base: &Option<Value>, name: &str) -> Value {
    let mut m = match base {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    m.remove(name);
    Value::Object(m)
}

/// An array with `value` at `index`, built on `base` and padded with `fill`.
pub(crate) fn with_item(base: &Option<Value>, index: usize, value: Value, fill: &[Value]) -> Value {
    let mut a = match base {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    while a.len() <= index {
        let v = fill.get(a.len()).cloned().unwrap_or(Value::Null);
        a.push(v);
    }
    a[index] = value;
    Value::Array(a)
}
