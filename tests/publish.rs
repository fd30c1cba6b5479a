//! Typed publishing against a real nats-server: the envelope on the wire,
//! every error the publisher promises, retries across server restarts with
//! no duplicates, and a leader change that the caller never sees.
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use support::{provision, setup, take, UserCreated};
use tidings::envelope::Envelope;
use tidings::publish::{AttemptFailureKind, Outcome, PublishError, RetryPolicy};
use tidings::testing::{eventually, NatsCluster, NatsServer};
use tidings::{PublishContext, Publisher, PublisherConfig};

async fn fetch_all(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<async_nats::jetstream::Message>> {
    let stream = js.get_stream(stream).await?;
    let expected = stream.cached_info().state.messages as usize;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?.take(expected);
    let mut out = Vec::with_capacity(expected);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await?
    {
        out.push(message.map_err(|e| anyhow::anyhow!(e))?);
    }
    Ok(out)
}

/// The `Nats-Msg-Id` of each stored message that has one.
fn msg_ids(stored: &[jetstream::Message]) -> Vec<String> {
    stored
        .iter()
        .filter_map(|m| {
            m.headers
                .as_ref()?
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
        })
        .collect()
}

#[tokio::test]
async fn publishes_a_cloudevent_with_routing_headers_and_a_puback() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    // The `ce-` headers are optional (off by default): on here, to check them.
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            ce_headers: true,
            ..PublisherConfig::default()
        },
    )?;
    let ctx = PublishContext::new("org-42")?;
    let event = UserCreated::numbered(7);

    let published = publisher.publish(&ctx, &event).await?;
    assert_eq!(published.stream, "AUTH_EVENTS");
    assert_eq!(published.sequence, 1);
    assert!(!published.duplicate);
    assert_eq!(published.attempts, 1);
    assert_eq!(published.subject, "auth.user.created.org-42.u-7");
    assert_eq!(
        published.event_id.get_version_num(),
        7,
        "event ids are UUID v7"
    );

    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), 1);
    let message = &stored[0];
    assert_eq!(message.subject.as_str(), "auth.user.created.org-42.u-7");
    let headers = message.headers.as_ref().expect("headers");
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_string());
    let id = published.event_id.to_string();
    assert_eq!(header("Nats-Msg-Id").as_deref(), Some(id.as_str()));
    assert_eq!(header("ce-id").as_deref(), Some(id.as_str()));
    assert_eq!(header("ce-type").as_deref(), Some("auth.user.created"));
    assert_eq!(header("ce-organizationid").as_deref(), Some("org-42"));
    assert_eq!(header("ce-schemaversion").as_deref(), Some("1"));
    assert_eq!(header("ce-subject").as_deref(), Some("u-7"));
    assert_eq!(header("ce-source").as_deref(), Some("/tidings/auth"));
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/cloudevents+json")
    );

    let envelope = Envelope::decode_message(Some(headers), &message.payload)?;
    assert_eq!(envelope.id, published.event_id);
    assert_eq!(envelope.event_type, "auth.user.created");
    assert_eq!(envelope.organization_id().as_str(), "org-42");
    assert_eq!(envelope.schema_version(), 1);
    assert_eq!(envelope.subject.as_deref(), Some("u-7"));
    assert_eq!(
        envelope.dataschema.as_deref(),
        Some("https://schemas.tidings.dev/test/user.created.v1.json")
    );
    assert_eq!(envelope.data_as::<UserCreated>()?, event);
    let body: serde_json::Value = serde_json::from_slice(&message.payload)?;
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["datacontenttype"], "application/json");
    assert!(
        body.get("organization_id").is_none(),
        "only legal attribute names"
    );
    Ok(())
}

