//! Reliable, typed publishing.
//!
//! [`Publisher::publish`] validates the payload against its schema, wraps it
//! in the CloudEvents [`Envelope`](crate::envelope::Envelope), publishes it on its subject and awaits the
//! PubAck (FR-009), retrying timeouts, no-responders and disconnects with
//! exponential backoff and jitter (FR-008) under the same `Nats-Msg-Id`, so a
//! retry never stores a second copy. A publish whose outcome stays unknown
//! can be retried by the caller under the same event id with
//! [`Publisher::publish_with_id`] (or by sending the same [`Prepared`] event
//! again). Every published event is logged through
//! `tracing` (FR-010): debug on success, warn on each retry, error on failure.
mod batch;
mod config;
mod error;
mod window;

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use time::OffsetDateTime;
use uuid::Uuid;

pub use config::{ConfigError, PublisherConfig, RetryPolicy};
pub use error::{AttemptFailure, AttemptFailureKind, Outcome, PublishError};

use crate::envelope::encode::{EventAttributes, Template};
use crate::envelope::EncodeError;
use crate::event::DomainEvent;
use crate::schema;
use crate::subject::subject_with_key;
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
    event_id: Uuid,
    /// What retries rebuild their headers from, so the first attempt can
    /// send `headers` without a copy.
    retry: RetryAttributes,
}

/// The attributes of a prepared event that its type's template does not
/// hold. The tenant and the entity key are where they are in the subject.
#[derive(Debug, Clone)]
struct RetryAttributes {
    plan: Arc<TypePlan>,
    time: OffsetDateTime,
    organization_id: Range<usize>,
    entity_key: Option<Range<usize>>,
    extensions: BTreeMap<String, serde_json::Value>,
}

impl Prepared {
    /// The event id.
    pub fn event_id(&self) -> Uuid {
        self.event_id
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

    fn organization_id(&self) -> &str {
        self.subject
            .get(self.retry.organization_id.clone())
            .unwrap_or_default()
    }

    /// The headers again, for a retry.
    fn rebuild_headers(&self) -> Result<HeaderMap, EncodeError> {
        let retry = &self.retry;
        retry.plan.template.headers(&EventAttributes {
            id: self.event_id,
            time: retry.time,
            subject: retry
                .entity_key
                .clone()
                .and_then(|key| self.subject.get(key)),
            organization_id: self.organization_id(),
            extensions: &retry.extensions,
        })
    }
}

/// What a publisher keeps per event type: the envelope template, the
/// compiled schema (when it validates and the schema compiled), and the
/// size of the last body, to size the next one's buffer.
struct TypePlan {
    template: Template,
    validator: Option<Arc<jsonschema::Validator>>,
    body_len: AtomicUsize,
}

impl std::fmt::Debug for TypePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypePlan")
            .field("template", &self.template)
            .field("validates", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}

/// The plans of the event types a publisher has prepared, by type.
#[derive(Default)]
struct Plans(RwLock<HashMap<TypeId, Arc<TypePlan>>>);

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types = self.0.read().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Plans").field("types", &types).finish()
    }
}

