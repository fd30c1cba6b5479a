//! Typed consumer groups against a real nats-server: what a handler gets,
//! ack and NAK, load sharing within a group and fan-out across groups,
//! redelivery after the ack wait, unreadable messages, bounded in-flight
//! work and per-entity ordering.
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use support::{consumer_info, fast_config, settled, setup, take, UserCreated, UserDeactivated};
use tidings::envelope::Envelope;
use tidings::subscribe::{StartAt, SubscribeError};
use tidings::testing::{eventually, NatsServer};
use tidings::{Event, EventMeta, PublishContext, Subscriber};
use tokio::sync::mpsc;

#[tokio::test]
async fn a_handler_gets_the_typed_payload_and_its_metadata_and_an_ack_ends_delivery(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, EventMeta)>();
    let mut subscriber = Subscriber::new(client.clone(), "analytics", fast_config())?;
    let created = tx.clone();
    subscriber
        .handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = created.clone();
            async move {
                let _ = tx.send((format!("created {}", event.payload.email), event.meta));
                Ok::<(), Infallible>(())
            }
        })
        .handle::<UserDeactivated, _>(move |event: Event<UserDeactivated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((format!("deactivated {}", event.payload.reason), event.meta));
                Ok::<(), Infallible>(())
            }
        });
    let running = subscriber.start().await?;

    let ctx = PublishContext::new("org-42")?;
    let first = publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    let second = publisher
        .publish(
            &ctx,
            &UserDeactivated {
                user_id: "u-1".into(),
                reason: "left".into(),
            },
        )
        .await?;
    let got = take(&mut rx, 2).await?;
    let (text, meta) = &got[0];
    assert_eq!(text, "created user1@example.com");
    assert_eq!(meta.event_id, first.event_id);
    assert_eq!(meta.event_type, "auth.user.created");
    assert_eq!(meta.organization_id.as_str(), "org-42");
    assert_eq!(meta.schema_version, 1);
    assert_eq!(meta.source, "/tidings/auth");
    assert_eq!(meta.entity_key.as_deref(), Some("u-1"));
    assert_eq!(meta.subject, "auth.user.created.org-42.u-1");
    assert_eq!(meta.stream, "AUTH_EVENTS");
    assert_eq!(meta.stream_sequence, first.sequence);
    assert_eq!(meta.delivery, 1);
    assert_eq!(meta.group, "analytics");
    assert!((meta.stored_at - meta.time).abs() < time::Duration::seconds(5));
    assert_eq!(got[1].0, "deactivated left");
    assert_eq!(got[1].1.event_id, second.event_id);

    settled(&js, "AUTH_EVENTS", "analytics").await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "analytics").await?;
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(
        info.config.filter_subjects,
        vec![
            "auth.user.created.>".to_string(),
            "auth.user.deactivated.>".to_string()
        ]
    );
    let report = running.shutdown().await;
    assert_eq!(report.abandoned, 0);

    // A restarted instance of the group continues after the acked events.
    let (tx, mut rx) = mpsc::unbounded_channel::<EventMeta>();
    let mut again = Subscriber::new(client, "analytics", fast_config())?;
    again.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta);
            Ok::<(), Infallible>(())
        }
    });
    let _running = again.start().await?;
    let third = publisher.publish(&ctx, &UserCreated::numbered(3)).await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!(
        got[0].event_id, third.event_id,
        "an acked event came back after a restart"
    );
    Ok(())
}

