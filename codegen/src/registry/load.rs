//! Parses a [`Source`] into a [`Loaded`] registry and runs the rules that
//! look at one file at a time: JSON syntax, metaschema, declared event
//! type / version / stream / mode, file name, generator keywords, `$ref`
//! resolution (by bundling) and `examples`.
//!
//! Per-file work runs on a few threads; each keeps its own bundler cache.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::config::{Config, CONFIG_FILE};
use super::declared::Declared;
use super::event_type::EventType;
use super::finding::Finding;
use super::keywords::find_unsupported;
use super::lock::{fingerprint, Lock, LOCK_FILE};
use super::source::Source;
use crate::bundle::{BundleError, BundleErrorKind, Bundled, Bundler};
use crate::compat::Mode;

/// `$schema` values accepted for registry files: draft 2020-12 and
/// draft-07, each in every form the runtime validator (jsonschema) reads as
/// that draft (`http` or `https`, with or without the trailing `#`).
pub const ACCEPTED_DRAFTS: [&str; 8] = [
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2020-12/schema#",
    "http://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft/2020-12/schema#",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft-07/schema",
];

/// One event schema file.
#[derive(Debug, Clone)]
pub struct EventFile {
    /// Registry-relative path.
    pub path: String,
    /// Parsed contents.
    pub value: Arc<Value>,
    /// Declared event type (`x-event-type`), when valid.
    pub event_type: Option<EventType>,
    /// Declared version (`x-schema-version`), when valid.
    pub version: Option<u32>,
    /// Declared stream (`x-stream`).
    pub stream: Option<String>,
    /// Declared mode (`x-compatibility`), when valid.
    pub mode: Option<Mode>,
    /// `x-deprecated: true`.
    pub deprecated: bool,
    /// Declared `x-entity-key` (when a string): the property whose value is
    /// the subject's last token.
    pub entity_key: Option<String>,
    /// The bundled document (and where its copied definitions came from),
    /// when bundling succeeded.
    pub bundled: Option<Arc<Bundled>>,
    /// Fingerprint of `value` (see [`super::lock`]).
    pub fingerprint: String,
}

/// One shared definitions file.
#[derive(Debug, Clone)]
pub struct SharedFile {
    /// Registry-relative path.
    pub path: String,
    /// Fingerprint of its contents.
    pub fingerprint: String,
}

/// A parsed registry and the findings of the per-file rules.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The config (defaults when missing or invalid; see `findings`).
    pub config: Config,
    /// Whether `tidings.toml` was present and valid.
    pub config_ok: bool,
    /// Event schema files that parsed as JSON, sorted by path.
    pub events: Vec<EventFile>,
    /// Shared files that parsed as JSON, sorted by path.
    pub shared: Vec<SharedFile>,
    /// The lock, when present and valid.
    pub lock: Option<Lock>,
    /// Whether the lock file is present (valid or not).
    pub lock_present: bool,
    /// Findings so far.
    pub findings: Vec<Finding>,
}

impl Loaded {
    /// The event files whose type, version and bundle loaded, by event
    /// type, oldest version first: what the documentation commands show.
    pub fn usable_by_type(&self) -> std::collections::BTreeMap<String, Vec<&EventFile>> {
        let mut types: std::collections::BTreeMap<String, Vec<&EventFile>> = Default::default();
        for file in &self.events {
            if let (Some(t), Some(_), Some(_)) = (&file.event_type, file.version, &file.bundled) {
                types.entry(t.to_string()).or_default().push(file);
            }
        }
        for files in types.values_mut() {
            files.sort_by_key(|f| f.version);
        }
        types
    }
}

