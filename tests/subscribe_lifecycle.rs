//! A consumer group's life against a real nats-server: graceful shutdown,
//! a process killed before its ack, deduplication by event id, replay of a
//! time range or from a sequence, and mixed-version traffic read as one
//! version.
mod support;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use support::{consumer_info, fast_config, say, settled, setup, take, ChildTest, UserCreated};
use tidings::idempotency::Deduplicator;
use tidings::replay::{Replay, ReplaySpec, ReplayStart};
use tidings::{Event, EventMeta, PublishContext, Publisher, Subscriber};
use tokio::sync::mpsc;

/// A subscriber of `group` sending each event's metadata to `tx`, after
/// `work` of handling.
fn recording(
    client: async_nats::Client,
    group: &str,
    config: tidings::SubscriberConfig,
    work: Duration,
    tx: mpsc::UnboundedSender<EventMeta>,
) -> anyhow::Result<Subscriber> {
    let mut subscriber = Subscriber::new(client, group, config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            tokio::time::sleep(work).await;
            let _ = tx.send(event.meta);
            Ok::<(), Infallible>(())
        }
    });
    Ok(subscriber)
}

#[tokio::test]
async fn a_graceful_shutdown_finishes_in_flight_work_and_nothing_is_handled_twice(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_in_flight: 4,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let first = recording(
        client,
        "graceful",
        config.clone(),
        Duration::from_millis(200),
        tx.clone(),
    )?;
    let running = first.start().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..30).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    // Shut down while handlers are busy.
    take(&mut rx, 1).await?;
    tidings::testing::eventually("handlers are busy", Duration::from_secs(10), || async {
        if running.in_flight() > 0 {
            Ok(())
        } else {
            Err("no handler running")
        }
    })
    .await?;
    let report = running.shutdown().await;
    assert_eq!(report.abandoned, 0);
    let mut seen: Vec<EventMeta> = Vec::new();
    while let Ok(meta) = rx.try_recv() {
        seen.push(meta);
    }
    let before = seen.len() + 1;
    assert!(before < 30, "everything was handled before the shutdown");
    // Every started handler finished and acked: the consumer has nothing
    // awaiting an ack. The acks were flushed by the shutdown, but this
    // check reads through another connection, so the server may still be
    // applying the last ack: await it (briefly) rather than race it. The
    // restart below proves nothing is redelivered.
    tidings::testing::eventually(
        "shutdown left no unacked work",
        Duration::from_secs(2),
        || async {
            match consumer_info(&js, "AUTH_EVENTS", "graceful").await {
                Ok(info) if info.num_ack_pending == 0 => Ok(()),
                Ok(info) => Err(format!("{} awaiting an ack", info.num_ack_pending)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;

    let second = recording(
        server.connect().await?,
        "graceful",
        config,
        Duration::ZERO,
        tx,
    )?;
    let running = second.start().await?;
    let rest = take(&mut rx, 30 - before).await?;
    settled(&js, "AUTH_EVENTS", "graceful").await?;
    running.shutdown().await;
    let mut count: HashMap<uuid::Uuid, usize> = HashMap::new();
    for meta in rest.iter().chain(seen.iter()) {
        *count.entry(meta.event_id).or_default() += 1;
        assert_eq!(
            meta.delivery, 1,
            "an event came back after a clean shutdown"
        );
    }
    assert_eq!(count.len() + 1, 30);
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    Ok(())
}

#[tokio::test]
async fn a_shutdown_deadline_releases_hung_events_for_prompt_redelivery() -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        // Far longer than the test waits: only the release brings it back.
        ack_wait: Duration::from_secs(60),
        shutdown_deadline: Duration::from_millis(300),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let mut hung = Subscriber::new(client, "deadline", config.clone())?;
    hung.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            std::future::pending::<()>().await;
            Ok::<(), Infallible>(())
        }
    });
    let running = hung.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![1]);
    let report = running.shutdown().await;
    assert_eq!(report.abandoned, 1);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let next = recording(
        server.connect().await?,
        "deadline",
        config,
        Duration::ZERO,
        tx,
    )?;
    let running = next.start().await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!(got[0].delivery, 2);
    settled(&js, "AUTH_EVENTS", "deadline").await?;
    running.shutdown().await;
    Ok(())
}