#[tokio::test]
async fn three_instances_share_3000_events_once_each_and_a_second_group_gets_them_all(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, usize, uuid::Uuid)>();
    let mut running = Vec::new();
    for (group, instance) in [("catalog", 0), ("catalog", 1), ("catalog", 2), ("audit", 0)] {
        let client = server.connect().await?;
        let mut subscriber = Subscriber::new(client, group, fast_config())?;
        let tx = tx.clone();
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((group, instance, event.meta.event_id));
                Ok::<(), Infallible>(())
            }
        });
        running.push(subscriber.start().await?);
    }

    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..3000).map(UserCreated::numbered).collect();
    let mut published = HashSet::new();
    for result in publisher.publish_batch(&ctx, &events).await {
        published.insert(result?.event_id);
    }
    assert_eq!(published.len(), 3000);

    let got = take(&mut rx, 6000).await?;
    settled(&js, "AUTH_EVENTS", "catalog").await?;
    settled(&js, "AUTH_EVENTS", "audit").await?;
    let mut per_instance: BTreeMap<usize, usize> = BTreeMap::new();
    let mut catalog: HashMap<uuid::Uuid, usize> = HashMap::new();
    let mut audit: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (group, instance, id) in got {
        if group == "catalog" {
            *per_instance.entry(instance).or_default() += 1;
            *catalog.entry(id).or_default() += 1;
        } else {
            *audit.entry(id).or_default() += 1;
        }
    }
    for (name, handled) in [("catalog", &catalog), ("audit", &audit)] {
        let ids: HashSet<_> = handled.keys().copied().collect();
        assert_eq!(ids, published, "group {name} did not handle every event");
        assert!(
            handled.values().all(|n| *n == 1),
            "group {name} handled an event twice"
        );
    }
    assert_eq!(
        per_instance.len(),
        3,
        "not every instance took a share: {per_instance:?}"
    );
    assert_eq!(per_instance.values().sum::<usize>(), 3000);
    assert!(
        rx.try_recv().is_err(),
        "an event was handled more than once per group"
    );
    for r in running {
        assert_eq!(r.shutdown().await.abandoned, 0);
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_handler_is_nakked_with_exponential_backoff_until_it_succeeds(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, Instant)>();
    let mut subscriber = Subscriber::new(client, "retrying", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((event.meta.delivery, Instant::now()));
            if event.meta.delivery < 3 {
                Err(format!(
                    "database unavailable (delivery {})",
                    event.meta.delivery
                ))
            } else {
                Ok(())
            }
        }
    });
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let got = take(&mut rx, 3).await?;
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    // Backoff 50 ms, then 100 ms (no jitter in the test settings).
    assert!(got[1].1 - got[0].1 >= Duration::from_millis(50));
    assert!(got[2].1 - got[1].1 >= Duration::from_millis(100));
    settled(&js, "AUTH_EVENTS", "retrying").await?;
    running.shutdown().await;
    assert!(rx.try_recv().is_err(), "handled again after success");
    Ok(())
}

#[tokio::test]
async fn a_panicking_handler_is_retried_like_a_failing_one() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let mut subscriber = Subscriber::new(client, "panicky", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            assert!(event.meta.delivery > 1, "first delivery panics");
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 2).await?, vec![1, 2]);
    settled(&js, "AUTH_EVENTS", "panicky").await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_handler_that_outlives_the_ack_wait_sees_the_event_redelivered_to_another_instance(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        // One slot: the hung instance asks for nothing more, so the server
        // can only redeliver to the other one.
        max_in_flight: 1,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, u32, uuid::Uuid)>();
    let mut running = Vec::new();
    for instance in 0..2 {
        let mut subscriber = Subscriber::new(server.connect().await?, "slow", config.clone())?;
        let tx = tx.clone();
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((instance, event.meta.delivery, event.meta.event_id));
                if event.meta.delivery == 1 {
                    // Hangs far past the ack wait, without progress acks.
                    std::future::pending::<()>().await;
                }
                Ok::<(), Infallible>(())
            }
        });
        running.push(subscriber.start().await?);
    }
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let got = take(&mut rx, 2).await?;
    assert_eq!((got[0].1, got[1].1), (1, 2));
    assert_eq!(got[0].2, published.event_id);
    assert_eq!(got[1].2, published.event_id);
    assert_ne!(got[0].0, got[1].0, "redelivered to the hung instance");
    settled(&js, "AUTH_EVENTS", "slow").await?;
    Ok(())
}

#[tokio::test]
async fn progress_acks_keep_a_long_handler_s_event_from_being_redelivered() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let mut subscriber = Subscriber::new(client, "long", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            // 2.5 ack waits of work, reporting progress every 0.3 of one.
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                event.progress().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![1]);
    settled(&js, "AUTH_EVENTS", "long").await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "long").await?;
    assert_eq!(info.num_redelivered, 0);
    assert!(rx.try_recv().is_err(), "redelivered despite progress acks");
    running.shutdown().await;
    Ok(())
}

/// Publishes a hand-built message on `subject`.
async fn publish_raw(
    js: &jetstream::Context,
    subject: &str,
    headers: async_nats::HeaderMap,
    body: Vec<u8>,
) -> anyhow::Result<u64> {
    Ok(js
        .publish_with_headers(subject.to_string(), headers, body.into())
        .await?
        .await?
        .sequence)
}

fn envelope(event_type: &str, version: u32, data: serde_json::Value) -> anyhow::Result<Envelope> {
    Ok(Envelope {
        id: uuid::Uuid::now_v7(),
        source: "/tests".into(),
        event_type: event_type.into(),
        time: time::OffsetDateTime::now_utc(),
        dataschema: None,
        subject: Some("u-1".into()),
        organization_id: tidings::OrganizationId::new("org-1")?,
        schema_version: version,
        extensions: BTreeMap::new(),
        data,
    })
}

