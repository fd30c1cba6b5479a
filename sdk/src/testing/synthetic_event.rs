//! Handlers called without a server: a synthetic [`Event`] and the call the
//! subscriber makes.
use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::DomainEvent;
use crate::publish::default_source;
use crate::subject::subject_with_key;
use crate::subscribe::{invoke, Event, EventMeta, Handler, HandlerFailure};
use crate::token::{InvalidToken, OrganizationId};

/// The tenant of a [`SyntheticEvent`] unless one is set.
pub const DEFAULT_ORGANIZATION: &str = "org-test";

/// The consumer group of a [`SyntheticEvent`] unless one is set.
pub const DEFAULT_GROUP: &str = "test";

/// Builds an [`Event`] as a subscriber would deliver it, metadata included,
/// to call a handler with in a unit test (see [`call_handler`]). Defaults:
/// a new UUID v7 id, tenant [`DEFAULT_ORGANIZATION`], time now, the type's
/// own schema version, source `/tidings/<service>`, the payload's entity key,
/// stream sequence 1, first delivery, group [`DEFAULT_GROUP`].
///
/// ```
/// # #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// # struct Pinged { key: String }
/// # impl tidings::DomainEvent for Pinged {
/// #     const EVENT_TYPE: &'static str = "demo.ping.sent";
/// #     const SCHEMA_VERSION: u32 = 1;
/// #     const STREAM: &'static str = "DEMO_EVENTS";
/// #     const SCHEMA: &'static str = r#"{"type": "object"}"#;
/// #     const SCHEMA_URI: &'static str = "";
/// # }
/// use tidings::testing::SyntheticEvent;
///
/// let event = SyntheticEvent::new(Pinged { key: "k".into() })
///     .organization("org-42")
///     .delivery(3)
///     .build()?;
/// assert_eq!(event.meta.subject, "demo.ping.sent.org-42._");
/// assert_eq!(event.meta.delivery, 3);
/// # Ok::<(), tidings::InvalidToken>(())
/// ```
#[derive(Debug, Clone)]
pub struct SyntheticEvent<E> {
    payload: E,
    event_id: Uuid,
    organization: String,
    time: OffsetDateTime,
    schema_version: u32,
    source: Option<String>,
    entity_key: Option<Option<String>>,
    extensions: BTreeMap<String, serde_json::Value>,
    stream_sequence: u64,
    stored_at: Option<OffsetDateTime>,
    delivery: u32,
    group: String,
}

impl<E: DomainEvent> SyntheticEvent<E> {
    /// An event carrying `payload`, with the defaults above.
    pub fn new(payload: E) -> Self {
        Self {
            payload,
            event_id: Uuid::now_v7(),
            organization: DEFAULT_ORGANIZATION.to_string(),
            time: OffsetDateTime::now_utc(),
            schema_version: E::SCHEMA_VERSION,
            source: None,
            entity_key: None,
            extensions: BTreeMap::new(),
            stream_sequence: 1,
            stored_at: None,
            delivery: 1,
            group: DEFAULT_GROUP.to_string(),
        }
    }

    /// The event id.
    pub fn event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// The tenant (checked by [`build`](Self::build)).
    pub fn organization(mut self, organization: &str) -> Self {
        self.organization = organization.to_string();
        self
    }

    /// When the event happened; also when it was stored, unless
    /// [`stored_at`](Self::stored_at) says otherwise.
    pub fn time(mut self, time: OffsetDateTime) -> Self {
        self.time = time;
        self
    }

    /// The schema version it was published with (the payload stays `E`, as
    /// after an upcast).
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// The producer (CloudEvents `source`).
    pub fn source(mut self, source: &str) -> Self {
        self.source = Some(source.to_string());
        self
    }

    /// The entity key, instead of the payload's (checked by [`build`](Self::build)).
    pub fn entity_key(mut self, key: Option<&str>) -> Self {
        self.entity_key = Some(key.map(str::to_string));
        self
    }

    /// A CloudEvents extension attribute (`traceparent`, say).
    pub fn extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_string(), value);
        self
    }

    /// Its stream sequence.
    pub fn stream_sequence(mut self, sequence: u64) -> Self {
        self.stream_sequence = sequence;
        self
    }

    /// When the stream stored it.
    pub fn stored_at(mut self, stored_at: OffsetDateTime) -> Self {
        self.stored_at = Some(stored_at);
        self
    }

    /// How many times it has been delivered, counting this one (1: first).
    pub fn delivery(mut self, delivery: u32) -> Self {
        self.delivery = delivery;
        self
    }

    /// The consumer group.
    pub fn group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }

    /// The event, its subject built as the publisher builds it.
    /// [`Event::progress`] is a no-op on it.
    ///
    /// # Errors
    /// The tenant or the entity key cannot be a subject token.
    pub fn build(self) -> Result<Event<E>, InvalidToken> {
        let organization_id = OrganizationId::new(self.organization)?;
        let entity_key = match self.entity_key {
            Some(key) => key,
            None => self.payload.entity_key().map(|k| k.into_owned()),
        };
        let subject = subject_with_key(E::EVENT_TYPE, &organization_id, entity_key.as_deref())?;
        let source = self.source.unwrap_or_else(|| default_source(E::EVENT_TYPE));
        let meta = EventMeta {
            event_id: self.event_id,
            event_type: E::EVENT_TYPE.to_string(),
            organization_id,
            time: self.time,
            schema_version: self.schema_version,
            source,
            entity_key,
            extensions: self.extensions,
            subject,
            stream: E::STREAM.to_string(),
            stream_sequence: self.stream_sequence,
            stored_at: self.stored_at.unwrap_or(self.time),
            delivery: self.delivery,
            group: self.group,
        };
        Ok(Event::new(self.payload, meta, None))
    }
}

/// Calls `handler` with `event` as the subscriber calls it: the same
/// [`Handler`] trait, and a panic caught and reported as a failure (which
/// the subscriber would NAK, then dead-letter after the last delivery).
///
/// # Errors
/// The handler's error ([`HandlerFailure::Error`], downcast it to check
/// which), or its panic ([`HandlerFailure::Panicked`]).
pub async fn call_handler<E, H: Handler<E>>(
    handler: &H,
    event: Event<E>,
) -> Result<(), HandlerFailure> {
    invoke(handler, event).await
}
