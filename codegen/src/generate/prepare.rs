//! Turns the bundled schemas of one event type into the named schemas
//! typify converts together: each version's root (`UserCreatedV1`, ...),
//! its own definitions, and the copies of shared definitions, which are
//! named as their `common` type and not generated again (see
//! [`super::common`]).
//!
//! All versions of an event type share one typify type space, so that a
//! definition used by several versions is one Rust type and an upcast can
//! move it from one version to the next. A definition whose content
//! differs between versions, or whose name is that of a `common` type the
//! event type uses, is renamed in its version (`MoneyV2`), and a property
//! whose schema is the same in neighbouring
//! versions but would get a per-version type (an inline enum, object or
//! constrained string) can be *hoisted* into a shared definition named
//! after the event type (`UserCreatedRole`), see [`hoist`].
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::common::Common;
use super::error::Diagnostic;
use crate::registry::load::EventFile;
use crate::schema_keywords::{is_data, is_names_map};

/// One version of an event type, ready for typify.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    /// `x-schema-version`.
    pub(crate) version: u32,
    /// Registry-relative path of its file.
    pub(crate) file: String,
    /// The Rust name of its payload type (`UserCreatedV1`).
    pub(crate) rust_name: String,
    /// The bundled root, without `$defs`, `$id`, `$schema`, `examples`
    /// and `x-*` keywords, refs pointing at the shared names.
    pub(crate) root: Value,
    /// `x-deprecated`.
    pub(crate) deprecated: bool,
    /// `x-entity-key`: the property the entity key (last subject token)
    /// comes from.
    pub(crate) entity_key: Option<String>,
}

/// The named schemas of one event type.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Its versions, oldest first.
    pub(crate) versions: Vec<Version>,
    /// Shared definitions by name (roots are in `versions`).
    pub(crate) defs: BTreeMap<String, Value>,
    /// The definitions of `defs` that are types of the `common` module
    /// (copies of a shared file's piece): typify refers to them instead of
    /// generating them again.
    pub(crate) common: BTreeSet<String>,
    /// The merged definitions the module re-exports from `common`, by the
    /// name it re-exports them as (`User` -> `User`, or `User3f9a0c1b`).
    pub(crate) reexports: BTreeMap<String, String>,
}

impl Prepared {
    /// Every named schema: the definitions and the versions' roots.
    /// Rewritten for typify by [`for_typify`].
    pub(crate) fn types(&self) -> BTreeMap<String, Value> {
        let mut all = self.defs.clone();
        for v in &self.versions {
            all.insert(v.rust_name.clone(), v.root.clone());
        }
        for schema in all.values_mut() {
            for_typify(schema);
        }
        all
    }
}

/// Top-level keywords that are not part of the payload's type.
const DROPPED: [&str; 5] = ["$schema", "$id", "examples", "$comment", "title"];

