//! Object keywords: `properties`, `required`, the content model
//! (`additionalProperties`, `patternProperties`), `minProperties`,
//! `maxProperties`, `dependentRequired`, `dependentSchemas`, `dependencies`.
//!
//! An added property is judged by the old schema's model for that name, a
//! removed one by the new schema's. Under the lenient policy, documents are
//! assumed to carry only properties their own schema declares (by name, by
//! pattern or through a schema-valued `additionalProperties`); a boolean
//! open model then never matters.
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::error::CompatError;
use super::example::{self, with_property, without_property};
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::strings::integer_bound;
use super::walk::{is_false, is_trivially_true, join, ref_to, Ctx, Node, Pending, Side};

/// What a name that is not in `properties` meets.
#[derive(Debug, Clone)]
enum Governing {
    /// Anything goes (`additionalProperties` absent or `true`).
    Open,
    /// Forbidden (`additionalProperties: false`).
    Closed,
    /// A schema: a matching `patternProperties` entry or a schema-valued
    /// `additionalProperties`.
    Schema(Node),
}

fn names(node: &Node, key: &str) -> Vec<String> {
    node.get(key)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn required(node: &Node) -> Vec<String> {
    match node.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn extras(node: &Node) -> Governing {
    match node.child("additionalProperties") {
        None => Governing::Open,
        Some(c) if is_trivially_true(&c.v) => Governing::Open,
        Some(c) if is_false(&c.v) => Governing::Closed,
        Some(c) => Governing::Schema(c),
    }
}

fn governing(ctx: &mut Ctx<'_>, node: &Node, name: &str) -> Governing {
    for pattern in names(node, "patternProperties") {
        if ctx.patterns.matches(&pattern, name) == Some(true) {
            if let Some(c) = node.child2("patternProperties", &pattern) {
                return Governing::Schema(c);
            }
        }
    }
    extras(node)
}

/// The schema a declared property meets: its `properties` entry and every
/// matching `patternProperties` entry (both apply).
fn property(ctx: &mut Ctx<'_>, node: &Node, name: &str) -> Option<Node> {
    let declared = node.child2("properties", name)?;
    let mut all = vec![ref_to(&declared.ptr)];
    for pattern in names(node, "patternProperties") {
        if ctx.patterns.matches(&pattern, name) == Some(true) {
            all.push(ref_to(&join(
                &join(&node.ptr, "patternProperties"),
                &pattern,
            )));
        }
    }
    if all.len() == 1 {
        return Some(declared);
    }
    let mut m = Map::new();
    m.insert("allOf".into(), Value::Array(all));
    Some(Node::new(declared.ptr, Value::Object(m)))
}

/// A property name neither node declares and no pattern of theirs matches.
fn extra_name(ctx: &mut Ctx<'_>, o: &Node, n: &Node) -> String {
    let declared: BTreeSet<String> = names(o, "properties")
        .into_iter()
        .chain(names(n, "properties"))
        .collect();
    let patterns: Vec<String> = names(o, "patternProperties")
        .into_iter()
        .chain(names(n, "patternProperties"))
        .collect();
    for candidate in ["zz_extra", "extra", "x-extra", "_extra", "ZZ", "9"] {
        if declared.contains(candidate) {
            continue;
        }
        if patterns
            .iter()
            .all(|p| ctx.patterns.matches(p, candidate) != Some(true))
        {
            return candidate.to_string();
        }
    }
    "zz_extra_property".to_string()
}

/// A property name matching `pattern` that neither node declares.
fn name_matching(ctx: &mut Ctx<'_>, pattern: &str, o: &Node, n: &Node) -> String {
    let declared: BTreeSet<String> = names(o, "properties")
        .into_iter()
        .chain(names(n, "properties"))
        .collect();
    let samples = [
        "x", "a", "x_1", "foo", "X", "1", "a1", "ab", "x-a", "S_1", "i_1", "n_1", "meta_x",
        "x_meta", "tag", "_", "abc", "ABC", "123",
    ];
    let mut tried: Vec<String> = samples.iter().map(|s| (*s).to_string()).collect();
    let literal: String = pattern
        .trim_start_matches('^')
        .trim_end_matches('$')
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    tried.insert(0, literal.clone());
    tried.insert(1, format!("{literal}x"));
    for candidate in tried {
        if !declared.contains(&candidate) && ctx.patterns.matches(pattern, &candidate) == Some(true)
        {
            return candidate;
        }
    }
    "x".to_string()
}

fn wrap(p: &mut Pending, name: &str, old_base: &Option<Value>, new_base: &Option<Value>) {
    let base = if p.breaks == Breaks::Writers {
        new_base
    } else {
        old_base
    };
    p.candidates = std::mem::take(&mut p.candidates)
        .into_iter()
        .map(|c| with_property(base, name, c))
        .collect();
}

fn with_values(base: &Option<Value>, name: &str, values: Vec<Value>) -> Vec<Value> {
    values
        .into_iter()
        .map(|v| with_property(base, name, v))
        .collect()
}

/// Compares the object keywords of two nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let old_base = example::generate(ctx, Side::Old, o).filter(Value::is_object);
    let new_base = example::generate(ctx, Side::New, n).filter(Value::is_object);
    let strict = ctx.strict();
    let old_props = names(o, "properties");
    let new_props = names(n, "properties");
    let mut all: Vec<String> = old_props.clone();
    all.extend(new_props.iter().filter(|p| !old_props.contains(p)).cloned());
    for name in &all {
        let oc = property(ctx, o, name);
        let nc = property(ctx, n, name);
        match (oc, nc) {
            (Some(oc), Some(nc)) => {
                for mut p in ctx.compare(&oc, &nc)? {
                    wrap(&mut p, name, &old_base, &new_base);
                    out.push(p);
                }
            }
            (None, Some(nc)) => {
                match governing(ctx, o, name) {
                    Governing::Open => {
                        if strict && !is_trivially_true(&nc.v) {
                            let values = example::generic_values();
                            out.push(Pending::new(
                            ChangeKind::PropertyAddedToOpenModel,
                            o.ptr.clone(),
                            nc.ptr.clone(),
                            Breaks::Readers,
                            format!(
                                "property {name:?} added to an open content model: old documents may carry {name:?} with a value the new schema rejects"
                            ),
                            with_values(&old_base, name, values),
                        ));
                        }
                    }
                    Governing::Closed => {
                        if !is_false(&nc.v) {
                            let values = example::any_values(ctx, Side::New, &nc);
                            out.push(Pending::new(
                            ChangeKind::PropertyAddedToClosedModel,
                            o.kw_ptr("additionalProperties"),
                            nc.ptr.clone(),
                            Breaks::Writers,
                            format!(
                                "property {name:?} added to a closed content model: old readers reject new documents that carry it"
                            ),
                            with_values(&new_base, name, values),
                        ));
                        }
                    }
                    Governing::Schema(g) => {
                        for mut p in ctx.compare(&g, &nc)? {
                            p.message = format!("property {name:?} added (covered by the old partially open model): {}", p.message);
                            wrap(&mut p, name, &old_base, &new_base);
                            out.push(p);
                        }
                    }
                }
            }
            (Some(oc), None) => match governing(ctx, n, name) {
                Governing::Open => {
                    if strict && !is_trivially_true(&oc.v) {
                        let values = example::generic_values();
                        out.push(Pending::new(
                            ChangeKind::PropertyRemovedFromOpenModel,
                            oc.ptr.clone(),
                            n.ptr.clone(),
                            Breaks::Writers,
                            format!(
                                "property {name:?} removed into an open content model: new documents may carry {name:?} with a value old readers reject"
                            ),
                            with_values(&new_base, name, values),
                        ));
                    }
                }
                Governing::Closed => {
                    if !is_false(&oc.v) {
                        let values = example::any_values(ctx, Side::Old, &oc);
                        out.push(Pending::new(
                            ChangeKind::PropertyRemovedFromClosedModel,
                            oc.ptr.clone(),
                            n.kw_ptr("additionalProperties"),
                            Breaks::Readers,
                            format!(
                                "property {name:?} removed from a closed content model: old documents that carry it are rejected"
                            ),
                            with_values(&old_base, name, values),
                        ));
                    }
                }
                Governing::Schema(g) => {
                    for mut p in ctx.compare(&oc, &g)? {
                        p.message = format!("property {name:?} removed (now covered by the new partially open model): {}", p.message);
                        wrap(&mut p, name, &old_base, &new_base);
                        out.push(p);
                    }
                }
            },
            (None, None) => {}
        }
    }
    compare_required(o, n, &old_base, &new_base, ctx, out);
    compare_patterns(ctx, o, n, &old_base, &new_base, out)?;
    compare_extras(ctx, o, n, &old_base, &new_base, out)?;
    compare_counts(ctx, o, n, &old_base, &new_base, out);
    compare_dependencies(ctx, o, n, &old_base, &new_base, out)?;
    Ok(())
}

fn compare_required(
    o: &Node,
    n: &Node,
    old_base: &Option<Value>,
    new_base: &Option<Value>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<Pending>,
) {
    let or = required(o);
    let nr = required(n);
    for name in nr.iter().filter(|r| !or.contains(r)) {
        let default = n
            .child2("properties", name)
            .and_then(|c| c.get("default").cloned());
        let (kind, breaks, message) = match (&default, ctx.strict()) {
            (Some(d), true) => (
                ChangeKind::RequiredPropertyWithDefaultAdded,
                Breaks::Readers,
                format!(
                    "property {name:?} became required (default {d}): old documents without it fail validation, though readers that fill defaults cope"
                ),
            ),
            (Some(d), false) => (
                ChangeKind::RequiredPropertyWithDefaultAdded,
                Breaks::None,
                format!("property {name:?} became required with default {d}: readers fill it in for old documents"),
            ),
            (None, _) => (
                ChangeKind::RequiredPropertyAdded,
                Breaks::Readers,
                format!("property {name:?} became required: old documents without it are rejected"),
            ),
        };
        let candidates = if breaks == Breaks::None {
            Vec::new()
        } else {
            vec![without_property(old_base, name)]
        };
        out.push(Pending::new(
            kind,
            o.kw_ptr("required"),
            n.kw_ptr("required"),
            breaks,
            message,
            candidates,
        ));
    }
    for name in or.iter().filter(|r| !nr.contains(r)) {
        out.push(Pending::new(
            ChangeKind::RequiredPropertyRemoved,
            o.kw_ptr("required"),
            n.kw_ptr("required"),
            Breaks::Writers,
            format!("property {name:?} is no longer required: old readers reject new documents without it"),
            vec![without_property(new_base, name)],
        ));
    }
}

fn compare_patterns(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    old_base: &Option<Value>,
    new_base: &Option<Value>,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let strict = ctx.strict();
    let op = names(o, "patternProperties");
    let np = names(n, "patternProperties");
    let mut all = op.clone();
    all.extend(np.iter().filter(|p| !op.contains(p)).cloned());
    for pattern in &all {
        let name = name_matching(ctx, pattern, o, n);
        let oc = o.child2("patternProperties", pattern);
        let nc = n.child2("patternProperties", pattern);
        match (oc, nc) {
            (Some(oc), Some(nc)) => {
                for mut p in ctx.compare(&oc, &nc)? {
                    wrap(&mut p, &name, old_base, new_base);
                    out.push(p);
                }
            }
            (None, Some(nc)) => match extras(o) {
                Governing::Open if strict && !is_trivially_true(&nc.v) => out.push(Pending::new(
                    ChangeKind::PatternPropertyAdded,
                    o.ptr.clone(),
                    nc.ptr.clone(),
                    Breaks::Readers,
                    format!("patternProperties {pattern:?} added to an open model: old documents may carry matching names with values now rejected"),
                    with_values(old_base, &name, example::generic_values()),
                )),
                Governing::Closed if !is_false(&nc.v) => {
                    let values = example::any_values(ctx, Side::New, &nc);
                    out.push(Pending::new(
                        ChangeKind::PatternPropertyAdded,
                        o.kw_ptr("additionalProperties"),
                        nc.ptr.clone(),
                        Breaks::Writers,
                        format!("patternProperties {pattern:?} added to a closed model: old readers reject new documents with matching names"),
                        with_values(new_base, &name, values),
                    ));
                }
                Governing::Schema(g) => {
                    for mut p in ctx.compare(&g, &nc)? {
                        wrap(&mut p, &name, old_base, new_base);
                        out.push(p);
                    }
                }
                _ => {}
            },
            (Some(oc), None) => match extras(n) {
                Governing::Open if strict && !is_trivially_true(&oc.v) => out.push(Pending::new(
                    ChangeKind::PatternPropertyRemoved,
                    oc.ptr.clone(),
                    n.ptr.clone(),
                    Breaks::Writers,
                    format!("patternProperties {pattern:?} removed into an open model: new documents may carry matching names with values old readers reject"),
                    with_values(new_base, &name, example::generic_values()),
                )),
                Governing::Closed if !is_false(&oc.v) => {
                    let values = example::any_values(ctx, Side::Old, &oc);
                    out.push(Pending::new(
                        ChangeKind::PatternPropertyRemoved,
                        oc.ptr.clone(),
                        n.kw_ptr("additionalProperties"),
                        Breaks::Readers,
                        format!("patternProperties {pattern:?} removed from a closed model: old documents with matching names are rejected"),
                        with_values(old_base, &name, values),
                    ));
                }
                Governing::Schema(g) => {
                    for mut p in ctx.compare(&oc, &g)? {
                        wrap(&mut p, &name, old_base, new_base);
                        out.push(p);
                    }
                }
                _ => {}
            },
            (None, None) => {}
        }
    }
    Ok(())
}

fn compare_extras(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    old_base: &Option<Value>,
    new_base: &Option<Value>,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let strict = ctx.strict();
    let name = extra_name(ctx, o, n);
    let (oe, ne) = (extras(o), extras(n));
    let (op, np) = (
        o.kw_ptr("additionalProperties"),
        n.kw_ptr("additionalProperties"),
    );
    let narrowed = |message: String, candidates: Vec<Value>| {
        Pending::new(
            ChangeKind::AdditionalPropertiesNarrowed,
            &op,
            &np,
            Breaks::Readers,
            message,
            candidates,
        )
    };
    let widened = |message: String, candidates: Vec<Value>| {
        Pending::new(
            ChangeKind::AdditionalPropertiesWidened,
            &op,
            &np,
            Breaks::Writers,
            message,
            candidates,
        )
    };
    match (&oe, &ne) {
        (Governing::Open, Governing::Closed) if strict => out.push(narrowed(
            "content model closed (additionalProperties: false): old documents with undeclared properties are rejected".into(),
            with_values(old_base, &name, example::generic_values()),
        )),
        (Governing::Closed, Governing::Open) if strict => out.push(widened(
            "content model opened: new documents may carry undeclared properties, which old readers reject".into(),
            with_values(new_base, &name, example::generic_values()),
        )),
        (Governing::Open, Governing::Schema(s)) if strict && !is_trivially_true(&s.v) => out.push(narrowed(
            "additionalProperties now constrained: old documents with undeclared properties of other shapes are rejected".into(),
            with_values(old_base, &name, example::generic_values()),
        )),
        (Governing::Schema(s), Governing::Open) if strict && !is_trivially_true(&s.v) => out.push(widened(
            "additionalProperties no longer constrained: new documents may carry undeclared properties old readers reject".into(),
            with_values(new_base, &name, example::generic_values()),
        )),
        (Governing::Schema(s), Governing::Closed) if !is_false(&s.v) => {
            let values = example::any_values(ctx, Side::Old, s);
            out.push(narrowed(
                "additionalProperties closed: old documents with additional properties are rejected".into(),
                with_values(old_base, &name, values),
            ));
        }
        (Governing::Closed, Governing::Schema(s)) if !is_false(&s.v) => {
            let values = example::any_values(ctx, Side::New, s);
            out.push(widened(
                "additionalProperties opened to a schema: old readers reject new documents with additional properties".into(),
                with_values(new_base, &name, values),
            ));
        }
        (Governing::Schema(a), Governing::Schema(b)) => {
            for mut p in ctx.compare(a, b)? {
                wrap(&mut p, &name, old_base, new_base);
                out.push(p);
            }
        }
        _ => {}
    }
    Ok(())
}

fn compare_counts(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    old_base: &Option<Value>,
    new_base: &Option<Value>,
    out: &mut Vec<Pending>,
) {
    for (key, lower, kinds) in [
        (
            "minProperties",
            true,
            (
                ChangeKind::MinPropertiesAdded,
                ChangeKind::MinPropertiesRemoved,
                ChangeKind::MinPropertiesIncreased,
                ChangeKind::MinPropertiesDecreased,
            ),
        ),
        (
            "maxProperties",
            false,
            (
                ChangeKind::MaxPropertiesAdded,
                ChangeKind::MaxPropertiesRemoved,
                ChangeKind::MaxPropertiesDecreased,
                ChangeKind::MaxPropertiesIncreased,
            ),
        ),
    ] {
        let Some(mut p) = integer_bound(o, n, key, lower, kinds, "objects") else {
            continue;
        };
        let (node, base) = if p.breaks == Breaks::Writers {
            (n, new_base)
        } else {
            (o, old_base)
        };
        let mut lens: Vec<usize> = Vec::new();
        for x in [o, n] {
            if let Some(k) = x.get(key).and_then(Value::as_u64) {
                let k = usize::try_from(k.min(200)).unwrap_or(0);
                lens.extend([k.saturating_sub(1), k, k + 1]);
            }
        }
        let declared = names(node, "properties");
        let open = !matches!(extras(node), Governing::Closed);
        let start: Map<String, Value> = base
            .as_ref()
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for k in lens {
            let mut m = start.clone();
            for name in &declared {
                if m.len() >= k {
                    break;
                }
                if !m.contains_key(name) {
                    let v = node
                        .child2("properties", name)
                        .and_then(|c| {
                            example::generate(
                                ctx,
                                if node.ptr == n.ptr {
                                    Side::New
                                } else {
                                    Side::Old
                                },
                                &c,
                            )
                        })
                        .unwrap_or(Value::Null);
                    m.insert(name.clone(), v);
                }
            }
            let mut i = 0;
            while open && m.len() < k && i < 256 {
                m.insert(format!("extra{i}"), Value::Null);
                i += 1;
            }
            while m.len() > k {
                let Some(last) = m.keys().next_back().cloned() else {
                    break;
                };
                m.remove(&last);
            }
            p.candidates.push(Value::Object(m));
        }
        out.push(p);
    }
}

fn dependent_required(node: &Node) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for key in ["dependentRequired", "dependencies"] {
        if let Some(Value::Object(m)) = node.get(key) {
            for (k, v) in m {
                if let Value::Array(names) = v {
                    let names = names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                    out.push((k.clone(), join(&join(&node.ptr, key), k), names));
                }
            }
        }
    }
    out
}

