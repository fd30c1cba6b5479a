//! Events delivered to an instance that has no handler for their type.
//!
//! The instances of a group share one consumer whose filter is the union of
//! the types they handle (see `Subscriber::start`), so during a rolling
//! deploy that adds a handler the old instances still receive the new type.
//! Such an instance releases the event for the others (a NAK with a delay)
//! and counts the delivery here, in a key-value bucket the group's
//! instances share, so that it does not use up the event's delivery budget:
//! `max_deliveries` counts the deliveries to an instance that could handle
//! the event. It warns once per type, as the operator either finishes the
//! deploy or retires the type (`retire_types`).
use std::collections::HashSet;
use std::sync::Mutex;

use async_nats::jetstream::{self, kv};

/// The key-value bucket counting, per group and message, the deliveries to
/// instances without a handler for the message's type.
pub const SKIPPED_BUCKET: &str = "tidings_skipped";

/// The skipped deliveries of one running subscriber's group.
pub(crate) struct Skipped {
    store: Option<kv::Store>,
    /// The types this instance has warned about.
    warned: Mutex<HashSet<String>>,
}

impl Skipped {
    /// Opens the bucket, creating it like DLQ_EVENTS (`like`): same
    /// replicas and retention. Without it, skipped deliveries count as
    /// handler deliveries (logged).
    pub(crate) async fn open(js: &jetstream::Context, like: &jetstream::stream::Stream) -> Self {
        let store = match js.get_key_value(SKIPPED_BUCKET).await {
            Ok(store) => Some(store),
            Err(_) => {
                let config = &like.cached_info().config;
                js.create_key_value(kv::Config {
                    bucket: SKIPPED_BUCKET.into(),
                    description:
                        "Tidings: deliveries of an event to instances without a handler for it, per group"
                            .into(),
                    max_age: config.max_age,
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.num_replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "no skipped-deliveries bucket: deliveries to instances without a handler count against max_deliveries");
                })
                .ok()
            }
        };
        Self {
            store,
            warned: Mutex::new(HashSet::new()),
        }
    }

    fn key(group: &str, stream: &str, sequence: u64) -> String {
        format!("{group}.{stream}.{sequence}")
    }

    /// Whether this is the first time this instance skips `event_type`
    /// (to warn once per type).
    pub(crate) fn first_of_type(&self, event_type: &str) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        warned.insert(event_type.to_string())
    }

    /// Counts one skipped delivery of the message.
    pub(crate) async fn note(&self, group: &str, stream: &str, sequence: u64) {
        let Some(store) = &self.store else { return };
        let key = Self::key(group, stream, sequence);
        // A message is delivered to one instance at a time, so a conflict
        // is rare; a lost count makes the event use one delivery more.
        for _ in 0..3 {
            let written = match store.entry(key.as_str()).await {
                Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                    let next = parse(&entry.value).saturating_add(1);
                    store
                        .update(&key, next.to_string().into(), entry.revision)
                        .await
                        .is_ok()
                }
                Ok(_) => store.create(&key, "1".into()).await.is_ok(),
                Err(e) => {
                    tracing::warn!(group, stream, sequence, error = %e, "cannot count a skipped delivery");
                    return;
                }
            };
            if written {
                return;
            }
        }
        tracing::warn!(
            group,
            stream,
            sequence,
            "cannot count a skipped delivery: the count kept changing"
        );
    }

    /// The skipped deliveries of the message so far.
    pub(crate) async fn count(&self, group: &str, stream: &str, sequence: u64) -> u32 {
        let Some(store) = &self.store else { return 0 };
        match store.get(Self::key(group, stream, sequence)).await {
            Ok(Some(value)) => parse(&value),
            Ok(None) => 0,
            Err(e) => {
                tracing::warn!(group, stream, sequence, error = %e, "cannot read the skipped deliveries; counting none");
                0
            }
        }
    }

    /// Forgets the message's count once it is settled.
    pub(crate) async fn forget(&self, group: &str, stream: &str, sequence: u64) {
        let Some(store) = &self.store else { return };
        if let Err(e) = store.purge(Self::key(group, stream, sequence)).await {
            tracing::debug!(group, stream, sequence, error = %e, "cannot forget a skipped-delivery count; it expires with the bucket's max age");
        }
    }
}

fn parse(value: &[u8]) -> u32 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
