//! Structural equivalence of two subschemas, following `$ref`s on both
//! sides: what the engine falls back to where it cannot compare keyword by
//! keyword (only "the same schema" is then known to be compatible).
use std::collections::HashSet;

use serde_json::Value;

use super::walk::{
    is_annotation, is_false, is_trivially_true, Ctx, Side, ARRAY_KEYWORDS, MAP_KEYWORDS,
    SCHEMA_KEYWORDS,
};

/// Most pairs of subschemas visited by one [`equivalent`] call.
const BUDGET: usize = 10_000;

/// Whether two subschemas are written the same way (annotations aside),
/// with `$ref`s compared by what they point at. `false` when unsure.
pub(crate) fn equivalent(ctx: &Ctx<'_>, old: &Value, new: &Value) -> bool {
    let mut walk = Walk {
        ctx,
        seen: HashSet::new(),
        budget: BUDGET,
    };
    walk.schema(old, new)
}

struct Walk<'c, 'a> {
    ctx: &'c Ctx<'a>,
    seen: HashSet<(String, String)>,
    budget: usize,
}

impl Walk<'_, '_> {
    fn schema(&mut self, a: &Value, b: &Value) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                if let (Some(Value::String(ra)), Some(Value::String(rb))) =
                    (x.get("$ref"), y.get("$ref"))
                {
                    let (Some(pa), Some(pb)) = (
                        self.ctx.ref_target(Side::Old, ra),
                        self.ctx.ref_target(Side::New, rb),
                    ) else {
                        return false;
                    };
                    if self.seen.insert((pa.clone(), pb.clone())) {
                        let (Some(ta), Some(tb)) = (
                            self.ctx.root(Side::Old).pointer(&pa),
                            self.ctx.root(Side::New).pointer(&pb),
                        ) else {
                            return false;
                        };
                        if !self.schema(ta, tb) {
                            return false;
                        }
                    }
                } else if x.contains_key("$ref") || y.contains_key("$ref") {
                    return false;
                }
                let keys = |m: &serde_json::Map<String, Value>| -> Vec<String> {
                    let mut k: Vec<String> = m
                        .keys()
                        .filter(|k| !is_annotation(k) && k.as_str() != "$ref")
                        .cloned()
                        .collect();
                    k.sort();
                    k
                };
                if keys(x) != keys(y) {
                    return false;
                }
                keys(x).iter().all(|k| self.keyword(k, &x[k], &y[k]))
            }
            _ => (is_trivially_true(a) && is_trivially_true(b)) || (is_false(a) && is_false(b)),
        }
    }

    fn keyword(&mut self, key: &str, a: &Value, b: &Value) -> bool {
        let key = key.to_string();
        if MAP_KEYWORDS.contains(&key.as_str()) || key == "dependencies" {
            return match (a, b) {
                (Value::Object(x), Value::Object(y)) => {
                    x.len() == y.len()
                        && x.iter().all(|(name, s)| {
                            y.get(name).is_some_and(|t| {
                                if s.is_array() || t.is_array() {
                                    s == t
                                } else {
                                    self.schema(s, t)
                                }
                            })
                        })
                }
                _ => a == b,
            };
        }
        if SCHEMA_KEYWORDS.contains(&key.as_str()) || (key == "items" && !a.is_array()) {
            return self.schema(a, b);
        }
        if ARRAY_KEYWORDS.contains(&key.as_str()) || key == "items" {
            return match (a, b) {
                (Value::Array(x), Value::Array(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(s, t)| self.schema(s, t))
                }
                _ => a == b,
            };
        }
        a == b
    }
}
