//! The dead-letter queue against a real nats-server: the spec's scenario,
//! poison messages, a process killed in the middle of a move, the monitor
//! and its sinks, and list / redrive / purge.
mod support;

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use support::{
    dead_letters, fast_config, publisher_with_ce_headers, say, settled, setup, take, ChildTest,
    UserCreated,
};
use tidings::dlq::{
    ops, AlertKind, AlertSink as _, DeadLetterKind, DlqFilter, DlqMonitor, MonitorConfig, NatsSink,
    RedriveTarget, TracingSink, WebhookConfig, WebhookSink, DLQ_STREAM,
};
use tidings::envelope::MSG_ID_HEADER;
use tidings::{Event, PublishContext, Subscriber};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// A subscriber of `group` whose handler fails for user `u-1` and sends the
/// others' user ids to `tx`.
fn failing_for_u1(
    client: async_nats::Client,
    group: &str,
    config: tidings::SubscriberConfig,
    tx: mpsc::UnboundedSender<(String, u32)>,
) -> anyhow::Result<Subscriber> {
    let mut subscriber = Subscriber::new(client, group, config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((event.payload.user_id.clone(), event.meta.delivery));
            if event.payload.user_id == "u-1" {
                Err(format!(
                    "inventory service refused {} (HTTP 503)",
                    event.payload.user_id
                ))
            } else {
                Ok(())
            }
        }
    });
    Ok(subscriber)
}

#[tokio::test]
async fn an_event_whose_handler_throws_is_in_the_dlq_after_5_deliveries_and_nothing_is_lost(
) -> anyhow::Result<()> {
    let (_server, client, js, _) = setup().await?;
    // With the `ce-` headers, to show the dead letter keeps them.
    let publisher = publisher_with_ce_headers(&client)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client, "billing", fast_config(), tx)?
        .start()
        .await?;
    let ctx = PublishContext::new("org-7")?;
    let events: Vec<UserCreated> = (0..20).map(UserCreated::numbered).collect();
    let mut published = Vec::new();
    for r in publisher.publish_batch(&ctx, &events).await {
        published.push(r?);
    }
    let failing = published
        .iter()
        .find(|p| p.subject.ends_with(".u-1"))
        .ok_or_else(|| anyhow::anyhow!("u-1 not published"))?
        .clone();

    // 19 events handled once, u-1 delivered 5 times.
    let got = take(&mut rx, 19 + 5).await?;
    let u1: Vec<u32> = got.iter().filter(|g| g.0 == "u-1").map(|g| g.1).collect();
    assert_eq!(u1, vec![1, 2, 3, 4, 5]);
    let handled: HashSet<&String> = got.iter().filter(|g| g.0 != "u-1").map(|g| &g.0).collect();
    assert_eq!(handled.len(), 19);
    // The group moved on: later events were handled while u-1 was retried.
    let first_u1 = got.iter().position(|g| g.0 == "u-1").unwrap_or(0);
    let last_u1 = got.iter().rposition(|g| g.0 == "u-1").unwrap_or(0);
    assert!(
        got[first_u1..last_u1].iter().any(|g| g.0 != "u-1"),
        "the group waited for the failing event"
    );

    let dead = dead_letters(&js, 1).await?;
    settled(&js, "AUTH_EVENTS", "billing").await?;
    let letter = &dead[0];
    let record = letter.record.clone()?;
    assert_eq!(record.stream, "AUTH_EVENTS");
    assert_eq!(record.sequence, failing.sequence);
    assert_eq!(record.subject, failing.subject);
    assert_eq!(record.group, "billing");
    assert_eq!(record.deliveries, 5);
    assert_eq!(record.kind, DeadLetterKind::Exhausted);
    assert_eq!(record.error, "inventory service refused u-1 (HTTP 503)");
    let first = record
        .first_failure
        .ok_or_else(|| anyhow::anyhow!("no first failure"))?;
    assert!(
        first < record.last_failure,
        "{first} vs {}",
        record.last_failure
    );
    assert_eq!(
        letter.subject,
        format!("dlq.billing.auth.user.created.org-7.{}", failing.sequence)
    );
    assert_eq!(letter.event_type().as_deref(), Some("auth.user.created"));
    assert_eq!(letter.group(), Some("billing"));
    assert_eq!(letter.organization(), Some("org-7"));

    // The original body is untouched and its headers are kept.
    let original = js
        .get_stream("AUTH_EVENTS")
        .await?
        .get_raw_message(failing.sequence)
        .await?;
    assert_eq!(letter.body, original.payload);
    assert_eq!(letter.envelope()?.id, failing.event_id);
    for header in ["ce-id", "ce-type", "ce-organizationid", "content-type"] {
        assert_eq!(
            letter.headers.get(header).map(|v| v.to_string()),
            original.headers.get(header).map(|v| v.to_string()),
            "{header}"
        );
    }
    assert_eq!(
        letter.headers.get(MSG_ID_HEADER).map(|v| v.to_string()),
        Some(format!("dlq.billing.AUTH_EVENTS.{}", failing.sequence))
    );
    assert_eq!(
        letter
            .headers
            .get("Tidings-Dlq-Msg-Id")
            .map(|v| v.to_string()),
        Some(failing.event_id.to_string()),
        "the original message id is kept"
    );

    // Nothing lost: every published event was handled or dead-lettered.
    assert_eq!(handled.len() + dead.len(), published.len());
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_at_once_with_the_decode_error() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client, "strict", fast_config(), tx)?
        .start()
        .await?;
    let seq = js
        .publish("auth.user.created.org-1.u-9", "{not json".into())
        .await?
        .await?
        .sequence;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(2))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![("u-2".to_string(), 1)]);
    let dead = dead_letters(&js, 1).await?;
    let record = dead[0].record.clone()?;
    assert_eq!(record.kind, DeadLetterKind::Poison);
    assert_eq!(record.deliveries, 1);
    assert_eq!(record.sequence, seq);
    assert!(record.error.contains("not JSON"), "{}", record.error);
    assert_eq!(&dead[0].body[..], b"{not json");
    assert!(dead[0].envelope().is_err());
    settled(&js, "AUTH_EVENTS", "strict").await?;
    running.shutdown().await;
    Ok(())
}