/// The child side of the SIGKILL test: run by the test below as a separate
/// process (`TIDINGS_CHILD_NATS_URL` set); a no-op otherwise.
#[tokio::test]
#[ignore = "run as a child process by a_subscriber_killed_before_its_ack_gets_the_event_again_after_restart"]
async fn child_subscriber_that_never_acks() -> anyhow::Result<()> {
    let Ok(url) = std::env::var("TIDINGS_CHILD_NATS_URL") else {
        return Ok(());
    };
    let client = async_nats::connect(url).await?;
    let mut subscriber = Subscriber::new(client, "killed", fast_config())?;
    subscriber.handle::<UserCreated, _>(|event: Event<UserCreated>| async move {
        say(&format!("handling {}", event.meta.event_id))?;
        std::future::pending::<()>().await;
        Ok::<(), std::io::Error>(())
    });
    let _running = subscriber.start().await?;
    say("ready")?;
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn a_subscriber_killed_before_its_ack_gets_the_event_again_after_restart(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let mut child = ChildTest::spawn("child_subscriber_that_never_acks", &server.url(), &[])?;
    child.next_line("ready").await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let line = child.next_line("handling").await?;
    assert_eq!(line, format!("handling {}", published.event_id));

    let status = child.kill().await?; // SIGKILL, then reaped
    assert!(!status.success());

    let (tx, mut rx) = mpsc::unbounded_channel();
    let restarted = recording(client, "killed", fast_config(), Duration::ZERO, tx)?;
    let running = restarted.start().await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!(got[0].event_id, published.event_id);
    assert_eq!(got[0].delivery, 2, "redelivered after the ack wait");
    settled(&js, "AUTH_EVENTS", "killed").await?;
    running.shutdown().await;
    Ok(())
}

/// The child of the SIGTERM test: one consumer group run with the
/// one-liner `until_stop_signal`, handlers that take 300 ms.
#[tokio::test]
#[ignore = "run as a child process by sigterm_mid_work_finishes_and_acks_every_in_flight_event"]
async fn child_subscriber_until_sigterm() -> anyhow::Result<()> {
    use futures_util::FutureExt as _;
    let Ok(url) = std::env::var("TIDINGS_CHILD_NATS_URL") else {
        return Ok(());
    };
    let client = async_nats::connect(url).await?;
    let config = tidings::SubscriberConfig {
        max_in_flight: 4,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "signalled", config)?;
    subscriber.handle::<UserCreated, _>(|event: Event<UserCreated>| async move {
        say(&format!("handling {}", event.meta.event_id))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        say(&format!("handled {}", event.meta.event_id))?;
        Ok::<(), std::io::Error>(())
    });
    let mut until = std::pin::pin!(subscriber.start().await?.until_stop_signal());
    // The first poll installs the signal handlers; only then may the parent
    // send SIGTERM.
    assert!((&mut until).now_or_never().is_none());
    say("ready")?;
    let report = until.await?;
    say(&format!("stopped abandoned={}", report.abandoned))?;
    Ok(())
}

#[tokio::test]
async fn sigterm_mid_work_finishes_and_acks_every_in_flight_event() -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let mut child = ChildTest::spawn("child_subscriber_until_sigterm", &server.url(), &[])?;
    child.next_line("ready").await?;
    let events: Vec<UserCreated> = (0..30).map(UserCreated::numbered).collect();
    for r in publisher
        .publish_batch(&PublishContext::new("org-1")?, &events)
        .await
    {
        r?;
    }
    child.next_line("handling").await?;
    child.terminate()?;
    let (status, lines) = child.finish().await?;
    assert!(status.success(), "the child failed: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("stopped abandoned=0")),
        "{lines:#?}"
    );
    let ids = |prefix: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.find(prefix).map(|at| l[at + prefix.len()..].to_string()))
            .collect()
    };
    let mut started = ids("handling ");
    let mut finished = ids("handled ");
    started.sort();
    finished.sort();
    // The first "handling" line was read before the signal.
    assert_eq!(started.len() + 1, finished.len(), "{lines:#?}");
    assert!(finished.len() < 30, "all handled before the signal");
    let info = tidings::testing::eventually(
        "the child's acks are applied",
        Duration::from_secs(2),
        || async {
            match consumer_info(&js, "AUTH_EVENTS", "signalled").await {
                Ok(info) if info.num_ack_pending == 0 => Ok(info),
                Ok(info) => Err(format!("{} awaiting an ack", info.num_ack_pending)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(info.ack_floor.stream_sequence as usize, finished.len());

    // The next instance gets exactly the rest, each for the first time.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let next = recording(client, "signalled", fast_config(), Duration::ZERO, tx)?;
    let running = next.start().await?;
    let rest = take(&mut rx, 30 - finished.len()).await?;
    settled(&js, "AUTH_EVENTS", "signalled").await?;
    running.shutdown().await;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    for meta in &rest {
        assert_eq!(meta.delivery, 1, "redelivered after a SIGTERM shutdown");
        assert!(!finished.contains(&meta.event_id.to_string()));
    }
    Ok(())
}

#[tokio::test]
async fn deduplication_skips_an_event_the_group_already_handled() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let dedup = Deduplicator::open(&js, "tidings-dedup", Duration::from_secs(3600), 1).await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let start = |calls: Arc<AtomicUsize>| {
        let mut subscriber = Subscriber::new(client.clone(), "once", fast_config())?;
        subscriber
            .handle::<UserCreated, _>(move |_e: Event<UserCreated>| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), Infallible>(())
                }
            })
            .deduplicate(dedup.clone());
        Ok::<_, anyhow::Error>(subscriber)
    };
    let running = start(calls.clone())?.start().await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    settled(&js, "AUTH_EVENTS", "once").await?;
    running.shutdown().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(dedup.seen("once", published.event_id).await?);
    assert!(!dedup.seen("other-group", published.event_id).await?);

    // Reset the group: the server delivers the event again.
    js.get_stream("AUTH_EVENTS")
        .await?
        .delete_consumer("once")
        .await?;
    let running = start(calls.clone())?.start().await?;
    settled(&js, "AUTH_EVENTS", "once").await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "once").await?;
    assert_eq!(
        info.delivered.stream_sequence, published.sequence,
        "not redelivered"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the side effect ran twice");
    running.shutdown().await;

    assert!(
        Deduplicator::open(&js, "bad.name", Duration::from_secs(1), 1)
            .await
            .is_err()
    );
    Ok(())
}