/// Loads and lints every file of `source`.
pub fn load(source: &Source) -> Loaded {
    let mut out = Loaded::default();
    match source.get(CONFIG_FILE) {
        None => out.findings.push(Finding::error(
            CONFIG_FILE,
            "",
            "config/missing",
            format!("the registry has no {CONFIG_FILE}"),
            "create it with the streams, profiles and default compatibility (see docs/registry.md)",
        ).at_line(1)),
        Some(text) => match toml::from_str::<Config>(text) {
            Ok(c) => {
                out.config = c;
                out.config_ok = true;
            }
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text.as_bytes().iter().take(s.start).filter(|b| **b == b'\n').count() + 1)
                    .unwrap_or(1);
                out.findings.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "config/invalid",
                        format!("invalid {CONFIG_FILE}: {}", e.message()),
                        "fix the setting; the format is described in docs/registry.md",
                    )
                    .at_line(line),
                );
            }
        },
    }
    if let Some(text) = source.get(LOCK_FILE) {
        out.lock_present = true;
        match Lock::parse(text) {
            Ok(l) => out.lock = Some(l),
            Err(e) => out.findings.push(
                Finding::error(
                    LOCK_FILE,
                    "",
                    "lock/invalid",
                    format!("{LOCK_FILE} is not a valid lock: {e}"),
                    "restore it from version control, or delete it and run `tidings check --update-lock`",
                )
                .at_line(e.line().max(1)),
            ),
        }
    }

    for path in &source.not_utf8 {
        out.findings.push(
            Finding::error(
                path.clone(),
                "",
                "json/invalid",
                "not valid JSON: the file is not UTF-8",
                "save the file as UTF-8",
            )
            .at_line(1),
        );
    }
    // Parse every JSON file.
    let mut parsed: Vec<(String, Arc<Value>)> = Vec::new();
    for (path, text) in &source.files {
        if !path.ends_with(".json") {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => parsed.push((path.clone(), Arc::new(v))),
            Err(e) => out.findings.push(
                Finding::error(
                    path.clone(),
                    "",
                    "json/invalid",
                    format!("not valid JSON: {e}"),
                    format!("fix the syntax at line {}, column {}", e.line(), e.column()),
                )
                .at_line(e.line().max(1)),
            ),
        }
    }
    let cache: HashMap<PathBuf, Arc<Value>> = parsed
        .iter()
        .map(|(p, v)| (PathBuf::from(p), v.clone()))
        .collect();

    // Per-file rules, in parallel.
    let config = &out.config;
    let loader = |p: &Path| -> std::io::Result<String> {
        source
            .get(&p.to_string_lossy())
            .map(str::to_string)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file in the registry")
            })
    };
    let results = super::parallel::map(
        &parsed,
        || {
            let mut bundler = Bundler::new(&loader);
            for (p, v) in &cache {
                bundler.preload(p, v.clone());
            }
            bundler
        },
        |bundler, (path, value)| {
            let mut findings = Vec::new();
            let result = lint_file(config, path, value, bundler, &mut findings);
            (findings, result)
        },
    );
    for r in results {
        match r {
            Some((findings, result)) => {
                out.findings.extend(findings);
                match result {
                    FileResult::Event(e) => out.events.push(*e),
                    FileResult::Shared(s) => out.shared.push(s),
                }
            }
            None => out
                .findings
                .push(super::check::internal_error("checking files")),
        }
    }
    out.events.sort_by(|a, b| a.path.cmp(&b.path));
    out.shared.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

enum FileResult {
    Event(Box<EventFile>),
    Shared(SharedFile),
}

/// The per-file rules for one parsed file.
fn lint_file(
    config: &Config,
    path: &str,
    value: &Arc<Value>,
    bundler: &mut Bundler<'_>,
    findings: &mut Vec<Finding>,
) -> FileResult {
    let shared = config.is_shared(path);
    let draft_ok = check_draft(path, value, shared, findings);
    let meta_ok = draft_ok && check_metaschema(path, value, findings);
    for u in find_unsupported(value) {
        let f = Finding::error(path, u.pointer, u.rule, u.message, u.help);
        findings.push(if u.warning { f.warning() } else { f });
    }
    super::rust_names::check(path, value, findings);
    super::patterns::check(path, value, findings);
    let fp = fingerprint(value);
    if shared {
        // Shared files' own refs must resolve even if no event uses them yet.
        if let Err(errors) = bundler.bundle_all(Path::new(path)) {
            findings.extend(errors.into_iter().map(bundle_finding));
        }
        return FileResult::Shared(SharedFile {
            path: path.to_string(),
            fingerprint: fp,
        });
    }
    let Declared {
        event_type,
        version,
        stream,
        mode,
    } = super::declared::read(config, path, value, findings);
    super::payload_shape::check(path, value, findings);
    let deprecated = value.get("x-deprecated") == Some(&Value::Bool(true));
    check_annotations(path, value, event_type.is_some(), findings);
    let bundled = bundle_and_check(path, bundler, draft_ok, meta_ok, findings);
    let entity_key =
        super::entity_key::check(path, value, bundled.as_ref().map(|b| &b.value), findings);
    FileResult::Event(Box::new(EventFile {
        path: path.to_string(),
        value: value.clone(),
        event_type,
        version,
        stream,
        mode,
        deprecated,
        entity_key,
        bundled,
        fingerprint: fp,
    }))
}

