//! Replaying stored events: chosen types (and tenant) of one stream, from a
//! time or a stream sequence, up to an end time or to the end of the stream
//! as it is when the replay starts, in stream order.
//!
//! A replay reads through an ephemeral consumer of its own: the durable
//! consumer groups and their positions are not touched. It ends at the
//! stream's last sequence of its start, also while events keep being
//! published, and never waits for messages deleted after its start. Times are
//! the stream's storage times (what JetStream orders and starts by), so
//! `[from, to)` selects the events stored in that interval.
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::envelope::{DecodeError, Envelope};
use crate::subject::{check_subject, filter_for_type, SubjectMismatch};
use crate::token::OrganizationId;

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStart {
    /// The first event stored at or after this time.
    Time(OffsetDateTime),
    /// This stream sequence (or the first after it that matches).
    Sequence(u64),
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySpec {
    /// The stream.
    pub stream: String,
    /// The event types (`service.entity.action`), all stored in `stream`.
    pub event_types: Vec<String>,
    /// Only this tenant's events.
    pub organization: Option<OrganizationId>,
    /// Where to start.
    pub start: ReplayStart,
    /// Stop before the first event stored at or after this time; without
    /// it, at the last event stored when the replay started.
    pub until: Option<OffsetDateTime>,
}

/// One replayed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// The event.
    pub envelope: Envelope,
    /// Its NATS subject.
    pub subject: String,
    /// Its stream sequence.
    pub stream_sequence: u64,
    /// When the stream stored it.
    pub stored_at: OffsetDateTime,
}

/// A replay whose requested start lies before the oldest event the stream
/// still holds, while earlier events were removed (by `max_age`,
/// `max_bytes`, a purge or a delete): the range is truncated, and the
/// replay starts at the oldest retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// Where the replay was asked to start.
    pub requested: ReplayStart,
    /// The stream's oldest retained sequence when the replay started
    /// (one past its last sequence when it holds nothing).
    pub first_retained: u64,
    /// When that event was stored (`None` when the stream holds nothing).
    pub first_stored_at: Option<OffsetDateTime>,
}

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let requested = match self.requested {
            ReplayStart::Time(t) => format!("time {t}"),
            ReplayStart::Sequence(s) => format!("sequence {s}"),
        };
        match self.first_stored_at {
            Some(at) => write!(
                f,
                "the replay was asked to start at {requested}, but events before sequence {} \
                 (stored {at}) are no longer in the stream: the range is truncated",
                self.first_retained
            ),
            None => write!(
                f,
                "the replay was asked to start at {requested}, but every event up to sequence {} \
                 was removed from the stream: the range is truncated",
                self.first_retained.saturating_sub(1)
            ),
        }
    }
}

/// Whether a replay from `start` misses events the stream no longer holds.
fn truncation(start: ReplayStart, state: &jetstream::stream::State) -> Option<Truncated> {
    // Nothing was ever removed: the stream holds everything from sequence 1.
    if state.first_sequence <= 1 {
        return None;
    }
    let empty = state.messages == 0;
    let before = match start {
        ReplayStart::Sequence(sequence) => sequence < state.first_sequence,
        ReplayStart::Time(from) if empty => from <= state.last_timestamp,
        ReplayStart::Time(from) => from < state.first_timestamp,
    };
    before.then_some(Truncated {
        requested: start,
        first_retained: state.first_sequence,
        first_stored_at: (!empty).then_some(state.first_timestamp),
    })
}

