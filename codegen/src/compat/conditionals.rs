//! `if`/`then`/`else` (draft 7 on).
//!
//! A node's condition is `(if ∧ then) ∨ (¬if ∧ else)`, `then` and `else`
//! defaulting to `true`; without `if` (or with both branches `true`) there
//! is no condition. With the same `if` on both sides, `then` is compared
//! with `then` and `else` with `else`: each side's branch accepting what
//! the other's did keeps the condition compatible in that direction. An
//! added condition can only narrow (breaks readers), a removed one only
//! widen (breaks writers). A changed `if` is not compared exactly.
use serde_json::{Map, Value};

use super::combinators;
use super::error::CompatError;
use super::example;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::same;
use super::walk::{is_trivially_true, Ctx, Draft, Node, Pending, Side};

/// The keywords of this module.
const KEYWORDS: [&str; 3] = ["if", "then", "else"];

struct Condition {
    cond: Node,
    then: Node,
    otherwise: Node,
}

fn condition(ctx: &Ctx<'_>, side: Side, node: &Node) -> Option<Condition> {
    if ctx.draft(side) < Draft::D7 {
        return None;
    }
    let cond = node.child("if")?;
    let branch = |key: &str| {
        node.child(key)
            .unwrap_or_else(|| Node::new(node.ptr.clone(), Value::Bool(true)))
    };
    let (then, otherwise) = (branch("then"), branch("else"));
    if is_trivially_true(&then.v) && is_trivially_true(&otherwise.v) {
        return None;
    }
    Some(Condition {
        cond,
        then,
        otherwise,
    })
}

/// Values of `node` (on `side`), some of them also carrying what the
/// condition's `if` asks for, to prove an added or removed condition.
fn candidates(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    c: &Condition,
    other_side: Side,
) -> Vec<Value> {
    let mut out = Vec::new();
    let base = example::generate(ctx, side, node);
    for v in example::any_values(ctx, other_side, &c.cond) {
        match (&base, &v) {
            (Some(Value::Object(b)), Value::Object(m)) => {
                let mut merged = b.clone();
                merged.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                out.push(Value::Object(merged));
            }
            _ => out.push(v),
        }
        if out.len() >= 12 {
            break;
        }
    }
    out.extend(example::any_values(ctx, side, node));
    out
}

/// A branch's candidates made whole documents of `node`: merged over its
/// generated value, with what `if` asks for when the branch is `then`, and
/// null properties filled from the node's `properties`.
fn completed(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    cond: &Node,
    meets: bool,
    candidates: Vec<Value>,
) -> Vec<Value> {
    let base = example::generate(ctx, side, node);
    let trigger = if meets {
        example::generate(ctx, side, cond)
    } else {
        None
    };
    let mut out = Vec::new();
    for c in candidates {
        if let Value::Object(m) = &c {
            let mut doc = match &base {
                Some(Value::Object(b)) => b.clone(),
                _ => Map::new(),
            };
            for (k, v) in m {
                let v = match v {
                    Value::Null => node
                        .child2("properties", k)
                        .and_then(|s| example::generate(ctx, side, &s))
                        .unwrap_or(Value::Null),
                    other => other.clone(),
                };
                doc.insert(k.clone(), v);
            }
            if let Some(Value::Object(t)) = &trigger {
                doc.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            out.push(Value::Object(doc));
        }
        out.push(c);
    }
    out
}

/// Compares the conditions of two nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    if KEYWORDS.iter().all(|k| o.get(k) == n.get(k)) && ctx.old_draft == ctx.new_draft {
        return Ok(());
    }
    match (condition(ctx, Side::Old, o), condition(ctx, Side::New, n)) {
        (None, None) => {}
        (None, Some(c)) => {
            let candidates = candidates(ctx, Side::Old, o, &c, Side::New);
            out.push(Pending::new(
                ChangeKind::ConditionAdded,
                o.ptr.clone(),
                n.kw_ptr("if"),
                Breaks::Readers,
                "`if`/`then`/`else` added: old documents that do not meet the new condition are rejected",
                candidates,
            ));
        }
        (Some(c), None) => {
            let candidates = candidates(ctx, Side::New, n, &c, Side::Old);
            out.push(Pending::new(
                ChangeKind::ConditionRemoved,
                o.kw_ptr("if"),
                n.ptr.clone(),
                Breaks::Writers,
                "`if`/`then`/`else` removed: new documents that do not meet the old condition are rejected by old readers",
                candidates,
            ));
        }
        (Some(a), Some(b)) => {
            if same::equivalent(ctx, &a.cond.v, &b.cond.v) {
                for (from, to, meets) in [
                    (&a.then, &b.then, true),
                    (&a.otherwise, &b.otherwise, false),
                ] {
                    for mut p in ctx.compare(from, to)? {
                        let (side, node) = match p.breaks {
                            Breaks::Writers => (Side::New, n),
                            _ => (Side::Old, o),
                        };
                        let cond = if side == Side::New { &b.cond } else { &a.cond };
                        p.candidates = completed(
                            ctx,
                            side,
                            node,
                            cond,
                            meets,
                            std::mem::take(&mut p.candidates),
                        );
                        out.push(p);
                    }
                }
            } else {
                combinators::unsupported(ctx, o, n, "if", out);
            }
        }
    }
    Ok(())
}
