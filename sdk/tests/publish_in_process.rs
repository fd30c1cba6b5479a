//! Found by the chaos checker (`scripts/chaos`): under node kills and
//! pauses, retries of a publish were answered "duplicate message id is in
//! process" (JetStream 10158) while the first attempt was being replicated,
//! and the publisher reported them as refused by the server although the
//! stream then stored the event (1,705 of 13,356 publishes in a 45 s run).
//! A refusal means "not stored": an event stored after one is an event the
//! caller believes lost and may publish again under a new id.
use std::borrow::Cow;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde::{Deserialize, Serialize};
use tidings::publish::{AttemptFailureKind, Outcome, PublishError, RetryPolicy};
use tidings::testing::{eventually, NatsCluster};
use tidings::{DomainEvent, PublishContext, Publisher, PublisherConfig};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pinged {
    key: String,
}

impl DomainEvent for Pinged {
    const EVENT_TYPE: &'static str = "auth.ping.sent";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"key": {"type": "string", "minLength": 1}},
        "required": ["key"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/ping.sent.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("key");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.key))
    }
}

#[tokio::test]
async fn a_retry_that_finds_its_first_attempt_in_process_is_unknown_not_refused(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut cluster = NatsCluster::launch().await?;
    let js = jetstream::new(cluster.connect().await?);
    js.create_stream(stream::Config {
        name: "AUTH_EVENTS".into(),
        subjects: vec!["auth.>".into()],
        num_replicas: 3,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let leader = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .ok_or("the stream has no leader")?;
    let leader = cluster
        .index_of(&leader)
        .ok_or("the leader is not a node")?;
    // Everything from here talks to the leader only.
    let client = cluster.node(leader)?.connect().await?;
    let js = jetstream::new(client.clone());
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            attempt_timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                initial_delay: Duration::from_millis(100),
                jitter: 0.0,
                ..RetryPolicy::default()
            },
            ..PublisherConfig::default()
        },
    )?;
    let ctx = PublishContext::new("org-1")?;
    let event = Pinged { key: "k1".into() };
    // The first publish reads the stream's duplicate window; do it while
    // the cluster is whole.
    publisher.publish(&ctx, &event).await?;

    // Both followers frozen: the leader proposes the first attempt but
    // cannot commit it, so every retry finds it in process.
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        cluster.node_mut(i)?.pause().await?;
    }
    let id = Uuid::now_v7();
    let result = publisher.publish_with_id(&ctx, id, &event).await;
    for &i in &followers {
        cluster.node_mut(i)?.resume().await?;
    }

    match &result {
        Err(PublishError::RetriesExhausted {
            outcome, attempts, ..
        }) => {
            assert_eq!(*outcome, Outcome::Unknown, "{result:?}");
            assert!(
                attempts
                    .iter()
                    .any(|a| a.kind == AttemptFailureKind::InProcess),
                "a retry found the first attempt in process: {result:?}"
            );
        }
        Ok(published) => assert!(published.attempts > 1, "{published:?}"),
        Err(other) => panic!("reported as {other:?}, but the event may be stored"),
    }

    // Once the followers are back, the first attempt is stored, and the
    // caller's retry under the same id is answered duplicate: one copy.
    let again = publisher.publish_with_id(&ctx, id, &event).await?;
    assert!(again.duplicate, "the first attempt was stored: {again:?}");
    eventually("two events stored", Duration::from_secs(10), || async {
        let mut stream = js
            .get_stream("AUTH_EVENTS")
            .await
            .map_err(|e| e.to_string())?;
        let messages = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .messages;
        if messages == 2 {
            Ok(())
        } else {
            Err(format!("{messages} messages"))
        }
    })
    .await?;
    Ok(())
}
