//! Traces and metrics: OpenTelemetry's messaging conventions over `tracing`
//! spans and the `metrics` facade.
//!
//! **Trace context.** Every event can carry the W3C trace context as the
//! CloudEvents distributed-tracing extension: the `traceparent` and
//! `tracestate` attributes (in the body, and as `ce-traceparent` /
//! `ce-tracestate` headers). A caller sets it with
//! [`PublishContext::with_trace_context`](crate::PublishContext::with_trace_context);
//! with the `otel` feature a publish without one carries the context of its
//! own `send` span. A consumer reads it from
//! [`EventMeta::trace_context`](crate::EventMeta::trace_context); with `otel`,
//! the subscriber's `process` span is a child of it. Dead-letter moves and
//! redrives copy the body whole, so the context survives both.
//!
//! **Spans** (`tracing`, level INFO; exported through
//! `tracing-opentelemetry` by the service's own layer): see [`SEND_SPAN`]
//! and [`PROCESS_SPAN`] for their attributes.
//!
//! **Metrics** go through the [`metrics`](::metrics) facade: nothing is recorded until
//! the service installs a recorder (a Prometheus exporter, say), which it
//! does before starting subscribers: a subscriber registers the handles of
//! its per-event metrics when it starts. Their
//! names are the constants of [`names`]; [`Collector`] adds the gauges that
//! need the server (consumer lag, dead-letter depth).
mod collector;
pub(crate) mod metrics;
#[cfg(feature = "otel")]
mod otel;
pub(crate) mod spans;
mod trace_context;

pub use collector::{Collector, CollectorError};
pub use spans::{PROCESS_SPAN, SEND_SPAN};
pub use trace_context::{InvalidTraceContext, TraceContext, TRACEPARENT, TRACESTATE};

/// The value of `messaging.system`.
pub const MESSAGING_SYSTEM: &str = "nats";

/// Metric and label names.
pub mod names {
    /// Histogram, seconds: one publish (`messaging.operation.name` =
    /// `publish` or `publish_batch`) from the call to its last PubAck,
    /// retries included. Labels: `messaging.system`,
    /// `messaging.operation.name`, `messaging.operation.type`,
    /// `tidings.event_type`, `tidings.stream`, `error.type` (on failure).
    pub const OPERATION_DURATION: &str = "messaging.client.operation.duration";
    /// Counter: events a publisher handed to the server, by
    /// `tidings.event_type`, `tidings.stream`, `tidings.outcome`
    /// (`stored`, `duplicate`, `failed`) and `error.type` on failure.
    pub const SENT_MESSAGES: &str = "messaging.client.sent.messages";
    /// Counter: events a subscriber received and decoded, by
    /// `messaging.consumer.group.name`, `tidings.event_type`, `tidings.stream`.
    pub const CONSUMED_MESSAGES: &str = "messaging.client.consumed.messages";
    /// Histogram, seconds: one handler run, by group, event type and
    /// `tidings.outcome` (`ok`, `failed`, `unreadable`, `aborted`).
    pub const PROCESS_DURATION: &str = "messaging.process.duration";
    /// Counter: publish attempts (the first and every retry), by event type.
    pub const PUBLISH_ATTEMPTS: &str = "tidings.publish.attempts";
    /// Counter: publish retries, by event type.
    pub const PUBLISH_RETRIES: &str = "tidings.publish.retries";
    /// Counter: publishes that failed, by event type and `error.type`
    /// (`retries_exhausted_unknown`, `retries_exhausted_not_stored`,
    /// `rejected`, `tenant_limited`, ...).
    pub const PUBLISH_FAILURES: &str = "tidings.publish.failures";
    /// Gauge: publishes in progress (waiting for their PubAck or retrying).
    pub const PUBLISH_IN_FLIGHT: &str = "tidings.publish.in_flight";
    /// Counter: handler runs, by group, event type and `tidings.outcome`.
    pub const HANDLER_RUNS: &str = "tidings.handler.runs";
    /// Counter: events acknowledged, by group.
    pub const ACKS: &str = "tidings.consumer.acks";
    /// Counter: events NAKed for redelivery (a failed run, a release), by
    /// group and `tidings.reason` (`failed`, `released`, `unhandled_type`).
    pub const NAKS: &str = "tidings.consumer.naks";
    /// Counter: events moved to the dead-letter queue, by group and
    /// `tidings.reason` (`exhausted`, `poison`).
    pub const DEAD_LETTERS: &str = "tidings.consumer.dead_letters";
    /// Gauge: events held by a subscriber's handler slots, by group.
    pub const CONSUMER_IN_FLIGHT: &str = "tidings.consumer.in_flight";
    /// Gauge ([`Collector`](super::Collector)): events of a stream a group
    /// has not handled yet, by group and stream.
    pub const LAG_EVENTS: &str = "tidings.consumer.lag.events";
    /// Gauge ([`Collector`](super::Collector)), seconds: the age of a
    /// group's oldest unhandled event (0 when none), by group and stream.
    pub const LAG_SECONDS: &str = "tidings.consumer.lag.seconds";
    /// Gauge ([`Collector`](super::Collector)): dead letters, by group and
    /// event type.
    pub const DLQ_DEPTH: &str = "tidings.dlq.depth";

    /// Label: `nats`.
    pub const SYSTEM: &str = "messaging.system";
    /// Label: `publish`, `publish_batch`, `process`.
    pub const OPERATION_NAME: &str = "messaging.operation.name";
    /// Label: `send`, `process`.
    pub const OPERATION_TYPE: &str = "messaging.operation.type";
    /// Label: the consumer group.
    pub const GROUP: &str = "messaging.consumer.group.name";
    /// Label: `service.entity.action`.
    pub const EVENT_TYPE: &str = "tidings.event_type";
    /// Label: the stream.
    pub const STREAM: &str = "tidings.stream";
    /// Label: how an operation ended.
    pub const OUTCOME: &str = "tidings.outcome";
    /// Label: why an event was NAKed or dead-lettered.
    pub const REASON: &str = "tidings.reason";
    /// Label: the class of a failure.
    pub const ERROR_TYPE: &str = "error.type";
}

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use futures_util::FutureExt;
use tracing::{Instrument, Span};