#[tokio::test]
async fn typed_errors_before_anything_is_sent() -> anyhow::Result<()> {
    let server = NatsServer::builder().max_payload(2048).launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let ctx = PublishContext::new("org-1")?;

    // A payload that breaks its schema names the pointer and the rule.
    let mut bad = UserCreated::numbered(1);
    bad.display_name = String::new();
    match publisher.publish(&ctx, &bad).await {
        Err(PublishError::InvalidPayload { violations, .. }) => {
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!(violations[0].instance_path, "/display_name");
            assert!(
                violations[0].schema_path.ends_with("/minLength"),
                "{violations:?}"
            );
        }
        other => panic!("expected InvalidPayload, got {other:?}"),
    }

    // Over the server's max_payload: refused before sending, with sizes.
    let mut big = UserCreated::numbered(2);
    big.display_name = "x".repeat(100);
    big.user_id = "k".repeat(100);
    big.email = format!("{}@example.com", "e".repeat(2000));
    let unchecked = Publisher::new(
        client.clone(),
        PublisherConfig {
            validate: false,
            ..PublisherConfig::default()
        },
    )?;
    match unchecked.publish(&ctx, &big).await {
        Err(PublishError::TooLarge { size, max, .. }) => {
            assert_eq!(max, 2048);
            assert!(size > 2048, "{size}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // Organization ids and keys that would break the subject.
    for org in [
        "", "a.b", "a*", "a>", "a b", "a\tb", "a\nb", "a\u{1}b", "$SYS",
    ] {
        assert!(PublishContext::new(org).is_err(), "{org:?} accepted");
    }
    let mut bad_key = UserCreated::numbered(3);
    bad_key.user_id = "u.3".into();
    match publisher.publish(&ctx, &bad_key).await {
        Err(PublishError::InvalidToken(e)) => assert_eq!(e.what, "entity key"),
        other => panic!("expected InvalidToken, got {other:?}"),
    }

    let stored = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(stored, 0, "nothing reached the stream");

    // With validation off, an invalid payload is published as it is.
    let published = unchecked.publish(&ctx, &bad).await?;
    assert_eq!(published.sequence, 1);
    Ok(())
}

/// By default a message carries only `Nats-Msg-Id` and `content-type`;
/// with `ce_headers` on it also carries every `ce-` header, is that much
/// larger, and reaches a typed handler with the same attributes (read from
/// the body either way).
#[tokio::test]
async fn ce_headers_are_sent_only_when_asked_and_read_the_same() -> anyhow::Result<()> {
    let (_server, client, js, lean) = setup().await?;
    assert!(!PublisherConfig::default().ce_headers, "off by default");
    let full = Publisher::new(
        client.clone(),
        PublisherConfig {
            ce_headers: true,
            ..PublisherConfig::default()
        },
    )?;
    let ctx = PublishContext::new("org-lean")?.with_extension("traceparent", "00-ab-cd-01".into());
    let with_headers = full.publish(&ctx, &UserCreated::numbered(1)).await?;
    let without = lean.publish(&ctx, &UserCreated::numbered(2)).await?;

    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), 2);
    let names = |m: &jetstream::Message| {
        let mut names: Vec<String> = m
            .headers
            .iter()
            .flat_map(|h| h.iter().map(|(name, _)| name.to_string()))
            .collect();
        names.sort();
        names
    };
    assert!(names(&stored[0]).len() > 10, "{:?}", names(&stored[0]));
    assert_eq!(names(&stored[1]), ["Nats-Msg-Id", "content-type"]);
    let headers = stored[1].headers.as_ref().expect("headers");
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.to_string()),
        Some(without.event_id.to_string())
    );
    let header_bytes = |m: &jetstream::Message| {
        m.headers.as_ref().map_or(0, |h| {
            h.iter()
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |v| name.to_string().len() + v.as_str().len() + 4)
                })
                .sum::<usize>()
        })
    };
    assert!(
        header_bytes(&stored[0]) > header_bytes(&stored[1]) + 300,
        "{} vs {} header bytes",
        header_bytes(&stored[0]),
        header_bytes(&stored[1])
    );

    // A typed subscriber reads both alike.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut subscriber = tidings::Subscriber::new(
        client,
        "lean-readers",
        tidings::SubscriberConfig {
            start_at: tidings::subscribe::StartAt::All,
            ..tidings::SubscriberConfig::default()
        },
    )?;
    subscriber.handle::<UserCreated, _>(move |event: tidings::Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event);
            Ok::<(), std::convert::Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    let got = take(&mut rx, 2).await?;
    running.shutdown().await;
    for (event, published, n) in [(&got[0], &with_headers, 1), (&got[1], &without, 2)] {
        assert_eq!(event.meta.event_id, published.event_id);
        assert_eq!(event.meta.organization_id.as_str(), "org-lean");
        assert_eq!(
            event.meta.entity_key.as_deref(),
            Some(format!("u-{n}").as_str())
        );
        assert_eq!(
            event.meta.extensions.get("traceparent"),
            Some(&serde_json::json!("00-ab-cd-01"))
        );
        assert_eq!(event.payload, UserCreated::numbered(n));
    }
    Ok(())
}

