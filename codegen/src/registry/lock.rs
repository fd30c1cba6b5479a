//! `schemas/registry.lock`: the published versions and their fingerprints.
//!
//! A fingerprint is the SHA-256 of the file's own canonical JSON (object
//! keys sorted, no whitespace), without the top-level deprecation markers
//! `x-deprecated` and `x-deprecated-reason` and without `x-entity-key`,
//! which the lock records beside the fingerprint (a published version may
//! gain a key once; it can never change or lose it). It is taken of the file as
//! written, not of its bundled form: reformatting or reordering keys is not
//! an edit, and an edit to a shared file shows up once, on that file's own
//! entry in `shared`, instead of on every event that uses it.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The name of the lock file inside the registry directory.
pub const LOCK_FILE: &str = "registry.lock";

/// Top-level keys left out of the fingerprint: adding them is how a
/// published version is deprecated, which is not an edit.
pub const DEPRECATION_KEYS: [&str; 2] = ["x-deprecated", "x-deprecated-reason"];

/// The top-level keyword naming the property whose value is the entity key
/// (the subject's last token). Left out of the fingerprint and recorded in
/// [`LockedVersion::entity_key`] instead: adding it to a published version
/// that had none is allowed once, changing or removing it is not.
pub const ENTITY_KEY: &str = "x-entity-key";

/// The lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version of the lock file (1).
    pub lock_version: u32,
    /// Published event schema versions, sorted by event type and version.
    pub events: Vec<LockedVersion>,
    /// Shared definition files, sorted by path.
    #[serde(default)]
    pub shared: Vec<LockedShared>,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedVersion {
    /// Event type (`auth.user.created`).
    pub event_type: String,
    /// Schema version.
    pub version: u32,
    /// Registry-relative path of its file.
    pub file: String,
    /// Hex SHA-256 of the canonical JSON.
    pub sha256: String,
    /// Marked deprecated (`x-deprecated: true` in the schema): its file may
    /// be deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Deleted after deprecation: a tombstone, so the version number is
    /// never reused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub removed: bool,
    /// The version's `x-entity-key`, once recorded: from then on the
    /// version's subjects carry that property's value, and it never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_key: Option<String>,
}

/// One shared definitions file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedShared {
    /// Registry-relative path.
    pub file: String,
    /// Hex SHA-256 of the canonical JSON.
    pub sha256: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Lock {
    fn default() -> Self {
        Lock {
            lock_version: 1,
            events: Vec::new(),
            shared: Vec::new(),
        }
    }
}

impl Lock {
    /// Parses the lock file.
    ///
    /// # Errors
    /// Not valid JSON or not the lock's shape.
    pub fn parse(text: &str) -> Result<Lock, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The lock as pretty JSON with a final newline, entries sorted.
    pub fn to_text(&self) -> String {
        let mut lock = self.clone();
        lock.events
            .sort_by(|a, b| (&a.event_type, a.version).cmp(&(&b.event_type, b.version)));
        lock.shared.sort_by(|a, b| a.file.cmp(&b.file));
        let mut s = serde_json::to_string_pretty(&lock).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The entry for `event_type` version `version`.
    pub fn find(&self, event_type: &str, version: u32) -> Option<&LockedVersion> {
        self.events
            .iter()
            .find(|e| e.event_type == event_type && e.version == version)
    }
}

/// Canonical JSON: object keys sorted, no whitespace, numbers and strings
/// as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = m.get(*k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn unfingerprinted() -> impl Iterator<Item = &'static str> {
    DEPRECATION_KEYS.into_iter().chain([ENTITY_KEY])
}

/// The fingerprint of a schema file's parsed contents (see the module docs).
pub fn fingerprint(value: &Value) -> String {
    let text = match value {
        Value::Object(m) if unfingerprinted().any(|k| m.contains_key(k)) => {
            let mut m = m.clone();
            for k in unfingerprinted() {
                m.remove(k);
            }
            canonical_json(&Value::Object(m))
        }
        other => canonical_json(other),
    };
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_layout_and_deprecation() {
        let a: Value = serde_json::from_str("{\"b\": 1, \"a\": [1, {\"y\": 2, \"x\": 1}]}")
            .unwrap_or_default();
        let b = json!({"a": [1, {"x": 1, "y": 2}], "b": 1, "x-deprecated": true});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let keyed = json!({"a": [1, {"x": 1, "y": 2}], "b": 1, "x-entity-key": "b"});
        assert_eq!(fingerprint(&a), fingerprint(&keyed));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&json!({"a": [1, {"x": 1, "y": 3}], "b": 1}))
        );
        assert_eq!(
            canonical_json(&json!({"b": "\"", "a": 1.5})),
            r#"{"a":1.5,"b":"\""}"#
        );
    }
}
