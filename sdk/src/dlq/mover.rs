//! Moving a given-up event into DLQ_EVENTS without a moment at which it
//! exists nowhere: copy, await the PubAck, and only then terminate the
//! original.
//!
//! The copy's subject, `dlq.<group>.<type>.<org>.<sequence>`, names one
//! original message of one group, so a move repeated after a crash between
//! the copy and the terminate finds the copy already stored and does not
//! store a second one (also beyond the duplicate window; within it the
//! deterministic `Nats-Msg-Id` says the same).
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream::LastRawMessageErrorKind};
use async_nats::HeaderMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::control::without_control_headers;
use super::record::{
    DeadLetterKind, FailureRecord, ERROR_HEADER, FIRST_FAILURE_HEADER, MSG_ID_HEADER_ORIGINAL,
    REDRIVE_COUNT_HEADER, TRUNCATED_HEADER,
};
use super::DLQ_STREAM;
use crate::envelope::MSG_ID_HEADER;

/// The key-value bucket holding, per group and failing event, when it first
/// failed and how its deliveries ended (see `Attempts`).
pub const FAILURES_BUCKET: &str = "tidings_failures";

/// What a subscriber logs when it cannot open the failures bucket.
pub(crate) const MISSING_BUCKET: &str = "the failures bucket tidings_failures is missing or \
     unreadable: dead letters will not say when the first failure was, and earlier deliveries \
     of a failing event count as failed; an operator creates it with the streams: \
     `tidings streams apply --schemas <registry dir> --profile <profile>` with an operator \
     credential (or tidings::streams::apply)";

/// The DLQ subject of message `sequence` (on `subject`) given up by `group`:
/// `dlq.<group>.<first four tokens of the subject>.<sequence>`.
pub fn dlq_subject(group: &str, subject: &str, sequence: u64) -> String {
    let mut tokens: Vec<&str> = subject
        .split('.')
        .filter(|t| !t.is_empty())
        .take(4)
        .collect();
    while tokens.len() < 4 {
        tokens.push("_");
    }
    format!("dlq.{group}.{}.{sequence}", tokens.join("."))
}

/// What the failures bucket holds for one event of one group: its
/// deliveries that ended without an ack and why, so the delivery budget
/// counts only handler failures and deliveries whose outcome is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Attempts {
    /// When the handler first failed on it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) first_failure: Option<String>,
    /// Handler runs that failed (in ordered mode also those retried in
    /// place, within one delivery).
    #[serde(default)]
    pub(crate) runs: u32,
    /// Deliveries that ended with a NAK after a failed run.
    #[serde(default)]
    pub(crate) naks: u32,
    /// Deliveries released without a verdict of the handler.
    #[serde(default)]
    pub(crate) released: u32,
}

impl Attempts {
    /// A stored value; the older format held only the first failure's time.
    fn parse(value: &[u8]) -> Self {
        serde_json::from_slice(value).unwrap_or_else(|_| Self {
            first_failure: std::str::from_utf8(value).ok().map(str::to_string),
            ..Self::default()
        })
    }

    /// Of the deliveries before the server's `delivery`-th, those that
    /// ended with no outcome noted: the handler outlived the ack wait, or
    /// its process stopped.
    pub(crate) fn unknown(&self, delivery: u32) -> u32 {
        delivery
            .saturating_sub(1)
            .saturating_sub(self.naks.saturating_add(self.released))
    }

    /// The delivery budget spent before the server's `delivery`-th: failed
    /// runs and deliveries of unknown outcome.
    pub(crate) fn spent(&self, delivery: u32) -> u32 {
        self.runs.saturating_add(self.unknown(delivery))
    }
}

/// One original message, as the mover needs it.
pub(crate) struct Original<'a> {
    pub(crate) message: &'a async_nats::Message,
    pub(crate) stream: &'a str,
    pub(crate) sequence: u64,
    pub(crate) deliveries: u32,
}

