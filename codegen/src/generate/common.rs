//! The shared definitions: one Rust type per definition of a shared file
//! (`common/ids.json#/$defs/UserId` is `common::UserId`), used by every
//! event type and version that refers to it (issue 12.6).
//!
//! The bundler copies each shared piece into every event schema that uses
//! it (`bundle::Bundled::origins` says where each copy came from); here
//! the copies are traced back to their piece, named once for the whole
//! registry and generated once, in the `common` module. The event types'
//! type spaces refer to them through typify replacements.
//!
//! Naming (deterministic, independent of which event uses what): a piece
//! is named after its `$defs` key (`UserId`), or its file's stem when a ref
//! names a whole file (`Money` for `money.json`), in PascalCase. When two
//! shared files define the same name, every one of them is prefixed with
//! its file stem (`IdsSku`, `OrdersSku`); if that still clashes, with its
//! directory and stem (`CommonIdsSku`), then numbered. The candidates are
//! every `$defs`/`definitions` entry of every shared file (plus any deeper
//! piece a ref names), whether used or not, so adding a `$ref` never
//! renames an existing type.
//!
//! A shared piece that refers back into an event schema (which the
//! bundler allows) cannot be generated on its own: it stays a copy in each
//! event type's module, as do the pieces that refer to it.
//!
//! `common` also holds the event files' own definitions that several event
//! types have identically ([`merge`], issue 19.5).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::merge;
use crate::bundle::{push_token, unescape_token, Bundled};
use crate::registry::event_type::pascal_case;
use crate::registry::load::EventFile;
use crate::registry::load::Loaded;
use crate::registry::Source;

/// A piece of a shared file: its registry path and JSON pointer.
type Piece = (String, String);

/// The shared definitions of a registry.
#[derive(Debug, Default)]
pub(crate) struct Common {
    /// The Rust name of every shared piece that is generated in `common`.
    names: BTreeMap<Piece, String>,
    /// The schema of each type of `common`, its refs as `#/$defs/<name>`.
    pub(crate) schemas: BTreeMap<String, Value>,
    /// The event files' own definitions that are merged into `common`
    /// because several event types have them identically ([`merge`]).
    merged: merge::Merged,
}

fn path_string(p: &std::path::Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// A Rust type name from a definition name or file stem.
fn type_name(s: &str) -> String {
    let p = pascal_case(s);
    match p.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => p,
        _ => format!("Def{p}"),
    }
}

/// `common/ids.json` -> `Ids`; with `dir`, `CommonIds`.
fn file_prefix(file: &str, dir: bool) -> String {
    let stem = file
        .rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".json");
    if dir {
        let parent = file.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        type_name(&format!("{parent}_{stem}"))
    } else {
        type_name(stem)
    }
}

fn base_name(piece: &Piece) -> String {
    match piece.1.rsplit('/').next().filter(|t| !t.is_empty()) {
        Some(token) => type_name(&unescape_token(token)),
        None => file_prefix(&piece.0, false),
    }
}

/// Names every candidate piece (see the module docs).
fn name_pieces(candidates: &BTreeSet<Piece>) -> BTreeMap<Piece, String> {
    let mut by_base: BTreeMap<String, Vec<&Piece>> = BTreeMap::new();
    for p in candidates {
        by_base.entry(base_name(p)).or_default().push(p);
    }
    let mut out = BTreeMap::new();
    let mut taken: BTreeSet<String> = by_base
        .iter()
        .filter(|(_, ps)| ps.len() == 1)
        .map(|(b, _)| b.clone())
        .collect();
    for (base, pieces) in &by_base {
        if let [only] = pieces.as_slice() {
            out.insert((*only).clone(), base.clone());
            continue;
        }
        for p in pieces {
            let stem = format!("{}{base}", file_prefix(&p.0, false));
            let stem_unique = pieces
                .iter()
                .filter(|q| file_prefix(&q.0, false) == file_prefix(&p.0, false))
                .count()
                == 1;
            let dir = format!("{}{base}", file_prefix(&p.0, true));
            let name = if stem_unique && !taken.contains(&stem) {
                stem
            } else if !taken.contains(&dir) {
                dir
            } else {
                (2..)
                    .map(|i| format!("{dir}{i}"))
                    .find(|c| !taken.contains(c))
                    .unwrap_or(dir)
            };
            taken.insert(name.clone());
            out.insert((*p).clone(), name);
        }
    }
    out
}

