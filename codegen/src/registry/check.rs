//! `tidings check`: every rule over a whole registry, and the lock update.
//!
//! Order: per-file rules ([`super::load`]), config rules (streams,
//! profiles, access, retention kinds), version sequence
//! (gaps, duplicates), streams, compatibility of each event type's versions
//! under its mode, the lock, and with `--against` the comparison with the
//! registry at a git ref.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::compat_bridge::{compare, Version};
use super::config::{Config, CONFIG_FILE};
use super::event_type::{pattern_covers, patterns_overlap, subject_pattern_problem, EventType};
use super::finding::{CheckedFile, Finding, Report, Severity, Summary};
use super::load::{load, EventFile, Loaded};
use super::lock::{Lock, LockedShared, LockedVersion, LOCK_FILE};
use super::position::line_of;
use super::source::Source;
use crate::compat::Mode;

/// A registry at another git ref, for `--against`.
#[derive(Debug)]
pub struct Against<'a> {
    /// The ref as the user wrote it (for messages).
    pub name: &'a str,
    /// The registry files at that ref.
    pub source: &'a Source,
}

/// Runs every check on `source` (and against `against`, when given).
///
/// When the per-file rules find no error, the Rust generator runs on the
/// registry in memory (the same [`crate::generate::generate`] build.rs
/// runs), and each problem it reports is a `generate/failed` finding: what
/// the check accepts, the build accepts.
pub fn check(source: &Source, against: Option<Against<'_>>) -> Report {
    let loaded = load(source);
    let mut findings = loaded.findings.clone();
    check_config(&loaded.config, source, &mut findings);
    let event_streams = super::access::event_streams(&loaded);
    let config_text = source.get(CONFIG_FILE).unwrap_or_default();
    findings.extend(super::access::check(
        &loaded.config,
        config_text,
        &event_streams,
    ));
    findings.extend(super::retention::check(
        &loaded.config,
        config_text,
        &event_streams,
    ));
    let types = group(&loaded.events);
    check_sequences(&types, loaded.lock.as_ref(), &mut findings);
    check_streams(&loaded, &mut findings);
    check_stream_history(&types, &mut findings);
    check_compat(&loaded.config, &types, &mut findings);
    check_entity_keys(&loaded.config, &types, &mut findings);
    #[cfg(feature = "generate")]
    check_generation(source, &loaded, &mut findings);
    let base = against.map(|a| {
        let loaded = load(a.source);
        (a, loaded)
    });
    let drafts = base.as_ref().map(|(_, b)| Drafts(b.lock.as_ref()));
    check_lock(&loaded, &types, drafts, &mut findings);
    if let Some((a, base)) = &base {
        check_against(&loaded, &types, a, base, &mut findings);
    }
    let ignored = super::ignore::apply(
        &loaded.config,
        source.get(CONFIG_FILE).unwrap_or_default(),
        &mut findings,
    );
    let mut report = finish(source, &loaded, &types, findings);
    report.summary.ignored = ignored;
    report
}

/// Generates the registry's Rust in memory when the per-file rules passed
/// (with lint errors the generator stops on exactly those, which are
/// findings already), turning each generation problem into a finding.
#[cfg(feature = "generate")]
fn check_generation(source: &Source, loaded: &Loaded, findings: &mut Vec<Finding>) {
    if loaded
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error)
    {
        return;
    }
    let options = crate::generate::Options::default();
    if let Err(e) = crate::generate::generate_loaded(source, loaded, &options) {
        if e.diagnostics().is_empty() {
            findings.push(internal_error(&format!("generating Rust ({e})")));
        }
        for d in e.diagnostics() {
            findings.push(
                Finding::error(
                    d.file.clone(),
                    d.pointer.clone(),
                    "generate/failed",
                    format!(
                        "the Rust generator (build.rs) refuses this schema: {}",
                        d.message
                    ),
                    if d.help.is_empty() {
                        "simplify the schema at the pointer; docs/generate.md lists what generates"
                            .to_string()
                    } else {
                        d.help.clone()
                    },
                )
                .at_line(d.line),
            );
        }
    }
}

/// The versions of the base registry (`--against REF`) that are published:
/// those in its lock. A version absent from it is a draft, which may still
/// change or go away. A base without a lock publishes every version.
#[derive(Debug, Clone, Copy)]
struct Drafts<'a>(Option<&'a Lock>);