/// Why a move failed (the original stays where it is, to be retried).
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// DLQ_EVENTS does not exist or cannot be read.
    #[error("stream {DLQ_STREAM} is unavailable: {0}")]
    Stream(String),
    /// The copy was not acknowledged.
    #[error("the copy to {DLQ_STREAM} was not acknowledged: {0}")]
    Publish(String),
    /// The body with the shortest failure record is larger than the
    /// server's `max_payload`.
    #[error("the copy to {DLQ_STREAM} cannot fit max_payload ({max_payload} bytes): the body alone with the failure record is {size} bytes")]
    TooLarge {
        /// The smallest copy's size.
        size: usize,
        /// The server's limit.
        max_payload: usize,
    },
}

/// The dead-letter side of a running subscriber.
#[derive(Clone)]
pub(crate) struct Mover {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    failures: Option<kv::Store>,
}

impl Mover {
    /// The mover into `stream` (DLQ_EVENTS), with the failures bucket if it
    /// exists: provisioning creates it (`tidings streams apply`,
    /// `tidings::streams::apply`); services may not.
    pub(crate) async fn open(js: &jetstream::Context, stream: jetstream::stream::Stream) -> Self {
        let failures = match js.get_key_value(FAILURES_BUCKET).await {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!(
                    bucket = FAILURES_BUCKET,
                    error = %e,
                    "{MISSING_BUCKET}"
                );
                None
            }
        };
        Self {
            js: js.clone(),
            stream,
            failures,
        }
    }

    fn failure_key(group: &str, stream: &str, sequence: u64) -> String {
        format!("{group}.{stream}.{sequence}")
    }

    /// What was noted of the event's earlier deliveries (nothing if the
    /// bucket is unavailable: every earlier delivery then counts as one
    /// whose outcome is unknown).
    pub(crate) async fn attempts(&self, group: &str, stream: &str, sequence: u64) -> Attempts {
        let Some(store) = &self.failures else {
            return Attempts::default();
        };
        match store.get(Self::failure_key(group, stream, sequence)).await {
            Ok(Some(value)) => Attempts::parse(&value),
            Ok(None) => Attempts::default(),
            Err(e) => {
                tracing::warn!(group, stream, sequence, error = %e, "cannot read the event's earlier failures; its earlier deliveries count as failed");
                Attempts::default()
            }
        }
    }

    /// Notes a failed handler run (the first failure's time stays); `nak`:
    /// the delivery ends with a NAK (not an in-place retry).
    pub(crate) async fn note_failure(&self, group: &str, stream: &str, sequence: u64, nak: bool) {
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        self.change(group, stream, sequence, |a| {
            a.first_failure.get_or_insert_with(|| now.clone());
            a.runs = a.runs.saturating_add(1);
            if nak {
                a.naks = a.naks.saturating_add(1);
            }
        })
        .await;
    }

    /// Notes a delivery released without a verdict of the handler (NAKed
    /// at a shutdown's deadline, for want of a slot, or after a failed move
    /// to the dead-letter queue): it spends none of the event's deliveries.
    pub(crate) async fn note_release(&self, group: &str, stream: &str, sequence: u64) {
        self.change(group, stream, sequence, |a| {
            a.released = a.released.saturating_add(1);
        })
        .await;
    }

    /// Read, change, write back (compare-and-set on the revision; retried
    /// when another writer came first).
    async fn change(&self, group: &str, stream: &str, sequence: u64, f: impl Fn(&mut Attempts)) {
        let Some(store) = &self.failures else { return };
        let key = Self::failure_key(group, stream, sequence);
        for _ in 0..3 {
            let entry = match store.entry(key.clone()).await {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(group, stream, sequence, error = %e, "cannot note the delivery's outcome");
                    return;
                }
            };
            let (mut attempts, revision) = match entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    (Attempts::parse(&entry.value), Some(entry.revision))
                }
                Some(entry) => (Attempts::default(), Some(entry.revision)),
                None => (Attempts::default(), None),
            };
            f(&mut attempts);
            let value: bytes::Bytes = match serde_json::to_vec(&attempts) {
                Ok(value) => value.into(),
                Err(e) => {
                    tracing::warn!(group, error = %e, "cannot encode the delivery's outcome");
                    return;
                }
            };
            let written = match revision {
                Some(revision) => store.update(&key, value, revision).await.map(drop).is_ok(),
                None => store.create(&key, value).await.map(drop).is_ok(),
            };
            if written {
                return;
            }
        }
        tracing::warn!(
            group,
            stream,
            sequence,
            "could not note the delivery's outcome (concurrent writers)"
        );
    }

    async fn first_failure(&self, key: &str) -> Option<OffsetDateTime> {
        let store = self.failures.as_ref()?;
        let value = store.get(key).await.ok()??;
        let first = Attempts::parse(&value).first_failure?;
        OffsetDateTime::parse(&first, &Rfc3339).ok()
    }

    /// Copies the original into DLQ_EVENTS with its failure record, unless
    /// a copy is already there. Returns the copy's DLQ sequence.
    /// The DLQ sequence of an earlier copy on `subject`, if any. With
    /// direct gets allowed on the stream the subject is in the request
    /// subject (`$JS.API.DIRECT.GET.DLQ_EVENTS.<subject>`), which generated
    /// permissions allow a group only for its own DLQ subjects; otherwise a
    /// `STREAM.MSG.GET`, which reads any message of the stream.
    async fn earlier_copy(&self, subject: &str) -> Result<Option<u64>, MoveError> {
        if self.stream.cached_info().config.allow_direct {
            use async_nats::jetstream::stream::DirectGetErrorKind;
            return match self.stream.direct_get_last_for_subject(subject).await {
                Ok(existing) => Ok(Some(existing.sequence)),
                Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
                Err(e) => Err(MoveError::Stream(e.to_string())),
            };
        }
        match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(existing) => Ok(Some(existing.sequence)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(MoveError::Stream(e.to_string())),
        }
    }

    pub(crate) async fn copy(
        &self,
        group: &str,
        original: &Original<'_>,
        kind: DeadLetterKind,
        error: &str,
    ) -> Result<u64, MoveError> {
        let subject = dlq_subject(group, &original.message.subject, original.sequence);
        if let Some(sequence) = self.earlier_copy(&subject).await? {
            tracing::info!(
                group,
                dlq_sequence = sequence,
                "already in {DLQ_STREAM}: a previous move stopped before the terminate"
            );
            return Ok(sequence);
        }
        let key = Self::failure_key(group, original.stream, original.sequence);
        let redrive_count = original
            .message
            .headers
            .as_ref()
            .and_then(|h| h.get(REDRIVE_COUNT_HEADER))
            .and_then(|v| v.as_str().parse().ok())
            .unwrap_or(0);
        let now = OffsetDateTime::now_utc();
        let record = FailureRecord {
            stream: original.stream.to_string(),
            sequence: original.sequence,
            subject: original.message.subject.to_string(),
            group: group.to_string(),
            deliveries: original.deliveries,
            kind,
            error: error.to_string(),
            // Only failures before the last are noted; with one delivery
            // (or an unreadable message) the first failure is this one.
            first_failure: match kind {
                DeadLetterKind::Poison => Some(now),
                DeadLetterKind::Exhausted => self
                    .first_failure(&key)
                    .await
                    .or((original.deliveries <= 1).then_some(now)),
            },
            last_failure: now,
            redrive_count,
        };
        let mut headers = original
            .message
            .headers
            .as_ref()
            .map(without_control_headers)
            .unwrap_or_default();
        record.write(&mut headers);
        if let Some(id) = headers.get(MSG_ID_HEADER).cloned() {
            headers.insert(MSG_ID_HEADER_ORIGINAL, id);
        }
        headers.insert(
            MSG_ID_HEADER,
            format!("dlq.{group}.{}.{}", original.stream, original.sequence).as_str(),
        );
        let max_payload = self.js.client().server_info().max_payload;
        let truncated = fit(&mut headers, original.message.payload.len(), max_payload)?;
        if !truncated.is_empty() {
            tracing::warn!(
                group,
                stream = original.stream,
                sequence = original.sequence,
                max_payload,
                truncated = %truncated,
                "the dead letter's headers were shortened to fit max_payload; the body is whole"
            );
        }
        let mut last = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let sent = self
                .js
                .publish_with_headers(
                    subject.clone(),
                    headers.clone(),
                    original.message.payload.clone(),
                )
                .await;
            match sent {
                Ok(ack) => match ack.await {
                    Ok(ack) => return Ok(ack.sequence),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(MoveError::Publish(last))
    }

    /// Forgets the first-failure time of a moved event, and that its move
    /// was failing.
    pub(crate) async fn forget(&self, group: &str, stream: &str, sequence: u64) {
        if let Some(store) = &self.failures {
            let _ = store
                .purge(Self::failure_key(group, stream, sequence))
                .await;
            let _ = store.purge(stuck_key(group, stream, sequence)).await;
        }
    }

    /// Records that moving this event keeps failing (it has used its
    /// deliveries and is still not in the DLQ), for [`super::DlqMonitor`]
    /// to alert on. The first time it was recorded stays.
    pub(crate) async fn note_stuck(&self, group: &str, original: &Original<'_>, error: &str) {
        let Some(store) = &self.failures else { return };
        let key = stuck_key(group, original.stream, original.sequence);
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let since = match store.get(&key).await {
            Ok(Some(old)) => serde_json::from_slice::<StuckMove>(&old)
                .map(|s| s.since)
                .unwrap_or(now),
            _ => now,
        };
        let stuck = StuckMove {
            group: group.to_string(),
            subject: original.message.subject.to_string(),
            error: error.to_string(),
            since,
            deliveries: original.deliveries,
        };
        match serde_json::to_vec(&stuck) {
            Ok(value) => {
                if let Err(e) = store.put(&key, value.into()).await {
                    tracing::warn!(group, error = %e, "could not record a failing dead-letter move for the monitor");
                }
            }
            Err(e) => {
                tracing::warn!(group, error = %e, "could not encode a failing dead-letter move")
            }
        }
    }
}

/// The key under which a failing move is recorded in [`FAILURES_BUCKET`].
fn stuck_key(group: &str, stream: &str, sequence: u64) -> String {
    format!("{STUCK_PREFIX}{group}.{stream}.{sequence}")
}

/// Where failing moves are recorded in [`FAILURES_BUCKET`].
pub(crate) const STUCK_PREFIX: &str = "stuck.";

/// An event whose move to the DLQ keeps failing.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct StuckMove {
    /// The consumer group.
    pub(crate) group: String,
    /// The event's subject.
    pub(crate) subject: String,
    /// Why the last copy failed.
    pub(crate) error: String,
    /// When it was first recorded (RFC 3339).
    pub(crate) since: String,
    /// Deliveries so far.
    pub(crate) deliveries: u32,
}

