//! A consumer group and a replay when something other than the handler
//! fails, against real nats-servers: the server killed during a shutdown,
//! a group spanning two streams, the deduplication bucket gone, a replay
//! under sustained publishing or over deleted messages.
mod support;

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use support::{consumer_info, fast_config, settled, setup, take, UserCreated};
use tidings::idempotency::Deduplicator;
use tidings::replay::{Replay, ReplaySpec, ReplayStart};
use tidings::subscribe::Health;
use tidings::testing::{eventually, FaultProxy, Flow, Frame};
use tidings::{DomainEvent, Event, PublishContext, Subscriber};
use tokio::sync::{mpsc, Semaphore};

/// A hand-written event type stored in a second stream (CATALOG_EVENTS),
/// for a group whose types span two streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductNoted {
    sku: String,
}

impl DomainEvent for ProductNoted {
    const EVENT_TYPE: &'static str = "catalog.product.noted";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "CATALOG_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"sku": {"type": "string", "minLength": 1}},
        "required": ["sku"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/product.noted.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("sku");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.sku))
    }
}

impl tidings::upcast::ReadAnyVersion for ProductNoted {}

/// Messages stored in DLQ_EVENTS.
async fn dead_letters(js: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(js
        .get_stream("DLQ_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages)
}

#[tokio::test]
async fn shutdown_returns_within_its_deadline_when_the_server_was_killed() -> anyhow::Result<()> {
    let (mut server, client, _js, publisher) = setup().await?;
    let deadline = Duration::from_secs(2);
    let config = tidings::SubscriberConfig {
        shutdown_deadline: deadline,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "killed", config)?;
    subscriber.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            std::future::pending::<()>().await;
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    take(&mut rx, 1).await?;
    server.kill()?;
    let started = Instant::now();
    let report = tokio::time::timeout(deadline + Duration::from_secs(30), running.shutdown()).await;
    let elapsed = started.elapsed();
    assert!(
        report.is_ok() && elapsed <= deadline + Duration::from_secs(5),
        "shutdown with a {deadline:?} deadline had {} after {elapsed:?}",
        if report.is_ok() {
            "returned"
        } else {
            "not returned"
        }
    );
    Ok(())
}

#[tokio::test]
async fn a_group_spanning_two_streams_counts_each_stream_s_reservations_apart() -> anyhow::Result<()>
{
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_in_flight: 8,
        pull_expires: Duration::from_secs(2),
        shutdown_deadline: Duration::from_millis(500),
        ..fast_config()
    };
    // Each handler reports its start, then waits for a permit of `gate`.
    let gate = Arc::new(Semaphore::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let mut subscriber = Subscriber::new(client, "two-streams", config)?;
    {
        let (gate, tx) = (gate.clone(), tx.clone());
        subscriber.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                let _ = tx.send("user");
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
                Ok::<(), Infallible>(())
            }
        });
    }
    {
        let (gate, tx) = (gate.clone(), tx.clone());
        subscriber.handle::<ProductNoted, _>(move |_event: Event<ProductNoted>| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                let _ = tx.send("product");
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
                Ok::<(), Infallible>(())
            }
        });
    }
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    publisher
        .publish(
            &ctx,
            &ProductNoted {
                sku: "sku-1".into(),
            },
        )
        .await?;
    let mut started = take(&mut rx, 2).await?;
    started.sort_unstable();
    assert_eq!(started, vec!["product", "user"]);
    assert_eq!(running.in_flight(), 2, "two handlers are running");
    // Both handlers finish and ack; each stream's loop may ask for more
    // while the other's request is still out.
    gate.add_permits(2);
    settled(&js, "AUTH_EVENTS", "two-streams").await?;
    settled(&js, "CATALOG_EVENTS", "two-streams").await?;
    tidings::testing::eventually(
        "nothing is in flight once both events are acked",
        Duration::from_secs(5),
        || async {
            match running.in_flight() {
                0 => Ok(()),
                n => Err(format!("in_flight() says {n}")),
            }
        },
    )
    .await?;
    // A third event whose handler outlives the shutdown deadline.
    publisher.publish(&ctx, &UserCreated::numbered(2)).await?;
    take(&mut rx, 1).await?;
    assert_eq!(running.in_flight(), 1);
    let report = running.shutdown().await;
    assert_eq!(report.abandoned, 1, "one handler was still running");
    Ok(())
}

