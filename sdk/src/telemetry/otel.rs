//! Feature `otel`: the OpenTelemetry context of `tracing` spans, to and from
//! an event's `traceparent`.
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TraceContext;

/// The W3C trace context of `span`, if it belongs to a valid OpenTelemetry
/// trace (an OpenTelemetry layer is installed and the span is enabled).
pub(crate) fn context_of(span: &Span) -> Option<TraceContext> {
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    let tracestate = span_context.trace_state().header();
    TraceContext::new(&traceparent, Some(&tracestate)).ok()
}

/// Makes `span` a child of the remote span of `context`.
pub(crate) fn set_parent(span: &Span, context: &TraceContext) {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(context.trace_id()),
        SpanId::from_hex(context.parent_id()),
    ) else {
        return;
    };
    let flags = if context.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let state = context
        .tracestate()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let remote = SpanContext::new(trace_id, span_id, flags, true, state);
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "the process span could not continue the producer's trace");
    }
}
