//! Event types described at run time, from a registry read by a tool (the
//! `tidings publish` and `tidings tail` commands), rather than by a Rust
//! type: the same validation, envelope, subject and headers as a typed
//! publish, through the same [`Encoder`](super::Encoder).
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use crate::schema::{self, SchemaError, Violation};

/// One version of an event type, described at run time: name, version,
/// stream, schema and entity key, as the registry declares them
/// (`x-event-type`, `x-schema-version`, `x-stream`, the bundled schema,
/// `x-entity-key`).
///
/// The type and stream names are interned for the life of the process
/// (one copy per distinct name), so that errors and prepared events carry
/// them as a typed event's constants are carried.
#[derive(Clone)]
pub struct DynamicType {
    event_type: &'static str,
    version: u32,
    stream: &'static str,
    schema_uri: String,
    key_field: Option<String>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for DynamicType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicType")
            .field("event_type", &self.event_type)
            .field("version", &self.version)
            .field("stream", &self.stream)
            .field("schema_uri", &self.schema_uri)
            .field("key_field", &self.key_field)
            .finish_non_exhaustive()
    }
}

impl DynamicType {
    /// Describes `event_type` version `version`, stored in `stream`, with
    /// its self-contained (bundled) JSON Schema and the property its entity
    /// key comes from. The CloudEvents `dataschema` is the schema's `$id`,
    /// or `urn:tidings:schema:<type>:v<version>` as for derived types.
    /// Fails if the schema does not compile.
    pub fn new(
        event_type: &str,
        version: u32,
        stream: &str,
        schema: &serde_json::Value,
        key_field: Option<&str>,
    ) -> Result<Self, SchemaError> {
        let event_type = intern(event_type);
        let validator = schema::compile(schema).map_err(|reason| SchemaError {
            event_type,
            version,
            reason,
        })?;
        let schema_uri = schema
            .get("$id")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
            .map_or_else(
                || format!("urn:tidings:schema:{event_type}:v{version}"),
                str::to_string,
            );
        Ok(Self {
            event_type,
            version,
            stream: intern(stream),
            schema_uri,
            key_field: key_field.map(str::to_string),
            validator: Arc::new(validator),
        })
    }

    /// The event type (`service.entity.action`).
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The schema version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The stream that stores it.
    pub fn stream(&self) -> &'static str {
        self.stream
    }

    /// The CloudEvents `dataschema` of its events.
    pub fn schema_uri(&self) -> &str {
        &self.schema_uri
    }

    /// The property the entity key comes from, if the type has one.
    pub fn key_field(&self) -> Option<&str> {
        self.key_field.as_deref()
    }

    /// Every violation of `payload` against the schema (empty when valid).
    pub fn violations(&self, payload: &serde_json::Value) -> Vec<Violation> {
        schema::violations_of(&self.validator, payload)
    }

    /// The entity key of `payload`: the key property's string, or an
    /// integer's decimal text (as a typed event's `entity_key`). A payload
    /// without it, or with another kind of value, is a violation.
    pub(super) fn entity_key<'a>(
        &self,
        payload: &'a serde_json::Value,
    ) -> Result<Option<Cow<'a, str>>, Violation> {
        let Some(field) = &self.key_field else {
            return Ok(None);
        };
        match payload.get(field) {
            Some(serde_json::Value::String(key)) => Ok(Some(Cow::Borrowed(key))),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(Some(Cow::Owned(n.to_string())))
            }
            other => Err(Violation {
                instance_path: format!("/{field}"),
                schema_path: "/x-entity-key".into(),
                message: match other {
                    None => format!("the entity key {field:?} is missing"),
                    Some(v) => format!("the entity key {field:?} is {v}, not a string or integer"),
                },
            }),
        }
    }
}

/// `name` as a `&'static str`, one leaked copy per distinct name.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = names.get(name) {
        return found;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}
