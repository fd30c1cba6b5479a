//! The spans of a publish and of a handled event, after OpenTelemetry's
//! messaging conventions. `tracing-opentelemetry` reads `otel.name`,
//! `otel.kind` and `otel.status_code` as the span's name, kind and status.
use tracing::field::Empty;
use tracing::Span;

use super::MESSAGING_SYSTEM;
use crate::envelope::Envelope;
use crate::publish::{Prepared, PublishError, Published};

/// The `tracing` name of a publish's span (kind PRODUCER, OpenTelemetry
/// name `send <event type>`), with `messaging.system` = `nats`,
/// `messaging.operation.type` = `send`, `messaging.operation.name` =
/// `publish` or `publish_batch`, `messaging.destination.name` (the
/// subject), `messaging.message.id` (the event id),
/// `messaging.message.body.size`, `messaging.batch.message_count` (batches),
/// `tidings.event_type`, `tidings.organization_id`, `tidings.stream`,
/// `tidings.stream_sequence`, `tidings.duplicate`, `tidings.attempts`, and
/// `error.type` with status ERROR on failure.
pub const SEND_SPAN: &str = "send";

/// The `tracing` name of a handled event's span (kind CONSUMER,
/// OpenTelemetry name `process <event type>`, a child of the producer's
/// `traceparent` with the `otel` feature), with `messaging.system`,
/// `messaging.operation.type` = `process`, `messaging.operation.name` =
/// `process`, `messaging.destination.name` (the subject),
/// `messaging.consumer.group.name`, `messaging.message.id`,
/// `tidings.event_type`, `tidings.organization_id`, `tidings.stream`,
/// `tidings.stream_sequence`, `tidings.delivery` (the delivery count),
/// `tidings.outcome` (`acked`, `nacked`, `dead_lettered`, `released`), and
/// `error.type` with status ERROR when the handler failed.
pub const PROCESS_SPAN: &str = "process";

/// The span of one publish (`publish`, `publish_with_id`) or of a batch.
pub(crate) fn send_span(
    operation: &'static str,
    event_type: &'static str,
    stream: &'static str,
    organization: &str,
    batch: Option<usize>,
) -> Span {
    tracing::info_span!(
        SEND_SPAN,
        otel.name = %format_args!("send {event_type}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = MESSAGING_SYSTEM,
        messaging.operation.type = "send",
        messaging.operation.name = operation,
        messaging.destination.name = Empty,
        messaging.message.id = Empty,
        messaging.message.body.size = Empty,
        messaging.batch.message_count = batch,
        tidings.event_type = event_type,
        tidings.organization_id = organization,
        tidings.stream = stream,
        tidings.stream_sequence = Empty,
        tidings.duplicate = Empty,
        tidings.attempts = Empty,
        error.type = Empty,
    )
}

/// Records what a prepared event adds to its send span.
pub(crate) fn prepared(span: &Span, prepared: &Prepared) {
    if span.is_disabled() {
        return;
    }
    span.record("messaging.destination.name", prepared.subject());
    span.record(
        "messaging.message.id",
        tracing::field::display(prepared.event_id()),
    );
    span.record("messaging.message.body.size", prepared.body().len());
}

/// Records a single publish's result on its send span.
pub(crate) fn sent(span: &Span, result: &Result<Published, PublishError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(published) => {
            span.record("tidings.stream_sequence", published.sequence);
            span.record("tidings.duplicate", published.duplicate);
            span.record("tidings.attempts", published.attempts);
        }
        Err(error) => failed(span, error.kind_name()),
    }
}

/// Marks a span failed with `error.type`.
pub(crate) fn failed(span: &Span, error_type: &str) {
    span.record("otel.status_code", "error");
    span.record("error.type", error_type);
}

/// The span of one delivered event's handling, continuing the producer's
/// trace when the `otel` feature is on.
pub(crate) fn process_span(
    group: &str,
    envelope: &Envelope,
    subject: &str,
    stream: &str,
    stream_sequence: u64,
    delivery: u32,
) -> Span {
    let span = tracing::info_span!(
        PROCESS_SPAN,
        otel.name = %format_args!("process {}", envelope.event_type),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = MESSAGING_SYSTEM,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = subject,
        messaging.consumer.group.name = group,
        messaging.message.id = %envelope.id,
        tidings.event_type = envelope.event_type.as_str(),
        tidings.organization_id = envelope.organization_id.as_str(),
        tidings.stream = stream,
        tidings.stream_sequence = stream_sequence,
        tidings.delivery = delivery,
        tidings.outcome = Empty,
        error.type = Empty,
    );
    #[cfg(feature = "otel")]
    if !span.is_disabled() {
        if let Some(context) = envelope.trace_context() {
            super::otel::set_parent(&span, &context);
        }
    }
    span
}

/// Records how a handled event was settled on the current (process) span.
pub(crate) fn settled(outcome: &'static str) {
    Span::current().record("tidings.outcome", outcome);
}

/// Marks the current (process) span failed: the handler returned an error
/// or panicked.
pub(crate) fn handler_failed(error_type: &'static str) {
    failed(&Span::current(), error_type);
}