#[tokio::test]
async fn with_fewer_free_slots_than_idle_streams_the_streams_take_them_in_turn(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        // Longer than the test: the blocked handlers are not taken for hung.
        ack_wait: Duration::from_secs(30),
        max_in_flight: 3,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let gate = Arc::new(Semaphore::new(0));
    let mut subscriber = Subscriber::new(client, "scarce-slots", config)?;
    {
        let (tx, gate) = (tx.clone(), gate.clone());
        subscriber.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
            let (tx, gate) = (tx.clone(), gate.clone());
            async move {
                let _ = tx.send("user");
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                Ok::<(), String>(())
            }
        });
    }
    subscriber.handle::<ProductNoted, _>(move |_event: Event<ProductNoted>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send("product");
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;
    // Two blocked handlers hold two of the three slots: one is free, and
    // both streams' loops have nothing asked once their requests expire.
    let ctx = PublishContext::new("org-1")?;
    for r in publisher
        .publish_batch(&ctx, &[UserCreated::numbered(1), UserCreated::numbered(2)])
        .await
    {
        r?;
    }
    assert_eq!(take(&mut rx, 2).await?, ["user", "user"]);
    eventually(
        "the catalog stream's first request has expired",
        Duration::from_secs(10),
        || async {
            match consumer_info(&js, "CATALOG_EVENTS", "scarce-slots").await {
                Ok(info) if info.num_waiting == 0 => Ok(()),
                Ok(info) => Err(format!("{} requests waiting", info.num_waiting)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    publisher
        .publish(&ctx, &ProductNoted { sku: "p-1".into() })
        .await?;
    // Before, each loop left the free slot to the other idle one, and
    // neither asked again until a handler returned.
    assert_eq!(take(&mut rx, 1).await?, ["product"]);
    gate.add_permits(2);
    settled(&js, "AUTH_EVENTS", "scarce-slots").await?;
    settled(&js, "CATALOG_EVENTS", "scarce-slots").await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_idle_stream_of_a_group_asks_for_a_small_probe_not_the_window_a_busy_one_needs(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let client = async_nats::connect(proxy.url()).await?;
    /// The batch size of a pull request on `stream`'s consumers.
    fn batch(frame: &Frame, stream: &str) -> Option<u64> {
        let subject = frame.subject()?;
        subject.strip_prefix(&format!("$JS.API.CONSUMER.MSG.NEXT.{stream}."))?;
        let body: serde_json::Value = serde_json::from_slice(frame.payload()).ok()?;
        body.get("batch")?.as_u64()
    }
    let idle_requests = proxy.count(Flow::ClientToServer, |f: &Frame| {
        batch(f, "CATALOG_EVENTS").is_some()
    });
    let idle_large = proxy.count(Flow::ClientToServer, |f: &Frame| {
        batch(f, "CATALOG_EVENTS").is_some_and(|n| n > 8)
    });
    let busy_large = proxy.count(Flow::ClientToServer, |f: &Frame| {
        batch(f, "AUTH_EVENTS").is_some_and(|n| n > 8)
    });
    let config = tidings::SubscriberConfig {
        max_in_flight: 64,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let mut subscriber = Subscriber::new(client, "one-busy-stream", config)?;
    {
        let tx = tx.clone();
        subscriber.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send("user");
                Ok::<(), Infallible>(())
            }
        });
    }
    subscriber.handle::<ProductNoted, _>(move |_event: Event<ProductNoted>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send("product");
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    // AUTH_EVENTS busy for several of CATALOG_EVENTS' idle long polls.
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..600).map(UserCreated::numbered).collect();
    for chunk in events.chunks(50) {
        for r in publisher.publish_batch(&ctx, chunk).await {
            r?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    take(&mut rx, events.len()).await?;
    settled(&js, "AUTH_EVENTS", "one-busy-stream").await?;
    assert!(idle_requests.hits() > 2, "the idle stream was polled");
    assert_eq!(
        idle_large.hits(),
        0,
        "the idle stream asked for more than a probe, parking slots the busy one needed"
    );
    assert!(busy_large.hits() > 0, "the busy stream grew its requests");
    // An event on the idle stream still comes at once.
    publisher
        .publish(
            &ctx,
            &ProductNoted {
                sku: "sku-1".into(),
            },
        )
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec!["product"]);
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn replay_under_sustained_publishing_stops_at_the_last_sequence_of_its_start(
) -> anyhow::Result<()> {
    let (_server, _client, js, publisher) = setup().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..1000).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    let spec = ReplaySpec {
        stream: "AUTH_EVENTS".into(),
        event_types: vec!["auth.user.created".into()],
        organization: None,
        start: ReplayStart::Sequence(1),
        until: None,
    };
    let mut replay = Replay::start(&js, spec).await?;
    // Publishing goes on while the replay reads, until it ends.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let publisher = publisher.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let more: Vec<UserCreated> = (0..100).map(UserCreated::numbered).collect();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return,
                    results = publisher.publish_batch(&ctx, &more) => {
                        if results.iter().any(Result::is_err) {
                            return;
                        }
                    }
                }
            }
        })
    };
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut last = 0;
        let mut count = 0u64;
        while let Some(item) = replay.next().await {
            last = item?.stream_sequence;
            count += 1;
            if count.is_multiple_of(20) {
                // A reader slower than the writer.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        anyhow::Ok((count, last))
    })
    .await;
    let _ = stop_tx.send(());
    writer.await?;
    let (count, last) =
        read.map_err(|_| anyhow::anyhow!("the replay was still following the tail after 20 s"))??;
    assert_eq!((count, last), (1000, 1000), "(events read, last sequence)");
    Ok(())
}

