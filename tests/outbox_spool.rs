//! The durable spool against a real nats-server: while the server is down,
//! events go to the local file up to its bound, then the publish fails with
//! a clear "full" error; once the server is back, the relay forwards every
//! spooled event exactly once and in order per subject, and publishing goes
//! direct again.
mod support;

use std::time::Duration;

use async_nats::jetstream;
use support::{provision, setup, UserCreated};
use tidings::outbox::spool::{Delivery, Spool, SpoolConfig};
use tidings::outbox::OutboxError;
use tidings::testing::{eventually, FaultProxy, NatsServer};
use tidings::{PublishContext, Publisher, PublisherConfig};

mod outbox_common;
use outbox_common::stored_by_subject;

/// Runs the spool's relay until nothing is left in the spool (or fails
/// after `within`), then stops it.
async fn forward_all(spool: &Spool, within: Duration) -> anyhow::Result<()> {
    let relay = spool.relay();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let forward = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    let drained = eventually("the spool is forwarded", within, || async {
        match spool.pending().await? {
            0 => Ok(()),
            left => Err(anyhow::anyhow!("{left} still spooled")),
        }
    })
    .await;
    let _ = stop_tx.send(());
    forward.await?;
    drained?;
    Ok(())
}

#[tokio::test]
async fn spools_while_nats_is_down_refuses_when_full_and_forwards_once() -> anyhow::Result<()> {
    let (mut server, client, js, publisher) = setup().await?;
    let dir = tempfile::tempdir()?;
    let spool = Spool::open(
        dir.path().join("spool.db"),
        publisher,
        SpoolConfig {
            max_events: 100,
            ..SpoolConfig::default()
        },
    )
    .await?;
    let ctx = PublishContext::new("org-1")?;

    // Up: straight to the stream.
    let first = spool.publish(&ctx, &UserCreated::numbered(0)).await?;
    assert!(matches!(first, Delivery::Published(_)), "{first:?}");

    server.stop().await?;
    eventually(
        "the client sees the outage",
        Duration::from_secs(10),
        || async {
            match client.connection_state() {
                async_nats::connection::State::Connected => Err("still connected"),
                _ => Ok(()),
            }
        },
    )
    .await?;
    let mut spooled = vec![];
    for i in 1..=100 {
        let mut event = UserCreated::numbered(i % 5);
        event.display_name = format!("event {i}");
        match spool.publish(&ctx, &event).await? {
            Delivery::Spooled { event_id } => spooled.push(event_id),
            other => anyhow::bail!("event {i} was not spooled: {other:?}"),
        }
    }
    assert_eq!(spool.pending().await?, 100);
    let full = spool
        .publish(&ctx, &UserCreated::numbered(101))
        .await
        .expect_err("the spool is full");
    assert!(
        matches!(
            full,
            OutboxError::SpoolFull {
                pending: 100,
                max: 100,
                ..
            }
        ),
        "{full}"
    );
    assert!(full.to_string().contains("is full"), "{full}");
    assert_eq!(spool.pending().await?, 100, "nothing written when full");

    server.start().await?;
    forward_all(&spool, Duration::from_secs(60)).await?;

    let by_subject = stored_by_subject(&js, "AUTH_EVENTS").await?;
    let stored: Vec<_> = by_subject.values().flatten().copied().collect();
    assert_eq!(
        stored.len(),
        101,
        "the direct one and every spooled one, once"
    );
    for (subject, ids) in &by_subject {
        let expected: Vec<_> = spooled
            .iter()
            .filter(|id| ids.contains(id))
            .copied()
            .collect();
        let got: Vec<_> = ids
            .iter()
            .filter(|id| spooled.contains(id))
            .copied()
            .collect();
        assert_eq!(
            got, expected,
            "{subject}: spooled events forwarded in order"
        );
    }
    // Empty spool, server up: direct again.
    let after = spool.publish(&ctx, &UserCreated::numbered(200)).await?;
    assert!(matches!(after, Delivery::Published(_)), "{after:?}");
    Ok(())
}

/// An event the publisher refuses as `Overloaded` (no turn among its
/// `max_in_flight` publishes within `queue_timeout`) was never sent: the
/// spool keeps it instead of failing the call, and its relay forwards it
/// once.
#[tokio::test]
async fn an_event_refused_as_overloaded_is_spooled_and_forwarded_once() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let js = jetstream::new(server.connect().await?);
    provision(&js, "dev").await?;
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(proxy.url())
        .await?;
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            max_in_flight: 1,
            attempt_timeout: Duration::from_secs(2),
            queue_timeout: Duration::from_millis(150),
            ..PublisherConfig::default()
        },
    )?;
    let dir = tempfile::tempdir()?;
    let spool = Spool::open(
        dir.path().join("spool.db"),
        publisher,
        SpoolConfig::default(),
    )
    .await?;
    let ctx = PublishContext::new("org-1")?;
    let first = spool.publish(&ctx, &UserCreated::numbered(0)).await?;
    assert!(matches!(first, Delivery::Published(_)), "{first:?}");

    // A 300 ms round trip holds the only turn twice the queue timeout.
    proxy.set_delay(Duration::from_millis(150));
    let (one, two) = (UserCreated::numbered(1), UserCreated::numbered(2));
    let (a, b) = tokio::join!(spool.publish(&ctx, &one), spool.publish(&ctx, &two));
    proxy.set_delay(Duration::ZERO);
    let spooled = match (a?, b?) {
        (Delivery::Published(_), Delivery::Spooled { event_id })
        | (Delivery::Spooled { event_id }, Delivery::Published(_)) => event_id,
        other => anyhow::bail!("expected one published and one spooled, got {other:?}"),
    };
    assert_eq!(spool.pending().await?, 1);

    forward_all(&spool, Duration::from_secs(30)).await?;
    let stored: Vec<_> = stored_by_subject(&js, "AUTH_EVENTS")
        .await?
        .into_values()
        .flatten()
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(
        stored.iter().filter(|id| **id == spooled).count(),
        1,
        "the spooled event is stored once: {stored:?}"
    );
    Ok(())
}
