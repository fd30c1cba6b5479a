//! The traversal: schema nodes, `$ref` resolution, `allOf` flattening, the
//! cycle guard and the dispatch of one comparison to the keyword modules.
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::schema_keywords::is_data;

use super::error::CompatError;
use super::kinds::ChangeKind;
use super::model::{Breaks, Policy};
use super::{
    arrays, combinators, conditionals, contains, example, names, numbers, objects, same, strings,
    types, unevaluated,
};

/// Upper bound on subschema comparisons in one [`super::diff`] call.
pub(crate) const WORK_BUDGET: usize = 200_000;

/// Deepest nesting of subschemas compared.
pub(crate) const MAX_DEPTH: usize = 300;

/// Which of the two schemas a node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Old,
    New,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Old => "old",
            Side::New => "new",
        }
    }
}

/// The JSON Schema draft a document follows (from its root `$schema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Draft {
    D4,
    D6,
    D7,
    D2019,
    D2020,
}

pub(crate) fn detect_draft(root: &Value) -> Draft {
    let s = root.get("$schema").and_then(Value::as_str).unwrap_or("");
    if s.contains("draft-04") {
        Draft::D4
    } else if s.contains("draft-06") {
        Draft::D6
    } else if s.contains("draft-07") {
        Draft::D7
    } else if s.contains("2019-09") {
        Draft::D2019
    } else {
        Draft::D2020
    }
}

/// A subschema and its JSON pointer in its own document.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Pointer of the subschema (after `$ref` resolution: of the target).
    pub ptr: String,
    /// The subschema (possibly rewritten: flattened `allOf`, relocated children).
    pub v: Value,
    /// Whether a `$ref` was followed to reach it.
    pub via_ref: bool,
    /// Whether `v` is exactly what `ptr` names in the document (so results
    /// for it can be remembered by pointer).
    pub pure: bool,
}

impl Node {
    pub(crate) fn new(ptr: impl Into<String>, v: Value) -> Self {
        Node {
            ptr: ptr.into(),
            v,
            via_ref: false,
            pure: false,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.v.as_object().and_then(|m| m.get(key))
    }

    /// The pointer of `key` in this node if present, else of the node.
    pub(crate) fn kw_ptr(&self, key: &str) -> String {
        if self.get(key).is_some() {
            join(&self.ptr, key)
        } else {
            self.ptr.clone()
        }
    }

    /// The child under `key` (a schema-valued keyword).
    pub(crate) fn child(&self, key: &str) -> Option<Node> {
        self.get(key)
            .map(|v| Node::new(join(&self.ptr, key), v.clone()))
    }

    /// The child under `key`/`name` (a map of schemas).
    pub(crate) fn child2(&self, key: &str, name: &str) -> Option<Node> {
        self.get(key)
            .and_then(|m| m.get(name))
            .map(|v| Node::new(join(&join(&self.ptr, key), name), v.clone()))
    }

    pub(crate) fn f64_kw(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }
}

/// Appends one token to a JSON pointer, escaping `~` and `/`.
pub(crate) fn join(ptr: &str, token: &str) -> String {
    let mut out = String::with_capacity(ptr.len() + token.len() + 1);
    out.push_str(ptr);
    out.push('/');
    if token.contains(['~', '/']) {
        out.push_str(&token.replace('~', "~0").replace('/', "~1"));
    } else {
        out.push_str(token);
    }
    out
}

/// A `$ref` value pointing at `ptr` in the same document.
pub(crate) fn ref_to(ptr: &str) -> Value {
    let mut s = String::from("#");
    for b in ptr.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    let mut m = Map::new();
    m.insert("$ref".into(), Value::String(s));
    Value::Object(m)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pointer of the subschema declaring a plain-name anchor (`$anchor`,
/// or a draft-6/7 `$id`/draft-4 `id` of `#name`).
fn find_anchor(root: &Value, name: &str) -> Option<String> {
    let hashed = format!("#{name}");
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), root)];
    while let Some((ptr, v)) = stack.pop() {
        match v {
            Value::Object(m) => {
                let declares = m.get("$anchor").and_then(Value::as_str) == Some(name)
                    || ["$id", "id"]
                        .iter()
                        .any(|k| m.get(*k).and_then(Value::as_str) == Some(hashed.as_str()));
                if declares {
                    return Some(ptr);
                }
                for (k, child) in m {
                    if !is_data(k) {
                        stack.push((join(&ptr, k), child));
                    }
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    stack.push((join(&ptr, &i.to_string()), child));
                }
            }
            _ => {}
        }
    }
    None
}