fn dependent_schemas(node: &Node) -> Vec<(String, Node)> {
    let mut out = Vec::new();
    for key in ["dependentSchemas", "dependencies"] {
        if let Some(Value::Object(m)) = node.get(key) {
            for (k, v) in m {
                if v.is_object() || v.is_boolean() {
                    out.push((
                        k.clone(),
                        Node::new(join(&join(&node.ptr, key), k), v.clone()),
                    ));
                }
            }
        }
    }
    out
}

fn with_trigger(
    ctx: &mut Ctx<'_>,
    side: Side,
    node: &Node,
    base: &Option<Value>,
    trigger: &str,
) -> Value {
    match base.as_ref().and_then(|b| b.get(trigger)) {
        Some(_) => base.clone().unwrap_or(Value::Object(Map::new())),
        None => {
            let v = node
                .child2("properties", trigger)
                .and_then(|c| example::generate(ctx, side, &c))
                .unwrap_or(Value::Null);
            with_property(base, trigger, v)
        }
    }
}

fn compare_dependencies(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    old_base: &Option<Value>,
    new_base: &Option<Value>,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let od = dependent_required(o);
    let nd = dependent_required(n);
    for (key, nptr, nnames) in &nd {
        let (optr, onames) = od
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, p, v)| (p.clone(), v.clone()))
            .unwrap_or_else(|| (o.ptr.clone(), Vec::new()));
        for dep in nnames.iter().filter(|d| !onames.contains(d)) {
            let mut base = with_trigger(ctx, Side::Old, o, old_base, key);
            for other in onames.iter().filter(|x| *x != dep) {
                base = with_trigger(ctx, Side::Old, o, &Some(base), other);
            }
            out.push(Pending::new(
                ChangeKind::DependentRequiredAdded,
                optr.clone(),
                nptr.clone(),
                Breaks::Readers,
                format!("{dep:?} is now required whenever {key:?} is present: old documents with {key:?} but not {dep:?} are rejected"),
                vec![without_property(&Some(base), dep)],
            ));
        }
    }
    for (key, optr, onames) in &od {
        let (nptr, nnames) = nd
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, p, v)| (p.clone(), v.clone()))
            .unwrap_or_else(|| (n.ptr.clone(), Vec::new()));
        for dep in onames.iter().filter(|d| !nnames.contains(d)) {
            let mut base = with_trigger(ctx, Side::New, n, new_base, key);
            for other in nnames.iter().filter(|x| *x != dep) {
                base = with_trigger(ctx, Side::New, n, &Some(base), other);
            }
            out.push(Pending::new(
                ChangeKind::DependentRequiredRemoved,
                optr.clone(),
                nptr.clone(),
                Breaks::Writers,
                format!("{dep:?} is no longer required when {key:?} is present: old readers reject new documents without it"),
                vec![without_property(&Some(base), dep)],
            ));
        }
    }
    let os = dependent_schemas(o);
    let ns = dependent_schemas(n);
    for (key, nc) in &ns {
        match os.iter().find(|(k, _)| k == key) {
            Some((_, oc)) => {
                for mut p in ctx.compare(oc, nc)? {
                    let (side, node, base) = if p.breaks == Breaks::Writers {
                        (Side::New, n, new_base)
                    } else {
                        (Side::Old, o, old_base)
                    };
                    let mut candidates = Vec::new();
                    for c in std::mem::take(&mut p.candidates) {
                        if c.is_object() {
                            candidates.push(with_trigger(ctx, side, node, &Some(c), key));
                        }
                    }
                    candidates.push(with_trigger(ctx, side, node, base, key));
                    p.candidates = candidates;
                    out.push(p);
                }
            }
            None if !is_trivially_true(&nc.v) => {
                let base = with_trigger(ctx, Side::Old, o, old_base, key);
                out.push(Pending::new(
                    ChangeKind::DependentSchemaAdded,
                    o.ptr.clone(),
                    nc.ptr.clone(),
                    Breaks::Readers,
                    format!("a schema now applies whenever {key:?} is present: old documents with {key:?} may be rejected"),
                    vec![base],
                ));
            }
            None => {}
        }
    }
    for (key, oc) in &os {
        if !ns.iter().any(|(k, _)| k == key) && !is_trivially_true(&oc.v) {
            let base = with_trigger(ctx, Side::New, n, new_base, key);
            out.push(Pending::new(
                ChangeKind::DependentSchemaRemoved,
                oc.ptr.clone(),
                n.ptr.clone(),
                Breaks::Writers,
                format!("the schema applied when {key:?} is present was dropped: old readers may reject new documents with {key:?}"),
                vec![base],
            ));
        }
    }
    Ok(())
}