use crate::publish::{PublishError, Published};

/// The extensions a publish encodes: the caller's, with the current span's
/// trace context added (feature `otel`) when the caller set none.
pub(crate) fn with_current_trace(
    extensions: &BTreeMap<String, serde_json::Value>,
) -> Cow<'_, BTreeMap<String, serde_json::Value>> {
    #[cfg(feature = "otel")]
    if !extensions.contains_key(TRACEPARENT) {
        if let Some(context) = otel::context_of(&tracing::Span::current()) {
            let mut with = extensions.clone();
            with.insert(TRACEPARENT.into(), context.traceparent().into());
            if let Some(state) = context.tracestate() {
                with.insert(TRACESTATE.into(), state.into());
            }
            return Cow::Owned(with);
        }
    }
    Cow::Borrowed(extensions)
}

/// The `send` span of one publish.
pub(crate) fn publish_span(
    organization: &str,
    event_type: &'static str,
    stream: &'static str,
) -> Span {
    spans::send_span("publish", event_type, stream, organization, None)
}

/// Runs one publish (`prepare` then `send`, or `send` alone) in its `send`
/// span (from [`publish_span`]), and records its span attributes and
/// metrics. A combinator, not an `async fn`: one taking the publish as an
/// argument holds it twice (the argument and the awaited copy), which made
/// every publish's future 4.7 KB instead of 2.4.
pub(crate) fn observe_publish(
    span: Span,
    event_type: &'static str,
    stream: &'static str,
    publish: impl Future<Output = Result<Published, PublishError>>,
) -> impl Future<Output = Result<Published, PublishError>> {
    let started = Instant::now();
    let in_flight = metrics::PublishInFlight::start(event_type);
    publish.instrument(span.clone()).map(move |result| {
        drop(in_flight);
        spans::sent(&span, &result);
        metrics::published("publish", event_type, stream, started, [&result]);
        result
    })
}

/// Runs a batch publish in one `send` span, and records its metrics.
pub(crate) fn observe_batch(
    organization: &str,
    event_type: &'static str,
    stream: &'static str,
    count: usize,
    publish: impl Future<Output = Vec<Result<Published, PublishError>>>,
) -> impl Future<Output = Vec<Result<Published, PublishError>>> {
    let span = spans::send_span(
        "publish_batch",
        event_type,
        stream,
        organization,
        Some(count),
    );
    let started = Instant::now();
    let in_flight = metrics::PublishInFlight::start(event_type);
    publish.instrument(span.clone()).map(move |results| {
        drop(in_flight);
        if let Some(error) = results.iter().find_map(|r| r.as_ref().err()) {
            spans::failed(&span, error.kind_name());
        }
        metrics::published("publish_batch", event_type, stream, started, &results);
        results
    })
}

/// Records a prepared event's subject, id and size on the current send span.
pub(crate) fn prepared(prepared: &crate::publish::Prepared) {
    spans::prepared(&tracing::Span::current(), prepared);
}

/// Bucket bounds (seconds) that suit the duration histograms: from half a
/// millisecond (a publish on loopback) to 30 s (a retried publish, a slow
/// handler). For an exporter that needs them (Prometheus histograms).
pub const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Describes every metric (help text and unit) to the installed recorder;
/// call it once after installing one. Exporters use the unit in names
/// (Prometheus with recommended naming: `..._seconds`, counters `..._total`).
pub fn describe_metrics() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    use names::*;
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Duration of a publish, from the call to its last PubAck, retries included"
    );
    describe_counter!(
        SENT_MESSAGES,
        Unit::Count,
        "Events handed to the server, by outcome"
    );
    describe_counter!(
        CONSUMED_MESSAGES,
        Unit::Count,
        "Events received and decoded by a consumer group"
    );
    describe_histogram!(
        PROCESS_DURATION,
        Unit::Seconds,
        "Duration of one handler run, by outcome"
    );
    describe_counter!(
        PUBLISH_ATTEMPTS,
        Unit::Count,
        "Publish attempts, the first and each retry"
    );
    describe_counter!(PUBLISH_RETRIES, Unit::Count, "Publish retries");
    describe_counter!(
        PUBLISH_FAILURES,
        Unit::Count,
        "Publishes that failed, by error type"
    );
    describe_gauge!(
        PUBLISH_IN_FLIGHT,
        Unit::Count,
        "Publishes waiting for their PubAck or retrying"
    );
    describe_counter!(HANDLER_RUNS, Unit::Count, "Handler runs, by outcome");
    describe_counter!(ACKS, Unit::Count, "Events acknowledged");
    describe_counter!(NAKS, Unit::Count, "Events NAKed for redelivery, by reason");
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Events moved to the dead-letter queue, by reason"
    );
    describe_gauge!(
        CONSUMER_IN_FLIGHT,
        Unit::Count,
        "Events held by a subscriber's handler slots"
    );
    describe_gauge!(
        LAG_EVENTS,
        Unit::Count,
        "Events of a stream a group has not handled yet"
    );
    describe_gauge!(
        LAG_SECONDS,
        Unit::Seconds,
        "Age of a group's oldest unhandled event"
    );
    describe_gauge!(
        DLQ_DEPTH,
        Unit::Count,
        "Dead letters per group and event type"
    );
}