#[tokio::test]
async fn unreadable_messages_are_given_up_at_once_and_never_reach_the_handler() -> anyhow::Result<()>
{
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<uuid::Uuid>();
    let mut subscriber = Subscriber::new(client, "strict", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.event_id);
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;

    let subject = "auth.user.created.org-1.u-1";
    let valid = serde_json::to_value(UserCreated::numbered(1))?;
    let mut invalid = valid.clone();
    invalid["email"] = "not an email".into();
    // Not JSON.
    publish_raw(
        &js,
        subject,
        async_nats::HeaderMap::new(),
        b"{oops".to_vec(),
    )
    .await?;
    // JSON, but not a CloudEvent.
    publish_raw(
        &js,
        subject,
        async_nats::HeaderMap::new(),
        br#"{"a":1}"#.to_vec(),
    )
    .await?;
    // A type this group does not handle, on a subject its filter matches.
    let (body, headers) = envelope("auth.user.exploded", 1, valid.clone())?.encode()?;
    publish_raw(&js, subject, headers, body).await?;
    // A payload that breaks the schema of its version.
    let (body, headers) = envelope("auth.user.created", 1, invalid)?.encode()?;
    publish_raw(&js, subject, headers, body).await?;
    // A newer version the reader cannot read (a required member is gone).
    let (body, headers) = envelope(
        "auth.user.created",
        9,
        serde_json::json!({"user_id": "u-1"}),
    )?
    .encode()?;
    publish_raw(&js, subject, headers, body).await?;
    // Headers that contradict the body.
    let (body, mut headers) = envelope("auth.user.created", 1, valid)?.encode()?;
    headers.insert("ce-organizationid", "someone-else");
    publish_raw(&js, subject, headers, body).await?;

    let good = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(2))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![good.event_id]);
    settled(&js, "AUTH_EVENTS", "strict").await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "strict").await?;
    assert_eq!(info.num_redelivered, 0, "an unreadable message was retried");
    assert!(rx.try_recv().is_err());
    running.shutdown().await;
    Ok(())
}

/// A handler that reports each start on `rx`, then blocks until `gate`
/// gives it a permit; `most` is the most that ran at once.
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    most: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<()>,
}

fn gated_handler(subscriber: &mut Subscriber) -> Gated {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let running_now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let (g, m) = (gate.clone(), most.clone());
    subscriber.handle::<UserCreated, _>(move |_event: Event<UserCreated>| {
        let (gate, running_now, most, tx) = (g.clone(), running_now.clone(), m.clone(), tx.clone());
        async move {
            let now = running_now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let _ = tx.send(());
            let permit = gate.acquire().await.map_err(|e| e.to_string())?;
            permit.forget();
            running_now.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), String>(())
        }
    });
    Gated { gate, most, rx }
}

#[tokio::test]
async fn in_flight_handlers_and_unacked_messages_stay_within_the_bound() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_in_flight: 4,
        max_ack_pending: Some(4),
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "bounded", config)?;
    let Gated { gate, most, mut rx } = gated_handler(&mut subscriber);
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..40).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    // Four handlers start and block.
    take(&mut rx, 4).await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "bounded").await?;
    assert!(
        info.num_ack_pending <= 4,
        "{} unacked",
        info.num_ack_pending
    );
    assert_eq!(running.in_flight(), 4);
    gate.add_permits(40);
    take(&mut rx, 36).await?;
    settled(&js, "AUTH_EVENTS", "bounded").await?;
    assert_eq!(most.load(Ordering::SeqCst), 4);
    running.shutdown().await;
    Ok(())
}