/// The refs of `value` (outside data keywords).
pub(super) fn refs_mut(value: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                f(r);
            }
            for (k, v) in m.iter_mut() {
                if !crate::schema_keywords::is_data(k) {
                    refs_mut(v, f);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| refs_mut(v, f)),
        _ => {}
    }
}

/// The local definition name a bundled ref points at (`#/$defs/X` -> `X`).
fn local_target(r: &str) -> Option<String> {
    r.strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))
        .map(unescape_token)
}

impl Common {
    /// Traces every copied shared piece of every event schema of `loaded`.
    pub(crate) fn collect(loaded: &Loaded, source: &Source) -> Self {
        let shared: BTreeSet<&str> = loaded.shared.iter().map(|f| f.path.as_str()).collect();
        let mut candidates: BTreeSet<Piece> = BTreeSet::new();
        for file in &shared {
            let Some(Ok(Value::Object(doc))) = source.get(file).map(serde_json::from_str::<Value>)
            else {
                continue;
            };
            for container in ["$defs", "definitions"] {
                if let Some(Value::Object(defs)) = doc.get(container) {
                    for k in defs.keys() {
                        let mut p = format!("/{container}/");
                        push_token(&mut p, k);
                        candidates.insert(((*file).to_string(), p));
                    }
                }
            }
        }
        let piece_of = |b: &Bundled, local: &str| -> Option<Piece> {
            let o = b.origins.get(local)?;
            let file = path_string(&o.file);
            shared
                .contains(file.as_str())
                .then(|| (file, o.pointer.clone()))
        };
        let bundles: Vec<&Bundled> = loaded
            .events
            .iter()
            .filter_map(|f| f.bundled.as_deref())
            .collect();
        for b in &bundles {
            for local in b.origins.keys() {
                if let Some(p) = piece_of(b, local) {
                    candidates.insert(p);
                }
            }
        }
        let names = name_pieces(&candidates);
        // The content of each used piece, refs renamed; `None` when it
        // refers to something that is not shared.
        let mut contents: BTreeMap<Piece, Option<(Value, BTreeSet<Piece>)>> = BTreeMap::new();
        for b in &bundles {
            let Some(Value::Object(defs)) = b.value.get(b.container) else {
                continue;
            };
            for (local, def) in defs {
                let Some(piece) = piece_of(b, local) else {
                    continue;
                };
                if contents.contains_key(&piece) {
                    continue;
                }
                let mut value = def.clone();
                let mut ok = true;
                let mut uses = BTreeSet::new();
                refs_mut(
                    &mut value,
                    &mut |r| match local_target(r).and_then(|t| piece_of(b, &t)) {
                        Some(target) => match names.get(&target) {
                            Some(n) => {
                                let mut s = "#/$defs/".to_string();
                                push_token(&mut s, n);
                                *r = s;
                                uses.insert(target);
                            }
                            None => ok = false,
                        },
                        None => ok = false,
                    },
                );
                contents.insert(piece, ok.then_some((value, uses)));
            }
        }
        // A piece that uses a piece which cannot be shared cannot be either.
        loop {
            let bad: BTreeSet<Piece> = contents
                .iter()
                .filter(|(_, c)| c.is_none())
                .map(|(p, _)| p.clone())
                .collect();
            let mut changed = false;
            for c in contents.values_mut() {
                if c.as_ref()
                    .is_some_and(|(_, uses)| uses.iter().any(|u| bad.contains(u)))
                {
                    *c = None;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = Common::default();
        for (piece, content) in contents {
            let (Some((value, _)), Some(name)) = (content, names.get(&piece)) else {
                continue;
            };
            out.schemas.insert(name.clone(), value);
            out.names.insert(piece, name.clone());
        }
        // The event files' own definitions that several event types share.
        let events: Vec<merge::EventDefs<'_>> = loaded
            .events
            .iter()
            .filter_map(|f| {
                Some(merge::EventDefs {
                    path: &f.path,
                    event_type: f.event_type.as_ref()?.to_string(),
                    bundled: f.bundled.as_deref()?,
                })
            })
            .collect();
        let shared_name = |path: &str, local: &str| -> Option<String> {
            let e = events.iter().find(|e| e.path == path)?;
            let o = e.bundled.origins.get(local)?;
            out.names
                .get(&(path_string(&o.file), o.pointer.clone()))
                .cloned()
        };
        let taken: BTreeSet<String> = names.values().cloned().collect();
        let merged = merge::merge(&events, &shared_name, &taken);
        out.schemas.extend(merged.schemas.clone());
        out.merged = merged;
        out
    }

    /// The file and pointer of the piece a message (typify's error) is
    /// about: the first whose Rust name it mentions, else the first piece.
    pub(crate) fn site_of(&self, message: &str) -> (String, String) {
        let merged = self.merged.sites.iter().map(|(n, p)| (p, n));
        self.names
            .iter()
            .chain(merged)
            .find(|(_, n)| message.contains(n.as_str()))
            .or_else(|| self.names.iter().next())
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    /// The `common` type a definition of an event file's bundled schema
    /// is: a copy of a shared definition, or a merged own definition.
    pub(crate) fn name_in(&self, file: &EventFile, local: &str) -> Option<&str> {
        if let Some(n) = self.merged_name(file, local) {
            return Some(n);
        }
        let o = file.bundled.as_deref()?.origins.get(local)?;
        self.names
            .get(&(path_string(&o.file), o.pointer.clone()))
            .map(String::as_str)
    }

    /// The `common` type of an event file's own definition that several
    /// event types have identically (see [`merge`]).
    pub(crate) fn merged_name(&self, file: &EventFile, local: &str) -> Option<&str> {
        self.merged
            .names
            .get(&(file.path.clone(), local.to_string()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(file: &str, pointer: &str) -> Piece {
        (file.to_string(), pointer.to_string())
    }

    #[test]
    fn names_are_def_keys_prefixed_by_stem_then_dir_on_clash() {
        let pieces: BTreeSet<Piece> = [
            piece("common/ids.json", "/$defs/UserId"),
            piece("common/ids.json", "/$defs/Sku"),
            piece("common/orders.json", "/$defs/Sku"),
            piece("shared/orders.json", "/$defs/Sku"),
            piece("common/money.json", ""),
            piece("common/ids.json", "/$defs/user-name"),
        ]
        .into_iter()
        .collect();
        let names = name_pieces(&pieces);
        let name = |f: &str, p: &str| names[&piece(f, p)].as_str();
        assert_eq!(name("common/ids.json", "/$defs/UserId"), "UserId");
        assert_eq!(name("common/ids.json", "/$defs/user-name"), "UserName");
        assert_eq!(name("common/money.json", ""), "Money");
        assert_eq!(name("common/ids.json", "/$defs/Sku"), "IdsSku");
        assert_eq!(name("common/orders.json", "/$defs/Sku"), "CommonOrdersSku");
        assert_eq!(name("shared/orders.json", "/$defs/Sku"), "SharedOrdersSku");
        // Every name is distinct.
        let distinct: BTreeSet<&String> = names.values().collect();
        assert_eq!(distinct.len(), names.len());
    }
}
