//! Typed, durable consumer groups.
//!
//! A [`Subscriber`] is one instance of a named consumer group. It registers
//! typed handlers ([`Subscriber::handle`]), then [`start`](Subscriber::start)
//! creates or updates one durable pull consumer per stream for the group
//! (filter subjects: the handled types, optionally one tenant, added to
//! those the consumer already has) and consumes with at most
//! `max_in_flight` events held (asked for, waiting or being handled) and
//! `max_concurrent_handlers` handlers running at once. Every instance that starts with the
//! same group shares the same consumers, so each event is handled by one
//! instance; two groups each receive every event. An instance that receives
//! a type only other instances handle releases it to them (a NAK with a
//! delay, recorded so that it does not spend the event's delivery budget);
//! [`retire_types`] narrows the filter.
//!
//! Handler `Ok` acks; `Err` (or a panic) NAKs with an exponential backoff;
//! after `max_deliveries` the event is given up (see the dead-letter module),
//! as is a message that cannot be read as the handler's type (not an event,
//! a subject that contradicts the body, a payload that breaks its schema, a
//! version the reader cannot read) at once. [`Running::shutdown`] stops
//! pulling, lets in-flight handlers finish within a deadline and flushes
//! their acks.
mod config;
mod dead_letter;
mod event;
mod handler;
mod health;
mod join;
mod lane;
mod pull;
mod retire;
mod signal;
mod stall;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Backoff, ConfigError, StartAt, SubscriberConfig};
pub use event::{Event, EventMeta};
pub use handler::{BoxError, HandlerFailure};
pub use health::Health;
pub use retire::retire_types;
pub use signal::{stop_signal, StopSignal};

#[cfg(feature = "testing")]
pub(crate) use handler::invoke;
use handler::{ErasedHandler, Typed};
use worker::Shared;

use crate::dlq::mover::Mover;
use crate::dlq::DLQ_STREAM;
use crate::idempotency::Deduplicator;
use crate::replay::{Replay, ReplayError, ReplaySpec, ReplayStart};
use crate::subject::filter_for_type;
use crate::token::{check_group, InvalidToken};
use crate::upcast::ReadAnyVersion;

/// A handler of events of type `E`: any `Fn(Event<E>) -> impl Future<Output
/// = Result<(), Err>>` where `Err` converts into [`BoxError`].
pub trait Handler<E>: Send + Sync + 'static {
    /// The future the handler returns.
    type Future: std::future::Future<Output = Result<(), Self::Error>> + Send + 'static;
    /// The handler's error.
    type Error: Into<BoxError>;
    /// Handles one event.
    fn call(&self, event: Event<E>) -> Self::Future;
}