/// Waits (at most 20 s) until `running` holds `n` events.
async fn until_holding(running: &tidings::Running, n: usize) -> anyhow::Result<()> {
    eventually(
        &format!("the instance holds {n} events"),
        Duration::from_secs(20),
        || async {
            match running.in_flight() {
                held if held == n => Ok(()),
                held => Err(format!("in_flight() says {held}")),
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn handlers_run_at_most_max_concurrent_handlers_while_the_window_holds_more(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        // Longer than the test: the blocked handlers are not taken for
        // hung meanwhile.
        ack_wait: Duration::from_secs(30),
        max_in_flight: 12,
        max_concurrent_handlers: Some(3),
        max_ack_pending: Some(12),
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "windowed", config)?;
    let Gated { gate, most, mut rx } = gated_handler(&mut subscriber);
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..40).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    // Three handlers start and block; the window fills with nine more
    // events waiting for a handler.
    take(&mut rx, 3).await?;
    until_holding(&running, 12).await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "windowed").await?;
    assert_eq!(info.num_ack_pending, 12);
    assert!(rx.try_recv().is_err(), "a fourth handler started");
    assert_eq!(most.load(Ordering::SeqCst), 3);
    gate.add_permits(40);
    take(&mut rx, 37).await?;
    settled(&js, "AUTH_EVENTS", "windowed").await?;
    assert_eq!(most.load(Ordering::SeqCst), 3);
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_event_waiting_for_a_handler_past_the_ack_wait_is_kept_alive_not_redelivered(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        // Room for more than the 4 events: a pull request stays open, so
        // the server could redeliver the waiting ones here.
        max_in_flight: 8,
        max_concurrent_handlers: Some(1),
        ..fast_config()
    };
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
    let mut subscriber = Subscriber::new(client, "waiting", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let (tx, first) = (tx.clone(), first.clone());
        async move {
            let _ = tx.send((event.payload.user_id.clone(), event.meta.delivery));
            if first.swap(false, Ordering::SeqCst) {
                // 2.4 ack waits of work with progress acks, while the
                // other events wait for this one handler.
                for _ in 0..8 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    event.progress().await.map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..4).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    let mut got = take(&mut rx, 4).await?;
    settled(&js, "AUTH_EVENTS", "waiting").await?;
    let info = consumer_info(&js, "AUTH_EVENTS", "waiting").await?;
    assert_eq!(
        info.num_redelivered, 0,
        "an event waiting for its turn was redelivered"
    );
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    got.sort();
    let expected: Vec<(String, u32)> = (0..4).map(|n| (format!("u-{n}"), 1)).collect();
    assert_eq!(got, expected);
    running.shutdown().await;
    Ok(())
}

/// Waits (at most 20 s) until the instance's health is `state`.
async fn until_health(
    health: &mut tokio::sync::watch::Receiver<tidings::subscribe::Health>,
    state: tidings::subscribe::Health,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(20), health.wait_for(|h| *h == state))
        .await
        .map_err(|_| anyhow::anyhow!("health is not {state:?} after 20 s"))??;
    Ok(())
}

/// Waits (at most 20 s) until no pull request of `group` waits on its
/// AUTH_EVENTS consumer.
async fn no_pull_request_waits(js: &jetstream::Context, group: &str) -> anyhow::Result<()> {
    eventually(
        "no pull request waits on the consumer",
        Duration::from_secs(20),
        || async {
            match consumer_info(js, "AUTH_EVENTS", group).await {
                Ok(info) if info.num_waiting == 0 => Ok(()),
                Ok(info) => Err(format!("{} pull requests wait", info.num_waiting)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// One handler start, as a test sees it: (instance, user id or, for
/// ordered tests, display name, delivery).
type Start = (usize, String, u32);

/// Registers a handler that reports each start of `instance` on `tx` and,
/// if `gate` is given, then waits for one of its permits (a hang until
/// the test adds one).
fn reporting_handler(
    subscriber: &mut Subscriber,
    instance: usize,
    tx: &mpsc::UnboundedSender<Start>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    ordered: bool,
) {
    let tx = tx.clone();
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let (tx, gate) = (tx.clone(), gate.clone());
        async move {
            let name = if ordered {
                event.payload.display_name.clone()
            } else {
                event.payload.user_id.clone()
            };
            let _ = tx.send((instance, name, event.meta.delivery));
            if let Some(gate) = gate {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
            }
            Ok::<(), String>(())
        }
    });
}

#[tokio::test]
async fn events_waiting_for_a_handler_at_the_shutdown_deadline_are_released_to_another_instance(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        // Longer than the test: no handler is taken for hung meanwhile.
        ack_wait: Duration::from_secs(30),
        max_in_flight: 4,
        max_concurrent_handlers: Some(1),
        shutdown_deadline: Duration::from_millis(500),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Start>();
    let mut stuck = Subscriber::new(client, "handover", config.clone())?;
    let never = Arc::new(tokio::sync::Semaphore::new(0));
    reporting_handler(&mut stuck, 0, &tx, Some(never), false);
    let stuck = stuck.start().await?;
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..4).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    assert_eq!(take(&mut rx, 1).await?[0].0, 0);
    until_holding(&stuck, 4).await?;
    let report = stuck.shutdown().await;
    assert_eq!(
        report.abandoned, 4,
        "one running and three waiting for a handler"
    );
    assert!(rx.try_recv().is_err(), "a waiting event ran at shutdown");
    let mut next = Subscriber::new(server.connect().await?, "handover", config)?;
    reporting_handler(&mut next, 1, &tx, None, false);
    let next = next.start().await?;
    let mut got = take(&mut rx, 4).await?;
    got.sort();
    let expected: Vec<Start> = (0..4).map(|n| (1, format!("u-{n}"), 2)).collect();
    assert_eq!(
        got, expected,
        "each released once, handled once by the next instance"
    );
    settled(&js, "AUTH_EVENTS", "handover").await?;
    next.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_instance_whose_handlers_all_hang_hands_its_waiting_events_over_and_takes_no_more(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        max_in_flight: 4,
        max_concurrent_handlers: Some(1),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Start>();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut hung = Subscriber::new(client, "hung", config.clone())?;
    reporting_handler(&mut hung, 0, &tx, Some(gate.clone()), false);
    let hung = hung.start().await?;
    let mut health = hung.health();
    let ctx = PublishContext::new("org-1")?;
    let events: Vec<UserCreated> = (0..12).map(UserCreated::numbered).collect();
    for r in publisher.publish_batch(&ctx, &events[..4]).await {
        r?;
    }
    // Its only handler hangs on the first event; three wait for it.
    assert_eq!(take(&mut rx, 1).await?, vec![(0, "u-0".to_string(), 1)]);
    until_holding(&hung, 4).await?;
    // An ack wait after the handler started without a sign of life, the
    // instance stalls: it hands the three over and asks for no more.
    until_health(&mut health, tidings::subscribe::Health::Stalled).await?;
    until_holding(&hung, 1).await?;
    no_pull_request_waits(&js, "hung").await?;
    // A healthy instance gets the four: the hung handler's event back from
    // the server, and the three handed over.
    let mut next = Subscriber::new(server.connect().await?, "hung", config.clone())?;
    reporting_handler(&mut next, 1, &tx, None, false);
    let next = next.start().await?;
    let mut got = take(&mut rx, 4).await?;
    got.sort();
    let expected: Vec<Start> = (0..4).map(|n| (1, format!("u-{n}"), 2)).collect();
    assert_eq!(
        got, expected,
        "each handed over once, to the healthy instance"
    );
    for r in publisher.publish_batch(&ctx, &events[4..8]).await {
        r?;
    }
    let mut got = take(&mut rx, 4).await?;
    got.sort();
    let expected: Vec<Start> = (4..8).map(|n| (1, format!("u-{n}"), 1)).collect();
    assert_eq!(got, expected, "the stalled instance took one");
    settled(&js, "AUTH_EVENTS", "hung").await?;
    next.shutdown().await;
    // Its handler returns: it consumes again.
    gate.add_permits(5);
    until_health(&mut health, tidings::subscribe::Health::Consuming).await?;
    for r in publisher.publish_batch(&ctx, &events[8..]).await {
        r?;
    }
    let got: HashSet<Start> = take(&mut rx, 4).await?.into_iter().collect();
    let expected: HashSet<Start> = (8..12).map(|n| (0, format!("u-{n}"), 1)).collect();
    assert_eq!(got, expected);
    settled(&js, "AUTH_EVENTS", "hung").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    hung.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_stalled_instance_whose_handler_reports_progress_again_is_consuming_again(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        max_in_flight: 4,
        max_concurrent_handlers: Some(1),
        shutdown_deadline: Duration::from_millis(500),
        ..fast_config()
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut subscriber = Subscriber::new(client, "revived", config)?;
    {
        let wake = wake.clone();
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let wake = wake.clone();
            async move {
                // Silent until woken, then alive (progress acks) for
                // longer than the test.
                wake.notified().await;
                for _ in 0..1_000 {
                    event.progress().await.map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok::<(), String>(())
            }
        });
    }
    let running = subscriber.start().await?;
    let mut health = running.health();
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(0)).await?;
    until_health(&mut health, tidings::subscribe::Health::Stalled).await?;
    // Nothing left to arrive (the hung event's redelivery, if it came
    // here, handed over; no pull request open), no handler returning, no
    // slot freed: the progress ack alone ends the stall.
    until_holding(&running, 1).await?;
    no_pull_request_waits(&js, "revived").await?;
    wake.notify_one();
    until_health(&mut health, tidings::subscribe::Health::Consuming).await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_ordered_instance_whose_handlers_all_hang_hands_the_events_in_its_lanes_over(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        max_in_flight: 4,
        max_concurrent_handlers: Some(1),
        ordered_by_key: true,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Start>();
    let never = Arc::new(tokio::sync::Semaphore::new(0));
    let mut hung = Subscriber::new(client, "hung-ordered", config.clone())?;
    reporting_handler(&mut hung, 0, &tx, Some(never), true);
    let hung = hung.start().await?;
    // Entity u-0's first event hangs the only handler, its next two wait
    // behind it in its lane; entity u-1's event waits for a handler.
    let events: Vec<UserCreated> = (0..4)
        .map(|i| UserCreated {
            display_name: i.to_string(),
            ..UserCreated::numbered(usize::from(i == 3))
        })
        .collect();
    let ctx = PublishContext::new("org-1")?;
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    assert_eq!(take(&mut rx, 1).await?, vec![(0, "0".to_string(), 1)]);
    until_holding(&hung, 4).await?;
    let mut next = Subscriber::new(server.connect().await?, "hung-ordered", config)?;
    reporting_handler(&mut next, 1, &tx, None, true);
    let next = next.start().await?;
    let got = take(&mut rx, 4).await?;
    assert!(got.iter().all(|s| s.0 == 1), "{got:?}");
    let mut names: Vec<&str> = got.iter().map(|s| s.1.as_str()).collect();
    let behind: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| ["1", "2"].contains(n))
        .collect();
    assert_eq!(behind, ["1", "2"], "handed over out of order: {got:?}");
    names.sort_unstable();
    assert_eq!(names, ["0", "1", "2", "3"]);
    settled(&js, "AUTH_EVENTS", "hung-ordered").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    next.shutdown().await;
    hung.shutdown().await;
    Ok(())
}

/// Publishes `n` events of one entity (user `u-0`, org `org-1`), their
/// `display_name`s `"0"`, `"1"`, ...
async fn publish_one_entity(publisher: &tidings::Publisher, n: usize) -> anyhow::Result<()> {
    let events: Vec<UserCreated> = (0..n)
        .map(|i| UserCreated {
            display_name: i.to_string(),
            ..UserCreated::numbered(0)
        })
        .collect();
    let ctx = PublishContext::new("org-1")?;
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    Ok(())
}

#[tokio::test]
async fn in_an_ordered_group_a_hung_handler_s_redelivered_event_replaces_it_at_the_head_of_its_lane(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        ordered_by_key: true,
        ..fast_config()
    };
    /// Reports `"<name> dropped"` when the run holding it ends unfinished.
    struct Dropped(mpsc::UnboundedSender<String>, Option<String>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            if let Some(name) = self.1.take() {
                let _ = self.0.send(format!("{name} dropped"));
            }
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut subscriber = Subscriber::new(client, "ordered-hung", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let name = format!("{}#{}", event.payload.display_name, event.meta.delivery);
            let _ = tx.send(format!("{name} started"));
            let mut guard = Dropped(tx.clone(), Some(name.clone()));
            // The first delivery of the entity's first event hangs.
            if name == "0#1" {
                std::future::pending::<()>().await;
            }
            guard.1 = None;
            let _ = tx.send(format!("{name} done"));
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    publish_one_entity(&publisher, 2).await?;
    // The only instance gets the hung event's redelivery: the hung run is
    // cancelled, the redelivery handled in its place, then the next event.
    let got = take(&mut rx, 6).await?;
    assert_eq!(
        got,
        [
            "0#1 started",
            "0#1 dropped",
            "0#2 started",
            "0#2 done",
            "1#1 started",
            "1#1 done"
        ],
    );
    settled(&js, "AUTH_EVENTS", "ordered-hung").await?;
    assert!(rx.try_recv().is_err());
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn in_an_ordered_group_of_two_the_events_behind_a_hung_head_go_on_once_its_redelivery_went_elsewhere(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        // The hung instance, holding three events, asks for no more: the
        // server redelivers the hung one to the other instance.
        max_in_flight: 3,
        ordered_by_key: true,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, String)>();
    // Instance 0 hangs on every delivery of the entity's first event; the
    // other handles everything.
    let register = |subscriber: &mut Subscriber, instance: usize| {
        let tx = tx.clone();
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let name = event.payload.display_name.clone();
                let _ = tx.send((instance, format!("{name} started")));
                if instance == 0 && name == "0" {
                    std::future::pending::<()>().await;
                }
                let _ = tx.send((instance, format!("{name} done")));
                Ok::<(), Infallible>(())
            }
        });
    };
    let mut hung = Subscriber::new(client, "ordered-two", config.clone())?;
    register(&mut hung, 0);
    let hung = hung.start().await?;
    publish_one_entity(&publisher, 3).await?;
    // The first instance runs the entity's first event (it hangs) and
    // holds the next two in the entity's lane.
    assert_eq!(take(&mut rx, 1).await?, [(0, "0 started".to_string())]);
    until_holding(&hung, 3).await?;
    let mut other = Subscriber::new(server.connect().await?, "ordered-two", config)?;
    register(&mut other, 1);
    let other = other.start().await?;
    // The server redelivers the hung event to the other instance, which
    // handles it; then the events behind it are handled, though the hung
    // handler never returns (in any order: the first instance hands the
    // youngest over to make room for a redelivery, and order across
    // instances is not promised).
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((instance, what))) => {
                if let Some(name) = what.strip_suffix(" done") {
                    done.push((instance, name.to_string()));
                }
            }
            Ok(None) => anyhow::bail!("channel closed"),
            Err(_) => anyhow::bail!("within 30 s only {done:?} were handled"),
        }
    }
    assert_eq!(
        done[0],
        (1, "0".to_string()),
        "the hung event first, by the other instance: {done:?}"
    );
    let mut names: Vec<&str> = done.iter().map(|(_, name)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["0", "1", "2"], "{done:?}");
    settled(&js, "AUTH_EVENTS", "ordered-two").await?;
    let starts: Vec<(usize, String)> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        starts.iter().all(|(_, what)| what.ends_with(" started")),
        "handled twice: {starts:?}"
    );
    other.shutdown().await;
    hung.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_ordered_instance_alone_whose_window_is_full_behind_a_hung_head_makes_room_for_its_redelivery(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        // The hung event and the two behind it fill the window: the
        // instance has no slot to receive the hung event's redelivery.
        max_in_flight: 3,
        ordered_by_key: true,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
    let mut subscriber = Subscriber::new(client, "ordered-full", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let name = event.payload.display_name.clone();
            // The first delivery of the entity's first event hangs.
            if name == "0" && event.meta.delivery == 1 {
                std::future::pending::<()>().await;
            }
            let _ = tx.send((name, event.meta.delivery));
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    publish_one_entity(&publisher, 3).await?;
    let done = take(&mut rx, 3).await?;
    let names: Vec<&str> = done.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"], "handled out of order: {done:?}");
    assert!(done[0].1 >= 2, "the hung event ran again: {done:?}");
    settled(&js, "AUTH_EVENTS", "ordered-full").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn events_of_one_entity_are_handled_one_at_a_time_in_stream_order_across_retries(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_in_flight: 8,
        ordered_by_key: true,
        ..fast_config()
    };
    // user_id = entity key; display_name carries the per-entity index.
    let keys = 5;
    let per_key = 10;
    let mut events = Vec::new();
    for i in 0..per_key {
        for k in 0..keys {
            events.push(UserCreated {
                user_id: format!("u-{k}"),
                email: format!("u{k}@example.com"),
                display_name: i.to_string(),
            });
        }
    }
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    let overlap = Arc::new(AtomicUsize::new(0));
    let concurrent = Arc::new(AtomicUsize::new(0));
    let most_concurrent = Arc::new(AtomicUsize::new(0));
    let attempts: Arc<Mutex<HashMap<(String, String), u32>>> = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, usize)>();
    let mut subscriber = Subscriber::new(client, "ordered", config)?;
    {
        let (active, overlap, concurrent, most, attempts) = (
            active.clone(),
            overlap.clone(),
            concurrent.clone(),
            most_concurrent.clone(),
            attempts.clone(),
        );
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let (active, overlap, concurrent, most, attempts, tx) = (
                active.clone(),
                overlap.clone(),
                concurrent.clone(),
                most.clone(),
                attempts.clone(),
                tx.clone(),
            );
            async move {
                let key = event.payload.user_id.clone();
                let index: usize = event
                    .payload
                    .display_name
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                if !active
                    .lock()
                    .map_err(|e| e.to_string())?
                    .insert(key.clone())
                {
                    overlap.fetch_add(1, Ordering::SeqCst);
                }
                let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                concurrent.fetch_sub(1, Ordering::SeqCst);
                active.lock().map_err(|e| e.to_string())?.remove(&key);
                let attempt = {
                    let mut map = attempts.lock().map_err(|e| e.to_string())?;
                    let n = map.entry((key.clone(), index.to_string())).or_default();
                    *n += 1;
                    *n
                };
                // Every third event fails its first attempt.
                if index.is_multiple_of(3) && attempt == 1 {
                    return Err(format!("{key} #{index}: transient failure"));
                }
                let _ = tx.send((key, index));
                Ok(())
            }
        });
    }
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    for r in publisher.publish_batch(&ctx, &events).await {
        r?;
    }
    let got = take(&mut rx, keys * per_key).await?;
    settled(&js, "AUTH_EVENTS", "ordered").await?;
    let mut order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (key, index) in got {
        order.entry(key).or_default().push(index);
    }
    for (key, indexes) in &order {
        assert_eq!(
            indexes,
            &(0..per_key).collect::<Vec<_>>(),
            "{key} out of order"
        );
    }
    assert_eq!(order.len(), keys);
    assert_eq!(
        overlap.load(Ordering::SeqCst),
        0,
        "one entity handled twice at once"
    );
    assert!(
        most_concurrent.load(Ordering::SeqCst) > 1,
        "different entities were never handled concurrently"
    );
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_tenant_filter_delivers_only_that_tenant_s_events() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        organization: Some(tidings::OrganizationId::new("org-2")?),
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut subscriber = Subscriber::new(client, "tenant2", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.organization_id.to_string());
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    for org in ["org-1", "org-2", "org-3", "org-2"] {
        publisher
            .publish(&PublishContext::new(org)?, &UserCreated::numbered(1))
            .await?;
    }
    assert_eq!(take(&mut rx, 2).await?, vec!["org-2", "org-2"]);
    let info = consumer_info(&js, "AUTH_EVENTS", "tenant2").await?;
    assert_eq!(
        info.config.filter_subjects,
        vec!["auth.user.created.org-2.>"]
    );
    running.shutdown().await;
    assert!(rx.try_recv().is_err());
    Ok(())
}