/// The batch call from a spawned task (its future is `Send`), with a small
/// window: one result per event in input order, a bad event fails alone,
/// and every good one is stored once, in order.
#[tokio::test]
async fn a_batch_answers_each_event_in_order_and_fails_only_the_bad_one() -> anyhow::Result<()> {
    let (_server, client, js, _) = setup().await?;
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            max_in_flight: 4,
            ..PublisherConfig::default()
        },
    )?;
    let mut events: Vec<UserCreated> = (0..50).map(UserCreated::numbered).collect();
    events[17].display_name = String::new();
    events[31].user_id = "u.31".into();
    let results = tokio::spawn(async move {
        let ctx = PublishContext::new("org-batch")?;
        anyhow::Ok(publisher.publish_batch(&ctx, &events).await)
    })
    .await??;

    assert_eq!(results.len(), 50);
    let mut sequences = Vec::new();
    for (n, result) in results.iter().enumerate() {
        match (n, result) {
            (17, Err(PublishError::InvalidPayload { .. })) => {}
            (31, Err(PublishError::InvalidToken(_))) => {}
            (17 | 31, other) => panic!("event {n}: expected its error, got {other:?}"),
            (_, Ok(published)) => {
                assert_eq!(
                    published.subject,
                    format!("auth.user.created.org-batch.u-{n}"),
                    "result {n} answers event {n}"
                );
                sequences.push(published.sequence);
            }
            (_, Err(e)) => panic!("event {n} failed: {e}"),
        }
    }
    assert_eq!(
        sequences,
        (1..=48).collect::<Vec<u64>>(),
        "stored once each, in order"
    );
    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), 48);
    Ok(())
}

#[tokio::test]
async fn a_missing_stream_is_named_after_the_retries() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let publisher = Publisher::new(server.connect().await?, PublisherConfig::default())?;
    let ctx = PublishContext::new("org-1")?;
    match publisher.publish(&ctx, &UserCreated::numbered(1)).await {
        Err(PublishError::StreamMissing {
            stream, subject, ..
        }) => {
            assert_eq!(stream, "AUTH_EVENTS");
            assert_eq!(subject, "auth.user.created.org-1.u-1");
        }
        other => panic!("expected StreamMissing, got {other:?}"),
    }
    // The batch call answers each event the same way.
    let events: Vec<UserCreated> = (2..5).map(UserCreated::numbered).collect();
    for (n, result) in publisher
        .publish_batch(&ctx, &events)
        .await
        .iter()
        .enumerate()
    {
        match result {
            Err(PublishError::StreamMissing { subject, .. }) => {
                assert_eq!(subject, &format!("auth.user.created.org-1.u-{}", n + 2));
            }
            other => panic!("expected StreamMissing, got {other:?}"),
        }
    }
    Ok(())
}

/// A server to restart, the streams, and a publisher on a client that
/// reconnects at once, with 2 s attempts and this window.
async fn restartable(
    max_in_flight: usize,
) -> anyhow::Result<(NatsServer, jetstream::Context, Publisher)> {
    let server = NatsServer::launch().await?;
    let client = reconnecting_client(&server.url()).await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            attempt_timeout: Duration::from_secs(2),
            max_in_flight,
            ..PublisherConfig::default()
        },
    )?;
    Ok((server, js, publisher))
}

/// A batch through a server outage longer than the attempt timeout: every
/// event answered Ok and stored exactly once (the lost PubAcks time out and
/// are retried under the same `Nats-Msg-Id`).
#[tokio::test]
async fn a_batch_through_a_restart_stores_each_event_once() -> anyhow::Result<()> {
    const EVENTS: usize = 20_000;
    let (mut server, js, publisher) = restartable(8).await?;
    let events: Vec<UserCreated> = (0..EVENTS).map(UserCreated::numbered).collect();
    let batch = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            let ctx = PublishContext::new("org-restart")?;
            anyhow::Ok(publisher.publish_batch(&ctx, &events).await)
        }
    });
    eventually("some events stored", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            let stored = match js.get_stream("AUTH_EVENTS").await {
                Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            };
            if stored >= 500 {
                Ok(())
            } else {
                Err(format!("{stored} stored so far"))
            }
        }
    })
    .await?;
    assert!(!batch.is_finished(), "the restart comes during the batch");
    // An outage longer than the attempt timeout: the events unanswered when
    // it starts must time out and be retried, whatever else the client
    // buffers meanwhile.
    server.stop().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.start().await?;
    let results = batch.await??;
    assert!(
        results.iter().flatten().any(|p| p.attempts > 1),
        "some events needed a retry"
    );

    let mut ids = HashSet::new();
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(published) => assert!(ids.insert(published.event_id.to_string())),
            Err(e) => panic!("event {n} failed: {e}"),
        }
    }
    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), EVENTS, "each event stored once");
    let stored_ids: HashSet<String> = msg_ids(&stored).into_iter().collect();
    assert_eq!(stored_ids, ids, "the stored ids are the published ones");
    Ok(())
}

