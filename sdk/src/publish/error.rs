use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::envelope::EncodeError;
use crate::schema::{SchemaError, Violation};
use crate::token::InvalidToken;

/// One failed attempt to get a PubAck.
#[derive(Debug, Clone)]
pub struct AttemptFailure {
    /// 1-based attempt number.
    pub attempt: u32,
    /// What went wrong.
    pub kind: AttemptFailureKind,
    /// The client's or server's message.
    pub detail: String,
    /// The client's error, when there is one (its [`source`](std::error::Error::source)).
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl std::error::Error for AttemptFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The class of a failed attempt, which decides whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailureKind {
    /// No PubAck in time: the event may or may not be stored.
    TimedOut,
    /// No stream answered (503 no responders): no stream for the subject, or
    /// one without a leader during an election.
    NoResponders,
    /// The connection broke while sending.
    Disconnected,
    /// The stream is still storing an earlier attempt under the same
    /// `Nats-Msg-Id` (JetStream error 10158, "duplicate message id is in
    /// process"): this retry overtook the attempt it repeats, which may yet
    /// be stored. Retried (the next answer is usually `duplicate`); if the
    /// retries run out, the outcome is unknown, never "not stored".
    InProcess,
    /// The server refused the message (not retried).
    Rejected,
    /// The client refused to send the message, before the server saw it (a
    /// payload over the limit of the server it is connected to, a subject
    /// it cannot send on, a client closed); not retried.
    ClientRefused,
}

impl AttemptFailureKind {
    /// Whether a failure of this kind is worth another attempt.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            AttemptFailureKind::Rejected | AttemptFailureKind::ClientRefused
        )
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            AttemptFailureKind::TimedOut => "no PubAck in time",
            AttemptFailureKind::NoResponders => "no responders",
            AttemptFailureKind::Disconnected => "disconnected",
            AttemptFailureKind::InProcess => "an earlier attempt is still being stored",
            AttemptFailureKind::Rejected => "rejected by the server",
            AttemptFailureKind::ClientRefused => "refused by the client",
        };
        write!(f, "attempt {}: {kind} ({})", self.attempt, self.detail)
    }
}

/// What is known of an event's fate after a failed publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was stored: every attempt was refused before reaching a stream.
    NotStored,
    /// At least one attempt timed out after the message was sent, or the
    /// connection broke: the event may be stored (the client can still
    /// write an attempt it holds after it reconnects). Publishing it again
    /// under the same event id, with
    /// [`Publisher::publish_with_id`](super::Publisher::publish_with_id) or
    /// by sending the same [`Prepared`](super::Prepared) event again, is
    /// stored at most once within the stream's duplicate window;
    /// [`Publisher::publish`](super::Publisher::publish) would mint a new id
    /// and could store a second copy.
    Unknown,
}