#[tokio::test]
async fn start_refuses_what_cannot_work_with_errors_that_say_why() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let noop = |_e: Event<UserCreated>| async { Ok::<(), Infallible>(()) };

    for bad in ["", "a.b", "a b", "*", ">", "$sys"] {
        assert!(
            matches!(
                Subscriber::new(client.clone(), bad, fast_config()),
                Err(SubscribeError::Group(_))
            ),
            "group {bad:?} accepted"
        );
    }

    let err = Subscriber::new(client.clone(), "empty", fast_config())?
        .start()
        .await
        .expect_err("no handlers");
    assert!(matches!(err, SubscribeError::NoHandlers { .. }), "{err}");

    let mut twice = Subscriber::new(client.clone(), "twice", fast_config())?;
    twice
        .handle::<UserCreated, _>(noop)
        .handle::<UserCreated, _>(noop);
    let err = twice.start().await.expect_err("two handlers for one type");
    assert!(
        matches!(
            err,
            SubscribeError::DuplicateHandler {
                event_type: "auth.user.created",
                ..
            }
        ),
        "{err}"
    );

    // No stream provisioned on this server.
    let mut missing = Subscriber::new(client.clone(), "missing", fast_config())?;
    missing.handle::<UserCreated, _>(noop);
    let err = missing.start().await.expect_err("no stream");
    match &err {
        SubscribeError::StreamMissing { stream, .. } => assert_eq!(stream, "AUTH_EVENTS"),
        other => panic!("expected StreamMissing, got {other}"),
    }
    assert!(err.to_string().contains("provision"), "{err}");

    let bad = tidings::SubscriberConfig {
        max_deliveries: 0,
        ..fast_config()
    };
    assert!(matches!(
        Subscriber::new(client, "cfg", bad),
        Err(SubscribeError::Config(_))
    ));
    Ok(())
}