/// Why a replay failed, or one event of it.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The spec is not usable.
    #[error("invalid replay: {0}")]
    Invalid(String),
    /// The replay's consumer could not be created or read.
    #[error("replay of stream {stream}: {detail}")]
    Server {
        /// The stream.
        stream: String,
        /// The server's answer.
        detail: String,
    },
    /// A stored message is not a readable event (the replay goes on).
    #[error("stream {stream} sequence {sequence} is not a readable event: {source}")]
    Decode {
        /// The stream.
        stream: String,
        /// Its sequence.
        sequence: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// A stored message's subject contradicts its body (type, tenant or
    /// entity key): it is not replayed (the replay goes on).
    #[error("stream {stream} sequence {sequence} is not replayed: {source}")]
    Mismatch {
        /// The stream.
        stream: String,
        /// Its sequence.
        sequence: u64,
        /// What differs.
        #[source]
        source: SubjectMismatch,
    },
    /// A handler failed on a replayed event: the replay stops there, so it
    /// can be resumed from this sequence.
    #[error("replay stopped at stream {stream} sequence {sequence} ({event_type}): {error}")]
    Handler {
        /// The stream.
        stream: String,
        /// The sequence of the failed event.
        sequence: u64,
        /// Its type.
        event_type: String,
        /// The handler's error.
        error: String,
    },
}

/// A stored message met by a [`Scan`].
pub(crate) struct Scanned {
    pub(crate) message: async_nats::Message,
    pub(crate) sequence: u64,
    pub(crate) stored_at: OffsetDateTime,
}

/// How many messages a scan fetches per request.
const SCAN_BATCH: usize = 256;

/// How long the server keeps a scan's consumer between two fetches (a
/// replay handler may take its time over one batch).
const SCAN_INACTIVE: Duration = Duration::from_secs(600);

/// Reads the messages of a stream matching some filters, in stream order,
/// from a start to an end time or to the end of the stream as it was when
/// the scan started, through an ephemeral consumer of its own.
///
/// It fetches without waiting (`no_wait`): a fetch that finds nothing ends
/// the scan, so messages deleted after the start never keep it waiting, and
/// it stops at the stream's last sequence of its start, so messages stored
/// since never keep it following the tail.
pub(crate) struct Scan {
    stream: String,
    consumer: Option<consumer::PullConsumer>,
    batch: Option<consumer::pull::Batch>,
    /// Whether the current fetch returned a message.
    fetched: bool,
    until: Option<OffsetDateTime>,
    /// The stream's last sequence when the scan started.
    end: u64,
    /// Whether the start lies before the oldest retained event.
    truncated: Option<Truncated>,
}

impl Scan {
    pub(crate) async fn start(
        handle: &jetstream::stream::Stream,
        mut filters: Vec<String>,
        start: ReplayStart,
        until: Option<OffsetDateTime>,
    ) -> Result<Self, ReplayError> {
        if let (ReplayStart::Time(from), Some(until)) = (start, until) {
            if from >= until {
                return Err(ReplayError::Invalid(format!(
                    "the range [{from}, {until}) is empty"
                )));
            }
        }
        let stream = handle.cached_info().config.name.clone();
        let server = |detail: String| ReplayError::Server {
            stream: stream.clone(),
            detail,
        };
        filters.sort();
        filters.dedup();
        let deliver_policy = match start {
            ReplayStart::Time(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
            ReplayStart::Sequence(start_sequence) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start_sequence.max(1),
            },
        };
        // The end, read before the consumer counts its pending messages.
        let state = handle
            .get_info()
            .await
            .map_err(|e| server(e.to_string()))?
            .state;
        let end = state.last_sequence;
        let truncated = truncation(start, &state);
        let consumer = handle
            .create_consumer(consumer::pull::Config {
                description: Some("Tidings scan".into()),
                filter_subjects: filters,
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: SCAN_INACTIVE,
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| server(e.to_string()))?;
        let consumer = (consumer.cached_info().num_pending > 0).then_some(consumer);
        Ok(Self {
            stream,
            consumer,
            batch: None,
            fetched: false,
            until,
            end,
            truncated,
        })
    }

    /// Ends the scan.
    fn finish(&mut self) {
        self.consumer = None;
        self.batch = None;
    }

    fn failed(&mut self, detail: String) -> Option<Result<Scanned, ReplayError>> {
        self.finish();
        Some(Err(ReplayError::Server {
            stream: self.stream.clone(),
            detail,
        }))
    }

    /// The next message; `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Result<Scanned, ReplayError>> {
        loop {
            let consumer = self.consumer.as_ref()?;
            if self.batch.is_none() {
                match consumer.fetch().max_messages(SCAN_BATCH).messages().await {
                    Ok(batch) => {
                        self.fetched = false;
                        self.batch = Some(batch);
                    }
                    Err(e) => return self.failed(e.to_string()),
                }
            }
            let Some(batch) = self.batch.as_mut() else {
                continue;
            };
            let message = match batch.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return self.failed(e.to_string()),
                None if self.fetched => {
                    // The batch is used up; fetch the next.
                    self.batch = None;
                    continue;
                }
                None => {
                    // Nothing left to deliver: the end (also when the
                    // messages counted at the start were deleted since).
                    self.finish();
                    return None;
                }
            };
            self.fetched = true;
            let (sequence, stored_at) = match message.info() {
                Ok(info) => (info.stream_sequence, info.published),
                Err(e) => return self.failed(format!("a message without JetStream metadata: {e}")),
            };
            if sequence > self.end || self.until.is_some_and(|until| stored_at >= until) {
                self.finish();
                return None;
            }
            if sequence == self.end {
                self.finish();
            }
            return Some(Ok(Scanned {
                message: message.split().0,
                sequence,
                stored_at,
            }));
        }
    }
}

