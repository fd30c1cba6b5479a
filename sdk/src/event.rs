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

/// A type whose values can be an event's entity key (the subject's last
/// token): what `#[derive(DomainEvent)]` takes as the key field besides
/// the string types, `Uuid` and the integers it knows by name.
///
/// The generator implements it for the registry's scalar newtypes over a
/// string, a UUID or an integer (`events::common::UserId`), so an
/// `x-entity-key` property that refers to such a shared definition keeps
/// that type. Implement it for your own id newtypes the same way. Whether a
/// key *value* is a valid subject token is checked when publishing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an entity key: it does not implement `tidings::EntityKey`",
    note = "an entity key is a string (`String`, `&str`, `Cow<str>`, `Box<str>`, `Arc<str>`, `Rc<str>`), a `Uuid`, an integer, or a newtype over one that implements `tidings::EntityKey` (the generator implements it for the registry's id newtypes, such as `common::UserId`)"
)]
pub trait EntityKey {
    /// The key as subject text.
    fn key_token(&self) -> Cow<'_, str>;
}

impl EntityKey for String {
    fn key_token(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl EntityKey for str {
    fn key_token(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl EntityKey for uuid::Uuid {
    fn key_token(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl EntityKey for $t {
            fn key_token(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
        }
    )*};
}
integer_keys!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
integer_keys!(
    std::num::NonZeroI8,
    std::num::NonZeroI16,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64
);
