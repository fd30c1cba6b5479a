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
//! `tracing` (FR-010): at [`PublisherConfig::log_level`] (info by default)
//! when stored, warn on each retry, error on failure. At most
//! `max_in_flight` single-event publishes are in flight at once; the others
//! wait their turn before their first attempt (see [`PublisherConfig::queue_timeout`]).
//!
//! Services depend on the [`Publish`] trait (with [`PublishExt`]'s typed
//! calls) rather than on [`Publisher`] when they want to test the code that
//! publishes without a server: `tidings::testing::RecordingPublisher` (feature
//! `testing`) implements it with the same [`Encoder`], so it refuses exactly
//! what the publisher refuses.
mod batch;
mod config;
mod dynamic;
mod encoder;
mod error;
mod sink;
mod tenant_limit;
mod window;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use time::OffsetDateTime;
use uuid::Uuid;

pub use config::{ConfigError, PublisherConfig, RetryPolicy};
pub use dynamic::DynamicType;
#[cfg(feature = "testing")]
pub(crate) use encoder::default_source;
pub use encoder::Encoder;
pub use error::{AttemptFailure, AttemptFailureKind, Outcome, PublishError};
pub use sink::{Publish, PublishExt};
pub use tenant_limit::TenantLimit;

use crate::envelope::encode::EventAttributes;
use crate::envelope::EncodeError;
use crate::event::DomainEvent;
use crate::telemetry;
use crate::token::{InvalidToken, OrganizationId};
use encoder::TypePlan;

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

    /// The extension attributes set with [`with_extension`](Self::with_extension).
    pub fn extensions(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.extensions
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
    /// The message size: body plus headers on the wire.
    size: usize,
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

    /// The event type (`service.entity.action`).
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The stream its type declares.
    pub fn stream(&self) -> &'static str {
        self.stream
    }

    /// The tenant, as in the subject.
    pub fn organization(&self) -> &str {
        self.organization_id()
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

/// Publishes typed events to JetStream. Cheap to clone (one reference
/// count); share one per process.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Shared>,
}