fn quick_retries() -> PublisherConfig {
    PublisherConfig {
        attempt_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            initial_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        },
        ..PublisherConfig::default()
    }
}

async fn reconnecting_client(url: &str) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(url)
        .await?)
}

#[tokio::test]
async fn a_stopped_server_fails_after_the_schedule_and_one_that_returns_succeeds(
) -> anyhow::Result<()> {
    let mut server = NatsServer::launch().await?;
    let client = reconnecting_client(&server.url()).await?;
    provision(&jetstream::new(client.clone()), "dev").await?;
    let publisher = Publisher::new(client.clone(), quick_retries())?;
    let ctx = PublishContext::new("org-1")?;

    server.stop().await?;
    match publisher.publish(&ctx, &UserCreated::numbered(1)).await {
        Err(PublishError::RetriesExhausted {
            attempts, outcome, ..
        }) => {
            assert_eq!(attempts.len(), 4, "1 attempt + 3 retries: {attempts:?}");
            assert_eq!(outcome, Outcome::Unknown);
            assert!(attempts
                .iter()
                .all(|a| a.kind != AttemptFailureKind::Rejected));
            let numbers: Vec<u32> = attempts.iter().map(|a| a.attempt).collect();
            assert_eq!(numbers, vec![1, 2, 3, 4]);
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }

    // Down again when the publish starts, back within the schedule.
    let publishing = tokio::spawn({
        let publisher = publisher.clone();
        let ctx = ctx.clone();
        async move { publisher.publish(&ctx, &UserCreated::numbered(2)).await }
    });
    server.start().await?;
    let published = publishing.await??;
    assert_eq!(published.stream, "AUTH_EVENTS");

    // The first event may or may not have been stored (its outcome was
    // unknown: the client may send buffered attempts after reconnecting);
    // the second is stored exactly once.
    let js = jetstream::new(client);
    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    let ids = msg_ids(&stored);
    let second = published.event_id.to_string();
    assert_eq!(ids.iter().filter(|id| **id == second).count(), 1, "{ids:?}");
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "no duplicates: {ids:?}"
    );
    Ok(())
}

/// A publish whose outcome is unknown (the server was down for the whole
/// schedule; its attempts stay queued in the client and are written after
/// the reconnect) retried by the caller under the same event id once the
/// server is back: exactly one stored copy.
#[tokio::test]
async fn an_unknown_outcome_retried_with_the_same_id_is_stored_once() -> anyhow::Result<()> {
    let mut server = NatsServer::launch().await?;
    let client = reconnecting_client(&server.url()).await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    let publisher = Publisher::new(client.clone(), quick_retries())?;
    let ctx = PublishContext::new("org-1")?;
    let event = UserCreated::numbered(1);

    server.stop().await?;
    let event_id = match publisher.publish(&ctx, &event).await {
        Err(PublishError::RetriesExhausted {
            outcome: Outcome::Unknown,
            event_id,
            ..
        }) => event_id,
        other => panic!("expected an unknown outcome, got {other:?}"),
    };
    server.start().await?;

    // The caller's retry, under the same id.
    let retried = publisher.publish_with_id(&ctx, event_id, &event).await?;
    assert_eq!(retried.event_id, event_id);

    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    let copies: Vec<&jetstream::Message> = stored
        .iter()
        .filter(|m| m.subject.as_str() == "auth.user.created.org-1.u-1")
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one stored copy; ids {:?}, failed publish {event_id}, retry {}",
        msg_ids(&stored),
        retried.event_id
    );
    Ok(())
}

