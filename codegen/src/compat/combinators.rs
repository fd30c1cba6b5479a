//! `anyOf`/`oneOf` alternatives, `allOf` subschemas that could not be
//! merged, `not`, and keywords the engine does not model.
use serde_json::{Map, Value};

use super::error::CompatError;
use super::example;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::types;
use super::walk::{is_annotation, join, ref_to, relocate, Ctx, Node, Pending, Side};

/// The alternatives keyword of a node, if any (`anyOf` wins over `oneOf`).
fn sum_keyword(node: &Node) -> Option<&'static str> {
    ["anyOf", "oneOf"]
        .into_iter()
        .find(|k| node.get(k).is_some_and(Value::is_array))
}

/// Alternative `i` of `kw`, conjoined with the node's other keywords.
pub(crate) fn branch_with_own(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    kw: &str,
    i: usize,
) -> Option<Node> {
    let own: Map<String, Value> = node
        .v
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != kw && !is_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let branch_ptr = join(&join(&node.ptr, kw), &i.to_string());
    let raw = node.get(kw)?.as_array()?.get(i)?.clone();
    if own.is_empty() {
        return ctx.normalize(side, &Node::new(branch_ptr, raw)).ok();
    }
    let mut m = relocate(&own, &node.ptr);
    let mut all = match m.remove("allOf") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    // Point at where the alternative really lives: a node merged elsewhere
    // already holds `$ref`s to the real location.
    let target = match &raw {
        Value::Object(r) if r.len() == 1 && r.contains_key("$ref") => raw.clone(),
        _ => ref_to(&branch_ptr),
    };
    // An alternative that is a `$ref` is identified by its target, so that
    // a recursion through it (`anyOf: [.., {"$ref": "#"}]`) is recognised.
    let (ptr, via_ref) = match &raw {
        Value::Object(r) if r.len() == 1 && r.contains_key("$ref") => {
            let resolved = ctx
                .resolve(side, &Node::new(branch_ptr.clone(), raw.clone()))
                .ok()?;
            (resolved.ptr, true)
        }
        _ => (branch_ptr, false),
    };
    all.insert(0, target);
    m.insert("allOf".into(), Value::Array(all));
    let mut merged = ctx
        .normalize(side, &Node::new(ptr, Value::Object(m)))
        .ok()?;
    merged.via_ref |= via_ref;
    Some(merged)
}

fn branches(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    kw: Option<&str>,
) -> Result<Vec<Node>, CompatError> {
    let Some(kw) = kw else {
        return Ok(vec![node.clone()]);
    };
    let count = node.get(kw).and_then(Value::as_array).map_or(0, Vec::len);
    let mut out = Vec::new();
    for i in 0..count {
        let raw = Node::new(
            join(&join(&node.ptr, kw), &i.to_string()),
            node.get(kw)
                .and_then(|a| a.get(i))
                .cloned()
                .unwrap_or(Value::Bool(true)),
        );
        // Surface ref errors instead of silently dropping the alternative.
        ctx.resolve(side, &raw)?;
        match branch_with_own(ctx, side, node, kw, i) {
            Some(b) => out.push(b),
            None => out.push(raw),
        }
    }
    Ok(out)
}

fn strip(node: &Node, kw: &str) -> Node {
    let mut v = node.v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove(kw);
    }
    Node {
        ptr: node.ptr.clone(),
        v,
        via_ref: node.via_ref,
        pure: false,
    }
}

