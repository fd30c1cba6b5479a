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
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::record::{DeadLetterKind, FailureRecord, MSG_ID_HEADER_ORIGINAL, REDRIVE_COUNT_HEADER};
use super::DLQ_STREAM;
use crate::envelope::MSG_ID_HEADER;

/// The key-value bucket holding, per group and failing event, when it first
/// failed and how its deliveries ended (see `Attempts`).
pub const FAILURES_BUCKET: &str = "tidings_failures";

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
}

/// The dead-letter side of a running subscriber.
#[derive(Clone)]
pub(crate) struct Mover {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    failures: Option<kv::Store>,
}

impl Mover {
    /// The mover into `stream` (DLQ_EVENTS), with the failures bucket
    /// (created like DLQ_EVENTS: same replicas and retention).
    pub(crate) async fn open(js: &jetstream::Context, stream: jetstream::stream::Stream) -> Self {
        let failures = match js.get_key_value(FAILURES_BUCKET).await {
            Ok(store) => Some(store),
            Err(_) => {
                let config = &stream.cached_info().config;
                js.create_key_value(kv::Config {
                    bucket: FAILURES_BUCKET.into(),
                    description: "Tidings: when each failing event first failed, per group".into(),
                    max_age: config.max_age,
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.num_replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "no failures bucket: dead letters will not say when the first failure was");
                })
                .ok()
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
    pub(crate) async fn copy(
        &self,
        group: &str,
        original: &Original<'_>,
        kind: DeadLetterKind,
        error: &str,
    ) -> Result<u64, MoveError> {
        let subject = dlq_subject(group, &original.message.subject, original.sequence);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(existing) => {
                tracing::info!(
                    group,
                    dlq_sequence = existing.sequence,
                    "already in {DLQ_STREAM}: a previous move stopped before the terminate"
                );
                return Ok(existing.sequence);
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(MoveError::Stream(e.to_string())),
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
        let mut headers = original.message.headers.clone().unwrap_or_default();
        record.write(&mut headers);
        if let Some(id) = headers.get(MSG_ID_HEADER).cloned() {
            headers.insert(MSG_ID_HEADER_ORIGINAL, id);
        }
        headers.insert(
            MSG_ID_HEADER,
            format!("dlq.{group}.{}.{}", original.stream, original.sequence).as_str(),
        );
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

    /// Forgets the first-failure time of a moved event.
    pub(crate) async fn forget(&self, group: &str, stream: &str, sequence: u64) {
        if let Some(store) = &self.failures {
            let _ = store
                .purge(Self::failure_key(group, stream, sequence))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dlq_subject;

    #[test]
    fn the_dlq_subject_names_group_type_tenant_and_sequence() {
        assert_eq!(
            dlq_subject("analytics", "auth.user.created.org-1.u-7", 42),
            "dlq.analytics.auth.user.created.org-1.42"
        );
        assert_eq!(dlq_subject("g", "a.b", 1), "dlq.g.a.b._._.1");
    }
}