/// The retry schedule is checked against the duplicate window the stream
/// really has: a stream whose window is shorter than the schedule's worst
/// case (4 attempts of 5 s to enqueue plus 5 s for the PubAck) is refused
/// before anything is sent, naming the stream and both figures.
#[tokio::test]
async fn a_stream_whose_window_is_shorter_than_the_schedule_is_refused() -> anyhow::Result<()> {
    let (_server, _client, js, publisher) = setup().await?;
    let mut config = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .config
        .clone();
    config.duplicate_window = Duration::from_secs(30);
    js.update_stream(config).await?;
    let ctx = PublishContext::new("org-1")?;
    match publisher.publish(&ctx, &UserCreated::numbered(1)).await {
        Err(PublishError::Config(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("AUTH_EVENTS's duplicate window of 30s"),
                "{text}"
            );
            assert!(text.contains("can take 40.8"), "{text}");
        }
        other => panic!("expected the schedule refused, got {other:?}"),
    }
    let results = publisher
        .publish_batch(&ctx, &[UserCreated::numbered(2)])
        .await;
    assert!(
        matches!(results[..], [Err(PublishError::Config(_))]),
        "{results:?}"
    );
    let stored = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(stored, 0, "nothing sent");
    Ok(())
}

#[tokio::test]
async fn five_publishers_through_two_restarts_store_exactly_5000() -> anyhow::Result<()> {
    const PUBLISHERS: usize = 5;
    const EACH: usize = 1000;
    let (mut server, js, publisher) = restartable(PublisherConfig::default().max_in_flight).await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let publisher = publisher.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = PublishContext::new(&format!("org-{p}"))?;
            let mut ids = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let published = publisher
                    .publish(&ctx, &UserCreated::numbered(p * EACH + n))
                    .await?;
                acked.fetch_add(1, Ordering::SeqCst);
                ids.push(published.event_id.to_string());
            }
            anyhow::Ok(ids)
        }));
    }
    for threshold in [1000, 3000] {
        eventually(
            &format!("{threshold} PubAcks"),
            Duration::from_secs(60),
            || {
                let seen = acked.load(Ordering::SeqCst);
                async move {
                    if seen >= threshold {
                        Ok(())
                    } else {
                        Err(format!("{seen} so far"))
                    }
                }
            },
        )
        .await?;
        server.restart().await?;
    }
    let mut expected = HashSet::new();
    for task in tasks {
        expected.extend(task.await??);
    }
    assert_eq!(
        expected.len(),
        PUBLISHERS * EACH,
        "every publish returned its own id"
    );

    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), PUBLISHERS * EACH, "exactly 5,000 stored");
    let mut seen = HashSet::new();
    let mut last_sequence = 0;
    for message in &stored {
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .expect("Nats-Msg-Id");
        assert!(seen.insert(id.clone()), "event {id} stored twice");
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!(e))?
            .stream_sequence;
        assert!(sequence > last_sequence, "sequences strictly increase");
        last_sequence = sequence;
    }
    assert_eq!(
        seen, expected,
        "the stored ids are exactly the published ones"
    );
    Ok(())
}

#[tokio::test]
async fn an_r3_leader_step_down_is_invisible_to_the_caller() -> anyhow::Result<()> {
    const TOTAL: usize = 600;
    let cluster = NatsCluster::launch().await?;
    let client = cluster.connect().await?;
    let js = jetstream::new(client.clone());
    let plans = provision(&js, "production").await?;
    assert_eq!(plans.len(), 7);
    let info = js.get_stream("AUTH_EVENTS").await?.info().await?.clone();
    assert_eq!(info.config.num_replicas, 3, "production profile is R3");
    let leader_before = info.cluster.and_then(|c| c.leader).expect("a leader");

    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let acked = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let publisher = publisher.clone();
        let acked = acked.clone();
        async move {
            let ctx = PublishContext::new("org-9")?;
            for n in 0..TOTAL {
                publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
                acked.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok(())
        }
    });
    eventually(
        "100 PubAcks before the step-down",
        Duration::from_secs(30),
        || {
            let seen = acked.load(Ordering::SeqCst);
            async move {
                if seen >= 100 {
                    Ok(())
                } else {
                    Err(seen)
                }
            }
        },
    )
    .await?;
    let response = client
        .request("$JS.API.STREAM.LEADER.STEPDOWN.AUTH_EVENTS", "".into())
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&response.payload)?;
    assert_eq!(answer["success"], true, "{answer}");
    task.await??;

    let info = js.get_stream("AUTH_EVENTS").await?.info().await?.clone();
    assert_eq!(info.state.messages, TOTAL as u64, "every event stored once");
    let leader_after = info.cluster.and_then(|c| c.leader).expect("a leader");
    assert_ne!(leader_after, leader_before, "the leader did change");
    Ok(())
}

