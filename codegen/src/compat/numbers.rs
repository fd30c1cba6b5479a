//! Numeric keywords: `minimum`/`maximum`, both `exclusive*` forms (draft-4
//! booleans and later numbers) and `multipleOf`.
use serde_json::Value;

use super::error::CompatError;
use super::example;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::types;
use super::walk::{Ctx, Node, Pending, Side};

/// A bound: its value and whether it is exclusive.
pub(crate) type Bound = Option<(f64, bool)>;

fn bound(node: &Node, inclusive_kw: &str, exclusive_kw: &str, lower: bool) -> Bound {
    let inclusive = node.f64_kw(inclusive_kw);
    let mut best: Bound = inclusive.map(|v| (v, false));
    match node.get(exclusive_kw) {
        Some(Value::Bool(true)) => best = inclusive.map(|v| (v, true)),
        Some(v) => {
            if let Some(e) = v.as_f64() {
                let cand = (e, true);
                best = Some(match best {
                    None => cand,
                    Some(b) => {
                        if tighter(cand, b, lower) {
                            cand
                        } else {
                            b
                        }
                    }
                });
            }
        }
        None => {}
    }
    best
}

/// Whether bound `a` admits fewer values than `b`.
fn tighter(a: (f64, bool), b: (f64, bool), lower: bool) -> bool {
    let further = if lower { a.0 > b.0 } else { a.0 < b.0 };
    further || (a.0 == b.0 && a.1 && !b.1)
}

/// The effective lower bound of a node.
pub(crate) fn lower(node: &Node) -> Bound {
    bound(node, "minimum", "exclusiveMinimum", true)
}

/// The effective upper bound of a node.
pub(crate) fn upper(node: &Node) -> Bound {
    bound(node, "maximum", "exclusiveMaximum", false)
}

/// Whether `x` satisfies the bounds and the `multipleOf`.
pub(crate) fn within(x: f64, lo: Bound, hi: Bound, multiple_of: Option<f64>) -> bool {
    let lo_ok = lo.is_none_or(|(v, e)| if e { x > v } else { x >= v });
    let hi_ok = hi.is_none_or(|(v, e)| if e { x < v } else { x <= v });
    let m_ok = multiple_of.is_none_or(|m| m <= 0.0 || is_integral(x / m));
    lo_ok && hi_ok && m_ok
}

fn is_integral(x: f64) -> bool {
    x.is_finite() && (x - x.round()).abs() < 1e-9
}

fn show(b: (f64, bool), lower: bool) -> String {
    match (lower, b.1) {
        (true, true) => format!("> {}", b.0),
        (true, false) => format!(">= {}", b.0),
        (false, true) => format!("< {}", b.0),
        (false, false) => format!("<= {}", b.0),
    }
}

fn path(node: &Node, inclusive_kw: &str, exclusive_kw: &str) -> String {
    if node.get(exclusive_kw).is_some_and(|v| v.is_number()) || node.get(inclusive_kw).is_none() {
        node.kw_ptr(exclusive_kw)
    } else {
        node.kw_ptr(inclusive_kw)
    }
}