/// The child side of the move fault test (`TIDINGS_CHILD_NATS_URL` set): a
/// subscriber that gives every event up at once, stopped by the failpoint
/// between the DLQ copy and the terminate.
#[tokio::test]
#[ignore = "run as a child process by a_process_killed_between_the_dlq_copy_and_the_terminate_leaves_one_copy"]
async fn child_moving_to_the_dlq() -> anyhow::Result<()> {
    let Ok(url) = std::env::var("TIDINGS_CHILD_NATS_URL") else {
        return Ok(());
    };
    let client = async_nats::connect(url).await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "mover", config)?;
    subscriber.handle::<UserCreated, _>(|_e: Event<UserCreated>| async move {
        Err::<(), _>("always fails".to_string())
    });
    let _running = subscriber.start().await?;
    say("ready")?;
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn a_process_killed_between_the_dlq_copy_and_the_terminate_leaves_one_copy(
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    // A DLQ duplicate window shorter than the kill-to-restart gap: the
    // copy's `Nats-Msg-Id` no longer protects, only the subject lookup does.
    let window = Duration::from_millis(500);
    let mut dlq_config = js
        .get_stream(DLQ_STREAM)
        .await?
        .info()
        .await?
        .config
        .clone();
    dlq_config.duplicate_window = window;
    js.update_stream(dlq_config).await?;
    let mut child = ChildTest::spawn(
        "child_moving_to_the_dlq",
        &server.url(),
        &[(tidings::testing::failpoint::FAILPOINT_ENV, "dlq-after-copy")],
    )?;
    child.next_line("ready").await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    child.next_line("failpoint dlq-after-copy reached").await?;
    child.kill().await?; // SIGKILL between the copy and the terminate
                         // The copy is there; the original is still unacknowledged.
    let copy = dead_letters(&js, 1).await?.remove(0);
    tidings::testing::eventually(
        "the DLQ duplicate window passes after the copy",
        Duration::from_secs(10),
        || async {
            let since = time::OffsetDateTime::now_utc() - copy.stored_at;
            if since > window * 2 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{since} since the copy"))
            }
        },
    )
    .await?;

    // A new instance gets the original again (after the ack wait), finds
    // the copy, and only terminates.
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "mover", config)?;
    subscriber.handle::<UserCreated, _>(|_e: Event<UserCreated>| async move {
        Err::<(), _>("always fails".to_string())
    });
    let running = subscriber.start().await?;
    settled(&js, "AUTH_EVENTS", "mover").await?;
    let dead = ops::list(&js, &DlqFilter::default(), None).await?;
    assert_eq!(dead.len(), 1, "the event is in the DLQ exactly once");
    let record = dead[0].record.clone()?;
    assert_eq!(record.sequence, published.sequence);
    let mut dlq = js.get_stream(DLQ_STREAM).await?;
    assert_eq!(dlq.info().await?.state.messages, 1);
    running.shutdown().await;
    Ok(())
}

/// A one-request HTTP server on 127.0.0.1 that answers 200 and hands over
/// the request body.
async fn webhook_receiver(
) -> anyhow::Result<(String, tokio::task::JoinHandle<anyhow::Result<String>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks/dlq", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        let mut reader = BufReader::new(socket);
        let mut length = 0usize;
        let mut request_line = String::new();
        reader.read_line(&mut request_line).await?;
        anyhow::ensure!(
            request_line.starts_with("POST /hooks/dlq "),
            "{request_line}"
        );
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        Ok(String::from_utf8(body)?)
    });
    Ok((url, handle))
}