/// Keywords that never affect validation.
pub(crate) fn is_annotation(key: &str) -> bool {
    matches!(
        key,
        "$schema"
            | "$id"
            | "id"
            | "$anchor"
            | "$dynamicAnchor"
            | "$recursiveAnchor"
            | "$comment"
            | "$defs"
            | "definitions"
            | "$vocabulary"
            | "title"
            | "description"
            | "examples"
            | "default"
            | "deprecated"
            | "readOnly"
            | "writeOnly"
            | "contentMediaType"
            | "contentEncoding"
            | "contentSchema"
    ) || key.starts_with("x-")
}

/// An `allOf` entry kept as it is: a `$ref` to where it really lives.
fn kept(sub: &Value, sub_ptr: &str) -> Value {
    match sub {
        Value::Object(m) if m.len() == 1 && m.contains_key("$ref") => sub.clone(),
        _ => ref_to(sub_ptr),
    }
}

/// A change found below the root, before its examples are wrapped into
/// whole documents and proven.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub kind: ChangeKind,
    pub old_path: String,
    pub new_path: String,
    pub breaks: Breaks,
    pub message: String,
    /// Candidate example values at the compared location, best first.
    pub candidates: Vec<Value>,
}

impl Pending {
    pub(crate) fn new(
        kind: ChangeKind,
        old_path: impl Into<String>,
        new_path: impl Into<String>,
        breaks: Breaks,
        message: impl Into<String>,
        candidates: Vec<Value>,
    ) -> Self {
        Pending {
            kind,
            old_path: old_path.into(),
            new_path: new_path.into(),
            breaks,
            message: message.into(),
            candidates,
        }
    }
}

