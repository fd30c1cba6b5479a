//! Checking a hand-written event type against its registry schema.
//!
//! A type written by hand with `#[derive(DomainEvent)]` is checked field by
//! field while it compiles; [`matches_registry`] goes further and compares
//! the type's whole JSON Schema, as derived by [schemars] 1.x, with the
//! registry schema embedded in [`DomainEvent::SCHEMA`], using the registry's
//! compatibility engine (`tidings_codegen::compat`). One test call per type:
//!
//! ```ignore
//! #[test]
//! fn user_created_matches_the_registry() {
//!     tidings::testing::assert_matches_registry::<UserCreated>();
//! }
//! ```
//!
//! # What is checked
//!
//! Both directions, i.e. FULL compatibility between the type and its
//! schema version:
//!
//! * **serialize**: every document the type serialises is accepted by the
//!   registry schema (the registry reads the type). The type's side is
//!   schemars' *serialize* contract: `skip_serializing_if` fields are
//!   optional, `Option` fields without it are written as `null`.
//! * **deserialize**: every document the registry schema accepts
//!   deserializes into the type (the type reads the registry). The type's
//!   side is schemars' *deserialize* contract: `Option` and
//!   `#[serde(default)]` fields are optional.
//!
//! In each direction only the changes that break it are mismatches: a type
//! that writes less than the schema allows, or reads more, is fine.
//!
//! And the **entity key**: the type's [`DomainEvent::KEY_FIELD`] must be the
//! property the schema's `x-entity-key` names (or both absent), or its
//! events would be published on other subjects than the generated type's
//! ([`Incompatibility::entity_key`]).
//!
//! # Policy
//!
//! [`POLICY`] is [`Policy::Lenient`], the registry's default
//! (`schemas/tidings.toml`), and for a serde type it is the exact one:
//! serde writes only the fields a struct declares, although schemars leaves
//! the serialize schema open (no `additionalProperties: false`). A strict
//! reading would assume the type may write any undeclared property with any
//! value and fail every type whose schema declares a property the type
//! leaves out. One exception is judged strictly in the serialize direction:
//! a property the registry requires *with* a `default` but the type may
//! leave out is a mismatch, because the publisher validates payloads and a
//! validator does not fill defaults in.
//!
//! # schemars specifics
//!
//! Before comparing, the type's schema is adjusted to what serde and a JSON
//! Schema validator actually do:
//!
//! * `format`s that are not JSON Schema formats (`int32`, `uint64`,
//!   `double`, `float`, `ip`, ...) are dropped, on both sides: validators
//!   ignore them. Integer formats of 32 bits or fewer become the type's
//!   bounds (`uint32` adds `"maximum": 4294967295`), so a `u32` field
//!   against an unbounded registry integer is reported: the registry
//!   allows values the type cannot read. 64- and 128-bit integers get no
//!   bounds: JSON integers beyond 2^53 are not portable, and the generator
//!   maps unbounded registry integers to 64-bit types too.
//! * In the serialize contract, a property that is not required (a
//!   `skip_serializing_if` field) loses the `null` schemars adds for
//!   `Option`: `skip_serializing_if = "Option::is_none"` never writes
//!   `null`. (A field that *does* write `null` while being skippable, such
//!   as `Option<Option<T>>`, needs `#[schemars(...)]` to say so.)
//! * Titles, descriptions, `$schema`, `examples` and `default` values are
//!   annotations the engine ignores.
//!
//! Constraints only schemars attributes can express (`maxLength`,
//! `pattern`, `format: email`, ranges) must be declared with them
//! (`#[schemars(length(max = 254))]`, `#[schemars(email)]`,
//! `#[schemars(extend("format" = "date-time"))]`, ...); a `role` with an
//! `enum` in the registry wants a Rust enum. See `docs/hand-written.md`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};
use tidings_codegen::bundle::{self, bundle_file, BundleError};
use tidings_codegen::compat::{self, Breaks, Change, ChangeKind, CompatError, Policy};
use tidings_codegen::schema_walk::each_schema_mut;

use crate::DomainEvent;

/// The policy [`matches_registry`] compares under: lenient, as the
/// registry's default and as serde behaves (see the [module docs](self)).
pub const POLICY: Policy = Policy::Lenient;

