//! What streams hold and how far behind each consumer group is: the figures
//! an operator reads before a lagging group loses events to a stream's age
//! or byte limit (`tidings stats`).
//!
//! Read-only: stream and consumer info, and one stored message per group
//! (its oldest unhandled event, for that event's age).
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use time::OffsetDateTime;

/// A stream's contents against its limits, and its consumer groups.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// The stream.
    pub stream: String,
    /// Events stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// The stream's byte limit (`None`: unlimited).
    pub max_bytes: Option<u64>,
    /// The stream's age limit (`None`: unlimited).
    pub max_age: Option<Duration>,
    /// How long ago the oldest stored event was stored (`None`: empty).
    pub oldest_age: Option<Duration>,
    /// The last sequence stored (with two readings, the ingest rate).
    pub last_sequence: u64,
    /// Whether a full stream evicts its oldest events (`discard: old`)
    /// rather than refusing new ones: only then does `max_bytes` evict.
    pub discards_old: bool,
    /// Each durable consumer (group) of the stream, by name.
    pub groups: Vec<GroupStats>,
}

impl StreamStats {
    /// The share of `max_bytes` in use (0 to 1), if the stream has one.
    pub fn bytes_used(&self) -> Option<f64> {
        share(self.bytes as f64, self.max_bytes? as f64)
    }

    /// The oldest event's age as a share of `max_age` (0 to 1), if the
    /// stream has an age limit and an event.
    pub fn age_used(&self) -> Option<f64> {
        share(self.oldest_age?.as_secs_f64(), self.max_age?.as_secs_f64())
    }
}

/// `part / whole`, for a positive whole.
fn share(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// How far behind one consumer group is on one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// The durable consumer's name (the group).
    pub group: String,
    /// Events not yet delivered to the group.
    pub pending: u64,
    /// Events delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Events delivered more than once and not yet acknowledged.
    pub redelivered: u64,
    /// The group's oldest event not yet acknowledged, if any.
    pub oldest_unhandled: Option<Unhandled>,
}

impl GroupStats {
    /// Events stored and not yet handled: pending plus unacknowledged.
    pub fn lag(&self) -> u64 {
        self.pending.saturating_add(self.ack_pending)
    }
}

/// A group's oldest unhandled event.
#[derive(Debug, Clone, PartialEq)]
pub struct Unhandled {
    /// Its stream sequence.
    pub sequence: u64,
    /// How long ago it was stored: the group's lag as a time.
    pub age: Duration,
    /// How long until the stream's `max_age` evicts it, unhandled (`None`:
    /// no age limit). Zero when it is due now.
    pub evicted_in: Option<Duration>,
    /// The bytes the stream holds from this event to its end, estimated as
    /// the events from it on (the stream's count less those stored before
    /// it, exact without deletions before it) times the stream's mean
    /// event size. With `discard: old` the stream evicts this event once
    /// these bytes, growing with every new event, reach `max_bytes`.
    pub bytes_from: u64,
    /// How many more bytes the stream can take before `max_bytes` evicts
    /// this event: `max_bytes - bytes_from` (`None`: no byte limit, or the
    /// stream refuses new events when full, `discard: new`).
    pub byte_headroom: Option<u64>,
}

impl Unhandled {
    /// `bytes_from` as a share of `max_bytes` (0 to 1; 1 when due),
    /// when `max_bytes` can evict it.
    pub fn bytes_used(&self) -> Option<f64> {
        let headroom = self.byte_headroom?;
        share(
            self.bytes_from as f64,
            self.bytes_from.saturating_add(headroom) as f64,
        )
    }
}

/// Why figures could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The stream does not exist.
    #[error(
        "stream {stream} does not exist on the server: provision it with \
         `tidings streams apply --profile <profile>`"
    )]
    MissingStream {
        /// The stream.
        stream: String,
    },
    /// The server did not answer a request.
    #[error("reading {what} of stream {stream}: {detail}")]
    Server {
        /// The stream.
        stream: String,
        /// What was being read.
        what: &'static str,
        /// The server's answer.
        detail: String,
    },
}

/// Reads the figures of each of `streams`, at `now`.
pub async fn collect(
    js: &jetstream::Context,
    streams: &[String],
    now: OffsetDateTime,
) -> Result<Vec<StreamStats>, StatsError> {
    let mut out = Vec::with_capacity(streams.len());
    for name in streams {
        out.push(stream_stats(js, name, now).await?);
    }
    Ok(out)
}