/// The state of one comparison.
pub(crate) struct Ctx<'a> {
    pub old_root: &'a Value,
    pub new_root: &'a Value,
    pub old_draft: Draft,
    pub new_draft: Draft,
    pub policy: Policy,
    /// Inside an odd number of `not`s.
    pub negated: bool,
    /// Whether example candidates are built (off for the quick first pass).
    pub examples: bool,
    stack: HashSet<(String, String, bool)>,
    memo: HashMap<(String, String, bool), Vec<Pending>>,
    work: usize,
    depth: usize,
    pub patterns: example::PatternCache,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(old_root: &'a Value, new_root: &'a Value, policy: Policy) -> Self {
        Ctx {
            old_root,
            new_root,
            old_draft: detect_draft(old_root),
            new_draft: detect_draft(new_root),
            policy,
            negated: false,
            examples: true,
            stack: HashSet::new(),
            memo: HashMap::new(),
            work: 0,
            depth: 0,
            patterns: example::PatternCache::default(),
        }
    }

    pub(crate) fn root(&self, side: Side) -> &'a Value {
        match side {
            Side::Old => self.old_root,
            Side::New => self.new_root,
        }
    }

    pub(crate) fn draft(&self, side: Side) -> Draft {
        match side {
            Side::Old => self.old_draft,
            Side::New => self.new_draft,
        }
    }

    pub(crate) fn strict(&self) -> bool {
        self.policy == Policy::Strict
    }

    pub(crate) fn tick(&mut self) -> Result<(), CompatError> {
        self.work += 1;
        if self.work > WORK_BUDGET {
            return Err(CompatError::TooComplex(WORK_BUDGET));
        }
        Ok(())
    }

    fn lookup(
        &self,
        side: Side,
        at: &str,
        reference: &str,
    ) -> Result<(String, Value), CompatError> {
        let ptr = self.target_ptr(side, at, reference)?;
        match self.root(side).pointer(&ptr) {
            Some(v) => Ok((ptr, v.clone())),
            None => Err(CompatError::UnresolvableRef {
                side: side.name(),
                at: at.to_string(),
                reference: reference.to_string(),
            }),
        }
    }

    /// The pointer a local `$ref` names, if it resolves.
    pub(crate) fn ref_target(&self, side: Side, reference: &str) -> Option<String> {
        self.target_ptr(side, "", reference).ok()
    }

    /// The pointer a local `$ref` names, checked to exist.
    fn target_ptr(&self, side: Side, at: &str, reference: &str) -> Result<String, CompatError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(CompatError::NonLocalRef {
                side: side.name(),
                at: at.to_string(),
                reference: reference.to_string(),
            });
        };
        let ptr = percent_decode(fragment);
        if !ptr.is_empty() && !ptr.starts_with('/') {
            return find_anchor(self.root(side), &ptr).ok_or_else(|| {
                CompatError::UnresolvableRef {
                    side: side.name(),
                    at: at.to_string(),
                    reference: reference.to_string(),
                }
            });
        }
        match self.root(side).pointer(&ptr) {
            Some(_) => Ok(ptr),
            None => Err(CompatError::UnresolvableRef {
                side: side.name(),
                at: at.to_string(),
                reference: reference.to_string(),
            }),
        }
    }

    /// Checks that every `$ref` in a document (outside data keywords) is a
    /// local pointer that resolves.
    pub(crate) fn check_refs(&self, side: Side) -> Result<(), CompatError> {
        // Fast pass without pointers; the slow one below names the place.
        let mut quick: Vec<&Value> = vec![self.root(side)];
        let mut broken = false;
        while let Some(v) = quick.pop() {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        if self.target_ptr(side, "", r).is_err() {
                            broken = true;
                            break;
                        }
                    }
                    for (k, child) in m {
                        if !is_data(k) {
                            quick.push(child);
                        }
                    }
                }
                Value::Array(a) => quick.extend(a.iter()),
                _ => {}
            }
        }
        if !broken {
            return Ok(());
        }
        let mut stack: Vec<(String, &Value)> = vec![(String::new(), self.root(side))];
        while let Some((ptr, v)) = stack.pop() {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        self.target_ptr(side, &ptr, r)?;
                    }
                    for (k, child) in m {
                        if !is_data(k) {
                            stack.push((join(&ptr, k), child));
                        }
                    }
                }
                Value::Array(a) => {
                    for (i, child) in a.iter().enumerate() {
                        stack.push((join(&ptr, &i.to_string()), child));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Follows `$ref`s. In drafts 4-7 a `$ref`'s siblings are ignored; later
    /// they are kept and the target is conjoined through `allOf`.
    pub(crate) fn resolve(&self, side: Side, node: &Node) -> Result<Node, CompatError> {
        let mut cur = node.clone();
        let mut hops = 0;
        while let Some(reference) = cur.get("$ref") {
            let Some(reference) = reference.as_str() else {
                return Err(CompatError::InvalidSchema {
                    side: side.name(),
                    at: cur.ptr.clone(),
                    reason: "$ref is not a string".into(),
                });
            };
            hops += 1;
            if hops > 64 {
                return Err(CompatError::RefLoop {
                    side: side.name(),
                    at: node.ptr.clone(),
                });
            }
            let (ptr, target) = self.lookup(side, &cur.ptr, reference)?;
            let siblings: Map<String, Value> = cur
                .v
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.as_str() != "$ref" && !is_annotation(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if siblings.is_empty() || self.draft(side) <= Draft::D7 {
                cur = Node {
                    ptr,
                    v: target,
                    via_ref: true,
                    pure: true,
                };
            } else {
                let mut m = siblings;
                let mut all = match m.remove("allOf") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                all.insert(0, ref_to(&ptr));
                m.insert("allOf".into(), Value::Array(all));
                cur = Node {
                    ptr: cur.ptr,
                    v: Value::Object(m),
                    via_ref: true,
                    pure: false,
                };
                break;
            }
        }
        if !cur.v.is_object() && !cur.v.is_boolean() {
            return Err(CompatError::InvalidSchema {
                side: side.name(),
                at: cur.ptr.clone(),
                reason: format!("a schema must be an object or a boolean, found {}", cur.v),
            });
        }
        Ok(cur)
    }

    /// Resolves `$ref`s and merges `allOf` subschemas into the node where
    /// that does not change the meaning.
    pub(crate) fn normalize(&mut self, side: Side, node: &Node) -> Result<Node, CompatError> {
        self.normalize_depth(side, node, 0)
    }

    fn normalize_depth(
        &mut self,
        side: Side,
        node: &Node,
        depth: usize,
    ) -> Result<Node, CompatError> {
        self.tick()?;
        let mut node = self.resolve(side, node)?;
        if depth > 16 {
            return Ok(node);
        }
        let Some(Value::Array(subs)) = node.get("allOf").cloned() else {
            unevaluated::reduce(&mut node, self.draft(side));
            return Ok(node);
        };
        let Some(obj) = node.v.as_object() else {
            return Ok(node);
        };
        let mut obj = obj.clone();
        obj.remove("allOf");
        let mut keep = Vec::new();
        for (i, sub) in subs.iter().enumerate() {
            let sub_ptr = join(&join(&node.ptr, "allOf"), &i.to_string());
            let sub_node =
                self.normalize_depth(side, &Node::new(sub_ptr.clone(), sub.clone()), depth + 1)?;
            if is_false(&sub_node.v) {
                // A conjunction with a schema that accepts nothing accepts nothing.
                node.v = Value::Bool(false);
                return Ok(node);
            }
            match &sub_node.v {
                Value::Bool(true) => continue,
                Value::Object(m) if m.keys().all(|k| is_annotation(k)) => continue,
                Value::Object(m) => {
                    let relocated = relocate(m, &sub_node.ptr);
                    if mergeable(&obj, &relocated) {
                        merge_into(&mut obj, relocated);
                    } else {
                        keep.push(kept(sub, &sub_ptr));
                    }
                }
                _ => keep.push(kept(sub, &sub_ptr)),
            }
        }
        if obj
            .get("type")
            .is_some_and(|t| t.as_array().is_some_and(Vec::is_empty))
        {
            // Conjoined `type`s with nothing in common: nothing is accepted.
            node.v = Value::Bool(false);
            return Ok(node);
        }
        if !keep.is_empty() {
            obj.insert("allOf".into(), Value::Array(keep));
        }
        node.v = Value::Object(obj);
        unevaluated::reduce(&mut node, self.draft(side));
        Ok(node)
    }

    /// Compares two subschemas at the same instance location.
    pub(crate) fn compare(&mut self, old: &Node, new: &Node) -> Result<Vec<Pending>, CompatError> {
        self.tick()?;
        let o = self.normalize(Side::Old, old)?;
        let n = self.normalize(Side::New, new)?;
        let guard = o.via_ref || n.via_ref || old.via_ref || new.via_ref;
        let key = (o.ptr.clone(), n.ptr.clone(), self.negated);
        let memoize = o.pure && n.pure;
        if memoize {
            if let Some(done) = self.memo.get(&key) {
                return Ok(done.clone());
            }
        }
        if guard && !self.stack.insert(key.clone()) {
            return Ok(Vec::new());
        }
        if self.depth >= MAX_DEPTH {
            return Err(CompatError::TooDeep(MAX_DEPTH));
        }
        self.depth += 1;
        let result = self.compare_resolved(o, n);
        self.depth -= 1;
        if guard {
            self.stack.remove(&key);
        }
        if memoize {
            if let Ok(done) = &result {
                self.memo.insert(key, done.clone());
            }
        }
        result
    }

    fn compare_resolved(&mut self, o: Node, n: Node) -> Result<Vec<Pending>, CompatError> {
        if o.v == n.v && !contains_ref(&o.v) {
            return Ok(Vec::new());
        }
        let (o_false, n_false) = (is_false(&o.v), is_false(&n.v));
        match (o_false, n_false) {
            (true, true) => return Ok(Vec::new()),
            (true, false) => {
                let candidates = example::any_values(self, Side::New, &n);
                return Ok(vec![Pending::new(
                    ChangeKind::FalseSchemaRemoved,
                    &o.ptr,
                    &n.ptr,
                    Breaks::Writers,
                    "the old schema accepted nothing here; the new one accepts values old readers reject",
                    candidates,
                )]);
            }
            (false, true) => {
                let candidates = example::any_values(self, Side::Old, &o);
                return Ok(vec![Pending::new(
                    ChangeKind::FalseSchemaAdded,
                    &o.ptr,
                    &n.ptr,
                    Breaks::Readers,
                    "the new schema accepts nothing here; every old value is rejected",
                    candidates,
                )]);
            }
            (false, false) => {}
        }
        let o = as_object_node(o);
        let n = as_object_node(n);
        if unevaluated::irreducible(&o.v) || unevaluated::irreducible(&n.v) {
            // What `unevaluated*` sees depends on which alternatives apply:
            // only the same schema is known to be compatible.
            let mut out = Vec::new();
            if !same::equivalent(self, &o.v, &n.v) {
                combinators::unsupported(self, &o, &n, "unevaluated", &mut out);
            }
            return Ok(out);
        }
        combinators::compare_sums(self, &o, &n)
    }

    /// Compares everything but `anyOf`/`oneOf` alternatives.
    pub(crate) fn compare_own(&mut self, o: &Node, n: &Node) -> Result<Vec<Pending>, CompatError> {
        let mut out = Vec::new();
        let typed = types::compare(self, o, n, &mut out)?;
        let common = typed.old_types.intersect(typed.new_types);
        if common.has_string() {
            strings::compare(self, o, n, &mut out)?;
        }
        if common.has_number() {
            numbers::compare(self, o, n, &mut out)?;
        }
        if common.has_array() {
            arrays::compare(self, o, n, &mut out)?;
            contains::compare(self, o, n, &mut out)?;
        }
        if common.has_object() {
            objects::compare(self, o, n, &mut out)?;
            names::compare(self, o, n, &mut out)?;
        }
        types::apply_exact_enums(self, o, n, &typed, &mut out)?;
        combinators::compare_not(self, o, n, &mut out)?;
        combinators::compare_all_of(self, o, n, &mut out)?;
        conditionals::compare(self, o, n, &mut out)?;
        combinators::compare_unsupported(self, o, n, &mut out)?;
        let (od, nd) = (o.get("default"), n.get("default"));
        if od != nd {
            out.push(Pending::new(
                ChangeKind::DefaultChanged,
                o.kw_ptr("default"),
                n.kw_ptr("default"),
                Breaks::None,
                format!(
                    "default changed from {} to {}: readers that fill defaults will see a different value",
                    od.map_or("none".to_string(), Value::to_string),
                    nd.map_or("none".to_string(), Value::to_string)
                ),
                Vec::new(),
            ));
        }
        Ok(out)
    }
}

/// `true` becomes `{}` so that keyword comparisons see an empty schema.
pub(crate) fn as_object_node(node: Node) -> Node {
    match node.v {
        Value::Bool(true) => Node {
            v: Value::Object(Map::new()),
            ..node
        },
        _ => node,
    }
}

pub(crate) fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(contains_ref),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}

/// Whether a subschema accepts nothing (`false`, `{"not": {}}`).
pub(crate) fn is_false(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Object(m) => m.get("not").is_some_and(is_trivially_true),
        _ => false,
    }
}