#[tokio::test]
async fn replay_ends_when_the_rest_of_its_range_is_deleted() -> anyhow::Result<()> {
    let (_server, _client, js, publisher) = setup().await?;
    let ctx = PublishContext::new("org-1")?;
    let kept: Vec<UserCreated> = (0..100).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &kept).await {
        r?;
    }
    let doomed: Vec<UserCreated> = (0..1000)
        .map(|_| UserCreated {
            user_id: "doomed".into(),
            ..UserCreated::numbered(0)
        })
        .collect();
    for r in publisher.publish_batch(&ctx, &doomed).await {
        r?;
    }
    let spec = ReplaySpec {
        stream: "AUTH_EVENTS".into(),
        event_types: vec!["auth.user.created".into()],
        organization: None,
        start: ReplayStart::Sequence(1),
        until: None,
    };
    let mut replay = Replay::start(&js, spec).await?;
    // The replay counted them at its start; they go before it reads them.
    js.get_stream("AUTH_EVENTS")
        .await?
        .purge()
        .filter("auth.user.created.org-1.doomed")
        .await?;
    let sequences = tokio::time::timeout(Duration::from_secs(20), async {
        let mut sequences = Vec::new();
        while let Some(item) = replay.next().await {
            sequences.push(item?.stream_sequence);
        }
        anyhow::Ok(sequences)
    })
    .await
    .map_err(|_| anyhow::anyhow!("the replay waited 20 s for deleted messages"))??;
    assert_eq!(
        sequences[..100],
        (1..=100).collect::<Vec<u64>>()[..],
        "every kept event, in order"
    );
    Ok(())
}