impl Drafts<'_> {
    fn is_draft(&self, event_type: &str, version: u32) -> bool {
        self.0
            .is_some_and(|lock| lock.find(event_type, version).is_none())
    }
}

/// The lock `tidings check --update-lock` writes: new versions and shared
/// files recorded, deprecations recorded, deprecated versions whose file
/// was deleted turned into tombstones. Only what the check finds no error
/// in is recorded: a version (or shared file) with an error finding in its
/// file or in a shared file it copies from stays out of the lock, a draft
/// that can still be fixed. Edited or deleted published versions are left
/// as they were locked, so the check keeps failing on them: the lock
/// cannot be used to overwrite history.
///
/// With `base` (the registry at `--against REF`), a locked version that is
/// absent from the base's lock is still a draft: its entry follows the
/// file (re-recorded when it changed and has no errors, dropped when the
/// file is gone).
///
/// # Errors
/// The lock file exists but is not a valid lock: rebuilding it from the
/// current files would silently accept edits to published versions, so it
/// must be repaired (restored from version control) first.
pub fn updated_lock(source: &Source, base: Option<&Source>) -> Result<Lock, InvalidLock> {
    let loaded = load(source);
    if loaded.lock_present && loaded.lock.is_none() {
        return Err(InvalidLock);
    }
    let report = check(source, None);
    let broken: BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && !f.rule.starts_with("lock/"))
        .map(|f| f.file.as_str())
        .collect();
    // A finding without a file (an internal error) leaves everything out.
    let clean = |e: &EventFile| {
        !broken.contains("")
            && !broken.contains(e.path.as_str())
            && e.bundled.as_ref().is_some_and(|b| {
                b.origins
                    .values()
                    .all(|o| !broken.contains(o.file.to_string_lossy().as_ref()))
            })
    };
    let base_lock = base.map(|b| load(b).lock);
    let drafts = base_lock.as_ref().map(|l| Drafts(l.as_ref()));
    let is_draft = |ty: &str, v: u32| drafts.is_some_and(|d| d.is_draft(ty, v));
    let mut lock = loaded.lock.clone().unwrap_or_default();
    let present: BTreeMap<(String, u32), &EventFile> = loaded
        .events
        .iter()
        .filter_map(|e| Some(((e.event_type.as_ref()?.to_string(), e.version?), e)))
        .collect();
    lock.events.retain(|entry| {
        !is_draft(&entry.event_type, entry.version)
            || entry.removed
            || present
                .get(&(entry.event_type.clone(), entry.version))
                .is_some_and(|e| e.fingerprint == entry.sha256 || clean(e))
    });
    for entry in &mut lock.events {
        match present.get(&(entry.event_type.clone(), entry.version)) {
            Some(e) if is_draft(&entry.event_type, entry.version) && !entry.removed => {
                entry.sha256 = e.fingerprint.clone();
                entry.file = e.path.clone();
                entry.deprecated = e.deprecated;
                entry.entity_key = e.entity_key.clone();
            }
            Some(e) if e.fingerprint == entry.sha256 => {
                entry.deprecated |= e.deprecated;
                // A key is recorded once (when the file is clean) and
                // never replaced: a changed key stays a finding.
                if entry.entity_key.is_none() && clean(e) {
                    entry.entity_key = e.entity_key.clone();
                }
            }
            Some(_) => {}
            None if entry.deprecated => entry.removed = true,
            None => {}
        }
    }
    for ((ty, v), e) in &present {
        if lock.find(ty, *v).is_none() && clean(e) {
            lock.events.push(LockedVersion {
                event_type: ty.clone(),
                version: *v,
                file: e.path.clone(),
                sha256: e.fingerprint.clone(),
                deprecated: e.deprecated,
                removed: false,
                entity_key: e.entity_key.clone(),
            });
        }
    }
    // A shared file with errors keeps its locked fingerprint (if any).
    let previous: BTreeMap<String, String> = lock
        .shared
        .iter()
        .map(|s| (s.file.clone(), s.sha256.clone()))
        .collect();
    lock.shared = loaded
        .shared
        .iter()
        .filter_map(|s| {
            let sha256 = if broken.contains(s.path.as_str()) || broken.contains("") {
                previous.get(&s.path)?.clone()
            } else {
                s.fingerprint.clone()
            };
            Some(LockedShared {
                file: s.path.clone(),
                sha256,
            })
        })
        .collect();
    Ok(lock)
}

