//! What a handler receives: the typed payload and its metadata.
use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::stall::Progress;
use crate::envelope::Envelope;
use crate::token::OrganizationId;

/// The metadata of a delivered event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    /// The event id (CloudEvents `id`).
    pub event_id: Uuid,
    /// `service.entity.action`.
    pub event_type: String,
    /// The tenant.
    pub organization_id: OrganizationId,
    /// When the event happened (CloudEvents `time`).
    pub time: OffsetDateTime,
    /// The schema version the payload was published with (the handler's
    /// payload is always its own version, upcast if older).
    pub schema_version: u32,
    /// The producer (CloudEvents `source`).
    pub source: String,
    /// The entity key (CloudEvents `subject`), where the type has one.
    pub entity_key: Option<String>,
    /// Other CloudEvents extension attributes (for example `traceparent`).
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The NATS subject, `TYPE.ORG.KEY`.
    pub subject: String,
    /// The stream that stores it.
    pub stream: String,
    /// Its stream sequence.
    pub stream_sequence: u64,
    /// When the stream stored it.
    pub stored_at: OffsetDateTime,
    /// How many times it has been handed to a handler of this group,
    /// counting this time (1 on the first delivery).
    pub delivery: u32,
    /// The consumer group.
    pub group: String,
}

impl EventMeta {
    /// The metadata of `envelope`, stored at `stream_sequence` of `stream`,
    /// and its payload: the envelope's attributes move into the metadata.
    pub(crate) fn split(
        envelope: Envelope,
        subject: &str,
        stream: &str,
        stream_sequence: u64,
        stored_at: OffsetDateTime,
        delivery: u32,
        group: &str,
    ) -> (Self, serde_json::Value) {
        let meta = Self {
            event_id: envelope.id,
            event_type: envelope.event_type,
            organization_id: envelope.organization_id,
            time: envelope.time,
            schema_version: envelope.schema_version,
            source: envelope.source,
            entity_key: envelope.subject,
            extensions: envelope.extensions,
            subject: subject.to_string(),
            stream: stream.to_string(),
            stream_sequence,
            stored_at,
            delivery,
            group: group.to_string(),
        };
        (meta, envelope.data)
    }
}

/// A delivered event: the payload as the handler's type, and its metadata.
pub struct Event<E> {
    /// The payload, read as the handler's schema version.
    pub payload: E,
    /// Where it comes from and how often it was delivered.
    pub meta: EventMeta,
    progress: Option<Progress>,
}

impl<E> Event<E> {
    pub(crate) fn new(payload: E, meta: EventMeta, progress: Option<Progress>) -> Self {
        Self {
            payload,
            meta,
            progress,
        }
    }

    /// Tells the server the handler is still working, so it does not
    /// redeliver the event when the ack wait runs out. Call it from long
    /// handlers more often than the ack wait (30 s by default): a handler
    /// that runs past it silently is taken for hung (its event goes to
    /// another instance; if every handler of the instance is in that state,
    /// the instance stalls, see `Health::Stalled`). A no-op for replayed
    /// events.
    ///
    /// # Errors
    /// The progress ack could not be sent (the connection is gone).
    pub async fn progress(&self) -> Result<(), async_nats::Error> {
        match &self.progress {
            Some(progress) => progress.send().await,
            None => Ok(()),
        }
    }
}

impl<E: std::fmt::Debug> std::fmt::Debug for Event<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("payload", &self.payload)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}