#[tokio::test]
async fn a_new_group_starting_at_new_events_skips_history() -> anyhow::Result<()> {
    let (_server, client, _js, publisher) = setup().await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<uuid::Uuid>();
    let config = tidings::SubscriberConfig {
        start_at: StartAt::New,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "fresh", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.event_id);
            Ok::<(), Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    let new = publisher.publish(&ctx, &UserCreated::numbered(2)).await?;
    assert_eq!(take(&mut rx, 1).await?, vec![new.event_id]);
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_event_that_fails_every_delivery_is_given_up_after_max_deliveries_and_the_group_moves_on(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 3,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
    let mut subscriber = Subscriber::new(client, "giving-up", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((event.payload.user_id.clone(), event.meta.delivery));
            if event.payload.user_id == "u-1" {
                Err("always fails".to_string())
            } else {
                Ok(())
            }
        }
    });
    let running = subscriber.start().await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    let got = take(&mut rx, 3).await?;
    assert_eq!(
        got,
        vec![("u-1".into(), 1), ("u-1".into(), 2), ("u-1".into(), 3)]
    );
    publisher.publish(&ctx, &UserCreated::numbered(2)).await?;
    assert_eq!(take(&mut rx, 1).await?, vec![("u-2".into(), 1)]);
    settled(&js, "AUTH_EVENTS", "giving-up").await?;
    assert!(rx.try_recv().is_err(), "delivered after it was given up");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_event_whose_deliveries_ran_out_without_an_answer_is_given_up_unhandled(
) -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        ack_wait: Duration::from_secs(1),
        max_deliveries: 1,
        max_in_flight: 1,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut subscriber = Subscriber::new(server.connect().await?, "hung", config.clone())?;
        let tx = tx.clone();
        subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.meta.delivery);
                std::future::pending::<()>().await;
                Ok::<(), Infallible>(())
            }
        });
        running.push(subscriber.start().await?);
    }
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![1]);
    // The second delivery (after the ack wait) is past the limit: the other
    // instance gives the event up without running its handler.
    tidings::testing::eventually("the event is given up", Duration::from_secs(20), || async {
        let info = consumer_info(&js, "AUTH_EVENTS", "hung").await?;
        if info.num_ack_pending == 0
            && info.num_redelivered == 0
            && info.ack_floor.stream_sequence == 1
        {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{} awaiting ack", info.num_ack_pending))
        }
    })
    .await?;
    assert!(
        rx.try_recv().is_err(),
        "the handler ran past max_deliveries"
    );
    Ok(())
}
