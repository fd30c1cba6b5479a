//! Array keywords: `items` (schema and draft-4..2019 tuple forms),
//! `prefixItems`, `additionalItems`, `minItems`, `maxItems`, `uniqueItems`.
use serde_json::{json, Value};

use super::error::CompatError;
use super::example::{self, with_item};
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::strings::integer_bound;
use super::walk::{is_false, join, Ctx, Node, Pending, Side};

/// The tuple positions of an array schema and the schema of the rest
/// (`None` when anything goes).
pub(crate) fn tuple(node: &Node) -> (Vec<Node>, Option<Node>) {
    let items_ptr = join(&node.ptr, "items");
    match (node.get("prefixItems"), node.get("items")) {
        (Some(Value::Array(prefix)), items) => {
            let p = join(&node.ptr, "prefixItems");
            let prefix = prefix
                .iter()
                .enumerate()
                .map(|(i, v)| Node::new(join(&p, &i.to_string()), v.clone()))
                .collect();
            (
                prefix,
                items
                    .filter(|v| !v.is_array())
                    .map(|v| Node::new(items_ptr, v.clone())),
            )
        }
        (_, Some(Value::Array(prefix))) => {
            let prefix = prefix
                .iter()
                .enumerate()
                .map(|(i, v)| Node::new(join(&items_ptr, &i.to_string()), v.clone()))
                .collect();
            (prefix, node.child("additionalItems"))
        }
        (_, Some(v)) => (Vec::new(), Some(Node::new(items_ptr, v.clone()))),
        _ => (Vec::new(), None),
    }
}

fn rest_ptr(node: &Node) -> String {
    if node.get("items").is_some_and(Value::is_array) {
        node.kw_ptr("additionalItems")
    } else {
        node.kw_ptr("items")
    }
}

/// Values for the positions of a tuple, for padding examples.
pub(crate) fn fill(
    ctx: &mut Ctx<'_>,
    side: Side,
    prefix: &[Node],
    rest: &Option<Node>,
    len: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..len {
        let schema = prefix.get(i).cloned().or_else(|| rest.clone());
        let v = match schema {
            Some(s) => example::generate(ctx, side, &s).unwrap_or(Value::Null),
            None => Value::Null,
        };
        out.push(v);
    }
    out
}

