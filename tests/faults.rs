//! Network faults between a client and a real nats-server, injected by
//! `tidings::testing::FaultProxy` frame by frame: a lost PubAck, a
//! blackhole longer than the retry schedule, lost acks, and a link cut
//! between a dead letter's copy and its terminate.
mod support;

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use async_nats::jetstream;
use support::{dead_letters, fast_config, provision, settled, take, UserCreated};
use tidings::dlq::{ops, DlqFilter, DLQ_STREAM};
use tidings::idempotency::Deduplicator;
use tidings::publish::{Outcome, PublishError, RetryPolicy};
use tidings::testing::{FaultProxy, Flow, Frame, NatsServer};
use tidings::{Event, PublishContext, Publisher, PublisherConfig, Subscriber};
use tokio::sync::mpsc;

/// How long a test waits for a fault it set up to happen.
const FAULT_WAIT: Duration = Duration::from_secs(15);

/// A server with the dev streams, a proxy in front of it, and an admin
/// JetStream context that bypasses the proxy.
async fn proxied() -> anyhow::Result<(NatsServer, FaultProxy, jetstream::Context)> {
    let server = NatsServer::launch().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let admin = jetstream::new(server.connect().await?);
    provision(&admin, "dev").await?;
    Ok((server, proxy, admin))
}

/// A client through the proxy that reconnects at once after a reset.
async fn client_through(proxy: &FaultProxy) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(proxy.url())
        .await?)
}

/// A schedule of seconds, not the default's tens of seconds: 4 attempts
/// of 500 ms, 100/200/400 ms apart.
fn short_schedule() -> PublisherConfig {
    PublisherConfig {
        attempt_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            initial_delay: Duration::from_millis(100),
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        ..PublisherConfig::default()
    }
}

/// The `Nats-Msg-Id` of every message stored in a stream.
async fn stored_ids(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<String>> {
    let stream = js.get_stream(stream).await?;
    let last = stream.cached_info().state.last_sequence;
    let mut ids = Vec::new();
    for seq in 1..=last {
        if let Ok(message) = stream.get_raw_message(seq).await {
            if let Some(id) = message.headers.get("Nats-Msg-Id") {
                ids.push(id.to_string());
            }
        }
    }
    Ok(ids)
}

#[tokio::test]
async fn a_lost_puback_is_retried_answered_duplicate_and_stored_once() -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    let publisher = Publisher::new(client_through(&proxy).await?, short_schedule())?;
    let ctx = PublishContext::new("org-1")?;

    let lost = proxy.drop_next(Flow::ServerToClient, 1, Frame::is_puback);
    let published = publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    lost.wait(1, FAULT_WAIT).await?;
    assert_eq!(published.attempts, 2, "the first PubAck was lost");
    assert!(
        published.duplicate,
        "the retry found the first attempt stored"
    );

    // A batch whose PubAcks are lost for 5 of its events.
    let lost = proxy.drop_next(Flow::ServerToClient, 5, Frame::is_puback);
    let events: Vec<UserCreated> = (2..52).map(UserCreated::numbered).collect();
    let results = publisher.publish_batch(&ctx, &events).await;
    lost.wait(5, FAULT_WAIT).await?;
    let mut duplicates = 0;
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(p) => duplicates += usize::from(p.duplicate),
            Err(e) => panic!("event {n} failed: {e}"),
        }
    }
    assert_eq!(
        duplicates, 5,
        "each lost PubAck answered duplicate on retry"
    );

    let ids = stored_ids(&admin, "AUTH_EVENTS").await?;
    assert_eq!(ids.len(), 51, "one copy of each event");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 51);
    assert!(ids.contains(&published.event_id.to_string()));
    Ok(())
}