/// Publishes `n` events alternating between two tenants and returns each
/// one's (sequence, storage time, tenant).
async fn publish_history(
    js: &jetstream::Context,
    publisher: &Publisher,
    n: usize,
) -> anyhow::Result<Vec<(u64, time::OffsetDateTime, &'static str)>> {
    let stream = js.get_stream("AUTH_EVENTS").await?;
    let mut out = Vec::new();
    for i in 0..n {
        let org = if i % 2 == 0 { "org-1" } else { "org-2" };
        let published = publisher
            .publish(&PublishContext::new(org)?, &UserCreated::numbered(i))
            .await?;
        let stored = stream.get_raw_message(published.sequence).await?;
        out.push((published.sequence, stored.time, org));
    }
    Ok(out)
}

#[tokio::test]
async fn replay_returns_a_time_range_in_stream_order_without_touching_the_groups(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let live = recording(client.clone(), "live", fast_config(), Duration::ZERO, tx)?;
    let running = live.start().await?;
    let history = publish_history(&js, &publisher, 20).await?;
    take(&mut rx, 20).await?;
    settled(&js, "AUTH_EVENTS", "live").await?;
    let before = consumer_info(&js, "AUTH_EVENTS", "live").await?;

    let (from, until) = (history[4].1, history[15].1);
    let expected: Vec<u64> = history
        .iter()
        .filter(|(_, t, org)| *t >= from && *t < until && *org == "org-1")
        .map(|(s, _, _)| *s)
        .collect();
    assert!(expected.len() >= 4);
    let mut replay = Replay::start(
        &js,
        ReplaySpec {
            stream: "AUTH_EVENTS".into(),
            event_types: vec!["auth.user.created".into()],
            organization: Some(tidings::OrganizationId::new("org-1")?),
            start: ReplayStart::Time(from),
            until: Some(until),
        },
    )
    .await?;
    let mut got = Vec::new();
    while let Some(item) = replay.next().await {
        let item = item?;
        assert_eq!(item.envelope.organization_id.as_str(), "org-1");
        got.push(item.stream_sequence);
    }
    assert_eq!(got, expected);

    // From a sequence to the end, every tenant.
    let mut replay = Replay::start(
        &js,
        ReplaySpec {
            stream: "AUTH_EVENTS".into(),
            event_types: vec!["auth.user.created".into()],
            organization: None,
            start: ReplayStart::Sequence(history[17].0),
            until: None,
        },
    )
    .await?;
    let mut got = Vec::new();
    while let Some(item) = replay.next().await {
        got.push(item?.stream_sequence);
    }
    assert_eq!(got, history[17..].iter().map(|h| h.0).collect::<Vec<_>>());

    // An empty range ends at once.
    let after_everything = history[19].1 + time::Duration::seconds(1);
    let mut replay = Replay::start(
        &js,
        ReplaySpec {
            stream: "AUTH_EVENTS".into(),
            event_types: vec!["auth.user.created".into()],
            organization: None,
            start: ReplayStart::Time(after_everything),
            until: None,
        },
    )
    .await?;
    assert!(replay.next().await.is_none());

    let after = consumer_info(&js, "AUTH_EVENTS", "live").await?;
    assert_eq!(after.delivered, before.delivered);
    assert_eq!(after.ack_floor, before.ack_floor);
    assert_eq!(after.num_pending, 0);
    running.shutdown().await;
    assert!(rx.try_recv().is_err(), "the replay reached the live group");
    Ok(())
}