/// Publishes typed events to JetStream. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: async_nats::Client,
    max_payload: usize,
    js: jetstream::Context,
    config: Arc<PublisherConfig>,
    plans: Arc<Plans>,
    windows: Arc<window::Windows>,
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
            client: client.clone(),
            max_payload: client.server_info().max_payload,
            js,
            config: Arc::new(config),
            plans: Arc::default(),
            windows: Arc::default(),
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

    /// Publishes one event under an event id of the caller's choosing (the
    /// CloudEvents `id` and `Nats-Msg-Id`). Publishing the same event again
    /// with the same id within the stream's duplicate window stores it at
    /// most once: this is how to retry a publish whose outcome was
    /// [`Outcome::Unknown`], or to make a publish idempotent with an id kept
    /// beside the caller's own data.
    pub async fn publish_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> Result<Published, PublishError> {
        let prepared = self.prepare_with_id(ctx, event_id, event)?;
        self.send(prepared).await
    }

    /// Publishes many events with up to `max_in_flight` unanswered at once,
    /// their PubAcks read from one inbox subscription for the whole batch.
    /// Results come back in input order, one per event; each event gets the
    /// full retry schedule (an attempt without a PubAck within
    /// `attempt_timeout` is retried under the same `Nats-Msg-Id`), and a
    /// failure does not stop the others.
    pub async fn publish_batch<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        events: &[E],
    ) -> Vec<Result<Published, PublishError>> {
        batch::publish(self, ctx, events).await
    }

    /// Validates and encodes an event under a new event id (a UUID v7)
    /// without sending it.
    pub fn prepare<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        self.prepare_with_id(ctx, Uuid::now_v7(), event)
    }

    /// Validates and encodes an event under the caller's event id without
    /// sending it (see [`Publisher::publish_with_id`]).
    pub fn prepare_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        let plan = self.plan::<E>()?;
        let data = serde_json::to_value(event).map_err(|source| PublishError::Serialize {
            event_type: E::EVENT_TYPE,
            source,
        })?;
        if self.config.validate {
            let violations = match &plan.validator {
                Some(validator) => schema::violations_of(validator, &data),
                None => schema::violations::<E>(&data)?,
            };
            if !violations.is_empty() {
                return Err(PublishError::InvalidPayload {
                    event_type: E::EVENT_TYPE,
                    version: E::SCHEMA_VERSION,
                    violations,
                });
            }
        }
        let key = event.entity_key();
        let key = key.as_deref();
        let subject = subject_with_key(E::EVENT_TYPE, &ctx.organization_id, key)?;
        let organization_start = E::EVENT_TYPE.len() + 1;
        let organization_id =
            organization_start..organization_start + ctx.organization_id.as_str().len();
        let entity_key =
            key.map(|key| organization_id.end + 1..organization_id.end + 1 + key.len());
        let time = ctx.time.unwrap_or_else(OffsetDateTime::now_utc);
        let encoded = plan.template.encode(
            &EventAttributes {
                id: event_id,
                time,
                subject: key,
                organization_id: ctx.organization_id.as_str(),
                extensions: &ctx.extensions,
            },
            &data,
            plan.body_len.load(Ordering::Relaxed) + 64,
        )?;
        plan.body_len.store(encoded.body.len(), Ordering::Relaxed);
        let size = encoded.body.len() + encoded.headers_wire_len;
        // Read once per publisher: server_info() clones the whole INFO. A
        // server with a smaller limit met after a reconnect is still caught
        // by the client's own check, as a rejected attempt.
        let max = self.max_payload;
        if max > 0 && size > max {
            return Err(PublishError::TooLarge {
                event_type: E::EVENT_TYPE,
                event_id,
                size,
                max,
            });
        }
        Ok(Prepared {
            event_type: E::EVENT_TYPE,
            stream: E::STREAM,
            subject,
            headers: encoded.headers,
            body: Bytes::from(encoded.body),
            event_id,
            retry: RetryAttributes {
                plan,
                time,
                organization_id,
                entity_key,
                extensions: ctx.extensions.clone(),
            },
        })
    }

    /// The plan of `E`'s events, made on the first use of the type.
    fn plan<E: DomainEvent>(&self) -> Result<Arc<TypePlan>, EncodeError> {
        let type_id = TypeId::of::<E>();
        if let Some(plan) = self
            .plans
            .0
            .read()
            .ok()
            .and_then(|m| m.get(&type_id).cloned())
        {
            return Ok(plan);
        }
        let source = self.config.source.clone().unwrap_or_else(|| {
            let service = E::EVENT_TYPE.split('.').next().unwrap_or(E::EVENT_TYPE);
            format!("/tidings/{service}")
        });
        let template = Template::new(
            source,
            E::EVENT_TYPE,
            Some(E::SCHEMA_URI).filter(|s| !s.is_empty()),
            E::SCHEMA_VERSION,
            self.config.ce_headers,
        )?;
        // A schema that does not compile is not cached: validation asks for
        // it again on every publish and reports why it is unusable.
        let validator = if self.config.validate {
            schema::validator::<E>().ok()
        } else {
            None
        };
        let plan = Arc::new(TypePlan {
            template,
            validator,
            body_len: AtomicUsize::new(0),
        });
        if let Ok(mut plans) = self.plans.0.write() {
            plans.entry(type_id).or_insert_with(|| plan.clone());
        }
        Ok(plan)
    }

    /// Sends a prepared event with the retry schedule. Sending a clone of
    /// the same prepared event again retries it under the same event id.
    pub async fn send(&self, mut prepared: Prepared) -> Result<Published, PublishError> {
        self.check_window(prepared.stream).await?;
        let started = Instant::now();
        let headers = std::mem::take(&mut prepared.headers);
        match self.attempt(&prepared, headers, 1).await {
            Ok(ack) => Ok(published(prepared, ack, 1, self.config.log_level)),
            // Boxed: the rare path, kept out of every publish's future.
            Err(failure) => Box::pin(self.retry(prepared, failure, started)).await,
        }
    }

    /// The rest of the schedule after a failed attempt: refused at once,
    /// or retried with the same `Nats-Msg-Id` until an attempt is stored
    /// or the retries run out.
    async fn retry(
        &self,
        prepared: Prepared,
        failed: AttemptFailure,
        started: Instant,
    ) -> Result<Published, PublishError> {
        let retry = &self.config.retry;
        let mut failures = Vec::new();
        let mut outcome = Err(failed);
        loop {
            let failure = match outcome {
                Ok((ack, attempt)) => {
                    return Ok(published(prepared, ack, attempt, self.config.log_level))
                }
                Err(failure) => failure,
            };
            let attempt = failure.attempt;
            if !failure.kind.is_retryable() {
                tracing::error!(
                    event_type = prepared.event_type,
                    event_id = %prepared.event_id,
                    subject = %prepared.subject,
                    error = %failure,
                    "event refused"
                );
                let (event_type, event_id) = (prepared.event_type, prepared.event_id);
                return Err(if failure.kind == AttemptFailureKind::ClientRefused {
                    PublishError::ClientRefused {
                        event_type,
                        event_id,
                        failure,
                    }
                } else {
                    PublishError::Rejected {
                        event_type,
                        event_id,
                        failure,
                    }
                });
            }
            if attempt > retry.max_retries {
                failures.push(failure);
                break;
            }
            let delay = retry.delay(attempt);
            tracing::warn!(
                event_type = prepared.event_type,
                event_id = %prepared.event_id,
                subject = %prepared.subject,
                error = %failure,
                retry_in = ?delay,
                "publish attempt failed; retrying with the same Nats-Msg-Id"
            );
            failures.push(failure);
            tokio::time::sleep(delay).await;
            outcome = self
                .attempt(&prepared, prepared.rebuild_headers()?, attempt + 1)
                .await
                .map(|ack| (ack, attempt + 1));
        }
        Err(self.exhausted(prepared, failures, started).await)
    }

    /// Refuses to publish to a stream whose duplicate window (read from the
    /// server once per stream) is shorter than the retry schedule's worst
    /// case: a late retry could store a second copy. A window that cannot
    /// be read now (no such stream, no server) is looked up again on the
    /// next publish; the publish goes ahead and fails on its own terms.
    async fn check_window(&self, stream: &'static str) -> Result<(), ConfigError> {
        let window = match self.windows.get(stream) {
            Some(window) => window,
            None => match self.js.get_stream(stream).await {
                Ok(found) => {
                    let window = found.cached_info().config.duplicate_window;
                    self.windows.insert(stream, window);
                    window
                }
                Err(error) => {
                    tracing::debug!(stream, %error, "duplicate window not read; checked on the next publish");
                    return Ok(());
                }
            },
        };
        self.config.check_window(stream, window)
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
                AttemptFailureKind::TimedOut
                    | AttemptFailureKind::Disconnected
                    | AttemptFailureKind::InProcess
            )
        }) {
            Outcome::Unknown
        } else {
            Outcome::NotStored
        };
        let error = PublishError::RetriesExhausted {
            event_type: prepared.event_type,
            event_id: prepared.event_id,
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
            let kind = match e.kind() {
                PublishErrorKind::TimedOut => AttemptFailureKind::TimedOut,
                PublishErrorKind::StreamNotFound => AttemptFailureKind::NoResponders,
                PublishErrorKind::BrokenPipe | PublishErrorKind::MaxAckPending => {
                    AttemptFailureKind::Disconnected
                }
                PublishErrorKind::Other => match api_error(&e) {
                    Some(api) => api_failure_kind(api),
                    // Not an answer from the server: the client's own
                    // error (a closed client, a subject it cannot send on).
                    None => AttemptFailureKind::ClientRefused,
                },
                PublishErrorKind::MaxPayloadExceeded => AttemptFailureKind::ClientRefused,
                _ => AttemptFailureKind::Rejected,
            };
            AttemptFailure {
                attempt,
                kind,
                // async-nats' message already ends with its source's.
                detail: e.to_string(),
                source: Some(Arc::new(e)),
            }
        };
        // Waiting for an in-flight slot and for room in the connection's
        // queue is bounded too, so one attempt takes at most two
        // attempt_timeouts (what the duplicate-window check counts).
        let timeout = self.config.attempt_timeout;
        let ack = tokio::time::timeout(
            timeout,
            self.js.send_publish(prepared.subject.clone(), message),
        )
        .await
        .map_err(|_| AttemptFailure {
            attempt,
            kind: AttemptFailureKind::TimedOut,
            detail: format!("not handed to the connection within {timeout:?}"),
            source: None,
        })?
        .map_err(classify)?;
        ack.await.map_err(classify)
    }
}