/// `--update-lock` refused: the existing lock is not valid.
#[derive(Debug, thiserror::Error)]
#[error("{LOCK_FILE} exists but is not a valid lock; restore it from version control before updating it (rebuilding it from the current files would accept edits to published versions)")]
pub struct InvalidLock;

/// Versions of one event type: version -> files declaring it (normally one).
type Types<'a> = BTreeMap<EventType, BTreeMap<u32, Vec<&'a EventFile>>>;

fn group(events: &[EventFile]) -> Types<'_> {
    let mut types: Types<'_> = BTreeMap::new();
    for e in events {
        if let (Some(t), Some(v)) = (&e.event_type, e.version) {
            types
                .entry(t.clone())
                .or_default()
                .entry(v)
                .or_default()
                .push(e);
        }
    }
    types
}

fn check_config(config: &Config, source: &Source, findings: &mut Vec<Finding>) {
    let text = source.get(CONFIG_FILE).unwrap_or_default();
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut all: Vec<(&str, &str)> = Vec::new();
    for (name, s) in &config.streams {
        let at = line(&format!("[streams.{name}]"));
        if !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            || name.is_empty()
        {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "config/stream-name",
                    format!("stream name {name:?} is not upper-case A-Z, 0-9, _"),
                    "name streams like AUTH_EVENTS",
                )
                .at_line(at),
            );
        }
        if s.subjects.is_empty() {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "config/stream-subjects",
                    format!("stream {name} has no subjects"),
                    "add subjects = [\"service.>\"]",
                )
                .at_line(at),
            );
        }
        for subj in &s.subjects {
            if let Some(p) = subject_pattern_problem(subj) {
                findings.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "config/stream-subjects",
                        format!("stream {name}: subject {subj:?} is not valid: {p}"),
                        "use tokens [a-z][a-z0-9_]*, `*` or a final `>`",
                    )
                    .at_line(at),
                );
            }
            for (other, osubj) in &all {
                if patterns_overlap(subj, osubj) {
                    findings.push(Finding::error(CONFIG_FILE, "", "config/stream-overlap", format!("stream {name} subject {subj:?} overlaps stream {other} subject {osubj:?}; JetStream refuses overlapping streams"), "give each stream its own subject prefix").at_line(at));
                }
            }
        }
        for subj in &s.subjects {
            all.push((name.as_str(), subj.as_str()));
        }
    }
    for (name, p) in &config.profiles {
        if !(1..=5).contains(&p.replicas) {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "config/replicas",
                    format!(
                        "profile {name}: replicas must be 1 to 5, not {}",
                        p.replicas
                    ),
                    "JetStream supports 1 to 5 replicas; use 3 in production",
                )
                .at_line(line(&format!("[profiles.{name}]"))),
            );
        }
    }
}

fn check_sequences(types: &Types<'_>, lock: Option<&Lock>, findings: &mut Vec<Finding>) {
    for (ty, versions) in types {
        for (v, files) in versions {
            for dup in files.iter().skip(1) {
                findings.push(Finding::error(
                    dup.path.clone(),
                    "/x-schema-version",
                    "registry/version-duplicate",
                    format!("{ty} v{v} is declared by {} files: {}", files.len(), files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")),
                    "each version lives in exactly one file; give this one the next free version or fix its x-event-type",
                ));
            }
        }
        let removed: BTreeSet<u32> = lock
            .map(|l| {
                l.events
                    .iter()
                    .filter(|e| (e.removed || e.deprecated) && e.event_type == ty.to_string())
                    .map(|e| e.version)
                    .collect()
            })
            .unwrap_or_default();
        let mut expected = 1;
        for (v, files) in versions {
            let missing: Vec<u32> = (expected..*v).filter(|m| !removed.contains(m)).collect();
            if !missing.is_empty() {
                if let Some(f) = files.first() {
                    findings.push(Finding::error(
                        f.path.clone(),
                        "/x-schema-version",
                        "registry/version-gap",
                        format!(
                            "{ty} jumps to v{v} but v{} {} missing",
                            missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", v"),
                            if missing.len() == 1 { "is" } else { "are" }
                        ),
                        format!("versions count 1, 2, 3...; renumber this one v{expected} (file and x-schema-version), or restore the missing file"),
                    ));
                }
            }
            expected = v + 1;
        }
    }
}

