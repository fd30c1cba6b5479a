//! Traces across a real nats-server: the producer's `send` span and the
//! consumer's `process` span share one trace (W3C context carried in the
//! event), also after a dead letter is redriven; span names, kinds and the
//! messaging attributes; a caller's own traceparent travels unchanged.
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{
    dead_letters, fast_config, publisher_with_ce_headers, settled, setup, take, UserCreated,
};
use tidings::dlq::{ops, RedriveTarget};
use tidings::telemetry::TraceContext;
use tidings::{Event, EventMeta, PublishContext, Subscriber};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt as _;

/// The spans of this test binary, exported as each ends. One global
/// subscriber for the binary: tests tell their spans apart by event id.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("tidings-tests");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only global subscriber of this test binary");
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// Waits for the exported spans named `name` whose `messaging.message.id`
/// is `event_id`, until there are `n`.
async fn spans(name: &str, event_id: uuid::Uuid, n: usize) -> anyhow::Result<Vec<SpanData>> {
    let id = event_id.to_string();
    Ok(tidings::testing::eventually(
        &format!("{n} exported `{name}` spans of event {id}"),
        Duration::from_secs(20),
        || async {
            let found: Vec<SpanData> = exporter()
                .get_finished_spans()?
                .into_iter()
                .filter(|s| s.name == name)
                .filter(|s| attribute(s, "messaging.message.id").as_deref() == Some(id.as_str()))
                .collect();
            if found.len() >= n {
                Ok(found)
            } else {
                Err(anyhow::anyhow!("{} so far", found.len()))
            }
        },
    )
    .await?)
}

