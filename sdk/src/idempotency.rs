//! Deduplication by event id, so a redelivered event runs its side effect
//! once.
//!
//! JetStream delivers at least once: an event whose ack was lost, whose
//! handler outlived the ack wait, or whose consumer was reset is handled
//! again. A [`Deduplicator`] remembers, in a JetStream key-value bucket, the
//! ids of the events each consumer group has handled successfully; the
//! subscriber skips (and acks) an event whose id is there. Entries expire
//! with the bucket's TTL, which should match the streams' retention (7 days),
//! the longest an event can be redelivered.
//!
//! The id is recorded after the handler succeeds, so a process that dies
//! between the side effect and the record runs the side effect again on
//! redelivery (at least once, never zero times). Where that window matters
//! (database writes), record the event id in the same transaction as the
//! side effect: the transactional-inbox pattern in the README.
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use uuid::Uuid;

use crate::token::check_group;

/// The header of a key-value entry's operation (`DEL`, `PURGE`; none for
/// a put).
const KV_OPERATION: &str = "KV-Operation";

/// Why the deduplication store failed.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The bucket name cannot be a key-value bucket name.
    #[error("invalid deduplication bucket name {0:?}: use letters, digits, `-` and `_`")]
    BucketName(String),
    /// The bucket could not be created or opened.
    #[error("cannot open deduplication bucket {bucket:?}: {detail}")]
    Open {
        /// The bucket.
        bucket: String,
        /// The server's answer.
        detail: String,
    },
    /// Reading or writing an entry failed.
    #[error("deduplication bucket {bucket:?}: cannot {action} {key:?}: {detail}")]
    Entry {
        /// The bucket.
        bucket: String,
        /// `read` or `record`.
        action: &'static str,
        /// The key.
        key: String,
        /// The server's answer.
        detail: String,
    },
}

/// Remembers which events each consumer group has handled.
#[derive(Debug, Clone)]
pub struct Deduplicator {
    bucket: String,
    store: kv::Store,
}

impl Deduplicator {
    /// Opens the bucket, creating it with entries that live `ttl` (file
    /// storage, `replicas` copies) if it does not exist.
    ///
    /// # Errors
    /// An invalid name, or the server refused.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, IdempotencyError> {
        let valid = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(IdempotencyError::BucketName(bucket.to_string()));
        }
        let open_error = |e: &dyn std::fmt::Display| IdempotencyError::Open {
            bucket: bucket.to_string(),
            detail: e.to_string(),
        };
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => js
                .create_key_value(kv::Config {
                    bucket: bucket.to_string(),
                    description: "Tidings: ids of handled events, per consumer group".into(),
                    max_age: ttl,
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| open_error(&e))?,
            Err(e) => return Err(open_error(&e)),
        };
        Ok(Self {
            bucket: bucket.to_string(),
            store,
        })
    }

    fn key(group: &str, event_id: Uuid) -> String {
        format!("{group}.{event_id}")
    }

    /// Whether `group` already handled the event.
    ///
    /// Read from the bucket's stream leader, never from a replica: the
    /// key-value store's own `get` is a direct get, which any replica may
    /// answer, and a replica that is behind (a node just back from a pause
    /// or a restart) answers "not there" for a record the leader has
    /// acknowledged; the event's handler would run again.
    ///
    /// # Errors
    /// The bucket could not be read.
    pub async fn seen(&self, group: &str, event_id: Uuid) -> Result<bool, IdempotencyError> {
        use jetstream::stream::LastRawMessageErrorKind;
        let key = Self::key(group, event_id);
        check_group(group).map_err(|e| self.entry_error("read", &key, &e))?;
        let subject = format!("{}{key}", self.store.prefix);
        match self
            .store
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            // A delete or purge marker is not a record.
            Ok(message) => Ok(message
                .headers
                .get(KV_OPERATION)
                .is_none_or(|op| op.as_str() != "DEL" && op.as_str() != "PURGE")),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(self.entry_error("read", &key, &e)),
        }
    }

    /// Records that `group` handled the event.
    ///
    /// # Errors
    /// The bucket could not be written.
    pub async fn record(&self, group: &str, event_id: Uuid) -> Result<(), IdempotencyError> {
        let key = Self::key(group, event_id);
        check_group(group).map_err(|e| self.entry_error("record", &key, &e))?;
        self.store
            .put(&key, bytes::Bytes::new())
            .await
            .map(drop)
            .map_err(|e| self.entry_error("record", &key, &e))
    }

    fn entry_error(
        &self,
        action: &'static str,
        key: &str,
        e: &dyn std::fmt::Display,
    ) -> IdempotencyError {
        IdempotencyError::Entry {
            bucket: self.bucket.clone(),
            action,
            key: key.to_string(),
            detail: e.to_string(),
        }
    }
}
