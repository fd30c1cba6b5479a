//! Content-addressed merging of event files' own definitions (issue 19.5).
//!
//! Schemas written without a shared directory carry their own copies of the
//! same definitions (every GitHub webhook schema has its `$defs/User` and
//! `$defs/Repository`). A definition whose *canonical content* is the same
//! in the own definitions of two or more event types is generated once, in
//! `common`, and each event module that has it re-exports it under its
//! schema name (`pub use super::super::common::User;`), so
//! `events::github::push_received::User` still names it and a value moves
//! from one event to another without conversion.
//!
//! The canonical content of a definition is its JSON with object members
//! sorted and every `$ref` replaced by what it points at: a shared
//! definition by its `common` name, another own definition by the SHA-256
//! of *its* canonical content. Two definitions are thus equal when their
//! whole sub-trees are, whatever the definitions they use are called;
//! annotations (`description`) are content, so they must match too. A
//! definition that refers to its schema's root (`#`), to itself through a
//! cycle, or anywhere but a definition is not merged.
//!
//! Naming, deterministic and independent of unrelated files: a merged type
//! is called after its definitions' name (the most frequent one when the
//! copies have different names, then the first alphabetically), in
//! PascalCase. When another merged definition has the same name with
//! other content, or a shared file defines that name, each such merged
//! type gets the first 8 hex digits of its content hash (`User3f9a0c1b`);
//! the event modules still re-export it as `User`. Definitions with the
//! same name and different content are never merged; a content that only
//! one event type has stays in that event type's module.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::bundle::{push_token, Bundled};
use crate::registry::event_type::pascal_case;
use crate::schema_keywords;

/// An event file's own definition: its registry path and local name.
pub(crate) type OwnDef = (String, String);

/// One event file, as the merge sees it.
pub(crate) struct EventDefs<'a> {
    /// Registry-relative path.
    pub(crate) path: &'a str,
    /// Its event type (`github.push.received`).
    pub(crate) event_type: String,
    /// Its bundled document.
    pub(crate) bundled: &'a Bundled,
}

/// The merged definitions.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// The `common` type of every merged own definition.
    pub(crate) names: BTreeMap<OwnDef, String>,
    /// The schema of each merged type, its refs as `#/$defs/<name>`.
    pub(crate) schemas: BTreeMap<String, Value>,
    /// Where each merged type is defined first (file, JSON pointer).
    pub(crate) sites: BTreeMap<String, (String, String)>,
}

/// The local definition a bundled ref points at (`#/$defs/X` -> `X`).
fn local_target(r: &str) -> Option<String> {
    r.strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))
        .map(crate::bundle::unescape_token)
}

/// A definition of `bundled` by name, and the container it is in.
fn own_def<'b>(bundled: &'b Bundled, name: &str) -> Option<(&'static str, &'b Value)> {
    ["$defs", "definitions"]
        .into_iter()
        .find_map(|c| bundled.value.get(c)?.get(name).map(|v| (c, v)))
}

/// The canonical contents of one bundled file's own definitions.
struct Canon<'b, 's> {
    bundled: &'b Bundled,
    /// The `common` name of a local definition that is a shared one.
    shared: &'s dyn Fn(&str) -> Option<String>,
    memo: BTreeMap<String, Option<String>>,
    stack: Vec<String>,
}

impl Canon<'_, '_> {
    /// The canonical content of own definition `name`; `None` when it
    /// cannot be merged.
    fn of(&mut self, name: &str) -> Option<String> {
        if let Some(c) = self.memo.get(name) {
            return c.clone();
        }
        if self.stack.iter().any(|s| s == name) {
            return None;
        }
        let (_, def) = own_def(self.bundled, name)?;
        self.stack.push(name.to_string());
        let canonical = self
            .normalise(def)
            .and_then(|v| serde_json::to_string(&v).ok());
        self.stack.pop();
        self.memo.insert(name.to_string(), canonical.clone());
        canonical
    }

    /// `value` with sorted members and each ref replaced by its target's
    /// identity (see the module docs).
    fn normalise(&mut self, value: &Value) -> Option<Value> {
        match value {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    let v = &m[k];
                    let v = match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => Value::String(self.identity(r)?),
                        (k, v) if schema_keywords::is_data(k) => sorted(v),
                        (_, v) => self.normalise(v)?,
                    };
                    out.insert(k.clone(), v);
                }
                Some(Value::Object(out))
            }
            Value::Array(a) => a
                .iter()
                .map(|v| self.normalise(v))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            other => Some(other.clone()),
        }
    }

    /// What a ref stands for in a canonical content.
    fn identity(&mut self, reference: &str) -> Option<String> {
        let target = local_target(reference)?;
        if let Some(name) = (self.shared)(&target) {
            return Some(format!("common:{name}"));
        }
        self.of(&target).map(|c| format!("sha256:{}", hash(&c)))
    }
}

/// `value` with its object members sorted (data compared as JSON).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Rust name a definition gets from its name (as typify would call it).
pub(crate) fn rust_name(def: &str) -> String {
    let name = crate::registry::rust_names::unshadowed(def);
    let p = pascal_case(&name);
    match p.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => p,
        _ => format!("Def{p}"),
    }
}

/// A copy of one definition, as a member of a group of identical ones.
struct Member {
    path: String,
    event_type: String,
    local: String,
    container: &'static str,
}