/// Warnings about a schema's description and `$id`.
fn check_annotations(path: &str, value: &Value, has_event_type: bool, findings: &mut Vec<Finding>) {
    let get = |k: &str| value.get(k);
    if get("description")
        .and_then(Value::as_str)
        .is_none_or(|d| d.trim().is_empty())
    {
        findings.push(
            Finding::error(
                path,
                "",
                "schema/description",
                "the schema has no description",
                "say what happened and when the event is published, in \"description\"",
            )
            .warning(),
        );
    }
    if let (Some(Value::String(id)), true) = (get("$id"), has_event_type) {
        if !id.ends_with(&format!("/{path}")) && id != path {
            findings.push(
                Finding::error(
                    path,
                    "/$id",
                    "schema/id",
                    format!("$id {id:?} does not end with the file's path {path:?}"),
                    format!("set \"$id\" to <registry base URL>/{path}"),
                )
                .warning(),
            );
        }
    }
}

/// Bundles the file (resolving every cross-file `$ref`), then checks for
/// loops of pure `$ref`s and validates the `examples`.
fn bundle_and_check(
    path: &str,
    bundler: &mut Bundler<'_>,
    draft_ok: bool,
    meta_ok: bool,
    findings: &mut Vec<Finding>,
) -> Option<Arc<Bundled>> {
    let bundled = match bundler.bundle_all(Path::new(path)) {
        Ok(b) => Some(Arc::new(b)),
        Err(errors) => {
            findings.extend(errors.into_iter().map(bundle_finding));
            None
        }
    };
    if let Some(b) = &bundled {
        if let Some(chain) = crate::bundle::local_ref_cycle(&b.value) {
            let first = chain.first().cloned().unwrap_or_default();
            findings.push(Finding::error(
                path,
                if first.is_empty() {
                    String::new()
                } else {
                    format!("{first}/$ref")
                },
                "ref/cycle",
                format!(
                    "$ref chain loops without reaching a schema: {}",
                    chain
                        .iter()
                        .map(|p| format!("#{p}"))
                        .collect::<Vec<_>>()
                        .join(" -> ")
                ),
                "make one definition in the loop an actual schema instead of another $ref",
            ));
        } else if draft_ok {
            check_examples(path, &b.value, meta_ok, findings);
        }
    }
    bundled
}

/// A bundling failure as a finding at the `$ref` that caused it.
pub fn bundle_finding(e: BundleError) -> Finding {
    let file = e.file.to_string_lossy().to_string();
    let (rule, help) = match &e.kind {
        BundleErrorKind::Read { .. } => ("ref/unresolvable", "fix the path (relative to this file's directory), or add the missing file".to_string()),
        BundleErrorKind::Json { .. } => ("ref/unresolvable", "fix the referenced file's JSON".to_string()),
        BundleErrorKind::MissingTarget { .. } => ("ref/unresolvable", "point the fragment at an existing definition, e.g. #/$defs/Name".to_string()),
        BundleErrorKind::Cycle { .. } => ("ref/cycle", "make one of the definitions in the chain an actual schema instead of another $ref".to_string()),
        BundleErrorKind::NotRelative { .. } => ("ref/not-relative", "copy the definition into the registry (e.g. schemas/common/) and refer to it with a relative path".to_string()),
        BundleErrorKind::Malformed { .. } => ("ref/malformed", "write the $ref as \"file.json#/json/pointer\" or \"#/json/pointer\"".to_string()),
    };
    let pointer = if e.pointer.is_empty() {
        String::new()
    } else {
        format!("{}/$ref", e.pointer)
    };
    Finding::error(file, pointer, rule, e.kind.to_string(), help)
}