/// The JSON Schema formats (draft 2020-12 format vocabulary). Any other
/// `format` is ignored by validators, so it is dropped before comparing.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Which way a [`Mismatch`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The registry schema rejects a document the type serialises: a
    /// publisher of this type produces events consumers of the registry
    /// schema (and the publisher's own validation) reject.
    Serialize,
    /// The registry schema accepts a document the type cannot deserialize:
    /// a consumer built on this type fails on valid events.
    Deserialize,
}

impl Direction {
    /// One line saying what breaks, naming the Rust type.
    fn describe(self, rust_type: &str) -> String {
        match self {
            Direction::Serialize => {
                format!("the registry schema rejects a document `{rust_type}` serialises")
            }
            Direction::Deserialize => {
                format!("`{rust_type}` cannot deserialize a document the registry schema accepts")
            }
        }
    }

    /// What "old" and "new" mean in the engine's messages.
    fn legend(self, rust_type: &str) -> String {
        match self {
            Direction::Serialize => {
                format!("old = what `{rust_type}` serialises, new = the registry schema")
            }
            Direction::Deserialize => {
                format!("old = the registry schema, new = what `{rust_type}` deserializes")
            }
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Serialize => "serialize",
            Direction::Deserialize => "deserialize",
        })
    }
}

/// One way a type and its registry schema disagree: a [`Change`] of the
/// compatibility engine and the direction it breaks.
///
/// In the [`Direction::Serialize`] comparison the engine's "old" schema is
/// the type's and "new" the registry's; in [`Direction::Deserialize`] it is
/// the other way round. [`registry_pointer`](Self::registry_pointer) and
/// [`type_pointer`](Self::type_pointer) sort that out.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Which way it breaks.
    pub direction: Direction,
    /// What the engine found: kind, pointers, message, example document.
    pub change: Change,
    /// Where in the payload: JSON pointers into the document (`/user_id`,
    /// `/top_of_red/value`; `*` stands for any array item or map value,
    /// `""` for the payload itself). Worked out from the two schema
    /// pointers, which may point into a shared definition (`/$defs/UserId`)
    /// rather than at the field.
    pub fields: Vec<String>,
}

impl Mismatch {
    /// JSON pointer of the keyword (or subschema) in the registry schema
    /// (bundled: shared definitions live under `/$defs`).
    pub fn registry_pointer(&self) -> &str {
        match self.direction {
            Direction::Serialize => &self.change.new_path,
            Direction::Deserialize => &self.change.old_path,
        }
    }

    /// JSON pointer of the keyword (or subschema) in the type's schema, as
    /// schemars derives it (nested types under `/$defs`).
    pub fn type_pointer(&self) -> &str {
        match self.direction {
            Direction::Serialize => &self.change.old_path,
            Direction::Deserialize => &self.change.new_path,
        }
    }

    /// The stable snake_case name of the change (`type_narrowed`).
    pub fn kind(&self) -> ChangeKind {
        self.change.kind
    }
}

/// Every mismatch between a type and its registry schema, with what
/// identifies both. Its `Display` is the full report.
#[derive(Debug, Clone, PartialEq)]
pub struct Incompatibility {
    /// The event type (`auth.user.created`).
    pub event_type: &'static str,
    /// The schema version the type claims.
    pub version: u32,
    /// The Rust type, as `std::any::type_name` spells it.
    pub rust_type: &'static str,
    /// The registry schema compared: its URI, or the file given to
    /// [`matches_registry_file`].
    pub schema: String,
    /// Every mismatch, serialize direction first.
    pub mismatches: Vec<Mismatch>,
    /// Set when the type's [`DomainEvent::KEY_FIELD`] is not the property
    /// the registry schema's `x-entity-key` names: its events would be
    /// published on other subjects (another entity-key token) than those of
    /// a type generated from the schema.
    pub entity_key: Option<KeyMismatch>,
}

