//! The lag monitor against a real nats-server: a group that does not keep
//! up is reported before the stream's `max_bytes` (`discard: old`) or
//! `max_age` evicts its oldest unhandled event, through the DLQ monitor's
//! sinks; a group that keeps up is not. The DLQ monitor warns before
//! DLQ_EVENTS' max_age deletes a dead letter.
#![cfg(feature = "testing")]
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tidings::dlq::{AlertKind, NatsSink};
use tidings::lag::{LagConfig, LagMonitor};
use tidings::testing::{eventually, NatsServer};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A stream `LAG_EVENTS` (`lag.>`) with these limits and two durable
/// groups: `lagging` never acknowledges, `healthy` acknowledges all.
async fn stream_with_groups(
    js: &jetstream::Context,
    max_bytes: i64,
    max_age: Duration,
) -> Result<stream::Stream> {
    let stream = js
        .create_stream(stream::Config {
            name: "LAG_EVENTS".into(),
            subjects: vec!["lag.>".into()],
            max_bytes,
            max_age,
            duplicate_window: Duration::from_millis(500),
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await?;
    for group in ["lagging", "healthy"] {
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(group.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await?;
    }
    Ok(stream)
}

/// Publishes `n` events of about 200 bytes.
async fn publish(js: &jetstream::Context, n: usize) -> Result {
    for i in 0..n {
        js.publish(format!("lag.event.{i}"), vec![b'x'; 200].into())
            .await?
            .await?;
    }
    Ok(())
}

/// The `healthy` group handles everything stored.
async fn catch_up(stream: &stream::Stream, n: usize) -> Result {
    let consumer: consumer::PullConsumer = stream.get_consumer("healthy").await?;
    let mut batch = consumer.fetch().max_messages(n).messages().await?;
    let mut handled = 0;
    while let Some(message) = batch.next().await {
        message?.double_ack().await?;
        handled += 1;
    }
    assert_eq!(handled, n);
    Ok(())
}

#[tokio::test]
async fn a_lagging_group_is_reported_before_max_bytes_evicts_its_events() -> Result {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    // 20 kB; 60 events of ~250 bytes fill about three quarters.
    let stream = stream_with_groups(&js, 20_000, Duration::ZERO).await?;
    publish(&js, 60).await?;
    catch_up(&stream, 60).await?;
    let mut alerts_seen = client.subscribe("ops.alerts.lag").await?;
    client.flush().await?;
    let mut monitor = LagMonitor::new(
        js.clone(),
        LagConfig {
            streams: vec!["LAG_EVENTS".into()],
            max_lag: 50,
            used_percent: 60,
            evict_within: None,
            ..LagConfig::default()
        },
    )
    .sink(NatsSink::new(client.clone(), "ops.alerts.lag"));
    let alerts = monitor.check().await?;
    let kinds: Vec<(AlertKind, &str)> = alerts.iter().map(|a| (a.kind, a.group.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (AlertKind::Lag, "lagging"),
            (AlertKind::EvictionByBytes, "lagging")
        ],
        "{alerts:#?}"
    );
    let bytes = &alerts[1];
    assert_eq!(bytes.stream, "LAG_EVENTS");
    assert_eq!(bytes.threshold, 20_000);
    assert!(bytes.count >= 12_000 && bytes.count < 20_000, "{bytes:?}");
    // Nothing was evicted yet: the alert came first.
    let info = stream.get_info().await?;
    assert_eq!((info.state.first_sequence, info.state.messages), (1, 60));
    // Delivered through the DLQ monitor's NATS sink as JSON.
    for kind in ["tidings.lag.events", "tidings.lag.max_bytes"] {
        let message = tokio::time::timeout(Duration::from_secs(10), alerts_seen.next())
            .await?
            .ok_or("alert subscription ended")?;
        let json: serde_json::Value = serde_json::from_slice(&message.payload)?;
        assert_eq!(json["kind"], kind, "{json}");
        assert_eq!(json["group"], "lagging", "{json}");
        assert_eq!(json["stream"], "LAG_EVENTS", "{json}");
    }
    // Repeated only after repeat_after.
    assert!(monitor.check().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_lagging_group_is_reported_before_max_age_evicts_its_events() -> Result {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client);
    let stream = stream_with_groups(&js, -1, Duration::from_secs(6)).await?;
    publish(&js, 3).await?;
    catch_up(&stream, 3).await?;
    let monitor = tokio::sync::Mutex::new(LagMonitor::new(
        js.clone(),
        LagConfig {
            streams: vec!["LAG_EVENTS".into()],
            used_percent: 0,
            evict_within: Some(Duration::from_secs(4)),
            ..LagConfig::default()
        },
    ));
    let monitor = &monitor;
    let alert = eventually("the max_age alert", Duration::from_secs(5), || async move {
        match monitor.lock().await.check().await {
            Ok(alerts) => alerts
                .into_iter()
                .find(|a| a.kind == AlertKind::EvictionByAge)
                .ok_or_else(|| "no alert yet".to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    assert_eq!(alert.group, "lagging");
    assert_eq!(alert.threshold, 6);
    assert!(
        alert
            .error
            .as_deref()
            .unwrap_or("")
            .contains("max_age evicts it in"),
        "{alert:?}"
    );
    // Still stored: the alert came before the eviction.
    let info = stream.get_info().await?;
    assert_eq!((info.state.first_sequence, info.state.messages), (1, 3));
    Ok(())
}

/// The DLQ monitor's age alert: a dead letter that has used half of
/// DLQ_EVENTS' `max_age` is reported while it is still stored (at
/// `max_age` it is deleted, whatever `discard` says).
#[tokio::test]
async fn the_dlq_monitor_reports_a_dead_letter_before_max_age_deletes_it() -> Result {
    use tidings::dlq::{DlqMonitor, MonitorConfig, DLQ_STREAM};
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let stream = js
        .create_stream(stream::Config {
            name: DLQ_STREAM.into(),
            subjects: vec!["dlq.>".into()],
            max_age: Duration::from_secs(6),
            duplicate_window: Duration::from_millis(500),
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await?;
    js.publish("dlq.billing.auth.user.created.org-1.7", "dead".into())
        .await?
        .await?;
    let monitor = tokio::sync::Mutex::new(DlqMonitor::new(
        js.clone(),
        MonitorConfig {
            capacity_percent: 50,
            ..MonitorConfig::default()
        },
    ));
    let monitor = &monitor;
    let alert = eventually(
        "the DLQ max_age alert",
        Duration::from_secs(5),
        || async move {
            match monitor.lock().await.check().await {
                Ok(alerts) => alerts
                    .into_iter()
                    .find(|a| a.kind == AlertKind::AgeLimit)
                    .ok_or_else(|| "no alert yet".to_string()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    assert_eq!(alert.threshold, 6);
    assert!(alert.count >= 3, "{alert:?}");
    assert_eq!(alert.to_json()["kind"], "tidings.dlq.max_age");
    assert_eq!(
        stream.get_info().await?.state.messages,
        1,
        "deleted before the alert"
    );
    Ok(())
}