/// Compares two nodes, matching `anyOf`/`oneOf` alternatives when present.
pub(crate) fn compare_sums(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
) -> Result<Vec<Pending>, CompatError> {
    let (ok, nk) = (sum_keyword(o), sum_keyword(n));
    if ok.is_none() && nk.is_none() {
        return ctx.compare_own(o, n);
    }
    let mut out = Vec::new();
    let (ob, nb) = if ok.is_some() && ok == nk {
        let kw = ok.unwrap_or("anyOf");
        out.extend(ctx.compare_own(&strip(o, kw), &strip(n, kw))?);
        let raw = |node: &Node| -> Vec<Node> {
            let p = join(&node.ptr, kw);
            node.get(kw)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .enumerate()
                        .map(|(i, v)| Node::new(join(&p, &i.to_string()), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        (raw(o), raw(n))
    } else {
        (
            branches(ctx, Side::Old, o, ok)?,
            branches(ctx, Side::New, n, nk)?,
        )
    };
    let removed_kind = match ok.or(nk) {
        Some("oneOf") => ChangeKind::OneOfBranchRemoved,
        _ => ChangeKind::AnyOfBranchRemoved,
    };
    let added_kind = match nk.or(ok) {
        Some("oneOf") => ChangeKind::OneOfBranchAdded,
        _ => ChangeKind::AnyOfBranchAdded,
    };
    if ob.len() == 1 && nb.len() == 1 {
        out.extend(ctx.compare(&ob[0], &nb[0])?);
        return Ok(out);
    }
    let mut results: Vec<Vec<Vec<Pending>>> = Vec::new();
    for b in &ob {
        let mut row = Vec::new();
        for c in &nb {
            row.push(ctx.compare(b, c)?);
        }
        results.push(row);
    }
    let resolved_types = |ctx: &mut Ctx<'_>, side: Side, node: &Node| {
        ctx.normalize(side, node)
            .map(|r| types::effective(&r))
            .unwrap_or(types::TypeSet::ALL)
    };
    let otypes: Vec<_> = ob
        .iter()
        .map(|b| resolved_types(ctx, Side::Old, b))
        .collect();
    let ntypes: Vec<_> = nb
        .iter()
        .map(|b| resolved_types(ctx, Side::New, b))
        .collect();
    for (i, b) in ob.iter().enumerate() {
        let count = |j: usize| {
            results[i][j]
                .iter()
                .filter(|p| p.breaks == Breaks::Readers)
                .count()
        };
        if (0..nb.len()).any(|j| count(j) == 0) {
            continue;
        }
        if covered_by_type(ctx, Side::Old, b, &otypes[i], &nb, &ntypes, Breaks::Readers)? {
            continue;
        }
        let best = partner(
            i,
            (ob.len(), ok.is_some()),
            (nb.len(), nk.is_some()),
            count,
            |j| !otypes[i].intersect(ntypes[j]).is_empty(),
        );
        match best {
            Some(j) => {
                out.extend(
                    results[i][j]
                        .iter()
                        .filter(|p| p.breaks == Breaks::Readers)
                        .cloned(),
                );
            }
            _ => {
                let candidates = example::any_values(ctx, Side::Old, b);
                out.push(Pending::new(
                    removed_kind,
                    b.ptr.clone(),
                    n.kw_ptr(nk.unwrap_or("anyOf")),
                    Breaks::Readers,
                    format!(
                        "alternative {} has no counterpart in the new schema: old documents matching only it are rejected",
                        shown(&b.ptr)
                    ),
                    candidates,
                ));
            }
        }
    }
    for (j, c) in nb.iter().enumerate() {
        let count = |i: usize| {
            results[i][j]
                .iter()
                .filter(|p| p.breaks == Breaks::Writers)
                .count()
        };
        if (0..ob.len()).any(|i| count(i) == 0) {
            continue;
        }
        if covered_by_type(ctx, Side::New, c, &ntypes[j], &ob, &otypes, Breaks::Writers)? {
            continue;
        }
        let best = partner(
            j,
            (nb.len(), nk.is_some()),
            (ob.len(), ok.is_some()),
            count,
            |i| !otypes[i].intersect(ntypes[j]).is_empty(),
        );
        match best {
            Some(i) => {
                out.extend(
                    results[i][j]
                        .iter()
                        .filter(|p| p.breaks == Breaks::Writers)
                        .cloned(),
                );
            }
            _ => {
                let candidates = example::any_values(ctx, Side::New, c);
                out.push(Pending::new(
                    added_kind,
                    o.kw_ptr(ok.unwrap_or("anyOf")),
                    c.ptr.clone(),
                    Breaks::Writers,
                    format!(
                        "alternative {} is new: documents matching only it are rejected by old readers",
                        shown(&c.ptr)
                    ),
                    candidates,
                ));
            }
        }
    }
    // Overlaps only matter when nothing else already breaks that direction
    // here (otherwise the example could not be told apart from that change).
    if nk == Some("oneOf") && !out.iter().any(|p| p.breaks == Breaks::Readers) {
        overlaps(ctx, Side::New, (o, ok, &ob), &nb, &mut out);
    }
    if ok == Some("oneOf") && !out.iter().any(|p| p.breaks == Breaks::Writers) {
        overlaps(ctx, Side::Old, (n, nk, &nb), &ob, &mut out);
    }
    Ok(out)
}

/// Changes for `oneOf` alternatives on `side` that are new there (or
/// where the other side had no `oneOf`): a document of the other side may
/// match two alternatives and be rejected. Skipped for an alternative
/// shown disjoint from every other ([`provably_disjoint`]); otherwise
/// reported, with an example when one of the candidates proves it and
/// without one (a conservative verdict) when none does.
fn overlaps(
    ctx: &mut Ctx<'_>,
    side: Side,
    (other, other_kw, other_branches): (&Node, Option<&str>, &[Node]),
    branches: &[Node],
    out: &mut Vec<Pending>,
) {
    let other_side = if side == Side::New {
        Side::Old
    } else {
        Side::New
    };
    for c in branches {
        if other_kw == Some("oneOf") && other_branches.iter().any(|b| b.v == c.v) {
            continue;
        }
        // No document can match `c` and another alternative: no overlap.
        if branches
            .iter()
            .filter(|d| d.ptr != c.ptr)
            .all(|d| provably_disjoint(ctx, side, c, d, 0))
        {
            continue;
        }
        let mine = example::any_values(ctx, side, c);
        let mut candidates = Vec::new();
        for b in other_branches {
            let theirs = example::any_values(ctx, other_side, b);
            // A document of the other side that also carries this alternative's fields.
            for t in theirs.iter().take(3) {
                for m in mine.iter().take(3) {
                    if let (Some(tm), Some(mm)) = (t.as_object(), m.as_object()) {
                        let mut merged = tm.clone();
                        for (k, v) in mm {
                            merged.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        candidates.push(Value::Object(merged));
                    }
                }
            }
            candidates.extend(theirs);
        }
        candidates.extend(mine);
        for b in other_branches {
            candidates.extend(example::scalar_pool(b, c));
        }
        let (old_path, new_path, breaks, message) = match side {
            Side::New => (
                other.kw_ptr(other_kw.unwrap_or("oneOf")),
                c.ptr.clone(),
                Breaks::Readers,
                format!(
                    "oneOf alternative {} overlaps another: old documents matching both are rejected (oneOf needs exactly one match)",
                    shown(&c.ptr)
                ),
            ),
            Side::Old => (
                c.ptr.clone(),
                other.kw_ptr(other_kw.unwrap_or("oneOf")),
                Breaks::Writers,
                format!(
                    "old oneOf alternative {} overlapped another: new documents matching both are rejected by old readers",
                    shown(&c.ptr)
                ),
            ),
        };
        let kind = match side {
            Side::New => ChangeKind::OneOfBranchAdded,
            Side::Old => ChangeKind::OneOfBranchRemoved,
        };
        // Reported even without an example: the alternatives could not be
        // shown disjoint, so "compatible" would be unproven (conservative).
        out.push(Pending::new(
            kind, old_path, new_path, breaks, message, candidates,
        ));
    }
}

/// Whether no document can match both `a` and `b` (alternatives on
/// `side`), as far as can be shown cheaply: one is `false`, their types do
/// not intersect, their `const`/`enum` scalars differ, or a property both
/// require has schemas that are disjoint in these ways (a discriminator
/// such as `"kind": {"const": "a"}`). `false` means "not shown".
fn provably_disjoint(ctx: &mut Ctx<'_>, side: Side, a: &Node, b: &Node, depth: usize) -> bool {
    let (Ok(a), Ok(b)) = (ctx.normalize(side, a), ctx.normalize(side, b)) else {
        return false;
    };
    if a.v == Value::Bool(false) || b.v == Value::Bool(false) {
        return true;
    }
    if !a.v.is_object() || !b.v.is_object() {
        return false;
    }
    let (ta, tb) = (
        types::effective_deep(ctx, side, &a, 0),
        types::effective_deep(ctx, side, &b, 0),
    );
    if ta.intersect(tb).is_empty() {
        return true;
    }
    if let (Some(x), Some(y)) = (scalar_values(&a.v), scalar_values(&b.v)) {
        if x.iter().all(|v| !y.iter().any(|w| same_scalar(v, w))) {
            return true;
        }
    }
    if depth >= 3 {
        return false;
    }
    let required = |n: &Node| -> Vec<String> {
        n.get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    // A property tells documents apart only if every document both could
    // match is an object.
    if ta.intersect(tb).names() != ["object"] {
        return false;
    }
    let rb = required(&b);
    for p in required(&a).into_iter().filter(|p| rb.contains(p)) {
        let prop = |n: &Node| {
            n.get("properties")
                .and_then(|ps| ps.get(&p))
                .map(|v| Node::new(join(&join(&n.ptr, "properties"), &p), v.clone()))
        };
        if let (Some(pa), Some(pb)) = (prop(&a), prop(&b)) {
            if provably_disjoint(ctx, side, &pa, &pb, depth + 1) {
                return true;
            }
        }
    }
    false
}

/// The values a schema's `const` or `enum` allows, when all are scalars.
fn scalar_values(v: &Value) -> Option<Vec<&Value>> {
    let values: Vec<&Value> = match (v.get("const"), v.get("enum")) {
        (Some(c), _) => vec![c],
        (None, Some(Value::Array(e))) => e.iter().collect(),
        _ => return None,
    };
    values
        .iter()
        .all(|v| !(v.is_array() || v.is_object()))
        .then_some(values)
}

/// JSON equality of two scalars (`1` equals `1.0`).
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A pointer for a message (`at the root` for `""`).
fn shown(ptr: &str) -> &str {
    if ptr.is_empty() {
        "at the root"
    } else {
        ptr
    }
}

/// The alternative on the other side whose detailed changes explain why
/// alternative `i` is not covered: the closest one when either side is a
/// plain schema, or the one at the same position when both sides have as
/// many alternatives; `None` when the alternative
/// is better reported as added or removed as a whole.
fn partner(
    i: usize,
    (mine, mine_is_sum): (usize, bool),
    (theirs, theirs_is_sum): (usize, bool),
    count: impl Fn(usize) -> usize,
    overlaps: impl Fn(usize) -> bool,
) -> Option<usize> {
    if !mine_is_sum || !theirs_is_sum {
        return (0..theirs)
            .filter(|j| overlaps(*j))
            .min_by_key(|j| count(*j));
    }
    (mine == theirs && overlaps(i)).then_some(i)
}

/// Whether an alternative is covered by the union of the other side's
/// alternatives, one JSON type at a time (`type: [string, integer]` is
/// covered by `anyOf: [string, integer]`).
fn covered_by_type(
    ctx: &mut Ctx<'_>,
    side: Side,
    branch: &Node,
    types: &types::TypeSet,
    others: &[Node],
    other_types: &[types::TypeSet],
    direction: Breaks,
) -> Result<bool, CompatError> {
    let names = types.names();
    if names.len() < 2 || names.contains(&"non-integer number") {
        return Ok(false);
    }
    let Ok(resolved) = ctx.normalize(side, branch) else {
        return Ok(false);
    };
    let Some(m) = resolved.v.as_object() else {
        return Ok(false);
    };
    for name in names {
        let mut restricted = m.clone();
        restricted.insert("type".into(), Value::String(name.to_string()));
        let restricted = Node {
            ptr: resolved.ptr.clone(),
            v: Value::Object(restricted),
            via_ref: resolved.via_ref,
            pure: false,
        };
        let mut covered = false;
        for (k, other) in others.iter().enumerate() {
            if other_types[k]
                .intersect(types::effective(&restricted))
                .is_empty()
            {
                continue;
            }
            let changes = match side {
                Side::Old => ctx.compare(&restricted, other)?,
                Side::New => ctx.compare(other, &restricted)?,
            };
            if !changes.iter().any(|p| p.breaks == direction) {
                covered = true;
                break;
            }
        }
        if !covered {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Compares `not`: a change inside it counts in the other direction.
pub(crate) fn compare_not(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    match (o.child("not"), n.child("not")) {
        (Some(a), Some(b)) => {
            ctx.negated = !ctx.negated;
            let inner = ctx.compare(&a, &b);
            ctx.negated = !ctx.negated;
            for mut p in inner? {
                p.breaks = match p.breaks {
                    Breaks::Readers => Breaks::Writers,
                    Breaks::Writers => Breaks::Readers,
                    Breaks::None => Breaks::None,
                };
                p.message = format!("inside `not`, so the effect is reversed: {}", p.message);
                out.push(p);
            }
        }
        (None, Some(b)) => {
            let mut candidates: Vec<Value> =
                example::generate(ctx, Side::New, &b).into_iter().collect();
            candidates.extend(example::scalar_pool(&b, o));
            out.push(Pending::new(
                ChangeKind::NotAdded,
                o.ptr.clone(),
                b.ptr.clone(),
                Breaks::Readers,
                "`not` added: old documents matching the excluded schema are rejected",
                candidates,
            ));
        }
        (Some(a), None) => {
            let mut candidates: Vec<Value> =
                example::generate(ctx, Side::Old, &a).into_iter().collect();
            candidates.extend(example::scalar_pool(&a, n));
            out.push(Pending::new(
                ChangeKind::NotRemoved,
                a.ptr.clone(),
                n.ptr.clone(),
                Breaks::Writers,
                "`not` removed: new documents matching the formerly excluded schema are rejected by old readers",
                candidates,
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// Compares `allOf` subschemas that could not be merged, by position.
pub(crate) fn compare_all_of(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let list = |node: &Node| -> Vec<Node> {
        let p = join(&node.ptr, "allOf");
        node.get("allOf")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Node::new(join(&p, &i.to_string()), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (oa, na) = (list(o), list(n));
    for i in 0..oa.len().max(na.len()) {
        match (oa.get(i), na.get(i)) {
            (Some(a), Some(b)) => out.extend(ctx.compare(a, b)?),
            (None, Some(b)) => {
                let candidates = example::any_values(ctx, Side::Old, o);
                let at = ctx
                    .resolve(Side::New, b)
                    .map_or_else(|_| b.ptr.clone(), |r| r.ptr);
                out.push(Pending::new(
                    ChangeKind::AllOfSubschemaAdded,
                    o.ptr.clone(),
                    at,
                    Breaks::Readers,
                    "an allOf subschema was added: old documents it rejects are now rejected",
                    candidates,
                ));
            }
            (Some(a), None) => {
                let candidates = example::any_values(ctx, Side::New, n);
                let at = ctx
                    .resolve(Side::Old, a)
                    .map_or_else(|_| a.ptr.clone(), |r| r.ptr);
                out.push(Pending::new(
                    ChangeKind::AllOfSubschemaRemoved,
                    at,
                    n.ptr.clone(),
                    Breaks::Writers,
                    "an allOf subschema was removed: new documents it would reject are rejected by old readers",
                    candidates,
                ));
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Validation keywords the engine does not model exactly.
const UNSUPPORTED: &[&str] = &["$dynamicRef", "$recursiveRef", "oneOf"];

/// Any difference in an unmodelled keyword is judged breaking both ways.
pub(crate) fn compare_unsupported(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    for key in UNSUPPORTED {
        if o.get(key) != n.get(key) {
            unsupported(ctx, o, n, key, out);
        }
    }
    Ok(())
}

/// A change under `key` that cannot be compared exactly: breaking in both
/// directions, each with the candidates of its accepting side.
pub(crate) fn unsupported(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    key: &str,
    out: &mut Vec<Pending>,
) {
    let (old_path, new_path) = match key {
        "unevaluated" => (
            keyword_or_node(o, &super::unevaluated::KEYWORDS),
            keyword_or_node(n, &super::unevaluated::KEYWORDS),
        ),
        _ => (o.kw_ptr(key), n.kw_ptr(key)),
    };
    let what = match key {
        "unevaluated" => {
            "a schema with `unevaluatedProperties`/`unevaluatedItems` beside applicators changed"
                .to_string()
        }
        _ => format!("`{key}` changed"),
    };
    for breaks in [Breaks::Readers, Breaks::Writers] {
        let (side, node, other) = if breaks == Breaks::Readers {
            (Side::Old, o, n)
        } else {
            (Side::New, n, o)
        };
        let mut candidates: Vec<Value> = example::any_values(ctx, side, node);
        candidates.extend(example::scalar_pool(node, other));
        out.push(Pending::new(
            ChangeKind::UnsupportedKeywordChanged,
            old_path.clone(),
            new_path.clone(),
            breaks,
            format!("{what}; the engine cannot compare it exactly, so it is judged breaking in both directions"),
            candidates,
        ));
    }
}

/// The pointer of the first of `keys` the node holds, else of the node.
fn keyword_or_node(node: &Node, keys: &[&str]) -> String {
    keys.iter()
        .find(|k| node.get(k).is_some())
        .map_or_else(|| node.ptr.clone(), |k| node.kw_ptr(k))
}