#[tokio::test]
async fn an_unavailable_dedup_bucket_holds_the_event_in_place_without_spending_its_deliveries(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let ttl = Duration::from_secs(3600);
    let dedup = Deduplicator::open(&js, "dedup_outage", ttl, 1).await?;
    js.delete_key_value("dedup_outage").await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 3,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "dedup-outage", config.clone())?;
    subscriber
        .handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.meta);
                Ok::<(), Infallible>(())
            }
        })
        .deduplicate(dedup);
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    // Longer than max_deliveries backoffs: the outage outlasts the budget.
    let outage = config.backoff.delay(1) + config.backoff.delay(2) + config.backoff.delay(3);
    let until = Instant::now() + outage * 4;
    tokio::select! {
        meta = rx.recv() => anyhow::bail!("the handler ran during the outage: {meta:?}"),
        _ = tokio::time::sleep_until(until.into()) => {}
    }
    assert_eq!(
        dead_letters(&js).await?,
        0,
        "dead-lettered during the outage"
    );
    Deduplicator::open(&js, "dedup_outage", ttl, 1).await?;
    let got = take(&mut rx, 1).await?;
    settled(&js, "AUTH_EVENTS", "dedup-outage").await?;
    assert!(rx.try_recv().is_err(), "the handler ran twice");
    assert_eq!(got[0].delivery, 1, "the outage spent no handler run");
    assert_eq!(
        dead_letters(&js).await?,
        0,
        "dead-lettered after the outage"
    );
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_dedup_record_that_fails_after_the_handler_is_retried_before_the_ack(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let ttl = Duration::from_secs(3600);
    let dedup = Deduplicator::open(&js, "dedup_record", ttl, 1).await?;
    // Every record attempt is a publish to the bucket's subjects. This
    // subscription is also an interest in them: with the bucket gone a
    // record gets no "no responders" answer and times out after 5 s, longer
    // than the 2 s ack wait, as a record to an R3 bucket without its quorum
    // does. The event must be kept alive meanwhile, not redelivered.
    let mut puts = client.subscribe("$KV.dedup_record.>").await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "dedup-record", fast_config())?;
    let bucket_js = js.clone();
    subscriber
        .handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let (tx, js) = (tx.clone(), bucket_js.clone());
            async move {
                // The bucket goes away while the handler runs: recording
                // the handled event fails until it is back.
                js.delete_key_value("dedup_record")
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = tx.send(event.meta.event_id);
                Ok::<(), String>(())
            }
        })
        .deduplicate(dedup.clone());
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let event_id = take(&mut rx, 1).await?[0];
    for attempt in 1..=2 {
        tokio::time::timeout(Duration::from_secs(10), puts.next())
            .await
            .map_err(|_| anyhow::anyhow!("no record attempt {attempt}"))?;
    }
    let pending = support::consumer_info(&js, "AUTH_EVENTS", "dedup-record")
        .await?
        .num_ack_pending;
    assert_eq!(pending, 1, "acked before the record was stored");
    Deduplicator::open(&js, "dedup_record", ttl, 1).await?;
    settled(&js, "AUTH_EVENTS", "dedup-record").await?;
    assert!(
        dedup.seen("dedup-record", event_id).await?,
        "the handled event was not recorded once the bucket was back"
    );
    assert!(rx.try_recv().is_err(), "the handler ran twice");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_redelivery_reaching_the_instance_still_recording_the_event_does_not_run_it_again(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_millis(500)))
        .connect(proxy.url())
        .await?;
    let ttl = Duration::from_secs(3600);
    let dedup = Deduplicator::open(&jetstream::new(client.clone()), "dedup_local", ttl, 1).await?;
    // As when the node leading both the bucket and the consumer is frozen:
    // this instance's records and progress acks are lost, its reads answered.
    let records = proxy.drop_all(Flow::ClientToServer, |f: &Frame| {
        f.subject()
            .is_some_and(|s| s.starts_with("$KV.dedup_local."))
    });
    let progress = proxy.drop_all(Flow::ClientToServer, |f: &Frame| {
        f.ack_kind().as_deref() == Some("+WPI")
    });
    let redelivered = proxy.count(Flow::ServerToClient, |f: &Frame| {
        f.is_delivery() && f.reply().is_some_and(|r| r.split('.').nth(4) == Some("2"))
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "dedup-local", fast_config())?;
    subscriber
        .handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((event.meta.event_id, event.meta.delivery));
                Ok::<(), Infallible>(())
            }
        })
        .deduplicate(dedup.clone());
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let (event_id, delivery) = take(&mut rx, 1).await?[0];
    assert_eq!(delivery, 1);
    // The ack wait (2 s) passes without progress acks: the server delivers
    // the event again, to this instance, while its record still fails.
    redelivered.wait(1, Duration::from_secs(20)).await?;
    records.remove();
    progress.remove();
    // The redelivery was acked (the event was handled); the first delivery
    // goes on recording until the bucket takes it.
    settled(&js, "AUTH_EVENTS", "dedup-local").await?;
    let check = Deduplicator::open(&js, "dedup_local", ttl, 1).await?;
    eventually(
        "the record, once the bucket answers",
        Duration::from_secs(20),
        || async {
            anyhow::ensure!(check.seen("dedup-local", event_id).await?, "not recorded");
            anyhow::Ok(())
        },
    )
    .await?;
    assert!(rx.try_recv().is_err(), "the handler ran again");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_duplicate_check_reads_from_the_leader_not_from_a_replica_that_may_be_behind(
) -> anyhow::Result<()> {
    let (server, _client, _js, _publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let js = jetstream::new(async_nats::connect(proxy.url()).await?);
    let dedup = Deduplicator::open(&js, "dedup_leader", Duration::from_secs(3600), 1).await?;
    let direct = proxy.count(Flow::ClientToServer, |f: &Frame| {
        f.subject()
            .is_some_and(|s| s.starts_with("$JS.API.DIRECT.GET."))
    });
    let leader = proxy.count(Flow::ClientToServer, |f: &Frame| {
        f.subject()
            .is_some_and(|s| s == "$JS.API.STREAM.MSG.GET.KV_dedup_leader")
    });
    let id = uuid::Uuid::now_v7();
    assert!(!dedup.seen("g", id).await?, "not recorded yet");
    dedup.record("g", id).await?;
    assert!(dedup.seen("g", id).await?, "recorded");
    js.get_key_value("dedup_leader")
        .await?
        .delete(format!("g.{id}"))
        .await?;
    assert!(
        !dedup.seen("g", id).await?,
        "a delete marker is not a record"
    );
    assert_eq!(leader.hits(), 3, "each check asked the stream leader");
    assert_eq!(direct.hits(), 0, "no check asked any replica");
    Ok(())
}

#[tokio::test]
async fn an_unavailable_dedup_bucket_keeps_an_entitys_order_in_ordered_mode() -> anyhow::Result<()>
{
    let (_server, client, js, publisher) = setup().await?;
    let ttl = Duration::from_secs(3600);
    let dedup = Deduplicator::open(&js, "dedup_ordered", ttl, 1).await?;
    js.delete_key_value("dedup_ordered").await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 2,
        ordered_by_key: true,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "dedup-ordered", config.clone())?;
    subscriber
        .handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((event.payload.email, event.meta.delivery));
                Ok::<(), Infallible>(())
            }
        })
        .deduplicate(dedup);
    let running = subscriber.start().await?;
    // Five events of one entity, in this order.
    let ctx = PublishContext::new("org-1")?;
    let emails: Vec<String> = (0..5).map(|i| format!("step{i}@example.com")).collect();
    for email in &emails {
        let event = UserCreated {
            user_id: "u-1".into(),
            email: email.clone(),
            display_name: "User 1".into(),
        };
        publisher.publish(&ctx, &event).await?;
    }
    // The outage outlasts the delivery budget several times over.
    let outage = (1..=4).map(|n| config.backoff.delay(n)).sum::<Duration>() * 2;
    let until = Instant::now() + outage;
    tokio::select! {
        got = rx.recv() => anyhow::bail!("the handler ran during the outage: {got:?}"),
        _ = tokio::time::sleep_until(until.into()) => {}
    }
    Deduplicator::open(&js, "dedup_ordered", ttl, 1).await?;
    let got = take(&mut rx, emails.len()).await?;
    settled(&js, "AUTH_EVENTS", "dedup-ordered").await?;
    assert_eq!(
        got.iter()
            .map(|(email, _)| email.clone())
            .collect::<Vec<_>>(),
        emails,
        "the entity's events in publish order"
    );
    assert!(
        got.iter().all(|(_, delivery)| *delivery == 1),
        "the outage spent no handler run: {got:?}"
    );
    assert_eq!(dead_letters(&js).await?, 0, "nothing dead-lettered");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn in_an_ordered_lane_a_waiting_event_redelivered_after_lost_progress_acks_runs_once(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let client = async_nats::connect(proxy.url()).await?;
    // The progress acks that keep the second event (stream sequence 2)
    // waiting behind the first are lost; the first's own arrive.
    let lost = proxy.drop_all(Flow::ClientToServer, |f: &Frame| {
        f.ack_kind().as_deref() == Some("+WPI")
            && f.subject()
                .is_some_and(|s| s.split('.').nth(5) == Some("2"))
    });
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        ordered_by_key: true,
        // Fewer than the deliveries the second event gets while it waits.
        max_deliveries: 2,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
    let mut subscriber = Subscriber::new(client, "ordered-lost-progress", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let first = event.payload.display_name == "0";
            let _ = tx.send((event.payload.display_name.clone(), event.meta.delivery));
            if first {
                // Three ack waits of work, reporting progress.
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    event.progress().await.map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    for i in 0..2 {
        let event = UserCreated {
            display_name: i.to_string(),
            ..UserCreated::numbered(0)
        };
        publisher.publish(&ctx, &event).await?;
    }
    // The second event comes back (each ack wait) while the first runs,
    // and waits in the lane in place of its earlier delivery: the handler
    // runs it once, and the deliveries it never ran spent nothing.
    let got = take(&mut rx, 2).await?;
    assert_eq!(got[0], ("0".to_string(), 1));
    assert_eq!(got[1].0, "1");
    assert!(got[1].1 > 2, "redelivered while it waited: {got:?}");
    assert!(lost.hits() > 0, "no progress ack was lost");
    settled(&js, "AUTH_EVENTS", "ordered-lost-progress").await?;
    assert!(rx.try_recv().is_err(), "the second event ran twice");
    assert_eq!(dead_letters(&js).await?, 0, "dead-lettered without a run");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_deleted_consumer_is_recreated_and_consumption_goes_on() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "recreated", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.payload.user_id);
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    assert_eq!(take(&mut rx, 1).await?, vec!["u-1".to_string()]);
    settled(&js, "AUTH_EVENTS", "recreated").await?;
    let health = running.health();
    assert_eq!(*health.borrow(), Health::Consuming);
    js.get_stream("AUTH_EVENTS")
        .await?
        .delete_consumer("recreated")
        .await?;
    publisher.publish(&ctx, &UserCreated::numbered(2)).await?;
    assert_eq!(
        take(&mut rx, 1).await?,
        vec!["u-2".to_string()],
        "the event published after the deletion"
    );
    assert_eq!(
        *health.borrow(),
        Health::ConsumerRecreated {
            stream: "AUTH_EVENTS".into()
        }
    );
    settled(&js, "AUTH_EVENTS", "recreated").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_delivery_released_by_a_shutdown_does_not_count_against_the_event() -> anyhow::Result<()>
{
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ack_wait: Duration::from_secs(60),
        shutdown_deadline: Duration::from_millis(300),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut hung = Subscriber::new(client, "released", config.clone())?;
    hung.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            std::future::pending::<()>().await;
            Ok::<(), Infallible>(())
        }
    });
    let running = hung.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    take(&mut rx, 1).await?;
    assert_eq!(running.shutdown().await.abandoned, 1);

    // Its one allowed run is still to come.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut next = Subscriber::new(server.connect().await?, "released", config)?;
    next.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.payload.user_id);
            Ok::<(), Infallible>(())
        }
    });
    let running = next.start().await?;
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let in_dlq = dead_letters(&js).await?;
    assert!(
        matches!(&got, Ok(Some(id)) if id == "u-1") && in_dlq == 0,
        "after the release: handler got {got:?}, {in_dlq} dead letters"
    );
    settled(&js, "AUTH_EVENTS", "released").await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn ordered_retries_in_place_count_as_deliveries_in_the_dead_letter() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 3,
        ordered_by_key: true,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "ordered-runs", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            Err::<(), _>("always refused")
        }
    });
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 3).await?, vec![1, 2, 3]);
    let dead = tidings::testing::eventually(
        "the dead letter arrives",
        Duration::from_secs(20),
        || async {
            let found =
                tidings::dlq::ops::list(&js, &tidings::dlq::DlqFilter::default(), None).await?;
            match found.len() {
                1 => Ok(found),
                n => Err(anyhow::anyhow!("{n} dead letters")),
            }
        },
    )
    .await?;
    let record = dead[0].record.clone()?;
    assert_eq!(record.deliveries, 3, "three handler runs");
    assert!(rx.try_recv().is_err(), "a fourth run");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn health_follows_the_connection_and_the_shutdown() -> anyhow::Result<()> {
    let (mut server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "healthy", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.payload.user_id);
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    let mut health = running.health();
    assert_eq!(*health.borrow(), Health::Consuming);
    server.stop().await?;
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| *h == Health::Reconnecting),
    )
    .await??;
    server.start().await?;
    tokio::time::timeout(
        Duration::from_secs(20),
        health.wait_for(|h| *h == Health::Consuming),
    )
    .await??;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec!["u-1".to_string()]);
    settled(&js, "AUTH_EVENTS", "healthy").await?;
    running.shutdown().await;
    assert_eq!(*health.borrow(), Health::Stopped { error: None });
    Ok(())
}
