//! The W3C trace context an event carries: the CloudEvents
//! distributed-tracing extension (`traceparent`, `tracestate`).
use crate::envelope::Envelope;
use crate::publish::PublishContext;
use crate::subscribe::EventMeta;

/// The extension attribute (and `ce-traceparent` header) carrying the W3C
/// `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The extension attribute (and `ce-tracestate` header) carrying the W3C
/// `tracestate`.
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` accepted (the W3C limit a vendor must propagate).
const MAX_TRACESTATE: usize = 512;

/// A W3C trace context: a checked `traceparent` and an optional `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

/// Why a trace context was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTraceContext {
    /// The `traceparent` is not `VERSION-TRACEID-PARENTID-FLAGS` in lower-case
    /// hex, or its trace or parent id is all zeros.
    #[error(
        "traceparent {0:?} is not a W3C traceparent: expected 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, \
         lower-case, ids not all zeros (see https://www.w3.org/TR/trace-context/#traceparent-header)"
    )]
    Traceparent(String),
    /// The `tracestate` is longer than 512 characters or holds characters
    /// outside printable ASCII.
    #[error("tracestate {0:?} is not a W3C tracestate: at most 512 printable ASCII characters")]
    Tracestate(String),
}

impl TraceContext {
    /// A trace context from its two headers' values; `traceparent` is
    /// checked against the W3C format, `tracestate` for length and characters.
    pub fn new(traceparent: &str, tracestate: Option<&str>) -> Result<Self, InvalidTraceContext> {
        if !is_traceparent(traceparent) {
            return Err(InvalidTraceContext::Traceparent(traceparent.to_string()));
        }
        let tracestate = tracestate.filter(|s| !s.is_empty());
        if let Some(state) = tracestate {
            let printable = state.bytes().all(|b| (b' '..=b'~').contains(&b));
            if state.len() > MAX_TRACESTATE || !printable {
                return Err(InvalidTraceContext::Tracestate(state.to_string()));
            }
        }
        Ok(Self {
            traceparent: traceparent.to_string(),
            tracestate: tracestate.map(str::to_string),
        })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id: 32 lower-case hex digits.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The parent (span) id: 16 lower-case hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the producer sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|flags| flags & 1 == 1)
    }

    /// The trace context of an event's extension attributes, if it carries
    /// a valid one (an invalid one is ignored, as W3C asks of a receiver).
    pub(crate) fn from_extensions(
        extensions: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Option<Self> {
        let traceparent = extensions.get(TRACEPARENT)?.as_str()?;
        let tracestate = extensions.get(TRACESTATE).and_then(|v| v.as_str());
        Self::new(traceparent, tracestate)
            .or_else(|_| Self::new(traceparent, None))
            .ok()
    }
}

/// `VERSION-TRACEID-PARENTID-FLAGS`: version `00` exactly 55 characters; a
/// later version may append `-...` fields; version `ff` is invalid.
fn is_traceparent(value: &str) -> bool {
    let bytes = value.as_bytes();
    let hex = |range: std::ops::Range<usize>| {
        bytes.get(range).is_some_and(|s| {
            s.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        })
    };
    let zeros = |range: std::ops::Range<usize>| bytes[range].iter().all(|b| *b == b'0');
    let shape = bytes.len() >= 55
        && hex(0..2)
        && bytes[2] == b'-'
        && hex(3..35)
        && bytes[35] == b'-'
        && hex(36..52)
        && bytes[52] == b'-'
        && hex(53..55);
    if !shape || &bytes[0..2] == b"ff" || zeros(3..35) || zeros(36..52) {
        return false;
    }
    match &bytes[0..2] {
        b"00" => bytes.len() == 55,
        _ => bytes.len() == 55 || bytes[55] == b'-',
    }
}

impl PublishContext {
    /// Carries this W3C trace context in the event (the CloudEvents
    /// `traceparent` and `tracestate` extensions), so that its consumers can
    /// continue the trace. Without it, and with the `otel` feature, a
    /// publish carries the context of its own `send` span.
    pub fn with_trace_context(self, context: &TraceContext) -> Self {
        let with = self.with_extension(TRACEPARENT, context.traceparent.clone().into());
        match &context.tracestate {
            Some(state) => with.with_extension(TRACESTATE, state.clone().into()),
            None => with,
        }
    }

    /// The trace context this publish carries, if the caller set one.
    pub fn trace_context(&self) -> Option<TraceContext> {
        TraceContext::from_extensions(self.extensions())
    }
}

impl EventMeta {
    /// The producer's trace context (the event's `traceparent` and
    /// `tracestate`), if it carries a valid one.
    pub fn trace_context(&self) -> Option<TraceContext> {
        TraceContext::from_extensions(&self.extensions)
    }
}

impl Envelope {
    /// The producer's trace context (the event's `traceparent` and
    /// `tracestate`), if it carries a valid one.
    pub fn trace_context(&self) -> Option<TraceContext> {
        TraceContext::from_extensions(&self.extensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_w3c_traceparent_is_read_and_a_malformed_one_refused() {
        let context = TraceContext::new(VALID, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id(), "00f067aa0ba902b7");
        assert!(context.sampled());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\u{e9}1",
        ] {
            assert!(
                matches!(
                    TraceContext::new(bad, None),
                    Err(InvalidTraceContext::Traceparent(_))
                ),
                "{bad:?} accepted"
            );
        }
        // A later version may append fields.
        assert!(TraceContext::new(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            None
        )
        .is_ok());
        assert!(matches!(
            TraceContext::new(VALID, Some("a=\n")),
            Err(InvalidTraceContext::Tracestate(_))
        ));
    }
}