impl<E, F, Fut, Err> Handler<E> for F
where
    F: Fn(Event<E>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Err>> + Send + 'static,
    Err: Into<BoxError>,
{
    type Future = Fut;
    type Error = Err;
    fn call(&self, event: Event<E>) -> Fut {
        self(event)
    }
}

/// Why a subscriber cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The group name cannot be a consumer name.
    #[error("invalid consumer group name: {0}")]
    Group(#[source] InvalidToken),
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `start` was called with no handler.
    #[error("consumer group {group} has no handlers: call `handle` before `start`")]
    NoHandlers {
        /// The group.
        group: String,
    },
    /// Two handlers for one event type in one group.
    #[error("consumer group {group} has two handlers for {event_type} (v{first} and v{second}); one handler per event type reads every version")]
    DuplicateHandler {
        /// The group.
        group: String,
        /// The event type.
        event_type: &'static str,
        /// The version of the first handler.
        first: u32,
        /// The version of the second.
        second: u32,
    },
    /// A stream of a handled type does not exist.
    #[error("stream {stream} (of {event_types}) does not exist: provision the streams first (`tidings streams apply --profile <profile>` with an operator credential, or `tidings::streams::apply`)")]
    StreamMissing {
        /// The stream.
        stream: String,
        /// The handled types it stores.
        event_types: String,
    },
    /// The server refused the consumer.
    #[error("cannot create or update consumer {group} on stream {stream}: {detail}")]
    Consumer {
        /// The group.
        group: String,
        /// The stream.
        stream: String,
        /// The server's answer.
        detail: String,
    },
}

/// One instance of a consumer group, before it starts.
pub struct Subscriber {
    client: async_nats::Client,
    js: jetstream::Context,
    group: String,
    config: SubscriberConfig,
    handlers: HashMap<&'static str, Arc<dyn ErasedHandler>>,
    duplicate: Option<SubscribeError>,
    dedup: Option<Deduplicator>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("group", &self.group)
            .field("config", &self.config)
            .field(
                "event_types",
                &self.handlers.keys().collect::<BTreeSet<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// An instance of consumer group `group` (ASCII letters, digits, `-`
    /// and `_`, at most 64 bytes).
    ///
    /// # Errors
    /// An invalid group name or setting.
    pub fn new(
        client: async_nats::Client,
        group: &str,
        config: SubscriberConfig,
    ) -> Result<Self, SubscribeError> {
        check_group(group).map_err(SubscribeError::Group)?;
        config.validate()?;
        Ok(Self {
            js: jetstream::new(client.clone()),
            client,
            group: group.to_string(),
            config,
            handlers: HashMap::new(),
            duplicate: None,
            dedup: None,
        })
    }

    /// Registers the handler of event type `E`. Events published with any
    /// schema version of the type arrive as `E` (upcast or read forward).
    /// A second handler for the same type makes [`start`](Self::start) fail.
    pub fn handle<E: ReadAnyVersion, H: Handler<E>>(&mut self, handler: H) -> &mut Self {
        let typed: Arc<dyn ErasedHandler> = Arc::new(Typed::<E, H>::new(handler));
        if let Some(first) = self.handlers.get(E::EVENT_TYPE) {
            self.duplicate
                .get_or_insert(SubscribeError::DuplicateHandler {
                    group: self.group.clone(),
                    event_type: E::EVENT_TYPE,
                    first: first.version(),
                    second: E::SCHEMA_VERSION,
                });
        } else {
            self.handlers.insert(E::EVENT_TYPE, typed);
        }
        self
    }

    /// Skips events this group already handled (by event id), recording each
    /// handled event in `dedup`.
    pub fn deduplicate(&mut self, dedup: Deduplicator) -> &mut Self {
        self.dedup = Some(dedup);
        self
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The settings.
    pub fn config(&self) -> &SubscriberConfig {
        &self.config
    }

    /// The handled event types by stream.
    fn streams(&self) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        let mut streams: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        for handler in self.handlers.values() {
            streams
                .entry(handler.stream())
                .or_default()
                .insert(handler.event_type());
        }
        streams
    }

    /// Replays stored events of the handled types (of the configured tenant,
    /// if any) through the handlers, one at a time, in stream order, stream
    /// after stream (see [`crate::replay`]). The group's consumers are not
    /// touched and nothing is acked. An event that cannot be read, or whose
    /// subject contradicts its body, is logged and counted as unreadable; a
    /// failing handler stops the replay with the sequence to resume from.
    ///
    /// # Errors
    /// A sequence start with types in more than one stream, a server error,
    /// or the first handler failure.
    pub async fn replay(
        &self,
        start: ReplayStart,
        until: Option<OffsetDateTime>,
    ) -> Result<ReplayReport, ReplayError> {
        let streams = self.streams();
        if matches!(start, ReplayStart::Sequence(_)) && streams.len() > 1 {
            return Err(ReplayError::Invalid(format!(
                "a stream sequence names a position in one stream, but group {} handles types of {} streams",
                self.group,
                streams.len()
            )));
        }
        let mut report = ReplayReport::default();
        for (stream, types) in streams {
            let spec = ReplaySpec {
                stream: stream.to_string(),
                event_types: types.iter().map(|t| t.to_string()).collect(),
                organization: self.config.organization.clone(),
                start,
                until,
            };
            let mut replay = Replay::start(&self.js, spec).await?;
            while let Some(item) = replay.next().await {
                let replayed = match item {
                    Ok(replayed) => replayed,
                    Err(e @ (ReplayError::Decode { .. } | ReplayError::Mismatch { .. })) => {
                        tracing::error!(group = %self.group, error = %e, "replay skipped an unreadable event");
                        report.unreadable += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let envelope = replayed.envelope;
                let event_type = envelope.event_type.clone();
                let failed = |error: String| ReplayError::Handler {
                    stream: stream.to_string(),
                    sequence: replayed.stream_sequence,
                    event_type: event_type.clone(),
                    error,
                };
                let Some(handler) = self.handlers.get(event_type.as_str()) else {
                    return Err(failed("no handler for this type".into()));
                };
                let (meta, data) = EventMeta::split(
                    envelope,
                    &replayed.subject,
                    stream,
                    replayed.stream_sequence,
                    replayed.stored_at,
                    1,
                    &self.group,
                );
                match handler.call(data, meta, None).await {
                    Ok(()) => report.handled += 1,
                    Err(handler::Failure::Unreadable(reason)) => {
                        tracing::error!(group = %self.group, sequence = replayed.stream_sequence, reason, "replay skipped an unreadable event");
                        report.unreadable += 1;
                    }
                    Err(handler::Failure::Handler(error)) => return Err(failed(error)),
                }
            }
        }
        Ok(report)
    }

    /// Creates or updates the group's consumers and starts consuming.
    ///
    /// Registers the handles of its per-event metrics with the `metrics`
    /// recorder installed now: install the recorder first.
    ///
    /// # Errors
    /// No handlers, a duplicate handler, a missing stream, or a consumer the
    /// server refused.
    pub async fn start(mut self) -> Result<Running, SubscribeError> {
        if let Some(e) = self.duplicate.take() {
            return Err(e);
        }
        if self.handlers.is_empty() {
            return Err(SubscribeError::NoHandlers { group: self.group });
        }
        let mut consumers = Vec::new();
        for (stream, types) in self.streams() {
            let ours = self.filters_for(&types);
            consumers.push((self.consumer(stream, &types, &ours).await?, ours));
        }
        let dlq = self.stream(DLQ_STREAM, "dead letters").await?;
        let mover = Mover::open(&self.js, dlq).await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (abort_tx, abort_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            self.group.clone(),
            self.config.clone(),
            self.handlers,
            self.dedup,
            mover,
            abort_rx,
            consumers.len(),
        ));
        let loops = consumers
            .into_iter()
            .enumerate()
            .map(|(index, (c, ours))| {
                tokio::spawn(pull::pull_loop(
                    shared.clone(),
                    index,
                    c,
                    ours,
                    self.js.clone(),
                    self.client.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        tokio::spawn(health::watch_connection(
            self.client.clone(),
            shared.health.clone(),
            stop_rx.clone(),
        ));
        tracing::info!(group = %self.group, "consumer group started");
        Ok(Running {
            client: self.client,
            shared,
            stop: stop_tx,
            abort: abort_tx,
            loops,
        })
    }

    /// The stream, which must exist (`holds` says what it holds, for the error).
    async fn stream(
        &self,
        stream: &str,
        holds: &str,
    ) -> Result<jetstream::stream::Stream, SubscribeError> {
        match self.js.get_stream(stream).await {
            Ok(handle) => Ok(handle),
            Err(e) if crate::streams::is_not_found(&e) => Err(SubscribeError::StreamMissing {
                stream: stream.to_string(),
                event_types: holds.to_string(),
            }),
            Err(e) => Err(SubscribeError::Consumer {
                group: self.group.clone(),
                stream: stream.to_string(),
                detail: e.to_string(),
            }),
        }
    }

    /// Creates the group's consumer on `stream`, or joins the one other
    /// instances made: it keeps its position and start policy, and the
    /// filters of types other instances handle (the filter only grows; see
    /// [`join`] and [`retire_types`]).
    async fn consumer(
        &self,
        stream: &str,
        types: &BTreeSet<&'static str>,
        ours: &BTreeSet<String>,
    ) -> Result<consumer::PullConsumer, SubscribeError> {
        let handle = self
            .stream(
                stream,
                &types.iter().copied().collect::<Vec<_>>().join(", "),
            )
            .await?;
        let work_queue =
            handle.cached_info().config.retention == jetstream::stream::RetentionPolicy::WorkQueue;
        let deliver_policy = match self.config.start_at {
            // A work queue holds only work no consumer has done yet, and
            // JetStream lets a consumer on it start nowhere else.
            _ if work_queue => consumer::DeliverPolicy::All,
            StartAt::New => consumer::DeliverPolicy::New,
            StartAt::All => consumer::DeliverPolicy::All,
            StartAt::Time(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
        };
        let config = consumer::pull::Config {
            durable_name: Some(self.group.clone()),
            description: Some(format!("Tidings consumer group {}", self.group)),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            // Unlimited: the subscriber counts deliveries itself and gives an
            // event up on its last one, so a delivery lost to a crash never
            // strands it (a server-side limit would, silently).
            max_deliver: -1,
            max_ack_pending: i64::try_from(self.config.ack_pending()).unwrap_or(i64::MAX),
            filter_subjects: ours.iter().cloned().collect(),
            deliver_policy,
            ..Default::default()
        };
        let (joined, how) =
            join::join(&self.js, &handle, &config)
                .await
                .map_err(|e| SubscribeError::Consumer {
                    group: self.group.clone(),
                    stream: stream.to_string(),
                    detail: e.to_string(),
                })?;
        if how == join::Joined::Created && work_queue && self.config.start_at != StartAt::All {
            tracing::info!(group = %self.group, stream, start_at = ?self.config.start_at, "the stream is a work queue: the group starts at the first event it holds (every event still to be done), not at start_at");
        }
        Ok(joined)
    }

    /// The filter subjects this instance needs on a stream whose handled
    /// types are `types`.
    fn filters_for(&self, types: &BTreeSet<&'static str>) -> BTreeSet<String> {
        types
            .iter()
            .map(|t| filter_for_type(t, self.config.organization.as_ref()))
            .collect()
    }
}

/// A consumer's filter subjects, however the server stores them (one
/// filter comes back as `filter_subject`).
fn filters_of(config: &consumer::Config) -> BTreeSet<String> {
    filter_set(&config.filter_subjects, &config.filter_subject)
}

/// Whether a consumer with filters `theirs` receives every subject of
/// `ours`. No filter at all means every subject of the stream.
fn covers(theirs: &BTreeSet<String>, ours: &BTreeSet<String>) -> bool {
    theirs.is_empty() || ours.is_subset(theirs)
}

/// The filters of a consumer configuration's two fields, as one set.
fn filter_set(filter_subjects: &[String], filter_subject: &str) -> BTreeSet<String> {
    filter_subjects
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(filter_subject))
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a replay through the handlers did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events handled.
    pub handled: u64,
    /// Events skipped because they could not be read (each logged).
    pub unreadable: u64,
}

/// A started subscriber. Call [`shutdown`](Self::shutdown) to stop it
/// gracefully; dropping it stops pulling and the handlers at once (their
/// events come back after the ack wait).
///
/// Handlers run concurrently on the task of their stream's pull loop (and,
/// in ordered mode, on one task per entity with events in flight), so an
/// event costs no hand-off to another thread. A handler that does long CPU
/// work should move it to `tokio::task::spawn_blocking` so it does not hold
/// up the others.
pub struct Running {
    client: async_nats::Client,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    abort: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("group", &self.shared.group)
            .finish_non_exhaustive()
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events still held at the deadline (handlers running, or events
    /// waiting for a handler or their entity's turn): they were released
    /// for redelivery (NAK without delay).
    pub abandoned: usize,
    /// How long it took.
    pub elapsed: Duration,
}

impl Running {
    /// The group.
    pub fn group(&self) -> &str {
        &self.shared.group
    }

    /// What this instance is doing: consuming, reconnecting, consuming on a
    /// recreated consumer, or stopped (with the error that stopped it).
    /// Await `changed()` on the receiver to follow the transitions.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.shared.health.subscribe()
    }

    /// Events this instance holds now: being handled, or waiting for a
    /// handler or for their entity's turn (ordered mode).
    pub fn in_flight(&self) -> usize {
        let reserved = self.shared.reserved();
        (self.shared.config.max_in_flight - self.shared.slots.available_permits())
            .saturating_sub(reserved)
    }

    /// Graceful shutdown: stops pulling (messages of the last pull request
    /// are still handled), lets in-flight handlers finish and ack until the
    /// configured deadline, releases the events of those still running
    /// after it, and flushes the acks to the server. Returns within the
    /// deadline plus 4 s, also with the server unreachable (2 s for the
    /// released handlers and the pull loops to end, 2 s for the flush).
    pub async fn shutdown(mut self) -> ShutdownReport {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.shared.config.shutdown_deadline;
        let _ = self.stop.send(true);
        let mut loops = std::mem::take(&mut self.loops);
        let all = u32::try_from(self.shared.config.max_in_flight).unwrap_or(u32::MAX);
        let slots = self.shared.slots.clone();
        let mut abandoned = 0;
        if tokio::time::timeout_at(deadline, settle(&mut loops, &slots, all))
            .await
            .is_err()
        {
            abandoned = self.in_flight();
            let _ = self.abort.send(true);
            // Aborted handlers NAK their event and give their slot back.
            let _ = tokio::time::timeout(AFTER_DEADLINE, settle(&mut loops, &slots, all)).await;
            for handle in &loops {
                handle.abort();
            }
        }
        match tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(group = %self.shared.group, error = %e, "could not flush the last acks");
            }
            Err(_) => {
                tracing::warn!(group = %self.shared.group, timeout = ?FLUSH_TIMEOUT, "the last acks were not flushed in time (server unreachable?); their events come back after the ack wait");
            }
        }
        health::report(&self.shared.health, Health::Stopped { error: None });
        let report = ShutdownReport {
            abandoned,
            elapsed: started.elapsed(),
        };
        tracing::info!(group = %self.shared.group, abandoned, elapsed = ?report.elapsed, "consumer group stopped");
        report
    }
}

/// How long a shutdown waits, after its deadline, for aborted handlers to
/// release their events and the pull loops to end.
const AFTER_DEADLINE: Duration = Duration::from_secs(2);

/// How long a shutdown waits for the server to confirm the last acks: with
/// the server gone, a flush would wait for a reconnection that may never
/// come.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits until the pull loops ended (their last requests ended and the
/// handlers they drive finished) and every slot is back (entity lanes).
async fn settle(loops: &mut Vec<JoinHandle<()>>, slots: &tokio::sync::Semaphore, all: u32) {
    while let Some(handle) = loops.last_mut() {
        let _ = handle.await;
        loops.pop();
    }
    let _ = slots.acquire_many(all).await;
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        health::report(&self.shared.health, Health::Stopped { error: None });
        for handle in &self.loops {
            handle.abort();
        }
    }
}