#[tokio::test]
async fn the_monitor_alerts_above_the_threshold_through_every_sink_rate_limited(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    let mut monitor = DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            threshold: 2,
            ..Default::default()
        },
    );
    assert!(monitor.check().await?.is_empty(), "an empty DLQ alerted");

    for org in ["org-1", "org-2", "org-3"] {
        publisher
            .publish(&PublishContext::new(org)?, &UserCreated::numbered(1))
            .await?;
    }
    let dead = dead_letters(&js, 3).await?;
    let depths = monitor.depths().await?;
    assert_eq!(depths.len(), 1);
    assert_eq!(
        (
            depths[0].group.as_str(),
            depths[0].event_type.as_str(),
            depths[0].count
        ),
        ("billing", "auth.user.created", 3)
    );

    let (url, received) = webhook_receiver().await?;
    let mut alerts = client.subscribe("ops.alerts.dlq").await?;
    let mut monitor = DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            threshold: 2,
            ..Default::default()
        },
    )
    .sink(TracingSink)
    .sink(NatsSink::new(client.clone(), "ops.alerts.dlq"))
    .sink(WebhookSink::new(&url).map_err(anyhow::Error::msg)?);
    let raised = monitor.check().await?;
    assert_eq!(raised.len(), 1);
    let alert = &raised[0];
    assert_eq!(
        (alert.group.as_str(), alert.count, alert.threshold),
        ("billing", 3, 2)
    );
    assert_eq!(
        alert.since, dead[0].stored_at,
        "since the oldest dead letter"
    );

    let on_nats = tokio::time::timeout(Duration::from_secs(10), alerts.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no alert on ops.alerts.dlq"))?;
    let json: serde_json::Value = serde_json::from_slice(&on_nats.payload)?;
    assert_eq!(json["group"], "billing");
    assert_eq!(json["event_type"], "auth.user.created");
    assert_eq!(json["count"], 3);
    let posted: serde_json::Value = serde_json::from_str(&received.await??)?;
    assert_eq!(posted, json, "the webhook got the same alert");

    // Rate-limited: still above, but alerted a moment ago.
    assert!(monitor.check().await?.is_empty());
    let mut eager = DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            threshold: 2,
            repeat_after: Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(eager.check().await?.len(), 1);
    assert_eq!(eager.check().await?.len(), 1);
    // Below the threshold: quiet.
    let mut calm = DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            threshold: 3,
            ..Default::default()
        },
    );
    assert!(calm.check().await?.is_empty());
    // In all: no group and type above 10, but three dead letters together
    // pass a total threshold of 2 (and not one of 3).
    let total = |total_threshold| {
        DlqMonitor::new(
            js.clone(),
            MonitorConfig {
                threshold: 10,
                total_threshold,
                ..Default::default()
            },
        )
    };
    let raised = total(2).check().await?;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (raised[0].kind, raised[0].count, raised[0].threshold),
        (tidings::dlq::AlertKind::TotalDepth, 3, 2)
    );
    assert_eq!(raised[0].since, dead[0].stored_at);
    assert!(total(3).check().await?.is_empty());
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn dead_letters_can_be_filtered_redriven_and_purged() -> anyhow::Result<()> {
    let (_server, client, js, _) = setup().await?;
    // With the `ce-` headers, to show a redrive keeps them.
    let publisher = publisher_with_ce_headers(&client)?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client.clone(), "billing", config.clone(), tx.clone())?
        .start()
        .await?;
    let ctx1 = PublishContext::new("org-1")?;
    let ctx2 = PublishContext::new("org-2")?;
    let a = publisher.publish(&ctx1, &UserCreated::numbered(1)).await?;
    let b = publisher.publish(&ctx2, &UserCreated::numbered(1)).await?;
    let dead = dead_letters(&js, 2).await?;
    running.shutdown().await;
    while rx.try_recv().is_ok() {}

    let only_org2 = DlqFilter {
        organization: Some(tidings::OrganizationId::new("org-2")?),
        ..Default::default()
    };
    let found = ops::list(&js, &only_org2, None).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].envelope()?.id, b.event_id);
    let other_group = DlqFilter {
        group: Some("shipping".into()),
        ..Default::default()
    };
    assert!(ops::list(&js, &other_group, None).await?.is_empty());
    let by_time = DlqFilter {
        until: Some(dead[1].stored_at),
        ..Default::default()
    };
    assert_eq!(ops::list(&js, &by_time, None).await?.len(), 1);
    assert_eq!(
        ops::list(&js, &DlqFilter::default(), Some(1)).await?.len(),
        1
    );

    // Redrive the first: back on its subject, same event id, new message
    // id, a redrive count, and gone from the DLQ.
    let mut original_stream = js
        .get_stream("AUTH_EVENTS")
        .await?
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    let first = ops::get(&js, dead[0].dlq_sequence).await?;
    let redriven = ops::redrive(&js, &first, RedriveTarget::EveryGroup).await?;
    assert_eq!(redriven.subject, a.subject);
    assert_eq!(redriven.redrive_count, 1);
    let again = tokio::time::timeout(Duration::from_secs(10), original_stream.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing redriven"))??;
    let headers = again.headers.clone().unwrap_or_default();
    assert_eq!(
        headers
            .get("Tidings-Redrive-Count")
            .map(|v| v.to_string())
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        headers.get("ce-id").map(|v| v.to_string()),
        Some(a.event_id.to_string())
    );
    assert_ne!(
        headers.get(MSG_ID_HEADER).map(|v| v.to_string()),
        Some(a.event_id.to_string())
    );
    assert!(headers.get("Tidings-Dlq-Error").is_none());
    assert!(matches!(
        ops::get(&js, dead[0].dlq_sequence).await,
        Err(ops::DlqError::NotFound(_))
    ));

    // Purge the second.
    ops::purge(&js, dead[1].dlq_sequence).await?;
    assert!(ops::list(&js, &DlqFilter::default(), None)
        .await?
        .is_empty());
    assert!(matches!(
        ops::purge(&js, dead[1].dlq_sequence).await,
        Err(ops::DlqError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn operations_on_a_server_without_the_dlq_stream_say_so() -> anyhow::Result<()> {
    let server = tidings::testing::NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let err = ops::list(&js, &DlqFilter::default(), None)
        .await
        .expect_err("no DLQ_EVENTS");
    assert!(matches!(err, ops::DlqError::StreamMissing), "{err}");
    assert!(err.to_string().contains("provision"), "{err}");
    assert!(matches!(
        ops::get(&js, 1).await,
        Err(ops::DlqError::StreamMissing)
    ));
    Ok(())
}

/// A subscriber of `group` whose handler fails while `healthy` is false and
/// sends every delivery's (user id, delivery) to `tx`.
fn failing_until_healthy(
    client: async_nats::Client,
    group: &str,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tx: mpsc::UnboundedSender<(String, u32)>,
) -> anyhow::Result<Subscriber> {
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, group, config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        let healthy = healthy.clone();
        async move {
            let _ = tx.send((event.payload.user_id.clone(), event.meta.delivery));
            if healthy.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err("downstream is down".to_string())
            }
        }
    });
    Ok(subscriber)
}

#[tokio::test]
async fn a_redriven_event_is_handled_by_the_subscriber_and_leaves_the_dlq() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = failing_until_healthy(client.clone(), "billing", healthy.clone(), tx)?
        .start()
        .await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut rx, 1).await?, vec![("u-1".to_string(), 1)]);
    let dead = dead_letters(&js, 1).await?;

    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    ops::redrive(&js, &dead[0], RedriveTarget::EveryGroup).await?;
    let handled = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let after = ops::list(&js, &DlqFilter::default(), None).await?;
    assert!(
        matches!(handled, Ok(Some((ref user, 1))) if user == "u-1"),
        "the redriven event never reached the handler ({handled:?}); the DLQ now holds {:?}",
        after
            .iter()
            .map(|d| d.record.as_ref().map(|r| r.error.clone()))
            .collect::<Vec<_>>()
    );
    settled(&js, "AUTH_EVENTS", "billing").await?;
    assert!(
        ops::list(&js, &DlqFilter::default(), None)
            .await?
            .is_empty(),
        "the redriven event was dead-lettered again"
    );
    assert!(rx.try_recv().is_err(), "the handler ran more than once");
    let _ = published;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_redrive_answered_duplicate_for_another_message_keeps_the_dead_letter(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let dead = dead_letters(&js, 1).await?;
    running.shutdown().await;
    // Another message already holds the redrive's message id within the
    // duplicate window: the redrive is answered `duplicate`, but nothing of
    // this dead letter was stored.
    let msg_id = tidings::envelope::redrive_msg_id(published.event_id, dead[0].dlq_sequence);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id.as_str());
    let other = js
        .publish_with_headers(published.subject.clone(), headers, "someone else".into())
        .await?
        .await?;
    let result = ops::redrive(&js, &dead[0], RedriveTarget::EveryGroup).await;
    let still = ops::get(&js, dead[0].dlq_sequence).await;
    assert!(
        still.is_ok(),
        "the dead letter was deleted although its redrive stored nothing (redrive said {result:?})"
    );
    match result {
        Err(ops::DlqError::RedriveDuplicate {
            sequence,
            stream,
            stored_sequence,
        }) => assert_eq!(
            (sequence, stream.as_str(), stored_sequence),
            (dead[0].dlq_sequence, "AUTH_EVENTS", other.sequence)
        ),
        other => anyhow::bail!("not a RedriveDuplicate: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_redrive_repeated_after_its_copy_was_stored_only_deletes_the_dead_letter(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let dead = dead_letters(&js, 1).await?;
    running.shutdown().await;
    // What a redrive that stopped before the delete left behind.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        MSG_ID_HEADER,
        tidings::envelope::redrive_msg_id(published.event_id, dead[0].dlq_sequence).as_str(),
    );
    headers.insert("Tidings-Redrive-Count", "1");
    let earlier = js
        .publish_with_headers(published.subject.clone(), headers, dead[0].body.clone())
        .await?
        .await?;
    let redriven = ops::redrive(&js, &dead[0], RedriveTarget::EveryGroup).await?;
    assert_eq!(redriven.sequence, earlier.sequence, "stored once");
    assert!(matches!(
        ops::get(&js, dead[0].dlq_sequence).await,
        Err(ops::DlqError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn a_redrive_to_a_subject_the_dlq_subject_does_not_name_is_refused() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let dead = dead_letters(&js, 1).await?;
    running.shutdown().await;
    let before = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages;
    let record = dead[0].record.clone()?;
    for (subject, stream) in [
        // Truncated: one token short, still inside AUTH_EVENTS.
        ("auth.user.created.org-1", "AUTH_EVENTS"),
        // Another tenant's subject.
        ("auth.user.created.org-2.u-1", "AUTH_EVENTS"),
        // Another stream's subject, record and all.
        ("catalog.item.created.org-1.u-1", "CATALOG_EVENTS"),
        // The right subject, a foreign stream in the record.
        (record.subject.as_str(), "CATALOG_EVENTS"),
    ] {
        let mut forged = dead[0].clone();
        let mut r = record.clone();
        r.subject = subject.to_string();
        r.stream = stream.to_string();
        forged.record = Ok(r);
        let result = ops::redrive(&js, &forged, RedriveTarget::EveryGroup).await;
        assert!(
            result.is_err(),
            "redrive to {subject} in {stream}: {result:?}"
        );
    }
    let after = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(before, after, "a forged redrive stored a message");
    assert!(ops::get(&js, dead[0].dlq_sequence).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn a_poison_message_with_jetstream_control_headers_reaches_the_dlq_within_max_deliveries(
) -> anyhow::Result<()> {
    let (_server, client, js, _publisher) = setup().await?;
    // The original stream accepts TTL and rollup headers; DLQ_EVENTS does not.
    let mut auth = js.get_stream("AUTH_EVENTS").await?;
    let mut config = auth.info().await?.config.clone();
    config.allow_message_ttl = true;
    config.allow_rollup = true;
    js.update_stream(config).await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    let config = tidings::SubscriberConfig {
        max_deliveries: 3,
        ..fast_config()
    };
    let running = failing_for_u1(client.clone(), "strict", config, tx)?
        .start()
        .await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Expected-Stream", "AUTH_EVENTS");
    headers.insert("Nats-TTL", "1h");
    headers.insert("Nats-Rollup", "sub");
    headers.insert("X-Kept", "yes");
    let seq = js
        .publish_with_headers("auth.user.created.org-1.u-9", headers, "{not json".into())
        .await?
        .await?
        .sequence;
    let dead = dead_letters(&js, 1).await?;
    let record = dead[0].record.clone()?;
    assert_eq!(record.sequence, seq);
    assert_eq!(record.kind, DeadLetterKind::Poison);
    for control in ["Nats-Expected-Stream", "Nats-TTL", "Nats-Rollup"] {
        assert!(dead[0].headers.get(control).is_none(), "{control} kept");
    }
    assert_eq!(
        dead[0]
            .headers
            .get("X-Kept")
            .map(|v| v.to_string())
            .as_deref(),
        Some("yes")
    );
    settled(&js, "AUTH_EVENTS", "strict").await?;
    let info = support::consumer_info(&js, "AUTH_EVENTS", "strict").await?;
    assert!(
        info.num_redelivered <= 2,
        "redelivered {} times",
        info.num_redelivered
    );
    let _ = auth.info().await?;
    running.shutdown().await;
    Ok(())
}

/// An event type without a length limit, for messages near `max_payload`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct UserNoted {
    user_id: String,
    notes: String,
}

impl tidings::DomainEvent for UserNoted {
    const EVENT_TYPE: &'static str = "auth.user.noted";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"user_id": {"type": "string"}, "notes": {"type": "string"}},
        "required": ["user_id", "notes"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.noted.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserNoted {}

/// A stored message's size as `max_payload` counts it: headers on the wire
/// (`NATS/1.0`, one `Name: value` line each, a blank line) and the body.
fn message_size(message: &jetstream::message::StreamMessage) -> usize {
    let headers: usize = message
        .headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(move |v| name.len() + 2 + v.as_str().len() + 2)
        })
        .sum();
    "NATS/1.0\r\n".len() + headers + 2 + message.payload.len()
}

#[tokio::test]
async fn an_event_a_few_bytes_under_max_payload_still_reaches_the_dlq() -> anyhow::Result<()> {
    const MAX_PAYLOAD: usize = 8192;
    let server = tidings::testing::NatsServer::builder()
        .max_payload(MAX_PAYLOAD as u32)
        .launch()
        .await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    support::provision(&js, "dev").await?;
    // With the `ce-` headers, which the DLQ copy has to drop first.
    let publisher = publisher_with_ce_headers(&client)?;
    let ctx = PublishContext::new("org-1")?;
    let auth = js.get_stream("AUTH_EVENTS").await?;
    // A probe tells the size of everything but the notes.
    let probe = UserNoted {
        user_id: "u-0".into(),
        notes: "x".into(),
    };
    let probe_seq = publisher.publish(&ctx, &probe).await?.sequence;
    let base = message_size(&auth.get_raw_message(probe_seq).await?);
    let notes = "n".repeat(1 + MAX_PAYLOAD - 8 - base);
    let big = publisher
        .publish(
            &ctx,
            &UserNoted {
                user_id: "u-1".into(),
                notes,
            },
        )
        .await?;
    let stored = message_size(&auth.get_raw_message(big.sequence).await?);
    assert!(
        (MAX_PAYLOAD - 16..=MAX_PAYLOAD).contains(&stored),
        "the original is {stored} bytes"
    );

    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "billing", config)?;
    subscriber.handle::<UserNoted, _>(|_e: Event<UserNoted>| async move {
        Err::<(), _>(format!("refused: {}", "a long explanation ".repeat(60)))
    });
    let running = subscriber.start().await?;
    // The probe and the big one.
    let dead = dead_letters(&js, 2).await?;
    let letter = dead
        .iter()
        .find(|d| d.record.as_ref().is_ok_and(|r| r.sequence == big.sequence))
        .ok_or_else(|| anyhow::anyhow!("the big event is not in the DLQ"))?;
    let original = auth.get_raw_message(big.sequence).await?;
    assert_eq!(
        letter.body, original.payload,
        "the body is the event: kept whole"
    );
    assert_eq!(letter.envelope()?.id, big.event_id);
    // Its own headers are no larger than the failure record: all of them
    // had to go (and, when the record is larger than they were, its
    // optional parts too), and the dead letter says so.
    let truncated = letter
        .headers
        .get("Tidings-Dlq-Truncated")
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(
        truncated == "error,ce-headers,headers"
            || truncated == "error,ce-headers,headers,record-extras",
        "Tidings-Dlq-Truncated: {truncated:?}"
    );
    assert!(letter.headers.get("ce-id").is_none());
    let record = letter.record.clone()?;
    assert_eq!(record.kind, DeadLetterKind::Exhausted);
    assert_eq!(record.group, "billing");
    settled(&js, "AUTH_EVENTS", "billing").await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_group_only_redrive_reaches_the_failing_group_and_no_other() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (billing_tx, mut billing) = mpsc::unbounded_channel();
    let billing_running =
        failing_until_healthy(client.clone(), "billing", healthy.clone(), billing_tx)?
            .start()
            .await?;
    let (shipping_tx, mut shipping) = mpsc::unbounded_channel();
    let shipping_running = failing_until_healthy(
        client.clone(),
        "shipping",
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        shipping_tx,
    )?
    .start()
    .await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(take(&mut billing, 1).await?, vec![("u-1".to_string(), 1)]);
    assert_eq!(take(&mut shipping, 1).await?, vec![("u-1".to_string(), 1)]);
    let dead = dead_letters(&js, 1).await?;
    assert_eq!(dead[0].group(), Some("billing"));

    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let redriven = ops::redrive(&js, &dead[0], RedriveTarget::FailingGroup).await?;
    assert_eq!(redriven.group.as_deref(), Some("billing"));
    assert_eq!(take(&mut billing, 1).await?, vec![("u-1".to_string(), 1)]);
    // Both groups have settled the redriven message: billing handled it,
    // shipping acked it without running its handler.
    settled(&js, "AUTH_EVENTS", "billing").await?;
    settled(&js, "AUTH_EVENTS", "shipping").await?;
    assert!(
        shipping.try_recv().is_err(),
        "the other group handled the redriven event"
    );
    assert!(ops::list(&js, &DlqFilter::default(), None)
        .await?
        .is_empty());
    billing_running.shutdown().await;
    shipping_running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_move_that_keeps_failing_raises_a_monitor_alert_and_completes_once_it_can(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    // DLQ_EVENTS refuses every copy: its messages may be 64 bytes at most.
    let mut dlq_config = js
        .get_stream(DLQ_STREAM)
        .await?
        .info()
        .await?
        .config
        .clone();
    let open = dlq_config.max_message_size;
    dlq_config.max_message_size = 64;
    js.update_stream(dlq_config.clone()).await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 2,
        ..fast_config()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    let (url, received) = webhook_receiver().await?;
    let alert = tidings::testing::eventually(
        "the monitor alerts on the failing move",
        Duration::from_secs(20),
        || async {
            let mut monitor = DlqMonitor::new(js.clone(), MonitorConfig::default())
                .sink(TracingSink)
                .sink(WebhookSink::new(&url).map_err(anyhow::Error::msg)?);
            monitor
                .check()
                .await?
                .into_iter()
                .find(|a| a.kind == AlertKind::MoveFailing)
                .ok_or_else(|| anyhow::anyhow!("no alert yet"))
        },
    )
    .await?;
    let monitor = DlqMonitor::new(js.clone(), MonitorConfig::default());
    assert_eq!(
        (alert.group.as_str(), alert.event_type.as_str(), alert.count),
        ("billing", "auth.user.created", 1)
    );
    let error = alert.error.clone().unwrap_or_default();
    assert!(error.contains("maximum"), "{error}");
    let posted: serde_json::Value = serde_json::from_str(&received.await??)?;
    assert_eq!(posted["kind"], "tidings.dlq.move_failing");
    assert!(ops::list(&js, &DlqFilter::default(), None)
        .await?
        .is_empty());

    // Once DLQ_EVENTS takes it, the move completes and the alert clears.
    dlq_config.max_message_size = open;
    js.update_stream(dlq_config).await?;
    dead_letters(&js, 1).await?;
    settled(&js, "AUTH_EVENTS", "billing").await?;
    tidings::testing::eventually(
        "the failing move is forgotten",
        Duration::from_secs(10),
        || async {
            let left = monitor.failing_moves().await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{left:?}"))
            }
        },
    )
    .await?;
    running.shutdown().await;
    Ok(())
}

/// DLQ_EVENTS as the registry provisions it, shrunk to room for two and a
/// quarter dead letters (a margin: two letters need not be the same size):
/// the capacity alert comes at the second, before the stream is full; the third is refused rather than evicting the first,
/// its original stays unacknowledged in AUTH_EVENTS with a move_failing
/// alert, and it moves once there is room.
#[tokio::test]
async fn a_full_dlq_refuses_the_copy_keeps_the_original_and_alerted_before_it_filled(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    let publish = |org: &'static str| {
        let publisher = publisher.clone();
        async move {
            publisher
                .publish(&PublishContext::new(org)?, &UserCreated::numbered(1))
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let monitor_config = MonitorConfig {
        capacity_percent: 80,
        repeat_after: Duration::ZERO,
        ..MonitorConfig::default()
    };
    let mut monitor = DlqMonitor::new(js.clone(), monitor_config);
    let capacity_alerts = |alerts: &[tidings::dlq::Alert]| {
        alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Capacity)
            .count()
    };

    publish("org-1").await?;
    let first = dead_letters(&js, 1).await?.remove(0);
    let mut dlq = js.get_stream(DLQ_STREAM).await?.info().await?.clone();
    assert_eq!(
        dlq.config.discard,
        jetstream::stream::DiscardPolicy::New,
        "the registry's DLQ refuses rather than evicts"
    );
    let one = i64::try_from(dlq.state.bytes)?;
    let open = dlq.config.max_bytes;
    dlq.config.max_bytes = one * 9 / 4;
    js.update_stream(dlq.config.clone()).await?;
    assert_eq!(capacity_alerts(&monitor.check().await?), 0, "44 % full");

    publish("org-2").await?;
    dead_letters(&js, 2).await?;
    let raised = monitor.check().await?;
    assert_eq!(capacity_alerts(&raised), 1, "89 % full: {raised:?}");
    let alert = raised
        .iter()
        .find(|a| a.kind == AlertKind::Capacity)
        .ok_or_else(|| anyhow::anyhow!("no capacity alert"))?;
    assert_eq!(alert.threshold, u64::try_from(one * 9 / 4)?);
    assert_eq!(alert.to_json()["kind"], "tidings.dlq.capacity");

    let third = publish("org-3").await?;
    let stuck = tidings::testing::eventually(
        "the refused move is alerted",
        Duration::from_secs(20),
        || async {
            DlqMonitor::new(js.clone(), MonitorConfig::default())
                .failing_moves()
                .await
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no failing move yet"))
        },
    )
    .await?;
    assert_eq!(stuck.count, 1);
    let error = stuck.error.clone().unwrap_or_default();
    assert!(error.contains("maximum bytes"), "{error}");
    let kept = ops::list(&js, &DlqFilter::default(), None).await?;
    assert_eq!(kept.len(), 2, "nothing evicted");
    assert_eq!(
        kept[0].dlq_sequence, first.dlq_sequence,
        "the oldest dead letter stays"
    );
    let consumer = support::consumer_info(&js, "AUTH_EVENTS", "billing").await?;
    assert!(
        consumer.ack_floor.stream_sequence < third.sequence,
        "the original is not terminated: ack floor {}",
        consumer.ack_floor.stream_sequence
    );

    // Room again: the original moves.
    dlq.config.max_bytes = open;
    js.update_stream(dlq.config).await?;
    dead_letters(&js, 3).await?;
    settled(&js, "AUTH_EVENTS", "billing").await?;
    running.shutdown().await;
    Ok(())
}

/// A test CA and, signed by it, a certificate for 127.0.0.1: the CA's PEM
/// file in `dir` and a TLS acceptor presenting the certificate.
fn test_ca(
    dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, tokio_rustls::TlsAcceptor)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("tidings test CA {name}"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let ca_path = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_path, ca.pem())?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "webhook receiver");
    let cert = params.signed_by(&key, &ca)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )?;
    Ok((
        ca_path,
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    ))
}

