//! When a comparison needs more stack than the caller's thread may have:
//! deeply nested documents and recursive `$ref`s.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::walk::join;

/// Stack of the comparison thread for deep or recursive schemas.
pub(crate) const BIG_STACK: usize = 256 << 20;

/// JSON nesting beyond which the comparison moves to its own thread.
const SHALLOW: usize = 24;

/// Whether comparing this document could recurse deeply.
pub(crate) fn needs_big_stack(root: &Value) -> bool {
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut stack: Vec<(String, &Value, usize)> = vec![(String::new(), root, 0)];
    while let Some((ptr, v, depth)) = stack.pop() {
        if depth > SHALLOW {
            return true;
        }
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let target = r.strip_prefix('#').unwrap_or(r).to_string();
                    refs.push((ptr.clone(), target));
                }
                for (k, child) in m {
                    stack.push((join(&ptr, k), child, depth + 1));
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    stack.push((join(&ptr, &i.to_string()), child, depth + 1));
                }
            }
            _ => {}
        }
    }
    has_cycle(&refs)
}

/// Whether following refs from some target can reach it again: a target
/// leads to every target of a ref located inside it.
fn has_cycle(refs: &[(String, String)]) -> bool {
    if refs.is_empty() {
        return false;
    }
    // A plain-name anchor could be anywhere: assume the worst.
    if refs
        .iter()
        .any(|(_, t)| !t.is_empty() && !t.starts_with('/'))
    {
        return true;
    }
    let inside = |at: &str, target: &str| {
        target.is_empty()
            || at == target
            || (at.starts_with(target) && at.as_bytes().get(target.len()) == Some(&b'/'))
    };
    let targets: BTreeSet<&str> = refs.iter().map(|(_, t)| t.as_str()).collect();
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &targets {
        let reach: Vec<&str> = refs
            .iter()
            .filter(|(at, _)| inside(at, t))
            .map(|(_, target)| target.as_str())
            .collect();
        next.insert(t, reach);
    }
    // Depth-first search for a cycle (white/grey/black).
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in &targets {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, i)) = path.pop() {
            let succ = next.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(s) = succ.get(i) {
                path.push((node, i + 1));
                match state.get(s).copied().unwrap_or(0) {
                    1 => return true,
                    0 => {
                        state.insert(s, 1);
                        path.push((s, 0));
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