/// Whether a subschema accepts everything (`true`, `{}`, only annotations).
pub(crate) fn is_trivially_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Object(m) => m.keys().all(|k| is_annotation(k)),
        _ => false,
    }
}

pub(crate) const MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];
pub(crate) const SCHEMA_KEYWORDS: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
];
pub(crate) const ARRAY_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// A schema-valued child as a `$ref` to where it really lives (a `$ref`
/// already there is kept).
pub(crate) fn relocated_child(v: &Value, ptr: String) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$ref") => v.clone(),
        Value::Object(_) | Value::Bool(_) => ref_to(&ptr),
        _ => v.clone(),
    }
}

/// Replaces schema-valued children by `$ref`s to their real location, so
/// that a node merged elsewhere still reports true pointers.
pub(crate) fn relocate(m: &Map<String, Value>, ptr: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        let kp = join(ptr, k);
        let nv = if MAP_KEYWORDS.contains(&k.as_str()) || k == "dependencies" {
            match v {
                Value::Object(children) => Value::Object(
                    children
                        .iter()
                        .map(|(name, c)| (name.clone(), relocated_child(c, join(&kp, name))))
                        .collect(),
                ),
                other => other.clone(),
            }
        } else if SCHEMA_KEYWORDS.contains(&k.as_str()) || (k == "items" && !v.is_array()) {
            relocated_child(v, kp)
        } else if ARRAY_KEYWORDS.contains(&k.as_str()) || k == "items" {
            match v {
                Value::Array(a) => Value::Array(
                    a.iter()
                        .enumerate()
                        .map(|(i, c)| relocated_child(c, join(&kp, &i.to_string())))
                        .collect(),
                ),
                other => other.clone(),
            }
        } else {
            v.clone()
        };
        out.insert(k.clone(), nv);
    }
    out
}