/// The size of `headers` on the wire, as `max_payload` counts it:
/// `NATS/1.0`, one `Name: value` line each, and a blank line.
fn wire_len(headers: &HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|v| name.len() + 2 + v.as_str().len() + 2)
                .sum::<usize>()
        })
        .sum();
    "NATS/1.0\r\n".len() + lines + 2
}

/// Whether a header stays in a copy being made to fit.
type KeepHeader<'a> = &'a dyn Fn(&str) -> bool;

/// `text` cut to at most `room` bytes on a character boundary, with `…`
/// when cut.
fn shorten(text: &str, room: usize) -> String {
    if text.len() <= room {
        return text.to_string();
    }
    let ellipsis = '…'.len_utf8();
    if room < ellipsis {
        return String::new();
    }
    let mut cut = room - ellipsis;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Makes a copy whose headers and body exceed `max_payload` fit: first the
/// error text is shortened, then the original's `ce-` headers (the body
/// holds the same attributes) are left out, then every other original
/// header, then the record's optional parts (the original's message id and
/// the first failure's time); the body is never touched. What was cut is named in
/// `Tidings-Dlq-Truncated`, and returned (empty when the copy fitted).
fn fit(headers: &mut HeaderMap, body: usize, max_payload: usize) -> Result<String, MoveError> {
    if wire_len(headers) + body <= max_payload {
        return Ok(String::new());
    }
    let error = headers
        .get(ERROR_HEADER)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    let is_ce = |name: &str| name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ce-"));
    let is_record = |name: &str| {
        name.get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("tidings-dlq-"))
            || name.eq_ignore_ascii_case(MSG_ID_HEADER)
            || name.eq_ignore_ascii_case(REDRIVE_COUNT_HEADER)
    };
    // The record's optional parts: the original's message id (the body's
    // event id, normally) and the first failure's time.
    let is_optional = |name: &str| {
        name.eq_ignore_ascii_case(MSG_ID_HEADER_ORIGINAL)
            || name.eq_ignore_ascii_case(FIRST_FAILURE_HEADER)
    };
    let stages: [(&str, KeepHeader<'_>); 4] = [
        ("error", &|_| true),
        ("error,ce-headers", &|name| !is_ce(name)),
        ("error,ce-headers,headers", &|name| is_record(name)),
        ("error,ce-headers,headers,record-extras", &|name| {
            is_record(name) && !is_optional(name)
        }),
    ];
    let mut smallest = 0;
    for (truncated, keep) in stages {
        let mut candidate = HeaderMap::new();
        for (name, values) in headers.iter() {
            let name: &str = name.as_ref();
            if !keep(name) {
                continue;
            }
            for value in values {
                candidate.append(name, value.clone());
            }
        }
        candidate.insert(ERROR_HEADER, "");
        candidate.insert(TRUNCATED_HEADER, truncated);
        let fixed = wire_len(&candidate) + body;
        smallest = fixed;
        if let Some(room) = max_payload.checked_sub(fixed) {
            candidate.insert(ERROR_HEADER, shorten(&error, room).as_str());
            *headers = candidate;
            return Ok(truncated.to_string());
        }
    }
    Err(MoveError::TooLarge {
        size: smallest,
        max_payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_over_max_payload_loses_error_text_then_headers_never_body() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", "0195e1b2-0000-7000-8000-000000000000");
        headers.insert("X-Other", "kept-until-last");
        headers.insert(ERROR_HEADER, "e".repeat(1000).as_str());
        headers.insert(MSG_ID_HEADER, "dlq.g.S.1");
        let full = wire_len(&headers);
        // Fits: untouched.
        let mut same = headers.clone();
        assert_eq!(fit(&mut same, 100, full + 100).ok().as_deref(), Some(""));
        assert_eq!(wire_len(&same), full);
        // 500 bytes over: the error is cut, the rest kept.
        let mut cut = headers.clone();
        assert_eq!(
            fit(&mut cut, 100, full + 100 - 500).ok().as_deref(),
            Some("error")
        );
        assert!(wire_len(&cut) + 100 <= full + 100 - 500);
        assert!(cut
            .get(ERROR_HEADER)
            .is_some_and(|v| v.as_str().ends_with('…')));
        assert!(cut.get("ce-id").is_some());
        // Room for nothing but the record: every original header goes.
        let mut bare = headers.clone();
        let record_only = "NATS/1.0\r\n".len()
            + 2
            + [
                (MSG_ID_HEADER, "dlq.g.S.1"),
                (ERROR_HEADER, ""),
                (TRUNCATED_HEADER, "error,ce-headers,headers"),
            ]
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
        assert_eq!(
            fit(&mut bare, 100, record_only + 100).ok().as_deref(),
            Some("error,ce-headers,headers")
        );
        assert!(bare.get("X-Other").is_none() && bare.get("ce-id").is_none());
        // Room for the record without its optional parts: they go too.
        let mut extras = headers.clone();
        extras.insert(FIRST_FAILURE_HEADER, "2026-12-03T06:00:00Z");
        let lean = record_only - "error,ce-headers,headers".len()
            + "error,ce-headers,headers,record-extras".len();
        assert_eq!(
            fit(&mut extras, 100, lean + 100).ok().as_deref(),
            Some("error,ce-headers,headers,record-extras")
        );
        assert!(extras.get(FIRST_FAILURE_HEADER).is_none());
        assert!(extras.get(MSG_ID_HEADER).is_some());
        // Not even that: too large.
        let mut none = headers;
        assert!(matches!(
            fit(&mut none, 100, record_only + 99),
            Err(MoveError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_dlq_subject_names_group_type_tenant_and_sequence() {
        assert_eq!(
            dlq_subject("analytics", "auth.user.created.org-1.u-7", 42),
            "dlq.analytics.auth.user.created.org-1.42"
        );
        assert_eq!(dlq_subject("g", "a.b", 1), "dlq.g.a.b._._.1");
    }
}