/// Why a publish failed. Nothing fails silently: each variant says what,
/// where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The payload breaks its schema.
    #[error(
        "{event_type} v{version} payload is invalid: {}",
        crate::schema::describe(violations)
    )]
    InvalidPayload {
        /// The event type.
        event_type: &'static str,
        /// The schema version.
        version: u32,
        /// Every violation, with its JSON pointer and the schema's message.
        violations: Vec<Violation>,
    },
    /// The publisher's settings cannot keep a stream's guarantee (the retry
    /// schedule outlasts its duplicate window); nothing was sent.
    #[error(transparent)]
    Config(#[from] super::ConfigError),
    /// The payload could not be serialized.
    #[error("{event_type} payload could not be serialized: {source}")]
    Serialize {
        /// The event type.
        event_type: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The type's embedded schema is unusable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The organization id or entity key cannot be a subject token.
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The envelope could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The message is larger than the server accepts.
    #[error(
        "{event_type} event {event_id} is {size} bytes with headers, over the server's \
         max_payload of {max} bytes; make the payload smaller (store large data elsewhere and \
         send a reference) or raise max_payload on the server"
    )]
    TooLarge {
        /// The event type.
        event_type: &'static str,
        /// The event id.
        event_id: uuid::Uuid,
        /// The message size: body plus headers.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// The tenant is over the publisher's per-tenant limit
    /// ([`PublisherConfig::tenant_limit`](super::PublisherConfig::tenant_limit));
    /// nothing was sent.
    #[error(
        "organization {organization_id} is over this publisher's per-tenant limit ({limit}): \
         {event_type} event {event_id} ({size} bytes) was not sent; {}",
        match retry_after {
            Some(wait) => format!("its budget allows it again in {wait:?}: publish it later, or raise PublisherConfig::tenant_limit if this tenant's volume is legitimate"),
            None => "it is larger than the whole burst: raise PublisherConfig::tenant_limit's burst_bytes".to_string(),
        }
    )]
    TenantLimited {
        /// The tenant.
        organization_id: String,
        /// The event type.
        event_type: &'static str,
        /// The event id.
        event_id: uuid::Uuid,
        /// The message size: body plus headers.
        size: usize,
        /// The limit it is over.
        limit: super::TenantLimit,
        /// When its budget allows an event this size again; `None` if the
        /// event is larger than the whole burst.
        retry_after: Option<Duration>,
    },
    /// The publisher's `max_in_flight` publishes stayed unanswered for
    /// longer than its `queue_timeout`; this event was never sent, so
    /// nothing of it is stored.
    #[error(
        "{event_type} event {event_id} was not sent: this publisher's {max_in_flight} publishes \
         in flight left it no turn within {waited:?} (PublisherConfig::queue_timeout). The server \
         is slow or unreachable, or events come faster than it stores them: publish it again \
         later (it is safe: nothing was stored), or raise max_in_flight or queue_timeout"
    )]
    Overloaded {
        /// The event type.
        event_type: &'static str,
        /// The event id.
        event_id: uuid::Uuid,
        /// The publisher's in-flight limit.
        max_in_flight: usize,
        /// How long it waited for a turn.
        waited: Duration,
    },
    /// No stream captures the subject.
    #[error(
        "no stream stores {subject} ({event_type} belongs in {stream}); provision the streams \
         (see tidings::streams) before publishing"
    )]
    StreamMissing {
        /// The event type.
        event_type: &'static str,
        /// The stream the type declares.
        stream: &'static str,
        /// The subject.
        subject: String,
    },
    /// The server refused the message.
    #[error("the server refused {event_type} event {event_id}")]
    Rejected {
        /// The event type.
        event_type: &'static str,
        /// The event id.
        event_id: uuid::Uuid,
        /// The attempt the server refused, with its answer.
        #[source]
        failure: AttemptFailure,
    },
    /// The client refused to send the message; the server never saw it.
    #[error("the client did not send {event_type} event {event_id}")]
    ClientRefused {
        /// The event type.
        event_type: &'static str,
        /// The event id.
        event_id: uuid::Uuid,
        /// The attempt the client refused, with its error.
        #[source]
        failure: AttemptFailure,
    },
    /// Every attempt failed.
    #[error(
        "{event_type} event {event_id} on {subject}: {} attempts in {elapsed:?} failed, outcome {}: {}",
        attempts.len(),
        match outcome { Outcome::Unknown => format!("unknown (it may be stored; retry it under the same id with publisher.publish_with_id(ctx, {event_id}, event) or by sending the same Prepared event, within the stream's duplicate window: publish() would mint a new id and could store a second copy)"), Outcome::NotStored => "not stored".to_string() },
        attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    RetriesExhausted {
        /// The event type.
        event_type: &'static str,
        /// The event id, to retry with.
        event_id: uuid::Uuid,
        /// The subject.
        subject: String,
        /// What is known of the event's fate.
        outcome: Outcome,
        /// Every attempt's failure, in order.
        attempts: Vec<AttemptFailure>,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
    },
}

impl PublishError {
    /// The kind of failure as a short, stable name (`overloaded`,
    /// `retries_exhausted_unknown`, ...): the `error.type` of the publish
    /// metrics and spans, and a key for counting failures by kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::RetriesExhausted {
                outcome: Outcome::Unknown,
                ..
            } => "retries_exhausted_unknown",
            Self::RetriesExhausted { .. } => "retries_exhausted_not_stored",
            Self::Rejected { .. } => "rejected",
            Self::ClientRefused { .. } => "client_refused",
            Self::StreamMissing { .. } => "stream_missing",
            Self::TenantLimited { .. } => "tenant_limited",
            Self::Overloaded { .. } => "overloaded",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::TooLarge { .. } => "too_large",
            Self::Config(_) => "config",
            Self::Serialize { .. } => "serialize",
            Self::Schema(_) => "schema",
            Self::InvalidToken(_) => "invalid_token",
            Self::Encode(_) => "encode",
        }
    }
}
