//! When a comparison needs more stack than the caller's thread may have:
//! deeply nested documents and recursive `$ref`s.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Stack of the comparison thread for deep or recursive schemas.
pub(crate) const BIG_STACK: usize = 256 << 20;

/// JSON nesting beyond which the comparison moves to its own thread.
const SHALLOW: usize = 24;

/// Whether comparing this document could recurse deeply.
pub(crate) fn needs_big_stack(root: &Value) -> bool {
    let (depth, targets) = scan(root);
    if depth > SHALLOW {
        return true;
    }
    if targets.is_empty() {
        return false;
    }
    // A plain-name anchor could be anywhere: assume the worst.
    if targets.iter().any(|t| !t.is_empty() && !t.starts_with('/')) {
        return true;
    }
    // A target leads to every target referenced inside it.
    let mut next: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in &targets {
        let inner = root.pointer(t).map(|v| scan(v).1).unwrap_or_default();
        next.insert(t.as_str(), inner.into_iter().collect());
    }
    has_cycle(&next)
}

/// The nesting depth of a document and the targets of its `$ref`s.
fn scan(root: &Value) -> (usize, BTreeSet<String>) {
    let mut targets = BTreeSet::new();
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(root, 0)];
    while let Some((v, depth)) = stack.pop() {
        max = max.max(depth);
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    targets.insert(r.strip_prefix('#').unwrap_or(r).to_string());
                }
                stack.extend(m.values().map(|c| (c, depth + 1)));
            }
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    (max, targets)
}

/// Depth-first search for a cycle in the target graph.
fn has_cycle(next: &BTreeMap<&str, Vec<String>>) -> bool {
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in next.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, i)) = path.pop() {
            let succ = next.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(s) = succ.get(i) {
                path.push((node, i + 1));
                let Some((key, _)) = next.get_key_value(s.as_str()) else {
                    continue;
                };
                match state.get(key).copied().unwrap_or(0) {
                    1 => return true,
                    0 => {
                        state.insert(key, 1);
                        path.push((key, 0));
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
            }
        }
    }
    false
}