/// The type's entity key and the registry's disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The type's [`DomainEvent::KEY_FIELD`].
    pub key_field: Option<&'static str>,
    /// The property the registry schema's `x-entity-key` names, if any.
    pub registry: Option<String>,
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = match self.key_field {
            Some(k) => format!("`KEY_FIELD` is {k:?}"),
            None => "the type has no `KEY_FIELD` (its subjects end in `_`)".to_string(),
        };
        let theirs = match &self.registry {
            Some(k) => format!("the registry schema's `x-entity-key` is {k:?}"),
            None => "the registry schema has no `x-entity-key`".to_string(),
        };
        write!(
            f,
            "entity key: {ours}, but {theirs}; events of this type would carry another \
             entity-key token in their subject than those of the registry's type (use \
             `#[derive(DomainEvent)]`, which reads the key from the schema, or set `KEY_FIELD` \
             and `entity_key` to the property `x-entity-key` names)"
        )
    }
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.mismatches.len() + usize::from(self.entity_key.is_some());
        writeln!(
            f,
            "`{}` does not match its registry schema, {} v{} ({}): {n} mismatch{}",
            self.rust_type,
            self.event_type,
            self.version,
            self.schema,
            if n == 1 { "" } else { "es" },
        )?;
        let rust = self.rust_type;
        let width = rust.len() + 3; // "`T`:"
        for (i, m) in self.mismatches.iter().enumerate() {
            let c = &m.change;
            writeln!(f)?;
            writeln!(
                f,
                "{}. {} ({}): {}",
                i + 1,
                c.kind.as_str(),
                m.direction,
                m.direction.describe(rust)
            )?;
            let fields: Vec<&str> = m.fields.iter().map(|p| pointer(p)).collect();
            let label = if fields.len() > 1 {
                "fields:"
            } else {
                "field:"
            };
            writeln!(f, "   {label:<width$}  {}", fields.join(", "))?;
            writeln!(
                f,
                "   {:<width$}  {}",
                "registry:",
                pointer(m.registry_pointer())
            )?;
            writeln!(
                f,
                "   {:<width$}  {}",
                format!("`{rust}`:"),
                pointer(m.type_pointer())
            )?;
            writeln!(f, "   {} ({})", c.message, m.direction.legend(rust))?;
            match &c.example {
                Some(example) => writeln!(f, "   example: {example}")?,
                None => writeln!(f, "   example: none proven")?,
            }
        }
        if let Some(key) = &self.entity_key {
            writeln!(f)?;
            writeln!(f, "{}. {key}", self.mismatches.len() + 1)?;
        }
        writeln!(f)?;
        write!(
            f,
            "Checked both ways (FULL, {POLICY} policy): what `{rust}` serialises must be valid \
             against the registry schema, and every document the registry schema accepts must \
             deserialize into `{rust}`. See docs/hand-written.md."
        )
    }
}

/// A JSON pointer as shown in reports (`""` is the root).
fn pointer(p: &str) -> &str {
    if p.is_empty() {
        "(the payload)"
    } else {
        p
    }
}

/// Why [`matches_registry`] failed: the type does not match, or the
/// schemas could not be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryMismatch {
    /// The type and the registry schema disagree; the report lists every
    /// mismatch.
    #[error("{0}")]
    Incompatible(Box<Incompatibility>),
    /// The registry schema is not a JSON document (a hand-written
    /// `DomainEvent::SCHEMA`, say).
    #[error("{event_type} v{version}: the registry schema {schema} is not valid JSON: {source}")]
    InvalidSchema {
        /// The event type.
        event_type: &'static str,
        /// The schema version.
        version: u32,
        /// The schema's URI or file.
        schema: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The schema file given to [`matches_registry_file`] could not be
    /// read or bundled.
    #[error("{event_type} v{version}: cannot bundle the registry schema: {source}")]
    Bundle {
        /// The event type.
        event_type: &'static str,
        /// The schema version.
        version: u32,
        /// What went wrong, naming the file and the `$ref`.
        #[source]
        source: Box<BundleError>,
    },
    /// The compatibility engine could not compare the schemas.
    #[error("{event_type} v{version}: cannot compare `{rust_type}` with {schema}: {source}")]
    Compare {
        /// The event type.
        event_type: &'static str,
        /// The schema version.
        version: u32,
        /// The Rust type.
        rust_type: &'static str,
        /// The schema's URI or file.
        schema: String,
        /// The engine's error.
        #[source]
        source: Box<CompatError>,
    },
}

/// Checks that `T`'s JSON Schema (derived by schemars) and its registry
/// schema ([`DomainEvent::SCHEMA`]) accept the same documents where it
/// matters: everything `T` serialises is valid against the registry schema,
/// and everything the registry schema accepts deserializes into `T`.
///
/// Compares under [`POLICY`] (lenient). See the [module docs](self) for
/// what is normalised first. Returns every mismatch at once in
/// [`RegistryMismatch::Incompatible`].
pub fn matches_registry<T: DomainEvent + JsonSchema>() -> Result<(), RegistryMismatch> {
    let registry: Value =
        serde_json::from_str(T::SCHEMA).map_err(|source| RegistryMismatch::InvalidSchema {
            event_type: T::EVENT_TYPE,
            version: T::SCHEMA_VERSION,
            schema: T::SCHEMA_URI.to_string(),
            source,
        })?;
    compare::<T>(registry, T::SCHEMA_URI.to_string())
}