/// The result of a stored event, logged at the configured level.
fn published(
    prepared: Prepared,
    ack: jetstream::publish::PublishAck,
    attempts: u32,
    level: tracing::Level,
) -> Published {
    // `tracing::event!` takes its level as a constant: one arm per level.
    macro_rules! log_published {
        ($level:expr) => {
            tracing::event!(
                $level,
                event_type = prepared.event_type,
                event_id = %prepared.event_id,
                organization_id = prepared.organization_id(),
                subject = %prepared.subject,
                stream = %ack.stream,
                sequence = ack.sequence,
                duplicate = ack.duplicate,
                attempt = attempts,
                "event published"
            )
        };
    }
    match level {
        tracing::Level::ERROR => log_published!(tracing::Level::ERROR),
        tracing::Level::WARN => log_published!(tracing::Level::WARN),
        tracing::Level::INFO => log_published!(tracing::Level::INFO),
        tracing::Level::DEBUG => log_published!(tracing::Level::DEBUG),
        _ => log_published!(tracing::Level::TRACE),
    }
    Published {
        event_id: prepared.event_id,
        subject: prepared.subject,
        stream: ack.stream,
        sequence: ack.sequence,
        duplicate: ack.duplicate,
        attempts,
    }
}

/// The JetStream API error a publish failed with, if the server answered
/// with one.
fn api_error(e: &jetstream::context::PublishError) -> Option<&jetstream::Error> {
    e.source()?.downcast_ref::<jetstream::Error>()
}

/// Whether a JetStream API error is a 503 (no leader yet, system temporarily
/// unavailable): worth retrying.
fn is_unavailable_api(api: &jetstream::Error) -> bool {
    api.code() == 503
}

/// The class of a JetStream API error answering a publish: unavailable
/// (503, an election) and in process (10158, an earlier attempt with this
/// `Nats-Msg-Id` not stored yet) are retried; anything else is a refusal.
pub(crate) fn api_failure_kind(api: &jetstream::Error) -> AttemptFailureKind {
    if is_unavailable_api(api) {
        AttemptFailureKind::NoResponders
    } else if api.error_code() == jetstream::ErrorCode::STREAM_DUPLICATE_MESSAGE_CONFLICT {
        AttemptFailureKind::InProcess
    } else {
        AttemptFailureKind::Rejected
    }
}