#[tokio::test]
async fn the_consumers_process_span_continues_the_producers_trace_across_the_server(
) -> anyhow::Result<()> {
    exporter();
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(EventMeta, String)>();
    let mut subscriber = Subscriber::new(client, "analytics", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            // The handler's own span is a child of the process span.
            let work = tracing::info_span!("update the report");
            let _entered = work.enter();
            let _ = tx.send((event.meta, "handled".into()));
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;

    let request = tracing::info_span!("POST /users");
    let published = {
        use tracing::Instrument as _;
        publisher
            .publish(&PublishContext::new("org-7")?, &UserCreated::numbered(1))
            .instrument(request)
            .await?
    };
    let (meta, _) = take(&mut rx, 1).await?.remove(0);
    settled(&js, "AUTH_EVENTS", "analytics").await?;

    let send = spans("send auth.user.created", published.event_id, 1)
        .await?
        .remove(0);
    let process = spans("process auth.user.created", published.event_id, 1)
        .await?
        .remove(0);
    let all = exporter().get_finished_spans()?;
    let request = all
        .iter()
        .find(|s| {
            s.name == "POST /users" && s.span_context.trace_id() == send.span_context.trace_id()
        })
        .ok_or_else(|| anyhow::anyhow!("the caller's span was not exported"))?;

    // One trace: caller -> send (producer) -> process (consumer, remote parent).
    let trace_id = request.span_context.trace_id();
    assert_eq!(send.span_context.trace_id(), trace_id);
    assert_eq!(send.parent_span_id, request.span_context.span_id());
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(
        process.span_context.trace_id(),
        trace_id,
        "the consumer started a new trace"
    );
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert!(process.parent_span_is_remote);
    assert_eq!(process.span_kind, SpanKind::Consumer);
    let work = all
        .iter()
        .find(|s| s.name == "update the report" && s.span_context.trace_id() == trace_id)
        .ok_or_else(|| anyhow::anyhow!("the handler's span is not in the trace"))?;
    assert_eq!(work.parent_span_id, process.span_context.span_id());

    // The event carries the send span's context; the handler can read it.
    let carried = meta
        .trace_context()
        .ok_or_else(|| anyhow::anyhow!("the event carries no traceparent"))?;
    assert_eq!(carried.trace_id(), trace_id.to_string());
    assert_eq!(carried.parent_id(), send.span_context.span_id().to_string());
    assert!(carried.sampled());

    // The messaging attributes.
    let seq = published.sequence.to_string();
    for (key, value) in [
        ("messaging.system", "nats"),
        ("messaging.operation.type", "send"),
        ("messaging.operation.name", "publish"),
        ("messaging.destination.name", "auth.user.created.org-7.u-1"),
        ("tidings.event_type", "auth.user.created"),
        ("tidings.organization_id", "org-7"),
        ("tidings.stream", "AUTH_EVENTS"),
        ("tidings.stream_sequence", seq.as_str()),
        ("tidings.attempts", "1"),
        ("tidings.duplicate", "false"),
    ] {
        assert_eq!(
            attribute(&send, key).as_deref(),
            Some(value),
            "send span's {key}"
        );
    }
    for (key, value) in [
        ("messaging.system", "nats"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "auth.user.created.org-7.u-1"),
        ("messaging.consumer.group.name", "analytics"),
        ("tidings.event_type", "auth.user.created"),
        ("tidings.organization_id", "org-7"),
        ("tidings.stream", "AUTH_EVENTS"),
        ("tidings.stream_sequence", seq.as_str()),
        ("tidings.delivery", "1"),
        ("tidings.outcome", "acked"),
    ] {
        assert_eq!(
            attribute(&process, key).as_deref(),
            Some(value),
            "process span's {key}"
        );
    }
    assert!(attribute(&process, "error.type").is_none());
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_redriven_dead_letter_is_processed_in_the_producers_trace() -> anyhow::Result<()> {
    exporter();
    let (_server, client, js, publisher) = setup().await?;
    let healthy = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let config = tidings::SubscriberConfig {
        max_deliveries: 1,
        ..fast_config()
    };
    let mut subscriber = Subscriber::new(client, "billing", config)?;
    let ok = healthy.clone();
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        let ok = ok.load(Ordering::SeqCst);
        async move {
            let _ = tx.send(event.meta.delivery);
            if ok {
                Ok(())
            } else {
                Err("the invoice service is down".to_string())
            }
        }
    });
    let running = subscriber.start().await?;
    let published = publisher
        .publish(&PublishContext::new("org-8")?, &UserCreated::numbered(2))
        .await?;
    take(&mut rx, 1).await?;
    let dead = dead_letters(&js, 1).await?;
    let send = spans("send auth.user.created", published.event_id, 1)
        .await?
        .remove(0);
    let failed = spans("process auth.user.created", published.event_id, 1)
        .await?
        .remove(0);
    assert_eq!(
        attribute(&failed, "tidings.outcome").as_deref(),
        Some("dead_lettered")
    );
    assert_eq!(
        attribute(&failed, "error.type").as_deref(),
        Some("handler_error")
    );
    assert!(
        matches!(failed.status, Status::Error { .. }),
        "{:?}",
        failed.status
    );
    assert_eq!(failed.span_context.trace_id(), send.span_context.trace_id());

    healthy.store(true, Ordering::SeqCst);
    ops::redrive(&js, &dead[0], RedriveTarget::EveryGroup).await?;
    take(&mut rx, 1).await?;
    settled(&js, "AUTH_EVENTS", "billing").await?;
    let processed = spans("process auth.user.created", published.event_id, 2).await?;
    let redriven = processed
        .iter()
        .find(|s| attribute(s, "tidings.outcome").as_deref() == Some("acked"))
        .ok_or_else(|| anyhow::anyhow!("no acked process span after the redrive"))?;
    assert_eq!(
        redriven.span_context.trace_id(),
        send.span_context.trace_id(),
        "the redriven event's process span left the producer's trace"
    );
    assert_eq!(redriven.parent_span_id, send.span_context.span_id());
    assert_ne!(
        redriven.span_context.span_id(),
        failed.span_context.span_id()
    );
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_callers_traceparent_travels_in_the_event_and_its_headers() -> anyhow::Result<()> {
    exporter();
    let (_server, client, js, _) = setup().await?;
    // The headers are there only when the publisher sends `ce-` headers.
    let publisher = publisher_with_ce_headers(&client)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<EventMeta>();
    let mut subscriber = Subscriber::new(client, "audit", fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta);
            Ok::<(), String>(())
        }
    });
    let running = subscriber.start().await?;
    let theirs = TraceContext::new(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("congo=t61rcWkgMzE"),
    )?;
    let ctx = PublishContext::new("org-9")?.with_trace_context(&theirs);
    let published = publisher.publish(&ctx, &UserCreated::numbered(3)).await?;
    let meta = take(&mut rx, 1).await?.remove(0);
    assert_eq!(meta.trace_context(), Some(theirs.clone()));

    // Binary-mode headers for routers and other-language consumers.
    let stored = js
        .get_stream("AUTH_EVENTS")
        .await?
        .get_raw_message(published.sequence)
        .await?;
    assert_eq!(
        stored.headers.get("ce-traceparent").map(|v| v.as_str()),
        Some(theirs.traceparent())
    );
    assert_eq!(
        stored.headers.get("ce-tracestate").map(|v| v.as_str()),
        Some("congo=t61rcWkgMzE")
    );
    // The process span continues the caller's trace, under its span id.
    let process = spans("process auth.user.created", published.event_id, 1)
        .await?
        .remove(0);
    assert_eq!(
        process.span_context.trace_id().to_string(),
        theirs.trace_id()
    );
    assert_eq!(
        process.parent_span_id,
        SpanId::from_hex(theirs.parent_id())?
    );
    running.shutdown().await;
    Ok(())
}