#[tokio::test]
async fn replay_runs_the_subscriber_s_own_handlers_and_stops_at_a_failure() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let history = publish_history(&js, &publisher, 10).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let fail_at = history[6].0;
    let mut subscriber = Subscriber::new(client, "rebuild", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            if event.meta.stream_sequence == fail_at {
                return Err("projection store full".to_string());
            }
            let _ = tx.send(event.meta.stream_sequence);
            Ok(())
        }
    });
    let err = subscriber
        .replay(ReplayStart::Time(history[2].1), None)
        .await
        .expect_err("the handler fails at the 7th event");
    match &err {
        tidings::replay::ReplayError::Handler {
            sequence, error, ..
        } => {
            assert_eq!(*sequence, fail_at);
            assert!(error.contains("projection store full"));
        }
        other => panic!("unexpected {other}"),
    }
    let handled = take(&mut rx, 4).await?;
    assert_eq!(
        handled,
        history[2..6].iter().map(|h| h.0).collect::<Vec<_>>()
    );
    let report = subscriber
        .replay(ReplayStart::Sequence(fail_at + 1), None)
        .await?;
    assert_eq!(report.handled, 3);
    assert_eq!(report.unreadable, 0);
    assert!(
        js.get_stream("AUTH_EVENTS")
            .await?
            .consumer_info("rebuild")
            .await
            .is_err(),
        "a replay created the group's consumer"
    );
    Ok(())
}

#[tokio::test]
async fn a_reader_on_version_2_receives_version_1_and_2_events_as_version_2() -> anyhow::Result<()>
{
    use events::auth::{UserCreated as UserCreatedV2, UserCreatedV1};

    let (_server, client, js, publisher) = setup().await?;
    let v1 = UserCreatedV1::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000001")
        .email("ana.garcia@example.com")
        .display_name("Ana García")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .build()?;
    let v2 = UserCreatedV2::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000002")
        .email("ana.garcia@example.com")
        .display_name("Ana García")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .locale("es-ES")
        .build()?;

    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, UserCreatedV2)>();
    let mut subscriber = Subscriber::new(client.clone(), "v2-reader", fast_config())?;
    subscriber.handle::<UserCreatedV2, _>(move |event: Event<UserCreatedV2>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((event.meta.schema_version, event.payload));
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    // And a reader still on version 1, meeting version 2 events.
    let (tx1, mut rx1) = mpsc::unbounded_channel::<(u32, UserCreatedV1)>();
    let mut old = Subscriber::new(client, "v1-reader", fast_config())?;
    old.handle::<UserCreatedV1, _>(move |event: Event<UserCreatedV1>| {
        let tx = tx1.clone();
        async move {
            let _ = tx.send((event.meta.schema_version, event.payload));
            Ok::<(), Infallible>(())
        }
    });
    let running_old = old.start().await?;

    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &v1).await?;
    publisher.publish(&ctx, &v2).await?;
    publisher.publish(&ctx, &v1).await?;

    let got = take(&mut rx, 3).await?;
    let versions: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(versions, vec![1, 2, 1]);
    let upcast: UserCreatedV2 = v1.clone().into();
    assert_eq!(got[0].1, upcast);
    assert_eq!(got[0].1.locale, None);
    assert_eq!(got[1].1, v2);
    let got_old = take(&mut rx1, 3).await?;
    assert_eq!(got_old[0].1, v1);
    assert_eq!(got_old[1].1.user_id, v2.user_id);
    assert_eq!(got_old[1].1.email, v2.email);
    settled(&js, "AUTH_EVENTS", "v2-reader").await?;
    settled(&js, "AUTH_EVENTS", "v1-reader").await?;
    running.shutdown().await;
    running_old.shutdown().await;
    // Sanity: the stream really holds both versions.
    let stream = js.get_stream("AUTH_EVENTS").await?;
    let mut versions_stored = BTreeMap::new();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?.take(3);
    while let Some(m) = messages.next().await {
        let m = m?;
        let v = tidings::envelope::Envelope::decode(&m.payload)?
            .schema_version()
            .to_string();
        *versions_stored.entry(v).or_insert(0) += 1;
    }
    assert_eq!(versions_stored.get("1"), Some(&2));
    assert_eq!(versions_stored.get("2"), Some(&1));
    Ok(())
}