/// One HTTP request as a test receiver read it.
#[derive(Debug)]
struct Received {
    request_line: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
) -> anyhow::Result<Received> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(Ok(0), |(_, v)| v.parse())?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    Ok(Received {
        request_line: request_line.trim_end().to_string(),
        headers,
        body,
    })
}

/// An https receiver on 127.0.0.1 for one request: it hands the request
/// over on the channel, then answers 200, or with `hold`, holds the
/// connection without answering until the returned sender fires (or is
/// dropped) and closes it.
async fn https_receiver(
    acceptor: tokio_rustls::TlsAcceptor,
    hold: bool,
) -> anyhow::Result<(
    String,
    tokio::sync::oneshot::Receiver<Received>,
    tokio::sync::oneshot::Sender<()>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}/hooks/dlq", listener.local_addr()?);
    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = async {
            let (socket, _) = listener.accept().await?;
            let mut reader = BufReader::new(acceptor.accept(socket).await?);
            let received = read_request(&mut reader).await?;
            let _ = got_tx.send(received);
            if hold {
                let _ = close_rx.await;
            } else {
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await?;
                reader.get_mut().shutdown().await?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = serve.await {
            let _ = say(&format!("https receiver: {e}"));
        }
    });
    Ok((url, got_rx, close_tx))
}

