//! Random documents for a JSON schema, for property-style round trips of
//! the generated types: a small generator over the keywords the registry's
//! lint allows (`$ref` into the same document, `const`, `enum`, `oneOf` /
//! `anyOf`, `type` lists, objects, arrays, strings with the registry's
//! formats, integers, numbers, booleans, `null`). It aims at valid
//! documents but does not promise them (patterns, `uniqueItems`, the
//! exclusivity of `oneOf`): the caller keeps the ones the schema accepts.
use serde_json::{json, Map, Value};

/// Up to this depth objects get their optional members and arrays items.
const DEEP: u32 = 6;

/// A random document for `schema`, whose `$ref`s point into `root`.
pub fn instance(schema: &Value, root: &Value, rng: &mut fastrand::Rng, depth: u32) -> Value {
    let Value::Object(s) = schema else {
        // `true` / `{}`: anything.
        return any(rng, depth);
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(&Value::Null);
        return instance(target, root, rng, depth + 1);
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        return options[rng.usize(..options.len())].clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            let branch = &branches[rng.usize(..branches.len())];
            return instance(branch, root, rng, depth + 1);
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts[rng.usize(..ts.len())]
            .as_str()
            .unwrap_or("null")
            .to_string(),
        _ if s.contains_key("properties") => "object".into(),
        _ => return any(rng, depth),
    };
    match ty.as_str() {
        "object" => object(s, root, rng, depth),
        "array" => {
            let n = if depth < DEEP { rng.usize(0..4) } else { 0 };
            let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = s
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX) as usize;
            let items = s.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..n.clamp(min, max))
                    .map(|_| instance(&items, root, rng, depth + 1))
                    .collect(),
            )
        }
        "string" => string(s, rng),
        "integer" => {
            let min = s.get("minimum").and_then(Value::as_i64).unwrap_or(-1_000);
            let max = s.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            json!(rng.i64(min..=max.min(min.saturating_add(10_000_000_000))))
        }
        "number" => {
            let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            // Integers beyond 2^32 (ids) as often as fractions.
            if rng.bool() {
                json!(rng.u64(4_000_000_000..9_007_199_254_740_993))
            } else {
                json!(min + f64::from(rng.u32(0..1000)) / 8.0)
            }
        }
        "boolean" => json!(rng.bool()),
        _ => Value::Null,
    }
}

fn object(s: &Map<String, Value>, root: &Value, rng: &mut fastrand::Rng, depth: u32) -> Value {
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(Value::Object(props)) = s.get("properties") {
        for (name, prop) in props {
            if required.contains(&name.as_str()) || (depth < DEEP && rng.bool()) {
                out.insert(name.clone(), instance(prop, root, rng, depth + 1));
            }
        }
    }
    // Members an object that says `additionalProperties: true` does not
    // declare (extension attributes): its type keeps them.
    let open = matches!(s.get("additionalProperties"), Some(Value::Bool(true)));
    if open && rng.bool() {
        out.insert(format!("x_extra_{}", rng.u8(..)), any(rng, DEEP));
    }
    Value::Object(out)
}

fn string(s: &Map<String, Value>, rng: &mut fastrand::Rng) -> Value {
    let text = match s.get("format").and_then(Value::as_str) {
        Some("uuid") => format!("0190f3a5-1111-7abc-8def-{:012x}", rng.u64(..1 << 48)),
        Some("date-time") => format!("2025-0{}-1{}T10:15:00Z", rng.u8(1..10), rng.u8(0..10)),
        Some("date") => format!("2025-0{}-1{}", rng.u8(1..10), rng.u8(0..10)),
        Some("email") => format!("user{}@example.com", rng.u16(..)),
        _ => {
            let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = s.get("maxLength").and_then(Value::as_u64).unwrap_or(12) as usize;
            let len = rng.usize(min..=max.max(min));
            (0..len)
                .map(|_| rng.alphanumeric().to_ascii_uppercase())
                .collect()
        }
    };
    Value::String(text)
}

/// Any JSON value (a small one).
fn any(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(0..if depth < DEEP { 6 } else { 4 }) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i32(..)),
        3 => json!(format!("s{}", rng.u16(..))),
        4 => json!([rng.u8(..), "x"]),
        _ => json!({"k": rng.u8(..)}),
    }
}
