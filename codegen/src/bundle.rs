//! Merges a schema file and every file it reaches through relative `$ref`s
//! into one self-contained document.
//!
//! The registry shares definitions between files (`"$ref":
//! "../common/ids.json#/$defs/UserId"`), but typify panics on cross-file refs
//! and the compatibility engine compares one document with another. The
//! bundler therefore copies every referenced piece of another file under the
//! root's `$defs` (or `definitions`, when a draft-07 root already uses that)
//! and rewrites the refs to point there:
//!
//! * a local ref (`#/...`) in the root file stays as it is;
//! * a ref to another file (`other.json#/pointer`, `other.json`) becomes
//!   `#/$defs/<Name>`, where `<Name>` is the last pointer token (`UserId`) or
//!   the file stem in PascalCase (`Money`), prefixed with the file stem and
//!   then numbered if that name is taken;
//! * a local ref inside a copied piece refers to *that* file, so it is
//!   treated like a cross-file ref to the same file;
//! * a ref back into the root file becomes a local ref, so cycles between
//!   files are fine.
//!
//! Copied pieces lose `$id`, `$schema`, `$defs` and `definitions` at their top
//! (every ref into those was rewritten, and a nested `$id` would change the
//! base URI of what follows). Refs with a scheme (`https://...`, `urn:`) are
//! refused: checks run offline. Refs inside data (`enum`, `const`,
//! `default`, `examples`, `x-*` keywords) are not followed.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::event_type::pascal_case;
use crate::schema_keywords::{is_data, is_names_map};

/// Why a file could not be bundled. Names the file holding the offending
/// `$ref`, the JSON pointer of that `$ref` inside it, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", file.display(), if pointer.is_empty() { String::new() } else { format!(" at {pointer}") })]
pub struct BundleError {
    /// The file that holds the problem (the `$ref`, or the unreadable file
    /// itself when `pointer` is empty).
    pub file: PathBuf,
    /// JSON pointer of the `$ref` object in `file` (empty for file-level
    /// problems such as invalid JSON).
    pub pointer: String,
    /// What is wrong.
    pub kind: BundleErrorKind,
}

