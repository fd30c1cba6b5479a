//! The spec's numbers, read back from real servers after provisioning and
//! after a subscriber starts with the default configuration: a 30 s ack
//! wait, 5 deliveries before the dead-letter queue (the first and 4
//! retries), 7 days and 1 GiB per stream, 3 replicas in production. (The
//! publisher's 3 retries, 4 attempts, are pinned in `tests/publish.rs`,
//! `a_stopped_server_fails_after_the_schedule_and_one_that_returns_succeeds`.)
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use support::{consumer_info, dead_letters, provision, settled, setup, UserCreated};
use tidings::subscribe::{Backoff, StartAt};
use tidings::testing::NatsCluster;
use tidings::{Event, PublishContext, Subscriber, SubscriberConfig};

const SEVEN_DAYS: Duration = Duration::from_secs(7 * 24 * 3600);
const ONE_GIB: i64 = 1 << 30;

#[tokio::test]
async fn a_default_subscriber_asks_for_a_30s_ack_wait_and_gives_up_after_5_deliveries(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;

    // What the server holds for a group started with the defaults.
    let mut plain = Subscriber::new(client.clone(), "defaults", SubscriberConfig::default())?;
    plain.handle::<UserCreated, _>(|_e: Event<UserCreated>| async {
        Ok::<(), std::convert::Infallible>(())
    });
    let running = plain.start().await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "defaults").await?;
    assert_eq!(info.config.ack_wait, Duration::from_secs(30), "spec: 30 s");
    assert_eq!(info.config.ack_policy, consumer::AckPolicy::Explicit);
    assert_eq!(info.config.durable_name.as_deref(), Some("defaults"));
    assert_eq!(info.config.deliver_policy, consumer::DeliverPolicy::New);
    // The subscriber counts deliveries itself; the server never gives up
    // on an event on its own (that would strand it outside the DLQ).
    assert_eq!(info.config.max_deliver, -1);
    assert_eq!(info.config.max_ack_pending, 4096, "1,024 in flight x 4");
    running.shutdown().await;

    // The default delivery budget, with a short backoff only so that the
    // test does not wait the default's 1 + 2 + 4 + 8 s.
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let config = SubscriberConfig {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            factor: 2.0,
            max: Duration::from_millis(100),
            jitter: false,
        },
        start_at: StartAt::All,
        ..SubscriberConfig::default()
    };
    assert_eq!(config.ack_wait, Duration::from_secs(30));
    let mut failing = Subscriber::new(client, "failing", config)?;
    let seen = deliveries.clone();
    failing.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .map_err(|_| "poisoned".to_string())?
                .push(event.meta.delivery);
            Err::<(), _>("always fails".to_string())
        }
    });
    let _failing = failing.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let letter = dead_letters(&js, 1).await?.remove(0);
    let record = letter.record.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(record.group, "failing");
    assert_eq!(record.deliveries, 5, "dead-lettered on the 5th delivery");
    settled(&js, "AUTH_EVENTS", "failing").await?;
    let handled = deliveries
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    assert_eq!(handled, vec![1, 2, 3, 4, 5], "the first try and 4 retries");
    Ok(())
}

#[tokio::test]
async fn the_production_profile_gives_every_stream_3_replicas_7_days_and_1_gib(
) -> anyhow::Result<()> {
    let cluster = NatsCluster::launch().await?;
    let js = jetstream::new(cluster.connect().await?);
    let plans = provision(&js, "production").await?;
    assert_eq!(plans.len(), 7);
    for plan in &plans {
        let info = js.get_stream(&plan.stream).await?.info().await?.clone();
        let name = &plan.stream;
        assert_eq!(info.config.num_replicas, 3, "{name}: spec R3");
        let peers = info.cluster.map(|c| c.replicas.len()).unwrap_or(0);
        assert_eq!(peers, 2, "{name}: a leader and 2 replicas on the cluster");
        let max_age = if name == "DLQ_EVENTS" {
            Duration::from_secs(30 * 24 * 3600)
        } else {
            SEVEN_DAYS
        };
        assert_eq!(info.config.max_age, max_age, "{name}");
        assert_eq!(info.config.max_bytes, ONE_GIB, "{name}");
        assert_eq!(info.config.storage, stream::StorageType::File, "{name}");
        assert_eq!(
            info.config.retention,
            stream::RetentionPolicy::Limits,
            "{name}"
        );
    }
    Ok(())
}