/// What a publisher's clones share.
#[derive(Debug)]
struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    config: Arc<PublisherConfig>,
    encoder: Arc<Encoder>,
    tenants: Option<tenant_limit::TenantBuckets>,
    windows: window::Windows,
    /// The `max_in_flight` turns that single-event sends take, shared by
    /// the publisher's clones.
    turns: tokio::sync::Semaphore,
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
        let config = Arc::new(config);
        // Read once per publisher: server_info() clones the whole INFO. A
        // server with a smaller limit met after a reconnect is still caught
        // by the client's own check, as a rejected attempt.
        let max_payload = client.server_info().max_payload;
        let inner = Shared {
            encoder: Arc::new(Encoder::new(config.clone(), max_payload)),
            tenants: config.tenant_limit.map(tenant_limit::TenantBuckets::new),
            turns: tokio::sync::Semaphore::new(config.max_in_flight),
            client,
            js,
            config,
            windows: window::Windows::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The settings.
    pub fn config(&self) -> &PublisherConfig {
        &self.inner.config
    }

    /// Publishes one event and returns once the stream acknowledged it.
    pub async fn publish<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Published, PublishError> {
        let span = telemetry::publish_span(ctx.organization_id.as_str(), E::EVENT_TYPE, E::STREAM);
        telemetry::observe_publish(span, E::EVENT_TYPE, E::STREAM, async {
            let prepared = self.prepare(ctx, event)?;
            telemetry::prepared(&prepared);
            self.deliver(prepared).await
        })
        .await
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
        let span = telemetry::publish_span(ctx.organization_id.as_str(), E::EVENT_TYPE, E::STREAM);
        telemetry::observe_publish(span, E::EVENT_TYPE, E::STREAM, async {
            let prepared = self.prepare_with_id(ctx, event_id, event)?;
            telemetry::prepared(&prepared);
            self.deliver(prepared).await
        })
        .await
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
        let org = ctx.organization_id.as_str();
        telemetry::observe_batch(org, E::EVENT_TYPE, E::STREAM, events.len(), async {
            let prepared = events.iter().map(|e| self.prepare(ctx, e)).collect();
            batch::publish(self, prepared).await
        })
        .await
    }

    /// Validates and encodes an event under a new event id (a UUID v7)
    /// without sending it.
    pub fn prepare<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        self.inner
            .encoder
            .prepare_with_id(ctx, Uuid::now_v7(), event)
    }

    /// Validates and encodes an event under the caller's event id without
    /// sending it (see [`Publisher::publish_with_id`]).
    pub fn prepare_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        self.inner.encoder.prepare_with_id(ctx, event_id, event)
    }

    /// Sends a prepared event with the retry schedule. Sending a clone of
    /// the same prepared event again retries it under the same event id.
    /// Traced and measured as a publish (its `send` span and metrics).
    // A plain function: as an `async fn` its future would hold `prepared`
    // twice (the argument and the copy moved on to `deliver`).
    pub fn send(
        &self,
        prepared: Prepared,
    ) -> impl Future<Output = Result<Published, PublishError>> + Send + '_ {
        let (event_type, stream) = (prepared.event_type, prepared.stream);
        let span = telemetry::publish_span(prepared.organization(), event_type, stream);
        telemetry::observe_publish(span, event_type, stream, async move {
            telemetry::prepared(&prepared);
            self.deliver(prepared).await
        })
    }

    /// [`Publisher::send`] without its span and metrics, for the calls that
    /// record their own (a publish, a batch).
    pub(crate) async fn deliver(&self, mut prepared: Prepared) -> Result<Published, PublishError> {
        self.check_window(prepared.stream).await?;
        self.admit(&prepared)?;
        // Held through the retries: a retrying event keeps its turn, so a
        // backlog does not grow by the events being retried.
        let _turn = self.turn(&prepared).await?;
        let started = Instant::now();
        let headers = std::mem::take(&mut prepared.headers);
        match self.attempt(&prepared, headers, 1).await {
            Ok(ack) => Ok(published(prepared, ack, 1, self.inner.config.log_level)),
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
        let retry = &self.inner.config.retry;
        let mut failures = Vec::new();
        let mut outcome = Err(failed);
        loop {
            let failure = match outcome {
                Ok((ack, attempt)) => {
                    return Ok(published(
                        prepared,
                        ack,
                        attempt,
                        self.inner.config.log_level,
                    ))
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

    /// Waits for one of the `max_in_flight` turns. The wait is a local
    /// queue (nothing is sent yet), so it is not an attempt and does not
    /// count against `attempt_timeout`, which left a backlog's events
    /// failing and retrying while the server answered every one; past
    /// `queue_timeout` the event is refused, unsent.
    async fn turn(
        &self,
        prepared: &Prepared,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, PublishError> {
        if let Ok(turn) = self.inner.turns.try_acquire() {
            return Ok(turn);
        }
        let waiting = Instant::now();
        // On the heap: a wait with its timer is the rare path, kept out of
        // every publish's future (see `deliver`).
        let wait = Box::pin(tokio::time::timeout(
            self.inner.config.queue_timeout,
            self.inner.turns.acquire(),
        ));
        match wait.await {
            Ok(Ok(turn)) => Ok(turn),
            // Err(AcquireError) would mean a closed semaphore, which the
            // publisher never closes; no turn either way.
            Ok(Err(_)) | Err(_) => {
                let error = PublishError::Overloaded {
                    event_type: prepared.event_type,
                    event_id: prepared.event_id,
                    max_in_flight: self.inner.config.max_in_flight,
                    waited: waiting.elapsed(),
                };
                tracing::warn!(%error, "publish refused: no turn among max_in_flight");
                Err(error)
            }
        }
    }

    /// Takes the event's bytes from its tenant's budget, or refuses it
    /// (nothing sent) when the tenant is over its [`TenantLimit`].
    fn admit(&self, prepared: &Prepared) -> Result<(), PublishError> {
        let Some(tenants) = &self.inner.tenants else {
            return Ok(());
        };
        let organization = prepared.organization_id();
        let retry_after = match tenants.take(organization, prepared.size, Instant::now()) {
            Ok(()) => return Ok(()),
            Err(tenant_limit::Refusal::RetryAfter(wait)) => Some(wait),
            Err(tenant_limit::Refusal::LargerThanBurst) => None,
        };
        let error = PublishError::TenantLimited {
            organization_id: organization.to_string(),
            event_type: prepared.event_type,
            event_id: prepared.event_id,
            size: prepared.size,
            limit: tenants.limit(),
            retry_after,
        };
        tracing::warn!(%error, "tenant over its publish limit");
        Err(error)
    }

    /// Refuses to publish to a stream whose duplicate window (read from the
    /// server once per stream) is shorter than the retry schedule's worst
    /// case: a late retry could store a second copy. A window that cannot
    /// be read now (no such stream, no server) is looked up again on the
    /// next publish; the publish goes ahead and fails on its own terms.
    async fn check_window(&self, stream: &'static str) -> Result<(), ConfigError> {
        let window = match self.inner.windows.get(stream) {
            Some(window) => window,
            // On the heap: the look-up happens once per stream, and inline
            // its future would make every publish's future kilobytes larger.
            None => match Box::pin(self.read_window(stream)).await {
                Some(window) => window,
                None => return Ok(()),
            },
        };
        self.inner.config.check_window(stream, window)
    }

    /// Reads a stream's duplicate window from the server and keeps it;
    /// `None` if it cannot be read now.
    async fn read_window(&self, stream: &'static str) -> Option<Duration> {
        match self.inner.js.get_stream(stream).await {
            Ok(found) => {
                let window = found.cached_info().config.duplicate_window;
                self.inner.windows.insert(stream, window);
                Some(window)
            }
            Err(error) => {
                tracing::debug!(stream, %error, "duplicate window not read; checked on the next publish");
                None
            }
        }
    }

    /// Whether JetStream says the stream does not exist (404).
    async fn stream_is_missing(&self, stream: &str) -> bool {
        match self.inner.js.get_stream(stream).await {
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

    /// One attempt to store a prepared event (see `attempt_raw`). A plain
    /// function: as an `async fn` it would add a layer to every publish's
    /// future.
    fn attempt<'a>(
        &'a self,
        prepared: &'a Prepared,
        headers: HeaderMap,
        attempt: u32,
    ) -> impl Future<Output = Result<jetstream::publish::PublishAck, AttemptFailure>> + 'a {
        self.attempt_raw(&prepared.subject, headers, prepared.body.clone(), attempt)
    }

    /// The JetStream context (for the outbox relay's stream look-ups).
    #[cfg(any(feature = "outbox-sqlite", feature = "outbox-postgres"))]
    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The connection (the spool checks its state).
    #[cfg(feature = "outbox-sqlite")]
    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The encoder, shared with an outbox that prepares rows for this publisher.
    #[cfg(any(feature = "outbox-sqlite", feature = "outbox-postgres"))]
    pub(crate) fn shared_encoder(&self) -> Arc<Encoder> {
        self.inner.encoder.clone()
    }

    /// One attempt to store an already encoded message (headers carry its
    /// `Nats-Msg-Id`), bounded by `attempt_timeout` like every attempt.
    pub(crate) async fn attempt_raw(
        &self,
        subject: &str,
        headers: HeaderMap,
        body: Bytes,
        attempt: u32,
    ) -> Result<jetstream::publish::PublishAck, AttemptFailure> {
        let message = PublishMessage::build().payload(body).headers(headers);
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
        let timeout = self.inner.config.attempt_timeout;
        let ack = tokio::time::timeout(
            timeout,
            self.inner.js.send_publish(subject.to_string(), message),
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