/// A running replay: call [`next`](Self::next) until it returns `None`.
pub struct Replay {
    scan: Scan,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("stream", &self.scan.stream)
            .field("until", &self.scan.until)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Starts a replay.
    ///
    /// # Errors
    /// No event types, an empty range, or the server refused the consumer.
    pub async fn start(js: &jetstream::Context, spec: ReplaySpec) -> Result<Self, ReplayError> {
        if spec.event_types.is_empty() {
            return Err(ReplayError::Invalid("name at least one event type".into()));
        }
        let filters = spec
            .event_types
            .iter()
            .map(|t| filter_for_type(t, spec.organization.as_ref()))
            .collect();
        let handle = js
            .get_stream(&spec.stream)
            .await
            .map_err(|e| ReplayError::Server {
                stream: spec.stream.clone(),
                detail: e.to_string(),
            })?;
        let scan = Scan::start(&handle, filters, spec.start, spec.until).await?;
        if let Some(truncated) = &scan.truncated {
            tracing::warn!(stream = %spec.stream, "{truncated}");
        }
        Ok(Self { scan })
    }

    /// Whether the requested start lies before the oldest event the stream
    /// still holds, earlier events having been removed: the replay then
    /// starts later than asked (also logged at warn when it starts).
    pub fn truncated(&self) -> Option<&Truncated> {
        self.scan.truncated.as_ref()
    }

    /// The next event, in stream order; `None` at the end of the range. A
    /// message that is not a readable event, or whose subject contradicts
    /// its body, is an error item, and the replay goes on after it.
    pub async fn next(&mut self) -> Option<Result<Replayed, ReplayError>> {
        let scanned = match self.scan.next().await? {
            Ok(scanned) => scanned,
            Err(e) => return Some(Err(e)),
        };
        let Scanned {
            message,
            sequence,
            stored_at,
        } = scanned;
        let stream = &self.scan.stream;
        let envelope = match Envelope::decode_message(message.headers.as_ref(), &message.payload) {
            Ok(envelope) => envelope,
            Err(source) => {
                return Some(Err(ReplayError::Decode {
                    stream: stream.clone(),
                    sequence,
                    source,
                }))
            }
        };
        if let Err(source) = check_subject(&message.subject, &envelope) {
            return Some(Err(ReplayError::Mismatch {
                stream: stream.clone(),
                sequence,
                source,
            }));
        }
        Some(Ok(Replayed {
            envelope,
            subject: message.subject.to_string(),
            stream_sequence: sequence,
            stored_at,
        }))
    }
}
