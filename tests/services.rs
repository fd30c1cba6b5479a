//! SC-008: the latest generated type of every event type of every service
//! (auth, catalog, ddmrp, execution, analytics, ai_agent) is published with
//! the typed publisher and consumed by one typed consumer group, end to end
//! through a real nats-server.
#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::de::DeserializeOwned;
use support::{example, settled, setup, take};
use tidings::upcast::ReadAnyVersion;
use tidings::{DomainEvent, Event, PublishContext, Publisher, Subscriber};
use tokio::sync::mpsc;

/// What a handler saw: event type, schema version, stream, payload as JSON.
type Seen = (&'static str, u32, String, serde_json::Value);

/// Registers a handler for `E` that reports what it received.
fn report<E: ReadAnyVersion + serde::Serialize + Send + Sync + 'static>(
    subscriber: &mut Subscriber,
    tx: &mpsc::UnboundedSender<Seen>,
) {
    let tx = tx.clone();
    subscriber.handle::<E, _>(move |event: Event<E>| {
        let tx = tx.clone();
        async move {
            let payload = serde_json::to_value(&event.payload).unwrap_or_default();
            let _ = tx.send((
                E::EVENT_TYPE,
                event.meta.schema_version,
                event.meta.stream.clone(),
                payload,
            ));
            Ok::<(), Infallible>(())
        }
    });
}

/// Publishes `E`'s example and returns what the handler must see.
async fn publish_example<E: DomainEvent + DeserializeOwned>(
    publisher: &Publisher,
    ctx: &PublishContext,
) -> anyhow::Result<Seen> {
    let event: E = example::<E>()?;
    let published = publisher.publish(ctx, &event).await?;
    anyhow::ensure!(published.stream == E::STREAM, "{published:?}");
    Ok((
        E::EVENT_TYPE,
        E::SCHEMA_VERSION,
        E::STREAM.to_string(),
        serde_json::to_value(&event)?,
    ))
}

#[tokio::test]
async fn every_services_latest_events_are_published_and_consumed_through_generated_types(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, "catalog-of-everything", support::fast_config())?;
    macro_rules! register {
        ($t:ty) => {
            report::<$t>(&mut subscriber, &tx)
        };
    }
    every_latest_type!(register);
    let running = subscriber.start().await?;

    let ctx = PublishContext::new("org-1")?;
    let mut expected = BTreeMap::new();
    macro_rules! publish {
        ($t:ty) => {
            let seen = publish_example::<$t>(&publisher, &ctx).await?;
            expected.insert(seen.0, seen);
        };
    }
    every_latest_type!(publish);
    assert_eq!(expected.len(), 12, "every event type once");
    let services: std::collections::BTreeSet<&str> = expected
        .keys()
        .filter_map(|t| t.split('.').next())
        .collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "ai_agent",
            "analytics",
            "auth",
            "catalog",
            "ddmrp",
            "execution"
        ]
    );

    let got: BTreeMap<&str, Seen> = take(&mut rx, expected.len())
        .await?
        .into_iter()
        .map(|seen| (seen.0, seen))
        .collect();
    assert_eq!(
        got, expected,
        "each event arrives once, as it was published"
    );
    for stream in [
        "AUTH_EVENTS",
        "CATALOG_EVENTS",
        "DDMRP_EVENTS",
        "EXECUTION_EVENTS",
        "ANALYTICS_EVENTS",
        "AI_AGENT_EVENTS",
    ] {
        settled(&js, stream, "catalog-of-everything").await?;
    }
    running.shutdown().await;
    Ok(())
}