/// `$schema` must be draft 2020-12 or draft-07 (absent means 2020-12 for
/// shared files, and a warning for event files). Returns whether the
/// metaschema and validator can be used.
fn check_draft(path: &str, value: &Value, shared: bool, findings: &mut Vec<Finding>) -> bool {
    match value.get("$schema") {
        None if !value.is_object() => {
            findings.push(Finding::error(
                path,
                "",
                "schema/metaschema",
                "a schema file must hold a JSON object",
                "wrap the schema in { ... }",
            ));
            false
        }
        None => {
            if !shared {
                findings.push(
                    Finding::error(
                        path,
                        "",
                        "schema/draft",
                        "the schema does not say its draft ($schema)",
                        "add \"$schema\": \"https://json-schema.org/draft/2020-12/schema\"",
                    )
                    .warning(),
                );
            }
            true
        }
        Some(Value::String(s)) if ACCEPTED_DRAFTS.contains(&s.as_str()) => true,
        Some(other) => {
            findings.push(Finding::error(
                path,
                "/$schema",
                "schema/draft",
                format!("unsupported $schema {other}; the registry accepts draft 2020-12 and draft-07"),
                "use \"https://json-schema.org/draft/2020-12/schema\" (or \"http://json-schema.org/draft-07/schema#\")",
            ));
            false
        }
    }
}

/// Returns whether the file is valid against its metaschema.
fn check_metaschema(path: &str, value: &Value, findings: &mut Vec<Finding>) -> bool {
    let validator = match jsonschema::meta::validator_for(value) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding::error(
                path,
                "/$schema",
                "schema/metaschema",
                format!("cannot load the metaschema: {e}"),
                "use a draft 2020-12 or draft-07 $schema",
            ));
            return false;
        }
    };
    if validator.is_valid(value) {
        return true;
    }
    let mut ok = true;
    for e in validator.iter_errors(value).take(20) {
        ok = false;
        let pointer = e.instance_path().to_string();
        findings.push(Finding::error(
            path,
            pointer.clone(),
            "schema/metaschema",
            format!("not a valid JSON Schema: {e}"),
            format!(
                "fix the keyword at {} so it matches the JSON Schema metaschema",
                if pointer.is_empty() {
                    "the root"
                } else {
                    &pointer
                }
            ),
        ));
    }
    ok
}

/// Compiles the bundled schema (reporting what the metaschema cannot
/// catch, such as an invalid `pattern`) and validates its `examples`.
fn check_examples(path: &str, bundled: &Value, meta_ok: bool, findings: &mut Vec<Finding>) {
    let examples = bundled
        .get("examples")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if examples.is_empty() {
        findings.push(
            Finding::error(
                path,
                "",
                "schema/no-examples",
                "the schema has no examples",
                "add \"examples\": [ ... ] with at least one realistic payload; the check validates it",
            )
            .warning(),
        );
    }
    // The `regex` engine compiles patterns faster than the default
    // backtracking one; schemas whose patterns it cannot handle
    // (look-around, back-references) fall back to the default engine.
    let validator = match jsonschema::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(bundled)
    {
        Ok(v) => v,
        Err(_) => match jsonschema::options()
            .should_validate_formats(true)
            .build(bundled)
        {
            Ok(v) => v,
            Err(e) => {
                // Without metaschema errors, say why it cannot be compiled.
                if meta_ok {
                    findings.push(Finding::error(
                        path,
                        e.instance_path().to_string(),
                        "schema/invalid",
                        format!("the schema cannot be compiled: {e}"),
                        "fix the keyword (for a pattern: an ECMA-262 regular expression)",
                    ));
                }
                return;
            }
        },
    };
    for (i, ex) in examples.iter().enumerate() {
        for e in validator.iter_errors(ex).take(5) {
            let at = e.instance_path().to_string();
            findings.push(Finding::error(
                path,
                format!("/examples/{i}"),
                "schema/example-invalid",
                format!(
                    "example {i} does not validate against its own schema at {}: {e}",
                    if at.is_empty() {
                        "the root".to_string()
                    } else {
                        at
                    }
                ),
                "fix the example, or the schema if the example shows what producers really send",
            ));
        }
    }
}