/// The ways bundling fails.
#[derive(Debug, thiserror::Error)]
pub enum BundleErrorKind {
    /// A file could not be read (missing, unreadable).
    #[error("cannot read {}: {source}", target.display())]
    Read {
        /// The file that could not be read.
        target: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file is not valid JSON.
    #[error("{} is not valid JSON (line {line}, column {column}): {message}", target.display())]
    Json {
        /// The file that failed to parse.
        target: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The file exists but the pointer after `#` names nothing in it.
    #[error("{reference:?}: {} has nothing at {target_pointer:?}", target.display())]
    MissingTarget {
        /// The `$ref` as written.
        reference: String,
        /// The file it points into.
        target: PathBuf,
        /// The JSON pointer that names nothing.
        target_pointer: String,
    },
    /// A chain of schemas that are nothing but `$ref`s leads back to itself,
    /// so it never reaches an actual schema (`a.json` -> `b.json` -> `a.json`).
    #[error("{reference:?} starts a $ref cycle that never reaches a schema: {}", chain.join(" -> "))]
    Cycle {
        /// The `$ref` as written.
        reference: String,
        /// The pieces visited, as `file#pointer`.
        chain: Vec<String>,
    },
    /// A `$ref` with a scheme (`https:`, `urn:`, `file:`): refused, checks
    /// run offline and the registry must be self-contained.
    #[error("{reference:?} is not a relative reference; only refs to files of the registry (\"../common/ids.json#/$defs/UserId\") and local refs (\"#/$defs/X\") are allowed")]
    NotRelative {
        /// The `$ref` as written.
        reference: String,
    },
    /// A `$ref` that is not a string, or whose fragment is not a JSON
    /// pointer (plain-name anchors are not supported across files).
    #[error("{reference:?} is not a usable reference: {reason}")]
    Malformed {
        /// The `$ref` as written (or its JSON rendering when not a string).
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Loads the text of a file; lets the bundler read from a git tree or memory.
pub type Loader<'a> = dyn Fn(&Path) -> io::Result<String> + 'a;

/// Bundles the schema file at `path`, reading files from disk.
///
/// # Errors
/// See [`BundleError`].
pub fn bundle_file(path: &Path) -> Result<Value, BundleError> {
    Bundler::new(&|p: &Path| std::fs::read_to_string(p)).bundle(path)
}

/// Bundles the schema file at `path`, reading every file through `loader`
/// (for example from `git show REF:path`). Paths handed to the loader are
/// `path`'s directory joined with the relative ref and normalised
/// lexically (`a/b/../c` becomes `a/c`); nothing is canonicalised.
///
/// # Errors
/// See [`BundleError`].
pub fn bundle_with(loader: &Loader<'_>, path: &Path) -> Result<Value, BundleError> {
    Bundler::new(loader).bundle(path)
}

/// A bundler that keeps every parsed file, so bundling many schemas that
/// share common files reads and parses each file once.
pub struct Bundler<'a> {
    loader: &'a Loader<'a>,
    cache: HashMap<PathBuf, Arc<Value>>,
}

impl fmt::Debug for Bundler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundler")
            .field("cached_files", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// A bundled document and where its copied definitions came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundled {
    /// The self-contained document.
    pub value: Value,
    /// `$defs` or `definitions`: where the copies were put.
    pub container: &'static str,
    /// For each copied definition (by its name in the container): its source.
    pub origins: BTreeMap<String, DefOrigin>,
}

/// Where a copied definition came from, and the first `$ref` that pulled it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefOrigin {
    /// The file it was copied from.
    pub file: PathBuf,
    /// Its JSON pointer in that file.
    pub pointer: String,
    /// The file holding the first `$ref` to it (the root file, or the file
    /// of another copied definition).
    pub ref_file: PathBuf,
    /// JSON pointer of that `$ref`'s object in `ref_file`.
    pub ref_pointer: String,
}

impl Bundled {
    /// Maps a JSON pointer in the bundled document back to the root file:
    /// a pointer inside a copied definition becomes the pointer of the
    /// `$ref` in the root file that (perhaps through other copies) pulled it
    /// in. `None` when the pointer is already in the root file's own text.
    pub fn root_site(&self, root: &Path, pointer: &str) -> Option<(String, String)> {
        let prefix = format!("/{}/", self.container);
        let rest = pointer.strip_prefix(&prefix)?;
        let name = unescape_token(rest.split('/').next().unwrap_or_default());
        let mut origin = self.origins.get(&name)?;
        let described = format!("{}#{}", origin.file.display(), origin.pointer);
        let root = normalize(root);
        for _ in 0..=self.origins.len() {
            if origin.ref_file == root {
                return Some((format!("{}/$ref", origin.ref_pointer), described));
            }
            // The ref sits in another copied piece: find it and go up.
            origin = self.origins.values().find(|o| {
                o.file == origin.ref_file
                    && (origin.ref_pointer == o.pointer
                        || origin.ref_pointer.starts_with(&format!("{}/", o.pointer))
                        || o.pointer.is_empty())
            })?;
        }
        None
    }
}

/// A piece of a file: the file and a JSON pointer into it.
type Piece = (PathBuf, String);

/// Keywords that only annotate: a schema made of `$ref` plus these is a
/// "pure" ref for cycle detection.
fn is_annotation_keyword(key: &str) -> bool {
    matches!(
        key,
        "title"
            | "description"
            | "$comment"
            | "examples"
            | "default"
            | "deprecated"
            | "readOnly"
            | "writeOnly"
    ) || key.starts_with("x-")
}

impl<'a> Bundler<'a> {
    /// A bundler reading files through `loader`.
    pub fn new(loader: &'a Loader<'a>) -> Self {
        Bundler {
            loader,
            cache: HashMap::new(),
        }
    }

    /// Hands the bundler an already parsed file, so it is not read again.
    pub fn preload(&mut self, path: &Path, value: Arc<Value>) {
        self.cache.insert(normalize(path), value);
    }

    /// Parses a file (once) and returns it. `from`/`pointer` name the `$ref`
    /// that asked for it, for the error.
    ///
    /// # Errors
    /// [`BundleErrorKind::Read`] or [`BundleErrorKind::Json`].
    pub fn load(
        &mut self,
        path: &Path,
        from: &Path,
        pointer: &str,
    ) -> Result<Arc<Value>, BundleError> {
        if let Some(v) = self.cache.get(path) {
            return Ok(v.clone());
        }
        let err = |kind| BundleError {
            file: from.to_path_buf(),
            pointer: pointer.to_string(),
            kind,
        };
        let text = (self.loader)(path).map_err(|source| {
            err(BundleErrorKind::Read {
                target: path.to_path_buf(),
                source,
            })
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            err(BundleErrorKind::Json {
                target: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
        })?;
        let value = Arc::new(value);
        self.cache.insert(path.to_path_buf(), value.clone());
        Ok(value)
    }

    /// Bundles the file at `path` into one document.
    ///
    /// # Errors
    /// See [`BundleError`].
    pub fn bundle(&mut self, path: &Path) -> Result<Value, BundleError> {
        self.bundle_detailed(path).map(|b| b.value)
    }

    /// Bundles the file at `path` and says where every copied `$defs`
    /// entry came from.
    ///
    /// # Errors
    /// See [`BundleError`].
    pub fn bundle_detailed(&mut self, path: &Path) -> Result<Bundled, BundleError> {
        self.bundle_all(path)
            .map_err(|mut errors| errors.swap_remove(0))
    }

    /// Like [`Bundler::bundle_detailed`], but goes on after a `$ref` it
    /// cannot resolve and returns every such problem of the file (and of
    /// the files it copies from), in document order, each once.
    ///
    /// # Errors
    /// At least one [`BundleError`].
    pub fn bundle_all(&mut self, path: &Path) -> Result<Bundled, Vec<BundleError>> {
        let root_path = normalize(path);
        let root = self.load(&root_path, &root_path, "").map_err(|e| vec![e])?;
        let mut root_doc = (*root).clone();
        // Which container the copied pieces go into.
        let container = match &root_doc {
            Value::Object(m) if m.contains_key("definitions") && !m.contains_key("$defs") => {
                "definitions"
            }
            _ => "$defs",
        };
        let mut state = State {
            root: root_path.clone(),
            root_doc: root.clone(),
            container,
            names: HashMap::new(),
            taken: HashSet::new(),
            queue: Vec::new(),
            defs: BTreeMap::new(),
            errors: Vec::new(),
        };
        if let Some(Value::Object(defs)) = root_doc.get(container) {
            state.taken.extend(defs.keys().cloned());
        }
        // Rewrite the root file in place.
        let mut ptr = String::new();
        self.rewrite(&mut root_doc, &root_path, &mut ptr, &mut state, true, false);
        // Copy every queued piece, rewriting as we go; pieces may queue more.
        let mut origins = BTreeMap::new();
        while let Some((piece, name, site_file, site_ptr, reference)) = state.queue.pop() {
            origins.insert(
                name.clone(),
                DefOrigin {
                    file: piece.0.clone(),
                    pointer: piece.1.clone(),
                    ref_file: site_file.clone(),
                    ref_pointer: site_ptr.clone(),
                },
            );
            let doc = match self.load(&piece.0, &site_file, &site_ptr) {
                Ok(doc) => doc,
                Err(e) => {
                    state.errors.push(e);
                    continue;
                }
            };
            let Some(found) = resolve_pointer(&doc, &piece.1) else {
                state.errors.push(BundleError {
                    file: site_file.clone(),
                    pointer: site_ptr.clone(),
                    kind: BundleErrorKind::MissingTarget {
                        reference: reference.clone(),
                        target: piece.0.clone(),
                        target_pointer: piece.1.clone(),
                    },
                });
                continue;
            };
            let mut value = found.clone();
            if let Value::Object(m) = &mut value {
                for k in [
                    "$id",
                    "$schema",
                    "$defs",
                    "definitions",
                    "$anchor",
                    "$dynamicAnchor",
                ] {
                    m.remove(k);
                }
            }
            let mut ptr = piece.1.clone();
            self.rewrite(&mut value, &piece.0, &mut ptr, &mut state, false, false);
            state.defs.insert(name, value);
        }
        if !state.errors.is_empty() {
            // A ref copied into several places is reported once.
            let mut seen = HashSet::new();
            let mut errors = std::mem::take(&mut state.errors);
            errors.retain(|e| seen.insert((e.file.clone(), e.pointer.clone())));
            return Err(errors);
        }
        self.check_cycles(&state).map_err(|e| vec![e])?;
        if !state.defs.is_empty() {
            if let Value::Object(m) = &mut root_doc {
                let entry = m
                    .entry(container.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(defs) = entry {
                    for (k, v) in std::mem::take(&mut state.defs) {
                        defs.insert(k, v);
                    }
                }
            }
        }
        Ok(Bundled {
            value: root_doc,
            container,
            origins,
        })
    }

    /// Walks `value` (found in `file` at `ptr`), rewriting `$ref`s; a
    /// `$ref` it cannot resolve is recorded in `state.errors` and left as
    /// it is. `names_map`: `value` maps names to schemas (`properties`,
    /// `$defs`), so its keys are names, not keywords.
    fn rewrite(
        &mut self,
        value: &mut Value,
        file: &Path,
        ptr: &mut String,
        state: &mut State,
        in_root: bool,
        names_map: bool,
    ) {
        match value {
            Value::Object(map) => {
                if !names_map {
                    if let Some(r) = map.get_mut("$ref") {
                        match r {
                            Value::String(reference) => {
                                let reference = reference.clone();
                                match self.target(&reference, file, ptr, state, in_root) {
                                    Ok(Some(new_ref)) => *r = Value::String(new_ref),
                                    Ok(None) => {}
                                    Err(e) => state.errors.push(e),
                                }
                            }
                            other => state.errors.push(BundleError {
                                file: file.to_path_buf(),
                                pointer: ptr.clone(),
                                kind: BundleErrorKind::Malformed {
                                    reference: other.to_string(),
                                    reason: "$ref must be a string".into(),
                                },
                            }),
                        }
                    }
                }
                for (k, v) in map.iter_mut() {
                    if !(v.is_object() || v.is_array())
                        || (!names_map && (k == "$ref" || is_data(k)))
                    {
                        continue;
                    }
                    let child_names_map = !names_map && is_names_map(k);
                    let len = ptr.len();
                    ptr.push('/');
                    push_token(ptr, k);
                    self.rewrite(v, file, ptr, state, in_root, child_names_map);
                    ptr.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    if !(v.is_object() || v.is_array()) {
                        continue;
                    }
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    self.rewrite(v, file, ptr, state, in_root, false);
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// The rewritten form of `reference` (found in `file` at `site`), or
    /// `None` to keep it as it is.
    fn target(
        &mut self,
        reference: &str,
        file: &Path,
        site: &str,
        state: &mut State,
        in_root: bool,
    ) -> Result<Option<String>, BundleError> {
        let err = |kind| BundleError {
            file: file.to_path_buf(),
            pointer: site.to_string(),
            kind,
        };
        let (path_part, fragment) = match reference.split_once('#') {
            Some((p, f)) => (p, f),
            None => (reference, ""),
        };
        if has_scheme(path_part) || path_part.starts_with("//") {
            return Err(err(BundleErrorKind::NotRelative {
                reference: reference.to_string(),
            }));
        }
        let pointer = if fragment.is_empty() {
            String::new()
        } else if fragment.starts_with('/') {
            percent_decode(fragment).ok_or_else(|| {
                err(BundleErrorKind::Malformed {
                    reference: reference.to_string(),
                    reason: "bad percent-encoding in the fragment".into(),
                })
            })?
        } else {
            if path_part.is_empty() && in_root {
                // A local plain-name anchor: the validator resolves it, if
                // the document declares it.
                if has_anchor(&state.root_doc, fragment) {
                    return Ok(None);
                }
                return Err(err(BundleErrorKind::MissingTarget {
                    reference: reference.to_string(),
                    target: file.to_path_buf(),
                    target_pointer: format!("anchor {fragment:?}"),
                }));
            }
            return Err(err(BundleErrorKind::Malformed {
                reference: reference.to_string(),
                reason: "plain-name fragments (anchors) are not supported across files; use a JSON pointer such as #/$defs/Name".into(),
            }));
        };
        let target_file = if path_part.is_empty() {
            if in_root {
                if resolve_pointer(&state.root_doc, &pointer).is_none() {
                    return Err(err(BundleErrorKind::MissingTarget {
                        reference: reference.to_string(),
                        target: file.to_path_buf(),
                        target_pointer: pointer,
                    }));
                }
                return Ok(None);
            }
            file.to_path_buf()
        } else {
            let path_part = percent_decode(path_part).unwrap_or_else(|| path_part.to_string());
            let base = file.parent().unwrap_or_else(|| Path::new(""));
            normalize(&base.join(path_part))
        };
        if target_file == state.root {
            return Ok(Some(format!("#{}", encode_fragment(&pointer))));
        }
        let piece: Piece = (target_file, pointer);
        if let Some(name) = state.names.get(&piece) {
            return Ok(Some(state.local_ref(name)));
        }
        let name = state.fresh_name(&piece);
        state.names.insert(piece.clone(), name.clone());
        state.queue.push((
            piece,
            name.clone(),
            file.to_path_buf(),
            site.to_string(),
            reference.to_string(),
        ));
        Ok(Some(state.local_ref(&name)))
    }

    /// Refuses chains of pure `$ref` pieces that lead back to themselves.
    fn check_cycles(&self, state: &State) -> Result<(), BundleError> {
        // name -> the def name it is a pure ref to (when it is one).
        let prefix = format!("#/{}/", state.container);
        let mut next: HashMap<&str, &str> = HashMap::new();
        for (name, value) in &state.defs {
            if let Some(target) = pure_ref(value).and_then(|r| r.strip_prefix(prefix.as_str())) {
                if let Some((target_name, _)) = state.defs.get_key_value(&unescape_token(target)) {
                    next.insert(name.as_str(), target_name.as_str());
                }
            }
        }
        let by_name: HashMap<&str, &Piece> =
            state.names.iter().map(|(p, n)| (n.as_str(), p)).collect();
        for start in next.keys() {
            let mut seen = vec![*start];
            let mut cur = *start;
            while let Some(n) = next.get(cur) {
                if *n == *start {
                    let chain: Vec<String> = seen
                        .iter()
                        .chain(std::iter::once(start))
                        .filter_map(|n| by_name.get(n))
                        .map(|(f, p)| format!("{}#{}", f.display(), p))
                        .collect();
                    let (file, pointer) = by_name
                        .get(start)
                        .map(|(f, p)| (f.clone(), p.clone()))
                        .unwrap_or_default();
                    let reference = state
                        .defs
                        .get(*start)
                        .and_then(pure_ref)
                        .unwrap_or_default()
                        .to_string();
                    return Err(BundleError {
                        file,
                        pointer,
                        kind: BundleErrorKind::Cycle { reference, chain },
                    });
                }
                if seen.contains(n) {
                    break;
                }
                seen.push(n);
                cur = n;
            }
        }
        Ok(())
    }
}

/// Bundling state for one root document.
struct State {
    root: PathBuf,
    root_doc: Arc<Value>,
    container: &'static str,
    names: HashMap<Piece, String>,
    taken: HashSet<String>,
    /// (piece, def name, file of the ref, pointer of the ref, the ref).
    queue: Vec<(Piece, String, PathBuf, String, String)>,
    defs: BTreeMap<String, Value>,
    /// Unresolvable `$ref`s found so far.
    errors: Vec<BundleError>,
}

impl State {
    fn local_ref(&self, name: &str) -> String {
        let mut s = format!("#/{}/", self.container);
        push_token(&mut s, name);
        s
    }

    fn fresh_name(&mut self, piece: &Piece) -> String {
        let stem = piece
            .0
            .file_stem()
            .map(|s| pascal_case(&s.to_string_lossy()))
            .unwrap_or_default();
        let last = piece
            .1
            .rsplit('/')
            .next()
            .filter(|t| !t.is_empty())
            .map(unescape_token);
        let base = match last {
            Some(t) => t,
            None if stem.is_empty() => "Schema".to_string(),
            None => stem.clone(),
        };
        let mut candidates = vec![base.clone()];
        if !base.starts_with(&stem) {
            candidates.push(format!("{stem}{base}"));
        }
        let mut chosen = None;
        for c in candidates {
            if !self.taken.contains(&c) {
                chosen = Some(c);
                break;
            }
        }
        let name = chosen.unwrap_or_else(|| {
            let base = format!("{stem}{base}");
            (2..)
                .map(|i| format!("{base}{i}"))
                .find(|c| !self.taken.contains(c))
                .unwrap_or(base)
        });
        self.taken.insert(name.clone());
        name
    }
}

/// Whether `doc` declares the plain-name anchor `name` (`$anchor`,
/// `$dynamicAnchor`, or a draft-07 `$id: "#name"`).
fn has_anchor(doc: &Value, name: &str) -> bool {
    match doc {
        Value::Object(m) => {
            m.get("$anchor").and_then(Value::as_str) == Some(name)
                || m.get("$dynamicAnchor").and_then(Value::as_str) == Some(name)
                || m.get("$id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.strip_prefix('#'))
                    == Some(name)
                || m.iter().any(|(k, v)| !is_data(k) && has_anchor(v, name))
        }
        Value::Array(a) => a.iter().any(|v| has_anchor(v, name)),
        _ => false,
    }
}

/// A loop of schemas that are nothing but local `$ref`s (`#/$defs/A` ->
/// `#/$defs/B` -> `#/$defs/A`) in a bundled document: such a schema never
/// reaches a constraint, and validators and the generator cannot use it.
/// Returns the pointers of the loop, starting where it was found.
pub fn local_ref_cycle(doc: &Value) -> Option<Vec<String>> {
    let mut starts = vec![String::new()];
    for container in ["$defs", "definitions"] {
        if let Some(Value::Object(defs)) = doc.get(container) {
            for k in defs.keys() {
                let mut p = format!("/{container}/");
                push_token(&mut p, k);
                starts.push(p);
            }
        }
    }
    for start in starts {
        let mut chain = vec![start.clone()];
        let mut cur = resolve_pointer(doc, &start)?;
        while let Some(r) = pure_ref(cur) {
            let Some(next) = r.strip_prefix('#').and_then(percent_decode) else {
                break;
            };
            if chain.contains(&next) {
                chain.push(next);
                return Some(chain);
            }
            let Some(v) = resolve_pointer(doc, &next) else {
                break;
            };
            chain.push(next);
            cur = v;
        }
    }
    None
}

/// The target of a schema that is nothing but a `$ref` (plus annotations).
fn pure_ref(value: &Value) -> Option<&str> {
    let m = value.as_object()?;
    let r = m.get("$ref")?.as_str()?;
    m.keys()
        .all(|k| k == "$ref" || is_annotation_keyword(k))
        .then_some(r)
}

/// Whether `s` starts with a URI scheme (`https:`, `urn:`).
fn has_scheme(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Removes `.` and resolves `..` lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Resolves a (decoded) JSON pointer in `doc`.
pub fn resolve_pointer<'v>(doc: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut cur = doc;
    for token in rest.split('/') {
        let token = unescape_token(token);
        cur = match cur {
            Value::Object(m) => m.get(&token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Appends `token` to a JSON pointer, escaping `~` and `/`.
pub fn push_token(ptr: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => ptr.push_str("~0"),
            '/' => ptr.push_str("~1"),
            c => ptr.push(c),
        }
    }
}

/// Undoes JSON-pointer escaping of one token.
pub fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Decodes `%XX` sequences; `None` when one is malformed.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes what a URI fragment may not carry.
fn encode_fragment(pointer: &str) -> String {
    let mut s = String::with_capacity(pointer.len());
    for c in pointer.chars() {
        match c {
            '%' => s.push_str("%25"),
            ' ' => s.push_str("%20"),
            '"' => s.push_str("%22"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mem(files: &[(&str, Value)]) -> impl Fn(&Path) -> io::Result<String> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, v)| (PathBuf::from(p), v.to_string()))
            .collect();
        move |p: &Path| {
            files
                .get(p)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
        }
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize(Path::new("a/b/../c/./d.json")),
            PathBuf::from("a/c/d.json")
        );
        assert_eq!(
            normalize(Path::new("../x.json")),
            PathBuf::from("../x.json")
        );
    }

    #[test]
    fn pascal() {
        assert_eq!(pascal_case("user.created"), "UserCreated");
        assert_eq!(pascal_case("money"), "Money");
    }

    #[test]
    fn escapes_tokens() {
        let mut p = String::new();
        push_token(&mut p, "a/b~c");
        assert_eq!(p, "a~1b~0c");
        assert_eq!(unescape_token(&p), "a/b~c");
    }

    #[test]
    fn cross_file_ref_is_inlined() -> Result<(), BundleError> {
        let loader = mem(&[
            (
                "s/auth/a.json",
                json!({"type": "object", "properties": {"id": {"$ref": "../common/ids.json#/$defs/UserId"}}}),
            ),
            (
                "s/common/ids.json",
                json!({"$id": "x", "$defs": {"UserId": {"type": "string", "format": "uuid"}}}),
            ),
        ]);
        let v = bundle_with(&loader, Path::new("s/auth/a.json"))?;
        assert_eq!(v["properties"]["id"]["$ref"], "#/$defs/UserId");
        assert_eq!(v["$defs"]["UserId"]["format"], "uuid");
        Ok(())
    }
}