/// Like [`matches_registry`], but against the schema file at `path`
/// (bundled with its cross-file `$ref`s) rather than the schema embedded
/// in `T`: to check a type against a registry file directly, for example
/// the next version before the type moves to it.
pub fn matches_registry_file<T: DomainEvent + JsonSchema>(
    path: impl AsRef<Path>,
) -> Result<(), RegistryMismatch> {
    let path = path.as_ref();
    let registry = bundle_file(path).map_err(|source| RegistryMismatch::Bundle {
        event_type: T::EVENT_TYPE,
        version: T::SCHEMA_VERSION,
        source: Box::new(source),
    })?;
    compare::<T>(registry, path.display().to_string())
}

/// Asserts [`matches_registry`]: panics with the full report (every
/// mismatch with its pointers, explanation and example document) when `T`
/// does not match its registry schema or the schemas cannot be compared.
///
/// # Panics
///
/// When [`matches_registry`] returns an error; that is the assertion.
#[track_caller]
pub fn assert_matches_registry<T: DomainEvent + JsonSchema>() {
    if let Err(e) = matches_registry::<T>() {
        panic!("{e}");
    }
}

/// Asserts [`matches_registry_file`].
///
/// # Panics
///
/// When [`matches_registry_file`] returns an error; that is the assertion.
#[track_caller]
pub fn assert_matches_registry_file<T: DomainEvent + JsonSchema>(path: impl AsRef<Path>) {
    if let Err(e) = matches_registry_file::<T>(path) {
        panic!("{e}");
    }
}

fn compare<T: DomainEvent + JsonSchema>(
    mut registry: Value,
    schema: String,
) -> Result<(), RegistryMismatch> {
    let rust_type = std::any::type_name::<T>();
    let compare_error = |source| RegistryMismatch::Compare {
        event_type: T::EVENT_TYPE,
        version: T::SCHEMA_VERSION,
        rust_type,
        schema: schema.clone(),
        source: Box::new(source),
    };
    each_schema_mut(&mut registry, &mut drop_unknown_format);
    let written = type_schema::<T>(Direction::Serialize);
    let read = type_schema::<T>(Direction::Deserialize);

    let mut mismatches = Vec::new();
    // The registry reads what T writes: T's serialize schema is "old".
    for change in compat::diff(&written, &registry, POLICY).map_err(compare_error)? {
        let breaks = change.breaks == Breaks::Readers
            // The publisher's validator does not fill defaults in.
            || change.kind == ChangeKind::RequiredPropertyWithDefaultAdded;
        if breaks {
            let mut change = change;
            if change.kind == ChangeKind::RequiredPropertyWithDefaultAdded {
                let what = change
                    .message
                    .strip_suffix(": readers fill it in for old documents")
                    .unwrap_or(&change.message);
                change.message = format!(
                    "{what}, which old documents may leave out: a validator does not fill \
                     defaults in, so the registry schema rejects them"
                );
            }
            let fields = fields(
                &written,
                &change.old_path,
                &registry,
                &change.new_path,
                &change,
            );
            mismatches.push(Mismatch {
                direction: Direction::Serialize,
                change,
                fields,
            });
        }
    }
    // T reads what the registry allows: the registry schema is "old".
    for change in compat::diff(&registry, &read, POLICY).map_err(compare_error)? {
        if change.breaks == Breaks::Readers {
            let fields = fields(
                &read,
                &change.new_path,
                &registry,
                &change.old_path,
                &change,
            );
            mismatches.push(Mismatch {
                direction: Direction::Deserialize,
                change,
                fields,
            });
        }
    }
    let entity_key = key_mismatch::<T>(&registry);
    if mismatches.is_empty() && entity_key.is_none() {
        return Ok(());
    }
    Err(RegistryMismatch::Incompatible(Box::new(Incompatibility {
        event_type: T::EVENT_TYPE,
        version: T::SCHEMA_VERSION,
        rust_type,
        schema,
        mismatches,
        entity_key,
    })))
}