/// Every version of an event type should live on one stream: consumers
/// bind to a stream, so moving a type silently hides its new versions from
/// them (a warning: a deliberate migration is possible).
fn check_stream_history(types: &Types<'_>, findings: &mut Vec<Finding>) {
    for (ty, versions) in types {
        let mut first: Option<(&u32, &str)> = None;
        for (v, files) in versions {
            let Some(stream) = files.first().and_then(|f| f.stream.as_deref()) else {
                continue;
            };
            match first {
                None => first = Some((v, stream)),
                Some((v0, s0)) if s0 != stream => {
                    if let Some(f) = files.first() {
                        findings.push(
                            Finding::error(
                                f.path.clone(),
                                "/x-stream",
                                "stream/changed",
                                format!("{ty} v{v} is on {stream} but v{v0} is on {s0}"),
                                format!("keep {ty} on {s0}: consumers of {s0} would not see v{v}"),
                            )
                            .warning(),
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }
}

fn check_streams(loaded: &Loaded, findings: &mut Vec<Finding>) {
    if !loaded.config_ok {
        return;
    }
    let streams = &loaded.config.streams;
    let names = || {
        streams
            .iter()
            .filter(|(_, s)| s.events)
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for e in &loaded.events {
        let (Some(name), Some(ty)) = (&e.stream, &e.event_type) else {
            continue;
        };
        match streams.get(name) {
            None => findings.push(Finding::error(
                e.path.clone(),
                "/x-stream",
                "stream/undeclared",
                format!("stream {name:?} is not declared in {CONFIG_FILE}"),
                format!(
                    "use one of {}, or declare [streams.{name}] in {CONFIG_FILE}",
                    names()
                ),
            )),
            Some(s) if !s.events => findings.push(Finding::error(
                e.path.clone(),
                "/x-stream",
                "stream/not-for-events",
                format!("stream {name} does not carry event types (events = false)"),
                format!("use one of {}", names()),
            )),
            Some(s) if !s.subjects.iter().any(|p| pattern_covers(p, ty)) => {
                findings.push(Finding::error(
                    e.path.clone(),
                    "/x-stream",
                    "stream/not-covering",
                    format!("stream {name} captures {:?}, which does not include {ty}", s.subjects),
                    format!("use the stream whose subjects cover {ty}, or add \"{}.>\" to {name}'s subjects", ty.service),
                ));
            }
            Some(_) => {}
        }
    }
}

/// The mode of an event type: its latest version's `x-compatibility`, else
/// the registry default.
fn mode_of(config: &Config, versions: &BTreeMap<u32, Vec<&EventFile>>) -> Mode {
    versions
        .values()
        .next_back()
        .and_then(|f| f.first())
        .and_then(|f| f.mode)
        .unwrap_or(config.compatibility.mode)
}

/// Compares every event type's versions, spreading event types over a few
/// threads (the comparisons are independent).
fn check_compat(config: &Config, types: &Types<'_>, findings: &mut Vec<Finding>) {
    let work: Vec<(&EventType, &BTreeMap<u32, Vec<&EventFile>>)> =
        types.iter().filter(|(_, v)| v.len() >= 2).collect();
    if work.is_empty() {
        return;
    }
    let results = super::parallel::map(
        &work,
        || (),
        |_, (ty, versions)| {
            let mut out = Vec::new();
            compat_one(config, ty, versions, &mut out);
            out
        },
    );
    for r in results {
        findings.extend(r.unwrap_or_else(|| vec![internal_error("comparing versions")]));
    }
}

/// Every version of an event type keys its subjects by the same property
/// (`x-entity-key`): a changed, dropped or newly added key splits one
/// entity's events over different subjects, so per-entity order no longer
/// holds across the versions (and consumers filtering on the key miss
/// some). Skipped under mode NONE, like the other compatibility rules.
fn check_entity_keys(config: &Config, types: &Types<'_>, findings: &mut Vec<Finding>) {
    for (ty, versions) in types {
        if mode_of(config, versions) == Mode::None {
            continue;
        }
        let files: Vec<&EventFile> = versions
            .values()
            .filter_map(|f| f.first().copied())
            .collect();
        for pair in files.windows(2) {
            let [old, new] = pair else { continue };
            if old.entity_key == new.entity_key {
                continue;
            }
            let (ov, nv) = (old.version.unwrap_or(0), new.version.unwrap_or(0));
            let say = |k: &Option<String>| {
                k.as_ref().map_or(
                    "has no x-entity-key (subjects end in `_`)".to_string(),
                    |k| format!("keys subjects by {k:?}"),
                )
            };
            let help = match &old.entity_key {
                Some(k) => format!("keep \"x-entity-key\": {k:?} in v{nv}; a type keyed differently is a new event type"),
                None => format!(
                    "give every version of {ty} the same key: add it to v{ov} and the versions before (a published version may gain a key once, see docs/registry.md), or remove it here"
                ),
            };
            findings.push(Finding::error(
                new.path.clone(),
                if new.entity_key.is_some() { "/x-entity-key" } else { "" },
                "compat/entity-key-changed",
                format!(
                    "{ty} v{nv} {} but v{ov} {}: one entity's events would be split over different subjects, losing per-entity order",
                    say(&new.entity_key),
                    say(&old.entity_key)
                ),
                help,
            ));
        }
    }
}

fn compat_one(
    config: &Config,
    ty: &EventType,
    versions: &BTreeMap<u32, Vec<&EventFile>>,
    findings: &mut Vec<Finding>,
) {
    let list: Option<Vec<Version<'_>>> = versions
        .iter()
        .map(|(v, files)| {
            let f = files.first()?;
            Some(Version {
                version: *v,
                bundled: f.bundled.as_deref()?,
                file: &f.path,
            })
        })
        .collect();
    // A version that failed to bundle is already a finding.
    let Some(list) = list else { return };
    let mode = mode_of(config, versions);
    findings.extend(compare(
        &ty.to_string(),
        &list,
        mode,
        config.compatibility.policy,
        "",
        None,
        &|_, _| true,
    ));
}

fn check_lock(
    loaded: &Loaded,
    types: &Types<'_>,
    drafts: Option<Drafts<'_>>,
    findings: &mut Vec<Finding>,
) {
    let update = "run `tidings check --update-lock` and commit schemas/registry.lock";
    let Some(lock) = &loaded.lock else {
        if !loaded.lock_present {
            findings.push(
                Finding::error(
                    LOCK_FILE,
                    "",
                    "lock/missing",
                    format!(
                        "the registry has no {LOCK_FILE}, so published versions are not protected"
                    ),
                    update,
                )
                .at_line(1),
            );
        }
        return;
    };
    for entry in &lock.events {
        let Ok(ty) = entry.event_type.parse::<EventType>() else {
            findings.push(Finding::error(
                LOCK_FILE,
                "",
                "lock/invalid",
                format!("lock entry {:?} is not an event type", entry.event_type),
                "restore the lock from version control",
            ));
            continue;
        };
        let file = types
            .get(&ty)
            .and_then(|vs| vs.get(&entry.version))
            .and_then(|f| f.first());
        match (file, entry.removed) {
            (Some(f), true) => findings.push(Finding::error(
                f.path.clone(),
                "/x-schema-version",
                "lock/reused-version",
                format!("{ty} v{} was deprecated and removed; version numbers are never reused", entry.version),
                format!("publish this schema as the next free version (`tidings new {ty}`)"),
            )),
            (None, true) => {}
            (Some(f), false) => {
                let draft = drafts.is_some_and(|d| d.is_draft(&entry.event_type, entry.version));
                if f.fingerprint != entry.sha256 && draft {
                    findings.push(Finding::error(
                        f.path.clone(),
                        "",
                        "lock/outdated",
                        format!("draft {ty} v{} (not in the base's lock) changed since it was locked", entry.version),
                        "run `tidings check --against <base branch> --update-lock` to record the draft as it is now",
                    ));
                } else if f.fingerprint != entry.sha256 {
                    findings.push(Finding::error(
                        f.path.clone(),
                        "",
                        "lock/edited-published",
                        format!("{ty} v{} is published (locked sha256 {}) but the file now hashes to {}; published versions are immutable", entry.version, short(&entry.sha256), short(&f.fingerprint)),
                        format!("revert the edit and publish the change as a new version (`tidings new {ty}`); if v{} is not merged yet (a draft), `tidings check --against <base branch> --update-lock` records it as it is now", entry.version),
                    ));
                } else if entry.entity_key.is_some() && f.entity_key != entry.entity_key {
                    let locked = entry.entity_key.as_deref().unwrap_or_default();
                    findings.push(Finding::error(
                        f.path.clone(),
                        if f.entity_key.is_some() { "/x-entity-key" } else { "" },
                        "lock/entity-key-changed",
                        format!(
                            "{ty} v{} is published with \"x-entity-key\": {locked:?} but the file now {}; its events' subjects and per-entity order would change",
                            entry.version,
                            f.entity_key.as_ref().map_or("has none".to_string(), |k| format!("says {k:?}"))
                        ),
                        format!("put back \"x-entity-key\": {locked:?}; a published version's key never changes (key a new event type differently)"),
                    ));
                } else if entry.entity_key.is_none() && f.entity_key.is_some() {
                    findings.push(Finding::error(f.path.clone(), "/x-entity-key", "lock/outdated", format!("{ty} v{} gained an x-entity-key the lock does not record", entry.version), format!("{update} (a published version may gain a key once; docs/registry.md)")));
                } else if f.deprecated && !entry.deprecated {
                    findings.push(Finding::error(f.path.clone(), "/x-deprecated", "lock/outdated", format!("{ty} v{} is marked x-deprecated but the lock does not record it", entry.version), update));
                } else if !f.deprecated && entry.deprecated {
                    findings.push(Finding::error(f.path.clone(), "", "lock/undeprecated", format!("{ty} v{} is deprecated in the lock; deprecation cannot be undone", entry.version), "put \"x-deprecated\": true back"));
                }
            }
            (None, false) if drafts.is_some_and(|d| d.is_draft(&entry.event_type, entry.version)) => findings.push(
                Finding::error(LOCK_FILE, "", "lock/outdated", format!("draft {ty} v{} (not in the base's lock) was deleted; the lock still lists it", entry.version), "run `tidings check --against <base branch> --update-lock`").at_line(1),
            ),
            (None, false) if entry.deprecated => findings.push(
                Finding::error(LOCK_FILE, "", "lock/outdated", format!("deprecated {ty} v{} was deleted; the lock still lists it", entry.version), update).at_line(1),
            ),
            (None, false) => findings.push(
                Finding::error(
                    entry.file.clone(),
                    "",
                    "lock/deleted-published",
                    format!("published {ty} v{} ({}) was deleted; published versions are immutable", entry.version, entry.file),
                    "restore the file; to retire a version, deprecate it first (\"x-deprecated\": true, `tidings check --update-lock`), then delete it in a later change (docs/registry.md)",
                )
                .at_line(1),
            ),
        }
    }
    for (ty, versions) in types {
        for (v, files) in versions {
            if lock.find(&ty.to_string(), *v).is_none() {
                if let Some(f) = files.first() {
                    findings.push(Finding::error(
                        f.path.clone(),
                        "",
                        "lock/unlocked",
                        format!("{ty} v{v} is not recorded in {LOCK_FILE}"),
                        update,
                    ));
                }
            }
        }
    }
    let locked_shared: BTreeMap<&str, &str> = lock
        .shared
        .iter()
        .map(|s| (s.file.as_str(), s.sha256.as_str()))
        .collect();
    for s in &loaded.shared {
        match locked_shared.get(s.path.as_str()) {
            None => findings.push(Finding::error(s.path.clone(), "", "lock/unlocked", format!("shared file {} is not recorded in {LOCK_FILE}", s.path), update)),
            Some(sha) if *sha != s.fingerprint => findings.push(Finding::error(
                s.path.clone(),
                "",
                "lock/shared-changed",
                format!("shared file {} changed since it was locked; the published versions that use it change with it", s.path),
                "run `tidings check --against <base branch>` to prove the edit keeps every published version compatible, then `tidings check --update-lock`",
            )),
            Some(_) => {}
        }
    }
    let present: BTreeSet<&str> = loaded.shared.iter().map(|s| s.path.as_str()).collect();
    for s in &lock.shared {
        if !present.contains(s.file.as_str()) {
            findings.push(
                Finding::error(
                    LOCK_FILE,
                    "",
                    "lock/outdated",
                    format!(
                        "shared file {} was deleted; the lock still lists it",
                        s.file
                    ),
                    update,
                )
                .at_line(1),
            );
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn check_against(
    loaded: &Loaded,
    types: &Types<'_>,
    against: &Against<'_>,
    base: &Loaded,
    findings: &mut Vec<Finding>,
) {
    // The base's drafts (versions absent from its lock) may still change or
    // go away: only its published versions are compared.
    let drafts = Drafts(base.lock.as_ref());
    let published: Vec<EventFile> = base
        .events
        .iter()
        .filter(|e| match (&e.event_type, e.version) {
            (Some(t), Some(v)) => !drafts.is_draft(&t.to_string(), v),
            _ => true,
        })
        .cloned()
        .collect();
    let base_types = group(&published);
    let r = against.name;
    if let (Some(old_lock), Some(new_lock)) = (&base.lock, &loaded.lock) {
        check_lock_history(old_lock, new_lock, r, findings);
    }
    for (ty, base_versions) in &base_types {
        let now = types.get(ty);
        // Edited or deleted versions.
        for (v, files) in base_versions {
            let Some(old) = files.first() else { continue };
            match now.and_then(|n| n.get(v)).and_then(|f| f.first()) {
                None if old.deprecated => {}
                None => findings.push(
                    Finding::error(
                        old.path.clone(),
                        "",
                        "against/deleted",
                        format!("{ty} v{v} exists at {r} but was deleted"),
                        "restore it; published versions are immutable unless deprecated first (docs/registry.md)",
                    )
                    .at_line(1),
                ),
                Some(cur) if cur.fingerprint != old.fingerprint => {
                    let pointer = first_difference(&old.value, &cur.value);
                    findings.push(Finding::error(
                        cur.path.clone(),
                        pointer.clone(),
                        "against/edited",
                        format!("{ty} v{v} differs from {r} at {}", if pointer.is_empty() { "the root".to_string() } else { pointer }),
                        format!("revert the edit and publish it as a new version (`tidings new {ty}`)"),
                    ));
                }
                Some(cur) => {
                    // Same file, different bundle: a shared file changed under it.
                    if let (Some(ob), Some(nb)) = (&old.bundled, &cur.bundled) {
                        if ob.value != nb.value {
                            let mode = mode_of(&loaded.config, now.unwrap_or(base_versions));
                            let pair = [
                                Version { version: *v, bundled: ob, file: &cur.path },
                                Version { version: *v, bundled: nb, file: &cur.path },
                            ];
                            let prefix = "a shared definition changed: ".to_string();
                            let mode = if mode == Mode::None { Mode::None } else { Mode::Full };
                            findings.extend(compare(&ty.to_string(), &pair, mode, loaded.config.compatibility.policy, &prefix, Some(r), &|_, _| true).into_iter().map(|mut f| {
                                f.rule = f.rule.replacen("compat/", "against/shared-", 1);
                                f
                            }));
                        }
                    }
                }
            }
        }
        // Added versions judged against the base's versions.
        let Some(now) = now else { continue };
        let added: Vec<(&u32, &EventFile)> = now
            .iter()
            .filter(|(v, _)| !base_versions.contains_key(v))
            .filter_map(|(v, f)| Some((v, *f.first()?)))
            .collect();
        if added.is_empty() {
            continue;
        }
        // Only needed when the base's versions differ from today's (else
        // the plain compatibility check already compared the same schemas).
        let differs = base_versions.iter().any(|(v, files)| {
            let b = files
                .first()
                .and_then(|f| f.bundled.as_ref())
                .map(|b| &b.value);
            let n = now
                .get(v)
                .and_then(|f| f.first())
                .and_then(|f| f.bundled.as_ref())
                .map(|b| &b.value);
            b != n
        });
        if !differs {
            continue;
        }
        let mut list: Vec<Version<'_>> = Vec::new();
        for (v, files) in base_versions {
            if let Some((f, b)) = files.first().and_then(|f| Some((f, f.bundled.as_deref()?))) {
                list.push(Version {
                    version: *v,
                    bundled: b,
                    file: &f.path,
                });
            }
        }
        for (v, f) in &added {
            if let Some(b) = f.bundled.as_deref() {
                list.push(Version {
                    version: **v,
                    bundled: b,
                    file: &f.path,
                });
            }
        }
        list.sort_by_key(|v| v.version);
        let base_set: BTreeSet<u32> = base_versions.keys().copied().collect();
        let mode = mode_of(&loaded.config, now);
        let prefix = format!("against {r}: ");
        findings.extend(compare(
            &ty.to_string(),
            &list,
            mode,
            loaded.config.compatibility.policy,
            &prefix,
            None,
            &|o, n| base_set.contains(&o) && !base_set.contains(&n),
        ));
    }
}

/// A finding for a bug inside the checker (a panicking thread), so it
/// fails the check instead of silently dropping results.
pub(crate) fn internal_error(during: &str) -> Finding {
    Finding::error(
        "",
        "",
        "internal/error",
        format!("tidings check failed internally while {during}; the results are incomplete"),
        "please report this with the registry that triggers it",
    )
    .at_line(1)
}

/// Every entry of the base's lock must survive in today's lock with the
/// same fingerprint; `deprecated` and `removed` may only go from false to
/// true. Catches a lock rebuilt or hand-edited to hide an edit.
fn check_lock_history(old: &Lock, new: &Lock, r: &str, findings: &mut Vec<Finding>) {
    let help = "restore the entry from the base branch: published versions are immutable (docs/registry.md)";
    for e in &old.events {
        let pos = new
            .events
            .iter()
            .position(|n| n.event_type == e.event_type && n.version == e.version);
        let problem = match pos.map(|i| (i, &new.events[i])) {
            None => Some((None, "is missing".to_string())),
            Some((i, n)) if n.sha256 != e.sha256 => Some((
                Some(i),
                format!(
                    "changed its fingerprint from {} to {}",
                    short(&e.sha256),
                    short(&n.sha256)
                ),
            )),
            Some((i, n)) if (e.deprecated && !n.deprecated) || (e.removed && !n.removed) => {
                Some((Some(i), "lost its deprecated/removed mark".to_string()))
            }
            Some((i, n)) if e.entity_key.is_some() && n.entity_key != e.entity_key => Some((
                Some(i),
                format!(
                    "changed its entity key from {:?} to {:?}",
                    e.entity_key.as_deref().unwrap_or_default(),
                    n.entity_key.as_deref().unwrap_or("(none)")
                ),
            )),
            Some(_) => None,
        };
        if let Some((i, what)) = problem {
            findings.push(Finding::error(
                LOCK_FILE,
                i.map(|i| format!("/events/{i}")).unwrap_or_default(),
                "against/lock-rewritten",
                format!(
                    "the lock entry for {} v{} at {r} {what} in today's {LOCK_FILE}",
                    e.event_type, e.version
                ),
                help,
            ));
        }
    }
}

/// The first JSON pointer where two documents differ.
fn first_difference(a: &Value, b: &Value) -> String {
    fn walk(a: &Value, b: &Value, ptr: &mut String) -> bool {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let len = ptr.len();
                    ptr.push('/');
                    crate::bundle::push_token(ptr, k);
                    match (x.get(k), y.get(k)) {
                        (Some(p), Some(q)) if walk(p, q, ptr) => return true,
                        (Some(_), Some(_)) => {}
                        _ => return true,
                    }
                    ptr.truncate(len);
                }
                false
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    if walk(p, q, ptr) {
                        return true;
                    }
                    ptr.truncate(len);
                }
                false
            }
            (a, b) => a != b,
        }
    }
    let mut ptr = String::new();
    walk(a, b, &mut ptr);
    ptr
}

/// Every file the check read, with its event type and version.
fn checked_files(loaded: &Loaded) -> Vec<CheckedFile> {
    let mut files: Vec<CheckedFile> = loaded
        .events
        .iter()
        .map(|e| CheckedFile {
            file: e.path.clone(),
            event_type: e.event_type.as_ref().map(ToString::to_string),
            version: e.version,
        })
        .chain(loaded.shared.iter().map(|s| CheckedFile {
            file: s.path.clone(),
            event_type: None,
            version: None,
        }))
        .collect();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files
}

/// Fills in lines, sorts, dedups and counts.
fn finish(
    source: &Source,
    loaded: &Loaded,
    types: &Types<'_>,
    mut findings: Vec<Finding>,
) -> Report {
    for f in &mut findings {
        if f.line == 0 {
            f.line = source
                .get(&f.file)
                .map(|t| line_of(t, &f.pointer))
                .unwrap_or(1);
        }
    }
    findings.sort_by(|a, b| {
        (&a.file, a.line, &a.rule, &a.message).cmp(&(&b.file, b.line, &b.rule, &b.message))
    });
    findings.dedup();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    Report {
        summary: Summary {
            files: loaded.events.len() + loaded.shared.len(),
            event_types: types.len(),
            versions: types.values().map(|v| v.len()).sum(),
            errors,
            warnings: findings.len() - errors,
            ignored: 0,
        },
        files: checked_files(loaded),
        findings,
    }
}
