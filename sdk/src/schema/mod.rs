//! Payload validation against an event type's embedded schema, with one
//! validator compiled per type and reused (validators are `Send + Sync`).
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::event::DomainEvent;

mod email;

/// One way a payload breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the payload (`/address/zip`; empty for the root).
    pub instance_path: String,
    /// JSON pointer into the schema of the rule that failed.
    pub schema_path: String,
    /// The validator's message.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "at {at}: {} (schema {})", self.message, self.schema_path)
    }
}

/// Why an embedded schema cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the embedded schema of {event_type} v{version} is unusable: {reason}")]
pub struct SchemaError {
    /// The event type.
    pub event_type: &'static str,
    /// The schema version.
    pub version: u32,
    /// What is wrong.
    pub reason: String,
}

type Cache = RwLock<HashMap<TypeId, Arc<jsonschema::Validator>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// The compiled validator of `E`'s schema, built on first use and cached.
pub fn validator<E: DomainEvent>() -> Result<Arc<jsonschema::Validator>, SchemaError> {
    let id = TypeId::of::<E>();
    if let Some(found) = cache().read().ok().and_then(|m| m.get(&id).cloned()) {
        return Ok(found);
    }
    let err = |reason: String| SchemaError {
        event_type: E::EVENT_TYPE,
        version: E::SCHEMA_VERSION,
        reason,
    };
    let schema: serde_json::Value =
        serde_json::from_str(E::SCHEMA).map_err(|e| err(format!("not JSON: {e}")))?;
    let compiled = Arc::new(compile(&schema).map_err(err)?);
    if let Ok(mut map) = cache().write() {
        map.entry(id).or_insert_with(|| compiled.clone());
    }
    Ok(compiled)
}

/// Compiles a schema as every validator of the runtime is compiled (formats
/// checked; `email` by [`email::is_valid`], jsonschema's answer faster), or
/// says why it cannot be.
pub(crate) fn compile(schema: &serde_json::Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .with_format("email", email::is_valid)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Every violation of `payload` against `E`'s schema (empty when valid).
pub fn violations<E: DomainEvent>(
    payload: &serde_json::Value,
) -> Result<Vec<Violation>, SchemaError> {
    Ok(violations_of(&*validator::<E>()?, payload))
}

/// Every violation of `payload` against a compiled schema (empty when valid).
pub(crate) fn violations_of(
    validator: &jsonschema::Validator,
    payload: &serde_json::Value,
) -> Vec<Violation> {
    // The common case, a valid payload, takes the fast path that stops at
    // the first failure instead of collecting every error.
    if validator.is_valid(payload) {
        return Vec::new();
    }
    validator
        .iter_errors(payload)
        .map(|e| Violation {
            instance_path: e.instance_path().to_string(),
            schema_path: e.schema_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

/// The violations as one line, `; `-separated, for error messages.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
