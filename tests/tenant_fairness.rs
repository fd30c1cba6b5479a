//! Tenants share a service's stream. With `discard: old` and a byte limit,
//! one noisy tenant's events evict every other tenant's history; a
//! per-tenant limit in the publisher stops the noisy tenant at its budget,
//! with an error naming it, and the quiet tenant's events stay.
mod support;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use support::UserCreated;
use tidings::publish::{PublishError, TenantLimit};
use tidings::testing::NatsServer;
use tidings::{PublishContext, Publisher, PublisherConfig};

/// A small stand-in for a service stream's 1 GiB.
const MAX_BYTES: i64 = 128 * 1024;
const QUIET_EVENTS: usize = 20;
const NOISY_EVENTS: usize = 800;

async fn small_stream(
    server: &NatsServer,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "AUTH_EVENTS".into(),
        subjects: vec!["auth.>".into()],
        max_bytes: MAX_BYTES,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    Ok((client, js))
}

/// How many of the stream's events belong to `organization`.
async fn stored_for(js: &jetstream::Context, organization: &str) -> anyhow::Result<u64> {
    let stream = js.get_stream("AUTH_EVENTS").await?;
    let info = stream
        .info_with_subjects(format!("auth.*.*.{organization}.*"))
        .await?;
    use futures_util::TryStreamExt;
    let subjects: Vec<(String, usize)> = info.try_collect().await?;
    Ok(subjects.iter().map(|(_, n)| *n as u64).sum())
}

fn noisy_events() -> Vec<UserCreated> {
    (0..NOISY_EVENTS).map(UserCreated::numbered).collect()
}

async fn publish_quiet(publisher: &Publisher) -> anyhow::Result<()> {
    let quiet = PublishContext::new("org-quiet")?;
    for n in 0..QUIET_EVENTS {
        publisher.publish(&quiet, &UserCreated::numbered(n)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn without_a_limit_a_noisy_tenant_evicts_a_quiet_tenants_history() -> anyhow::Result<()> {
    // The figures are logged (`--nocapture`) for the README.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = NatsServer::launch().await?;
    let (client, js) = small_stream(&server).await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    publish_quiet(&publisher).await?;
    assert_eq!(stored_for(&js, "org-quiet").await?, QUIET_EVENTS as u64);

    let noisy = PublishContext::new("org-noisy")?;
    for result in publisher.publish_batch(&noisy, &noisy_events()).await {
        result?;
    }
    // Every event of the quiet tenant is gone: the noisy one's filled the
    // stream and `discard: old` made room by deleting the oldest.
    assert_eq!(stored_for(&js, "org-quiet").await?, 0);
    let noisy_stored = stored_for(&js, "org-noisy").await?;
    assert!(noisy_stored > 0 && noisy_stored < NOISY_EVENTS as u64);
    let state = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .clone();
    assert!(state.bytes <= MAX_BYTES as u64, "{state:?}");
    tracing::info!(
        noisy_stored,
        bytes = state.bytes,
        "without a limit, the noisy tenant filled the stream; the quiet tenant kept 0"
    );
    Ok(())
}

#[tokio::test]
async fn a_tenant_limit_refuses_the_noisy_tenant_and_keeps_the_quiet_tenants_events(
) -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let (client, js) = small_stream(&server).await?;
    // A quarter of the stream per tenant; the refill (1 byte/s) is
    // negligible over the test.
    let limit = TenantLimit {
        bytes_per_second: 1,
        burst_bytes: (MAX_BYTES / 4) as u64,
    };
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            tenant_limit: Some(limit),
            ..PublisherConfig::default()
        },
    )?;
    publish_quiet(&publisher).await?;

    let noisy = PublishContext::new("org-noisy")?;
    let results = publisher.publish_batch(&noisy, &noisy_events()).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        stored > 0,
        "the noisy tenant's first events are within its burst"
    );
    assert_eq!(stored + refused.len(), NOISY_EVENTS);
    for error in &refused {
        match error {
            PublishError::TenantLimited {
                organization_id,
                limit: refused_by,
                retry_after,
                ..
            } => {
                assert_eq!(organization_id, "org-noisy");
                assert_eq!(*refused_by, limit);
                assert!(retry_after.is_some());
            }
            other => anyhow::bail!("expected TenantLimited, got {other}"),
        }
    }
    let text = refused.first().map(ToString::to_string).unwrap_or_default();
    assert!(
        text.contains("org-noisy") && text.contains("32768 bytes"),
        "{text}"
    );

    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    tracing::info!(
        stored,
        refused = refused.len(),
        "with a limit, the noisy tenant was stopped at its burst"
    );
    // The quiet tenant's history is whole, and its next event goes through.
    assert_eq!(stored_for(&js, "org-quiet").await?, QUIET_EVENTS as u64);
    assert_eq!(stored_for(&js, "org-noisy").await?, stored as u64);
    let quiet = PublishContext::new("org-quiet")?;
    publisher
        .publish(&quiet, &UserCreated::numbered(99))
        .await?;
    // And a single publish of the noisy tenant is refused the same way.
    let single = publisher.publish(&noisy, &UserCreated::numbered(0)).await;
    assert!(
        matches!(single, Err(PublishError::TenantLimited { .. })),
        "{single:?}"
    );
    Ok(())
}