const OBJECT_GROUP: &[&str] = &["properties", "patternProperties", "additionalProperties"];
const ARRAY_GROUP: &[&str] = &["items", "prefixItems", "additionalItems"];
const COND_GROUP: &[&str] = &["if", "then", "else"];
const CONTAINS_GROUP: &[&str] = &["contains", "minContains", "maxContains"];

fn has_any(m: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().any(|k| m.contains_key(*k))
}

/// Whether conjoining `sub` by merging its keywords into `obj` keeps the meaning.
fn mergeable(obj: &Map<String, Value>, sub: &Map<String, Value>) -> bool {
    // A subschema's `unevaluated*` sees only what the subschema evaluates.
    if has_any(sub, &unevaluated::KEYWORDS) {
        return false;
    }
    // `additionalProperties` sees the `properties` beside it; the parent's
    // `unevaluatedProperties` sees the merged ones as it saw them in `allOf`.
    let closes = |m: &Map<String, Value>| m.contains_key("additionalProperties");
    if (closes(sub) && has_any(obj, OBJECT_GROUP)) || (closes(obj) && has_any(sub, OBJECT_GROUP)) {
        return false;
    }
    for group in [ARRAY_GROUP, COND_GROUP, CONTAINS_GROUP] {
        if has_any(obj, group) && has_any(sub, group) {
            return false;
        }
    }
    for (k, v) in sub {
        if is_annotation(k) {
            continue;
        }
        let Some(existing) = obj.get(k) else { continue };
        match k.as_str() {
            "required" | "type" => {}
            "properties" | "patternProperties" | "dependentSchemas" | "dependentRequired" => {
                let (Some(a), Some(b)) = (existing.as_object(), v.as_object()) else {
                    return false;
                };
                if b.iter()
                    .any(|(name, s)| a.get(name).is_some_and(|e| e != s))
                {
                    return false;
                }
            }
            _ => {
                if existing != v {
                    return false;
                }
            }
        }
    }
    true
}

fn merge_into(obj: &mut Map<String, Value>, sub: Map<String, Value>) {
    for (k, v) in sub {
        if is_annotation(&k) {
            if !obj.contains_key(&k) {
                obj.insert(k, v);
            }
            continue;
        }
        match (k.as_str(), obj.get_mut(&k)) {
            ("type", Some(existing)) => {
                *existing = super::types::intersect_type_values(existing, &v);
            }
            ("required", Some(Value::Array(existing))) => {
                if let Value::Array(more) = v {
                    for name in more {
                        if !existing.contains(&name) {
                            existing.push(name);
                        }
                    }
                }
            }
            (
                "properties" | "patternProperties" | "dependentSchemas" | "dependentRequired",
                Some(Value::Object(existing)),
            ) => {
                if let Value::Object(more) = v {
                    for (name, s) in more {
                        existing.entry(name).or_insert(s);
                    }
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                obj.insert(k, v);
            }
        }
    }
}