async fn stream_stats(
    js: &jetstream::Context,
    name: &str,
    now: OffsetDateTime,
) -> Result<StreamStats, StatsError> {
    let server = |what: &'static str| {
        move |detail: String| StatsError::Server {
            stream: name.to_string(),
            what,
            detail,
        }
    };
    let handle = match js.get_stream(name).await {
        Ok(handle) => handle,
        Err(e) if crate::streams::is_not_found(&e) => {
            return Err(StatsError::MissingStream {
                stream: name.to_string(),
            })
        }
        Err(e) => return Err(server("info")(e.to_string())),
    };
    let info = handle
        .get_info()
        .await
        .map_err(|e| server("info")(e.to_string()))?;
    let max_age = (!info.config.max_age.is_zero()).then_some(info.config.max_age);
    let max_bytes = u64::try_from(info.config.max_bytes).ok().filter(|b| *b > 0);
    let discards_old = info.config.discard == stream::DiscardPolicy::Old;
    let limits = Limits {
        max_age,
        max_bytes: max_bytes.filter(|_| discards_old),
        state: &info.state,
    };
    let oldest_age = (info.state.messages > 0).then(|| age(now, info.state.first_timestamp));
    let mut groups = Vec::new();
    let mut consumers = handle.consumers();
    while let Some(consumer) = consumers.next().await {
        let consumer = consumer.map_err(|e| server("consumers")(e.to_string()))?;
        if consumer.config.durable_name.is_none() {
            continue; // an ephemeral reader (a replay, a tail), not a group
        }
        let oldest_unhandled = oldest_unhandled(&handle, &consumer, &limits, now)
            .await
            .map_err(server("the oldest unhandled event"))?;
        groups.push(GroupStats {
            group: consumer.name,
            pending: consumer.num_pending,
            ack_pending: consumer.num_ack_pending as u64,
            redelivered: consumer.num_redelivered as u64,
            oldest_unhandled,
        });
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(StreamStats {
        stream: name.to_string(),
        messages: info.state.messages,
        bytes: info.state.bytes,
        max_bytes,
        max_age,
        oldest_age,
        last_sequence: info.state.last_sequence,
        discards_old,
        groups,
    })
}

/// `now - then`, zero if `then` is in the future (clock skew).
fn age(now: OffsetDateTime, then: OffsetDateTime) -> Duration {
    Duration::try_from(now - then).unwrap_or(Duration::ZERO)
}

/// What evicts a stream's events, and its state.
struct Limits<'a> {
    max_age: Option<Duration>,
    /// The byte limit, when it evicts (`discard: old`).
    max_bytes: Option<u64>,
    state: &'a stream::State,
}

impl Limits<'_> {
    /// The estimated bytes from `sequence` to the end (see
    /// [`Unhandled::bytes_from`]).
    fn bytes_from(&self, sequence: u64) -> u64 {
        let state = self.state;
        if state.messages == 0 {
            return 0;
        }
        let before = sequence.saturating_sub(state.first_sequence);
        let from = state.messages.saturating_sub(before);
        u64::try_from(u128::from(from) * u128::from(state.bytes) / u128::from(state.messages))
            .unwrap_or(u64::MAX)
    }
}

/// The first stored event after the group's ack floor that its filters
/// select: the oldest one it has not handled.
async fn oldest_unhandled(
    stream: &stream::Stream,
    consumer: &consumer::Info,
    limits: &Limits<'_>,
    now: OffsetDateTime,
) -> Result<Option<Unhandled>, String> {
    if consumer.num_pending == 0 && consumer.num_ack_pending == 0 {
        return Ok(None);
    }
    let after = consumer.ack_floor.stream_sequence.saturating_add(1);
    let mut filters: Vec<String> = consumer.config.filter_subjects.clone();
    if !consumer.config.filter_subject.is_empty() {
        filters.push(consumer.config.filter_subject.clone());
    }
    if filters.is_empty() {
        filters.push(">".to_string());
    }
    let mut oldest: Option<(u64, OffsetDateTime)> = None;
    for filter in filters {
        let found = stream
            .raw_message_builder()
            .sequence(after)
            .next_by_subject(filter)
            .send()
            .await;
        match found {
            Ok(message) => {
                if oldest.is_none_or(|(sequence, _)| message.sequence < sequence) {
                    oldest = Some((message.sequence, message.time));
                }
            }
            // Nothing stored under this filter after the floor.
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(oldest.map(|(sequence, stored)| {
        let age = age(now, stored);
        let bytes_from = limits.bytes_from(sequence);
        Unhandled {
            sequence,
            age,
            evicted_in: limits.max_age.map(|limit| limit.saturating_sub(age)),
            bytes_from,
            byte_headroom: limits.max_bytes.map(|max| max.saturating_sub(bytes_from)),
        }
    }))
}