/// Prepares the versions of one event type (`files` sorted by version;
/// `rust_base` is `UserCreated`).
pub(crate) fn prepare(
    rust_base: &str,
    files: &[&EventFile],
    shared: &Common,
) -> Result<Prepared, Diagnostic> {
    let root_names: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.version.map(|v| format!("{rust_base}V{v}")))
        .collect();
    // The `common` types any version uses: a local definition of that name
    // is another type, so it is renamed.
    let mut common_names: BTreeSet<String> = files
        .iter()
        .flat_map(|f| {
            let locals = f
                .bundled
                .iter()
                .flat_map(|b| own_names(b).chain(b.origins.keys()));
            locals.filter_map(|local| shared.name_in(f, local).map(str::to_string))
        })
        .collect();
    let reexports = reexports(files, shared, &root_names);
    common_names.extend(reexports.keys().cloned());
    let mut defs: BTreeMap<String, Value> = BTreeMap::new();
    let mut common = BTreeSet::new();
    let mut versions = Vec::new();
    for f in files {
        let (Some(version), Some(bundled)) = (f.version, &f.bundled) else {
            return Err(diag(
                &f.path,
                "",
                "the schema has no version or could not be bundled",
            ));
        };
        let rust_name = format!("{rust_base}V{version}");
        let Value::Object(mut root) = bundled.value.clone() else {
            return Err(diag(&f.path, "", "the schema is not a JSON object"));
        };
        let container = bundled.container;
        let mut own: BTreeMap<String, Value> = match root.remove(container) {
            Some(Value::Object(m)) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        // `$defs` beside `definitions`: both are local definitions.
        for other in ["$defs", "definitions"] {
            if let Some(Value::Object(m)) = root.remove(other) {
                own.extend(m);
            }
        }
        let entity_key = match root.get("x-entity-key") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(other) => {
                return Err(diag(
                    &f.path,
                    "/x-entity-key",
                    &format!("x-entity-key must name a property (a string), not {other}"),
                ))
            }
        };
        root.retain(|k, _| !DROPPED.contains(&k.as_str()) && !k.starts_with("x-"));
        let mut root = Value::Object(root);

        // Copies of shared pieces are the `common` types. Other names: keep
        // a definition's name when it is free or holds the same schema;
        // rename it otherwise. Renaming one definition changes the content
        // of those that refer to it, so repeat until stable.
        let mut renames: BTreeMap<String, String> = BTreeMap::new();
        let mut shared_here: BTreeSet<String> = BTreeSet::new();
        for local in own.keys() {
            if let Some(name) = shared.name_in(f, local) {
                renames.insert(local.clone(), name.to_string());
                shared_here.insert(local.clone());
            }
        }
        loop {
            let mut changed = false;
            for (name, schema) in &own {
                if renames.contains_key(name) {
                    continue;
                }
                let mut content = schema.clone();
                rename_refs(&mut content, &renames, &rust_name);
                // A name that would shadow the prelude (`String`) is
                // generated as `StringValue` (docs/registry.md).
                let target = crate::registry::rust_names::unshadowed(name);
                let clash = root_names.contains(&target)
                    || common_names.contains(&target)
                    || (target != *name
                        && (own.contains_key(&target) || renames.values().any(|r| *r == target)))
                    || defs
                        .get(&target)
                        .is_some_and(|existing| *existing != content);
                if !clash && target != *name {
                    renames.insert(name.clone(), target);
                    changed = true;
                } else if clash {
                    let stem = &target;
                    let fresh = (1..)
                        .map(|i| {
                            if i == 1 {
                                format!("{stem}V{version}")
                            } else {
                                format!("{stem}V{version}x{i}")
                            }
                        })
                        .find(|c| {
                            !defs.contains_key(c)
                                && !own.contains_key(c)
                                && !root_names.contains(c)
                                && !common_names.contains(c)
                                && !renames.values().any(|r| r == c)
                        })
                        .unwrap_or_else(|| format!("{stem}V{version}"));
                    renames.insert(name.clone(), fresh);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (name, mut schema) in own {
            if shared_here.contains(&name) {
                if let Some(n) = renames.get(&name) {
                    if let Some(s) = shared.schemas.get(n) {
                        defs.insert(n.clone(), s.clone());
                        common.insert(n.clone());
                    }
                }
                continue;
            }
            rename_refs(&mut schema, &renames, &rust_name);
            let name = renames.get(&name).cloned().unwrap_or(name);
            defs.insert(name, schema);
        }
        rename_refs(&mut root, &renames, &rust_name);
        describe_refs(&mut root, &defs);
        versions.push(Version {
            version,
            file: f.path.clone(),
            rust_name,
            root,
            deprecated: f.deprecated,
            entity_key,
        });
    }
    Ok(Prepared {
        versions,
        defs,
        common,
        reexports,
    })
}

/// The names of the definitions in a bundled schema's `$defs` and
/// `definitions`.
fn own_names(bundled: &crate::bundle::Bundled) -> impl Iterator<Item = &String> {
    ["$defs", "definitions"]
        .into_iter()
        .filter_map(|c| bundled.value.get(c).and_then(Value::as_object))
        .flat_map(|m| m.keys())
}

/// The name under which the module re-exports each merged definition its
/// versions have ([`super::merge`]): its schema name (`User`), or, when an
/// earlier version's merged definition of that name is another type,
/// `<Name>V<N>`, as for a local definition.
fn reexports(
    files: &[&EventFile],
    shared: &Common,
    root_names: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let Some(b) = f.bundled.as_deref() else {
            continue;
        };
        for local in own_names(b) {
            let Some(name) = shared.merged_name(f, local) else {
                continue;
            };
            if out.values().any(|n| n == name) {
                continue;
            }
            let want = super::merge::rust_name(local);
            let alias = [
                want.clone(),
                format!("{want}V{}", f.version.unwrap_or_default()),
            ]
            .into_iter()
            .find(|a| !out.contains_key(a) && !root_names.contains(a));
            if let Some(a) = alias {
                out.insert(a, name.to_string());
            }
        }
    }
    out
}

/// Gives a property that is only a `$ref` the description of the
/// definition it points at, so its field has a doc comment.
fn describe_refs(root: &mut Value, defs: &BTreeMap<String, Value>) {
    let Some(Value::Object(props)) = root.get_mut("properties") else {
        return;
    };
    for prop in props.values_mut() {
        let Value::Object(p) = prop else { continue };
        if p.contains_key("description") {
            continue;
        }
        let description = p
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|n| defs.get(&crate::bundle::unescape_token(n)))
            .and_then(|d| d.get("description"))
            .cloned();
        if let Some(d) = description {
            p.insert("description".into(), d);
        }
    }
}