/// `T::KEY_FIELD` against the registry schema's `x-entity-key`.
fn key_mismatch<T: DomainEvent>(registry: &Value) -> Option<KeyMismatch> {
    let declared = registry
        .get(tidings_codegen::registry::lock::ENTITY_KEY)
        .and_then(Value::as_str);
    (T::KEY_FIELD != declared).then(|| KeyMismatch {
        key_field: T::KEY_FIELD,
        registry: declared.map(str::to_string),
    })
}

/// `T`'s draft 2020-12 schema for one serde direction, normalised to what a
/// validator and serde do (see the module docs).
fn type_schema<T: JsonSchema>(direction: Direction) -> Value {
    let settings = SchemaSettings::draft2020_12();
    let settings = match direction {
        Direction::Serialize => settings.for_serialize(),
        Direction::Deserialize => settings.for_deserialize(),
    };
    let mut schema: Value = settings.into_generator().into_root_schema_for::<T>().into();
    each_schema_mut(&mut schema, &mut |m| {
        integer_format_bounds(m);
        drop_unknown_format(m);
        if direction == Direction::Serialize {
            skipped_fields_not_null(m);
        }
    });
    schema
}

/// Drops a `format` that JSON Schema does not define (validators ignore it).
fn drop_unknown_format(schema: &mut Map<String, Value>) {
    let unknown = match schema.get("format") {
        Some(Value::String(format)) => !STANDARD_FORMATS.contains(&format.as_str()),
        _ => false,
    };
    if unknown {
        schema.remove("format");
    }
}

/// Turns schemars' integer formats of 32 bits or fewer into the bounds the
/// Rust type has, keeping tighter bounds already there.
fn integer_format_bounds(schema: &mut Map<String, Value>) {
    let (min, max): (i64, i64) = match schema.get("format").and_then(Value::as_str) {
        Some("int8") => (i8::MIN.into(), i8::MAX.into()),
        Some("int16") => (i16::MIN.into(), i16::MAX.into()),
        Some("int32") => (i32::MIN.into(), i32::MAX.into()),
        Some("uint8") => (0, u8::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        _ => return,
    };
    // Keep a tighter bound a `#[schemars(range(..))]` already set.
    let looser_min = match schema.get("minimum").and_then(Value::as_f64) {
        Some(current) => current < min as f64,
        None => true,
    };
    if looser_min {
        schema.insert("minimum".into(), min.into());
    }
    let looser_max = match schema.get("maximum").and_then(Value::as_f64) {
        Some(current) => current > max as f64,
        None => true,
    };
    if looser_max {
        schema.insert("maximum".into(), max.into());
    }
}

/// In a serialize-contract object schema, removes the `null` schemars adds
/// for `Option` from properties that are not required: such a property is
/// skippable (`skip_serializing_if`), and `Option::is_none` skips instead of
/// writing `null`.
fn skipped_fields_not_null(schema: &mut Map<String, Value>) {
    let required: Vec<String> = match schema.get("required") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if !required.contains(name) {
            without_null(property);
        }
    }
}

/// Removes `null` from a schema that also allows other values: from a
/// `type` array (and the `enum` schemars extends with it), or a `{"type":
/// "null"}` branch of an `anyOf`/`oneOf`.
fn without_null(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Array(types)) = map.get_mut("type") {
        if types.len() > 1 && types.iter().any(|t| t == "null") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                map.insert("type".into(), only);
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                if values.len() > 1 {
                    values.retain(|v| !v.is_null());
                }
            }
        }
        return;
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get_mut(key) else {
            continue;
        };
        let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
        if branches.len() > 1 && branches.iter().any(is_null) {
            branches.retain(|b| !is_null(b));
            if branches.len() == 1 && map.len() == 1 {
                if let Some(Value::Array(mut rest)) = map.remove(key) {
                    *schema = rest.remove(0);
                }
                return;
            }
        }
    }
}