/// Compares the numeric keywords of two nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    // Integers only: `minimum: 0.5` is `minimum: 1`, `multipleOf: 1` is nothing.
    let integers = types::effective(o)
        .union(types::effective(n))
        .is_integer_only();
    let snap = |b: Bound, is_lower: bool| -> Bound {
        match b {
            Some((v, e)) if integers && v.is_finite() => Some(match (is_lower, e) {
                (true, true) => (v.floor() + 1.0, false),
                (true, false) => (v.ceil(), false),
                (false, true) => (v.ceil() - 1.0, false),
                (false, false) => (v.floor(), false),
            }),
            other => other,
        }
    };
    for is_lower in [true, false] {
        let (inc, exc) = if is_lower {
            ("minimum", "exclusiveMinimum")
        } else {
            ("maximum", "exclusiveMaximum")
        };
        let (ob, nb) = if is_lower {
            (lower(o), lower(n))
        } else {
            (upper(o), upper(n))
        };
        let (ob, nb) = (snap(ob, is_lower), snap(nb, is_lower));
        let what = if is_lower {
            "lower bound"
        } else {
            "upper bound"
        };
        let (added, removed, narrowed, widened) = if is_lower {
            (
                ChangeKind::MinimumAdded,
                ChangeKind::MinimumRemoved,
                ChangeKind::MinimumIncreased,
                ChangeKind::MinimumDecreased,
            )
        } else {
            (
                ChangeKind::MaximumAdded,
                ChangeKind::MaximumRemoved,
                ChangeKind::MaximumDecreased,
                ChangeKind::MaximumIncreased,
            )
        };
        let change = match (ob, nb) {
            (None, Some(b)) => Some((
                added,
                Breaks::Readers,
                format!("{what} {} added: old numbers outside it are rejected", show(b, is_lower)),
            )),
            (Some(a), None) => Some((
                removed,
                Breaks::Writers,
                format!("{what} {} removed: new numbers outside it are rejected by old readers", show(a, is_lower)),
            )),
            (Some(a), Some(b)) if tighter(b, a, is_lower) => Some((
                narrowed,
                Breaks::Readers,
                format!(
                    "{what} tightened from {} to {}: old numbers in between are rejected",
                    show(a, is_lower),
                    show(b, is_lower)
                ),
            )),
            (Some(a), Some(b)) if tighter(a, b, is_lower) => Some((
                widened,
                Breaks::Writers,
                format!(
                    "{what} relaxed from {} to {}: new numbers in between are rejected by old readers",
                    show(a, is_lower),
                    show(b, is_lower)
                ),
            )),
            _ => None,
        };
        if let Some((kind, breaks, message)) = change {
            let candidates = witnesses(ctx, o, n, breaks, &[inc, exc]);
            out.push(Pending::new(
                kind,
                path(o, inc, exc),
                path(n, inc, exc),
                breaks,
                message,
                candidates,
            ));
        }
    }
    let om = o
        .f64_kw("multipleOf")
        .filter(|m| *m > 0.0 && !(integers && *m == 1.0));
    let nm = n
        .f64_kw("multipleOf")
        .filter(|m| *m > 0.0 && !(integers && *m == 1.0));
    let mut push = |ctx: &mut Ctx<'_>, kind, breaks, message: String| {
        let candidates = witnesses(ctx, o, n, breaks, &["multipleOf"]);
        out.push(Pending::new(
            kind,
            o.kw_ptr("multipleOf"),
            n.kw_ptr("multipleOf"),
            breaks,
            message,
            candidates,
        ));
    };
    match (om, nm) {
        (None, Some(b)) => push(
            ctx,
            ChangeKind::MultipleOfAdded,
            Breaks::Readers,
            format!("multipleOf {b} added: old numbers that are not multiples are rejected"),
        ),
        (Some(a), None) => push(
            ctx,
            ChangeKind::MultipleOfRemoved,
            Breaks::Writers,
            format!("multipleOf {a} removed: new numbers that are not multiples are rejected by old readers"),
        ),
        (Some(a), Some(b)) if a != b => {
            if !is_integral(a / b) {
                push(
                    ctx,
                    ChangeKind::MultipleOfChanged,
                    Breaks::Readers,
                    format!("multipleOf changed from {a} to {b}: old multiples of {a} that are not multiples of {b} are rejected"),
                );
            }
            if !is_integral(b / a) {
                push(
                    ctx,
                    ChangeKind::MultipleOfChanged,
                    Breaks::Writers,
                    format!("multipleOf changed from {a} to {b}: new multiples of {b} that are not multiples of {a} are rejected by old readers"),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

/// Witnesses for a change of `keys`: values the accepting side takes and
/// the other side's `keys` alone reject.
pub(crate) fn witnesses(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    breaks: Breaks,
    keys: &[&str],
) -> Vec<Value> {
    match breaks {
        Breaks::Readers => {
            let reject = example::keywords_schema(ctx, Side::New, n, keys);
            example::scalar_witnesses(ctx, Side::Old, o, n, &reject)
        }
        Breaks::Writers => {
            let reject = example::keywords_schema(ctx, Side::Old, o, keys);
            example::scalar_witnesses(ctx, Side::New, n, o, &reject)
        }
        Breaks::None => Vec::new(),
    }
}