fn test_alert() -> tidings::dlq::Alert {
    tidings::dlq::Alert {
        kind: AlertKind::Threshold,
        stream: "DLQ_EVENTS".into(),
        group: "billing".into(),
        event_type: "auth.user.created".into(),
        count: 3,
        threshold: 2,
        since: time::OffsetDateTime::UNIX_EPOCH,
        error: None,
    }
}

#[tokio::test]
async fn an_https_webhook_trusting_the_test_ca_gets_the_alert_with_the_bearer_token(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (ca, acceptor) = test_ca(dir.path(), "a")?;
    let (url, received, _close) = https_receiver(acceptor, false).await?;
    let sink = WebhookSink::with_config(
        WebhookConfig::new(&url)
            .ca_file(&ca)
            .bearer_token("tok-3f9a-not-for-production"),
    )?;
    assert!(
        !format!("{sink:?}").contains("tok-3f9a"),
        "the token is redacted: {sink:?}"
    );
    let alert = test_alert();
    sink.send(&alert).await.map_err(anyhow::Error::msg)?;
    let request = received.await?;
    assert_eq!(request.request_line, "POST /hooks/dlq HTTP/1.1");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer tok-3f9a-not-for-production")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&request.body)?;
    assert_eq!(body, alert.to_json());
    Ok(())
}