fn diag(file: &str, pointer: &str, message: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 0,
        pointer: pointer.to_string(),
        message: message.to_string(),
        help: String::new(),
    }
}

/// Rewrites `$ref`s to renamed definitions, and `#` (the root itself) to
/// the root's name. typify resolves a ref by its last pointer token, so
/// `#/$defs/X` and `#/definitions/X` both name `X`.
fn rename_refs(value: &mut Value, renames: &BTreeMap<String, String>, root_name: &str) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if r == "#" {
                    *r = format!("#/$defs/{root_name}");
                } else if let Some(name) = r
                    .strip_prefix("#/$defs/")
                    .or_else(|| r.strip_prefix("#/definitions/"))
                {
                    let name = crate::bundle::unescape_token(name);
                    if let Some(new) = renames.get(&name) {
                        let mut p = "#/$defs/".to_string();
                        crate::bundle::push_token(&mut p, new);
                        *r = p;
                    }
                }
            }
            for (k, v) in m.iter_mut() {
                match (k.as_str(), v) {
                    // Maps of names to schemas: a property may be called `const`.
                    (k, Value::Object(schemas)) if is_names_map(k) => schemas
                        .values_mut()
                        .for_each(|s| rename_refs(s, renames, root_name)),
                    (k, v) if !is_data(k) => rename_refs(v, renames, root_name),
                    _ => {}
                }
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|v| rename_refs(v, renames, root_name)),
        _ => {}
    }
}

