//! Metrics after publishing and handling events on a real nats-server: the
//! counters by outcome, the histograms' counts, the in-flight gauges back
//! at zero, and the collector's lag and dead-letter depth, read from the
//! Prometheus rendering a scrape would get.
mod support;

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use support::{dead_letters, fast_config, settled, setup, take, UserCreated};
use tidings::telemetry::{self, Collector};
use tidings::{Event, PublishContext, Subscriber};
use tokio::sync::mpsc;

/// The value of the series `name{labels...}` whose labels include all of
/// `labels` (summed over the others), or 0 if none.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest, value))
        })
        .filter(|(rest, _)| {
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

fn recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets(&telemetry::DURATION_BUCKETS)?
        .install_recorder()?;
    telemetry::describe_metrics();
    Ok(handle)
}

#[tokio::test]
async fn counters_by_outcome_after_eight_events_one_of_which_fails() -> anyhow::Result<()> {
    let prometheus = recorder()?;
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let config = tidings::SubscriberConfig {
        max_deliveries: 2,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "billing", config)?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let user = event.payload.user_id.clone();
            let _ = tx.send(user.clone());
            if user == "u-3" {
                Err("the invoice service refuses u-3".to_string())
            } else {
                Ok(())
            }
        }
    });
    let running = subscriber.start().await?;

    let ctx = PublishContext::new("org-1")?;
    for n in 1..=4 {
        publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
    }
    // Prepared, then sent (as the spool does): measured like a publish.
    let prepared = publisher.prepare(&ctx, &UserCreated::numbered(5))?;
    publisher.send(prepared).await?;
    let batch: Vec<UserCreated> = (6..=8).map(UserCreated::numbered).collect();
    for result in publisher.publish_batch(&ctx, &batch).await {
        result?;
    }
    // Seven handled once, u-3 twice (a NAK, then the dead letter).
    take(&mut rx, 9).await?;
    dead_letters(&js, 1).await?;
    settled(&js, "AUTH_EVENTS", "billing").await?;
    Collector::new(js.clone(), ["AUTH_EVENTS"])
        .collect()
        .await?;

    let text = prometheus.render();
    let ty = ("tidings_event_type", "auth.user.created");
    let group = ("messaging_consumer_group_name", "billing");
    let expect = |name: &str, labels: &[(&str, &str)], want: f64| {
        let got = value(&text, name, labels);
        assert_eq!(got, want, "{name}{labels:?} in\n{text}");
    };
    // Publish side.
    expect(
        "messaging_client_sent_messages_total",
        &[ty, ("tidings_outcome", "stored")],
        8.0,
    );
    expect(
        "messaging_client_sent_messages_total",
        &[ty, ("tidings_outcome", "failed")],
        0.0,
    );
    expect("tidings_publish_attempts_total", &[ty], 8.0);
    expect("tidings_publish_retries_total", &[ty], 0.0);
    expect(
        "messaging_client_operation_duration_seconds_count",
        &[
            ty,
            ("messaging_operation_name", "publish"),
            ("messaging_system", "nats"),
        ],
        5.0,
    );
    expect(
        "messaging_client_operation_duration_seconds_count",
        &[ty, ("messaging_operation_name", "publish_batch")],
        1.0,
    );
    expect("tidings_publish_in_flight", &[ty], 0.0);
    // Consume side: 9 deliveries of 8 events.
    expect(
        "messaging_client_consumed_messages_total",
        &[ty, group],
        9.0,
    );
    expect(
        "tidings_handler_runs_total",
        &[ty, group, ("tidings_outcome", "ok")],
        7.0,
    );
    expect(
        "tidings_handler_runs_total",
        &[ty, group, ("tidings_outcome", "failed")],
        2.0,
    );
    expect(
        "messaging_process_duration_seconds_count",
        &[ty, group],
        9.0,
    );
    expect("tidings_consumer_acks_total", &[group], 7.0);
    expect(
        "tidings_consumer_naks_total",
        &[group, ("tidings_reason", "failed")],
        1.0,
    );
    expect(
        "tidings_consumer_dead_letters_total",
        &[group, ("tidings_reason", "exhausted")],
        1.0,
    );
    expect("tidings_consumer_in_flight", &[group], 0.0);
    // The collector: nothing left to handle, one dead letter.
    let stream = ("tidings_stream", "AUTH_EVENTS");
    expect("tidings_consumer_lag_events", &[group, stream], 0.0);
    expect("tidings_consumer_lag_seconds", &[group, stream], 0.0);
    expect("tidings_dlq_depth", &[group, ty], 1.0);
    assert!(
        text.contains("# TYPE messaging_client_operation_duration_seconds histogram"),
        "{text}"
    );

    // A failed publish counts as failed, with its error type.
    let missing = tidings::Publisher::new(
        _server.connect().await?,
        tidings::PublisherConfig {
            retry: tidings::publish::RetryPolicy {
                max_retries: 0,
                ..Default::default()
            },
            attempt_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )?;
    js.delete_stream("AUTH_EVENTS").await?;
    let failed = missing.publish(&ctx, &UserCreated::numbered(9)).await;
    assert!(failed.is_err(), "{failed:?}");
    let text = prometheus.render();
    let got = value(
        &text,
        "messaging_client_sent_messages_total",
        &[
            ty,
            ("tidings_outcome", "failed"),
            ("error_type", "stream_missing"),
        ],
    );
    assert_eq!(got, 1.0, "{text}");
    assert_eq!(
        value(
            &text,
            "tidings_publish_failures_total",
            &[ty, ("error_type", "stream_missing")]
        ),
        1.0
    );
    running.shutdown().await;
    Ok(())
}
