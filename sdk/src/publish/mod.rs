//! Reliable, typed publishing.
//!
//! [`Publisher::publish`] validates the payload against its schema, wraps it
//! in the CloudEvents [`Envelope`], publishes it on its subject and awaits the
//! PubAck (FR-009), retrying timeouts, no-responders and disconnects with
//! exponential backoff and jitter (FR-008) under the same `Nats-Msg-Id`, so a
//! retry never stores a second copy. Every published event is logged through
//! `tracing` (FR-010): debug on success, warn on each retry, error on failure.
mod config;
mod error;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use time::OffsetDateTime;
use uuid::Uuid;

pub use config::{ConfigError, PublisherConfig, RetryPolicy};
pub use error::{AttemptFailure, AttemptFailureKind, Outcome, PublishError};

use crate::envelope::Envelope;
use crate::event::DomainEvent;
use crate::schema;
use crate::subject::subject_of;
use crate::token::{InvalidToken, OrganizationId};

/// Who and when: the per-call context of a publish. The organization id is
/// required on every publish.
#[derive(Debug, Clone)]
pub struct PublishContext {
    organization_id: OrganizationId,
    time: Option<OffsetDateTime>,
    extensions: BTreeMap<String, serde_json::Value>,
}

impl PublishContext {
    /// A context for one tenant; fails if the id cannot be a subject token.
    pub fn new(organization_id: &str) -> Result<Self, InvalidToken> {
        Ok(Self::for_organization(OrganizationId::new(
            organization_id,
        )?))
    }

    /// A context for an already checked organization id.
    pub fn for_organization(organization_id: OrganizationId) -> Self {
        Self {
            organization_id,
            time: None,
            extensions: BTreeMap::new(),
        }
    }

    /// Sets the event time (default: now).
    pub fn at(mut self, time: OffsetDateTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Adds a CloudEvents extension attribute (checked when encoding: `a-z0-9`).
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_string(), value);
        self
    }

    /// The tenant.
    pub fn organization_id(&self) -> &OrganizationId {
        &self.organization_id
    }
}

/// What the stream said about a stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event id (CloudEvents `id`, `Nats-Msg-Id`).
    pub event_id: Uuid,
    /// The subject it was published on.
    pub subject: String,
    /// The stream that stored it.
    pub stream: String,
    /// Its stream sequence.
    pub sequence: u64,
    /// Whether the stream already had it (a retry of a stored attempt).
    pub duplicate: bool,
    /// How many attempts it took.
    pub attempts: u32,
}

/// An event encoded and ready to send: subject, headers and body.
#[derive(Debug, Clone)]
pub struct Prepared {
    event_type: &'static str,
    stream: &'static str,
    subject: String,
    headers: HeaderMap,
    body: Bytes,
    /// The attributes, without the payload: retries rebuild their headers
    /// from it, so the first attempt can send `headers` without a copy.
    attributes: Envelope,
}

impl Prepared {
    /// The event id.
    pub fn event_id(&self) -> Uuid {
        self.attributes.id
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The structured-mode body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// Publishes typed events to JetStream. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Publisher {
    max_payload: usize,
    js: jetstream::Context,
    config: Arc<PublisherConfig>,
}

impl Publisher {
    /// A publisher on this connection.
    pub fn new(client: async_nats::Client, config: PublisherConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.attempt_timeout)
            .max_ack_inflight(config.max_in_flight.max(1))
            .backpressure_on_inflight(true)
            .build(client.clone());
        Ok(Self {
            max_payload: client.server_info().max_payload,
            js,
            config: Arc::new(config),
        })
    }

