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

/// The key-value bucket holding when each failing event first failed.
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

    /// Remembers when the group's handler first failed on this event (the
    /// first call wins).
    pub(crate) async fn note_failure(&self, group: &str, stream: &str, sequence: u64) {
        let Some(store) = &self.failures else { return };
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let key = Self::failure_key(group, stream, sequence);
        // `create` fails when the key exists: the first failure stays.
        let _ = store.create(&key, now.into()).await;
    }

    async fn first_failure(&self, key: &str) -> Option<OffsetDateTime> {
        let store = self.failures.as_ref()?;
        let value = store.get(key).await.ok()??;
        OffsetDateTime::parse(std::str::from_utf8(&value).ok()?, &Rfc3339).ok()
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