/// A batch over many entities through a leader step-down of its R3 stream:
/// attempts lost in the election are retried, and no entity's events are
/// stored out of order (each payload carries its index within its entity).
#[tokio::test]
async fn a_batch_keeps_each_entitys_order_through_a_leader_step_down() -> anyhow::Result<()> {
    const KEYS: usize = 32;
    const PER_KEY: usize = 500;
    let cluster = NatsCluster::launch().await?;
    let client = cluster.connect().await?;
    let js = jetstream::new(client.clone());
    provision(&js, "production").await?;
    let publisher = Publisher::new(
        client.clone(),
        PublisherConfig {
            attempt_timeout: Duration::from_secs(2),
            ..PublisherConfig::default()
        },
    )?;
    let events: Vec<UserCreated> = (0..KEYS * PER_KEY)
        .map(|n| UserCreated {
            user_id: format!("u-{}", n % KEYS),
            email: format!("user{n}@example.com"),
            display_name: (n / KEYS).to_string(),
        })
        .collect();
    let batch = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            let ctx = PublishContext::new("org-order")?;
            anyhow::Ok(publisher.publish_batch(&ctx, &events).await)
        }
    });
    eventually("1000 events stored", Duration::from_secs(60), || {
        let js = js.clone();
        async move {
            let stored = match js.get_stream("AUTH_EVENTS").await {
                Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            };
            if stored >= 1000 {
                Ok(())
            } else {
                Err(format!("{stored} stored so far"))
            }
        }
    })
    .await?;
    assert!(!batch.is_finished(), "the step-down comes during the batch");
    let response = client
        .request("$JS.API.STREAM.LEADER.STEPDOWN.AUTH_EVENTS", "".into())
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&response.payload)?;
    assert_eq!(answer["success"], true, "{answer}");
    let results = batch.await??;
    for (n, result) in results.iter().enumerate() {
        if let Err(e) = result {
            panic!("event {n} failed: {e}");
        }
    }

    let stored = fetch_all(&js, "AUTH_EVENTS").await?;
    assert_eq!(stored.len(), KEYS * PER_KEY, "each event stored once");
    let mut last: std::collections::HashMap<String, usize> = Default::default();
    let mut out_of_order = Vec::new();
    for message in &stored {
        let envelope = Envelope::decode_message(message.headers.as_ref(), &message.payload)?;
        let event = envelope.data_as::<UserCreated>()?;
        let index: usize = event.display_name.parse()?;
        if let Some(previous) = last.insert(event.user_id.clone(), index) {
            if index <= previous {
                out_of_order.push(format!("{}: {index} after {previous}", event.user_id));
            }
        }
    }
    assert!(
        out_of_order.is_empty(),
        "{} events stored out of order, e.g. {:?}",
        out_of_order.len(),
        &out_of_order[..out_of_order.len().min(5)]
    );
    Ok(())
}

/// A log sink for one test: what a `fmt` subscriber wrote, as text.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// FR-010: every stored event is logged with its id, type, organization,
/// subject and sequence, at info by default (a service logging at info
/// sees it), and at the level the service chooses (debug: an info
/// subscriber does not).
#[tokio::test]
async fn every_published_event_is_logged_at_the_level_the_service_chooses() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    provision(&jetstream::new(client.clone()), "dev").await?;
    let log = CapturedLog::default();
    let writer = log.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let ctx = PublishContext::new("org-42")?;

    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let first = publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    let batch = publisher
        .publish_batch(&ctx, &[UserCreated::numbered(2)])
        .await;
    let second = batch.into_iter().next().expect("one result")?;
    let text = log.text();
    for published in [&first, &second] {
        let line = text
            .lines()
            .find(|line| line.contains(&published.event_id.to_string()))
            .unwrap_or_else(|| panic!("no log line for {}: {text}", published.event_id));
        for field in [
            " INFO ".to_string(),
            "event published".to_string(),
            "event_type=\"auth.user.created\"".to_string(),
            "organization_id=\"org-42\"".to_string(),
            format!("subject={}", published.subject),
            "stream=AUTH_EVENTS".to_string(),
            format!("sequence={}", published.sequence),
        ] {
            assert!(line.contains(&field), "{field:?} missing from {line:?}");
        }
    }

    let quiet = Publisher::new(
        client,
        PublisherConfig {
            log_level: tracing::Level::DEBUG,
            ..PublisherConfig::default()
        },
    )?;
    let third = quiet.publish(&ctx, &UserCreated::numbered(3)).await?;
    assert_eq!(third.sequence, 3, "stored");
    assert!(
        !log.text().contains(&third.event_id.to_string()),
        "logged at debug, filtered by an info subscriber: {}",
        log.text()
    );
    Ok(())
}