    /// The settings.
    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }

    /// Publishes one event and returns once the stream acknowledged it.
    pub async fn publish<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Published, PublishError> {
        let prepared = self.prepare(ctx, event)?;
        self.send(prepared).await
    }

    /// Publishes many events with up to `max_in_flight` PubAcks outstanding
    /// at once. Results come back in input order, one per event; each event
    /// gets the full retry schedule, and a failure does not stop the others.
    pub async fn publish_batch<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        events: &[E],
    ) -> Vec<Result<Published, PublishError>> {
        stream::iter(events)
            .map(|event| self.publish(ctx, event))
            .buffered(self.config.max_in_flight)
            .collect()
            .await
    }

    /// Validates and encodes an event without sending it.
    pub fn prepare<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        let data = serde_json::to_value(event).map_err(|source| PublishError::Serialize {
            event_type: E::EVENT_TYPE,
            source,
        })?;
        if self.config.validate {
            let violations = schema::violations::<E>(&data)?;
            if !violations.is_empty() {
                return Err(PublishError::InvalidPayload {
                    event_type: E::EVENT_TYPE,
                    version: E::SCHEMA_VERSION,
                    violations,
                });
            }
        }
        let subject = subject_of(&ctx.organization_id, event)?;
        let envelope = Envelope {
            id: Uuid::now_v7(),
            source: self.config.source.clone().unwrap_or_else(|| {
                let service = E::EVENT_TYPE.split('.').next().unwrap_or(E::EVENT_TYPE);
                format!("/tidings/{service}")
            }),
            event_type: E::EVENT_TYPE.to_string(),
            time: ctx.time.unwrap_or_else(OffsetDateTime::now_utc),
            dataschema: Some(E::SCHEMA_URI.to_string()).filter(|s| !s.is_empty()),
            subject: event.entity_key().map(|k| k.into_owned()),
            organization_id: ctx.organization_id.clone(),
            schema_version: E::SCHEMA_VERSION,
            extensions: ctx.extensions.clone(),
            data,
        };
        let (body, headers) = envelope.encode()?;
        let body = Bytes::from(body);
        let attributes = Envelope {
            data: serde_json::Value::Null,
            ..envelope
        };
        let size = body.len() + headers_wire_len(&headers);
        // Read once per publisher: server_info() clones the whole INFO. A
        // server with a smaller limit met after a reconnect is still caught
        // by the client's own check, as a rejected attempt.
        let max = self.max_payload;
        if max > 0 && size > max {
            return Err(PublishError::TooLarge {
                event_type: E::EVENT_TYPE,
                event_id: attributes.id,
                size,
                max,
            });
        }
        Ok(Prepared {
            event_type: E::EVENT_TYPE,
            stream: E::STREAM,
            subject,
            headers,
            body,
            attributes,
        })
    }

    /// Sends a prepared event with the retry schedule.
    pub async fn send(&self, mut prepared: Prepared) -> Result<Published, PublishError> {
        let started = Instant::now();
        let retry = &self.config.retry;
        let mut failures = Vec::new();
        for attempt in 1..=retry.max_retries + 1 {
            let headers = if attempt == 1 {
                std::mem::take(&mut prepared.headers)
            } else {
                prepared.attributes.headers()?
            };
            match self.attempt(&prepared, headers, attempt).await {
                Ok(ack) => {
                    tracing::debug!(
                        event_type = prepared.event_type,
                        event_id = %prepared.attributes.id,
                        organization_id = %prepared.attributes.organization_id,
                        subject = %prepared.subject,
                        stream = %ack.stream,
                        sequence = ack.sequence,
                        duplicate = ack.duplicate,
                        attempt,
                        "event published"
                    );
                    return Ok(Published {
                        event_id: prepared.attributes.id,
                        subject: prepared.subject,
                        stream: ack.stream,
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                        attempts: attempt,
                    });
                }
                Err(failure) if !failure.kind.is_retryable() => {
                    tracing::error!(
                        event_type = prepared.event_type,
                        event_id = %prepared.attributes.id,
                        subject = %prepared.subject,
                        error = %failure,
                        "event refused by the server"
                    );
                    return Err(PublishError::Rejected {
                        event_type: prepared.event_type,
                        event_id: prepared.attributes.id,
                        detail: failure.detail,
                    });
                }
                Err(failure) => {
                    if attempt <= retry.max_retries {
                        let delay = retry.delay(attempt);
                        tracing::warn!(
                            event_type = prepared.event_type,
                            event_id = %prepared.attributes.id,
                            subject = %prepared.subject,
                            error = %failure,
                            retry_in = ?delay,
                            "publish attempt failed; retrying with the same Nats-Msg-Id"
                        );
                        failures.push(failure);
                        tokio::time::sleep(delay).await;
                    } else {
                        failures.push(failure);
                    }
                }
            }
        }
        Err(self.exhausted(prepared, failures, started).await)
    }

    /// Whether JetStream says the stream does not exist (404).
    async fn stream_is_missing(&self, stream: &str) -> bool {
        match self.js.get_stream(stream).await {
            Err(e) => crate::streams::is_not_found(&e),
            Ok(_) => false,
        }
    }

    /// The error after the last attempt: a missing stream if every attempt
    /// found no responders and the type's stream does not exist; otherwise
    /// every attempt's failure and what is known of the outcome.
    async fn exhausted(
        &self,
        prepared: Prepared,
        attempts: Vec<AttemptFailure>,
        started: Instant,
    ) -> PublishError {
        let all_no_responders = attempts
            .iter()
            .all(|f| f.kind == AttemptFailureKind::NoResponders);
        if all_no_responders && self.stream_is_missing(prepared.stream).await {
            tracing::error!(
                event_type = prepared.event_type,
                subject = %prepared.subject,
                stream = prepared.stream,
                "no stream stores the subject"
            );
            return PublishError::StreamMissing {
                event_type: prepared.event_type,
                stream: prepared.stream,
                subject: prepared.subject,
            };
        }
        let outcome = if attempts.iter().any(|f| {
            matches!(
                f.kind,
                AttemptFailureKind::TimedOut | AttemptFailureKind::Disconnected
            )
        }) {
            Outcome::Unknown
        } else {
            Outcome::NotStored
        };
        let error = PublishError::RetriesExhausted {
            event_type: prepared.event_type,
            event_id: prepared.attributes.id,
            subject: prepared.subject,
            outcome,
            attempts,
            elapsed: started.elapsed(),
        };
        tracing::error!(error = %error, "event not published");
        error
    }

    async fn attempt(
        &self,
        prepared: &Prepared,
        headers: HeaderMap,
        attempt: u32,
    ) -> Result<jetstream::publish::PublishAck, AttemptFailure> {
        let message = PublishMessage::build()
            .payload(prepared.body.clone())
            .headers(headers);
        let classify = |e: jetstream::context::PublishError| {
            let detail = match e.source() {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            };
            let kind = match e.kind() {
                PublishErrorKind::TimedOut => AttemptFailureKind::TimedOut,
                PublishErrorKind::StreamNotFound => AttemptFailureKind::NoResponders,
                PublishErrorKind::BrokenPipe | PublishErrorKind::MaxAckPending => {
                    AttemptFailureKind::Disconnected
                }
                PublishErrorKind::Other if is_unavailable(&e) => AttemptFailureKind::NoResponders,
                _ => AttemptFailureKind::Rejected,
            };
            AttemptFailure {
                attempt,
                kind,
                detail,
            }
        };
        let ack = self
            .js
            .send_publish(prepared.subject.clone(), message)
            .await
            .map_err(classify)?;
        ack.await.map_err(classify)
    }
}

/// Whether a JetStream API error is a 503 (no leader yet, system temporarily
/// unavailable): worth retrying.
fn is_unavailable(e: &jetstream::context::PublishError) -> bool {
    e.source()
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|api| api.code() == 503)
}

/// The size of the headers on the wire: `NATS/1.0\r\n`, one
/// `Name: value\r\n` per value, and a closing `\r\n`.
fn headers_wire_len(headers: &HeaderMap) -> usize {
    let mut len = "NATS/1.0\r\n".len() + 2;
    for (name, values) in headers.iter() {
        for value in values {
            len += AsRef::<str>::as_ref(name).len() + 2 + value.as_str().len() + 2;
        }
    }
    len
}