/// Finds the own definitions that two or more event types have
/// identically, and names them. `shared(file, local)` is the `common` name
/// of a local definition that is a copy of a shared one; `taken` holds the
/// names of every shared definition.
pub(crate) fn merge(
    events: &[EventDefs<'_>],
    shared: &dyn Fn(&str, &str) -> Option<String>,
    taken: &BTreeSet<String>,
) -> Merged {
    // Identical definitions, by canonical content.
    let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for e in events {
        let lookup = |local: &str| shared(e.path, local);
        let mut canon = Canon {
            bundled: e.bundled,
            shared: &lookup,
            memo: BTreeMap::new(),
            stack: Vec::new(),
        };
        for container in ["$defs", "definitions"] {
            let Some(Value::Object(defs)) = e.bundled.value.get(container) else {
                continue;
            };
            for local in defs.keys() {
                if shared(e.path, local).is_some() {
                    continue;
                }
                if let Some(c) = canon.of(local) {
                    groups.entry(c).or_default().push(Member {
                        path: e.path.to_string(),
                        event_type: e.event_type.clone(),
                        local: local.clone(),
                        container,
                    });
                }
            }
        }
    }
    groups.retain(|_, members| {
        members
            .iter()
            .map(|m| &m.event_type)
            .collect::<BTreeSet<_>>()
            .len()
            >= 2
    });
    // Names.
    let base_of = |members: &[Member]| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for m in members {
            *counts.entry(rust_name(&m.local)).or_default() += 1;
        }
        let most = counts.values().copied().max().unwrap_or_default();
        counts
            .into_iter()
            .find(|(_, n)| *n == most)
            .map(|(b, _)| b)
            .unwrap_or_default()
    };
    let bases: BTreeMap<&String, String> = groups.iter().map(|(c, m)| (c, base_of(m))).collect();
    let mut per_base: BTreeMap<&str, usize> = BTreeMap::new();
    for b in bases.values() {
        *per_base.entry(b.as_str()).or_default() += 1;
    }
    let mut out = Merged::default();
    for (content, members) in &groups {
        let base = &bases[content];
        let name = if per_base[base.as_str()] == 1 && !taken.contains(base) {
            base.clone()
        } else {
            format!("{base}{}", &hash(content)[..8])
        };
        for m in members {
            out.names
                .insert((m.path.clone(), m.local.clone()), name.clone());
        }
        if let Some(first) = members.first() {
            let mut pointer = format!("/{}/", first.container);
            push_token(&mut pointer, &first.local);
            out.sites.insert(name, (first.path.clone(), pointer));
        }
    }
    // Schemas: the first copy of each, its refs renamed to `common` names.
    // Every own definition a merged one uses is merged too (its canonical
    // content is part of the user's, so it is as widely shared).
    for members in groups.values() {
        let Some(first) = members.first() else {
            continue;
        };
        let Some(e) = events.iter().find(|e| e.path == first.path) else {
            continue;
        };
        let Some((_, def)) = own_def(e.bundled, &first.local) else {
            continue;
        };
        let mut value = def.clone();
        super::common::refs_mut(&mut value, &mut |r| {
            let Some(target) = local_target(r) else {
                return;
            };
            let name = shared(&first.path, &target)
                .or_else(|| out.names.get(&(first.path.clone(), target)).cloned());
            if let Some(n) = name {
                let mut s = "#/$defs/".to_string();
                push_token(&mut s, &n);
                *r = s;
            }
        });
        let name = out.names[&(first.path.clone(), first.local.clone())].clone();
        out.schemas.insert(name, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bundled(value: Value) -> Bundled {
        Bundled {
            value,
            container: "$defs",
            origins: BTreeMap::new(),
        }
    }

    fn merged(files: &[(&str, &str, &Bundled)]) -> Merged {
        let events: Vec<EventDefs<'_>> = files
            .iter()
            .map(|(path, ty, b)| EventDefs {
                path,
                event_type: (*ty).to_string(),
                bundled: b,
            })
            .collect();
        merge(&events, &|_, _| None, &BTreeSet::new())
    }

    #[test]
    fn identical_sub_trees_merge_whatever_their_names_and_member_order() {
        // `Owner` in a is `Account` in b: same content, other name; the
        // members of `User` are in another order.
        let a = bundled(json!({"$defs": {
            "User": {"type": "object", "properties": {"login": {"type": "string"}, "id": {"type": "integer"}}},
            "Repo": {"type": "object", "properties": {"owner": {"$ref": "#/$defs/User"}}}
        }}));
        let b = bundled(json!({"$defs": {
            "Account": {"properties": {"id": {"type": "integer"}, "login": {"type": "string"}}, "type": "object"},
            "Repo": {"type": "object", "properties": {"owner": {"$ref": "#/$defs/Account"}}}
        }}));
        let m = merged(&[("a.json", "s.a.x", &a), ("b.json", "s.b.x", &b)]);
        let name = |p: &str, l: &str| m.names[&(p.to_string(), l.to_string())].clone();
        assert_eq!(name("a.json", "User"), name("b.json", "Account"));
        // Both names appear once: the first alphabetically wins the tie.
        assert_eq!(name("a.json", "User"), "Account");
        assert_eq!(name("a.json", "Repo"), name("b.json", "Repo"));
        assert_eq!(
            m.schemas["Repo"]["properties"]["owner"]["$ref"],
            json!("#/$defs/Account")
        );
    }

    #[test]
    fn one_event_type_cycles_and_root_refs_are_not_merged() {
        let a = bundled(json!({"$defs": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
            "Back": {"type": "object", "properties": {"root": {"$ref": "#"}}},
            "Tag": {"type": "string"}
        }}));
        // v1 and v2 of one event type: `Tag` is not merged across types.
        let m = merged(&[("a.v1.json", "s.a.x", &a), ("a.v2.json", "s.a.x", &a)]);
        assert!(m.names.is_empty(), "{m:?}");
        let m = merged(&[("a.json", "s.a.x", &a), ("b.json", "s.b.x", &a)]);
        let names: BTreeSet<&str> = m.names.keys().map(|(_, l)| l.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["Tag"]));
    }
}
