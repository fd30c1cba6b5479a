//! Reading a payload written as any schema version of an event type as the
//! one version a reader is built on.
//!
//! A subscriber built on version N receives events published with older
//! versions as version N: the payload is checked against the schema of the
//! version it was written with, read as that version's type and upcast step
//! by step. The generated catalog implements [`ReadAnyVersion`] for every
//! version of every event type (see `docs/generate.md`); a hand-written
//! `#[derive(DomainEvent)]` type gets the one-version reading below.
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::DomainEvent;
use crate::schema::{self, SchemaError, Violation};

/// Why a payload could not be read as the requested version.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The payload claims a version the reader does not know: 0, or an older
    /// version of a type that only knows its own.
    #[error("{event_type} v{reader} cannot read schema version {version}")]
    UnknownVersion {
        /// `service.entity.action`.
        event_type: &'static str,
        /// The version it claims.
        version: u32,
        /// The version of the reader.
        reader: u32,
    },
    /// The payload breaks the schema of the version it claims.
    #[error(
        "not a valid {event_type} v{version} payload: {}",
        crate::schema::describe(violations)
    )]
    Violations {
        /// `service.entity.action`.
        event_type: &'static str,
        /// The version it claims.
        version: u32,
        /// Every violation, with its JSON pointer.
        violations: Vec<Violation>,
    },
    /// The payload does not fit the Rust type of the version it claims.
    #[error("not a valid {event_type} v{version} payload: {source}")]
    Invalid {
        /// `service.entity.action`.
        event_type: &'static str,
        /// The version it claims.
        version: u32,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The type's embedded schema does not compile (a bug in the type).
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Reads a payload written as any version of `Self`'s event type as `Self`.
///
/// The default reads `Self`'s own version (checked against its schema) and
/// newer versions directly as `Self` (the forward direction: members `Self`
/// does not know are ignored), and refuses older versions. The generated
/// catalog overrides it to read older versions too, each checked against its
/// own schema and upcast step by step.
pub trait ReadAnyVersion: DomainEvent {
    /// Reads `data`, written as `version`, as `Self`.
    ///
    /// # Errors
    /// `data` is not a valid document of `version`, or `version` cannot be read.
    fn read_any_version(version: u32, data: serde_json::Value) -> Result<Self, ReadError> {
        if version == Self::SCHEMA_VERSION {
            decode::<Self>(version, data)
        } else if version > Self::SCHEMA_VERSION {
            read_newer::<Self>(version, data)
        } else {
            Err(ReadError::UnknownVersion {
                event_type: Self::EVENT_TYPE,
                version,
                reader: Self::SCHEMA_VERSION,
            })
        }
    }
}

/// Checks `data` against `T`'s schema and deserializes it as `T` (`T` is the
/// type of the version `data` was written with).
///
/// # Errors
/// [`ReadError::Violations`] or [`ReadError::Invalid`].
pub fn decode<T: DomainEvent>(version: u32, data: serde_json::Value) -> Result<T, ReadError> {
    let violations = schema::violations::<T>(&data)?;
    if !violations.is_empty() {
        return Err(ReadError::Violations {
            event_type: T::EVENT_TYPE,
            version,
            violations,
        });
    }
    serde_json::from_value(data).map_err(|source| ReadError::Invalid {
        event_type: T::EVENT_TYPE,
        version,
        source,
    })
}

/// Reads a payload of a newer version directly as `T`, without `T`'s schema
/// (which a newer document may legitimately break, for example with a member
/// a closed older model did not declare).
///
/// # Errors
/// [`ReadError::Invalid`] when it does not fit `T`.
pub fn read_newer<T: DomainEvent>(version: u32, data: serde_json::Value) -> Result<T, ReadError> {
    serde_json::from_value(data).map_err(|source| ReadError::Invalid {
        event_type: T::EVENT_TYPE,
        version,
        source,
    })
}

/// Converts one version into the next through JSON.
///
/// # Errors
/// [`ReadError::Invalid`] when the next version rejects it (the
/// compatibility check rules that out for the modes that use it).
pub fn reencode<A: Serialize, B: DeserializeOwned>(
    event_type: &'static str,
    version: u32,
    value: &A,
) -> Result<B, ReadError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|source| ReadError::Invalid {
            event_type,
            version,
            source,
        })
}

/// One upcast step the generator could not write: `Self` built from the
/// previous version `Old` of its event type.
///
/// Implemented for every `New: From<Old>`, so the crate that includes the
/// generated code provides a step by writing `impl From<Old> for New`.
/// Generated readers call it only for those steps (`docs/generate.md`,
/// *Reading older versions*); while the `From` impl is missing, the build
/// fails with a message naming the impl to write.
#[diagnostic::on_unimplemented(
    message = "the upcast from `{Old}` to `{Self}` is missing: write `impl From<{Old}> for {Self}`",
    label = "`{Self}` has no `From<{Old}>`",
    note = "the generator could not write this step (the event type's module doc and `tidings generate` say why) and the compatibility mode does not prove that `{Self}` reads `{Old}` documents",
    note = "write `impl From<{Old}> for {Self}` in the crate that includes the generated code (for `events`, in src/upcasts.rs with `mod upcasts;` in src/lib.rs); see docs/generate.md, *Reading older versions*"
)]
pub trait UpcastFrom<Old>: Sized {
    /// The next version, built from the previous one.
    fn upcast_from(old: Old) -> Self;
}

impl<Old, New: From<Old>> UpcastFrom<Old> for New {
    fn upcast_from(old: Old) -> Self {
        New::from(old)
    }
}