/// Rewrites a schema for typify, keeping what it accepts:
/// * every `"const": "<string>"` becomes `"type": "string", "enum":
///   ["<string>"]`. typify 0.8 turns a `const` into `serde_json::Value`,
///   which accepts anything: a `oneOf` variant told apart by its `const`
///   discriminator (`"op": {"const": "remove"}`) would then match
///   documents of other variants and drop their members. A one-value enum
///   accepts only that value. A boolean or numeric `const` gets its
///   `type` (so it is a `bool`, integer or `serde_json::Number`); `null`,
///   object and array `const`s stay `serde_json::Value`.
/// * `"additionalProperties": true` on an object with `properties` becomes
///   `{}`: typify then adds a `#[serde(flatten)]` map of the undeclared
///   members, so they survive a round trip (CloudEvents extension
///   attributes). Objects that leave `additionalProperties` out stay plain
///   structs that ignore undeclared members.
pub(crate) fn for_typify(value: &mut Value) {
    match value {
        Value::Object(m) => {
            // typify names an inline type after its `title`.
            if let Some(Value::String(t)) = m.get_mut("title") {
                if crate::registry::rust_names::is_shadowing(t) {
                    *t = crate::registry::rust_names::unshadowed(t);
                }
            }
            match m.get("const") {
                Some(Value::String(c)) => {
                    let one = Value::Array(vec![Value::String(c.clone())]);
                    m.remove("const");
                    m.insert("enum".into(), one);
                    m.entry("type")
                        .or_insert_with(|| Value::String("string".into()));
                }
                // typify ignores `const`; with its type a boolean or numeric
                // const is a `bool`, an integer or a number instead of
                // `serde_json::Value` (the value itself is checked at
                // publish and by `read_any_version`, as the schema's).
                Some(c @ (Value::Bool(_) | Value::Number(_))) => {
                    let ty = match c {
                        Value::Bool(_) => "boolean",
                        Value::Number(n) if n.is_f64() => "number",
                        _ => "integer",
                    };
                    m.entry("type").or_insert_with(|| Value::String(ty.into()));
                }
                _ => {}
            }
            if m.get("additionalProperties") == Some(&Value::Bool(true))
                && m.contains_key("properties")
            {
                m.insert("additionalProperties".into(), Value::Object(Map::new()));
            }
            for (k, v) in m.iter_mut() {
                match (k.as_str(), v) {
                    // Maps of names to schemas: a property may be called `const`.
                    (k, Value::Object(schemas)) if is_names_map(k) => {
                        schemas.values_mut().for_each(for_typify)
                    }
                    (k, v) if !is_data(k) => for_typify(v),
                    _ => {}
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(for_typify),
        _ => {}
    }
}

/// A schema without annotations, for comparing what two versions accept.
pub(crate) fn strip_annotations(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description"
                            | "title"
                            | "examples"
                            | "example"
                            | "$comment"
                            | "deprecated"
                    ) && !k.starts_with("x-")
                })
                .map(|(k, v)| {
                    let v = if is_data(k) {
                        v.clone()
                    } else {
                        strip_annotations(v)
                    };
                    (k.clone(), v)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_annotations).collect()),
        other => other.clone(),
    }
}

/// The root's property `name`, if declared.
pub(crate) fn property<'v>(root: &'v Value, name: &str) -> Option<&'v Value> {
    root.get("properties")?.get(name)
}

/// Moves the schema of property `prop` of the listed versions into a shared
/// definition `def_name`, leaving a `$ref` (and the property's
/// description) behind. An array with inline items hoists its items
/// instead, so the field stays a `Vec`.
pub(crate) fn hoist(prepared: &mut Prepared, prop: &str, versions: &[u32], def_name: &str) {
    for v in prepared
        .versions
        .iter_mut()
        .filter(|v| versions.contains(&v.version))
    {
        let Some(schema) = v
            .root
            .get_mut("properties")
            .and_then(|p| p.get_mut(prop))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut reference = Map::new();
        reference.insert("$ref".into(), Value::String(format!("#/$defs/{def_name}")));
        let is_array = schema.get("type") == Some(&Value::String("array".into()));
        let hoisted = if is_array && schema.get("items").is_some_and(|i| i.get("$ref").is_none()) {
            schema.insert("items".into(), Value::Object(reference))
        } else {
            if let Some(d) = schema.get("description") {
                reference.insert("description".into(), d.clone());
            }
            Some(std::mem::replace(schema, reference).into())
        };
        if let Some(h) = hoisted {
            prepared.defs.entry(def_name.to_string()).or_insert(h);
        }
    }
}
