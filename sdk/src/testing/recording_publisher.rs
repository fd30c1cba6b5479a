//! A publisher for a service's unit tests: no server, every event recorded.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::envelope::{DecodeError, Envelope};
use crate::event::DomainEvent;
use crate::publish::{
    ConfigError, Encoder, Prepared, Publish, PublishError, Published, PublisherConfig,
};

/// nats-server's default `max_payload` (1 MiB), the size limit a
/// [`RecordingPublisher`] checks unless told another.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// A [`Publish`] implementation that stores nothing on a server: it
/// validates and encodes every event with the same [`Encoder`] as the real
/// [`Publisher`](crate::Publisher) (so an invalid payload is refused with
/// the same [`PublishError::InvalidPayload`], an oversized one with
/// [`PublishError::TooLarge`]), then records it instead of sending it.
///
/// Recorded events are read back with [`recorded`](Self::recorded) (ids,
/// subjects, tenants, headers, the envelope) and, typed, with
/// [`payloads`](Self::payloads). [`fail_next`](Self::fail_next) makes the
/// next send fail with an error of the test's choosing, to exercise a
/// service's error paths. Publishing an event id already recorded is
/// answered `duplicate` with the first copy's sequence and not recorded
/// again, as a stream does within its duplicate window.
///
/// ```
/// use tidings::testing::RecordingPublisher;
///
/// let publisher = RecordingPublisher::new();
/// assert!(publisher.recorded().is_empty());
/// ```
#[derive(Debug)]
pub struct RecordingPublisher {
    encoder: Encoder,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    recorded: Vec<RecordedEvent>,
    failures: VecDeque<PublishError>,
    sequences: HashMap<&'static str, u64>,
}

/// One event a [`RecordingPublisher`] accepted: what the real publisher
/// would have sent.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// The event id (CloudEvents `id`, `Nats-Msg-Id`).
    pub event_id: Uuid,
    /// The event type.
    pub event_type: &'static str,
    /// The subject, `TYPE.ORG.KEY`.
    pub subject: String,
    /// The tenant.
    pub organization_id: String,
    /// The stream its type declares.
    pub stream: &'static str,
    /// Its sequence in that stream, counted from 1 per stream.
    pub sequence: u64,
    /// The headers (`Nats-Msg-Id`, `ce-` attributes).
    pub headers: HeaderMap,
    /// The structured-mode CloudEvents body.
    pub body: Bytes,
}

impl RecordedEvent {
    /// The envelope: time, source, entity key, extensions, payload.
    ///
    /// # Errors
    /// The body is not a CloudEvents event (not expected: the encoder wrote it).
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        Envelope::decode(&self.body)
    }

    /// The payload as `E`, read as a subscriber reads it.
    ///
    /// # Errors
    /// The event is of another type or version, or its payload does not
    /// read as `E`.
    pub fn payload<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        self.envelope()?.data_as::<E>()
    }
}

impl Default for RecordingPublisher {
    fn default() -> Self {
        Self::from_parts(PublisherConfig::default(), DEFAULT_MAX_PAYLOAD)
    }
}

impl RecordingPublisher {
    /// A recording publisher with the default [`PublisherConfig`]
    /// (validation on) and nats-server's default `max_payload`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recording publisher with the settings of the service's real
    /// publisher and the `max_payload` of its server (0: no limit).
    ///
    /// # Errors
    /// The settings are refused, as [`Publisher::new`](crate::Publisher::new) refuses them.
    pub fn with_config(config: PublisherConfig, max_payload: usize) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_parts(config, max_payload))
    }

    fn from_parts(config: PublisherConfig, max_payload: usize) -> Self {
        Self {
            encoder: Encoder::new(Arc::new(config), max_payload),
            state: Mutex::default(),
        }
    }

    /// Makes the next send fail with `error` (calls queue up: each failure
    /// answers one event, in order). An event that fails to validate or
    /// encode fails before the send and does not use a queued failure.
    pub fn fail_next(&self, error: PublishError) {
        self.state().failures.push_back(error);
    }

    /// Every event recorded so far, in the order they were sent.
    pub fn recorded(&self) -> Vec<RecordedEvent> {
        self.state().recorded.clone()
    }

    /// The payloads of the recorded events of type `E`, in order.
    ///
    /// # Errors
    /// A recorded event of `E`'s type does not read as `E` (another
    /// schema version, say).
    pub fn payloads<E: DomainEvent>(&self) -> Result<Vec<E>, DecodeError> {
        self.state()
            .recorded
            .iter()
            .filter(|r| r.event_type == E::EVENT_TYPE)
            .map(RecordedEvent::payload::<E>)
            .collect()
    }

    /// Forgets the recorded events and the queued failures.
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// The state; a test that panicked while holding it leaves it usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, prepared: Prepared) -> Result<Published, PublishError> {
        let mut state = self.state();
        if let Some(error) = state.failures.pop_front() {
            return Err(error);
        }
        let event_id = prepared.event_id();
        if let Some(first) = state.recorded.iter().find(|r| r.event_id == event_id) {
            return Ok(Published {
                event_id,
                subject: first.subject.clone(),
                stream: first.stream.to_string(),
                sequence: first.sequence,
                duplicate: true,
                attempts: 1,
            });
        }
        let stream = prepared.stream();
        let sequence = state.sequences.entry(stream).or_default();
        *sequence += 1;
        let sequence = *sequence;
        let recorded = RecordedEvent {
            event_id,
            event_type: prepared.event_type(),
            subject: prepared.subject().to_string(),
            organization_id: prepared.organization().to_string(),
            stream,
            sequence,
            headers: prepared.headers().clone(),
            body: prepared.body().clone(),
        };
        state.recorded.push(recorded);
        Ok(Published {
            event_id,
            subject: prepared.subject().to_string(),
            stream: stream.to_string(),
            sequence,
            duplicate: false,
            attempts: 1,
        })
    }
}

impl Publish for RecordingPublisher {
    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn send(&self, prepared: Prepared) -> BoxFuture<'_, Result<Published, PublishError>> {
        Box::pin(std::future::ready(self.record(prepared)))
    }

    fn send_batch(
        &self,
        prepared: Vec<Result<Prepared, PublishError>>,
    ) -> BoxFuture<'_, Vec<Result<Published, PublishError>>> {
        let results = prepared
            .into_iter()
            .map(|p| p.and_then(|p| self.record(p)))
            .collect();
        Box::pin(std::future::ready(results))
    }
}