#[tokio::test]
async fn a_webhook_whose_certificate_another_ca_signed_is_refused_naming_url_and_ca(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (trusted_ca, _) = test_ca(dir.path(), "trusted")?;
    let (_, other_acceptor) = test_ca(dir.path(), "other")?;
    let (url, mut received, _close) = https_receiver(other_acceptor, false).await?;
    let sink = WebhookSink::with_config(
        WebhookConfig::new(&url)
            .ca_file(&trusted_ca)
            .bearer_token("tok-never-sent"),
    )?;
    let err = sink
        .send(&test_alert())
        .await
        .expect_err("a certificate of another CA");
    assert!(err.contains(&format!("POST {url}")), "{err}");
    assert!(err.contains("not trusted"), "{err}");
    assert!(
        err.contains(&trusted_ca.display().to_string()),
        "names the CA file: {err}"
    );
    assert!(!err.contains("tok-never-sent"), "{err}");
    assert!(
        received.try_recv().is_err(),
        "no request reached the server"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_or_silent_webhook_is_an_error_naming_it() -> anyhow::Result<()> {
    // Nothing listens on the port any more.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let url = format!("https://127.0.0.1:{port}/hooks/dlq");
    let err = WebhookSink::new(&url)?
        .send(&test_alert())
        .await
        .expect_err("nothing listens");
    assert!(
        err.contains(&format!("POST {url}: cannot connect")),
        "{err}"
    );

    // A server that takes the request and never answers.
    let dir = tempfile::tempdir()?;
    let (ca, acceptor) = test_ca(dir.path(), "silent")?;
    let (url, _received, _close) = https_receiver(acceptor, true).await?;
    let sink = WebhookSink::with_config(
        WebhookConfig::new(&url)
            .ca_file(&ca)
            .timeout(Duration::from_millis(300)),
    )?;
    let err = sink.send(&test_alert()).await.expect_err("no answer");
    assert!(
        err.contains(&format!("POST {url}: no answer within 300ms")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_webhook_that_does_not_answer_holds_up_no_dead_letter_move_and_no_other_sink(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let running = failing_for_u1(client.clone(), "billing", config, tx)?
        .start()
        .await?;
    publisher
        .publish(&PublishContext::new("org-1")?, &UserCreated::numbered(1))
        .await?;
    dead_letters(&js, 1).await?;

    let dir = tempfile::tempdir()?;
    let (ca, acceptor) = test_ca(dir.path(), "held")?;
    let (url, received, close) = https_receiver(acceptor, true).await?;
    let mut alerts = client.subscribe("ops.alerts.dlq").await?;
    let mut monitor = DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            threshold: 0,
            ..Default::default()
        },
    )
    .sink(WebhookSink::with_config(
        WebhookConfig::new(&url)
            .ca_file(&ca)
            .timeout(Duration::from_secs(120)),
    )?)
    .sink(NatsSink::new(client.clone(), "ops.alerts.dlq"));
    let check = tokio::spawn(async move { monitor.check().await });
    // The webhook has the alert and sits on it; meanwhile events that keep
    // failing still reach the DLQ.
    received.await?;
    for org in ["org-2", "org-3"] {
        publisher
            .publish(&PublishContext::new(org)?, &UserCreated::numbered(1))
            .await?;
    }
    dead_letters(&js, 3).await?;
    assert!(!check.is_finished(), "the check waits for the webhook");

    // The webhook drops the connection: its sink fails, the next sink
    // still gets the alert, and the check returns it.
    drop(close);
    let raised = check.await??;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let on_nats = tokio::time::timeout(Duration::from_secs(10), alerts.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no alert on ops.alerts.dlq"))?;
    let json: serde_json::Value = serde_json::from_slice(&on_nats.payload)?;
    assert_eq!(json["group"], "billing");
    assert_eq!(
        ops::list(&js, &DlqFilter::default(), None).await?.len(),
        3,
        "no dead letter lost"
    );
    running.shutdown().await;
    Ok(())
}