/// The payload fields a change is about: the document paths at which the
/// type's and the registry's subschemas (at `type_ptr`, `registry_ptr`)
/// apply, those both agree on first. A change about a named property
/// (`property "role" became required`, reported at `/required`) names that
/// property.
fn fields(
    type_schema: &Value,
    type_ptr: &str,
    registry: &Value,
    registry_ptr: &str,
    change: &Change,
) -> Vec<String> {
    let named = property_name(&change.message);
    let side = |schema: &Value, ptr: &str| -> Vec<String> {
        let Some(name) = &named else {
            return document_paths(schema, ptr);
        };
        // The object holding the property: strip `/properties/<name>` or the
        // object keyword the change was reported at.
        let mut at_property = String::from("/properties/");
        bundle::push_token(&mut at_property, name);
        let object = match ptr.strip_suffix(at_property.as_str()) {
            Some(object) => object,
            None => match ptr.rsplit_once('/') {
                Some((object, keyword)) if OBJECT_KEYWORDS.contains(&keyword) => object,
                _ => ptr,
            },
        };
        let mut paths = document_paths(schema, object);
        for path in &mut paths {
            path.push('/');
            bundle::push_token(path, name);
        }
        paths
    };
    let ours = side(type_schema, type_ptr);
    let theirs = side(registry, registry_ptr);
    let both: Vec<String> = ours
        .iter()
        .filter(|p| theirs.contains(p))
        .cloned()
        .collect();
    if !both.is_empty() {
        both
    } else if !ours.is_empty() {
        ours
    } else {
        theirs
    }
}

/// Keywords of an object schema a property change may be reported at.
const OBJECT_KEYWORDS: &[&str] = &[
    "required",
    "properties",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "propertyNames",
    "minProperties",
    "maxProperties",
];

/// The property an engine message starts with (`property "role" ...`).
fn property_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("property \"")?;
    let mut end = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let quoted = &rest[..end?];
    Some(serde_json::from_str(&format!("\"{quoted}\"")).unwrap_or_else(|_| quoted.to_string()))
}

/// Document paths at which the subschema at `target` (or, for a keyword's
/// pointer, the subschema holding it) applies, following local `$ref`s.
fn document_paths(schema: &Value, target: &str) -> Vec<String> {
    let mut reached: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    walk_documents(schema, schema, String::new(), String::new(), &mut reached);
    let mut at = target;
    loop {
        if let Some(paths) = reached.get(at) {
            return paths.iter().cloned().collect();
        }
        match at.rfind('/') {
            Some(i) => at = &at[..i],
            None => return Vec::new(),
        }
    }
}

/// Most document nesting followed (recursive types terminate here).
const MAX_DOCUMENT_DEPTH: usize = 16;

fn walk_documents(
    root: &Value,
    node: &Value,
    ptr: String,
    doc: String,
    reached: &mut BTreeMap<String, BTreeSet<String>>,
) {
    if doc.matches('/').count() > MAX_DOCUMENT_DEPTH
        || !reached.entry(ptr.clone()).or_default().insert(doc.clone())
    {
        return;
    }
    let Value::Object(map) = node else {
        return;
    };
    let child = |key: &str| {
        let mut p = ptr.clone();
        p.push('/');
        bundle::push_token(&mut p, key);
        p
    };
    let deeper = |token: &str| {
        let mut d = doc.clone();
        d.push('/');
        bundle::push_token(&mut d, token);
        d
    };
    for (key, value) in map {
        match key.as_str() {
            "$ref" => {
                if let Some(target) = value.as_str().and_then(|r| r.strip_prefix('#')) {
                    if let Some(resolved) = bundle::resolve_pointer(root, target) {
                        walk_documents(root, resolved, target.to_string(), doc.clone(), reached);
                    }
                }
            }
            "properties" | "patternProperties" | "dependentSchemas" => {
                if let Value::Object(children) = value {
                    for (name, sub) in children {
                        let mut p = child(key);
                        p.push('/');
                        bundle::push_token(&mut p, name);
                        let d = match key.as_str() {
                            "properties" => deeper(name),
                            "patternProperties" => deeper("*"),
                            _ => doc.clone(),
                        };
                        walk_documents(root, sub, p, d, reached);
                    }
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" | "items" => match value {
                Value::Array(children) => {
                    for (i, sub) in children.iter().enumerate() {
                        let p = format!("{}/{i}", child(key));
                        let d = match key.as_str() {
                            "prefixItems" | "items" => deeper(&i.to_string()),
                            _ => doc.clone(),
                        };
                        walk_documents(root, sub, p, d, reached);
                    }
                }
                sub if key == "items" => {
                    walk_documents(root, sub, child(key), deeper("*"), reached)
                }
                _ => {}
            },
            "additionalProperties"
            | "unevaluatedProperties"
            | "additionalItems"
            | "unevaluatedItems"
            | "contains" => walk_documents(root, value, child(key), deeper("*"), reached),
            "not" | "if" | "then" | "else" => {
                walk_documents(root, value, child(key), doc.clone(), reached)
            }
            _ => {}
        }
    }
}