#[tokio::test]
async fn a_blackhole_longer_than_the_schedule_is_unknown_and_the_callers_retry_stores_once(
) -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    let publisher = Publisher::new(client_through(&proxy).await?, short_schedule())?;
    let ctx = PublishContext::new("org-1")?;
    // Read the duplicate window before the link goes dark.
    publisher.publish(&ctx, &UserCreated::numbered(0)).await?;

    // Both ways dark: no attempt reaches the server.
    let event = UserCreated::numbered(1);
    proxy.blackhole(true);
    let event_id = match publisher.publish(&ctx, &event).await {
        Err(PublishError::RetriesExhausted {
            outcome: Outcome::Unknown,
            event_id,
            attempts,
            ..
        }) => {
            assert_eq!(attempts.len(), 4, "{attempts:?}");
            event_id
        }
        other => panic!("expected an unknown outcome, got {other:?}"),
    };
    assert!(proxy.blackholed() >= 4, "the 4 attempts were lost");
    proxy.blackhole(false);
    let retried = publisher.publish_with_id(&ctx, event_id, &event).await?;
    assert!(!retried.duplicate, "no attempt had reached the server");

    // Only the answers dark: every attempt is stored-or-deduplicated, no
    // PubAck comes back.
    let event = UserCreated::numbered(2);
    let answers = proxy.drop_all(Flow::ServerToClient, Frame::is_puback);
    let event_id = match publisher.publish(&ctx, &event).await {
        Err(PublishError::RetriesExhausted {
            outcome: Outcome::Unknown,
            event_id,
            ..
        }) => event_id,
        other => panic!("expected an unknown outcome, got {other:?}"),
    };
    answers.wait(4, FAULT_WAIT).await?;
    answers.remove();
    let retried = publisher.publish_with_id(&ctx, event_id, &event).await?;
    assert!(retried.duplicate, "the first attempt had been stored");

    let ids = stored_ids(&admin, "AUTH_EVENTS").await?;
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "{ids:?}");
    Ok(())
}

/// A subscriber of `group` through the proxy that reports each delivery
/// its handler ran for.
async fn reporting(
    proxy: &FaultProxy,
    group: &str,
    dedup: Option<Deduplicator>,
    tx: mpsc::UnboundedSender<u32>,
) -> anyhow::Result<tidings::subscribe::Running> {
    let mut subscriber = Subscriber::new(client_through(proxy).await?, group, fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            Ok::<(), Infallible>(())
        }
    });
    if let Some(dedup) = dedup {
        subscriber.deduplicate(dedup);
    }
    Ok(subscriber.start().await?)
}

#[tokio::test]
async fn a_lost_ack_is_redelivered_and_the_deduplicator_keeps_the_handler_to_one_run(
) -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    let publisher = Publisher::new(admin.client(), PublisherConfig::default())?;
    let dedup = Deduplicator::open(&admin, "faults_dedup", Duration::from_secs(3600), 1).await?;
    let acks_of = |group: &'static str| {
        let prefix = format!("$JS.ACK.AUTH_EVENTS.{group}.");
        move |f: &Frame| f.is_ack() && f.subject().is_some_and(|s| s.starts_with(&prefix))
    };
    let deliveries_of = |group: &'static str| {
        let prefix = format!("$JS.ACK.AUTH_EVENTS.{group}.");
        move |f: &Frame| f.is_delivery() && f.reply().is_some_and(|s| s.starts_with(&prefix))
    };
    let lost_plain = proxy.drop_next(Flow::ClientToServer, 1, acks_of("plain"));
    let lost_deduped = proxy.drop_next(Flow::ClientToServer, 1, acks_of("deduped"));
    let delivered_deduped = proxy.count(Flow::ServerToClient, deliveries_of("deduped"));

    let (plain_tx, mut plain) = mpsc::unbounded_channel();
    let (deduped_tx, mut deduped) = mpsc::unbounded_channel();
    let plain_group = reporting(&proxy, "plain", None, plain_tx).await?;
    let deduped_group = reporting(&proxy, "deduped", Some(dedup), deduped_tx).await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    lost_plain.wait(1, FAULT_WAIT).await?;
    lost_deduped.wait(1, FAULT_WAIT).await?;

    // Without deduplication the lost ack costs a second handler run.
    assert_eq!(take(&mut plain, 2).await?, vec![1, 2]);
    // With it, the redelivery is acknowledged without running the handler.
    delivered_deduped.wait(2, FAULT_WAIT).await?;
    settled(&admin, "AUTH_EVENTS", "deduped").await?;
    settled(&admin, "AUTH_EVENTS", "plain").await?;
    assert_eq!(take(&mut deduped, 1).await?, vec![1]);
    assert!(
        deduped.try_recv().is_err(),
        "the deduplicated group ran twice"
    );
    plain_group.shutdown().await;
    deduped_group.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_link_cut_between_the_dlq_copy_and_the_terminate_leaves_one_dead_letter(
) -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    // A duplicate window shorter than the ack wait: the second move is kept
    // from copying again by the DLQ subject lookup, not by Nats-Msg-Id.
    let mut dlq = admin
        .get_stream(DLQ_STREAM)
        .await?
        .info()
        .await?
        .config
        .clone();
    dlq.duplicate_window = Duration::from_millis(500);
    admin.update_stream(dlq).await?;
    let publisher = Publisher::new(admin.client(), PublisherConfig::default())?;

    let terms = proxy.count(Flow::ClientToServer, Frame::is_term);
    let cut = proxy.cut_next(Flow::ClientToServer, Frame::is_term);
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client_through(&proxy).await?, "mover", config)?;
    subscriber.handle::<UserCreated, _>(|_e: Event<UserCreated>| async move {
        Err::<(), _>("always fails".to_string())
    });
    let running = subscriber.start().await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    cut.wait(1, FAULT_WAIT).await?;
    // The copy is stored; the terminate never reached the server.
    assert_eq!(dead_letters(&admin, 1).await?.len(), 1);

    // The client reconnects, the original comes back after the ack wait,
    // the mover finds the copy and only terminates.
    terms.wait(2, FAULT_WAIT).await?;
    settled(&admin, "AUTH_EVENTS", "mover").await?;
    let dead = ops::list(&admin, &DlqFilter::default(), None).await?;
    assert_eq!(dead.len(), 1, "the event is in the DLQ exactly once");
    assert_eq!(dead[0].record.clone()?.sequence, published.sequence);
    let stored = admin
        .get_stream(DLQ_STREAM)
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(stored, 1);
    running.shutdown().await;
    Ok(())
}