/// Compares the array keywords of two nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let (op, or) = tuple(o);
    let (np, nr) = tuple(n);
    let positions = op.len().max(np.len());
    let old_base = example::generate(ctx, Side::Old, o);
    let new_base = example::generate(ctx, Side::New, n);
    let old_fill = fill(ctx, Side::Old, &op, &or, positions + 1);
    let new_fill = fill(ctx, Side::New, &np, &nr, positions + 1);
    let truthy = |ptr: String| Node::new(ptr, Value::Bool(true));
    for i in 0..=positions {
        let at_rest = i == positions;
        let oi = op.get(i).cloned().or_else(|| or.clone());
        let ni = np.get(i).cloned().or_else(|| nr.clone());
        if at_rest && or.is_none() && nr.is_none() {
            break;
        }
        let old_from_rest = i >= op.len();
        let new_from_rest = i >= np.len();
        let oi = oi.unwrap_or_else(|| {
            truthy(if old_from_rest {
                rest_ptr(o)
            } else {
                o.ptr.clone()
            })
        });
        let ni = ni.unwrap_or_else(|| {
            truthy(if new_from_rest {
                rest_ptr(n)
            } else {
                n.ptr.clone()
            })
        });
        if !at_rest && old_from_rest && !new_from_rest && is_false(&oi.v) && !is_false(&ni.v) {
            let v = example::generate(ctx, Side::New, &ni).unwrap_or(Value::Null);
            out.push(Pending::new(
                ChangeKind::ItemAddedToClosedTuple,
                oi.ptr.clone(),
                ni.ptr.clone(),
                Breaks::Writers,
                format!("tuple position {i} added where the old schema allowed no more items: old readers reject longer arrays"),
                vec![with_item(&new_base, i, v, &new_fill)],
            ));
            continue;
        }
        if !at_rest && new_from_rest && !old_from_rest && is_false(&ni.v) && !is_false(&oi.v) {
            let v = example::generate(ctx, Side::Old, &oi).unwrap_or(Value::Null);
            out.push(Pending::new(
                ChangeKind::ItemRemovedFromClosedTuple,
                oi.ptr.clone(),
                ni.ptr.clone(),
                Breaks::Readers,
                format!("tuple position {i} removed and no more items are allowed: old arrays that long are rejected"),
                vec![with_item(&old_base, i, v, &old_fill)],
            ));
            continue;
        }
        let inner = ctx.compare(&oi, &ni)?;
        for mut p in inner {
            let (base, fill) = match p.breaks {
                Breaks::Writers => (&new_base, &new_fill),
                _ => (&old_base, &old_fill),
            };
            p.candidates = p
                .candidates
                .into_iter()
                .map(|c| with_item(base, i, c, fill))
                .collect();
            out.push(p);
        }
    }
    for (key, lower, kinds) in [
        (
            "minItems",
            true,
            (
                ChangeKind::MinItemsAdded,
                ChangeKind::MinItemsRemoved,
                ChangeKind::MinItemsIncreased,
                ChangeKind::MinItemsDecreased,
            ),
        ),
        (
            "maxItems",
            false,
            (
                ChangeKind::MaxItemsAdded,
                ChangeKind::MaxItemsRemoved,
                ChangeKind::MaxItemsDecreased,
                ChangeKind::MaxItemsIncreased,
            ),
        ),
    ] {
        if let Some(mut p) = integer_bound(o, n, key, lower, kinds, "arrays") {
            let fill = if p.breaks == Breaks::Writers {
                &new_fill
            } else {
                &old_fill
            };
            let (side, prefix, rest) = if p.breaks == Breaks::Writers {
                (Side::New, &np, &nr)
            } else {
                (Side::Old, &op, &or)
            };
            let mut lens: Vec<u64> = Vec::new();
            for node in [o, n] {
                if let Some(k) = node.get(key).and_then(Value::as_u64) {
                    lens.extend([k.saturating_sub(1), k, k.saturating_add(1)]);
                }
            }
            lens.push(0);
            for k in lens.into_iter().filter(|k| *k <= 1000) {
                let k = usize::try_from(k).unwrap_or(0);
                let mut values = fill.clone();
                if values.len() < k {
                    values = super::arrays::fill(ctx, side, prefix, rest, k);
                }
                values.truncate(k);
                p.candidates.push(Value::Array(values));
            }
            out.push(p);
        }
    }
    let ou = o.get("uniqueItems") == Some(&Value::Bool(true));
    let nu = n.get("uniqueItems") == Some(&Value::Bool(true));
    if ou != nu {
        let (kind, breaks, message, fill) = if nu {
            (
                ChangeKind::UniqueItemsAdded,
                Breaks::Readers,
                "uniqueItems added: old arrays with repeated items are rejected",
                &old_fill,
            )
        } else {
            (
                ChangeKind::UniqueItemsRemoved,
                Breaks::Writers,
                "uniqueItems removed: new arrays with repeated items are rejected by old readers",
                &new_fill,
            )
        };
        let mut candidates = Vec::new();
        let first = fill.first().cloned().unwrap_or(Value::Null);
        candidates.push(json!([first.clone(), first]));
        for v in [json!(null), json!(0), json!("a"), json!({}), json!(true)] {
            candidates.push(json!([v.clone(), v]));
        }
        out.push(Pending::new(
            kind,
            o.kw_ptr("uniqueItems"),
            n.kw_ptr("uniqueItems"),
            breaks,
            message,
            candidates,
        ));
    }
    Ok(())
}
