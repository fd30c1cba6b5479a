//! `contains` (draft 6 on) with `minContains`/`maxContains` (2019-09 on).
//!
//! An array meets it when the number of its items `contains` accepts lies
//! in `[minContains, maxContains]` (`minContains` defaults to 1). The new
//! version accepts every old array when its range holds the old one and
//! its `contains` accepts the same items, or when its `contains` accepts
//! more items and it has no `maxContains` and a `minContains` no higher.
//! Anything else is reported, in the direction that could break.
use serde_json::Value;

use super::arrays;
use super::error::CompatError;
use super::example;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::same;
use super::walk::{Ctx, Draft, Node, Pending, Side};

/// A side's `contains` with its count range.
struct Contains {
    schema: Node,
    min: u64,
    max: Option<u64>,
}

fn contains(ctx: &Ctx<'_>, side: Side, node: &Node) -> Option<Contains> {
    let draft = ctx.draft(side);
    if draft < Draft::D6 {
        return None;
    }
    let schema = node.child("contains")?;
    let counted = |key: &str| {
        (draft >= Draft::D2019)
            .then(|| node.get(key).and_then(Value::as_u64))
            .flatten()
    };
    let c = Contains {
        schema,
        min: counted("minContains").unwrap_or(1),
        max: counted("maxContains"),
    };
    // `minContains: 0` without a maximum asks nothing.
    (c.min > 0 || c.max.is_some()).then_some(c)
}

/// Whether every array `from` accepts is accepted by `to`, given how their
/// `contains` schemas relate (`Some(true)`: the same items, `Some(false)`:
/// `to`'s accepts at least `from`'s, `None`: neither is known).
fn holds(from: &Contains, to: &Contains, schemas: Option<bool>) -> bool {
    match schemas {
        Some(true) => {
            to.min <= from.min
                && match (from.max, to.max) {
                    (_, None) => true,
                    (Some(a), Some(b)) => a <= b,
                    (None, Some(_)) => false,
                }
        }
        Some(false) => to.min <= from.min && to.max.is_none(),
        None => false,
    }
}

/// Candidate arrays from the accepting side: `count` copies of each item
/// value, for the counts around both ranges.
/// `extra` items are also appended one at a time to the copies of the first
/// item, so that the other side counts one more match.
fn arrays_of(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    items: Vec<Value>,
    extra: &[Value],
    counts: &[u64],
) -> Vec<Value> {
    let (prefix, rest) = arrays::tuple(node);
    let mut out = Vec::new();
    for k in counts.iter().copied().filter(|k| *k <= 64) {
        let k = usize::try_from(k).unwrap_or(0);
        for item in items.iter().take(6) {
            out.push(Value::Array(vec![item.clone(); k]));
        }
        if let Some(first) = items.first() {
            for x in extra.iter().take(3) {
                let mut a = vec![first.clone(); k];
                a.push(x.clone());
                out.push(Value::Array(a));
            }
        }
        out.push(Value::Array(arrays::fill(ctx, side, &prefix, &rest, k)));
    }
    out
}

/// The candidates of the inner changes in one direction.
fn inner_candidates(inner: &[Pending], direction: Breaks) -> Vec<Value> {
    inner
        .iter()
        .filter(|p| p.breaks == direction)
        .flat_map(|p| p.candidates.iter().take(3).cloned())
        .collect()
}

fn counts(a: Option<&Contains>, b: Option<&Contains>) -> Vec<u64> {
    let mut out = vec![0, 1, 2];
    for c in [a, b].into_iter().flatten() {
        out.extend([c.min.saturating_sub(1), c.min, c.min.saturating_add(1)]);
        if let Some(m) = c.max {
            out.extend([m, m.saturating_add(1)]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Compares the `contains` constraints of two array nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let keys = ["contains", "minContains", "maxContains"];
    if keys.iter().all(|k| o.get(k) == n.get(k)) && ctx.old_draft == ctx.new_draft {
        return Ok(());
    }
    let (oc, nc) = (contains(ctx, Side::Old, o), contains(ctx, Side::New, n));
    let at = |node: &Node| {
        keys.iter()
            .find(|k| node.get(k).is_some())
            .map_or_else(|| node.ptr.clone(), |k| node.kw_ptr(k))
    };
    let (old_path, new_path) = (at(o), at(n));
    let all_counts = counts(oc.as_ref(), nc.as_ref());
    match (&oc, &nc) {
        (None, None) => {}
        (None, Some(c)) => {
            let items = example::any_values(ctx, Side::Old, &c.schema);
            let candidates = arrays_of(ctx, Side::Old, o, items, &[], &all_counts);
            out.push(Pending::new(
                ChangeKind::ContainsAdded,
                old_path,
                new_path,
                Breaks::Readers,
                "`contains` added: old arrays without enough matching items are rejected",
                candidates,
            ));
        }
        (Some(c), None) => {
            let items = example::any_values(ctx, Side::New, &c.schema);
            let candidates = arrays_of(ctx, Side::New, n, items, &[], &all_counts);
            out.push(Pending::new(
                ChangeKind::ContainsRemoved,
                old_path,
                new_path,
                Breaks::Writers,
                "`contains` removed: new arrays without enough matching items are rejected by old readers",
                candidates,
            ));
        }
        (Some(a), Some(b)) => {
            let identical = same::equivalent(ctx, &a.schema.v, &b.schema.v);
            let inner = if identical {
                Vec::new()
            } else {
                ctx.compare(&a.schema, &b.schema)?
            };
            let relation = |direction: Breaks| {
                if identical || inner.is_empty() {
                    Some(true)
                } else if inner.iter().any(|p| p.breaks == direction) {
                    None
                } else {
                    Some(false)
                }
            };
            if !holds(a, b, relation(Breaks::Readers)) {
                let mut items = inner_candidates(&inner, Breaks::Readers);
                items.extend(example::any_values(ctx, Side::Old, &a.schema));
                let extra = inner_candidates(&inner, Breaks::Writers);
                let candidates = arrays_of(ctx, Side::Old, o, items, &extra, &all_counts);
                out.push(Pending::new(
                    ChangeKind::ContainsNarrowed,
                    old_path.clone(),
                    new_path.clone(),
                    Breaks::Readers,
                    "`contains` (or its count) tightened: old arrays are rejected when too few or too many of their items match",
                    candidates,
                ));
            }
            if !holds(b, a, relation(Breaks::Writers)) {
                let mut items = inner_candidates(&inner, Breaks::Writers);
                items.extend(example::any_values(ctx, Side::New, &b.schema));
                let extra = inner_candidates(&inner, Breaks::Readers);
                let candidates = arrays_of(ctx, Side::New, n, items, &extra, &all_counts);
                out.push(Pending::new(
                    ChangeKind::ContainsWidened,
                    old_path,
                    new_path,
                    Breaks::Writers,
                    "`contains` (or its count) relaxed: old readers reject new arrays when too few or too many of their items match",
                    candidates,
                ));
            }
        }
    }
    Ok(())
}
