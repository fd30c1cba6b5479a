//! The [`DomainEvent`] trait: what the runtime needs to know about an event
//! type. `#[derive(DomainEvent)]` and the generated catalog implement it; it
//! can also be implemented by hand.
use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An event type with its registry identity: name, schema version, stream,
/// schema, and how its NATS subject is built.
///
/// Events are published on `EVENT_TYPE.ORGANIZATION.KEY`
/// (`auth.user.created.org-42.u-123`), where `KEY` is the entity key from
/// [`entity_key`](Self::entity_key) or `_` when the type has none. Every
/// subject has the same five tokens, so consumers and permissions can filter
/// by type, by tenant or by entity on the server (see [`crate::subject`]).
pub trait DomainEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// `service.entity.action`, for example `auth.user.created`.
    const EVENT_TYPE: &'static str;
    /// The schema version this Rust type was built from (1 or more).
    const SCHEMA_VERSION: u32;
    /// The JetStream stream that stores this type (`AUTH_EVENTS`).
    const STREAM: &'static str;
    /// The JSON Schema of this version, self-contained (cross-file `$ref`s
    /// already bundled), embedded in the binary. Payloads are validated
    /// against it with a validator compiled once per type.
    const SCHEMA: &'static str;
    /// The URI published as the CloudEvents `dataschema` attribute, usually
    /// the schema's `$id`.
    const SCHEMA_URI: &'static str;
    /// The name of the field the entity key comes from, if the type has one.
    const KEY_FIELD: Option<&'static str> = None;

    /// The entity key of this event (a subject token), if the type has one.
    /// Events with the same key are ordered relative to each other.
    fn entity_key(&self) -> Option<Cow<'_, str>> {
        None
    }
}