/// Publishes that wait for one of the publisher's `max_in_flight` turns
/// longer than `attempt_timeout` (a slow link, a backlog) wait their turn:
/// the wait is a local queue, not a failed attempt, so none is retried and
/// none fails while the server answers every one.
#[tokio::test]
async fn a_backlog_longer_than_the_attempt_timeout_waits_its_turn_instead_of_failing(
) -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    let config = PublisherConfig {
        max_in_flight: 2,
        ..short_schedule()
    };
    let publisher = Publisher::new(client_through(&proxy).await?, config)?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(0)).await?;

    // 200 ms a round trip, two at a time: the last of 12 waits about a
    // second for its turn, twice the 500 ms attempt timeout.
    proxy.set_delay(Duration::from_millis(100));
    let events: Vec<_> = (1..=12).map(UserCreated::numbered).collect();
    let results =
        futures_util::future::join_all(events.iter().map(|e| publisher.publish(&ctx, e))).await;
    proxy.set_delay(Duration::ZERO);
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(published) => assert_eq!(
                published.attempts,
                1,
                "event {} was retried: waiting for its turn is not an attempt",
                n + 1
            ),
            Err(error) => panic!("event {} failed: {error}", n + 1),
        }
    }
    let ids = stored_ids(&admin, "AUTH_EVENTS").await?;
    assert_eq!(ids.len(), 13, "{ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 13, "{ids:?}");
    Ok(())
}

/// A publish that cannot get a turn within `queue_timeout` is refused as
/// `Overloaded`, never sent: nothing is stored for it, and it says so.
#[tokio::test]
async fn a_publish_without_a_turn_within_the_queue_timeout_is_overloaded_and_not_sent(
) -> anyhow::Result<()> {
    let (_server, proxy, admin) = proxied().await?;
    let config = PublisherConfig {
        max_in_flight: 1,
        attempt_timeout: Duration::from_secs(2),
        queue_timeout: Duration::from_millis(150),
        ..short_schedule()
    };
    let publisher = Publisher::new(client_through(&proxy).await?, config)?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(0)).await?;

    // A 300 ms round trip holds the only turn twice the queue timeout.
    proxy.set_delay(Duration::from_millis(150));
    let (first, second) = (UserCreated::numbered(1), UserCreated::numbered(2));
    let (a, b) = tokio::join!(
        publisher.publish(&ctx, &first),
        publisher.publish(&ctx, &second)
    );
    proxy.set_delay(Duration::ZERO);
    let (stored, refused) = match (a, b) {
        (Ok(stored), Err(refused)) | (Err(refused), Ok(stored)) => (stored, refused),
        other => panic!("expected one stored and one refused, got {other:?}"),
    };
    assert_eq!(stored.attempts, 1);
    match &refused {
        PublishError::Overloaded {
            max_in_flight,
            waited,
            ..
        } => {
            assert_eq!(*max_in_flight, 1);
            assert!(*waited >= Duration::from_millis(150), "{waited:?}");
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    let message = refused.to_string();
    assert!(
        message.contains("was not sent") && message.contains("queue_timeout"),
        "{message}"
    );
    let ids = stored_ids(&admin, "AUTH_EVENTS").await?;
    assert_eq!(ids.len(), 2, "the refused event was never sent: {ids:?}");
    Ok(())
}
